/**
 * Accepted sockets moved onto the shared read buffer (src/proxy/io/fast-read.ts): every byte of every
 * connection arrives once, in order, even when many connections are read in the same turns (each
 * chunk is a copy, not a view of the shared buffer); pause stops reading; the server still counts
 * its connections, so close() completes once they are gone; a half-close is seen. Reads reach the
 * callback straight from the handle (`readDirect`), and what that path leaves to Node (the end of
 * the stream, a reset, a socket destroyed between reads) still arrives as Node's events.
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { adoptClient, onread, readDirect } from '../../src/proxy/io/fast-read';

/** The name of the function the socket's handle calls on each read. */
const handleOnread = (s: net.Socket): string | undefined =>
  (s as unknown as { _handle: { onread?: { name: string } } | null })._handle?.onread?.name;

function listen(onConn: (raw: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, onConn);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}
const portOf = (srv: net.Server) => (srv.address() as net.AddressInfo).port;

t.test('many connections read at once each receive exactly their own bytes', async (t) => {
  const got = new Map<number, Buffer[]>();
  const kept: Buffer[] = [];

  let n = 0;
  const srv = await listen((raw) => {
    const id = n++;
    got.set(id, []);
    let sock: net.Socket | null = null;
    sock = adoptClient(raw, (chunk) => {
      got.get(id)!.push(chunk);
      kept.push(chunk);
      if (Buffer.concat(got.get(id)!).length === 200_000) sock!.end('done');
    }, true);
    t.not(sock, raw, 'the handle moved to a socket that reads through onread');
    t.equal(handleOnread(sock), 'directOnRead', 'and its handle calls the callback directly');
  });
  const payloads: Buffer[] = [];
  const clients = Array.from({ length: 8 }, (_, i) => {
    const p = Buffer.alloc(200_000);
    for (let k = 0; k < p.length; k++) p[k] = (k * 31 + i * 7) & 255;
    payloads.push(p);
    return new Promise<void>((resolve) => {
      const c = net.connect(portOf(srv), '127.0.0.1', () => c.write(p));
      c.on('data', () => undefined);
      c.on('end', () => {
        c.end();
        resolve();
      });
    });
  });
  await Promise.all(clients);
  // which server connection is which client is not known: each must equal one payload
  const received = [...got.values()].map((cs) => Buffer.concat(cs));
  t.equal(received.length, 8);
  for (const r of received) t.ok(payloads.some((p) => p.equals(r)), 'a connection got one client\'s bytes exactly');
  t.ok(kept.length > 8, 'the bytes came in many reads (so later reads reused the read buffer)');
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  t.pass('the server closed: its connection count went back to zero');
});

t.test('pause stops reading until resume; a half-close arrives as end', async (t) => {
  let server: net.Socket | null = null;
  const chunks: string[] = [];
  const ended = new Promise<void>((resolve) => {
    void listen((raw) => {
      server = adoptClient(raw, (c) => chunks.push(c.toString()), true);
      server.pause();
      server.on('end', () => {
        server!.end('bye');
        resolve();
      });
    }).then((srv) => {
      const c = net.connect(portOf(srv), '127.0.0.1', () => c.write('hello'));
      c.on('data', () => undefined);
      c.on('close', () => srv.close());
      setTimeout(() => {
        t.same(chunks, [], 'nothing read while paused');
        c.end(); // half-close
        server!.resume();
      }, 100);
    });
  });
  await ended;
  t.same(chunks, ['hello'], 'read after resume, then the end');
});

t.test('onread hands a connecting socket copies of what it reads', async (t) => {
  const sent = Buffer.alloc(300_000);
  for (let k = 0; k < sent.length; k++) sent[k] = (k * 13) % 251;
  const srv = net.createServer((s) => s.end(sent));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    const c = net.connect({ port: portOf(srv), host: '127.0.0.1', onread: onread((b) => chunks.push(b)) });
    c.on('end', () => resolve());
  });
  const all = Buffer.concat(chunks);
  t.ok(chunks.length > 1, 'several reads');
  t.ok(all.equals(sent), 'every byte as sent, though later reads reused the read buffer');
  srv.close();
});

t.test('a directly read socket still sees the end of the stream, a reset, and its own destroy', async (t) => {
  const sent = Buffer.alloc(100_000, 7);
  const srv = net.createServer((s) => s.end(sent));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));

  // the end of the stream, after every byte
  let n = 0;
  await new Promise<void>((resolve) => {
    const opts = onread((b) => (n += b.length));
    const c = net.connect({ port: portOf(srv), host: '127.0.0.1', onread: opts });
    t.ok(readDirect(c, opts), 'readDirect took');
    t.equal(handleOnread(c), 'directOnRead');
    c.on('end', () => resolve());
  });
  t.equal(n, sent.length, 'every byte, then end');
  srv.close();

  // a reset from the peer destroys the socket with the error, as without readDirect
  const rst = net.createServer((s) => {
    s.write('x');
    setTimeout(() => s.resetAndDestroy(), 50);
  });
  await new Promise<void>((r) => rst.listen(0, '127.0.0.1', () => r()));
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
    const opts = onread(() => undefined);
    const c = net.connect({ port: portOf(rst), host: '127.0.0.1', onread: opts });
    readDirect(c, opts);
    c.on('error', resolve);
  });
  t.equal(err.code, 'ECONNRESET', 'the reset arrives as an error');
  rst.close();

  // destroyed while data keeps coming: the callback is not called again
  const flood = net.createServer((s) => {
    const big = Buffer.alloc(1 << 20, 1);
    const more = () => { while (s.writable && s.write(big)); };
    s.on('drain', more);
    s.on('error', () => undefined);
    more();
  });
  await new Promise<void>((r) => flood.listen(0, '127.0.0.1', () => r()));
  let after = 0;
  let destroyed = false;
  await new Promise<void>((resolve) => {
    const opts = onread(() => {
      if (destroyed) after++;
      else {
        destroyed = true;
        c.destroy();
        setTimeout(resolve, 100);
      }
    });
    const c = net.connect({ port: portOf(flood), host: '127.0.0.1', onread: opts });
    readDirect(c, opts);
  });
  t.equal(after, 0, 'no read after destroy');
  flood.close();
});

t.test('RINGSIDE_PLAIN_READ=1 leaves reads to Node, and the bytes still arrive', async (t) => {
  const mod = JSON.stringify(path.join(__dirname, '../../src/proxy/io/fast-read.js'));
  const script = `
    const net = require('node:net');
    const { onread, readDirect } = require(${mod});
    const srv = net.createServer((s) => s.end(Buffer.alloc(70000, 5)));
    srv.listen(0, '127.0.0.1', () => {
      let n = 0;
      const opts = onread((b) => (n += b.length));
      const c = net.connect({ port: srv.address().port, host: '127.0.0.1', onread: opts });
      const took = readDirect(c, opts);
      c.on('end', () => { console.log(JSON.stringify({ took, n })); srv.close(); });
    });`;
  const run = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env } }).toString());
  t.same(run({ RINGSIDE_PLAIN_READ: '1' }), { took: false, n: 70000 }, 'switched off: Node reads, every byte arrives');
  t.same(run({ RINGSIDE_PLAIN_READ: '' }), { took: true, n: 70000 }, 'by default: the direct path');
});

/**
 * Writes handed to the socket's handle directly (src/proxy/io/fast-write.ts), on real loopback TCP
 * sockets: bytes arrive once and in order when the peer stops reading and the kernel's buffer
 * fills (writes left pending in libuv), also when mixed with socket.write; `pending` counts what
 * is not yet written and `onDrain` runs when it is; end() after pending writes delivers them all
 * before the end; a peer that goes away turns into a socket error, not a crash; with
 * RINGSIDE_PLAIN_WRITE=1 writes go through socket.write and still arrive.
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { SocketWriter, fastWriteAvailable, handleKeyFound, handleOf } from '../../src/proxy/io/fast-write';

interface Pair {
  server: net.Server;
  local: net.Socket; // the side we write with
  peer: net.Socket; // the side that reads (paused until told)
}

async function pair(): Promise<Pair> {
  let peer!: net.Socket;
  const server = net.createServer({ pauseOnConnect: true });
  const accepted = new Promise<void>((resolve) => {
    server.once('connection', (s) => {
      peer = s;
      resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const local = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => local.once('connect', () => resolve()));
  await accepted;
  return { server, local, peer };
}

function collect(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => parts.push(c));
  s.resume();
  return new Promise((resolve) => s.on('end', () => resolve(Buffer.concat(parts))));
}

function chunk(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(i, 0);
  for (let k = 4; k < size; k++) b[k] = (i * 13 + k) & 255;
  return b;
}

async function close(p: Pair): Promise<void> {
  p.local.destroy();
  p.peer.destroy();
  await new Promise<void>((resolve) => p.server.close(() => resolve()));
}

t.test('this Node lets writes bypass socket.write', async (t) => {
  // if this fails, the sidecar still works (through socket.write), only slower
  t.equal(fastWriteAvailable, true);
});

t.test("the writer reads a socket's handle under the key net.Socket's _handle getter reads, as that getter does", async (t) => {
  // if the key is not found, writes read `_handle` (slower, the same behaviour)
  t.equal(handleKeyFound, true, 'found on this Node');
  const p = await pair();
  const internals = (s: net.Socket) => s as unknown as Parameters<typeof handleOf>[0];
  t.ok(handleOf(internals(p.local)) !== null, 'a connected socket has one');
  t.equal(handleOf(internals(p.local)), internals(p.local)._handle, 'the same handle as _handle');
  t.equal(handleOf(internals(p.peer)), internals(p.peer)._handle, 'for an accepted socket too');
  p.local.destroy();
  t.equal(handleOf(internals(p.local)), null, 'none once destroyed');
  await close(p);
});

t.test('writes to a peer that stops reading stay pending, in order, then drain', async (t) => {
  const p = await pair();
  let drains = 0;
  const w = new SocketWriter(p.local, () => drains++);
  const sent: Buffer[] = [];
  // 64 MB: far more than loopback's socket buffers hold, so writes are left pending
  for (let i = 0; i < 1024; i++) {
    const c = chunk(i, 64 * 1024);
    sent.push(c);
    w.write(c);
  }
  t.ok(w.pending > 0, `some writes are pending while the peer does not read (${w.pending} bytes)`);
  t.equal(drains, 0, 'no drain before the peer reads');
  const drained = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (w.pending === 0) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  const got = collect(p.peer);
  await drained;
  t.ok(drains >= 1, 'onDrain ran once everything was written');
  p.local.end();
  const all = await got;
  t.equal(all.length, 1024 * 64 * 1024, 'every byte arrived once');
  t.ok(all.equals(Buffer.concat(sent)), 'in the order written');
  await close(p);
});

t.test('fast writes and socket.write mixed arrive in the order they were made', async (t) => {
  const p = await pair();
  const w = new SocketWriter(p.local);
  const sent: Buffer[] = [];
  for (let i = 0; i < 600; i++) {
    const c = chunk(i, i % 3 === 0 ? 200 * 1024 : 100);
    sent.push(c);
    // every fifth through socket.write: its Writable then holds data, and the writer must queue behind it
    if (i % 5 === 0) p.local.write(c);
    else w.write(c);
  }
  const got = collect(p.peer);
  p.local.end();
  const all = await got;
  t.equal(all.length, Buffer.concat(sent).length);
  t.ok(all.equals(Buffer.concat(sent)), 'in order');
  await close(p);
});

t.test('end() after pending writes delivers all of them, then the end', async (t) => {
  const p = await pair();
  const w = new SocketWriter(p.local);
  const sent: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const c = chunk(i, 64 * 1024);
    sent.push(c);
    w.write(c);
  }
  t.ok(w.pending > 0, 'writes are pending when end() is called');
  p.local.end();
  const all = await collect(p.peer);
  t.ok(all.equals(Buffer.concat(sent)), 'everything, in order, before the end');
  await close(p);
});

t.test('a peer that goes away makes the socket fail with an error, and nothing throws', async (t) => {
  const p = await pair();
  const w = new SocketWriter(p.local, () => undefined);
  const failed = new Promise<NodeJS.ErrnoException | null>((resolve) => {
    p.local.on('error', (e) => resolve(e));
    p.local.on('close', () => resolve(null));
  });
  // unread data in the peer makes its close a reset
  for (let i = 0; i < 100; i++) w.write(chunk(i, 64 * 1024));
  p.peer.destroy();
  // keep writing until the reset is seen; each write must either queue or fail the socket
  for (let i = 0; i < 200 && !p.local.destroyed; i++) {
    w.write(chunk(i, 64 * 1024));
    await new Promise((r) => setTimeout(r, 5));
  }
  const e = await failed;
  t.ok(p.local.destroyed, 'the socket was destroyed');
  if (e) t.match(e.code, /^(EPIPE|ECONNRESET)$/, `with the write error (${e.code})`);
  t.doesNotThrow(() => w.write(Buffer.from('after')), 'writing to the destroyed socket does not throw');
  await close(p);
});

t.test('destroy() with writes pending cancels them quietly', async (t) => {
  const p = await pair();
  let drains = 0;
  const w = new SocketWriter(p.local, () => drains++);
  for (let i = 0; i < 300; i++) w.write(chunk(i, 64 * 1024));
  t.ok(w.pending > 0);
  let error: Error | null = null;
  p.local.on('error', (e) => (error = e));
  p.local.destroy();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(error, null, 'no error is reported for writes the socket itself cancelled');
  t.equal(drains, 0, 'and no drain');
  await close(p);
});

t.test('RINGSIDE_PLAIN_WRITE=1 leaves writes to socket.write, and the bytes still arrive', async (t) => {
  const mod = JSON.stringify(path.join(__dirname, '../../src/proxy/io/fast-write.js'));
  const script = `
    const net = require('node:net');
    const { SocketWriter, fastWriteAvailable } = require(${mod});
    let got = 0;
    const srv = net.createServer((s) => {
      s.on('data', (b) => (got += b.length));
      s.on('end', () => { console.log(JSON.stringify({ fastWriteAvailable, got })); srv.close(); });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = net.connect(srv.address().port, '127.0.0.1', () => {
        const w = new SocketWriter(c);
        for (let i = 0; i < 100; i++) w.write(Buffer.alloc(1000, i));
        c.end();
      });
    });`;
  const run = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env } }).toString());
  t.same(run({ RINGSIDE_PLAIN_WRITE: '1' }), { fastWriteAvailable: false, got: 100_000 }, 'switched off: socket.write, every byte arrives');
  t.same(run({ RINGSIDE_PLAIN_WRITE: '' }), { fastWriteAvailable: true, got: 100_000 }, 'by default: the handle');
});

/**
 * What a client learns of its own connection, and connections that are not Redis clients at all:
 * CLIENT INFO reports the protocol the connection negotiated and its transaction and pub/sub
 * state as a redis-server reports them for the same state; an HTTP request (`POST`, `Host:`) is
 * closed at once without a reply, as Redis does, so a web page cannot drive the sidecar.
 */
import t from 'tap';
import net from 'node:net';
import Redis from 'ioredis';
import { startCluster, directClient } from '../helpers/cluster';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Sidecar } from '../../src/proxy/sidecar';
import { RawClient, sidecarClient, startSidecar } from './helpers';
import type { Teardown } from '../helpers/cluster';
import { encodeCommand } from '../../src/resp/request-parser';

let cluster: LocalCluster;
let sidecar: Sidecar;
let app: Redis;
let node: Redis;

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  sidecar = await startSidecar(t, cluster);
  app = sidecarClient(t, sidecar);
  node = directClient(t, cluster.shards[0]!.master.address);
});

const fields = (line: string): Record<string, string> =>
  Object.fromEntries(line.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

/**
 * CLIENT INFO's fields on a raw connection to `port`, after `setup`. Read off the raw bytes, so
 * RESP3 replies (HELLO's map, CLIENT INFO's verbatim string) need no parser of their own.
 */
async function infoAfter(t: Teardown, port: number, setup: string[][]): Promise<Record<string, string>> {
  const sock = net.connect(port, '127.0.0.1');
  t.teardown(() => sock.destroy());
  let got = '';
  const line = new Promise<string>((resolve, reject) => {
    sock.on('data', (d) => {
      got += d.toString('latin1');
      const m = /(id=\d+ [^\r\n]* resp=\d)\r?\n/.exec(got);
      if (m) resolve(m[1]!);
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`closed before CLIENT INFO's reply: ${JSON.stringify(got)}`)));
  });
  for (const cmd of setup) sock.write(encodeCommand(cmd));
  sock.write(encodeCommand(['CLIENT', 'INFO']));
  const l = await line;
  sock.destroy();
  return fields(l);
}

const port = (): number => sidecar.options.port;
const nodePort = (): number => Number(cluster.shards[0]!.master.address.split(':')[1]);
const COMPARED = ['resp', 'flags', 'multi', 'db', 'sub', 'psub', 'name', 'user'];

for (const [what, setup] of [
  ['a fresh RESP2 connection', []],
  ['a connection after HELLO 3', [['HELLO', '3']]],
  ['a connection after HELLO 3 SETNAME', [['HELLO', '3', 'SETNAME', 'worker-7']]],
  ['a connection with a name', [['CLIENT', 'SETNAME', 'app-1']]],
] as Array<[string, string[][]]>) {
  t.test(`CLIENT INFO on ${what} reports what redis-server reports for it`, async (t) => {
    const direct = await infoAfter(t, nodePort(), setup);
    const through = await infoAfter(t, port(), setup);
    for (const f of COMPARED) t.equal(through[f], direct[f], `${f}=${direct[f]}`);
  });
}

t.test('CLIENT LIST shows another connection in MULTI with its queued commands and the x flag', async (t) => {
  const c = await RawClient.connect(t, port());
  c.write(encodeCommand(['CLIENT', 'SETNAME', 'in-multi']));
  c.write(encodeCommand(['MULTI']));
  c.write(encodeCommand(['SET', 'ci:a', '1']));
  c.write(encodeCommand(['INCR', 'ci:a']));
  await c.waitReplies(4);
  const line = ((await app.client('LIST')) as string).split('\n').find((l) => l.includes('name=in-multi'))!;
  t.ok(line, 'the connection is listed');
  t.equal(fields(line).multi, '2', 'two commands queued');
  t.match(fields(line).flags, /x/, 'flag x: in MULTI');
  c.write(encodeCommand(['DISCARD']));
  await c.waitReplies(5);
  const after = ((await app.client('LIST')) as string).split('\n').find((l) => l.includes('name=in-multi'))!;
  t.equal(fields(after).multi, '-1', 'after DISCARD: -1');
  t.equal(fields(after).flags, 'N');
});

t.test('CLIENT LIST shows a subscriber with its counts and the P flag', async (t) => {
  const c = await RawClient.connect(t, port());
  c.write(encodeCommand(['CLIENT', 'SETNAME', 'listener']));
  c.write(encodeCommand(['SUBSCRIBE', 'ci:a', 'ci:b']));
  c.write(encodeCommand(['PSUBSCRIBE', 'ci:*']));
  await c.waitReplies(4);
  const line = fields(((await app.client('LIST')) as string).split('\n').find((l) => l.includes('name=listener'))!);
  t.equal(line.sub, '2');
  t.equal(line.psub, '1');
  t.equal(line.flags, 'P');
});

const rawSession = async (): Promise<{ sock: net.Socket; got: () => string; closed: Promise<void> }> => {
  const sock = net.connect(port(), '127.0.0.1');
  let got = '';
  sock.on('data', (d) => (got += d.toString('latin1')));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  await new Promise<void>((resolve) => sock.on('connect', () => resolve()));
  return { sock, got: () => got, closed };
};

t.test('an HTTP POST is closed at once without a reply, and nothing after it runs', async (t) => {
  await app.del('ci:after-post');
  const { sock, got, closed } = await rawSession();
  t.teardown(() => sock.destroy());
  sock.write(`POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\r\n${encodeCommand(['SET', 'ci:after-post', 'x']).toString('latin1')}`);
  await closed;
  t.equal(got(), '', 'no reply at all');
  t.equal(await app.exists('ci:after-post'), 0, 'the command behind the request never ran');
  t.equal(await app.ping(), 'PONG', 'other clients are served');
});

t.test('a Host: line alone, in the RESP form, or inside MULTI is closed too, in any case', async (t) => {
  for (const bytes of [
    'host: example.org\r\n',
    encodeCommand(['Host:', 'example.org']).toString('latin1'),
    encodeCommand(['post', '/']).toString('latin1'),
    `${encodeCommand(['MULTI']).toString('latin1')}${encodeCommand(['POST', '/']).toString('latin1')}`,
  ]) {
    const { sock, got, closed } = await rawSession();
    t.teardown(() => sock.destroy());
    sock.write(bytes);
    await closed;
    t.notMatch(got(), /unknown command/, `${JSON.stringify(bytes.slice(0, 20))}: closed, not answered`);
  }
  // and what looks alike but is not an HTTP request is answered as Redis answers it
  const c = await RawClient.connect(t, port());
  c.write(encodeCommand(['POSTS', 'x']));
  const [e] = await c.waitReplies(1);
  t.match(String(e), /unknown command 'POSTS'/);
  t.notOk(c.closed);
});

/**
 * RESP3 clients (HELLO 3; node-redis 6 opens with it by default): the sidecar answers in RESP3
 * and forwards the nodes' RESP3 replies from connections that spoke HELLO 3 to them.
 */
import t from 'tap';
import net from 'node:net';
import { createClient } from 'redis';
import { startCluster, directClient } from '../helpers/cluster';
import { startSidecar, ownerOf } from './helpers';
import { ReplyFramer } from '../../src/resp/reply-framer';
import { encodeCommand } from '../../src/resp/request-parser';

/** Sends commands on a raw socket and collects `n` whole replies as text. */
async function raw(port: number, cmds: string[][], n: number): Promise<string[]> {
  const sock = net.connect({ port, host: '127.0.0.1' });
  const out: string[] = [];
  return new Promise((resolve, reject) => {
    const f = new ReplyFramer(
      (b, s, e) => {
        out.push(b.toString('latin1', s, e));
        if (out.length === n) {
          sock.destroy();
          resolve(out);
        }
      },
      reject,
    );
    sock.on('data', (c: Buffer) => f.push(c));
    sock.on('error', reject);
    sock.write(Buffer.concat(cmds.map((c) => encodeCommand(c))));
  });
}

t.test('RESP3 through the sidecar', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster, { failover: false });
  const port = sidecar.options.port;

  t.test('HELLO 3 answers a map and switches the connection to RESP3', async (t) => {
    const [hello, nil, hset, hgetall, ok] = await raw(port, [['HELLO', '3'], ['GET', 'r3:none'], ['HSET', 'r3:h', 'f', 'v'], ['HGETALL', 'r3:h'], ['SET', 'r3:k', 'v']], 5);
    t.match(hello, /^%7\r\n/, 'a RESP3 map');
    t.match(hello, /proto\r\n:3\r\n/);
    t.equal(nil, '_\r\n', 'a missing key is the RESP3 null, from the node');
    t.equal(hset, ':1\r\n');
    t.equal(hgetall, '%1\r\n$1\r\nf\r\n$1\r\nv\r\n', 'HGETALL comes back as the node\'s RESP3 map');
    t.equal(ok, '+OK\r\n');
    const node = directClient(t, ownerOf(cluster.config, 'r3:k'));
    t.equal(await node.get('r3:k'), 'v', 'the write reached the owner');
  });

  t.test('HELLO with a version other than 2 or 3 is refused and the protocol stays', async (t) => {
    const [err, pong] = await raw(port, [['HELLO', '4'], ['PING']], 2);
    t.match(err, /^-NOPROTO/);
    t.equal(pong, '+PONG\r\n');
  });

  t.test('a RESP3 subscriber gets push frames and may still run commands', async (t) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    t.teardown(() => sock.destroy());
    const frames: string[] = [];
    const f = new ReplyFramer((b, s, e) => frames.push(b.toString('latin1', s, e)), () => undefined);
    sock.on('data', (c: Buffer) => f.push(c));
    sock.write(Buffer.concat([encodeCommand(['HELLO', '3']), encodeCommand(['SUBSCRIBE', 'r3:chan']), encodeCommand(['GET', 'r3:k'])]));
    const until = async (n: number) => {
      for (let i = 0; i < 200 && frames.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    };
    await until(3);
    t.equal(frames[1], '>3\r\n$9\r\nsubscribe\r\n$7\r\nr3:chan\r\n:1\r\n', 'the confirmation is a push');
    t.equal(frames[2], '$1\r\nv\r\n', 'GET works while subscribed (RESP3 allows it)');
    const pub = directClient(t, cluster.seeds[0]!); // classic pub/sub lives on the hub: the first node's master
    await pub.publish('r3:chan', 'hello');
    await until(4);
    t.equal(frames[3], '>3\r\n$7\r\nmessage\r\n$7\r\nr3:chan\r\n$5\r\nhello\r\n', 'the message is the node\'s push frame');
  });

  t.test('node-redis with its default options (RESP3) works as an app uses it', async (t) => {
    const c = createClient({ socket: { port, host: '127.0.0.1' } });
    c.on('error', () => undefined);
    await c.connect();
    t.teardown(() => c.destroy());
    await c.hSet('r3:obj', { a: '1', b: '2' });
    t.same(await c.hGetAll('r3:obj'), { a: '1', b: '2' });
    t.same(await c.mGet(['r3:k', 'r3:missing']), ['v', null], 'a split MGET in RESP3');
    t.same(await c.multi().set('{r3}x', '1').incr('{r3}x').exec(), ['OK', 2]);
    await c.zAdd('r3:z', { score: 1.5, value: 'm' });
    t.equal(await c.zScore('r3:z', 'm'), 1.5, 'a RESP3 double');
    const sub = c.duplicate();
    sub.on('error', () => undefined);
    await sub.connect();
    t.teardown(() => sub.destroy());
    const got: string[] = [];
    await sub.subscribe('r3:news', (m) => got.push(m));
    await c.publish('r3:news', 'one');
    await c.publish('r3:news', 'two');
    for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    t.same(got, ['one', 'two']);
    const keys: string[] = [];
    for await (const k of c.scanIterator({ MATCH: 'r3:*' })) keys.push(...([] as string[]).concat(k));
    t.ok(keys.includes('r3:obj') && keys.includes('r3:z'), 'scanIterator sees keys of several masters');
  });
});

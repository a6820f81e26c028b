/**
 * Blocking commands through the sidecar (BLPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BLMPOP, XREAD
 * BLOCK, WAIT), against a cluster of 3 masters with 1 replica each (real redis-server
 * processes). What a blocked client holds on a node is read from the node itself (INFO clients).
 */
import t, { Test } from 'tap';
import type Redis from 'ioredis';
import { startCluster, directClient } from '../helpers/cluster';
import { keysPerMaster, ownerOf, rawTo, resp, run, sidecarClient, sleep, startSidecar, until } from '../helpers/sidecar';
import { Sidecar } from '../../src/proxy/sidecar';
import type { LocalCluster } from '../../src/embedded/local-cluster';

let cluster: LocalCluster;
let sidecar: Sidecar;
let app: Redis;
const direct = new Map<string, Redis>();

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  sidecar = await startSidecar(t, cluster);
  app = sidecarClient(t, sidecar);
  for (const a of cluster.seeds) direct.set(a, directClient(t, a));
});

const onOwner = (k: string): Redis => direct.get(ownerOf(cluster.config, k))!;
const blockedOn = async (k: string): Promise<number> => Number(/blocked_clients:(\d+)/.exec(await onOwner(k).info('clients'))![1]);

/** Tracks a promise's settlement without awaiting it. */
function track<T>(p: Promise<T>): { done: () => boolean; value: Promise<T> } {
  let settled = false;
  const value = p.finally(() => {
    settled = true;
  });
  value.catch(() => undefined);
  return { done: () => settled, value };
}

t.test('a BLPOP blocked for seconds while 5000 other commands flow through the sidecar is woken by an LPUSH from another client', async (t) => {
  const key = 'bl:queue';
  const blocker = sidecarClient(t, sidecar);
  const busy = sidecarClient(t, sidecar);
  const pusher = sidecarClient(t, sidecar);
  const popped = track(blocker.blpop(key, 0));
  await until('the BLPOP is blocked on the owning node', async () => (await blockedOn(key)) === 1);
  // 2500 SET + 2500 GET over keys of every master, the blocked key's master included
  const per = keysPerMaster(cluster.config, 'busy:', 50);
  const keys = [...per.values()].flat();
  const p = busy.pipeline();
  for (let i = 0; i < 2500; i++) {
    p.set(keys[i % keys.length]!, String(i));
    p.get(keys[i % keys.length]!);
  }
  const res = (await p.exec())!;
  t.equal(res.length, 5000);
  t.equal(res.filter(([e]) => e).length, 0, 'no command of the other client failed');
  t.ok(res.every(([, v], i) => (i % 2 === 0 ? v === 'OK' : v === String(i >> 1))), 'every SET answered OK and every GET its value');
  // the sidecar's other clients on the same connection keep working; the blocker stays blocked
  for (let i = 0; i < 20; i++) t.equal(await app.incr('bl:other'), i + 1);
  await sleep(2000);
  t.notOk(popped.done(), 'BLPOP is still blocked after the traffic and a 2 s wait');
  t.equal(await blockedOn(key), 1, 'the node still has it blocked');
  t.equal(await pusher.lpush(key, 'job-1'), 1);
  t.same(await popped.value, [key, 'job-1'], 'BLPOP returns the pushed value');
  t.equal(await onOwner(key).exists(key), 0, 'the element was consumed');
  // the blocker's connection works normally afterwards
  t.equal(await blocker.set('bl:after', 'x'), 'OK');
  t.equal(await blocker.get('bl:after'), 'x');
});

t.test('commands pipelined after a BLPOP on the same connection are answered after it, in order', async (t) => {
  const c = await rawTo(t, `127.0.0.1:${sidecar.options.port}`);
  const key = 'bl:pipe';
  const replies = run(c, ['BLPOP', key, '0'], ['SET', 'bl:pipe:x', '1'], ['GET', 'bl:pipe:x']);
  await until('the BLPOP is blocked', async () => (await blockedOn(key)) === 1);
  await app.rpush(key, 'v');
  t.same(await replies, [[key, 'v'], 'OK', '1']);
});

t.test('a BLPOP timeout is honoured: null after the timeout, fractional timeouts too', async (t) => {
  const c = sidecarClient(t, sidecar);
  t.equal(await c.blpop('bl:empty', 1), null, 'BLPOP 1 on an empty list returns null');
  t.equal(await c.brpop('bl:empty', 0.3), null, 'BRPOP 0.3 returns null');
  t.equal(await c.call('BZPOPMIN', 'bl:zempty', '0.2'), null, 'BZPOPMIN 0.2 returns null');
  t.equal(await c.get('bl:nothing'), null, 'the connection still answers');
  t.equal(await blockedOn('bl:empty'), 0, 'nothing stays blocked on the node');
});

/**
 * A sidecar whose teardown cannot hang the file: stop() is given 3 s, then whatever client
 * sockets are left are destroyed so that it can finish (see the stop() test below).
 */
async function looseSidecar(t: Test): Promise<Sidecar> {
  const s = new Sidecar({ seeds: cluster.seeds, port: 0, checkMs: 200, leaseMs: 2000, nodeTimeoutMs: 3000 });
  await s.start();
  t.teardown(async () => {
    const stopped = s.stop(200);
    await Promise.race([stopped, sleep(3000)]);
    for (const x of s.sessions) x.socket.destroy();
    await stopped;
  });
  await s.ready();
  return s;
}

const connectedOn = async (k: string): Promise<number> => Number(/connected_clients:(\d+)/.exec(await onOwner(k).info('clients'))![1]);

t.test('a client that disconnects while blocked releases its node connection', async (t) => {
  const sc = await looseSidecar(t);
  const key = 'bl:gone';
  const c = sidecarClient(t, sc);
  t.equal(await c.ping(), 'PONG');
  const before = await connectedOn(key);
  void c.blpop(key, 0).catch(() => undefined);
  await until('the BLPOP is blocked on the owning node', async () => (await blockedOn(key)) === 1);
  c.disconnect();
  let released = true;
  await until('the node has no blocked client', async () => (await blockedOn(key)) === 0, 5000).catch(() => (released = false));
  t.ok(released, 'blocked_clients goes back to 0 after the client disconnects');
  t.equal(await blockedOn(key), 0, 'no blocked client left on the node');
  t.ok((await connectedOn(key)) <= before, 'the node connection the blocked client used is closed');
  // no ghost consumer: a value pushed now stays in the list
  await app.rpush(key, 'kept');
  await sleep(200);
  t.same(await onOwner(key).lrange(key, 0, -1), ['kept'], 'a value pushed afterwards is not consumed by a forgotten connection');
  await onOwner(key).del(key);
});

t.test('20 clients blocked in BLPOP and killed at once (socket destroyed) all release their node connections', async (t) => {
  const sc = await looseSidecar(t);
  const key = 'bl:gone:many';
  const socks = await Promise.all(Array.from({ length: 20 }, () => rawTo(t, `127.0.0.1:${sc.options.port}`)));
  for (const c of socks) c.write(resp('BLPOP', key, '0'));
  await until('20 clients blocked', async () => (await blockedOn(key)) === 20);
  for (const c of socks) c.socket.destroy();
  let released = true;
  await until('all 20 released', async () => (await blockedOn(key)) === 0, 5000).catch(() => (released = false));
  t.ok(released, 'blocked_clients goes back to 0');
  await app.rpush(key, 'kept');
  await sleep(200);
  t.same(await onOwner(key).lrange(key, 0, -1), ['kept'], 'no forgotten connection consumed the value');
  await onOwner(key).del(key);
});

t.test('stop() finishes while a client is blocked in BLPOP 0, and the client is disconnected', async (t) => {
  const sc = new Sidecar({ seeds: cluster.seeds, port: 0, checkMs: 200, leaseMs: 2000, nodeTimeoutMs: 3000 });
  await sc.start();
  await sc.ready();
  const c = await rawTo(t, `127.0.0.1:${sc.options.port}`);
  c.write(resp('BLPOP', 'bl:stop', '0'));
  await until('the BLPOP is blocked', async () => (await blockedOn('bl:stop')) === 1);
  const stopped = sc.stop(500).then(() => true);
  const finished = await Promise.race([stopped, sleep(8000).then(() => false)]);
  t.ok(finished, 'stop(500) resolved');
  if (!finished) {
    for (const x of sc.sessions) x.socket.destroy();
    await stopped;
  }
  await c.waitClosed(5000).catch(() => undefined);
  t.ok(c.closed, 'the blocked client was disconnected');
  await until('the node has no blocked client', async () => (await blockedOn('bl:stop')) === 0, 5000).catch(() => undefined);
  t.equal(await blockedOn('bl:stop'), 0, 'the node connection was released');
});

t.test('BLMOVE and BRPOPLPUSH within a {tag}: immediate and woken, result on the owning node', async (t) => {
  const src = '{mv}:src';
  const dst = '{mv}:dst';
  const d = onOwner('mv');
  await app.rpush(src, 'a', 'b');
  t.equal(await app.blmove(src, dst, 'LEFT', 'RIGHT', 0), 'a', 'BLMOVE with data present');
  t.equal(await app.brpoplpush(src, dst, 0), 'b', 'BRPOPLPUSH with data present');
  t.same(await d.lrange(dst, 0, -1), ['b', 'a'], 'both moved on the owner');
  const c = sidecarClient(t, sidecar);
  const moved = track(c.blmove(src, dst, 'RIGHT', 'LEFT', 0));
  await until('BLMOVE blocked', async () => (await blockedOn(src)) === 1);
  await app.lpush(src, 'c');
  t.equal(await moved.value, 'c', 'a blocked BLMOVE is woken by a push');
  const c2 = sidecarClient(t, sidecar);
  const moved2 = track(c2.brpoplpush(src, dst, 0));
  await until('BRPOPLPUSH blocked', async () => (await blockedOn(src)) === 1);
  await app.lpush(src, 'd');
  t.equal(await moved2.value, 'd', 'a blocked BRPOPLPUSH is woken by a push');
  t.same(await d.lrange(dst, 0, -1), ['d', 'c', 'b', 'a']);
  t.equal(await d.exists(src), 0);
  let other = 'mvx:0';
  for (let i = 1; ownerOf(cluster.config, other) === ownerOf(cluster.config, 'mv'); i++) other = `mvx:${i}`;
  await t.rejects(app.blmove(src, other, 'LEFT', 'LEFT', 0), /CROSSSLOT/, 'BLMOVE across slots is refused');
});

t.test('BZPOPMIN and BLMPOP woken by a write from another client', async (t) => {
  const c = sidecarClient(t, sidecar);
  const z = track(c.call('BZPOPMIN', 'bl:z', '0'));
  await until('BZPOPMIN blocked', async () => (await blockedOn('bl:z')) === 1);
  await app.zadd('bl:z', 5, 'five', 1, 'one');
  t.same(await z.value, ['bl:z', 'one', '1']);
  const m = track(c.call('BLMPOP', '0', '2', '{lm}a', '{lm}b', 'LEFT', 'COUNT', '2'));
  await until('BLMPOP blocked', async () => (await blockedOn('{lm}a')) === 1);
  await app.rpush('{lm}b', 'x', 'y', 'z');
  t.same(await m.value, ['{lm}b', ['x', 'y']]);
});

t.test('XREAD BLOCK is woken by an XADD from another client', async (t) => {
  const s = 'bl:stream';
  await app.xadd(s, '1-1', 'seed', '0');
  const c = sidecarClient(t, sidecar);
  const read = track(c.xread('BLOCK', 0, 'STREAMS', s, '$'));
  await until('XREAD blocked', async () => (await blockedOn(s)) === 1);
  const id = await app.xadd(s, '*', 'f', 'v');
  t.same(await read.value, [[s, [[id, ['f', 'v']]]]], 'XREAD returns the new entry');
  t.equal(await c.xread('BLOCK', 200, 'STREAMS', s, '$'), null, 'XREAD BLOCK 200 times out with null');
  // XREADGROUP BLOCK too
  await app.xgroup('CREATE', s, 'g', '$');
  const g = track(c.xreadgroup('GROUP', 'g', 'c1', 'BLOCK', 0, 'STREAMS', s, '>'));
  await until('XREADGROUP blocked', async () => (await blockedOn(s)) === 1);
  const id2 = await app.xadd(s, '*', 'g', '1');
  t.same(await g.value, [[s, [[id2, ['g', '1']]]]]);
});

t.test('WAIT 1 after a write answers at least 1 (each master has a replica)', async (t) => {
  const per = keysPerMaster(cluster.config, 'wait:', 1);
  for (const [m, [k]] of per) {
    const c = sidecarClient(t, sidecar);
    t.equal(await c.set(k!, 'v'), 'OK');
    const n = (await c.call('WAIT', '1', '5000')) as number;
    t.ok(n >= 1, `WAIT after a write on ${m} answered ${n}`);
    // the write is on the replica when WAIT returned
    const shard = cluster.shards.find((s) => s.master.address === m)!;
    t.equal(await directClient(t, shard.replicas[0]!.address).get(k!), 'v', 'the replica has the write');
  }
  // pipelined: writes then WAIT in one go
  const c = sidecarClient(t, sidecar);
  const p = c.pipeline();
  for (let i = 0; i < 50; i++) p.set(`wait:p:${i}`, String(i));
  p.call('WAIT', '1', '5000');
  const res = (await p.exec())!;
  t.ok((res[50]![1] as number) >= 1, 'WAIT at the end of a pipeline answers at least 1');
});

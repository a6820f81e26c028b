/**
 * Applications' client libraries against the sidecar, used as apps use them (ioredis; node-redis
 * with RESP 2 — it opens with HELLO 3 by default), and the remaining client-state commands:
 * CLIENT KILL/PAUSE/UNPAUSE, RESET, OBJECT, MEMORY, DEBUG. A cluster of 3 masters with 1 replica
 * each (real redis-server processes); results are read on the owning nodes directly.
 */
import t, { Test } from 'tap';
import type Redis from 'ioredis';
import { createClient } from 'redis';
import { startCluster, directClient } from '../helpers/cluster';
import { keysPerMaster, norm, ownerOf, rawTo, run, sidecarClient, sleep, startSidecar, until } from '../helpers/sidecar';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Sidecar } from '../../src/proxy/sidecar';

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
const sidecarAddr = (): string => `127.0.0.1:${sidecar.options.port}`;

async function nodeRedis(t: Test) {
  // RESP 2: node-redis 6 opens with HELLO 3 otherwise, which this sidecar refuses (NOPROTO)
  const c = createClient({ RESP: 2, socket: { host: '127.0.0.1', port: sidecar.options.port, reconnectStrategy: false } });
  c.on('error', () => undefined);
  await c.connect();
  t.teardown(() => c.destroy());
  return c;
}

t.test('ioredis as an app: a pipeline over all masters, a transaction, a subscriber, scanStream', async (t) => {
  const per = keysPerMaster(cluster.config, 'app:io:', 20);
  const keys = [...per.values()].flat();
  const p = app.pipeline();
  keys.forEach((k, i) => p.hset(k, 'n', String(i), 'name', `item ${i}`).expire(k, 3600).hget(k, 'n'));
  const res = (await p.exec())!;
  t.equal(res.filter(([e]) => e).length, 0, 'no error in the pipeline');
  t.same(res.filter((_, i) => i % 3 === 2).map(([, v]) => v), keys.map((_, i) => String(i)), 'HGET replies in order');
  for (const [m, ks] of per) t.same(await direct.get(m)!.hget(ks[0]!, 'name'), `item ${keys.indexOf(ks[0]!)}`, `${ks[0]} on its owner`);
  t.same(await app.multi().hincrby('{cart:9}', 'apples', 3).hincrby('{cart:9}', 'pears', 1).hgetall('{cart:9}').exec(), [
    [null, 3],
    [null, 1],
    [null, { apples: '3', pears: '1' }],
  ]);
  const sub = sidecarClient(t, sidecar);
  const got: string[] = [];
  sub.on('message', (ch: string, m: string) => got.push(`${ch}:${m}`));
  await sub.subscribe('app:news', 'app:alerts');
  await app.publish('app:news', 'n1');
  await app.publish('app:alerts', 'a1');
  await app.publish('app:news', 'n2');
  await until('3 messages', () => got.length >= 3);
  t.same(got.filter((g) => g.startsWith('app:news')), ['app:news:n1', 'app:news:n2']);
  t.same(got.filter((g) => g.startsWith('app:alerts')), ['app:alerts:a1']);
  const streamed: string[] = [];
  await new Promise<void>((res, rej) => {
    const s = app.scanStream({ match: 'app:io:*', count: 7 });
    s.on('data', (ks: string[]) => streamed.push(...ks));
    s.on('end', res);
    s.on('error', rej);
  });
  t.same(streamed.sort(), [...keys].sort(), 'scanStream yields every key once');
});

t.test('node-redis (RESP 2) as an app: pipelines via multi/exec, WATCH, a subscriber, scanIterator', async (t) => {
  const c = await nodeRedis(t);
  const per = keysPerMaster(cluster.config, 'app:nr:', 10);
  const keys = [...per.values()].flat();
  const pipe = c.multi();
  for (const k of keys) pipe.set(k, `v-${k}`).get(k);
  const pr = await pipe.execAsPipeline();
  t.same(pr, keys.flatMap((k) => ['OK', `v-${k}`]), 'execAsPipeline over keys of every master: replies in order');
  for (const [m, ks] of per) t.equal(await direct.get(m)!.get(ks[0]!), `v-${ks[0]}`, `${ks[0]} on its owner`);
  t.same(await c.multi().incr('{nr}:n').incr('{nr}:n').get('{nr}:n').exec(), [1, 2, '2'], 'multi/exec in a {tag}');
  t.equal(await onOwner('nr').get('{nr}:n'), '2');
  await c.watch('{nr}:n');
  await app.set('{nr}:n', '100');
  await t.rejects(c.multi().set('{nr}:n', 'mine').exec(), /watched keys has been changed/, 'a raced WATCH fails EXEC (node-redis\'s WatchError)');
  t.equal(await onOwner('nr').get('{nr}:n'), '100');
  const sub = c.duplicate();
  sub.on('error', () => undefined);
  await sub.connect();
  t.teardown(() => sub.destroy());
  const got: string[] = [];
  await sub.subscribe(['nr:ch1', 'nr:ch2'], (message: string, channel: string) => {
    got.push(`${channel}:${message}`);
  });
  await sub.pSubscribe('nr:p*', (message: string, channel: string) => {
    got.push(`p:${channel}:${message}`);
  });
  await c.publish('nr:ch1', 'hello');
  await c.publish('nr:ch2', 'world');
  await c.publish('nr:pz', 'pat');
  await until('3 messages', () => got.length >= 3);
  await sleep(100);
  t.same(got.sort(), ['nr:ch1:hello', 'nr:ch2:world', 'p:nr:pz:pat'], 'each message once');
  await sub.unsubscribe();
  await sub.pUnsubscribe();
  // (node-redis hands this GET back as a Buffer after pub/sub, against a redis-server too)
  t.equal(String(await sub.get(keys[0]!)), `v-${keys[0]}`, 'the subscriber connection runs commands again');
  const scanned: string[] = [];
  for await (const batch of c.scanIterator({ MATCH: 'app:nr:*', COUNT: 5 })) scanned.push(...(Array.isArray(batch) ? batch : [batch]));
  t.same(scanned.sort(), [...keys].sort(), 'scanIterator yields every key once');
});

t.test('CLIENT KILL ID closes another sidecar client (one that is blocked included) and answers the count', async (t) => {
  const victim = sidecarClient(t, sidecar);
  const id = (await victim.client('ID')) as number;
  const ended = new Promise<void>((res) => victim.once('end', () => res()));
  const key = 'ck:blocked';
  void victim.blpop(key, 0).catch(() => undefined);
  await until('the victim is blocked on the node', async () => /blocked_clients:1\r/.test(await onOwner(key).info('clients')));
  t.equal(await app.client('KILL', 'ID', String(id)), 1, 'CLIENT KILL ID answers 1');
  await ended;
  t.pass('the victim\'s connection was closed');
  await until('the node released the blocked connection', async () => /blocked_clients:0\r/.test(await onOwner(key).info('clients')));
  t.pass('its node connection was released');
  t.equal(await app.client('KILL', 'ID', String(id)), 0, 'a second kill finds nobody');
  t.equal(await app.client('KILL', 'ID', '999999'), 0, 'an unknown id: 0');
  const list = (await app.client('LIST')) as string;
  t.notMatch(list, new RegExp(`\\bid=${id}\\b`), 'CLIENT LIST no longer shows it');
  t.equal(await app.ping(), 'PONG', 'the killer is fine');
});

t.test('CLIENT LIST shows each client\'s address and the address it reached, and CLIENT KILL ADDR/LADDR match them', async (t) => {
  const c = sidecarClient(t, sidecar);
  const id = (await c.client('ID')) as number;
  const sock = (c as unknown as { stream: { localAddress: string; localPort: number; remoteAddress: string; remotePort: number } }).stream;
  const addr = `${sock.localAddress}:${sock.localPort}`;
  const laddr = `${sock.remoteAddress}:${sock.remotePort}`;
  t.equal(laddr, sidecarAddr(), 'the client reached the sidecar\'s listening address');
  const line = ((await app.client('LIST')) as string).split('\n').find((l) => l.startsWith(`id=${id} `));
  t.ok(line, 'CLIENT LIST has the client');
  t.match(line!, ` addr=${addr} `, 'addr: the client\'s own end of the connection');
  t.match(line!, ` laddr=${laddr} `, 'laddr: the sidecar\'s end of it');
  const ended = new Promise<void>((res) => c.once('end', () => res()));
  t.equal(await app.call('CLIENT', 'KILL', 'ADDR', addr, 'LADDR', '127.0.0.1:1'), 0, 'another LADDR: nobody');
  t.equal(await app.call('CLIENT', 'KILL', 'ADDR', addr, 'LADDR', laddr), 1, 'ADDR and LADDR together: that client');
  await ended;
  t.equal(await app.ping(), 'PONG', 'the killer is fine');
});

t.test('CLIENT PAUSE holds other clients\' writes until CLIENT UNPAUSE', async (t) => {
  const key = 'cp:k';
  const writer = sidecarClient(t, sidecar);
  await writer.ping();
  t.equal(await app.client('PAUSE', '100000', 'WRITE'), 'OK');
  t.teardown(() => app.client('UNPAUSE').catch(() => undefined));
  let written = false;
  const w = writer.set(key, 'v').then((r) => ((written = true), r));
  await sleep(500);
  t.equal(await onOwner(key).exists(key), 0, 'the write has not reached the node while paused');
  t.notOk(written, 'the writer has no reply yet');
  t.equal(await app.client('UNPAUSE'), 'OK');
  t.equal(await w, 'OK', 'the held write completes after UNPAUSE');
  t.equal(await onOwner(key).get(key), 'v');
});

t.test('RESET leaves pub/sub and transactions and answers RESET', async (t) => {
  const c = await rawTo(t, sidecarAddr());
  t.same(await run(c, ['SUBSCRIBE', 'rs:ch']), [['subscribe', 'rs:ch', 1]]);
  t.same(await run(c, ['RESET'], ['SET', '{rs}a', '1']), ['RESET', 'OK'], 'out of pub/sub');
  t.equal(await app.publish('rs:ch', 'x'), 0, 'the subscription is gone from the node');
  t.same(await run(c, ['MULTI'], ['SET', '{rs}a', '2'], ['RESET'], ['GET', '{rs}a']), ['OK', 'QUEUED', 'RESET', '1'], 'out of MULTI, nothing applied');
  t.same(await run(c, ['CLIENT', 'SETNAME', 'me'], ['RESET'], ['CLIENT', 'GETNAME']), ['OK', 'RESET', null], 'the name is cleared');
});

t.test('OBJECT ENCODING, OBJECT IDLETIME and MEMORY USAGE route by key to the owning master', async (t) => {
  const per = keysPerMaster(cluster.config, 'obj:', 2);
  for (const [m, [kInt, kStr]] of per) {
    // written directly on the owner only: only the owner can answer for them
    await direct.get(m)!.set(kInt!, '12345');
    await direct.get(m)!.set(kStr!, 'x'.repeat(100));
    t.equal(await app.object('ENCODING', kInt!), 'int', `OBJECT ENCODING ${kInt} (on ${m})`);
    t.equal(await app.object('ENCODING', kStr!), 'raw', `OBJECT ENCODING ${kStr} (on ${m})`);
    t.type(await app.object('IDLETIME', kInt!), 'number', 'OBJECT IDLETIME');
    const mem = (await app.call('MEMORY', 'USAGE', kStr!)) as number;
    t.ok(typeof mem === 'number' && mem >= 100, `MEMORY USAGE ${kStr} is ${mem} bytes`);
  }
  t.equal(await app.object('ENCODING', 'obj:missing'), null, 'OBJECT ENCODING of a missing key: null');
  t.equal(await app.call('MEMORY', 'USAGE', 'obj:missing'), null, 'MEMORY USAGE of a missing key: null');
  await t.rejects(app.object('ENCODING', '__cluster__:config'), /__cluster__/, 'not on metadata');
  await t.rejects(app.call('MEMORY', 'STATS'), /ringside/, 'MEMORY STATS (no key) is refused with a clear error');
});

t.test('DEBUG is refused with a clear error and reaches no node', async (t) => {
  const c = await rawTo(t, sidecarAddr());
  const r = await run(c, ['DEBUG', 'SLEEP', '0'], ['DEBUG', 'OBJECT', 'k'], ['DEBUG', 'SET-ACTIVE-EXPIRE', '0']);
  for (const x of r) t.match(x, /^ERR:ERR ringside: DEBUG .*(nodes|admin)/, `refused: ${String(x)}`);
  for (const m of cluster.seeds) t.notMatch(await direct.get(m)!.info('commandstats'), /cmdstat_debug/, `${m} ran no DEBUG`);
  t.same(norm(await app.ping()), 'PONG');
});


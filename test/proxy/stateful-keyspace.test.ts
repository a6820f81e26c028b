/**
 * Keyspace-wide commands through the sidecar (SCAN, KEYS, DBSIZE, RANDOMKEY, FLUSHALL/FLUSHDB,
 * INFO keyspace), against a cluster of 3 masters with 1 replica each (real redis-server
 * processes). The cluster's metadata (`__cluster__:*`) must be held by the nodes, shown by none of
 * the commands, and kept by the flushes: both are checked on the nodes directly.
 */
import t, { Test } from 'tap';
import type Redis from 'ioredis';
import { startCluster, directClient } from '../helpers/cluster';
import { keysPerMaster, ownerOf, sidecarClient, startSidecar } from '../helpers/sidecar';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Sidecar } from '../../src/proxy/sidecar';

let cluster: LocalCluster;
let sidecar: Sidecar;
let app: Redis;
const direct = new Map<string, Redis>();
const N = 10_000;

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  sidecar = await startSidecar(t, cluster);
  app = sidecarClient(t, sidecar);
  for (const a of cluster.seeds) direct.set(a, directClient(t, a));
});

const metaOn = async (m: string): Promise<string[]> => (await direct.get(m)!.keys('__cluster__:*')).sort();
const isMeta = (k: string): boolean => k.startsWith('__cluster__');

/** Full SCAN through the sidecar with extra arguments; every key returned, in order, duplicates kept. */
async function scanAll(c: Redis, ...extra: string[]): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  let rounds = 0;
  do {
    const [next, keys] = (await c.call('SCAN', cursor, ...extra)) as [string, string[]];
    out.push(...keys);
    cursor = next;
    if (++rounds > 100_000) throw new Error('SCAN never ended');
  } while (cursor !== '0');
  return out;
}

/** Writes the 10 000 keys: strings, with every 10th a hash and every 25th a list. */
async function fill(): Promise<string[]> {
  const keys: string[] = [];
  const p = app.pipeline();
  for (let i = 0; i < N; i++) {
    const k = `ks:${i}`;
    keys.push(k);
    if (i % 25 === 0) p.rpush(k, 'x');
    else if (i % 10 === 0) p.hset(k, 'f', 'v');
    else p.set(k, String(i));
  }
  const res = (await p.exec())!;
  if (res.some(([e]) => e)) throw new Error('fill failed');
  return keys;
}

t.test('the nodes hold cluster metadata (what the rest of this file hides)', async (t) => {
  for (const m of cluster.seeds) t.ok((await metaOn(m)).length > 0, `${m} holds __cluster__:* keys`);
});

t.test('SCAN over 10 000 keys on three masters returns each key exactly once, with COUNT, MATCH and TYPE; KEYS and DBSIZE agree', async (t) => {
  const keys = await fill();
  const perMaster = new Map<string, number>();
  for (const k of keys) perMaster.set(ownerOf(cluster.config, k), (perMaster.get(ownerOf(cluster.config, k)) ?? 0) + 1);
  t.equal(perMaster.size, 3, 'the keys are spread on three masters');
  for (const m of cluster.seeds) {
    // one snapshot of the node: a sidecar may add a metadata key (a failure report) at any moment
    const [[, size], [, meta]] = (await direct.get(m)!.multi().dbsize().keys('__cluster__:*').exec())! as [[null, number], [null, string[]]];
    t.equal(size, perMaster.get(m)! + meta.length, `${m} holds its ${perMaster.get(m)} keys and its metadata`);
  }
  const expectOnce = (t: Test, got: string[], want: string[], what: string): void => {
    const dup = got.length - new Set(got).size;
    t.equal(dup, 0, `${what}: no key returned twice`);
    t.equal(got.filter(isMeta).length, 0, `${what}: no metadata`);
    t.same([...new Set(got)].sort(), [...want].sort(), `${what}: exactly the ${want.length} expected keys`);
  };
  expectOnce(t, await scanAll(app), keys, 'SCAN');
  expectOnce(t, await scanAll(app, 'COUNT', '1000'), keys, 'SCAN COUNT 1000');
  expectOnce(t, await scanAll(app, 'COUNT', '3'), keys, 'SCAN COUNT 3');
  expectOnce(t, await scanAll(app, 'MATCH', 'ks:1*'), keys.filter((k) => k.startsWith('ks:1')), 'SCAN MATCH ks:1*');
  expectOnce(t, await scanAll(app, 'TYPE', 'hash'), keys.filter((_, i) => i % 10 === 0 && i % 25 !== 0), 'SCAN TYPE hash');
  expectOnce(t, await scanAll(app, 'MATCH', 'ks:*5', 'COUNT', '500', 'TYPE', 'list'), keys.filter((k, i) => i % 25 === 0 && k.endsWith('5')), 'SCAN MATCH COUNT TYPE');
  t.same(await scanAll(app, 'MATCH', '__cluster__*'), [], 'SCAN MATCH __cluster__* shows nothing');
  t.same(await scanAll(app, 'TYPE', 'string', 'MATCH', '__*'), [], 'nor with TYPE');
  expectOnce(t, await app.keys('*'), keys, 'KEYS *');
  t.same(await app.keys('__cluster__*'), [], 'KEYS __cluster__* shows nothing');
  t.same(await app.keys('*cluster*'), [], 'KEYS *cluster* shows nothing');
  t.equal(await app.dbsize(), N, 'DBSIZE counts the user keys only');
  const scanned = await scanAll(app);
  t.equal(await app.dbsize(), scanned.length, 'DBSIZE agrees with SCAN');
  // scanStream, as applications iterate
  const streamed: string[] = [];
  await new Promise<void>((res, rej) => {
    const s = app.scanStream({ match: 'ks:*', count: 200 });
    s.on('data', (ks: string[]) => streamed.push(...ks));
    s.on('end', () => res());
    s.on('error', rej);
  });
  expectOnce(t, streamed, keys, 'ioredis scanStream');
});

t.test('INFO keyspace shows the cluster-wide count of user keys', async (t) => {
  const info = await app.info('keyspace');
  const m = /db0:keys=(\d+),expires=(\d+)/.exec(info);
  t.ok(m, `INFO keyspace has a db0 line: ${JSON.stringify(info)}`);
  t.equal(Number(m?.[1]), await app.dbsize(), 'keys= equals DBSIZE');
  await app.set('ks:ttl', 'v', 'EX', 1000);
  const m2 = /db0:keys=(\d+),expires=(\d+)/.exec(await app.info('keyspace'));
  t.equal(Number(m2?.[2]), 1, 'expires= counts the one user key with a TTL');
  await app.del('ks:ttl');
});

t.test('RANDOMKEY never returns metadata, and returns the only user key when there is one', async (t) => {
  for (let i = 0; i < 200; i++) {
    const k = await app.randomkey();
    if (k === null || isMeta(k)) {
      t.fail(`RANDOMKEY returned ${k}`);
      return;
    }
  }
  t.pass('200 RANDOMKEYs over 10 000 keys: no metadata, never null');
  t.equal(await app.flushall(), 'OK');
  t.equal(await app.randomkey(), null, 'RANDOMKEY on an empty cluster (metadata only) is null');
  await app.set('ks:only', '1');
  const seen = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const k = String(await app.randomkey());
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  t.same(Object.fromEntries(seen), { 'ks:only': 100 }, 'with one user key, 100 RANDOMKEYs all return it (as Redis does)');
});

for (const form of [['FLUSHALL'], ['FLUSHALL', 'ASYNC'], ['FLUSHDB'], ['FLUSHDB', 'SYNC']]) {
  t.test(`${form.join(' ')} empties user keys on every master and replica, keeps the metadata, and leaves the cluster usable`, async (t) => {
    const per = keysPerMaster(cluster.config, `fl:${form.join('')}:`, 30);
    const keys = [...per.values()].flat();
    await app.mset(...keys.flatMap((k) => [k, 'v']));
    await app.set('fl:ttl', 'v', 'PX', 100_000);
    const metaBefore = await Promise.all(cluster.seeds.map(metaOn));
    const ttlBefore = await Promise.all(cluster.seeds.map(async (m) => Object.fromEntries(await Promise.all((await metaOn(m)).map(async (k) => [k, (await direct.get(m)!.pttl(k)) > 0])))));
    t.equal(await app.call(...(form as [string, ...string[]])), 'OK');
    for (const [i, m] of cluster.seeds.entries()) {
      const left = (await direct.get(m)!.keys('*')).filter((k) => !isMeta(k));
      t.same(left, [], `${m} has no user key left`);
      t.same(await metaOn(m), metaBefore[i], `${m} still holds all its metadata`);
      const ttls = Object.fromEntries(await Promise.all((await metaOn(m)).map(async (k) => [k, (await direct.get(m)!.pttl(k)) > 0])));
      t.same(ttls, ttlBefore[i], `${m}: the metadata keys that expire still expire, the others still do not`);
    }
    for (const s of cluster.shards) {
      const r = directClient(t, s.replicas[0]!.address);
      await direct.get(s.master.address)!.call('WAIT', '1', '5000');
      t.same((await r.keys('*')).filter((k) => !isMeta(k)), [], `replica of ${s.master.address} has no user key left`);
      t.same((await r.keys('__cluster__:*')).sort(), await metaOn(s.master.address), `replica of ${s.master.address} kept the metadata`);
    }
    t.equal(await app.dbsize(), 0, 'DBSIZE 0');
    t.same(await app.keys('*'), [], 'KEYS * empty');
    t.same(await scanAll(app), [], 'SCAN empty');
    t.equal(await app.set(keys[0]!, 'after'), 'OK', 'SET after the flush');
    t.equal(await app.get(keys[0]!), 'after', 'GET after the flush');
    t.equal(await direct.get(ownerOf(cluster.config, keys[0]!))!.get(keys[0]!), 'after', 'written on the owner');
    // a sidecar started now still finds its configuration on the seeds
    const fresh = await startSidecar(t, cluster);
    const fc = sidecarClient(t, fresh);
    t.equal(await fc.get(keys[0]!), 'after', 'a fresh sidecar starts from the seeds and reads');
    t.equal(await fc.set(keys[1]!, 'fresh'), 'OK');
    await app.del(keys[0]!, keys[1]!);
  });
}

t.test('FLUSHALL with a bad argument is refused and flushes nothing', async (t) => {
  await app.set('fl:bad', '1');
  await t.rejects(app.call('FLUSHALL', 'NOW'), /syntax error/);
  t.equal(await app.get('fl:bad'), '1');
});


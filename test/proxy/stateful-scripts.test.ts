/**
 * EVAL/EVALSHA/FCALL, SCRIPT and FUNCTION through the sidecar, against a cluster of 3 masters
 * with 1 replica each (real redis-server processes). Where a script writes, the result is read on
 * the node that owns the key, directly; SCRIPT/FUNCTION state is checked on every master.
 */
import t from 'tap';
import type Redis from 'ioredis';
import { createHash } from 'node:crypto';
import { startCluster, directClient } from '../helpers/cluster';
import { keysPerMaster, norm, ownerOf, sidecarClient, startSidecar, until } from '../helpers/sidecar';
import { slotOf } from '../../src/cluster/slot';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Sidecar } from '../../src/proxy/sidecar';

let cluster: LocalCluster;
let sidecar: Sidecar;
let app: Redis;
const direct = new Map<string, Redis>();

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  // A master is restarted below. This file is about scripts: no fail-over may move that shard to
  // its replica meanwhile, which the test timing's 300 ms down-after allows when a restart is slow
  // (it did once in CI, and the later checks then looked for keys on the old master).
  sidecar = await startSidecar(t, cluster, { failover: false });
  app = sidecarClient(t, sidecar);
  for (const a of cluster.seeds) direct.set(a, directClient(t, a));
});

const onOwner = (k: string): Redis => direct.get(ownerOf(cluster.config, k))!;
const SETTER = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])";
const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

t.test('EVAL with keys runs on the master that owns them, for keys of every master', async (t) => {
  const per = keysPerMaster(cluster.config, 'ev:', 2);
  for (const [m, keys] of per) {
    for (const k of keys) {
      t.equal(await app.eval(SETTER, 1, k, `v-${k}`), `v-${k}`);
      for (const other of cluster.seeds) t.equal(await direct.get(other)!.get(k), other === m ? `v-${k}` : null, `${k} ${other === m ? 'written on its owner' : 'absent from'} ${other}`);
    }
  }
  // several keys sharing a tag
  t.same(await app.eval("return {redis.call('INCR', KEYS[1]), redis.call('INCR', KEYS[2])}", 2, '{ev}a', '{ev}b'), [1, 1]);
  t.same(await onOwner('ev').mget('{ev}a', '{ev}b'), ['1', '1']);
  // EVAL_RO reads
  t.equal(await app.call('EVAL_RO', "return redis.call('GET', KEYS[1])", '1', '{ev}a'), '1');
});

t.test('EVAL with keys in two slots is refused with CROSSSLOT and runs nowhere', async (t) => {
  let other = 'evx:1';
  for (let i = 2; slotOf(other) === slotOf('evx:0'); i++) other = `evx:${i}`;
  await t.rejects(app.eval("redis.call('SET', KEYS[1], 'a') redis.call('SET', KEYS[2], 'b') return 1", 2, 'evx:0', other), /CROSSSLOT/);
  for (const m of cluster.seeds) t.equal(await direct.get(m)!.exists('evx:0', other), 0, `nothing written on ${m}`);
  await t.rejects(app.call('FCALL', 'nosuch', '2', 'evx:0', other), /CROSSSLOT/, 'FCALL too');
});

t.test('EVAL with no keys runs on a master and answers', async (t) => {
  t.equal(await app.eval('return 6 * 7', 0), 42);
  t.same(await app.eval('return ARGV', 0, 'a', 'b'), ['a', 'b']);
  t.equal(await app.eval("return redis.call('PING')", 0), 'PONG');
  t.same(await app.eval("return redis.call('TIME')[1] ~= nil", 0), 1);
});

t.test('a script naming __cluster__ is refused, as body or as key, by EVAL, SCRIPT LOAD and FUNCTION LOAD', async (t) => {
  const before = await Promise.all(cluster.seeds.map((m) => direct.get(m)!.keys('__cluster__:*')));
  t.ok(before.every((l) => l.length > 0), 'every master holds metadata');
  await t.rejects(app.eval("return redis.call('DEL', '__cluster__:config')", 0), /__cluster__/);
  await t.rejects(app.eval("return redis.call('DEL', KEYS[1])", 1, '__cluster__:config'), /__cluster__/);
  await t.rejects(app.script('LOAD', "return redis.call('FLUSHALL') or '__cluster__:x'"), /__cluster__/);
  await t.rejects(app.call('FUNCTION', 'LOAD', "#!lua name=meta\nredis.register_function('m', function() return redis.call('GET', '__cluster__:config') end)"), /__cluster__/);
  const after = await Promise.all(cluster.seeds.map((m) => direct.get(m)!.keys('__cluster__:*')));
  t.same(after.map((l) => l.sort()), before.map((l) => l.sort()), 'the metadata is untouched');
});

t.test('SCRIPT LOAD then EVALSHA on keys of every master; SCRIPT EXISTS agrees', async (t) => {
  const sha = (await app.script('LOAD', SETTER)) as string;
  t.equal(sha, sha1(SETTER), 'SCRIPT LOAD answers the sha1 of the body');
  for (const m of cluster.seeds) t.same(await direct.get(m)!.script('EXISTS', sha), [1], `${m} has the script`);
  const per = keysPerMaster(cluster.config, 'sha:', 2);
  for (const [m, keys] of per)
    for (const k of keys) {
      t.equal(await app.evalsha(sha, 1, k, `s-${k}`), `s-${k}`);
      t.equal(await direct.get(m)!.get(k), `s-${k}`, `${k} written on its owner ${m}`);
    }
  const unknown = sha1('return "never loaded"');
  t.same(await app.script('EXISTS', sha, unknown, sha), [1, 0, 1], 'SCRIPT EXISTS: one answer per sha, in order');
  await t.rejects(app.evalsha(unknown, 0), /^NOSCRIPT/, 'an EVALSHA nobody has seen is NOSCRIPT, as in Redis');
});

t.test('EVALSHA after the owning master restarted (its script cache is empty) still succeeds', async (t) => {
  const body = "return {'restarted', redis.call('INCR', KEYS[1])}";
  const sha = (await app.script('LOAD', body)) as string;
  const viaEval = "return 'seen through EVAL ' .. KEYS[1]";
  t.equal(await app.eval(viaEval, 1, 'rs:e'), 'seen through EVAL rs:e');
  const shard = cluster.shards[0]!;
  const m = shard.master.address;
  const key = keysPerMaster(cluster.config, 'rs:', 1).get(m)![0]!;
  await shard.master.restart();
  // wait until the sidecar reaches the restarted master again
  await until('the sidecar writes to the restarted master', async () => (await app.set(key, '0').catch(() => 'no')) === 'OK', 15_000, 200);
  const d = directClient(t, m);
  t.same(await d.script('EXISTS', sha, sha1(viaEval)), [0, 0], 'the restarted master does not know the scripts');
  t.same(await app.evalsha(sha, 1, key), ['restarted', 1], 'EVALSHA of a SCRIPT LOADed body succeeds');
  t.equal(await d.get(key), '1', 'and ran on the restarted owner');
  const keyE = keysPerMaster(cluster.config, 'rse:', 1).get(m)![0]!;
  t.equal(await app.evalsha(sha1(viaEval), 1, keyE), `seen through EVAL ${keyE}`, 'EVALSHA of a body seen through EVAL succeeds');
  t.equal(await app.call('EVALSHA_RO', sha1(viaEval), '1', keyE), `seen through EVAL ${keyE}`, 'EVALSHA_RO too');
  // a pipeline of EVALSHAs to the restarted node after a SCRIPT FLUSH done behind the sidecar's back
  await d.script('FLUSH');
  const p = app.pipeline();
  for (let i = 0; i < 20; i++) p.evalsha(sha, 1, key);
  const res = (await p.exec())!;
  t.same(res.map(([e, v]) => (e ? e.message : v)), Array.from({ length: 20 }, (_, i) => ['restarted', i + 2]), 'pipelined EVALSHAs all succeed, in order');
});

t.test('SCRIPT FLUSH empties every master\'s script cache', async (t) => {
  const sha = (await app.script('LOAD', 'return 1')) as string;
  t.same(await app.script('EXISTS', sha), [1]);
  t.equal(await app.script('FLUSH'), 'OK');
  for (const m of cluster.seeds) t.same(await direct.get(m)!.script('EXISTS', sha), [0], `${m} forgot the script`);
  t.same(await app.script('EXISTS', sha), [0], 'SCRIPT EXISTS through the sidecar says 0');
  await t.rejects(app.evalsha(sha, 0), /^NOSCRIPT/, 'EVALSHA after SCRIPT FLUSH is NOSCRIPT, as in Redis');
});

const LIB = `#!lua name=ringlib
redis.register_function('rset', function(keys, args) redis.call('SET', keys[1], args[1]) return redis.call('GET', keys[1]) end)
redis.register_function{function_name='rget', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}
redis.register_function('rnokey', function() return 'no keys' end)`;

t.test('FUNCTION LOAD then FCALL on keys of every master; FUNCTION LIST; FUNCTION DELETE', async (t) => {
  t.equal(await app.call('FUNCTION', 'LOAD', LIB), 'ringlib');
  for (const m of cluster.seeds) {
    const list = norm(await direct.get(m)!.call('FUNCTION', 'LIST', 'LIBRARYNAME', 'ringlib')) as unknown[];
    t.equal(list.length, 1, `${m} has the library`);
  }
  await t.rejects(app.call('FUNCTION', 'LOAD', LIB), /already exists/, 'loading it again without REPLACE is refused');
  t.equal(await app.call('FUNCTION', 'LOAD', 'REPLACE', LIB), 'ringlib', 'with REPLACE it loads');
  const per = keysPerMaster(cluster.config, 'fc:', 2);
  for (const [m, keys] of per)
    for (const k of keys) {
      t.equal(await app.call('FCALL', 'rset', '1', k, `f-${k}`), `f-${k}`);
      t.equal(await direct.get(m)!.get(k), `f-${k}`, `${k} written on its owner ${m}`);
      t.equal(await app.call('FCALL_RO', 'rget', '1', k), `f-${k}`, 'FCALL_RO reads it');
    }
  t.equal(await app.call('FCALL', 'rnokey', '0'), 'no keys', 'FCALL without keys');
  const list = norm(await app.call('FUNCTION', 'LIST')) as unknown[][];
  t.equal(list.length, 1, 'FUNCTION LIST shows one library');
  const lib = list[0]!;
  t.equal(lib[lib.indexOf('library_name') + 1], 'ringlib');
  const fns = (lib[lib.indexOf('functions') + 1] as unknown[][]).map((f) => f[f.indexOf('name') + 1]).sort();
  t.same(fns, ['rget', 'rnokey', 'rset'], 'with its three functions');
  t.equal(await app.call('FUNCTION', 'DELETE', 'ringlib'), 'OK');
  for (const m of cluster.seeds) t.same(await direct.get(m)!.call('FUNCTION', 'LIST'), [], `${m} has no library left`);
  await t.rejects(app.call('FCALL', 'rset', '1', 'fc:x', 'v'), /Function not found/, 'FCALL after DELETE fails as in Redis');
  await t.rejects(app.call('FUNCTION', 'DELETE', 'ringlib'), /Library not found/, 'deleting it again fails as in Redis');
});

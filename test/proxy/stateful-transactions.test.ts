/**
 * MULTI/EXEC/DISCARD/WATCH/UNWATCH through the sidecar, against a cluster of 3 masters with 1
 * replica each (real redis-server processes). Results are checked on the node that owns the keys,
 * read directly; where a sequence stays in one slot, the sidecar's replies are compared with what
 * a redis-server answers to the same bytes.
 */
import t, { Test } from 'tap';
import type Redis from 'ioredis';
import { startCluster, directClient } from '../helpers/cluster';
import { commandCalls, keyOn, norm, ownerOf, rawTo, run, sidecarClient, startSidecar } from '../helpers/sidecar';
import { slotOf } from '../../src/cluster/slot';
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

/** Two keys in different slots owned by different masters. */
function twoNodes(prefix: string): [string, string] {
  const [m0, m1] = cluster.seeds;
  return [keyOn(cluster.config, m0!, `${prefix}a`), keyOn(cluster.config, m1!, `${prefix}b`)];
}

t.test('a WATCHed optimistic update raced by another client: EXEC returns null and the other write stands', async (t) => {
  const k = 'tx:race';
  await app.set(k, '10');
  const a = await rawTo(t, sidecarAddr());
  const b = sidecarClient(t, sidecar);
  t.same(await run(a, ['WATCH', k], ['GET', k]), ['OK', '10'], 'A watches and reads');
  t.equal(await b.set(k, '100'), 'OK', 'B writes the key between A\'s read and A\'s EXEC');
  t.same(await run(a, ['MULTI'], ['SET', k, '11'], ['EXEC']), ['OK', 'QUEUED', null], 'A\'s EXEC returns null');
  t.equal(await onOwner(k).get(k), '100', 'the owning node holds B\'s value, not A\'s');
  // the same client, unraced, commits (the watch ended with EXEC)
  t.same(await run(a, ['WATCH', k], ['GET', k], ['MULTI'], ['SET', k, '101'], ['EXEC']), ['OK', '100', 'OK', 'QUEUED', ['OK']], 'an unraced retry commits');
  t.equal(await onOwner(k).get(k), '101');
});

t.test('two clients incrementing one key with WATCH retry loops lose no update', async (t) => {
  const k = 'tx:counter';
  await app.set(k, '0');
  const clients = [sidecarClient(t, sidecar), sidecarClient(t, sidecar), sidecarClient(t, sidecar)];
  let conflicts = 0;
  const worker = async (c: Redis): Promise<void> => {
    for (let i = 0; i < 40; i++) {
      for (;;) {
        await c.watch(k);
        const v = Number(await c.get(k));
        const res = await c.multi().set(k, String(v + 1)).exec();
        if (res !== null) break;
        conflicts++;
      }
    }
  };
  await Promise.all(clients.map(worker));
  t.equal(await onOwner(k).get(k), '120', 'every increment applied exactly once');
  t.comment(`${conflicts} EXECs returned null and were retried`);
});

t.test('a transaction within a {tag} commits atomically on the owning node, in one EXEC', async (t) => {
  const keys = ['{acct:1}:a', '{acct:1}:b', '{acct:1}:log'];
  const owner = ownerOf(cluster.config, 'acct:1');
  await app.set(keys[0]!, '50');
  await app.set(keys[1]!, '0');
  const before = await Promise.all(cluster.seeds.map(async (m) => commandCalls(await direct.get(m)!.info('commandstats'))));
  const res = await app.multi().decrby(keys[0]!, 20).incrby(keys[1]!, 20).rpush(keys[2]!, 'moved 20').mget(keys[0]!, keys[1]!).exec();
  t.same(res, [[null, 30], [null, 20], [null, 1], [null, ['30', '20']]]);
  const after = await Promise.all(cluster.seeds.map(async (m) => commandCalls(await direct.get(m)!.info('commandstats'))));
  cluster.seeds.forEach((m, i) => {
    const execs = (after[i]!.exec ?? 0) - (before[i]!.exec ?? 0);
    t.equal(execs, m === owner ? 1 : 0, `${m === owner ? 'the owner' : 'another master'} (${m}) ran ${m === owner ? 'one EXEC' : 'no EXEC'}`);
  });
  const d = direct.get(owner)!;
  t.same(await d.mget(keys[0]!, keys[1]!), ['30', '20'], 'both balances on the owner');
  t.same(await d.lrange(keys[2]!, 0, -1), ['moved 20']);
});

t.test('a transaction mixing slots is refused: CROSSSLOT when queued, EXECABORT at EXEC, nothing applied', async (t) => {
  const [k1, k2] = twoNodes('tx:mix:');
  const c = await rawTo(t, sidecarAddr());
  const r = await run(c, ['MULTI'], ['SET', k1, 'x'], ['SET', k2, 'y'], ['INCR', k1], ['EXEC']);
  t.equal(r[0], 'OK');
  t.equal(r[1], 'QUEUED');
  t.match(r[2], /^ERR:CROSSSLOT/, 'the command for another slot is refused when queued');
  t.equal(r[3], 'QUEUED', 'later same-slot commands are still queued, as Redis does after an error');
  t.match(r[4], /^ERR:EXECABORT/, 'EXEC is refused');
  for (const m of cluster.seeds) {
    t.equal(await direct.get(m)!.exists(k1, k2), 0, `nothing of it is on ${m}`);
  }
  // same slot but different node is impossible; same node, different slot is still two slots
  const k3 = keyOn(cluster.config, ownerOf(cluster.config, k1), 'tx:mix:c', slotOf(k1));
  const r2 = await run(c, ['MULTI'], ['SET', k1, 'x'], ['SET', k3, 'y'], ['EXEC']);
  t.match(r2[2], /^ERR:CROSSSLOT/, 'two slots on one node are refused too');
  t.match(r2[3], /^ERR:EXECABORT/);
  t.equal(await onOwner(k1).exists(k1, k3), 0);
  // the connection is usable afterwards, and not stuck in MULTI
  t.same(await run(c, ['SET', k2, 'after'], ['GET', k2]), ['OK', 'after']);
  // a multi-key command spanning slots inside MULTI
  const r3 = await run(c, ['MULTI'], ['MSET', k1, '1', k2, '2'], ['EXEC']);
  t.match(r3[1], /^ERR:CROSSSLOT/);
  t.match(r3[2], /^ERR:EXECABORT/);
  t.equal(await onOwner(k1).exists(k1), 0);
});

t.test('ioredis multi() with a cross-slot command rejects with EXECABORT and applies nothing', async (t) => {
  const [k1, k2] = twoNodes('tx:io:');
  await t.rejects(app.multi().set(k1, '1').set(k2, '2').exec(), /EXECABORT/);
  for (const m of cluster.seeds) t.equal(await direct.get(m)!.exists(k1, k2), 0);
  t.equal(await app.ping(), 'PONG', 'the connection is usable afterwards');
});

/** Sends the same sequence to a redis-server and to the sidecar; the replies must be the same. */
async function sameAsRedis(t: Test, what: string, cmds: string[][], key: string): Promise<void> {
  const owner = ownerOf(cluster.config, key);
  await direct.get(owner)!.del(key);
  const viaNode = await run(await rawTo(t, owner), ...cmds);
  await direct.get(owner)!.del(key);
  const viaSidecar = await run(await rawTo(t, sidecarAddr()), ...cmds);
  t.same(viaSidecar, viaNode, what);
}

t.test('DISCARD, EXEC/DISCARD without MULTI, nested MULTI, WATCH inside MULTI answer as Redis does', async (t) => {
  const k = '{txe}:k';
  await sameAsRedis(t, 'DISCARD drops the queue', [['MULTI'], ['SET', k, '1'], ['DISCARD'], ['GET', k]], k);
  await sameAsRedis(t, 'EXEC without MULTI', [['EXEC'], ['PING']], k);
  await sameAsRedis(t, 'DISCARD without MULTI', [['DISCARD'], ['PING']], k);
  await sameAsRedis(t, 'nested MULTI is an error that does not abort', [['MULTI'], ['SET', k, '1'], ['MULTI'], ['INCR', k], ['EXEC'], ['GET', k]], k);
  await sameAsRedis(t, 'WATCH inside MULTI is an error that does not abort', [['MULTI'], ['WATCH', k], ['SET', k, '2'], ['EXEC'], ['GET', k]], k);
  await sameAsRedis(t, 'a wrong arity inside MULTI aborts EXEC', [['MULTI'], ['SET', k, '1'], ['GET'], ['EXEC'], ['GET', k]], k);
  await sameAsRedis(t, 'an unknown command inside MULTI aborts EXEC', [['MULTI'], ['SET', k, '1'], ['NOSUCHCMD', 'x'], ['EXEC'], ['GET', k]], k);
  await sameAsRedis(t, 'a runtime error inside EXEC is one reply among the others', [['SET', k, 'str'], ['MULTI'], ['INCR', k], ['APPEND', k, '!'], ['EXEC'], ['GET', k]], k);
  await sameAsRedis(t, 'an empty transaction', [['MULTI'], ['EXEC']], k);
  await sameAsRedis(t, 'a keyless command inside MULTI', [['MULTI'], ['PING'], ['SET', k, 'v'], ['ECHO', 'e'], ['EXEC']], k);
});

t.test('DISCARD and UNWATCH end the watch: a later write by another client no longer fails EXEC', async (t) => {
  const k = 'tx:unwatch';
  await app.set(k, 'a');
  const a = await rawTo(t, sidecarAddr());
  const b = sidecarClient(t, sidecar);
  t.same(await run(a, ['WATCH', k], ['MULTI'], ['SET', k, 'x'], ['DISCARD']), ['OK', 'OK', 'QUEUED', 'OK']);
  await b.set(k, 'b');
  t.same(await run(a, ['MULTI'], ['SET', k, 'from-a'], ['EXEC']), ['OK', 'QUEUED', ['OK']], 'after DISCARD');
  t.equal(await onOwner(k).get(k), 'from-a');
  t.same(await run(a, ['WATCH', k], ['UNWATCH']), ['OK', 'OK']);
  await b.set(k, 'b2');
  t.same(await run(a, ['MULTI'], ['SET', k, 'from-a2'], ['EXEC']), ['OK', 'QUEUED', ['OK']], 'after UNWATCH');
  t.equal(await onOwner(k).get(k), 'from-a2');
});

t.test('WATCH on one node then a transaction on keys of another slot is refused, and nothing applied', async (t) => {
  const [k1, k2] = twoNodes('tx:wx:');
  const a = await rawTo(t, sidecarAddr());
  const r = await run(a, ['WATCH', k1], ['MULTI'], ['SET', k2, 'v'], ['EXEC']);
  t.equal(r[0], 'OK');
  t.match(r[2], /^ERR:CROSSSLOT/);
  t.match(r[3], /^ERR:EXECABORT/);
  t.equal(await onOwner(k2).exists(k2), 0);
  t.match((await run(a, ['WATCH', k1, k2]))[0], /^ERR:CROSSSLOT/, 'WATCH of keys in two slots is refused');
});

t.test('RESET inside MULTI leaves the transaction: a new transaction on another slot commits', async (t) => {
  const [k1, k2] = twoNodes('tx:reset:');
  const a = await rawTo(t, sidecarAddr());
  t.same(await run(a, ['MULTI'], ['SET', k1, 'never'], ['RESET']), ['OK', 'QUEUED', 'RESET']);
  t.same(await run(a, ['EXEC']), ['ERR:ERR EXEC without MULTI'], 'no transaction after RESET');
  t.same(await run(a, ['MULTI'], ['SET', k2, 'v2'], ['EXEC']), ['OK', 'QUEUED', ['OK']], 'a transaction on another slot after RESET');
  t.equal(await onOwner(k1).exists(k1), 0, 'the reset transaction did not run');
  t.equal(await onOwner(k2).get(k2), 'v2');
});

t.test('RESET right after WATCH ends the watch: WATCH is answered OK and a later transaction commits', async (t) => {
  const [k1] = twoNodes('tx:reset2:');
  const a = await rawTo(t, sidecarAddr());
  t.same(await run(a, ['WATCH', k1], ['RESET']), ['OK', 'RESET']);
  await app.set(k1, 'other');
  t.same(await run(a, ['MULTI'], ['SET', k1, 'mine'], ['EXEC']), ['OK', 'QUEUED', ['OK']], 'the WATCH ended with RESET');
  t.equal(await onOwner(k1).get(k1), 'mine');
});

t.test('ioredis multi() pipelines: queued replies, pipelined transactions interleaved with plain commands', async (t) => {
  const k = '{iom}:';
  const r = await app.multi().set(`${k}a`, '1').incr(`${k}a`).lpush(`${k}l`, 'x', 'y').lrange(`${k}l`, 0, -1).exec();
  t.same(r, [[null, 'OK'], [null, 2], [null, 2], [null, ['y', 'x']]]);
  // multi without pipelining: each command is sent as it is called
  const solo = sidecarClient(t, sidecar);
  t.equal(await solo.multi({ pipeline: false }), 'OK');
  t.equal(await solo.set(`${k}b`, 'B'), 'QUEUED');
  t.equal(await solo.get(`${k}b`), 'QUEUED');
  t.same(await solo.exec(), [[null, 'OK'], [null, 'B']]);
  // many transactions on different tags in one pipeline, with plain commands between them
  const p = app.pipeline();
  for (let i = 0; i < 30; i++) {
    p.set(`plain:${i}`, String(i));
    p.call('MULTI').incr(`{pt${i}}:n`).incr(`{pt${i}}:n`).call('EXEC');
  }
  const res = (await p.exec())!;
  t.equal(res.filter(([e]) => e).length, 0, 'no errors in the pipeline');
  for (let i = 0; i < 30; i++) t.equal(await onOwner(`pt${i}`).get(`{pt${i}}:n`), '2', `{pt${i}} incremented twice on its owner`);
  // a WATCH that fails in ioredis gives null
  await app.watch(`${k}w`);
  await sidecarClient(t, sidecar).set(`${k}w`, 'changed');
  t.equal(await app.multi().set(`${k}w`, 'mine').exec(), null, 'EXEC null through ioredis');
  t.equal(await onOwner('iom').get(`${k}w`), 'changed');
  t.same(norm(await app.multi().get(`${k}w`).exec()), [[null, 'changed']]);
});

/**
 * Durable mode (`durability: "replica"`, src/proxy/durability.ts): a write is acknowledged only
 * once the replica of its master holds it, through one WAIT per flushed batch; with the replica
 * stopped, writes are refused with NOREPLICAS (reads go on), and in the default mode the same
 * stopped replica changes nothing.
 */
import t from 'tap';
import { startCluster, directClient } from '../helpers/cluster';
import { startSidecar, sidecarClient } from '../proxy/helpers';
import { commandCalls } from '../failover/load';
import { keyOn } from '../helpers/sidecar';
import { setLogSink } from '../../src/observe/log';
import { isWriteCommand } from '../../src/proxy/durability';
import { resp } from './helpers';

setLogSink(() => {});

t.test('the commands whose replies are held are the writes, transactions and scripts', async (t) => {
  const w = (...a: string[]): boolean => {
    const b = resp(...a);
    return isWriteCommand(b, 0, b.length);
  };
  t.ok(w('SET', 'k', 'v'));
  t.ok(w('set', 'k', 'v'), 'in any case');
  t.ok(w('LPUSH', 'l', 'x'));
  t.ok(w('EXPIRE', 'k', '10'));
  t.ok(w('MULTI'));
  t.ok(w('EXEC'));
  t.ok(w('EVAL', 'return 1', '0'));
  t.ok(w('FCALL', 'f', '0'));
  t.notOk(w('GET', 'k'));
  t.notOk(w('EVAL_RO', 'return 1', '0'));
  t.notOk(w('PUBLISH', 'c', 'm'));
  t.notOk(w('SUBSCRIBE', 'c'));
  t.notOk(w('PING'));
});

t.test('durability "replica": acknowledged writes are on the replica; a stopped replica turns writes into NOREPLICAS', async (t) => {
  const c = await startCluster(t, { masters: 1, replicasPerMaster: 1, durability: 'replica' });
  t.equal(c.config.durability, 'replica', 'the configuration says so');
  const s = await startSidecar(t, c);
  const app = sidecarClient(t, s);
  const shard = c.shards[0]!;
  const master = directClient(t, shard.master.address);
  const replica = directClient(t, shard.replicas[0]!.address);
  const k = keyOn(c.config, shard.master.address, 'dur:');

  const waitsBefore = await commandCalls(master, 'wait');
  t.equal(await app.set(k, 'v1'), 'OK');
  t.equal(await replica.get(k), 'v1', 'the replica holds the write as soon as it is acknowledged');

  // a pipeline of 500 writes: every one acknowledged, far fewer WAITs than writes
  const p = app.pipeline();
  for (let i = 0; i < 500; i++) p.set(`${k}:${i}`, String(i));
  const res = await p.exec();
  t.ok(res!.every(([e, v]) => e === null && v === 'OK'), 'a pipeline of 500 SETs: all OK');
  t.equal(await replica.get(`${k}:499`), '499', 'the last is on the replica');
  const waits = (await commandCalls(master, 'wait')) - waitsBefore;
  t.ok(waits >= 2 && waits < 100, `one WAIT per batch, not per write (${waits} WAITs for 501 writes)`);
  t.equal(await app.get(k), 'v1', 'reads answer as usual');

  shard.replicas[0]!.pause();
  try {
    const err = await app.set(k, 'v2').then(() => null, (e: Error) => e.message);
    t.match(err, /^NOREPLICAS ringside: the write ran on .*no replica confirmed it within \d+ ms/, 'a write no replica confirms is refused');
    t.equal(await app.get(k), 'v2', 'it ran on the master (an unknown outcome for the app, never a success)');
    t.equal(await app.get('dur:other-read'), null, 'reads are not held');
    const tx = await app.multi().set(k, 'v3').get(k).exec().then((r) => r, (e: Error) => e);
    t.ok(tx instanceof Error || (tx as Array<[Error | null, unknown]>).some(([e]) => e !== null), 'a transaction gets no success either');
    const script = await app.eval("return redis.call('SET', KEYS[1], 'v4')", 1, k).then(() => null, (e: Error) => e.message);
    t.match(script, /^NOREPLICAS/, 'nor does a script');
  } finally {
    shard.replicas[0]!.resume();
  }
  t.equal(await app.set(k, 'v5'), 'OK', 'the replica back: writes are acknowledged again');
  t.equal(await replica.get(k), 'v5');
});

t.test('durability "async" (the default): a stopped replica changes nothing, and no WAIT is sent', async (t) => {
  const c = await startCluster(t, { masters: 1, replicasPerMaster: 1 });
  t.equal(c.config.durability, 'async');
  const s = await startSidecar(t, c);
  const app = sidecarClient(t, s);
  const shard = c.shards[0]!;
  const master = directClient(t, shard.master.address);
  const k = keyOn(c.config, shard.master.address, 'dur:');
  const waitsBefore = await commandCalls(master, 'wait'); // create's own, if any
  shard.replicas[0]!.pause();
  try {
    t.equal(await app.set(k, 'v'), 'OK', 'acknowledged by the master alone');
  } finally {
    shard.replicas[0]!.resume();
  }
  t.equal(await commandCalls(master, 'wait'), waitsBefore, 'no WAIT');
});

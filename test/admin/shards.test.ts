/**
 * add-shard, rebalance and remove-shard (issue 24) under a steady write load through two
 * sidecars: the cluster grows 3 → 4 → 5 shards and shrinks back to 3, and afterwards every
 * acknowledged write is read back from the final masters, each key on the master that owns its
 * slot only (test/failover/history.ts). Bad requests are refused before anything is touched.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setLogSink } from '../../src/observe/log';
import { RedisProcess } from '../../src/embedded/redis-process';
import { SlotTable } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import { readCopy } from '../../src/cluster/store';
import { addShard, rebalance, removeShard } from '../../src/admin/shards';
import { slotsByNode } from '../../src/admin/rebalance-plan';
import { startCluster } from '../failover/servers';
import { checkHistory, summary } from '../failover/history';
import { BIN, ROOT, WriteLoad, finalMasters, inProcessSidecar, logEvents, readBack, roleOf, sleep, waitFor } from '../failover/load';

setLogSink(() => {});
const run = promisify(execFile);
const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };
const errorOf = async (p: Promise<unknown>): Promise<string> => p.then(() => 'no error', (e: Error) => e.message);
const counts = (c: Parameters<typeof slotsByNode>[0]): Record<string, number> => Object.fromEntries([...slotsByNode(c)].map(([n, s]) => [n, s.length]));

t.test('grow 3 → 4 → 5 shards with rebalance and shrink back to 3 under load: no acknowledged write lost, every key on its owner', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing });
  const spare = async (): Promise<RedisProcess> => {
    const p = await RedisProcess.start({});
    t.teardown(() => p.stop({ removeDir: true }));
    return p;
  };
  const [m4, r4, m5, busy] = [await spare(), await spare(), await spare(), await spare()];
  const seeds = c.seeds.split(',');
  const sidecars = [await inProcessSidecar(t, c, '1'), await inProcessSidecar(t, c, '2')];
  const load = new WriteLoad(sidecars, c.config, { perSidecar: 2, pauseMs: 2 });
  load.start();
  await waitFor('writes acknowledged', () => load.history.filter((w) => w.outcome === 'ok').length > 200);

  // refusals: nothing touched
  t.match(await errorOf(addShard({ seeds, master: c.shards[0]!.master.address })), /already in the configuration \(node a\)/, 'a member already');
  await c.client(busy.address).set('x', '1');
  t.match(await errorOf(addShard({ seeds, master: busy.address })), /must be empty/, 'a master with keys');
  t.match(await errorOf(removeShard({ seeds, node: 'zz' })), /no node "zz"/, 'an unknown node');
  t.match(await errorOf(rebalance({ seeds, weights: { zz: 1 } })), /unknown node "zz"/, 'a weight for an unknown node');

  // 3 → 4, from the CLI: add-shard, then a dry run, then rebalance
  const added = await run(process.execPath, [BIN, 'add-shard', '--master', m4.address, '--replicas', r4.address, '--seeds', c.seeds], { cwd: ROOT });
  t.match(added.stdout, /node d added: master 127\.0\.0\.1:\d+, replicas 127\.0\.0\.1:\d+, no slots yet/, 'ringside add-shard');
  t.match(await c.client(r4.address).info('replication'), /master_link_status:up/, 'its replica follows it');
  const dry = await run(process.execPath, [BIN, 'rebalance', '--dry-run', '--seeds', c.seeds], { cwd: ROOT });
  t.match(dry.stdout, /d: 0 → 256 slots/, 'the dry run prints the plan');
  const epochBefore = (await finalMasters(c)).config.epoch;
  t.equal((await finalMasters(c)).config.epoch, epochBefore, 'and changes nothing');
  const reb = await run(process.execPath, [BIN, 'rebalance', '--seeds', c.seeds], { cwd: ROOT, maxBuffer: 16 << 20 });
  t.match(reb.stdout, /256 slot\(s\) to move/);
  t.same(Object.values(counts((await finalMasters(c)).config)), [256, 256, 256, 256], '4 shards of 256 slots');

  // 4 → 5, through the library, with weights
  const { node: e } = await addShard({ seeds, master: m5.address });
  t.equal(e, 'e');
  await rebalance({ seeds, weights: { e: 2 } });
  const five = counts((await finalMasters(c)).config);
  t.same(five, { a: 171, b: 171, c: 171, d: 170, e: 341 }, 'e holds twice the others (weights e=2; 1024 × 2/6 = 341.3)');

  // back to 3
  await removeShard({ seeds, node: 'e' });
  await removeShard({ seeds, node: 'd' });
  await rebalance({ seeds });
  await sleep(3 * timing.leaseMs); // more load on the final layout
  await load.stop();

  const { config, masters } = await finalMasters(c);
  t.same(Object.keys(config.nodes).sort(), ['a', 'b', 'c'], 'three shards again');
  t.same(Object.values(counts(config)).sort(), [341, 341, 342], 'even');
  t.same(config.migrating, {}, 'no slot left migrating');
  const table = SlotTable.from(config);
  const found = await readBack(c, [...masters, m4.address, m5.address], load.history.map((w) => w.key));
  const v = checkHistory({ writes: load.history, found, ownerOf: (k) => config.nodes[table.nodeOf(slotOf(k))]!.master });
  t.same(v.violations, [], 'every acknowledged write read back, each key only on the master that owns its slot (the removed masters hold none)');
  t.ok(v.acked > 1000, `a steady load (${v.acked} acknowledged writes)`);
  t.comment(summary(v));
  t.comment(`errors seen by the writers: ${JSON.stringify(load.errorKinds())}`);
  const events = await logEvents(c, masters, ['shard-added', 'shard-removed', 'rebalanced']);
  const kinds = events.map((x) => String(x.event));
  t.same(kinds.filter((k) => k !== 'rebalanced').sort(), ['shard-added', 'shard-added', 'shard-removed', 'shard-removed'], 'every step in ringside log');
  t.ok(kinds.filter((k) => k === 'rebalanced').length >= 2, 'and each rebalance that moved slots (the last may find the drained layout even)');
  t.equal((await roleOf(c.client(m4.address))).role, 'master', 'the removed servers are left running');
  t.equal((await roleOf(c.client(r4.address))).role, 'slave', 'untouched (the replica still follows)');
  const stale = await readCopy(c.client(m4.address), m4.address);
  t.ok(stale.ok && stale.config.epoch < config.epoch, 'holding an older configuration, which no sidecar prefers');
  for (const s of sidecars) t.equal(s.sidecar!.stats.epoch, config.epoch, `sidecar ${s.name} routes on the final configuration`);
});

/**
 * kill -9 of a master while three real sidecars (two in this process, one `ringside serve` child
 * process) carry a steady write load: one election, the replica promoted, writes to the dead
 * master's slots resume, and the whole write history checks out (history.ts).
 */
import t from 'tap';
import { setLogSink } from '../../src/observe/log';
import { SlotTable } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import { startCluster } from './servers';
import { checkHistory, summary } from './history';
import {
  WriteLoad,
  allAddresses,
  childSidecar,
  commandCalls,
  finalMasters,
  inProcessSidecar,
  logEvents,
  now,
  readBack,
  roleOf,
  sleep,
  waitFor,
} from './load';

setLogSink(() => {});

const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };

t.test('kill -9 a master under load from three sidecars: one election, writes resume, the history checks out', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const victim = c.shards[0]!;
  const from = victim.master.address;
  const to = victim.replicas[0]!.address;
  const node = Object.keys(c.config.nodes).find((n) => c.config.nodes[n]!.master === from)!;
  const sidecars = [await inProcessSidecar(t, c, '1'), await inProcessSidecar(t, c, '2'), await childSidecar(t, c, '3')];
  const promotionsBefore = (await commandCalls(c.client(to), 'replicaof')) + (await commandCalls(c.client(to), 'slaveof'));

  const load = new WriteLoad(sidecars, c.config, { perSidecar: 3, pauseMs: 1 });
  load.start();
  await waitFor('every writer to have writes acknowledged on every shard', () =>
    Object.keys(c.config.nodes).every((n) => load.allResumed(n, 0)),
  );
  await sleep(500);

  const killAt = now();
  await victim.master.kill('SIGKILL');
  t.comment(`killed master ${from} of node ${node}`);
  await waitFor('a failover event in the log', async () => (await logEvents(c, allAddresses(c), ['failover'])).length > 0);
  await waitFor(`every writer to resume on node ${node}`, () => load.allResumed(node, killAt));
  const resumed = load.resumeTimes(node, killAt)!;
  // a little more load after the switch, and time for a second election to show up if there were one
  await sleep(3 * timing.leaseMs);
  await load.stop();

  // one election, one promotion
  const events = await logEvents(c, allAddresses(c), ['failover', 'failover-rolled-back']);
  t.equal(events.filter((e) => e.event === 'failover').length, 1, 'exactly one failover event in __cluster__:log');
  t.equal(events.filter((e) => e.event === 'failover-rolled-back').length, 0, 'no roll-back');
  const ev = events.find((e) => e.event === 'failover')!;
  t.match(ev, { node, from, to }, 'the event names the switch');
  const promotions = (await commandCalls(c.client(to), 'replicaof')) + (await commandCalls(c.client(to), 'slaveof')) - promotionsBefore;
  t.equal(promotions, 1, 'the replica got exactly one REPLICAOF (NO ONE)');
  t.equal((await roleOf(c.client(to))).role, 'master', 'the replica is a master');
  const { config, masters } = await finalMasters(c);
  t.equal(config.nodes[node]!.master, to, 'the configuration names it');
  t.ok(config.nodes[node]!.replicas.includes(from), 'and lists the old master among its replicas');
  t.equal(config.switching, null, 'no switch left under way');
  const led = sidecars.map((s) => s.sidecar?.agent?.status().electionsCompleted ?? 0);
  t.ok(led.reduce((a, b) => a + b, 0) <= 1, `at most one in-process sidecar completed an election (${led.join(', ')})`);

  // the history
  const hintAt = (ev.time as number) - (ev.durationMs as number);
  const found = await readBack(c, masters, load.history.map((w) => w.key));
  const table = SlotTable.from(config);
  const ownerOf = (k: string): string => config.nodes[table.nodeOf(slotOf(k))]!.master;
  const v = checkHistory({ writes: load.history, found, ownerOf, failure: { shard: node, at: killAt, hintAt } });
  t.same(v.violations, [], 'the write history checks out');
  t.ok(v.acked > 1000, `a steady load (${v.acked} acknowledged writes)`);

  t.comment(`kill → hint ${(hintAt - killAt).toFixed(0)} ms, → every writer resumed on node ${node}: first ${resumed.first.toFixed(0)} ms, all ${resumed.all.toFixed(0)} ms; switch took ${ev.durationMs} ms`);
  t.comment(summary(v));
  t.comment(`errors seen by the writers: ${JSON.stringify(load.errorKinds())}`);
});

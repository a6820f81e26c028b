/**
 * Manual mode with three sidecars under load (one a `ringside serve` child): after a kill -9 the
 * sidecars report and vote but nobody elects; `ringside failover <node>` completes the switch and
 * the sidecars route the dead master's slots to the new master.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { SlotTable, votesKey } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import { setLogSink } from '../../src/observe/log';
import { startCluster } from './servers';
import { checkHistory, summary } from './history';
import {
  BIN,
  ROOT,
  WriteLoad,
  allAddresses,
  childSidecar,
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

function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

t.test('manual mode: no election after a kill; `ringside failover` completes it and the sidecars follow', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, failover: 'manual' });
  const victim = c.shards[2]!;
  const from = victim.master.address;
  const to = victim.replicas[0]!.address;
  const node = Object.keys(c.config.nodes).find((n) => c.config.nodes[n]!.master === from)!;
  const sidecars = [await inProcessSidecar(t, c, 'm1'), await inProcessSidecar(t, c, 'm2'), await childSidecar(t, c, 'm3')];
  const load = new WriteLoad(sidecars, c.config, { perSidecar: 1, pauseMs: 2 });
  load.start();
  await waitFor('writes acknowledged on every shard', () => Object.keys(c.config.nodes).every((n) => load.allResumed(n, 0)));

  const killAt = now();
  await victim.master.kill('SIGKILL');
  const others = c.shards.filter((s) => s !== victim).map((s) => s.master.address);
  await waitFor('all three sidecars to vote', async () => Object.keys(await c.client(others[0]!).hgetall(votesKey(node))).length === 3);
  // well past the point where auto mode would have switched
  await sleep(timing.downAfterMs + 2 * (timing.leaseMs + 500));
  t.same(await logEvents(c, allAddresses(c), ['failover']), [], 'no election in manual mode');
  t.equal((await roleOf(c.client(to))).role, 'slave', 'the replica is still a replica');
  t.equal((await finalMasters(c)).config.epoch, c.config.epoch, 'configuration unchanged');
  t.notOk(load.allResumed(node, killAt + 1), `writes to node ${node} do not resume by themselves`);
  const st = sidecars[0]!.sidecar!.agent!.status().nodes.find((n) => n.node === node)!;
  t.equal(st.reason, 'manual fail-over mode', 'the agent says why');

  const cliAt = now();
  const r = await cli(['failover', node, '--seeds', others.join(','), '--yes']);
  t.equal(r.code, 0, 'ringside failover exits 0');
  t.match(r.out, new RegExp(`node ${node} is now served by ${to.replace(/\./g, '\\.')}`), 'and says what it did');
  t.match(r.out, /lock .*\n(.|\n)*hint (.|\n)*wait (.|\n)*promote (.|\n)*final /, 'with its steps');
  await waitFor(`every writer to resume on node ${node}`, () => load.allResumed(node, cliAt));
  const resumed = load.resumeTimes(node, cliAt)!;
  await sleep(500);
  await load.stop();

  // the writes after the switch landed on the new master
  const after = load.history.filter((w) => w.shard === node && w.outcome === 'ok' && w.sentAt > cliAt);
  t.ok(after.length > 0);
  t.equal(await c.client(to).get(after[after.length - 1]!.key), after[after.length - 1]!.value, 'the last write is on the new master');
  const events = await logEvents(c, allAddresses(c), ['failover']);
  t.equal(events.length, 1, 'one failover event');
  t.match(events[0], { node, from, to, reason: 'manual' });
  const { config, masters } = await finalMasters(c);
  t.equal(config.nodes[node]!.master, to);
  const table = SlotTable.from(config);
  const ev = events[0]!;
  const v = checkHistory({
    writes: load.history,
    found: await readBack(c, masters, load.history.map((w) => w.key)),
    ownerOf: (k) => config.nodes[table.nodeOf(slotOf(k))]!.master,
    failure: { shard: node, at: killAt, hintAt: (ev.time as number) - (ev.durationMs as number) },
  });
  t.same(v.violations, [], 'the write history checks out');
  t.comment(`ringside failover → every writer resumed: first ${resumed.first.toFixed(0)} ms, all ${resumed.all.toFixed(0)} ms`);
  t.comment(summary(v));
});

/**
 * Several sidecars racing to lead the election for the same dead master: they all see the votes
 * at about the same time and go for the lock; one election, one promotion.
 */
import t from 'tap';
import { setLogSink } from '../../src/observe/log';
import type { Sidecar } from '../../src/proxy/sidecar';
import { startCluster } from './servers';
import { allAddresses, commandCalls, finalMasters, inProcessSidecar, logEvents, roleOf, sleep, waitFor } from './load';

/** Lock attempts seen in the in-process sidecars' logs: [held, needed] per attempt. */
const attempts: Array<{ held: number; needed: number }> = [];
setLogSink((line) => {
  if (!line.includes('"failover-step"') || !line.includes('"step":"lock"')) return;
  const m = /held on (\d+) of \d+ masters \((\d+) needed\)/.exec(line);
  if (m) attempts.push({ held: Number(m[1]), needed: Number(m[2]) });
});

const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };

t.test('five sidecars race to lead: one election, one promotion', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const victim = c.shards[1]!;
  const from = victim.master.address;
  const to = victim.replicas[0]!.address;
  const node = Object.keys(c.config.nodes).find((n) => c.config.nodes[n]!.master === from)!;
  const sidecars: Sidecar[] = [];
  for (let i = 1; i <= 5; i++) sidecars.push((await inProcessSidecar(t, c, `r${i}`)).sidecar!);
  await waitFor('every sidecar to be counted live', async () => (await c.client(c.shards[0]!.master.address).zcard('__cluster__:sidecars')) >= 5);
  const promotionsBefore = await commandCalls(c.client(to), 'replicaof');

  await victim.master.kill('SIGKILL');
  await waitFor('a failover event', async () => (await logEvents(c, allAddresses(c), ['failover'])).length > 0);
  await waitFor('every sidecar to see the new master', () => sidecars.every((s) => s.view.routing?.config.nodes[node]?.master === to));
  // time for a late second leader to show itself
  await sleep(4 * timing.leaseMs);

  const events = await logEvents(c, allAddresses(c), ['failover', 'failover-rolled-back']);
  t.equal(events.filter((e) => e.event === 'failover').length, 1, 'one failover event');
  t.equal(events.filter((e) => e.event === 'failover-rolled-back').length, 0, 'no roll-back');
  t.equal((await commandCalls(c.client(to), 'replicaof')) - promotionsBefore, 1, 'one REPLICAOF on the replica');
  t.equal((await roleOf(c.client(to))).role, 'master');
  const completed = sidecars.map((s) => s.stats.electionsCompleted);
  t.equal(completed.reduce((x, y) => x + y, 0), 1, `one sidecar completed the election (${completed.join(', ')})`);
  const won = attempts.filter((a) => a.held >= a.needed).length;
  t.ok(attempts.length >= 2, `a race: ${attempts.length} attempts at the lock`);
  t.ok(won >= 1, `${won} took it (a later one finds the switch done and does nothing)`);
  const { config } = await finalMasters(c);
  t.equal(config.nodes[node]!.master, to);
  t.comment(
    `lock attempts: ${attempts.length} (won ${won}: the winner, and any later leader that found the switch done), ` +
      `elections led per sidecar: ${sidecars.map((s) => s.stats.electionsLed).join(', ')}`,
  );
});

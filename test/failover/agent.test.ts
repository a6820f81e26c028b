import t from 'tap';
import type Redis from 'ioredis';
import { ClusterConfig, ERRORS_KEY, LOG_KEY, SIDECARS_KEY, masters as mastersOf, votesKey } from '../../src/cluster/config';
import { controlClient, newest, readCopy } from '../../src/cluster/store';
import { Stats } from '../../src/observe/stats';
import { setLogSink } from '../../src/observe/log';
import { FailoverAgent } from '../../src/failover/agent';
import { parseReplication } from '../../src/failover/ops';
import { Cluster, startCluster } from './servers';
import type { Teardown } from '../helpers/cluster';
import { freePort } from '../../src/embedded/redis-process';

setLogSink(() => {});

const timing = { checkMs: 200, leaseMs: 500, downAfterMs: 400 };

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A stand-in for the sidecar's configuration lifecycle: re-reads the newest copy every 100 ms. */
class ConfigPoller {
  config: ClusterConfig;
  #timer: NodeJS.Timeout;
  constructor(
    c: Cluster,
    client: (a: string) => Redis,
  ) {
    this.config = c.config;
    this.#timer = setInterval(async () => {
      const addrs = new Set([...mastersOf(this.config), ...c.shards.flatMap((s) => [s.master.address, ...s.replicas.map((r) => r.address)])]);
      const copies = await Promise.all([...addrs].map((a) => readCopy(client(a), a)));
      const best = newest(copies);
      if (best && best.config.epoch > this.config.epoch) this.config = best.config;
    }, 100);
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

interface Agents {
  agents: FailoverAgent[];
  stats: Stats[];
  poller: ConfigPoller;
}

async function startAgents(
  t: Teardown,
  c: Cluster,
  n: number,
  opts: { clientFor?: (i: number) => (a: string) => Redis; checkIn?: boolean } = {},
): Promise<Agents> {
  const poller = new ConfigPoller(c, c.client);
  const stats = Array.from({ length: n }, () => new Stats());
  const agents = stats.map(
    (s, i) =>
      new FailoverAgent({
        id: `sc${i}`,
        addr: `127.0.0.1:${7000 + i}`,
        stats: s,
        getConfig: () => poller.config,
        client: opts.clientFor?.(i) ?? c.client,
        switchOptions: { marginMs: 100, callTimeoutMs: 500 },
        demoteEveryMs: 200,
      }),
  );
  if (opts.checkIn !== false)
    for (const m of c.masters().values()) for (let i = 0; i < n; i++) await m.zadd(SIDECARS_KEY, Date.now() + 3_600_000, `sc${i}`);
  for (const a of agents) a.start();
  t.teardown(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    poller.stop();
  });
  // with fewer sidecars than seats, each takes a seat of every node: all of them probe everything
  if (!opts.clientFor) await waitFor('every agent to hold a seat of every node', () => agents.every((a) => a.status().probing.length === Object.keys(c.config.nodes).length));
  return { agents, stats, poller };
}

const sum = (stats: Stats[], k: 'votesCast' | 'electionsLed' | 'electionsCompleted' | 'errorReportsSent'): number =>
  stats.reduce((s, x) => s + x[k], 0);

async function role(c: Cluster, a: string) {
  return parseReplication(await c.client(a).info('replication'));
}

t.test('a node error is reported on every other master, once per interval', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const stats = new Stats();
  const config = c.config;
  const agent = new FailoverAgent({ id: 'side-1', addr: '127.0.0.1:1', stats, getConfig: () => config, client: c.client, now: () => 1_700_000_000_123 });
  const a = c.shards[0]!.master.address;
  agent.nodeError(a, 'connection refused');
  agent.nodeError(a, 'connection refused');
  agent.nodeError(c.shards[0]!.replicas[0]!.address, 'timeout');
  await waitFor('the report', () => stats.errorReportsSent === 1);
  for (const s of c.shards.slice(1)) t.same(await c.client(s.master.address).lrange(ERRORS_KEY, 0, -1), ['a:1700000000:side-1']);
  t.same(await c.client(a).lrange(ERRORS_KEY, 0, -1), [], 'not on the failed node itself');
  t.equal(stats.errorReportsSent, 1, 'rate-limited, and a replica is not reported');
});

t.test('kill -9 a master under three agents: one election, the replica promoted, the old master back as a replica', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const a = c.shards[0]!;
  await c.client(a.master.address).set('k', 'v');
  await waitFor('replication', async () => (await c.client(a.replicas[0]!.address).get('k')) === 'v');
  const { stats, agents, poller } = await startAgents(t, c, 3);
  await waitFor('a first round', () => agents.every((x) => x.status().lastRoundAt > 0));
  t.equal(sum(stats, 'votesCast'), 0, 'no vote while everything is up');
  await a.master.kill('SIGKILL');
  await waitFor('the switch', () => poller.config.nodes.a!.master === a.replicas[0]!.address);
  await waitFor('the leader to finish', () => sum(stats, 'electionsCompleted') === 1);
  t.ok(sum(stats, 'votesCast') >= 2, 'a majority voted');
  t.ok(sum(stats, 'errorReportsSent') >= 1, 'the failure was reported');
  t.equal(poller.config.epoch, c.config.epoch + 2);
  const newMaster = a.replicas[0]!.address;
  t.equal((await role(c, newMaster)).role, 'master');
  t.equal(await c.client(newMaster).get('k'), 'v');
  const log = (await c.client(newMaster).lrange(LOG_KEY, 0, -1)).map((e) => JSON.parse(e) as { event: string; by: string });
  t.equal(log.filter((e) => e.event === 'failover').length, 1, 'one failover');
  t.match(log.find((e) => e.event === 'failover')!.by, /^sc\d$/);
  t.equal(await c.client(newMaster).exists(votesKey('a')), 0, 'votes cleared');

  // the old master comes back empty, as a master: the agents make it a replica of the new one
  await a.master.restart();
  await waitFor('the demotion', async () => {
    try {
      const r = await role(c, a.master.address);
      return r.role === 'slave' && r.masterAddress === newMaster;
    } catch {
      return false;
    }
  });
  await waitFor('the old master to sync', async () => (await c.client(a.master.address).get('k')) === 'v');
  t.ok(agents.some((x) => x.status().demotions > 0));
  // a while later: still one election
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(sum(stats, 'electionsCompleted'), 1, 'no second election');
});

t.test('manual mode: agents report and vote but start nothing', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, failover: 'manual' });
  const { stats, agents } = await startAgents(t, c, 3);
  await c.shards[1]!.master.kill('SIGKILL');
  await waitFor('votes', () => sum(stats, 'votesCast') === 3);
  const votes = await c.client(c.shards[0]!.master.address).hgetall(votesKey('b'));
  t.same(Object.keys(votes).filter((f) => !f.endsWith(':suspect')).sort(), ['sc0', 'sc1', 'sc2'], 'every agent voted (beside its earlier suspicion)');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(sum(stats, 'electionsLed'), 0);
  t.equal((await role(c, c.shards[1]!.replicas[0]!.address)).role, 'slave', 'nothing promoted');
  t.ok(agents.every((x) => x.status().nodes.find((n) => n.node === 'b')!.reason === 'manual fail-over mode'));
});

t.test('a sidecar cut off from the majority of masters neither votes nor leads', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, failover: 'manual' });
  const deadPort = await freePort();
  const blackhole = new Map<string, Redis>();
  t.teardown(() => blackhole.forEach((x) => x.disconnect()));
  const visible = c.shards[0]!.master.address;
  // sc0 sees only master a (the others look dead to it); sc1 and sc2 see everything
  const { stats, agents } = await startAgents(t, c, 3, {
    clientFor: (i) =>
      i === 0
        ? (addr) => {
            if (addr === visible) return c.client(addr);
            let x = blackhole.get(addr);
            if (!x) blackhole.set(addr, (x = controlClient(`127.0.0.1:${deadPort}`, { connectTimeoutMs: 200, commandTimeoutMs: 300 })));
            return x;
          }
        : c.client,
  });
  await waitFor('a first round', () => agents.every((x) => x.status().lastRoundAt > 0));
  // a real failure of b: sc1 and sc2 vote for it, sc0 (which "sees" b and c down) does not
  await c.shards[1]!.master.kill('SIGKILL');
  await waitFor('votes of the connected sidecars', () => stats[1]!.votesCast >= 1 && stats[2]!.votesCast >= 1);
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(stats[0]!.votesCast, 0, 'the partitioned sidecar never voted');
  t.equal(stats[0]!.electionsLed, 0);
  t.equal(agents[0]!.status().mastersReached, 1);
  t.same(agents[0]!.status().probing, [], 'it took no probe seat: a minority\'s reading decides nothing');
  t.same(agents[1]!.status().probing, ['a', 'b', 'c'], 'the others probe every master');
});

t.test('a master paused for less than downAfterMs gets no vote', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing: { checkMs: 1000, leaseMs: 4000, downAfterMs: 3000 } });
  const { stats, agents } = await startAgents(t, c, 3);
  await waitFor('a first round', () => agents.every((x) => x.status().lastRoundAt > 0));
  const m = c.shards[2]!.master;
  m.pause();
  await waitFor('the agents to suspect it', () => agents.every((x) => x.status().nodes.find((n) => n.node === 'c')!.phase === 'suspect'));
  m.resume();
  await waitFor('the agents to see it again', () => agents.every((x) => x.status().nodes.find((n) => n.node === 'c')!.phase === 'up'));
  t.equal(sum(stats, 'votesCast'), 0);
  t.equal(sum(stats, 'electionsLed'), 0);
});

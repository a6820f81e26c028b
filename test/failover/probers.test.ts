/**
 * Probers (issue 25): with more sidecars than seats, only a few sidecars probe each master and
 * vote on it. Real control planes (createControlPlane: the ClusterView and FailoverAgent a
 * sidecar runs) in front of a real cluster. The changed protocol still elects exactly once with
 * many sidecars racing, takes its votes only from a node's probers, keeps every sidecar's lease
 * honest when only some of them probe, and survives the death of the sidecars probing a master.
 */
import t from 'tap';
import { LOG_KEY, PROBE_SEATS, probeSeatKey } from '../../src/cluster/config';
import { Stats } from '../../src/observe/stats';
import { setLogSink } from '../../src/observe/log';
import { ControlPlane, createControlPlane } from '../../src/failover/control-plane';
import { Cluster, startCluster } from './servers';
import { Teardown, directClient, startCluster as startLocal } from '../helpers/cluster';
import { startSidecar } from '../proxy/helpers';

const timing = { checkMs: 200, leaseMs: 500, downAfterMs: 400 };

interface Event {
  at: number;
  event: string;
  step?: string;
  node?: string;
}
const events: Event[] = [];
setLogSink((line) => {
  const o = JSON.parse(line) as Event & { time: string };
  if (o.event.startsWith('failover') || o.event.startsWith('probe-seat')) events.push({ at: Date.now(), event: o.event, step: o.step, node: o.node });
});

async function waitFor(what: string, fn: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Plane extends ControlPlane {
  id: string;
  stopped: boolean;
}

async function startPlanes(t: Teardown, c: Cluster, n: number): Promise<Plane[]> {
  const seeds = c.shards.map((s) => s.master.address);
  const planes: Plane[] = Array.from({ length: n }, (_, i) => {
    const id = `sc${String(i).padStart(2, '0')}`;
    return { ...createControlPlane({ view: { seeds, id, addr: `127.0.0.1:${9000 + i}`, stats: new Stats() } }), id, stopped: false };
  });
  for (const p of planes) {
    p.view.startInBackground();
    p.agent!.start();
  }
  t.teardown(async () => {
    await Promise.all(planes.filter((p) => !p.stopped).map(async (p) => (p.view.stop(), await p.agent!.stop())));
  });
  await waitFor('every plane routing', () => planes.every((p) => p.view.leaseError() === null));
  return planes;
}

const probersOf = (planes: Plane[], node: string): Plane[] => planes.filter((p) => !p.stopped && p.agent!.status().probing.includes(node));

async function seatsFilled(c: Cluster, planes: Plane[]): Promise<boolean> {
  const m = c.client(c.shards[0]!.master.address);
  for (const node of Object.keys(c.config.nodes)) {
    const held = (await m.mget(Array.from({ length: PROBE_SEATS }, (_, i) => probeSeatKey(node, i)))).filter(Boolean);
    if (held.length < PROBE_SEATS || probersOf(planes, node).length < PROBE_SEATS) return false;
  }
  return true;
}

t.test('twenty sidecars: five probe each master, a kill -9 gets one election, voted by probers only', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const planes = await startPlanes(t, c, 20);
  await waitFor('every seat taken', () => seatsFilled(c, planes));
  // seats taken while few sidecars had checked in go back, one per tick, to the seatless
  await waitFor('seats spread, one per sidecar', async () => planes.every((p) => p.agent!.status().probing.length <= 1) && (await seatsFilled(c, planes)));
  for (const node of ['a', 'b', 'c']) {
    const probers = probersOf(planes, node);
    t.equal(probers.length, PROBE_SEATS, `node ${node}: ${PROBE_SEATS} probers`);
  }
  t.ok(planes.some((p) => p.agent!.status().probing.length === 0), 'most sidecars probe nothing');
  t.ok(planes.every((p) => p.agent!.status().probing.length <= 1), 'with 20 sidecars for 15 seats, nobody holds two');

  const probersA = new Set(probersOf(planes, 'a').map((p) => p.id));
  const before = events.length;
  await c.shards[0]!.master.kill('SIGKILL');
  const heir = c.shards[0]!.replicas[0]!.address;
  await waitFor('every plane routing to the new master', () => planes.every((p) => p.view.routing?.config.nodes.a!.master === heir && !p.view.routing.config.switching));
  await new Promise((r) => setTimeout(r, 1500)); // a late second leader would show here
  const led = planes.reduce((s, p) => s + p.stats.electionsLed, 0);
  t.equal(led, 1, 'one election');
  const voters = planes.filter((p) => p.stats.votesCast > 0).map((p) => p.id);
  t.ok(voters.length >= 3, `a majority of the probers voted (${voters.join(', ')})`);
  t.ok(voters.every((v) => probersA.has(v)), 'only probers of node a voted');
  const leader = events.slice(before).find((e) => e.event === 'failover-step' && e.step === 'config');
  t.ok(leader, 'the leader wrote the hint');
  const log = (await c.client(heir).lrange(LOG_KEY, 0, -1)).map((e) => JSON.parse(e) as { event: string; by: string });
  const fo = log.filter((e) => e.event === 'failover');
  t.equal(fo.length, 1, 'one fail-over in the log');
  t.ok(probersA.has(fo[0]!.by), `led by a prober of node a (${fo[0]!.by})`);
});

t.test('every sidecar keeps its lease honest when only some probe: none routes to the old master once the new one is promoted', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const planes = await startPlanes(t, c, 16);
  await waitFor('every seat taken', () => seatsFilled(c, planes));
  const old = c.shards[1]!.master.address;
  const heir = c.shards[1]!.replicas[0]!.address;
  // every 5 ms: which planes would route node b to the old master right now (a lease held on a
  // configuration naming it)
  const risky: Array<{ at: number; id: string }> = [];
  const timer = setInterval(() => {
    const now = Date.now();
    for (const p of planes) {
      const r = p.view.routing;
      if (r && r.config.nodes.b!.master === old && !r.config.switching && p.view.leaseError(now) === null) risky.push({ at: now, id: p.id });
    }
  }, 5);
  t.teardown(() => clearInterval(timer));
  const nonProbers = planes.filter((p) => !p.agent!.status().probing.includes('b'));
  t.ok(nonProbers.length >= 10, `${nonProbers.length} sidecars do not probe b`);
  const before = events.length;
  await c.shards[1]!.master.kill('SIGKILL');
  await waitFor('every plane routing to the new master', () => planes.every((p) => p.view.routing?.config.nodes.b!.master === heir && !p.view.routing.config.switching));
  clearInterval(timer);
  const promoted = events.slice(before).find((e) => e.event === 'failover-step' && e.step === 'promote');
  t.ok(promoted, 'the replica was promoted');
  const late = risky.filter((x) => x.at >= promoted!.at);
  t.same(late, [], 'after the promotion no sidecar held a lease on a configuration naming the old master');
  t.ok(risky.length > 0, 'the check saw sidecars routing to the old master before the switch (it can fail)');
});

t.test('the sidecars probing a master die with it: others take their seats and the fail-over still happens', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const planes = await startPlanes(t, c, 20);
  await waitFor('every seat taken', () => seatsFilled(c, planes));
  const dying = probersOf(planes, 'c');
  t.equal(dying.length, PROBE_SEATS);
  // the probers' hosts go down at once, without a word (their seats are not given back)
  for (const p of dying) {
    p.stopped = true;
    p.view.stop();
    void p.agent!.stop();
  }
  await c.shards[2]!.master.kill('SIGKILL');
  const heir = c.shards[2]!.replicas[0]!.address;
  const alive = planes.filter((p) => !p.stopped);
  // every sidecar that probes c at any moment from here on
  const everProbed = new Set<string>();
  const sampler = setInterval(() => probersOf(alive, 'c').forEach((p) => everProbed.add(p.id)), 10);
  t.teardown(() => clearInterval(sampler));
  await waitFor('new probers of c', () => probersOf(alive, 'c').length >= 3);
  await waitFor('every live plane routing to the new master', () => alive.every((p) => p.view.routing?.config.nodes.c!.master === heir && !p.view.routing.config.switching));
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(alive.reduce((s, p) => s + p.stats.electionsLed, 0), 1, 'one election, by the new probers');
  const voters = alive.filter((p) => p.stats.votesCast > 0);
  t.ok(voters.length >= 3, `${voters.length} new probers voted`);
  clearInterval(sampler);
  t.ok(voters.every((p) => everProbed.has(p.id)), 'every vote came from a new prober of c');
  t.ok(dying.every((p) => !everProbed.has(p.id)), 'none of them a dead one');
});

t.test('INFO ringside says which masters a sidecar probes; one alone probes them all, and gives its seats back when it stops', async (t) => {
  const cluster = await startLocal(t, { masters: 3, replicasPerMaster: 0, timing });
  const s = await startSidecar(t, cluster, { failover: true, leaseMs: undefined });
  const probing = (): string | undefined => /probing_nodes:(\S+)/.exec(s.info(['ringside']))?.[1];
  await waitFor('a seat of every node', () => probing() === 'a,b,c');
  const m = directClient(t, cluster.seeds[0]!);
  const held = async (): Promise<number> => (await m.mget(['a', 'b', 'c'].flatMap((n) => Array.from({ length: PROBE_SEATS }, (_, i) => probeSeatKey(n, i))))).filter((v) => v === s.options.id).length;
  t.equal(await held(), 3, 'one seat per node, on the masters');
  await s.stop(200);
  t.equal(await held(), 0, 'given back on the way out, not left to lapse');
});

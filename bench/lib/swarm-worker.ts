/**
 * One process of the swarm bench (bench/lib/swarm.ts): many sidecar control planes — the real
 * ClusterView and FailoverAgent, built by createControlPlane as `ringside serve` builds its own —
 * each with its own id and its own connections to the nodes. The driver talks to it over IPC:
 *
 *   driver → worker   { cmd: 'start', seeds, ids, spreadMs }   start the planes, spread over spreadMs
 *                     { cmd: 'status', version? }              counts, and when each plane adopted `version`
 *                     { cmd: 'stop-ids', ids }                 stop some planes (a sidecar host dies)
 *                     { cmd: 'stop' }                          stop every plane and exit
 *   worker → driver   { reply: <cmd>, ... }
 *
 * Log lines are counted by event name, not printed (a thousand planes log a lot); errors are kept.
 */
import { ControlPlane, createControlPlane } from '../../src/failover/control-plane';
import { Stats } from '../../src/observe/stats';
import { setLogLevel, setLogSink } from '../../src/observe/log';
import { monitorEventLoopDelay } from 'node:perf_hooks';

interface Plane extends ControlPlane {
  id: string;
  adopted: Map<string, number>;
  stopped: boolean;
}

const planes = new Map<string, Plane>();
/** how late this process's timers ran (a starved swarm delays its planes' rounds, not the design) */
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
const events = new Map<string, number>();
const errors: string[] = [];
/** the fail-over's own lines (why a lead failed) and when leases lapsed */
const notable: string[] = [];
const expiries: number[] = [];

setLogLevel('info');
setLogSink((line) => {
  try {
    const o = JSON.parse(line) as { event: string; level: string; step?: string; outcome?: string };
    const key = o.event === 'failover-step' ? `failover-step:${o.step}` : o.event === 'failover-not-led' || o.event === 'failover-done' ? `${o.event}:${o.outcome}` : o.event;
    events.set(key, (events.get(key) ?? 0) + 1);
    if (o.level === 'error' && errors.length < 20 && o.event !== 'no-seed-reachable') errors.push(line);
    if ((o.event === 'failover-not-led' || o.event === 'failover-done') && notable.length < 40) notable.push(line);
    if (o.event === 'lease-expired' && expiries.length < 100_000) expiries.push(Date.now());
  } catch {
    /* not ours */
  }
});

function send(m: unknown): void {
  process.send?.(m);
}

function start(seeds: string[], ids: string[], spreadMs: number): void {
  for (const id of ids) {
    const plane = createControlPlane({ view: { seeds, id, addr: `127.0.0.1:${id}`, stats: new Stats() } }) as Plane;
    plane.id = id;
    plane.adopted = new Map();
    plane.stopped = false;
    plane.view.onChange((r) => plane.adopted.set(r.version, Date.now()));
    planes.set(id, plane);
    const t = setTimeout(() => {
      if (plane.stopped) return;
      plane.view.startInBackground();
      plane.agent?.start();
    }, Math.floor(Math.random() * spreadMs));
    t.unref();
  }
}

function status(version?: string): Record<string, unknown> {
  let routed = 0;
  let leaseValid = 0;
  let electionsLed = 0;
  let electionsCompleted = 0;
  let votesCast = 0;
  let probing = 0;
  const versions: Record<string, number> = {};
  const adoptedAt: number[] = [];
  const now = Date.now();
  for (const p of planes.values()) {
    if (p.stopped) continue;
    const r = p.view.routing;
    if (r) {
      routed++;
      versions[r.version] = (versions[r.version] ?? 0) + 1;
      if (r.config.switching) versions[`${r.version}:switching`] = (versions[`${r.version}:switching`] ?? 0) + 1;
    }
    if (p.view.leaseError(now) === null) leaseValid++;
    electionsLed += p.stats.electionsLed;
    electionsCompleted += p.stats.electionsCompleted;
    votesCast += p.stats.votesCast;
    const a = p.agent?.status();
    if (a && a.nodes.length > 0) probing++;
    if (version) {
      const at = p.adopted.get(version);
      if (at !== undefined) adoptedAt.push(at);
    }
  }
  const unreachable: Record<string, number> = {};
  for (const p of planes.values()) if (!p.stopped) for (const m of p.view.unreachableMasters) unreachable[m] = (unreachable[m] ?? 0) + 1;
  const configs: Record<string, string> = {};
  for (const p of planes.values()) {
    const r = p.view.routing;
    if (r && !p.stopped) configs[r.version] ??= p.view.text;
  }
  return {
    planes: [...planes.values()].filter((p) => !p.stopped).length,
    routed,
    leaseValid,
    electionsLed,
    electionsCompleted,
    votesCast,
    probing,
    versions,
    configs,
    unreachable,
    adoptedAt,
    events: Object.fromEntries(events),
    errors,
    notable,
    expiries,
    rss: process.memoryUsage().rss,
    lagMaxMs: Math.round(lag.max / 1e6),
    cpu: process.cpuUsage(),
  };
}

async function stopIds(ids: string[]): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      const p = planes.get(id);
      if (!p || p.stopped) return;
      p.stopped = true;
      p.view.stop();
      await p.agent?.stop();
    }),
  );
}

process.on('message', (m: { cmd: string; seeds?: string[]; ids?: string[]; spreadMs?: number; version?: string }) => {
  void (async () => {
    switch (m.cmd) {
      case 'start':
        start(m.seeds!, m.ids!, m.spreadMs ?? 1000);
        send({ reply: 'start' });
        return;
      case 'status':
        send({ reply: 'status', ...status(m.version) });
        if ((m as { resetLag?: boolean }).resetLag) lag.reset();
        return;
      case 'stop-ids':
        await stopIds(m.ids!);
        send({ reply: 'stop-ids' });
        return;
      case 'stop':
        await Promise.race([stopIds([...planes.keys()]), new Promise((r) => setTimeout(r, 5000))]);
        send({ reply: 'stop' });
        process.exit(0);
    }
  })();
});
// the driver went away (killed, Ctrl-C): nothing of ours stays behind
process.on('disconnect', () => process.exit(0));

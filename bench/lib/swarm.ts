/**
 * `bash bench/run.sh --swarm N[,N...]` (issue 25): what N sidecars' control planes cost the masters.
 *
 * For each N, a fresh cluster of `--swarm-masters` masters (3 by default), each with one replica,
 * created with 1 s timings (check 1000, lease 1500, down-after 1000 ms), and N control planes —
 * the real ClusterView and FailoverAgent, as `ringside serve` runs them (bench/lib/swarm-worker.ts)
 * — spread over a few worker processes. Then, in order:
 *
 *   idle      each master's INFO over the window, before any sidecar: the baseline
 *   load      the same with the N planes running: control-plane commands/s, CPU % of one core,
 *             connections and memory per master, less the baseline; `__cluster__:*` keys and bytes
 *   config    a new configuration (epoch + 1, same content) written to the masters: the time until
 *             every plane has adopted it
 *   fail-over kill -9 the master of one node: the time to the first lock attempt and until every
 *             plane routes to the new master; elections started (hints written; must be 1)
 *   probers   (when the planes probe a subset) the planes probing a master are stopped at once,
 *             then that master is killed: the fail-over must still happen
 *
 * → bench/results/swarm-<label>.{md,json}; with both swarm-before.json and swarm-after.json present,
 * swarm.svg plots CPU % per master against N for both.
 */
import { ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import { Procs, run } from './procs';
import { RINGSIDE_BIN, ROOT, RedisServer, startRedis } from './setup';
import { parseConfig, serializeConfig, ClusterConfig } from '../../src/cluster/config';
import { openCluster } from '../../src/failover/connect';
import { publish } from '../../src/admin/replicas';

export interface SwarmOptions {
  sizes: number[];
  masters: number;
  windowMs: number;
  label: string;
  out: string;
  /** planes per worker process */
  perWorker: number;
  failover: boolean;
}

const say = (s: string): void => void process.stderr.write(s + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface InfoSample {
  at: number;
  commands: number;
  cpu: number;
  clients: number;
  memory: number;
  cmdstat: Record<string, number>;
}

async function sample(c: Redis): Promise<InfoSample> {
  const text = await c.info('all');
  const f = new Map<string, string>();
  const cmdstat: Record<string, number> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const k = line.slice(0, i);
    const v = line.slice(i + 1);
    f.set(k, v);
    if (k.startsWith('cmdstat_')) {
      cmdstat[k.slice(8)] = Number(/(?:^|,)calls=(\d+)/.exec(v)?.[1] ?? 0);
      const rejected = Number(/rejected_calls=(\d+)/.exec(v)?.[1] ?? 0) + Number(/failed_calls=(\d+)/.exec(v)?.[1] ?? 0);
      if (rejected) cmdstat[`failed ${k.slice(8)}`] = rejected;
    }
    // errors the control plane met count as their own rows ("error ERR", "error NOSCRIPT", ...)
    if (k.startsWith('errorstat_')) cmdstat[`error ${k.slice(10)}`] = Number(/count=(\d+)/.exec(v)?.[1] ?? 0);
  }
  const n = (k: string): number => Number(f.get(k) ?? 0);
  return { at: Date.now(), commands: n('total_commands_processed'), cpu: n('used_cpu_sys') + n('used_cpu_user'), clients: n('connected_clients'), memory: n('used_memory'), cmdstat };
}

interface Rate {
  cmdsPerSec: number;
  cpuPct: number;
  clients: number;
  memoryBytes: number;
  byCommand: Record<string, number>;
}

function rate(a: InfoSample, b: InfoSample): Rate {
  const s = (b.at - a.at) / 1000;
  const byCommand: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.cmdstat)) {
    const d = (v - (a.cmdstat[k] ?? 0)) / s;
    if (d > 0.05) byCommand[k] = Math.round(d * 10) / 10;
  }
  // the sampling's own INFO calls are not the control plane's
  delete byCommand.info;
  return { cmdsPerSec: (b.commands - a.commands - 1) / s, cpuPct: ((b.cpu - a.cpu) / s) * 100, clients: b.clients, memoryBytes: b.memory, byCommand };
}

async function window(clients: Redis[], ms: number): Promise<Rate[]> {
  const a = await Promise.all(clients.map(sample));
  await sleep(ms);
  const b = await Promise.all(clients.map(sample));
  return a.map((x, i) => rate(x, b[i]!));
}

async function metaKeys(c: Redis): Promise<{ keys: number; bytes: number; largest: Array<[string, number]> }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await c.scan(cursor, 'MATCH', '__cluster__:*', 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const sizes: Array<[string, number]> = [];
  for (const k of keys) sizes.push([k, Number(await c.call('MEMORY', 'USAGE', k)) || 0]);
  sizes.sort((x, y) => y[1] - x[1]);
  return { keys: keys.length, bytes: sizes.reduce((s, [, b]) => s + b, 0), largest: sizes.slice(0, 3) };
}

interface WorkerStatus {
  planes: number;
  routed: number;
  leaseValid: number;
  electionsLed: number;
  electionsCompleted: number;
  votesCast: number;
  probing: number;
  versions: Record<string, number>;
  configs: Record<string, string>;
  /** master → planes whose last version round did not reach it */
  unreachable: Record<string, number>;
  adoptedAt: number[];
  events: Record<string, number>;
  errors: string[];
  notable: string[];
  expiries: number[];
  rss: number;
  lagMaxMs: number;
  cpu: { user: number; system: number };
}

class Worker {
  readonly #proc: ChildProcess;
  #waiting = new Map<string, Array<(m: unknown) => void>>();
  readonly ids: string[];

  constructor(file: string, ids: string[], pidFile: string) {
    this.ids = ids;
    this.#proc = fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=4096'] });
    if (this.#proc.pid) fs.appendFileSync(pidFile, `${this.#proc.pid}\n`);
    this.#proc.on('message', (m: { reply: string }) => {
      const q = this.#waiting.get(m.reply);
      q?.shift()?.(m);
    });
  }

  ask<T>(msg: { cmd: string } & Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`swarm worker did not answer ${msg.cmd} within ${timeoutMs} ms`)), timeoutMs);
      const q = this.#waiting.get(msg.cmd) ?? [];
      q.push((m) => {
        clearTimeout(t);
        resolve(m as T);
      });
      this.#waiting.set(msg.cmd, q);
      this.#proc.send(msg);
    });
  }

  kill(): void {
    this.#proc.kill('SIGKILL');
  }
}

/** Every worker's status, summed. */
async function statusOf(workers: Worker[], version?: string, resetLag = false): Promise<WorkerStatus> {
  const all = await Promise.all(workers.map((w) => w.ask<WorkerStatus>({ cmd: 'status', version, resetLag })));
  const sum: WorkerStatus = { planes: 0, routed: 0, leaseValid: 0, electionsLed: 0, electionsCompleted: 0, votesCast: 0, probing: 0, versions: {}, configs: {}, unreachable: {}, adoptedAt: [], events: {}, errors: [], notable: [], expiries: [], rss: 0, lagMaxMs: 0, cpu: { user: 0, system: 0 } };
  for (const s of all) {
    for (const k of ['planes', 'routed', 'leaseValid', 'electionsLed', 'electionsCompleted', 'votesCast', 'probing', 'rss'] as const) sum[k] += s[k];
    for (const [v, n] of Object.entries(s.versions)) sum.versions[v] = (sum.versions[v] ?? 0) + n;
    Object.assign(sum.configs, s.configs);
    for (const [m, k] of Object.entries(s.unreachable)) sum.unreachable[m] = (sum.unreachable[m] ?? 0) + k;
    sum.adoptedAt.push(...s.adoptedAt);
    for (const [e, n] of Object.entries(s.events)) sum.events[e] = (sum.events[e] ?? 0) + n;
    sum.errors.push(...s.errors);
    sum.notable.push(...s.notable);
    sum.expiries.push(...s.expiries);
    sum.lagMaxMs = Math.max(sum.lagMaxMs, s.lagMaxMs);
    sum.cpu.user += s.cpu.user;
    sum.cpu.system += s.cpu.system;
  }
  return sum;
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`swarm: ${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

export interface SizeResult {
  n: number;
  masters: number;
  workers: number;
  idle: Rate[];
  load: Rate[];
  /** load less idle, per master */
  perMaster: Array<{ cmdsPerSec: number; cpuPct: number; connections: number; memoryBytes: number }>;
  perSidecarPerMaster: { cmdsPerSec: number; cpuUs: number };
  meta: Array<{ keys: number; bytes: number; largest: Array<[string, number]> }>;
  byCommand: Record<string, number>;
  configMs: { p50: number; max: number } | null;
  failover: {
    detectMs: number | null;
    completeMs: number | null;
    elections: number;
    lockAttempts: number;
    votes: number;
    events: Record<string, number>;
    /** lease expiries per second after the kill ("0" = the first second) */
    expiriesBySecond: Record<string, number>;
    /** why a lead failed, and how the election ended */
    notable: string[];
    /** the swarm's worst timer delay from the kill to the end (its own CPU starvation) */
    swarmLagMaxMs: number;
  } | null;
  probersDead: { stopped: number; completeMs: number | null; elections: number } | null;
  /** elections before any fault was injected (must be 0) */
  electionsBeforeFault: number;
  swarm: { rssMB: number; cpuPct: number; leaseValid: number; probing: number; lagMaxMs: number };
  errors: string[];
}

async function oneSize(o: SwarmOptions, procs: Procs, n: number): Promise<SizeResult> {
  const tag = `n${n}`;
  const masters = await Promise.all(Array.from({ length: o.masters }, (_, i) => startRedis(procs, `swarm-${tag}-m${i}`)));
  const replicas = await Promise.all(masters.map((m, i) => startRedis(procs, `swarm-${tag}-r${i}`, ['--replicaof', '127.0.0.1', String(m.port)])));
  const addr = (s: RedisServer): string => `127.0.0.1:${s.port}`;
  const r = await run(
    process.execPath,
    [RINGSIDE_BIN, 'create', ...masters.flatMap((m, i) => ['--shard', `${addr(m)},${addr(replicas[i]!)}`]), '--check-ms', '1000', '--lease-ms', '1500', '--down-after-ms', '1000'],
    { timeoutMs: 60_000, cwd: ROOT },
  );
  if (r.code !== 0) throw new Error(`ringside create failed: ${r.stdout}${r.stderr}`);
  const seeds = masters.map(addr);
  const clients = masters.map((m) => new Redis(m.port, '127.0.0.1', { lazyConnect: false, maxRetriesPerRequest: 1 }).on('error', () => {}));
  const workers: Worker[] = [];
  try {
    say(`swarm N=${n}: idle window (${o.windowMs} ms)`);
    const idle = await window(clients, o.windowMs);

    const file = path.join(__dirname, 'swarm-worker.js');
    const count = Math.max(1, Math.ceil(n / o.perWorker));
    for (let w = 0; w < count; w++) {
      const ids = Array.from({ length: n }, (_, i) => i).filter((i) => i % count === w).map((i) => `swarm-${String(i).padStart(5, '0')}`);
      workers.push(new Worker(file, ids, procs.pidFileName));
    }
    const t0 = Date.now();
    // a fleet does not start in one second: the planes start over N × 10 ms (10 s for 1 000), as
    // hosts come up; all at once, 1 000 planes starve the 2 cores they share with the servers
    const spreadMs = Math.max(1000, n * 10);
    await Promise.all(workers.map((w) => w.ask({ cmd: 'start', seeds, ids: w.ids, spreadMs })));
    await until(`all ${n} planes routing within their lease`, 120_000, async () => {
      const s = await statusOf(workers);
      return s.leaseValid === n ? s : null;
    }, 250);
    say(`swarm N=${n}: all ${n} planes hold a lease after ${Date.now() - t0} ms; settling, then the load window`);
    await sleep(5000);
    const cpu0 = await statusOf(workers, undefined, true);
    // nothing failed: a fail-over before the load window (a starved swarm missing its probes)
    // would leave a replica among the sampled servers, and is a finding in itself
    if (cpu0.electionsLed > 0) say(`swarm N=${n}: WARNING: ${cpu0.electionsLed} election(s) before any fault: ${JSON.stringify(cpu0.notable.slice(0, 3))}`);
    const current = parseConfig(Object.values(cpu0.configs)[0]!);
    const sampled = Object.keys(current.nodes).sort().map((k) => current.nodes[k]!.master);
    if (sampled.join() !== seeds.join()) say(`swarm N=${n}: WARNING: the masters changed before the load window: ${seeds.join(',')} → ${sampled.join(',')}`);
    const load = await window(clients, o.windowMs);
    const cpu1 = await statusOf(workers);
    say(`swarm N=${n}: planes that found a master unreachable in their last round: ${JSON.stringify(cpu1.unreachable)}`);
    const meta = await Promise.all(clients.map(metaKeys));
    const perMaster = load.map((l, i) => ({
      cmdsPerSec: l.cmdsPerSec - idle[i]!.cmdsPerSec,
      cpuPct: l.cpuPct - idle[i]!.cpuPct,
      connections: l.clients - idle[i]!.clients,
      memoryBytes: l.memoryBytes - idle[i]!.memoryBytes,
    }));
    const avg = (f: (x: (typeof perMaster)[0]) => number): number => perMaster.reduce((s, x) => s + f(x), 0) / perMaster.length;
    const byCommand: Record<string, number> = {};
    for (const l of load) for (const [k, v] of Object.entries(l.byCommand)) byCommand[k] = Math.round(((byCommand[k] ?? 0) + v / load.length) * 10) / 10;
    const swarmCpu = ((cpu1.cpu.user + cpu1.cpu.system - cpu0.cpu.user - cpu0.cpu.system) / 1000 / o.windowMs) * 100;

    // a new configuration: the same content under the next epoch
    say(`swarm N=${n}: a new configuration`);
    const admin = await openCluster(seeds);
    const next: ClusterConfig = parseConfig(serializeConfig(admin.config));
    next.epoch++;
    const writtenAt = Date.now();
    await publish(admin, next);
    admin.close();
    const version = (await clients[0]!.get('__cluster__:version'))!;
    const adopted = await until(`all planes adopting epoch ${next.epoch}`, 30_000, async () => {
      const s = await statusOf(workers, version);
      return s.adoptedAt.length === n ? s.adoptedAt : null;
    });
    const lags = adopted.map((t) => Math.max(0, t - writtenAt)).sort((a, b) => a - b);
    const configMs = { p50: lags[Math.floor(lags.length / 2)]!, max: lags[lags.length - 1]! };

    let failover: SizeResult['failover'] = null;
    if (o.failover) {
      say(`swarm N=${n}: kill -9 the master of node 0`);
      const before = await statusOf(workers, undefined, true);
      const victim = masters[0]!;
      const heir = addr(replicas[0]!);
      const killedAt = Date.now();
      procs.kill9(victim.child);
      let detectMs: number | null = null;
      let completeMs: number | null = null;
      let last = before;
      try {
        await until('every plane routing to the new master', 60_000, async () => {
          const s = (last = await statusOf(workers));
          const locks = (s.events['failover-step:lock'] ?? 0) - (before.events['failover-step:lock'] ?? 0);
          if (detectMs === null && locks > 0) detectMs = Date.now() - killedAt;
          let onNew = 0;
          for (const [v, k] of Object.entries(s.versions)) {
            if (v.endsWith(':switching')) continue;
            const c = parseConfig(s.configs[v]!);
            if (!c.switching && Object.values(c.nodes).some((x) => x.master === heir)) onNew += k;
          }
          return onNew === n ? true : null;
        });
        completeMs = Date.now() - killedAt;
      } catch (e) {
        say(`swarm N=${n}: ${(e as Error).message}`);
      }
      await sleep(3000); // late leaders would show here
      last = await statusOf(workers);
      const diff: Record<string, number> = {};
      for (const [k, v] of Object.entries(last.events)) if (/^failover|lease-expired|config-not-confirmed/.test(k) && v - (before.events[k] ?? 0) > 0) diff[k] = v - (before.events[k] ?? 0);
      failover = {
        detectMs,
        completeMs,
        elections: last.electionsLed - before.electionsLed,
        lockAttempts: (last.events['failover-step:lock'] ?? 0) - (before.events['failover-step:lock'] ?? 0),
        votes: last.votesCast - before.votesCast,
        events: diff,
        expiriesBySecond: last.expiries.filter((x) => x >= killedAt).reduce<Record<string, number>>((acc, x) => {
          const k = String(Math.floor((x - killedAt) / 1000));
          acc[k] = (acc[k] ?? 0) + 1;
          return acc;
        }, {}),
        swarmLagMaxMs: last.lagMaxMs,
        notable: last.notable.filter((l) => !before.notable.includes(l)).map((l) => l.slice(0, 400)),
      };
    }
    const end = await statusOf(workers);
    return {
      n,
      masters: o.masters,
      workers: workers.length,
      idle,
      load,
      perMaster,
      perSidecarPerMaster: { cmdsPerSec: avg((x) => x.cmdsPerSec) / n, cpuUs: (avg((x) => x.cpuPct) / 100 / n) * 1e6 },
      meta,
      byCommand,
      configMs,
      failover,
      probersDead: null,
      electionsBeforeFault: cpu0.electionsLed,
      swarm: { rssMB: Math.round(cpu1.rss / 1e6), cpuPct: Math.round(swarmCpu), leaseValid: cpu1.leaseValid, probing: cpu1.probing, lagMaxMs: cpu1.lagMaxMs },
      errors: end.errors.slice(0, 5),
    };
  } finally {
    await Promise.all(workers.map((w) => w.ask({ cmd: 'stop' }, 15_000).catch(() => w.kill())));
    for (const c of clients) c.disconnect();
    for (const s of [...masters, ...replicas]) await procs.stop(s.child);
  }
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '–');

function markdown(o: SwarmOptions, results: SizeResult[]): string[] {
  const lines = [
    `# Control-plane cost per master against the number of sidecars (bench --swarm, ${o.label})`,
    '',
    `${o.masters} masters, one replica each, timings check 1000 / lease 1500 / down-after 1000 ms. N control planes (the real ClusterView and FailoverAgent) in ${results[0]?.workers ?? '?'}+ worker processes on the same 2 cores as the servers. ` +
      `Each master's INFO over ${o.windowMs / 1000} s with the planes running, less the same window before they started. CPU is the master's own (used_cpu_sys + used_cpu_user), in % of one core.`,
    '',
    '| N | cmds/s per master | CPU % per master | per sidecar per master: cmds/s | µs CPU/s | connections per master | memory per master | `__cluster__:*` keys / bytes | new config seen by all (p50 / max ms) | swarm CPU % |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    const avg = (f: (x: SizeResult['perMaster'][0]) => number): number => r.perMaster.reduce((s, x) => s + f(x), 0) / r.perMaster.length;
    lines.push(
      `| ${r.n} | ${Math.round(avg((x) => x.cmdsPerSec))} | ${f2(avg((x) => x.cpuPct))} | ${f1(r.perSidecarPerMaster.cmdsPerSec)} | ${f1(r.perSidecarPerMaster.cpuUs)} | ${Math.round(avg((x) => x.connections))} | ${(avg((x) => x.memoryBytes) / 1e6).toFixed(1)} MB | ${r.meta[0]?.keys ?? '–'} / ${Math.round((r.meta[0]?.bytes ?? 0) / 1024)} KB | ${r.configMs ? `${r.configMs.p50} / ${r.configMs.max}` : '–'} | ${r.swarm.cpuPct} |`,
    );
  }
  lines.push('', '## Fail-over with N voters (kill -9 the master of node 0)', '', '| N | elections before the fault | first lock attempt (ms) | all N route to the new master (ms) | elections started | lock attempts | votes cast | lease expiries | swarm timer lag, worst (ms) |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results)
    if (r.failover)
      lines.push(
        `| ${r.n} | ${r.electionsBeforeFault} | ${r.failover.detectMs ?? '–'} | ${r.failover.completeMs ?? 'not within 60 s'} | ${r.failover.elections} | ${r.failover.lockAttempts} | ${r.failover.votes} | ${r.failover.events['lease-expired'] ?? 0} | ${r.failover.swarmLagMaxMs} |`,
      );
  lines.push(
    '',
    'Lease expiries and timer lag: the N planes share 2 cores with the six servers; during the fail-over every plane reloads twice and the swarm\'s own timers run late by the figure shown. A plane whose round is late by more than leaseMs − checkMs (500 ms) lapses. In the steady state the lag is in the first table\'s note.',
    '',
    '## Commands per second per master, by command (load window)',
    '',
  );
  for (const r of results) lines.push(`- N = ${r.n}: ${Object.entries(r.byCommand).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push('', '## Largest `__cluster__:*` keys (first master)', '');
  for (const r of results) lines.push(`- N = ${r.n}: ${(r.meta[0]?.largest ?? []).map(([k, b]) => `${k} ${b} B`).join(', ')}`);
  lines.push('', '## Swarm timer lag in the load window (worst, ms)', '', ...results.map((r) => `- N = ${r.n}: ${r.swarm.lagMaxMs}`));
  const errs = results.flatMap((r) => r.errors);
  if (errs.length) lines.push('', '## Errors logged by the planes (first ones)', '', ...errs.slice(0, 5).map((e) => `    ${e}`));
  lines.push('');
  return lines;
}

/** per-master CPU % against N, before and after, on log–log axes */
export function swarmSvg(series: Array<{ label: string; points: Array<[number, number]> }>, target: number): string {
  const W = 640, H = 400, L = 70, R = 20, T = 30, B = 50;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => Math.max(p[1], 0.01))).concat([target]);
  const lx0 = Math.floor(Math.log10(Math.min(...xs))), lx1 = Math.ceil(Math.log10(Math.max(...xs)));
  const ly0 = Math.floor(Math.log10(Math.min(...ys))), ly1 = Math.ceil(Math.log10(Math.max(...ys)));
  const X = (x: number): number => L + ((Math.log10(x) - lx0) / Math.max(1, lx1 - lx0)) * (W - L - R);
  const Y = (y: number): number => H - B - ((Math.log10(Math.max(y, 0.01)) - ly0) / Math.max(1, ly1 - ly0)) * (H - T - B);
  const colors = ['#c0392b', '#2471a3', '#229954'];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  for (let e = lx0; e <= lx1; e++) out.push(`<line x1="${X(10 ** e)}" y1="${T}" x2="${X(10 ** e)}" y2="${H - B}" stroke="#ddd"/><text x="${X(10 ** e)}" y="${H - B + 18}" text-anchor="middle">${10 ** e}</text>`);
  for (let e = ly0; e <= ly1; e++) out.push(`<line x1="${L}" y1="${Y(10 ** e)}" x2="${W - R}" y2="${Y(10 ** e)}" stroke="#ddd"/><text x="${L - 6}" y="${Y(10 ** e) + 4}" text-anchor="end">${10 ** e}%</text>`);
  out.push(`<line x1="${L}" y1="${Y(target)}" x2="${W - R}" y2="${Y(target)}" stroke="#888" stroke-dasharray="6,4"/><text x="${W - R - 4}" y="${Y(target) - 5}" text-anchor="end" fill="#555">target ${target}% at N = 1000</text>`);
  series.forEach((s, i) => {
    const c = colors[i % colors.length];
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of s.points) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${c}"/><text x="${(X(x) + 6).toFixed(1)}" y="${(Y(y) - 6).toFixed(1)}" fill="${c}">${y.toFixed(2)}</text>`);
    out.push(`<rect x="${L + 10}" y="${T + 8 + i * 18}" width="12" height="3" fill="${c}"/><text x="${L + 28}" y="${T + 13 + i * 18}">${s.label}</text>`);
  });
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">sidecars (N)</text>`, `<text x="16" y="${(T + H - B) / 2}" transform="rotate(-90 16 ${(T + H - B) / 2})" text-anchor="middle">master CPU, % of one core (control plane)</text>`, '</svg>');
  return out.join('\n') + '\n';
}

/**
 * The floor, for scale: what one GET per connection per second, from `n` connections at random
 * phases, costs one redis-server on this machine (the least any design that confirms a lease
 * each second per sidecar can cost a master it reads from).
 */
async function floorRun(procs: Procs, n: number, ms: number): Promise<{ n: number; cpuPct: number; idlePct: number }> {
  const srv = await startRedis(procs, `swarm-floor`);
  const admin = new Redis(srv.port, '127.0.0.1').on('error', () => {});
  const conns = Array.from({ length: n }, () => new Redis(srv.port, '127.0.0.1').on('error', () => {}));
  const timers: NodeJS.Timeout[] = [];
  try {
    await Promise.all(conns.map((c) => c.ping()));
    const [idle] = await window([admin], ms);
    for (const c of conns) {
      const t = setTimeout(() => timers.push(setInterval(() => void c.get('__cluster__:version').catch(() => {}), 1000)), Math.random() * 1000);
      timers.push(t);
    }
    await sleep(2000);
    const [load] = await window([admin], ms);
    return { n, cpuPct: load!.cpuPct, idlePct: idle!.cpuPct };
  } finally {
    for (const t of timers) clearInterval(t);
    for (const c of conns) c.disconnect();
    admin.disconnect();
    await procs.stop(srv.child);
  }
}

export async function swarmMode(o: SwarmOptions, procs: Procs): Promise<number> {
  const results: SizeResult[] = [];
  for (const n of o.sizes) {
    const r = await oneSize(o, procs, n);
    results.push(r);
    say(`swarm N=${n}: ${JSON.stringify({ perMaster: r.perMaster, config: r.configMs, failover: r.failover && { ...r.failover, events: undefined } })}`);
  }
  const top = Math.max(...o.sizes);
  say(`swarm: the floor, ${top} connections with one GET a second each`);
  const floor = await floorRun(procs, top, Math.min(o.windowMs, 10_000));
  const lines = markdown(o, results);
  lines.push(
    '## The floor, for scale',
    '',
    `One redis-server, ${floor.n} connections from one process, each sending one GET a second at a random phase: ${floor.cpuPct.toFixed(2)}% of a core (${floor.idlePct.toFixed(2)}% with the connections open and silent). ` +
      'A design in which every sidecar confirms its lease with every master each second cannot cost a master less than this; one that asks a majority of three masters, two thirds of it.',
    '',
  );
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, `swarm-${o.label}.json`), JSON.stringify({ time: new Date().toISOString(), options: o, results, floor }, null, 2) + '\n');
  fs.writeFileSync(path.join(o.out, `swarm-${o.label}.md`), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
  writeSwarmSvg(o.out);
  return 0;
}

/** swarm.svg from swarm-before.json and swarm-after.json, whichever exist in `out`. */
export function writeSwarmSvg(out: string): void {
  const series: Array<{ label: string; points: Array<[number, number]> }> = [];
  for (const label of ['before', 'after']) {
    const f = path.join(out, `swarm-${label}.json`);
    if (!fs.existsSync(f)) continue;
    const j = JSON.parse(fs.readFileSync(f, 'utf8')) as { results: SizeResult[] };
    const text = label === 'before' ? 'before (at 1 000 the swarm collapsed: a floor)' : label;
    series.push({ label: text, points: j.results.map((r) => [r.n, r.perMaster.reduce((s, x) => s + x.cpuPct, 0) / r.perMaster.length]) });
  }
  if (series.length) fs.writeFileSync(path.join(out, 'swarm.svg'), swarmSvg(series, 2));
}

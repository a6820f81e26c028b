/**
 * The partition scenarios of issue 23, run on real network namespaces (netns.ts): three hosts,
 * each with a master, the replica of another host's master, a `ringside serve` sidecar and
 * writers through it; a fault; the heal; then every acknowledged write is looked for on the final
 * masters (test/failover/history.ts).
 *
 *   host 1: master a, replica of c, S1      host 2: master b, replica of a, S2
 *   host 3: master c, replica of b, S3      (host 4, when asked: a sidecar S4 and writers only)
 *
 * Timing as the issue measured it: check 1000, lease 1500, down-after 1000 ms.
 */
import path from 'node:path';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ClusterConfig, Durability } from '../../src/cluster/config';
import { SlotTable } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import { NODE_FLAGS } from '../../src/cli/node-flags';
import type { Teardown } from '../helpers/cluster';
import { Failure, Verdict, Write, checkHistory } from '../failover/history';
import { Host, Net, Proc } from './netns';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'ringside.js');
const WRITER = path.join(__dirname, 'ns-writer.js');
const INSPECT = path.join(__dirname, 'ns-inspect.js');

const historyFile = (host: number): string => path.join(tmpdir(), `ringside-partition-${process.pid}-S${host}.json`);

export const TIMING = { checkMs: 1000, leaseMs: 1500, downAfterMs: 1000 };
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const node = (script: string, args: string[]): [string, string[]] => [process.execPath, [...NODE_FLAGS, script, ...args]];

export interface Cluster {
  net: Net;
  hosts: Host[];
  config: ClusterConfig;
  configFile: string;
  addresses: string[];
  sidecars: Map<string, Proc>;
  writers: Map<string, Proc>;
  redis: Map<string, Proc>;
}

/** The three-host cluster (and `extraHosts` sidecar-only hosts), sidecars ready, writers started. */
export async function startCluster(t: Teardown, opts: { durability: Durability; extraHosts?: number }): Promise<Cluster> {
  const net = Net.create(t, 3 + (opts.extraHosts ?? 0));
  const hosts = net.hosts;
  const [h1, h2, h3] = hosts as [Host, Host, Host];
  const redis = new Map<string, Proc>();
  for (const h of [h1, h2, h3])
    for (const port of [6379, 6380]) redis.set(`${h.ip}:${port}`, await h.redis(port));
  const shard = (m: Host, r: Host): string => `${m.ip}:6379,${r.ip}:6380`;
  const [cmd, args] = node(BIN, [
    'create', '--shard', shard(h1, h2), '--shard', shard(h2, h3), '--shard', shard(h3, h1),
    '--check-ms', String(TIMING.checkMs), '--lease-ms', String(TIMING.leaseMs), '--down-after-ms', String(TIMING.downAfterMs),
    '--durability', opts.durability, '--json',
  ]);
  const config = JSON.parse(await h1.runAsync(cmd, args)) as ClusterConfig;
  const configFile = path.join(tmpdir(), `ringside-partition-${process.pid}.json`);
  writeFileSync(configFile, JSON.stringify(config));
  const seeds = [h1, h2, h3].map((h) => `${h.ip}:6379`).join(',');
  const sidecars = new Map<string, Proc>();
  for (const h of hosts) {
    const [c, a] = node(BIN, [
      'serve', '--seeds', seeds, '--port', '7000', '--metrics-port', 'off', '--id', `S${h.index}`, '--log-level', 'info',
      '--check-ms', String(TIMING.checkMs), '--lease-ms', String(TIMING.leaseMs),
    ]);
    sidecars.set(`S${h.index}`, h.spawn(c, a, { cwd: ROOT }));
  }
  for (const h of hosts)
    for (let i = 0; ; i++) {
      const ok = await h.runAsync('redis-cli', ['-p', '7000', 'SET', 'ready-probe', '1'], 5000).then((o) => o.trim() === 'OK', () => false);
      if (ok) break;
      if (i > 200) throw new Error(`sidecar S${h.index} never routed: ${sidecars.get(`S${h.index}`)!.output().slice(-3000)}`);
      await sleep(50);
    }
  const writers = new Map<string, Proc>();
  for (const h of hosts) {
    const [c, a] = node(WRITER, [`S${h.index}`, '7000', configFile, '2', '2', historyFile(h.index)]);
    writers.set(`S${h.index}`, h.spawn(c, a, { cwd: ROOT }));
  }
  const addresses = [...redis.keys()];
  return { net, hosts, config, configFile, addresses, sidecars, writers, redis };
}

export interface Outcome {
  history: Write[];
  config: ClusterConfig;
  events: Array<Record<string, unknown>>;
  roles: Record<string, string>;
  verdict: Verdict;
  /** per sidecar: `lease-expired` lines in its log */
  leaseExpiries: Record<string, number>;
  /** per sidecar, the log lines of the given events */
  logs: Record<string, string[]>;
}

/** Stops the writers, reads everything back from host 1, checks the history. */
export async function finish(c: Cluster, failure: Failure | undefined): Promise<Outcome> {
  const history: Write[] = [];
  for (const [name, w] of c.writers) {
    w.child.stdin!.end('stop\n');
    await Promise.race([w.exited, sleep(20_000)]);
    const file = historyFile(Number(name.slice(1)));
    if (!existsSync(file)) throw new Error(`writer ${name} wrote no history: ${w.output().slice(-2000)}`);
    history.push(...(JSON.parse(readFileSync(file, 'utf8')) as Write[]));
    rmSync(file, { force: true });
  }
  const keysFile = path.join(tmpdir(), `ringside-partition-keys-${process.pid}.json`);
  writeFileSync(keysFile, JSON.stringify(history.map((w) => w.key)));
  const [cmd, args] = node(INSPECT, [c.addresses.join(','), keysFile]);
  const got = JSON.parse(await c.hosts[0]!.runAsync(cmd, args, 120_000)) as {
    config: ClusterConfig;
    found: Record<string, Array<{ master: string; value: string }>>;
    events: Array<Record<string, unknown>>;
    roles: Record<string, string>;
  };
  const table = SlotTable.from(got.config);
  const ownerOf = (k: string): string => got.config.nodes[table.nodeOf(slotOf(k))]!.master;
  const verdict = checkHistory({ writes: history, found: new Map(Object.entries(got.found)), ownerOf, failure });
  const leaseExpiries: Record<string, number> = {};
  const logs: Record<string, string[]> = {};
  for (const [name, s] of c.sidecars) {
    const lines = s.output().split('\n');
    leaseExpiries[name] = lines.filter((l) => l.includes('"lease-expired"')).length;
    logs[name] = lines.filter((l) => /"(failover-suspect|failover-vote|failover-step|failover-done|failover-not-led|failover-demoted|lease-expired|config-not-confirmed|config-adopted|switching-fence)"/.test(l));
  }
  return { history, config: got.config, events: got.events, roles: got.roles, verdict, leaseExpiries, logs };
}

/** The shard (node name) a key belongs to in the first configuration. */
export function shardOfKey(config: ClusterConfig, key: string): string {
  return SlotTable.from(config).nodeOf(slotOf(key));
}

export interface Figures {
  acknowledged: number;
  lost: number;
  refused: number;
  unknown: number;
  /** ms from the fault to the last write the cut-off side had acknowledged on the failed shard before the heal */
  lastAckAfterCutMs: number | null;
  /** ms from the fault to the first error a writer on the cut-off side got on the failed shard */
  refuseAfterMs: number | null;
  /** ms from the fault until every writer outside `cutOff` that failed on the shard had a write acknowledged there again */
  resumeAfterMs: number | null;
}

export function figures(o: Outcome, shard: string, at: number, cutOff: string[], healAt: number): Figures {
  const inShard = o.history.filter((w) => w.shard === shard && w.sentAt >= at);
  const cutSide = inShard.filter((w) => cutOff.includes(w.via));
  const acksCut = cutSide.filter((w) => w.outcome === 'ok' && w.ackAt! < healAt).map((w) => w.ackAt! - at);
  const errsCut = cutSide.filter((w) => w.outcome !== 'ok').map((w) => (w.ackAt ?? w.sentAt) - at);
  const others = [...new Set(o.history.map((w) => w.writer))].filter((w) => !cutOff.some((s) => w.startsWith(s + '.')));
  let resume: number | null = 0;
  for (const wr of others) {
    // from the fault, the first acknowledgement after this writer's first failure on the shard (0: it never failed)
    const mine = inShard.filter((w) => w.writer === wr);
    const failed = mine.find((w) => w.outcome !== 'ok');
    if (!failed) continue;
    const back = mine.filter((w) => w.outcome === 'ok' && w.sentAt >= failed.sentAt).map((w) => w.ackAt! - at);
    if (back.length === 0) {
      resume = null;
      break;
    }
    resume = Math.max(resume!, Math.min(...back));
  }
  return {
    acknowledged: o.verdict.acked,
    lost: o.verdict.lost.length,
    refused: o.verdict.errors,
    unknown: o.verdict.pending,
    lastAckAfterCutMs: acksCut.length ? Math.max(...acksCut) : null,
    refuseAfterMs: errsCut.length ? Math.min(...errsCut) : null,
    resumeAfterMs: resume,
  };
}

/** One sidecar's log lines as `+ms event detail`, relative to `at` (for comments). */
export function timeline(lines: string[], at: number): string[] {
  return lines.map((l) => {
    try {
      const d = JSON.parse(l) as Record<string, unknown>;
      const ms = Date.parse(String(d.time)) - at;
      const detail = d.step ? `${String(d.step)}: ${String(d.message ?? '').slice(0, 90)}` : d.epoch !== undefined ? `epoch ${String(d.epoch)}` : String(d.node ?? d.reason ?? '');
      return `${ms >= 0 ? '+' : ''}${ms.toFixed(0)} ${String(d.event)} ${detail}`;
    } catch {
      return l.slice(0, 120);
    }
  });
}

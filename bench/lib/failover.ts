/**
 * Fail-over time (issue 6): kill -9 a master under a steady write load and measure the time until
 * writes to its keys are acknowledged again, for Ringside (three sidecars, each with its own
 * writer, keys in the dead master's slots) and for Redis Sentinel (three sentinels, one master and
 * one replica, three Sentinel-aware writers) with the same down-after time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Endpoint, Procs, freePort, sleep, waitReady } from './procs';
import { Conn, Reply, command } from './resp';
import { ROOT, RedisServer, createCluster, startRedis, startRingside } from './setup';
import { median } from './report';

export interface Profile {
  name: string;
  checkMs: number;
  leaseMs: number;
  downAfterMs: number;
}

/** `name:check/lease/down,...`, e.g. `seed:10000/15000/3000,fast:1000/1500/1000`. */
export function parseProfiles(s: string): Profile[] {
  return s.split(',').map((p) => {
    const m = /^(?:([\w-]+):)?(\d+)\/(\d+)\/(\d+)$/.exec(p.trim());
    if (!m) throw new Error(`bad profile "${p}" (want name:checkMs/leaseMs/downAfterMs)`);
    const [check, lease, down] = [Number(m[2]), Number(m[3]), Number(m[4])];
    return { name: m[1] ?? `${check}/${lease}/${down}`, checkMs: check, leaseMs: lease, downAfterMs: down };
  });
}

export const DEFAULT_PROFILES = 'seed:10000/15000/3000,fast:1000/1500/1000';

interface WriterStats {
  name: string;
  acks: number;
  lastAckBeforeKillMs: number | null;
  firstAckAfterKillMs: number | null;
  errors: Record<string, number>;
}

/** Writes unique keys one at a time, reconnecting (and re-resolving the endpoint) on failure. */
class Writer {
  private stopped = false;
  /** [sent, acknowledged] times of every acknowledged write. */
  private acks: Array<[number, number]> = [];
  readonly errors: Record<string, number> = {};
  private done: Promise<void> | null = null;
  private seq = 0;

  constructor(
    readonly name: string,
    private readonly resolve: () => Promise<Endpoint>,
    private readonly nextKey: (seq: number) => string,
    private readonly requestTimeoutMs: number,
  ) {}

  private err(msg: string): void {
    const k = msg.replace(/\d+/g, 'N').slice(0, 120);
    this.errors[k] = (this.errors[k] ?? 0) + 1;
  }

  start(): void {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let ep: Endpoint;
      try {
        ep = await this.resolve();
      } catch (e) {
        this.err(`resolve: ${(e as Error).message}`);
        await sleep(10);
        continue;
      }
      const c = new Conn(ep, 1000);
      try {
        await c.ready;
      } catch (e) {
        this.err(`connect: ${(e as Error).message}`);
        c.close();
        await sleep(10);
        continue;
      }
      while (!this.stopped && !c.broken) {
        const key = this.nextKey(this.seq++);
        let r: Reply;
        const sentAt = performance.now();
        try {
          r = await c.send(['SET', key, String(this.seq)], this.requestTimeoutMs);
        } catch (e) {
          this.err(`send: ${(e as Error).message}`);
          break;
        }
        if (r === 'OK') {
          this.acks.push([sentAt, performance.now()]);
        } else {
          const msg = r instanceof Error ? r.message : JSON.stringify(r);
          this.err(`reply: ${msg}`);
          if (/READONLY|LOADING/.test(msg)) break; // Sentinel client: ask again where the master is
          await sleep(10);
        }
      }
      c.close();
      if (!this.stopped) await sleep(10);
    }
  }

  /** Acknowledged writes that were sent after `t`. */
  acksSentAfter(t: number): number {
    let n = 0;
    for (let i = this.acks.length - 1; i >= 0 && this.acks[i]![0] > t; i--) n++;
    return n;
  }

  /**
   * Times relative to the kill. Resumption is the first acknowledgement of a write sent after the
   * killed process was seen to exit (`deadAt`): a write the old master acknowledged in its last
   * instant does not count.
   */
  stats(killAt: number, deadAt: number): WriterStats {
    const before = this.acks.filter(([, a]) => a <= killAt);
    const after = this.acks.find(([sent]) => sent > deadAt);
    return {
      name: this.name,
      acks: this.acks.length,
      lastAckBeforeKillMs: before.length ? before[before.length - 1]![1] - killAt : null,
      firstAckAfterKillMs: after !== undefined ? after[1] - killAt : null,
      errors: this.errors,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

export interface Trial {
  system: 'ringside' | 'sentinel';
  profile: string;
  round: number;
  /** kill → every writer has an acknowledged write again (ms); null if not within the limit. */
  allResumedMs: number | null;
  /** kill → the first writer has an acknowledged write again (ms). */
  firstResumedMs: number | null;
  promoted: boolean;
  writers: WriterStats[];
  error?: string;
}

async function waitResumed(writers: Writer[], deadAt: number, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (performance.now() < deadline) {
    if (writers.every((w) => w.acksSentAfter(deadAt) > 0)) return;
    await sleep(20);
  }
}

function summarizeTrial(t: Omit<Trial, 'allResumedMs' | 'firstResumedMs'>): Trial {
  const firsts = t.writers.map((w) => w.firstAckAfterKillMs);
  const all = firsts.every((x) => x !== null) ? Math.max(...(firsts as number[])) : null;
  const some = firsts.filter((x): x is number => x !== null);
  return { ...t, allResumedMs: all, firstResumedMs: some.length ? Math.min(...some) : null };
}

async function role(e: Endpoint): Promise<string> {
  try {
    const r = await command(e, ['ROLE'], 2000);
    return Array.isArray(r) ? String(r[0]) : String(r);
  } catch (e2) {
    return `unreachable (${(e2 as Error).message})`;
  }
}

async function waitLinkUp(replica: RedisServer, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await command({ port: replica.port }, ['INFO', 'replication']).catch(() => '');
    if (typeof info === 'string' && info.includes('master_link_status:up')) return;
    if (Date.now() > deadline) throw new Error(`replica 127.0.0.1:${replica.port} did not sync with its master`);
    await sleep(100);
  }
}

/** kill -9 and wait until the process is gone (its exit is seen). */
async function kill9(procs: Procs, r: RedisServer): Promise<{ killAt: number; deadAt: number }> {
  const gone = new Promise<void>((resolve) => (r.child.exited ? resolve() : r.child.proc.once('exit', () => resolve())));
  const killAt = performance.now();
  procs.kill9(r.child);
  await gone;
  return { killAt, deadAt: performance.now() };
}

const STEADY_MS = 3000;
const AFTER_MS = 1000;
const limitFor = (p: Profile): number => 6 * (p.checkMs + p.leaseMs + p.downAfterMs) + 30000;

/** Ringside: 3 masters + 3 replicas, `ringside create` with the profile's timing, 3 sidecars, one writer each. */
async function ringsideTrial(procs: Procs, p: Profile, round: number, say: (s: string) => void): Promise<Trial> {
  const started = procs.children.length;
  const masters: RedisServer[] = [];
  const replicas: RedisServer[] = [];
  const writers: Writer[] = [];
  try {
    for (let i = 1; i <= 3; i++) masters.push(await startRedis(procs, `fo-master${i}`));
    for (let i = 1; i <= 3; i++) replicas.push(await startRedis(procs, `fo-replica${i}`));
    await createCluster(masters, say, {
      replicas,
      createArgs: ['--check-ms', String(p.checkMs), '--lease-ms', String(p.leaseMs), '--down-after-ms', String(p.downAfterMs)],
    });
    await waitLinkUp(replicas[0]!);
    const sidecars = [];
    for (let i = 1; i <= 3; i++)
      sidecars.push(
        await startRingside(
          procs,
          masters,
          // the timing given explicitly too, as an operator would: the sidecar sizes its control
          // connections' timeouts from checkMs before it has read the configuration
          ['--id', `bench-sc${i}`, '--log-level', 'info', '--check-ms', String(p.checkMs), '--lease-ms', String(p.leaseMs)],
          `fo-sidecar${i}`,
        ),
      );

    // Keys whose slot belongs to the first node (the one whose master is killed).
    const text = await command({ port: masters[0]!.port }, ['GET', '__cluster__:config']);
    if (typeof text !== 'string') throw new Error('no __cluster__:config on the first master');
    const cfg = JSON.parse(text) as { nodes: Record<string, { master: string }>; slots: Array<[number, number, string]> };
    const victimAddr = `127.0.0.1:${masters[0]!.port}`;
    const victim = Object.keys(cfg.nodes).find((n) => cfg.nodes[n]!.master === victimAddr);
    if (!victim) throw new Error(`no node has master ${victimAddr}`);
    const owned = new Uint8Array(1024);
    for (const [a, b, n] of cfg.slots) if (n === victim) for (let s = a; s <= b; s++) owned[s] = 1;
    const slotOf = (require(path.join(ROOT, 'dist/src/cluster/slot.js')) as { slotOf(k: string): number }).slotOf;
    const keyFor = (prefix: string): ((seq: number) => string) => {
      let i = 0;
      return () => {
        for (;;) {
          const k = `fo:${prefix}:${i++}`;
          if (owned[slotOf(k)]) return k;
        }
      };
    };
    sidecars.forEach((sc, i) => {
      const w = new Writer(`sidecar${i + 1}`, async () => sc.tcp, keyFor(`r${round}:w${i}`), Math.max(30000, 3 * p.leaseMs));
      writers.push(w);
      w.start();
    });
    await sleep(STEADY_MS);
    if (writers.some((w) => w.acksSentAfter(0) === 0))
      throw new Error(`no acknowledged write before the kill: ${JSON.stringify(writers.map((w) => w.errors))}`);
    const { killAt, deadAt } = await kill9(procs, masters[0]!);
    say(`failover: ringside ${p.name} round ${round}: killed master ${victimAddr} (node ${victim})`);
    await waitResumed(writers, deadAt, limitFor(p));
    await sleep(AFTER_MS);
    await Promise.all(writers.map((w) => w.stop()));
    const promoted = (await role({ port: replicas[0]!.port })) === 'master';
    return summarizeTrial({ system: 'ringside', profile: p.name, round, promoted, writers: writers.map((w) => w.stats(killAt, deadAt)) });
  } finally {
    await Promise.all(writers.map((w) => w.stop()));
    await Promise.all(procs.children.slice(started).reverse().map((c) => procs.stop(c)));
  }
}

/** Sentinel: one master + one replica, three sentinels (quorum 2), three Sentinel-aware writers. */
async function sentinelTrial(procs: Procs, p: Profile, round: number, say: (s: string) => void): Promise<Trial> {
  const started = procs.children.length;
  const writers: Writer[] = [];
  try {
    const master = await startRedis(procs, 'st-master');
    const replica = await startRedis(procs, 'st-replica', ['--replicaof', '127.0.0.1', String(master.port)]);
    await waitLinkUp(replica);
    const sentinels: Array<{ port: number }> = [];
    for (let i = 1; i <= 3; i++) {
      const port = await freePort();
      const conf = path.join(procs.work, `sentinel${i}.conf`);
      fs.writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'daemonize no',
          `dir ${procs.work}`,
          'sentinel resolve-hostnames no',
          `sentinel monitor mymaster 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds mymaster ${p.downAfterMs}`,
          'sentinel failover-timeout mymaster 60000',
          'sentinel parallel-syncs mymaster 1',
          '',
        ].join('\n'),
      );
      const child = procs.start(`sentinel${i}`, 'redis-server', [conf, '--sentinel']);
      await waitReady({ port }, child, `sentinel${i}`);
      sentinels.push({ port });
    }
    // Wait until every sentinel knows the other two and the replica (hello messages every 2 s).
    const deadline = Date.now() + 30000;
    for (;;) {
      let ok = true;
      for (const s of sentinels) {
        const others = await command(s, ['SENTINEL', 'sentinels', 'mymaster']).catch(() => []);
        const reps = await command(s, ['SENTINEL', 'replicas', 'mymaster']).catch(() => []);
        if (!Array.isArray(others) || others.length < 2 || !Array.isArray(reps) || reps.length < 1) ok = false;
      }
      if (ok) break;
      if (Date.now() > deadline) throw new Error('the sentinels did not discover each other and the replica within 30 s');
      await sleep(200);
    }
    let rr = 0;
    const resolveMaster = async (): Promise<Endpoint> => {
      const s = sentinels[rr++ % sentinels.length]!;
      const r = await command(s, ['SENTINEL', 'get-master-addr-by-name', 'mymaster'], 1000);
      if (!Array.isArray(r) || r.length !== 2) throw new Error(`sentinel answered ${JSON.stringify(r)}`);
      return { host: String(r[0]), port: Number(r[1]) };
    };
    for (let i = 0; i < 3; i++) {
      const w = new Writer(`client${i + 1}`, resolveMaster, (seq) => `fo:s${round}:w${i}:${seq}`, 30000);
      writers.push(w);
      w.start();
    }
    await sleep(STEADY_MS);
    if (writers.some((w) => w.acksSentAfter(0) === 0))
      throw new Error(`no acknowledged write before the kill: ${JSON.stringify(writers.map((w) => w.errors))}`);
    const { killAt, deadAt } = await kill9(procs, master);
    say(`failover: sentinel ${p.name} round ${round}: killed master 127.0.0.1:${master.port}`);
    await waitResumed(writers, deadAt, limitFor(p));
    await sleep(AFTER_MS);
    await Promise.all(writers.map((w) => w.stop()));
    const promoted = (await role({ port: replica.port })) === 'master';
    return summarizeTrial({ system: 'sentinel', profile: p.name, round, promoted, writers: writers.map((w) => w.stats(killAt, deadAt)) });
  } finally {
    await Promise.all(writers.map((w) => w.stop()));
    await Promise.all(procs.children.slice(started).reverse().map((c) => procs.stop(c)));
  }
}

export interface FailoverResult {
  date: string;
  rounds: number;
  profiles: Profile[];
  trials: Trial[];
}

const sec = (ms: number | null | undefined): string => (ms === null || ms === undefined || !Number.isFinite(ms) ? '–' : (ms / 1000).toFixed(2));

export function failoverMarkdown(r: FailoverResult, header: string): string {
  const lines = [
    '# Fail-over time: Ringside beside Redis Sentinel',
    '',
    header,
    '',
    'kill -9 of a master under a steady write load (unique keys, one SET at a time per writer, retried every 10 ms on error). ' +
      'Time = from the kill until **every** writer has an acknowledged write again (its first write acknowledged after the kill); ' +
      `median over ${r.rounds} rounds, (min–max). Ringside: 3 masters + 3 replicas, 3 sidecars, each with a writer on keys of the killed ` +
      'master\'s slots. Sentinel: 1 master + 1 replica, 3 sentinels (quorum 2) with `down-after-milliseconds` = downAfterMs, 3 writers ' +
      'that ask a sentinel for the master (`SENTINEL get-master-addr-by-name`) on every reconnect.',
    '',
    '| profile | checkMs / leaseMs / downAfterMs | ringside s | sentinel s | ringside / sentinel | replica promoted (rs / st) |',
    '|:--|--:|--:|--:|--:|--:|',
  ];
  for (const p of r.profiles) {
    const cell = (sys: 'ringside' | 'sentinel'): { med: number; text: string; promoted: string } => {
      const ts = r.trials.filter((t) => t.system === sys && t.profile === p.name);
      const ok = ts.map((t) => t.allResumedMs).filter((x): x is number => x !== null);
      const med = median(ok);
      const failed = ts.length - ok.length;
      const text = !ts.length
        ? '–'
        : !ok.length
          ? `did not resume (${failed} of ${ts.length})`
          : `${sec(med)} (${sec(Math.min(...ok))}–${sec(Math.max(...ok))})${failed ? `, ${failed} of ${ts.length} did not resume` : ''}`;
      return { med, text, promoted: ts.length ? `${ts.filter((t) => t.promoted).length}/${ts.length}` : '–' };
    };
    const rs = cell('ringside');
    const st = cell('sentinel');
    const ratio = rs.med / st.med;
    lines.push(
      `| ${p.name} | ${p.checkMs} / ${p.leaseMs} / ${p.downAfterMs} | ${rs.text} | ${st.text} | ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '–'} | ${rs.promoted} / ${st.promoted} |`,
    );
  }
  const errs = r.trials.filter((t) => t.error);
  if (errs.length) {
    lines.push('', '## Failed trials', '');
    for (const t of errs) lines.push(`- ${t.system} ${t.profile} round ${t.round}: ${t.error}`);
  }
  lines.push('');
  return lines.join('\n');
}

export async function runFailover(
  procs: Procs,
  profiles: Profile[],
  rounds: number,
  systems: Array<'ringside' | 'sentinel'>,
  say: (s: string) => void,
): Promise<FailoverResult> {
  const result: FailoverResult = { date: new Date().toISOString(), rounds, profiles, trials: [] };
  for (const p of profiles)
    for (let round = 1; round <= rounds; round++)
      for (const sys of systems) {
        if (procs.shuttingDown) throw new Error('interrupted');
        let t: Trial;
        try {
          t = sys === 'ringside' ? await ringsideTrial(procs, p, round, say) : await sentinelTrial(procs, p, round, say);
        } catch (e) {
          if (procs.shuttingDown) throw e;
          t = { system: sys, profile: p.name, round, allResumedMs: null, firstResumedMs: null, promoted: false, writers: [], error: (e as Error).message };
        }
        result.trials.push(t);
        say(
          `failover: ${sys.padEnd(8)} ${p.name} round ${round}/${rounds}: ` +
            (t.error ? `FAILED: ${t.error.split('\n')[0]}` : `all writers resumed after ${sec(t.allResumedMs)} s (first ${sec(t.firstResumedMs)} s), promoted: ${t.promoted}`),
        );
      }
  return result;
}

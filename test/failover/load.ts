/**
 * The fail-over integration tests' harness (test/failover/sidecars-*.test.ts): several real
 * sidecars in front of a local cluster (in this process, and as `node bin/ringside.js serve`
 * children), a steady write load through them that records every write (history.ts), reading
 * everything back from the final masters, and what the masters say about elections.
 */
import path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { ClusterConfig, LOG_KEY, SlotTable, masters as mastersOf } from '../../src/cluster/config';
import { newest, readCopy } from '../../src/cluster/store';
import { slotOf } from '../../src/cluster/slot';
import { freePort, tiedToParent } from '../../src/embedded/redis-process';
import { NODE_FLAGS } from '../../src/cli/node-flags';
import { Sidecar } from '../../src/proxy/sidecar';
import { parseLogEntry, readMerged } from '../../src/failover/ops';
import type { Teardown } from '../helpers/cluster';
import type { Cluster } from './servers';
import { ReadBack, Write } from './history';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(ROOT, 'bin', 'ringside.js');

/** Unix ms with a fraction: comparable with Date.now() on this machine. */
export const now = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, fn: () => Promise<boolean> | boolean, ms = 20_000, every = 25): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

export interface SidecarHandle {
  name: string;
  port: number;
  /** in-process sidecars */
  sidecar?: Sidecar;
  /** child-process sidecars */
  child?: ChildProcess;
  /** the child's output so far (for failure messages) */
  output?: () => string;
}

/**
 * An in-process sidecar (id sc-<name>), stopped at teardown. checkMs and leaseMs are given
 * explicitly (the configuration's), as `ringside serve --check-ms --lease-ms` would: see
 * docs/failover.md, "Known limits", for why that matters with a stopped master.
 */
export async function inProcessSidecar(t: Teardown, c: Cluster, name: string, over: Record<string, unknown> = {}): Promise<SidecarHandle> {
  const { checkMs, leaseMs } = c.config.timing;
  const s = new Sidecar({ seeds: c.seeds.split(','), port: 0, id: `sc-${name}`, nodeTimeoutMs: 3000, checkMs, leaseMs, ...over });
  await s.start();
  t.teardown(() => s.stop(200));
  await s.ready();
  return { name, port: s.options.port, sidecar: s };
}

/**
 * `node <flags> bin/ringside.js serve ...` as a child process, stopped (SIGTERM, then SIGKILL) at
 * teardown, and killed by the kernel if this test process dies first (tiedToParent, on Linux).
 */
export async function childSidecar(t: Teardown, c: Cluster, name: string, args: string[] = [], opts: { waitToRoute?: boolean } = {}): Promise<SidecarHandle> {
  const port = await freePort();
  const [command, argv] = tiedToParent(process.execPath, [
    ...NODE_FLAGS, BIN, 'serve', '--seeds', c.seeds, '--port', String(port), '--metrics-port', 'off', '--id', `sc-${name}`, '--log-level', 'warn',
    '--check-ms', String(c.config.timing.checkMs), '--lease-ms', String(c.config.timing.leaseMs), ...args,
  ]);
  const child = spawn(command, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  });
  await waitFor(`sidecar ${name} to listen (output: ${out})`, () => /listening on/.test(out) || child.exitCode !== null, 15_000);
  if (child.exitCode !== null) throw new Error(`sidecar ${name} exited with ${child.exitCode}: ${out}`);
  if (opts.waitToRoute === false) return { name, port, child, output: () => out };
  // ready: a routed command answers
  const probe = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50, lazyConnect: false });
  probe.on('error', () => {});
  try {
    await waitFor(`sidecar ${name} to route`, async () => (await probe.get('ready-probe').then(() => true, () => false)), 15_000, 50);
  } finally {
    probe.disconnect();
  }
  return { name, port, child, output: () => out };
}

/** Shard (node name) of a key in a configuration. */
export function shardOf(config: ClusterConfig, key: string): string {
  return SlotTable.from(config).nodeOf(slotOf(key));
}

export interface LoadOptions {
  /** writers per sidecar */
  perSidecar: number;
  /** pause between two writes of a writer (keeps two cores from saturating) */
  pauseMs?: number;
  prefix?: string;
  /** reply bound per write (a write without a reply by then is 'pending') */
  timeoutMs?: number;
}

/**
 * Writers, each an ioredis client to one sidecar writing unique keys (over all slots) one at a
 * time with a unique value, recording every write (history.ts).
 */
export class WriteLoad {
  readonly history: Write[] = [];
  #stopped = false;
  #loops: Promise<void>[] = [];
  #clients: Redis[] = [];
  readonly #shard: (key: string) => string;

  constructor(
    readonly sidecars: SidecarHandle[],
    config: ClusterConfig,
    readonly opts: LoadOptions,
  ) {
    const table = SlotTable.from(config);
    this.#shard = (k) => table.nodeOf(slotOf(k));
  }

  start(): void {
    for (const sc of this.sidecars)
      for (let i = 0; i < this.opts.perSidecar; i++) {
        const name = `${sc.name}.w${i}`;
        const c = new Redis({
          port: sc.port,
          host: '127.0.0.1',
          maxRetriesPerRequest: 0,
          autoResendUnfulfilledCommands: false,
          retryStrategy: () => 20,
          commandTimeout: this.opts.timeoutMs ?? 10_000,
        });
        c.on('error', () => {});
        this.#clients.push(c);
        this.#loops.push(this.#loop(c, name, sc.name));
      }
  }

  async #loop(c: Redis, name: string, via: string): Promise<void> {
    const prefix = this.opts.prefix ?? 'h';
    const tag = Math.random().toString(36).slice(2, 8);
    for (let seq = 0; !this.#stopped; seq++) {
      const key = `${prefix}:${name}:${seq}`;
      const w: Write = { key, value: `${name}:${seq}:${tag}`, writer: name, via, shard: this.#shard(key), sentAt: now(), ackAt: null, outcome: 'pending' };
      this.history.push(w);
      try {
        const r = await c.set(key, w.value);
        w.ackAt = now();
        if (r === 'OK') w.outcome = 'ok';
        else {
          w.outcome = 'error';
          w.error = `reply ${JSON.stringify(r)}`;
        }
      } catch (e) {
        w.ackAt = now();
        const msg = (e as Error).message;
        if (/timed out/i.test(msg)) w.outcome = 'pending';
        else {
          w.outcome = 'error';
          w.error = msg;
        }
        await sleep(5);
      }
      if (this.opts.pauseMs) await sleep(this.opts.pauseMs);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    for (const c of this.#clients) c.disconnect();
  }

  get writers(): string[] {
    return [...new Set(this.history.map((w) => w.writer))];
  }

  /** Acknowledged writes in `shard` sent after `t`, per writer. */
  ackedAfter(shard: string, t: number): Map<string, Write[]> {
    const m = new Map<string, Write[]>(this.writers.map((x) => [x, []]));
    for (const w of this.history) if (w.shard === shard && w.outcome === 'ok' && w.sentAt > t) m.get(w.writer)!.push(w);
    return m;
  }

  /** Every writer has an acknowledged write in `shard` sent after `t`. */
  allResumed(shard: string, t: number): boolean {
    return [...this.ackedAfter(shard, t).values()].every((l) => l.length > 0);
  }

  /** ms from `t` to the first and to the last writer's first acknowledgement in `shard` of a write sent after `t`. */
  resumeTimes(shard: string, t: number): { first: number; all: number } | null {
    const firsts = [...this.ackedAfter(shard, t).values()].map((l) => (l.length ? Math.min(...l.map((w) => w.ackAt!)) : NaN));
    if (firsts.some((x) => Number.isNaN(x))) return null;
    return { first: Math.min(...firsts) - t, all: Math.max(...firsts) - t };
  }

  /** Error replies grouped (digits masked), for comments. */
  errorKinds(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.history)
      if (w.outcome !== 'ok') {
        const k = (w.error ?? w.outcome).replace(/\d+/g, 'N').slice(0, 90);
        out[k] = (out[k] ?? 0) + 1;
      }
    return out;
  }
}

/** Reads every key from every address (MGET in chunks). */
export async function readBack(c: Cluster, addresses: string[], keys: string[]): Promise<ReadBack> {
  const found: ReadBack = new Map();
  for (const a of addresses) {
    const client = c.client(a);
    for (let i = 0; i < keys.length; i += 2000) {
      const chunk = keys.slice(i, i + 2000);
      const vals = await client.mget(...chunk);
      vals.forEach((v, j) => {
        if (v === null) return;
        const k = chunk[j]!;
        const l = found.get(k) ?? [];
        l.push({ master: a, value: v });
        found.set(k, l);
      });
    }
  }
  return found;
}

/** The newest configuration on the given nodes. */
export async function newestConfig(c: Cluster, addresses: string[]): Promise<ClusterConfig> {
  const best = newest(await Promise.all(addresses.map((a) => readCopy(c.client(a), a))));
  if (!best) throw new Error(`no configuration on ${addresses.join(', ')}`);
  return best.config;
}

/** Every node's address, for reading configurations and logs wherever they are. */
export const allAddresses = (c: Cluster): string[] => c.shards.flatMap((s) => [s.master.address, ...s.replicas.map((r) => r.address)]);

/** Event-log entries (merged from `addresses`) of the given kinds. */
export async function logEvents(c: Cluster, addresses: string[], kinds: string[]): Promise<Array<Record<string, unknown>>> {
  const clients = new Map(addresses.map((a) => [a, c.client(a)]));
  const { entries } = await readMerged(clients, LOG_KEY, 1000, parseLogEntry, (e) => e.time, 1000);
  return entries.filter((e) => kinds.includes(e.event) && e.doc).map((e) => e.doc!);
}

/** `cmdstat_<name>` calls on a node (0 when never called). */
export async function commandCalls(client: Redis, name: string): Promise<number> {
  const info = await client.info('commandstats');
  const m = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

/** `INFO replication` role and (for a replica) its master. */
export async function roleOf(client: Redis): Promise<{ role: string; master: string | null; linkUp: boolean }> {
  const info = await client.info('replication');
  const f = (k: string): string | undefined => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  const role = f('role') ?? '?';
  return { role, master: role === 'slave' ? `${f('master_host')}:${f('master_port')}` : null, linkUp: f('master_link_status') === 'up' };
}

/** The final masters of the newest configuration. */
export async function finalMasters(c: Cluster): Promise<{ config: ClusterConfig; masters: string[] }> {
  const config = await newestConfig(c, allAddresses(c));
  return { config, masters: mastersOf(config) };
}

/** The first key `${prefix}${i}` whose slot belongs to the master `address` in `config`. */
export function keyOn(config: ClusterConfig, address: string, prefix: string): string {
  const table = SlotTable.from(config);
  for (let i = 0; ; i++) {
    const k = `${prefix}${i}`;
    if (config.nodes[table.nodeOf(slotOf(k))]!.master === address) return k;
  }
}

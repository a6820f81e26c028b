/**
 * A small harness of real redis-server processes for the fail-over tests (until the shared one in
 * test/helpers/cluster.ts is there): masters with replicas on free loopback ports, the initial
 * configuration written to every master, everything stopped at the end of the test.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { ClusterConfig, FailoverMode, Timing, initialConfig } from '../../src/cluster/config';
import { controlClient, writeEverywhere } from '../../src/cluster/store';

interface Tap {
  teardown(fn: () => unknown): void;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class Server {
  readonly address: string;
  #proc: ChildProcess | null = null;
  #args: string[];
  constructor(
    readonly port: number,
    args: string[],
  ) {
    this.address = `127.0.0.1:${port}`;
    this.#args = args;
  }
  async start(): Promise<void> {
    this.#proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', ...this.#args], { stdio: 'ignore' });
    const c = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    for (let i = 0; i < 200; i++) {
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        return;
      } catch {
        c.disconnect();
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    throw new Error(`redis-server on ${this.port} did not start`);
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#proc?.kill(signal);
  }
  pause(): void {
    this.kill('SIGSTOP');
  }
  resume(): void {
    this.kill('SIGCONT');
  }
  async stop(): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGCONT');
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await done;
  }
}

export interface Shard {
  master: Server;
  replicas: Server[];
}

export interface Cluster {
  shards: Shard[];
  config: ClusterConfig;
  /** a control client per address, closed at teardown */
  client(address: string): Redis;
  masters(): Map<string, Redis>;
  seeds: string;
}

export async function startCluster(
  t: Tap,
  opts: { masters?: number; replicasPerMaster?: number; timing?: Partial<Timing>; failover?: FailoverMode } = {},
): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'ringside-failover-'));
  const all: Server[] = [];
  const clients = new Map<string, Redis>();
  t.teardown(async () => {
    for (const c of clients.values()) c.disconnect();
    await Promise.all(all.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  const base = ['--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0', '--protected-mode', 'no', '--dir', dir];
  const shards: Shard[] = [];
  for (let i = 0; i < (opts.masters ?? 3); i++) {
    const mport = await freePort();
    const master = new Server(mport, [...base, '--dbfilename', `m${i}.rdb`]);
    all.push(master);
    await master.start();
    const replicas: Server[] = [];
    for (let j = 0; j < (opts.replicasPerMaster ?? 1); j++) {
      const port = await freePort();
      const r = new Server(port, [...base, '--dbfilename', `r${i}-${j}.rdb`, '--replicaof', '127.0.0.1', String(mport)]);
      all.push(r);
      await r.start();
      replicas.push(r);
    }
    shards.push({ master, replicas });
  }
  const client = (a: string): Redis => {
    let c = clients.get(a);
    if (!c) clients.set(a, (c = controlClient(a)));
    return c;
  };
  // wait for every replication link
  for (const s of shards)
    for (const r of s.replicas)
      for (let i = 0; ; i++) {
        const info = await client(r.address).info('replication');
        if (info.includes('master_link_status:up')) break;
        if (i > 400) throw new Error(`replica ${r.address} never linked`);
        await new Promise((res) => setTimeout(res, 25));
      }
  const config = initialConfig(
    shards.map((s) => ({ master: s.master.address, replicas: s.replicas.map((r) => r.address) })),
    { failover: opts.failover, timing: opts.timing },
  );
  const masters = (): Map<string, Redis> => new Map(shards.map((s) => [s.master.address, client(s.master.address)]));
  const res = await writeEverywhere(masters(), config);
  for (const [a, r] of res) if (r !== 'written') throw new Error(`config not written on ${a}: ${String(r)}`);
  return { shards, config, client, masters, seeds: shards.map((s) => s.master.address).join(',') };
}

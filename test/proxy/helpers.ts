/**
 * Helpers for the data-path tests: a sidecar in front of a LocalCluster, ioredis clients to it,
 * raw RESP sockets, and slot-owner lookups straight from the configuration the cluster holds.
 */
import net from 'node:net';
import Redis from 'ioredis';
import Parser from 'redis-parser';
import { Sidecar, SidecarConfig } from '../../src/proxy/sidecar';
import { ClusterConfig, SlotTable } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Teardown } from '../helpers/cluster';

/** Starts a sidecar on a free port in front of `cluster`, ready to route; stopped when `t` ends. */
export async function startSidecar(t: Teardown, cluster: LocalCluster, over: Partial<SidecarConfig> = {}): Promise<Sidecar> {
  // no fail-over agent unless asked: these are data-path tests, on a cluster timed for tests (a
  // 300 ms down-after) and sharing the test's event loop, where a busy moment is not a failure
  const s = new Sidecar({ seeds: cluster.seeds, port: 0, checkMs: 200, leaseMs: 2000, nodeTimeoutMs: 3000, failover: false, ...over });
  await s.start();
  t.teardown(() => s.stop(200));
  await s.ready();
  return s;
}

/** ioredis to the sidecar; never retries a command on its own, so every reply is the sidecar's. */
export function sidecarClient(t: Teardown, s: Sidecar, opts: Record<string, unknown> = {}): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port: s.options.port,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: false,
    retryStrategy: () => null,
    ...opts,
  });
  c.on('error', () => {
    /* surfaced through the failing commands */
  });
  t.teardown(() => c.disconnect());
  return c;
}

/** Master address owning `key`'s slot. */
export function ownerOf(config: ClusterConfig, key: string): string {
  const table = SlotTable.from(config);
  return config.nodes[table.nodeOf(slotOf(key))]!.master;
}

/** Node (shard) name owning `key`'s slot. */
export function shardOf(config: ClusterConfig, key: string): string {
  return SlotTable.from(config).nodeOf(slotOf(key));
}

/** `n` keys with prefix `p` on each master, in master order: keysPerMaster(config, 'k', 2) */
export function keysPerMaster(config: ClusterConfig, prefix: string, n: number): Map<string, string[]> {
  const out = new Map<string, string[]>(Object.values(config.nodes).map((x) => [x.master, []]));
  for (let i = 0; [...out.values()].some((l) => l.length < n); i++) {
    const k = `${prefix}${i}`;
    const l = out.get(ownerOf(config, k))!;
    if (l.length < n) l.push(k);
  }
  return out;
}

/** A raw RESP connection: write bytes, read decoded replies (errors as Error objects). */
export class RawClient {
  readonly socket: net.Socket;
  readonly replies: unknown[] = [];
  /** per chunk the socket delivered: how many replies were complete once it was parsed */
  readonly repliesAfterChunk: number[] = [];
  closed = false;
  #waiters: Array<() => void> = [];
  readonly #parser: Parser;
  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.#parser = new Parser({
      returnReply: (r: unknown) => this.#push(r),
      returnError: (e: Error) => this.#push(e),
      returnFatalError: (e: Error) => this.#push(e),
    });
    this.socket.on('data', (d: Buffer) => {
      this.#parser.execute(d);
      this.repliesAfterChunk.push(this.replies.length);
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }
  static async connect(t: Teardown, port: number): Promise<RawClient> {
    const c = new RawClient(port);
    t.teardown(() => c.socket.destroy());
    await new Promise<void>((res, rej) => {
      c.socket.once('connect', () => res());
      c.socket.once('error', rej);
    });
    return c;
  }
  #push(r: unknown): void {
    this.replies.push(r);
    this.#wake();
  }
  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }
  /** Resolves once `n` replies have arrived in total (or the connection closed); rejects after `ms`. */
  async waitReplies(n: number, ms = 10_000): Promise<unknown[]> {
    const until = Date.now() + ms;
    while (this.replies.length < n && !this.closed) {
      if (Date.now() > until) throw new Error(`only ${this.replies.length} of ${n} replies after ${ms} ms`);
      await new Promise<void>((res) => {
        this.#waiters.push(res);
        setTimeout(res, 100);
      });
    }
    return this.replies;
  }
  /** Resolves once the server has closed the connection; rejects after `ms`. */
  async waitClosed(ms = 10_000): Promise<void> {
    const until = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > until) throw new Error(`connection still open after ${ms} ms`);
      await new Promise<void>((res) => {
        this.#waiters.push(res);
        setTimeout(res, 100);
      });
    }
  }
}

/** RESP multibulk for `args`, by hand (independent of the code under test). */
export function resp(...args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses redis INFO commandstats into { cmd: calls }. */
export function commandCalls(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

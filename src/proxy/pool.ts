/**
 * Shared pipelined connections to the data nodes, by address: `per` connections each (1 by
 * default: one pipelined connection keeps Redis's single thread busiest), picked round-robin.
 * Dedicated connections (transactions, blocking commands, pub/sub) are made apart from the pool
 * and closed by their owner.
 */
import { NodeConnection, NodeConnectionOptions, NodeError } from './node-connection';
import type { Durability } from './durability';
import { Stats } from '../observe/stats';
import { CredentialStore, Role, authCommand, authFailure, nodeCredentials } from '../cluster/credentials';

export interface PoolOptions {
  per: number;
  timeoutMs: number;
  connectTimeoutMs: number;
  retryDelayMs: number;
  stats: Stats;
  /** a node refused a connection, timed out or dropped one */
  onNodeDown?: (address: string, err: NodeError) => void;
  /** how an address is named in errors ("node a (127.0.0.1:7001)") */
  label?: (address: string) => string;
  /** the node credentials (default: the process's) */
  credentials?: CredentialStore;
}

/** sent first on connections for RESP3 clients: the node then answers in RESP3, forwarded as is */
const HELLO3 = Buffer.from('*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n');

export type Proto = 2 | 3;

export class Pool {
  readonly #opts: PoolOptions;
  readonly #conns = new Map<string, { list: NodeConnection[] }>();
  readonly #dedicated = new Set<NodeConnection>();
  constructor(opts: PoolOptions) {
    this.#opts = opts;
  }

  get credentials(): CredentialStore {
    return this.#opts.credentials ?? nodeCredentials;
  }

  connectionOptions(address: string, dedicated = false, proto: Proto = 2, role: Role = 'data'): NodeConnectionOptions {
    const stats = this.#opts.stats;
    const creds = this.credentials;
    const label = this.#opts.label?.(address) ?? `node ${address}`;
    return {
      // HELLO 3 AUTH does both; the credentials are read at each connect (a SIGHUP may change them)
      handshake: () => {
        const c = creds.get(role);
        if (c) return { bytes: authCommand(c, proto), replies: 1 };
        return proto === 3 ? { bytes: HELLO3, replies: 1 } : null;
      },
      handshakeError: (msg) => authFailure(label, role, creds.user(role), msg),
      timeoutMs: dedicated ? 0 : this.#opts.timeoutMs,
      connectTimeoutMs: this.#opts.connectTimeoutMs,
      retryDelayMs: dedicated ? 0 : this.#opts.retryDelayMs,
      label,
      onDown: (_c, err) => {
        stats.nodeConnections.set(address, Math.max(0, (stats.nodeConnections.get(address) ?? 1) - 1));
        this.#opts.onNodeDown?.(address, err);
      },
      onUp: () => stats.nodeConnections.set(address, (stats.nodeConnections.get(address) ?? 0) + 1),
      latency: stats.node(address),
      onBytesOut: (n) => stats.nodeBytesOut.set(address, (stats.nodeBytesOut.get(address) ?? 0) + n),
    };
  }

  /** The shared connection for `address`; `hint` (the session id) keeps one client on one connection, so its commands to one node keep their order. */
  get(address: string, hint = 0, proto: Proto = 2): NodeConnection {
    const key = proto === 3 ? address + '#3' : address;
    let e = this.#conns.get(key);
    if (!e) {
      e = { list: [] };
      for (let i = 0; i < this.#opts.per; i++) {
        const c = new NodeConnection(address, this.connectionOptions(address, false, proto, 'data'));
        c.setDurability(this.#durableFor(address, false));
        e.list.push(c);
      }
      this.#conns.set(key, e);
    }
    if (e.list.length === 1) return e.list[0]!;
    return e.list[hint % e.list.length]!;
  }

  /**
   * A shared connection that runs as the control user, for the sidecar's own keyspace-wide work
   * (FLUSHALL keeping metadata, SCAN hiding it, INFO, CONFIG): the data connection itself when the
   * two roles have the same credentials.
   */
  control(address: string, hint = 0, proto: Proto = 2): NodeConnection {
    if (!this.credentials.split) return this.get(address, hint, proto);
    const key = address + (proto === 3 ? '#3c' : '#c');
    let e = this.#conns.get(key);
    if (!e) {
      const c = new NodeConnection(address, this.connectionOptions(address, false, proto, 'control'));
      c.setDurability(this.#durableFor(address, false));
      e = { list: [c] };
      this.#conns.set(key, e);
    }
    return e.list[0]!;
  }

  /** A new connection owned by the caller (closed by it, or by a fence). */
  dedicated(address: string, proto: Proto = 2): NodeConnection {
    const c = new NodeConnection(address, this.connectionOptions(address, true, proto));
    c.setDurability(this.#durableFor(address, true));
    this.#dedicated.add(c);
    return c;
  }

  /** per master, how many replicas must confirm its writes (durability "replica"), or null */
  #durableMasters: Map<string, number> | null = null;

  #durableFor(address: string, dedicated: boolean): Durability | null {
    const replicas = this.#durableMasters?.get(address);
    if (replicas === undefined) return null;
    // WAIT's own bound stays under the command timeout, so a late replica fails the writes, not the connection
    const waitMs = dedicated || this.#opts.timeoutMs <= 0 ? 1000 : Math.max(50, Math.min(1000, Math.floor(this.#opts.timeoutMs / 3)));
    return { replicas, waitMs };
  }

  /**
   * Durable mode on (each master with the number of replicas that must confirm) or off (null), on
   * every connection now open and every one made later. Replicas never get a WAIT (they refuse it,
   * and nothing is written there).
   */
  setDurability(masters: Map<string, number> | null): void {
    this.#durableMasters = masters;
    for (const e of this.#conns.values()) for (const c of e.list) c.setDurability(this.#durableFor(c.address, false));
    for (const c of this.#dedicated) c.setDurability(this.#durableFor(c.address, true));
  }

  /**
   * Fails everything in flight to `address` and drops its connections, shared and dedicated:
   * used when the node enters a switch of master, so no reply from the old master that arrives
   * after the hint is passed on as a success. New connections are made on demand.
   */
  fence(address: string, reason: string): void {
    for (const key of [address, address + '#3', address + '#c', address + '#3c']) {
      const e = this.#conns.get(key);
      if (!e) continue;
      this.#conns.delete(key);
      for (const c of e.list) c.close(reason);
    }
    for (const c of this.#dedicated) {
      if (c.state === 'closed') this.#dedicated.delete(c);
      else if (c.address === address) {
        this.#dedicated.delete(c);
        c.close(reason);
      }
    }
  }

  /** Fences every address (the lease ran out). */
  fenceAll(reason: string): void {
    for (const a of new Set([...[...this.#conns.values()].map((e) => e.list[0]!.address), ...[...this.#dedicated].map((c) => c.address)])) this.fence(a, reason);
  }

  /** True when the shared connection to `address` is failing fast (known down). Bound: pass it as a function. */
  readonly isDown = (address: string): boolean => {
    const e = this.#conns.get(address);
    return e !== undefined && e.list.every((c) => c.failingFast);
  };

  addresses(): string[] {
    return [...new Set([...this.#conns.values()].map((e) => e.list[0]!.address))];
  }

  /** Closes connections to addresses no longer in the configuration, once idle. */
  retain(keep: Set<string>): void {
    for (const [key, e] of this.#conns) {
      if (keep.has(e.list[0]!.address)) continue;
      this.#conns.delete(key);
      for (const c of e.list) c.closeWhenIdle();
    }
  }

  close(): void {
    for (const e of this.#conns.values()) for (const c of e.list) c.close('closed: the sidecar is stopping');
    this.#conns.clear();
    for (const c of this.#dedicated) c.close('closed: the sidecar is stopping');
    this.#dedicated.clear();
  }
}


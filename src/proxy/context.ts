/**
 * What the command families see: the narrow `Session` interface a client connection offers them
 * (after Envoy's SplitCallbacks and ioredis's DataHandler), and the `SidecarContext` every session
 * shares — options, stats, the cluster view, the node pool, the script cache. The families
 * (src/proxy/dispatch.ts lists them) import these types only, never the session's class, so no
 * module in src/ imports another in a cycle (scripts/check-cycles.js checks it in `npm test`).
 */
import type net from 'node:net';
import type { ParseLimits, ParsedCommand } from '../resp/request-parser';
import type { Stats } from '../observe/stats';
import type { SlowLog } from '../observe/slowlog';
import type { NodeInfoFields } from '../observe/info';
import type { ClusterView } from './cluster-view';
import type { Routing } from './routing';
import type { Pool } from './pool';
import type { ClientAuth } from './client-auth';
import type { NodeConnection } from './node-connection';
import type { CommandSpec } from '../commands/table';
import type { Family, Request, RequestOwner, SimpleRequest } from './requests';
import type { ScriptCache } from './script-cache';

export type ReadFrom = 'master' | 'replica' | 'any';

export interface SidecarOptions {
  id: string;
  port: number;
  bind: string;
  unixsocket?: string;
  unixsocketperm?: number;
  readFrom: ReadFrom;
  /** requests waiting per client before reading from it pauses */
  maxInflight: number;
  /** bytes in a client's write buffer before reading from it pauses */
  outputLimit: number;
  /** bytes in a client's write buffer that close the client (0 = never), like client-output-buffer-limit */
  outputHardLimit: number;
  /** the same for a client in pub/sub mode (Redis: 32 MB) */
  pubsubOutputHardLimit: number;
  limits: ParseLimits;
  nodeTimeoutMs: number;
  connectTimeoutMs: number;
  retryDelayMs: number;
  poolPer: number;
  maxClients: number;
}

/** A client state that takes over dispatch (MULTI, SUBSCRIBE, a blocked command). */
export interface SessionMode {
  /** Handles the command; returns false to let normal dispatch handle it. */
  dispatch(cmd: ParsedCommand, spec: CommandSpec | undefined, t0: number): boolean;
  /** The client went away or RESET: release what the mode holds. */
  close(): void;
}

/** What the session needs of a transaction's state (src/proxy/transaction.ts makes it). */
export interface TransactionLike extends SessionMode {
  /** the dedicated connection holding a WATCH, if any */
  readonly conn: NodeConnection | null;
  /** RESET: leave MULTI and WATCH */
  resetState(): void;
  /** commands queued in MULTI, or -1 outside MULTI (CLIENT LIST's `multi=`) */
  readonly queuedCount: number;
  /** a transaction's publishes are still going out (the client's later PUBLISH waits for them) */
  readonly publishesPending: boolean;
}

/** What the session needs of a client's subscriptions (src/proxy/pubsub.ts makes them). */
export interface PubSubLike extends SessionMode {}

/** The per-command dispatch entry: a command family's handler (src/proxy/dispatch.ts). */
export type FamilyHandler = (s: Session, cmd: ParsedCommand, spec: CommandSpec, t0: number) => void;

/**
 * One client connection, as the command families see it: its identity and protocol state, its
 * in-order queue of requests (enqueue, reply, refuse), and its node connections. Routing is not
 * here: it is src/proxy/router.ts (pure) and src/proxy/keyed.ts.
 */
export interface Session extends RequestOwner {
  readonly id: number;
  readonly ctx: SidecarContext;
  readonly socket: net.Socket;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt: number;
  name: string;
  /** false until AUTH/HELLO AUTH succeeds when the sidecar asks clients for a password */
  authed: boolean;
  /** the user the client authenticated as ("default" until then) */
  user: string;
  /** the protocol the client chose with HELLO */
  proto: 2 | 3;
  lastCommand: string;
  readonly lastActive: number;
  /** wall clock at which the chunk being dispatched arrived */
  readonly now: number;
  /** the state that takes over dispatch, if any */
  mode: SessionMode | null;
  /** transaction state (WATCH/MULTI), made on first use by src/proxy/transaction.ts */
  tx: TransactionLike | null;
  /** subscriptions, made on first use by src/proxy/pubsub.ts */
  subscriptions: PubSubLike | null;
  /** channels, patterns and shard channels subscribed (for CLIENT LIST) */
  subs: { channels: number; patterns: number; shard: number };
  /** the master this client last wrote to (WAIT) */
  lastWriteAddress: string;
  readonly inflight: number;
  readonly queuedBytes: number;
  readonly outputBytes: number;
  /** the null reply in the client's protocol */
  readonly nullReply: Buffer;

  /** Adds a request at the tail of the client's queue. */
  enqueue(req: Request): void;
  /** Queues an answer the sidecar makes itself. */
  reply(name: string, buf: Buffer, refused?: boolean, family?: Family): void;
  /** Queues an error answer (a refusal; counted as refused). */
  refuse(name: string, message: string): void;
  /** Answers OK, then closes once every reply is written. */
  quit(): void;
  /** Closes the connection at once, without a reply, and reads nothing more from it. */
  abort(): void;
  /** Writes a reply now (pub/sub pushes), after whatever is queued. */
  push(buf: Buffer): void;
  /** The connection for commands to `addr`: the pinned one while WATCH holds it, else shared. */
  connFor(addr: string): NodeConnection;
  /** The client's own connections that wait on a blocking command now (CLIENT UNBLOCK). */
  blockedConnections(): NodeConnection[];
  /** The client's own connection to `addr` for blocking commands. */
  dedicatedFor(addr: string): NodeConnection;
  /** Starts a deferred request that has reached the head of the queue. */
  startDeferred(): void;
  /** The dispatch of a command by its family, bypassing the session's mode. */
  dispatchNormal(cmd: ParsedCommand, spec: CommandSpec | undefined, t0: number): void;
  /** CLIENT REPLY ON / OFF / SKIP. */
  replyMode(mode: 'on' | 'off' | 'skip'): void;
  /** RESET: leave transactions and pub/sub. */
  resetModes(): void;
}

/** Commands for a migrating slot (src/proxy/migration.ts). */
export interface MigrationPath {
  /** Sends a command for a migrating slot (queued already as `req`). */
  send(s: Session, req: SimpleRequest, spec: CommandSpec, cmd: ParsedCommand, r: Routing, mig: { from: string; to: string; toAddress: string }): void;
}

export interface SidecarContext {
  readonly options: SidecarOptions;
  readonly stats: Stats;
  readonly slowlog: SlowLog;
  readonly view: ClusterView;
  readonly pool: Pool;
  readonly migration: MigrationPath;
  readonly sessions: Set<Session>;
  /** script bodies seen (EVALSHA after a node restart) */
  readonly scripts: ScriptCache;
  /** passwords asked of clients (src/proxy/client-auth.ts) */
  readonly clientAuth: ClientAuth;
  sessionClosed(s: Session): void;
  /** INFO text for these sections ([] = default) */
  info(sections: string[], fromNodes?: NodeInfoFields): string;
  /** CLIENT PAUSE: until when (unix ms), and which commands wait */
  pausedUntil: number;
  pauseMode: 'all' | 'write';
}

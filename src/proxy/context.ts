/** What every session shares: options, stats, the cluster view, the node pool and the modes. */
import type { ParseLimits, ParsedCommand } from '../resp/request-parser';
import type { Stats } from '../observe/stats';
import type { SlowLog } from '../observe/slowlog';
import type { ClusterView, Routing } from './cluster-view';
import type { Pool } from './pool';
import type { ClientSession } from './session';
import type { CommandSpec } from '../commands/table';
import type { SimpleRequest } from './requests';
import type { ScriptCache } from './scripts';

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

export interface Modes {
  fanout(s: ClientSession, cmd: ParsedCommand, spec: CommandSpec, t0: number): void;
  script(s: ClientSession, cmd: ParsedCommand, spec: CommandSpec, t0: number): void;
  transaction(s: ClientSession, cmd: ParsedCommand, spec: CommandSpec, t0: number): void;
  blocking(s: ClientSession, cmd: ParsedCommand, spec: CommandSpec, t0: number): void;
  pubsub(s: ClientSession, cmd: ParsedCommand, spec: CommandSpec, t0: number): void;
}

export interface MigrationPath {
  /** Sends a command for a migrating slot (queued already as `req`). */
  send(s: ClientSession, req: SimpleRequest, spec: CommandSpec, cmd: ParsedCommand, r: Routing, mig: { from: string; to: string; toAddress: string }): void;
}

export interface SidecarContext {
  readonly options: SidecarOptions;
  readonly stats: Stats;
  readonly slowlog: SlowLog;
  readonly view: ClusterView;
  readonly pool: Pool;
  readonly modes: Modes;
  readonly migration: MigrationPath;
  readonly sessions: Set<ClientSession>;
  /** script bodies seen (EVALSHA after a node restart) */
  readonly scripts: ScriptCache;
  sessionClosed(s: ClientSession): void;
  /** INFO text for these sections ([] = default) */
  info(sections: string[]): string;
  /** CLIENT PAUSE: until when (unix ms), and which commands wait */
  pausedUntil: number;
  pauseMode: 'all' | 'write';
}

/**
 * A whole cluster of local `redis-server` processes: N masters with R replicas each, created
 * with `createCluster`. Used by `ringside demo` and by the integration tests.
 */
import { ClusterConfig, Durability, FailoverMode, Timing } from '../cluster/config';
import { createCluster } from '../admin/create';
import { RedisProcess } from './redis-process';
import { Credential, NodeCredentials, nodeCredentials } from '../cluster/credentials';
import { nodeTls } from '../cluster/node-tls';

/**
 * redis.conf lines that make `control` the node's administrator: `requirepass` for the default
 * user, or (a named user) that user with every right and the default user switched off. The data
 * user, when another, is set up by `create`. (A file, not arguments: a command line is public.)
 */
export function authConfig(control: Credential): string[] {
  const q = (v: string): string => `"${v.replace(/["\\]/g, (c) => '\\' + c)}"`;
  if (!control.user) return [`requirepass ${q(control.password)}`];
  return [`user ${control.user} on ${q('>' + control.password)} ~* &* +@all`, 'user default off'];
}

export interface LocalClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** Ports basePort, basePort+1, ...: shard i's master, then its replicas. Free ports when absent. */
  basePort?: number;
  timing?: Partial<Timing>;
  failover?: FailoverMode;
  durability?: Durability;
  /** Extra `redis-server` arguments for every process. */
  redisArgs?: string[];
  /**
   * Nodes that require credentials: the control user's are set on each server at start-up, the
   * data user (when another) by create. They become the process's node credentials (none: the
   * process's are cleared).
   */
  credentials?: NodeCredentials;
  /**
   * TLS-only nodes (plain ports off) with these PEM files (server and client certificate alike);
   * they become the process's TLS setting towards the nodes.
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export interface LocalShard {
  master: RedisProcess;
  replicas: RedisProcess[];
}

export class LocalCluster {
  readonly shards: LocalShard[];
  /** The configuration written by create (epoch 1 on fresh servers). */
  readonly config: ClusterConfig;
  #stopped = false;

  private constructor(shards: LocalShard[], config: ClusterConfig) {
    this.shards = shards;
    this.config = config;
  }

  static async start(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
    const masters = opts.masters ?? 3;
    const replicas = opts.replicasPerMaster ?? 1;
    if (!Number.isInteger(masters) || masters < 1) throw new RangeError('masters must be a whole number of at least 1');
    if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError('replicasPerMaster must be a whole number of at least 0');
    const control = opts.credentials ? (opts.credentials.control ?? opts.credentials.data) : undefined;
    // the cluster's way in becomes the process's, and a cluster without one clears what an earlier one set
    nodeCredentials.set(opts.credentials ?? {});
    nodeTls.set(opts.tls ? { caFile: opts.tls.caFile, certFile: opts.tls.certFile, keyFile: opts.tls.keyFile } : null);
    const args = opts.redisArgs ?? [];
    const config = control ? authConfig(control) : undefined;
    // Every process starts at once. When one fails, the others are waited for before anything is
    // stopped: a start still under way at that moment would otherwise finish afterwards, belong
    // to nobody, and keep running (and keep this process alive) until it exits.
    const size = 1 + replicas;
    const settled = await Promise.allSettled(
      Array.from({ length: masters * size }, (_, k) =>
        RedisProcess.start({ port: opts.basePort === undefined ? undefined : opts.basePort + k, args, config, auth: control, tls: opts.tls }),
      ),
    );
    const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const stopAll = (): Promise<unknown> => Promise.all(started.map((p) => p.stop({ removeDir: true })));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await stopAll();
      throw failed.reason;
    }
    const shards: LocalShard[] = Array.from({ length: masters }, (_, i) => ({
      master: started[i * size]!,
      replicas: started.slice(i * size + 1, (i + 1) * size),
    }));
    try {
      const config = await createCluster({
        shards: shards.map((s) => ({ master: s.master.address, replicas: s.replicas.map((r) => r.address) })),
        timing: opts.timing,
        failover: opts.failover,
        durability: opts.durability,
      });
      return new LocalCluster(shards, config);
    } catch (e) {
      await stopAll();
      throw e;
    }
  }

  /** Master addresses, in node order: what a sidecar or the CLI takes as --seeds. */
  get seeds(): string[] {
    return this.shards.map((s) => s.master.address);
  }

  /** Every process, masters and replicas. */
  get processes(): RedisProcess[] {
    return this.shards.flatMap((s) => [s.master, ...s.replicas]);
  }

  /** The process listening on `address`, if it is one of ours. */
  processAt(address: string): RedisProcess | undefined {
    return this.processes.find((p) => p.address === address);
  }

  /** Stops every process and removes their directories. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.processes.map((p) => p.stop({ removeDir: true })));
  }
}

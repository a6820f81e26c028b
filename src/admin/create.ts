/**
 * `ringside create`: turns plain Redis servers into a cluster. Checks that every address
 * answers, refuses when one already holds a configuration (unless forced), sets up replication
 * (REPLICAOF) and waits until every replica's link is up, then writes the initial configuration
 * to every master with compare-and-set and logs the event. Replicas receive the metadata by
 * replication; create waits (WAIT) until they have it.
 */
import Redis from 'ioredis';
import { ClusterConfig, Durability, FailoverMode, InitialShard, LOG_KEY, Timing, initialConfig, splitAddress } from '../cluster/config';
import { ControlOptions, controlClient, readCopy, writeCopy } from '../cluster/store';
import { AlreadyCreatedError, ConfigWriteError, ReplicationTimeoutError, UnreachableNodeError } from './errors';
import { CredentialStore, dataUserAcl, nodeCredentials } from '../cluster/credentials';
import { nodeTls } from '../cluster/node-tls';

export interface CreateOptions {
  /** One entry per node: its master and replica addresses ("host:port"). */
  shards: InitialShard[];
  failover?: FailoverMode;
  durability?: Durability;
  timing?: Partial<Timing>;
  /** Overwrite configurations the servers already hold (the new epoch is above theirs). */
  force?: boolean;
  /** Bound on the wait for replication links (default 15 s). */
  linkTimeoutMs?: number;
  /** Progress lines for a human. */
  onProgress?: (line: string) => void;
  /**
   * The data user, when its credentials differ from the control user's: 'setup' (default) makes
   * it on every node with the rules of `dataUserAcl`; 'skip' leaves ACLs to the operator
   * (`ringside create --acl print` shows the lines).
   */
  acl?: 'setup' | 'skip';
  /** default: the process's node credentials */
  credentials?: CredentialStore;
}

/**
 * Makes replication authenticate as the control user (`masteruser`/`masterauth`) on every node:
 * masters too, as any node may follow another after a fail-over.
 */
async function setReplicationAuth(clients: Map<string, Redis>, creds: CredentialStore): Promise<void> {
  const c = creds.get('control');
  if (!c) return;
  await Promise.all(
    [...clients.values()].map(async (client) => {
      await client.call('CONFIG', 'SET', 'masterauth', c.password);
      if (c.user) await client.call('CONFIG', 'SET', 'masteruser', c.user);
    }),
  );
}

/** Creates or resets the data user on every node (ACL rules are not replicated). */
async function setUpDataUser(clients: Map<string, Redis>, creds: CredentialStore, progress: (line: string) => void): Promise<void> {
  const d = creds.get('data');
  if (!creds.split || !d) return;
  const user = d.user ?? 'default';
  if (user === creds.user('control'))
    throw new ConfigWriteError(`the data and control credentials name the same user "${user}" with different passwords; give the data role a user of its own`);
  await Promise.all([...clients.values()].map((client) => client.call('ACL', 'SETUSER', user, ...dataUserAcl(d.password))));
  progress(`data user "${user}" set up on ${clients.size} server(s): no access to __cluster__:* or node administration`);
}

/**
 * What every server of a cluster needs before it replicates (create, add-replica): the data user
 * (when `dataUser`), replication's credentials, and replication and MIGRATE over TLS when the
 * nodes are reached with TLS.
 */
export async function prepareServers(clients: Map<string, Redis>, creds: CredentialStore, dataUser: boolean, progress: (line: string) => void = () => {}): Promise<void> {
  if (dataUser) await setUpDataUser(clients, creds, progress);
  await setReplicationAuth(clients, creds);
  if (nodeTls.enabled) await Promise.all([...clients.values()].map((c) => c.call('CONFIG', 'SET', 'tls-replication', 'yes', 'tls-cluster', 'yes')));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `INFO replication` as a field map. */
export async function replicationInfo(client: Redis): Promise<Record<string, string>> {
  const text = await client.info('replication');
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/**
 * Appends one event to `__cluster__:log` on each client (LPUSH JSON, LTRIM 0 999). Resolves with
 * the addresses where it failed; a log line is not worth failing an operation for.
 */
export async function appendLog(clients: Map<string, Redis>, event: Record<string, unknown>): Promise<string[]> {
  const line = JSON.stringify({ time: Date.now(), ...event });
  const failed: string[] = [];
  await Promise.all(
    [...clients].map(async ([addr, c]) => {
      try {
        await c.multi().lpush(LOG_KEY, line).ltrim(LOG_KEY, 0, 999).exec();
      } catch {
        failed.push(addr);
      }
    }),
  );
  return failed;
}

/**
 * Resolves null once the client is connected, or the connection error. Asking an unreachable
 * server nothing avoids commands that fail by flush, whose timeout timers would keep a CLI
 * process alive for the whole command timeout.
 */
export function whenConnected(client: Redis, timeoutMs: number): Promise<Error | null> {
  if (client.status === 'ready') return Promise.resolve(null);
  return new Promise((resolve) => {
    const done = (e: Error | null): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      resolve(e);
    };
    const onReady = (): void => done(null);
    const onError = (e: Error): void => done(e);
    const timer = setTimeout(() => done(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    client.on('ready', onReady);
    client.on('error', onError);
  });
}

/**
 * Closes control connections made by adminClient.
 */
export function closeAll(clients: Map<string, Redis>): void {
  for (const c of clients.values()) c.disconnect();
}

/** A control connection for a one-shot admin command (store's controlClient, reconnecting less eagerly). */
export function adminClient(address: string, opts: ControlOptions = {}): Redis {
  return controlClient(address, { reconnectStepMs: 100, reconnectMaxMs: 1000, ...opts });
}

export async function createCluster(opts: CreateOptions): Promise<ClusterConfig> {
  const progress = opts.onProgress ?? (() => {});
  // Validates the shape first: bad or repeated addresses fail before anything is touched.
  let config = initialConfig(opts.shards, { failover: opts.failover, timing: opts.timing, durability: opts.durability });
  const masterAddrs = opts.shards.map((s) => s.master);
  const all = opts.shards.flatMap((s) => [s.master, ...s.replicas]);
  const clients = new Map<string, Redis>(all.map((a) => [a, adminClient(a, { commandTimeoutMs: 5000 })]));
  try {
    const down: string[] = [];
    await Promise.all(
      all.map(async (a) => {
        try {
          await clients.get(a)!.ping();
        } catch (e) {
          down.push(`${a} (${(e as Error).message})`);
        }
      }),
    );
    if (down.length) throw new UnreachableNodeError(`cannot reach ${down.sort().join(', ')}`);

    const copies = await Promise.all(all.map((a) => readCopy(clients.get(a)!, a)));
    const lost = copies.filter((c) => !c.ok && !c.reachable);
    if (lost.length) throw new UnreachableNodeError(`cannot read ${lost.map((c) => `${c.address} (${!c.ok && c.reason})`).join(', ')}`);
    const holding = copies.filter((c) => c.ok || c.text !== undefined);
    if (holding.length && !opts.force) {
      const what = holding.map((c) => (c.ok ? `${c.address} (epoch ${c.config.epoch})` : `${c.address} (${c.reason})`));
      throw new AlreadyCreatedError(`already part of a cluster: ${what.join(', ')}; use --force to overwrite`);
    }
    const highest = Math.max(0, ...copies.map((c) => (c.ok ? c.config.epoch : 0)));
    if (highest >= config.epoch) config = { ...config, epoch: highest + 1 };

    await prepareServers(clients, opts.credentials ?? nodeCredentials, (opts.acl ?? 'setup') === 'setup', progress);
    progress(`setting up replication for ${opts.shards.length} node(s)`);
    for (const s of opts.shards) {
      await clients.get(s.master)!.call('REPLICAOF', 'NO', 'ONE');
      const { host, port } = splitAddress(s.master);
      for (const r of s.replicas) await clients.get(r)!.call('REPLICAOF', host, String(port));
    }
    await waitForLinks(opts.shards, clients, opts.linkTimeoutMs ?? 15_000);
    // Make the roles survive a restart: a node started from a config file gets REPLICAOF written
    // into it. Nodes started without one (tests, the demo) say so, and that is fine.
    await Promise.all(
      [...clients].map(async ([addr, c]) => {
        try {
          await c.call('CONFIG', 'REWRITE');
        } catch (e) {
          if (!/without a config file/i.test((e as Error).message)) progress(`warning: CONFIG REWRITE on ${addr} failed: ${(e as Error).message}`);
        }
        // users kept in an ACL file are saved there (CONFIG REWRITE keeps those of redis.conf)
        try {
          await c.call('ACL', 'SAVE');
        } catch (e) {
          if (!/not configured to use an ACL file/i.test((e as Error).message)) progress(`warning: ACL SAVE on ${addr} failed: ${(e as Error).message}`);
        }
      }),
    );

    const outcome = await Promise.all(
      masterAddrs.map(async (a) => {
        try {
          return (await writeCopy(clients.get(a)!, config)) ? null : `${a} already holds epoch ${config.epoch} or newer`;
        } catch (e) {
          return `${a}: ${(e as Error).message}`;
        }
      }),
    );
    const failed = outcome.filter((o): o is string => o !== null);
    if (failed.length) throw new ConfigWriteError(`configuration epoch ${config.epoch} not written: ${failed.join('; ')}`);
    await appendLog(new Map(masterAddrs.map((a) => [a, clients.get(a)!])), { event: 'create', epoch: config.epoch, by: 'admin' });
    // Replicas get the metadata by replication: wait until each has acknowledged it.
    await Promise.all(
      opts.shards
        .filter((s) => s.replicas.length > 0)
        .map((s) => clients.get(s.master)!.call('WAIT', String(s.replicas.length), '5000')),
    );
    progress(`configuration epoch ${config.epoch} written to ${masterAddrs.length} master(s)`);
    return config;
  } finally {
    closeAll(clients);
  }
}

/** Waits until every replica reports `master_link_status:up` towards its configured master. */
async function waitForLinks(shards: InitialShard[], clients: Map<string, Redis>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Map<string, string>();
  for (const s of shards) for (const r of s.replicas) pending.set(r, s.master);
  const last = new Map<string, string>();
  while (pending.size) {
    for (const [replica, master] of [...pending]) {
      try {
        const info = await replicationInfo(clients.get(replica)!);
        const { port } = splitAddress(master);
        const following = info.role === 'slave' && info.master_port === String(port);
        if (following && info.master_link_status === 'up') pending.delete(replica);
        else last.set(replica, `role ${info.role}, master ${info.master_host}:${info.master_port}, link ${info.master_link_status}`);
      } catch (e) {
        last.set(replica, (e as Error).message);
      }
    }
    if (!pending.size) return;
    if (Date.now() > deadline) {
      const what = [...pending].map(([r, m]) => `${r} -> ${m} (${last.get(r) ?? 'no answer'})`);
      throw new ReplicationTimeoutError(`replication link not up after ${timeoutMs} ms: ${what.join('; ')}`);
    }
    await sleep(100);
  }
}

/**
 * `ringside add-replica NODE host:port` and `ringside remove-replica NODE host:port` (issue 24).
 *
 * add-replica checks the new server before it touches anything:
 *   - it answers with the control credentials;
 *   - it runs the same Redis major as the node's master;
 *   - it is empty (REPLICAOF would wipe it; --force allows it);
 *   - it is part of no cluster.
 * Then it sets the server up as create does: the data user, replication's credentials, and TLS
 * replication. It points the server at the node's master, waits until the link is up and the
 * replica has caught up, and then adds it to the configuration, epoch + 1, by compare-and-set on
 * every master. A majority must take it, and none may already be newer.
 *
 * remove-replica drops the server from the configuration the same way, then waits one lease, so
 * that no sidecar still reads from it. The server is left running and replicating, untouched,
 * for the operator to stop. Neither command runs while a fail-over of the node is under way.
 * Both write to `ringside log`.
 */
import type Redis from 'ioredis';
import { ClusterConfig, masters, serializeConfig, splitAddress, isAddress, parseConfig } from '../cluster/config';
import { readCopy, writeEverywhere } from '../cluster/store';
import { nodeCredentials } from '../cluster/credentials';
import { openCluster, AdminCluster } from '../failover/connect';
import { appendLog, prepareServers, replicationInfo } from './create';
import { leaseWaitMs } from './move-slots';
import { ConcurrentChangeError, ReplicaChangeError, ReplicationTimeoutError, UnreachableNodeError } from './errors';

/** Control clients of a configuration's masters. */
const mastersOf = (cluster: AdminCluster, config: ClusterConfig): Map<string, Redis> => new Map(masters(config).map((a) => [a, cluster.clientFor(a)]));

export interface ReplicaChangeOptions {
  seeds: string[];
  node: string;
  address: string;
  /** add-replica: take a server that holds keys (REPLICAOF replaces them with the master's) */
  force?: boolean;
  /** bound on the wait for the link and the catch-up (default 30 s) */
  linkTimeoutMs?: number;
  onProgress?: (line: string) => void;
  /** how long to wait before resolving (remove-replica; default: one lease) */
  settleMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const major = (version: string): string => version.split('.')[0] ?? version;

export function serverField(info: string, field: string): string {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
}

/** Writes `config` (epoch + 1 of what was read) on every master: a majority must take it, none may be newer. */
export async function publish(cluster: AdminCluster, config: ClusterConfig): Promise<void> {
  const res = await writeEverywhere(mastersOf(cluster, config), config);
  const newer = [...res].filter(([, r]) => r === 'current').map(([a]) => a);
  if (newer.length) throw new ConcurrentChangeError(`${newer.join(', ')} already hold epoch ${config.epoch} or newer: the configuration changed meanwhile; run status, then try again`);
  const written = [...res].filter(([, r]) => r === 'written').length;
  const need = Math.floor(masters(config).length / 2) + 1;
  if (written < need) {
    const why = [...res].filter(([, r]) => r instanceof Error).map(([a, e]) => `${a}: ${(e as Error).message}`);
    throw new UnreachableNodeError(`epoch ${config.epoch} reached ${written} of ${masters(config).length} masters, not a majority: ${why.join('; ')}`);
  }
}

function checkRequest(cluster: AdminCluster, o: ReplicaChangeOptions): ClusterConfig {
  const config = cluster.config;
  if (!isAddress(o.address)) throw new ReplicaChangeError(`"${o.address}" is not a host:port address`);
  if (!config.nodes[o.node]) throw new ReplicaChangeError(`no node "${o.node}" in the configuration (nodes: ${Object.keys(config.nodes).sort().join(', ')})`);
  if (config.switching) throw new ReplicaChangeError(`a fail-over of node ${config.switching.node} is under way; try again when it has ended`);
  // a deep copy to change
  return parseConfig(serializeConfig(config));
}

export async function addReplica(o: ReplicaChangeOptions): Promise<ClusterConfig> {
  const progress = o.onProgress ?? (() => {});
  const cluster = await openCluster(o.seeds);
  try {
    const next = checkRequest(cluster, o);
    for (const [name, n] of Object.entries(next.nodes))
      if (n.master === o.address || n.replicas.includes(o.address)) throw new ReplicaChangeError(`${o.address} is already in the configuration (node ${name}, ${n.master === o.address ? 'master' : 'replica'})`);
    const master = next.nodes[o.node]!.master;
    const server = cluster.clientFor(o.address);
    const m = cluster.clientFor(master);

    // the checks
    let info: string;
    try {
      info = await server.info('server');
    } catch (e) {
      throw new UnreachableNodeError(`${o.address}: ${(e as Error).message}`);
    }
    const mine = serverField(info, 'redis_version');
    const theirs = serverField(await m.info('server'), 'redis_version');
    if (major(mine) !== major(theirs)) throw new ReplicaChangeError(`${o.address} runs Redis ${mine}, the master ${master} runs ${theirs}: the same major version is needed`);
    const copy = await readCopy(server, o.address);
    if (copy.ok || copy.text !== undefined) throw new ReplicaChangeError(`${o.address} holds a cluster configuration: it is part of a cluster already`);
    const keys = (await server.dbsize()) as number;
    if (keys > 0 && !o.force) throw new ReplicaChangeError(`${o.address} holds ${keys} key(s), which REPLICAOF would replace with the master's; empty it, or use --force`);

    // set up as create does
    await prepareServers(new Map([[o.address, server]]), nodeCredentials, true);
    const { host, port } = splitAddress(master);
    progress(`${o.address}: replicating from ${master} (node ${o.node})`);
    await server.call('REPLICAOF', host, String(port));
    await waitCaughtUp(server, m, o.address, master, o.linkTimeoutMs ?? 30_000);
    try {
      await server.call('CONFIG', 'REWRITE');
    } catch (e) {
      if (!/without a config file/i.test((e as Error).message)) progress(`warning: CONFIG REWRITE on ${o.address} failed: ${(e as Error).message}`);
    }

    // the configuration: read again, in case it changed while the replica synced
    const now = (await openLatest(cluster, o)) ?? next;
    if (now.nodes[o.node]!.master !== master) throw new ConcurrentChangeError(`node ${o.node}'s master changed to ${now.nodes[o.node]!.master} while ${o.address} synced; run add-replica again`);
    now.nodes[o.node]!.replicas.push(o.address);
    const written = { ...now, epoch: now.epoch + 1 };
    await publish(cluster, written);
    await appendLog(mastersOf(cluster, written), { event: 'replica-added', node: o.node, replica: o.address, epoch: written.epoch, by: 'admin' });
    progress(`node ${o.node}: replica ${o.address} added (epoch ${written.epoch})`);
    return written;
  } finally {
    cluster.close();
  }
}

export async function removeReplica(o: ReplicaChangeOptions): Promise<ClusterConfig> {
  const progress = o.onProgress ?? (() => {});
  const cluster = await openCluster(o.seeds);
  try {
    const next = checkRequest(cluster, o);
    const n = next.nodes[o.node]!;
    if (!n.replicas.includes(o.address))
      throw new ReplicaChangeError(`${o.address} is not a replica of node ${o.node} (its replicas: ${n.replicas.join(', ') || 'none'}${n.master === o.address ? `; ${o.address} is its master: fail over first` : ''})`);
    n.replicas = n.replicas.filter((r) => r !== o.address);
    const written = { ...next, epoch: next.epoch + 1 };
    await publish(cluster, written);
    await appendLog(mastersOf(cluster, written), { event: 'replica-removed', node: o.node, replica: o.address, epoch: written.epoch, by: 'admin' });
    const wait = o.settleMs ?? leaseWaitMs(written);
    progress(`node ${o.node}: replica ${o.address} removed (epoch ${written.epoch}); waiting ${wait} ms until no sidecar reads from it`);
    await sleep(wait);
    progress(`${o.address} is no longer used by the cluster; it is left running and replicating, for you to stop`);
    return written;
  } finally {
    cluster.close();
  }
}

/** The newest configuration the masters hold now (null: none readable). */
async function openLatest(cluster: AdminCluster, o: ReplicaChangeOptions): Promise<ClusterConfig | null> {
  const fresh = await openCluster([...o.seeds, ...masters(cluster.config)]);
  try {
    return parseConfig(serializeConfig(fresh.config));
  } finally {
    fresh.close();
  }
}

/** Waits until the replica's link to the master is up and its offset has reached the master's. */
export async function waitCaughtUp(replica: Redis, master: Redis, address: string, masterAddr: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const r = await replicationInfo(replica);
      const target = Number((await replicationInfo(master)).master_repl_offset ?? 0);
      const { port } = splitAddress(masterAddr);
      if (r.role === 'slave' && r.master_port === String(port) && r.master_link_status === 'up' && Number(r.slave_repl_offset ?? -1) >= target) return;
      last = `role ${r.role}, link ${r.master_link_status}, offset ${r.slave_repl_offset ?? '?'} of ${target}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new ReplicationTimeoutError(`${address} did not catch up with ${masterAddr} within ${timeoutMs} ms (${last}); it still replicates, but is not in the configuration`);
    await sleep(100);
  }
}

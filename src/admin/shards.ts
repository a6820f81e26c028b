/**
 * `ringside add-shard`, `ringside remove-shard` and `ringside rebalance` (issue 24), on the same
 * protocol as everything else: configuration epochs written by compare-and-set on every master
 * (a majority must take each), slots moved with move-slots (mark migrating, wait a lease, MIGRATE,
 * give), every step in `ringside log`.
 *
 *   add-shard     checks the new servers (reachable, same Redis major, part of no cluster, empty),
 *                 sets them up as create does, makes the replicas follow the new master and waits
 *                 for them, then adds the node with no slots (epoch + 1). `rebalance` gives it some.
 *   remove-shard  gives every slot of the node to the others (the fewest first, so they end as
 *                 even as they can without moving anything else), then drops the node (epoch + 1)
 *                 and waits a lease; its servers are left running and untouched.
 *   rebalance     the plan of rebalance-plan.ts (by slot count and weights), printed, then run one
 *                 receiving node at a time.
 */
import type Redis from 'ioredis';
import { ClusterConfig, masters, nodeName, parseConfig, serializeConfig, isAddress, splitAddress } from '../cluster/config';
import { readCopy } from '../cluster/store';
import { nodeCredentials } from '../cluster/credentials';
import { openCluster, AdminCluster } from '../failover/connect';
import { appendLog, prepareServers } from './create';
import { formatSlotList, leaseWaitMs, moveSlots, MoveProgress } from './move-slots';
import { major, publish, serverField, waitCaughtUp } from './replicas';
import { Move, RebalancePlan, planRebalance, slotsByNode } from './rebalance-plan';
import { ConcurrentChangeError, RebalanceError, ShardChangeError, UnreachableNodeError } from './errors';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mastersOf = (cluster: AdminCluster, config: ClusterConfig): Map<string, Redis> => new Map(masters(config).map((a) => [a, cluster.clientFor(a)]));
const copyOf = (c: ClusterConfig): ClusterConfig => parseConfig(serializeConfig(c));

interface Common {
  seeds: string[];
  onProgress?: (line: string) => void;
}

export interface AddShardOptions extends Common {
  master: string;
  replicas?: string[];
  /** take replicas that hold keys (REPLICAOF replaces them); never a master with keys */
  force?: boolean;
  linkTimeoutMs?: number;
}

/** The newest configuration on the seeds and the masters they name. */
async function latest(o: Common, known?: ClusterConfig): Promise<ClusterConfig> {
  const c = await openCluster([...o.seeds, ...(known ? masters(known) : [])]);
  try {
    return copyOf(c.config);
  } finally {
    c.close();
  }
}

export async function addShard(o: AddShardOptions): Promise<{ config: ClusterConfig; node: string }> {
  const progress = o.onProgress ?? (() => {});
  const replicas = o.replicas ?? [];
  const cluster = await openCluster(o.seeds);
  try {
    const config = copyOf(cluster.config);
    if (config.switching) throw new ShardChangeError(`a fail-over of node ${config.switching.node} is under way; try again when it has ended`);
    const all = [o.master, ...replicas];
    for (const a of all) if (!isAddress(a)) throw new ShardChangeError(`"${a}" is not a host:port address`);
    if (new Set(all).size !== all.length) throw new ShardChangeError(`an address is named twice: ${all.join(', ')}`);
    for (const [name, n] of Object.entries(config.nodes))
      for (const a of all) if (n.master === a || n.replicas.includes(a)) throw new ShardChangeError(`${a} is already in the configuration (node ${name})`);

    // the checks, before anything is touched
    const theirs = serverField(await cluster.clientFor(masters(config)[0]!).info('server'), 'redis_version');
    for (const a of all) {
      const c = cluster.clientFor(a);
      let info: string;
      try {
        info = await c.info('server');
      } catch (e) {
        throw new UnreachableNodeError(`${a}: ${(e as Error).message}`);
      }
      const mine = serverField(info, 'redis_version');
      if (major(mine) !== major(theirs)) throw new ShardChangeError(`${a} runs Redis ${mine}, the cluster runs ${theirs}: the same major version is needed`);
      const copy = await readCopy(c, a);
      if (copy.ok || copy.text !== undefined) throw new ShardChangeError(`${a} holds a cluster configuration: it is part of a cluster already`);
      const keys = (await c.dbsize()) as number;
      if (keys > 0 && (a === o.master || !o.force))
        throw new ShardChangeError(
          a === o.master
            ? `${a} holds ${keys} key(s): a new master must be empty (its keys would sit in slots other nodes own)`
            : `${a} holds ${keys} key(s), which REPLICAOF would replace with the master's; empty it, or use --force`,
        );
    }

    // set up as create does; replication from the new master
    await prepareServers(new Map(all.map((a) => [a, cluster.clientFor(a)])), nodeCredentials, true);
    const m = cluster.clientFor(o.master);
    if ((await m.info('replication')).includes('role:slave')) await m.call('REPLICAOF', 'NO', 'ONE');
    const { host, port } = splitAddress(o.master);
    for (const r of replicas) {
      progress(`${r}: replicating from ${o.master}`);
      await cluster.clientFor(r).call('REPLICAOF', host, String(port));
    }
    await Promise.all(replicas.map((r) => waitCaughtUp(cluster.clientFor(r), m, r, o.master, o.linkTimeoutMs ?? 30_000)));

    // the configuration, read again: it may have changed meanwhile
    const now = await latest(o, config);
    for (const [name, n] of Object.entries(now.nodes))
      if (n.master === o.master || n.replicas.some((a) => all.includes(a))) throw new ConcurrentChangeError(`${o.master} joined node ${name} meanwhile`);
    let i = 0;
    while (nodeName(i) in now.nodes) i++;
    const node = nodeName(i);
    now.nodes[node] = { master: o.master, replicas: [...replicas] };
    const written = { ...now, epoch: now.epoch + 1 };
    await publish(cluster, written);
    await appendLog(mastersOf(cluster, written), { event: 'shard-added', node, master: o.master, replicas, epoch: written.epoch, by: 'admin' });
    progress(`node ${node} added: master ${o.master}${replicas.length ? `, replicas ${replicas.join(', ')}` : ''}, no slots yet (epoch ${written.epoch}); ringside rebalance gives it its share`);
    return { config: written, node };
  } finally {
    cluster.close();
  }
}

/** Runs moves, one receiving node at a time (move-slots takes several sources for one target). */
async function runMoves(o: Common, moves: Move[], onMove?: (p: MoveProgress) => void): Promise<void> {
  const byTarget = new Map<string, number[]>();
  for (const m of moves) byTarget.set(m.to, [...(byTarget.get(m.to) ?? []), ...m.slots]);
  let done = 0;
  const total = moves.reduce((a, m) => a + m.slots.length, 0);
  for (const [to, slots] of byTarget) {
    slots.sort((a, b) => a - b);
    o.onProgress?.(`moving ${slots.length} slot(s) to ${to}: ${formatSlotList(slots)}`);
    const r = await moveSlots({ seeds: o.seeds, slots, to, onProgress: onMove });
    done += slots.length;
    const keys = Object.values(r.moved).reduce((a, b) => a + b, 0);
    o.onProgress?.(`${to} owns them (epoch ${r.config.epoch}; ${keys} key(s) moved); ${done} of ${total} slots done`);
  }
}

export interface RebalanceRunOptions extends Common {
  weights?: Record<string, number>;
  thresholdPct?: number;
  dryRun?: boolean;
  onMove?: (p: MoveProgress) => void;
}

export function describePlan(plan: RebalancePlan): string[] {
  const lines = Object.keys(plan.target).map((n) => `  ${n}: ${plan.before[n]} → ${plan.target[n]} slots`);
  if (plan.balanced) return [...lines, 'balanced: nothing to move'];
  return [...lines, ...plan.moves.map((m) => `  move ${m.slots.length} slot(s) ${m.from} → ${m.to}: ${formatSlotList(m.slots)}`), `${plan.moved} slot(s) to move`];
}

export async function rebalance(o: RebalanceRunOptions): Promise<RebalancePlan> {
  const config = await latest(o);
  const plan = planRebalance(config, { weights: o.weights, thresholdPct: o.thresholdPct });
  for (const l of describePlan(plan)) o.onProgress?.(l);
  if (plan.balanced || o.dryRun) return plan;
  const cluster = await openCluster(o.seeds);
  try {
    await appendLog(mastersOf(cluster, config), { event: 'rebalance-started', moves: plan.moves.map((m) => ({ from: m.from, to: m.to, slots: formatSlotList(m.slots) })), slots: plan.moved, by: 'admin' });
  } finally {
    cluster.close();
  }
  await runMoves(o, plan.moves, o.onMove);
  const after = await latest(o, config);
  const c2 = await openCluster(o.seeds);
  try {
    await appendLog(mastersOf(c2, after), { event: 'rebalanced', slots: plan.moved, epoch: after.epoch, by: 'admin' });
  } finally {
    c2.close();
  }
  return plan;
}

/** Gives `node`'s slots to the others, each slot to the one with the fewest at that point. Pure. */
export function planDrain(config: ClusterConfig, node: string): Move[] {
  const owned = slotsByNode(config);
  const mine = owned.get(node);
  if (!mine) throw new RebalanceError(`unknown node ${JSON.stringify(node)}; the nodes are ${[...owned.keys()].join(', ')}`);
  const others = [...owned.keys()].filter((n) => n !== node);
  if (others.length === 0) throw new ShardChangeError(`${node} is the only node: there is nowhere to move its slots`);
  const count = new Map(others.map((n) => [n, owned.get(n)!.length]));
  const gets = new Map<string, number[]>(others.map((n) => [n, []]));
  for (const s of mine) {
    let best = others[0]!;
    for (const n of others) if (count.get(n)! < count.get(best)!) best = n;
    count.set(best, count.get(best)! + 1);
    gets.get(best)!.push(s);
  }
  return [...gets].filter(([, slots]) => slots.length).map(([to, slots]) => ({ from: node, to, slots }));
}

export interface RemoveShardOptions extends Common {
  node: string;
  onMove?: (p: MoveProgress) => void;
  /** how long to wait after the node is dropped (default: one lease) */
  settleMs?: number;
}

export async function removeShard(o: RemoveShardOptions): Promise<ClusterConfig> {
  const progress = o.onProgress ?? (() => {});
  const config = await latest(o);
  const spec = config.nodes[o.node];
  if (!spec) throw new ShardChangeError(`no node "${o.node}" in the configuration (nodes: ${Object.keys(config.nodes).sort().join(', ')})`);
  if (config.switching) throw new ShardChangeError(`a fail-over of node ${config.switching.node} is under way; try again when it has ended`);
  const moves = planDrain(config, o.node);
  if (moves.length) {
    progress(`node ${o.node}: giving its ${moves.reduce((a, m) => a + m.slots.length, 0)} slot(s) to ${moves.map((m) => `${m.to} (${m.slots.length})`).join(', ')}`);
    await runMoves(o, moves, o.onMove);
  }
  const now = await latest(o, config);
  if (!now.nodes[o.node]) throw new ConcurrentChangeError(`node ${o.node} was removed meanwhile`);
  const left = slotsByNode(now).get(o.node)!;
  if (left.length) throw new ConcurrentChangeError(`node ${o.node} owns ${formatSlotList(left)} again: the configuration changed meanwhile; run remove-shard again`);
  if (Object.values(now.migrating).some((m) => m.from === o.node || m.to === o.node)) throw new ConcurrentChangeError(`slots are migrating from or to ${o.node}; finish that first`);
  const removed = now.nodes[o.node]!;
  delete now.nodes[o.node];
  const written = { ...now, epoch: now.epoch + 1 };
  const cluster = await openCluster(o.seeds.filter((s) => s !== removed.master).concat(masters(written)));
  try {
    await publish(cluster, written);
    await appendLog(mastersOf(cluster, written), { event: 'shard-removed', node: o.node, master: removed.master, replicas: removed.replicas, epoch: written.epoch, by: 'admin' });
  } finally {
    cluster.close();
  }
  const wait = o.settleMs ?? leaseWaitMs(written);
  progress(`node ${o.node} dropped (epoch ${written.epoch}); waiting ${wait} ms until no sidecar routes to it`);
  await sleep(wait);
  progress(`${[removed.master, ...removed.replicas].join(', ')} no longer belong to the cluster; they are left running, untouched, for you to stop`);
  return written;
}

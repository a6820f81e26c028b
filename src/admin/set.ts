/**
 * `ringside set` (issue 24): change a running cluster's timing, fail-over mode or durability, on
 * the same protocol (epoch + 1 by compare-and-set on every master; a majority must take it).
 *
 * Shortening the lease is the one change that needs two steps. A sidecar that has not seen the
 * new configuration may still route on the old, longer lease; a switch or a move that waited only
 * the new one could promote a replica while that sidecar still writes to the old master. So:
 *
 *   1. epoch + 1: the new lease, and `timing.leaseFloorMs` = the old one. Sidecars that adopt it
 *      use the new lease at once; switches and moves keep waiting the old one (leaseToWaitMs).
 *   2. wait the old lease and a margin: every sidecar has either adopted step 1 or stopped routing;
 *   3. epoch + 1 again, without the floor.
 *
 * Everything else (a longer lease, checkMs, downAfterMs, the fail-over mode, durability) is one
 * step: a switch or a move reads the newest configuration before it waits, and compare-and-set
 * orders it against this write.
 */
import { ClusterConfig, Durability, FailoverMode, Timing, leaseToWaitMs, masters, parseConfig, serializeConfig, validateConfig } from '../cluster/config';
import { ConfigError } from '../cluster/errors';
import { openCluster } from '../failover/connect';
import { appendLog } from './create';
import { publish } from './replicas';
import { ConcurrentChangeError, SetRefusedError } from './errors';

export interface SetOptions {
  seeds: string[];
  checkMs?: number;
  leaseMs?: number;
  downAfterMs?: number;
  failover?: FailoverMode;
  durability?: Durability;
  onProgress?: (line: string) => void;
  /** the wait between the two steps of a shorter lease (default: the old lease and a tenth) */
  settleMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function write(seeds: string[], next: ClusterConfig): Promise<void> {
  const cluster = await openCluster([...seeds, ...masters(next)]);
  try {
    await publish(cluster, next);
  } finally {
    cluster.close();
  }
}

async function latest(seeds: string[]): Promise<ClusterConfig> {
  const cluster = await openCluster(seeds);
  try {
    return parseConfig(serializeConfig(cluster.config));
  } finally {
    cluster.close();
  }
}

/** The changed configuration (epoch + 1), checked; throws SetRefusedError with the reason. Pure. */
export function changed(config: ClusterConfig, o: SetOptions): { next: ClusterConfig; shorter: boolean; changes: string[] } {
  if (config.switching) throw new SetRefusedError(`a fail-over of node ${config.switching.node} is under way; try again when it has ended`);
  if (config.timing.leaseFloorMs !== undefined && config.timing.leaseFloorMs > config.timing.leaseMs)
    throw new SetRefusedError(`a shorter lease is being rolled out (floor ${config.timing.leaseFloorMs} ms); run set again in a moment`);
  const timing: Timing = { checkMs: o.checkMs ?? config.timing.checkMs, leaseMs: o.leaseMs ?? config.timing.leaseMs, downAfterMs: o.downAfterMs ?? config.timing.downAfterMs };
  const shorter = timing.leaseMs < leaseToWaitMs(config.timing);
  if (shorter) timing.leaseFloorMs = leaseToWaitMs(config.timing);
  const next = { ...config, epoch: config.epoch + 1, timing, failover: o.failover ?? config.failover, durability: o.durability ?? config.durability };
  try {
    validateConfig(JSON.parse(serializeConfig(next)));
  } catch (e) {
    if (e instanceof ConfigError) throw new SetRefusedError(e.message);
    throw e;
  }
  const changes: string[] = [];
  for (const k of ['checkMs', 'leaseMs', 'downAfterMs'] as const) if (timing[k] !== config.timing[k]) changes.push(`${k} ${config.timing[k]} → ${timing[k]}`);
  if (next.failover !== config.failover) changes.push(`failover ${config.failover} → ${next.failover}`);
  if (next.durability !== config.durability) changes.push(`durability ${config.durability} → ${next.durability}`);
  return { next, shorter, changes };
}

export async function setCluster(o: SetOptions): Promise<ClusterConfig> {
  const progress = o.onProgress ?? (() => {});
  const config = await latest(o.seeds);
  const { next, shorter, changes } = changed(config, o);
  if (changes.length === 0) {
    progress(`nothing to change (epoch ${config.epoch})`);
    return config;
  }
  await write(o.seeds, next);
  progress(`epoch ${next.epoch}: ${changes.join(', ')}`);
  if (!shorter) {
    await log(o.seeds, next, changes);
    return next;
  }
  const floor = next.timing.leaseFloorMs!;
  const wait = o.settleMs ?? floor + Math.max(100, Math.ceil(floor / 10));
  progress(`the lease is shorter: switches and moves keep waiting ${floor} ms until every sidecar has the new one; waiting ${wait} ms`);
  await sleep(wait);
  // step 3, on whatever is newest now (the floor stays until it is removed)
  for (let attempt = 0; ; attempt++) {
    const now = await latest(o.seeds);
    if (now.timing.leaseFloorMs === undefined) break;
    const { leaseFloorMs: _gone, ...timing } = now.timing;
    void _gone;
    const done = { ...now, epoch: now.epoch + 1, timing };
    try {
      await write(o.seeds, done);
      progress(`epoch ${done.epoch}: lease floor removed; switches and moves wait ${timing.leaseMs} ms from now on`);
      await log(o.seeds, done, changes);
      return done;
    } catch (e) {
      if (!(e instanceof ConcurrentChangeError) || attempt >= 3) throw e;
    }
  }
  return latest(o.seeds);
}

async function log(seeds: string[], config: ClusterConfig, changes: string[]): Promise<void> {
  const cluster = await openCluster([...seeds, ...masters(config)]);
  try {
    await appendLog(new Map(masters(config).map((a) => [a, cluster.clientFor(a)])), { event: 'settings-changed', changes, epoch: config.epoch, by: 'admin' });
  } finally {
    cluster.close();
  }
}

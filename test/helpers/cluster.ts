/**
 * Test harness: real local clusters and direct connections to their nodes, all closed when the
 * test that made them ends.
 */
import Redis from 'ioredis';
import { splitAddress } from '../../src/cluster/config';
import { LocalCluster, LocalClusterOptions } from '../../src/embedded/local-cluster';

/** The part of a tap test this harness needs. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Short timing for tests: a check every 200 ms, a 500 ms lease. */
export const TEST_TIMING = { checkMs: 200, leaseMs: 500, downAfterMs: 300 };

/** Starts a local cluster (test timing unless given) that is stopped when `t` ends. */
export async function startCluster(t: Teardown, opts: LocalClusterOptions = {}): Promise<LocalCluster> {
  const cluster = await LocalCluster.start({ ...opts, timing: opts.timing ?? TEST_TIMING });
  t.teardown(() => cluster.stop());
  return cluster;
}

/**
 * An ioredis connection straight to one data node (no sidecar), closed when `t` ends. Commands
 * fail fast instead of queueing forever while the node is down.
 */
export function directClient(t: Teardown, address: string): Redis {
  const { host, port } = splitAddress(address);
  const client = new Redis({ host, port, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (n) => Math.min(n * 50, 500) });
  client.on('error', () => {
    /* surfaced through the failing commands */
  });
  t.teardown(() => client.disconnect());
  return client;
}

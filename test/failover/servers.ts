/**
 * The fail-over tests' view of a local cluster: the shared harness (test/helpers/cluster.ts) plus
 * a control client per address, closed at the end of the test.
 */
import type Redis from 'ioredis';
import type { ClusterConfig, FailoverMode, Timing } from '../../src/cluster/config';
import { controlClient } from '../../src/cluster/store';
import type { NodeCredentials } from '../../src/cluster/credentials';
import type { LocalShard } from '../../src/embedded/local-cluster';
import { Teardown, startCluster as startLocal } from '../helpers/cluster';

export interface Cluster {
  shards: LocalShard[];
  config: ClusterConfig;
  /** a control client per address, closed at teardown */
  client(address: string): Redis;
  masters(): Map<string, Redis>;
  /** comma-separated master addresses */
  seeds: string;
}

export async function startCluster(
  t: Teardown,
  opts: { masters?: number; replicasPerMaster?: number; timing?: Partial<Timing>; failover?: FailoverMode; durability?: 'async' | 'replica'; credentials?: NodeCredentials; tls?: { certFile: string; keyFile: string; caFile: string } } = {},
): Promise<Cluster> {
  const local = await startLocal(t, opts);
  const clients = new Map<string, Redis>();
  t.teardown(() => {
    for (const c of clients.values()) c.disconnect();
  });
  const client = (a: string): Redis => {
    let c = clients.get(a);
    if (!c) clients.set(a, (c = controlClient(a)));
    return c;
  };
  for (const s of local.shards)
    for (const r of s.replicas)
      for (let i = 0; ; i++) {
        if ((await client(r.address).info('replication')).includes('master_link_status:up')) break;
        if (i > 400) throw new Error(`replica ${r.address} never linked`);
        await new Promise((res) => setTimeout(res, 25));
      }
  const masters = (): Map<string, Redis> => new Map(local.shards.map((s) => [s.master.address, client(s.master.address)]));
  return { shards: local.shards, config: local.config, client, masters, seeds: local.seeds.join(',') };
}

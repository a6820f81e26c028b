/**
 * One-shot connections for the fail-over CLI commands: the newest configuration reachable from
 * the seeds (and from the masters it names), and a control client per address, all closed by
 * `close()`.
 */
import type Redis from 'ioredis';
import { ClusterConfig, masters as mastersOf } from '../cluster/config';
import { NodeCopy, newest, readCopy } from '../cluster/store';
import { adminClient, closeAll } from '../admin/create';
import { NoConfigurationError } from './errors';

export interface AdminCluster {
  config: ClusterConfig;
  /** every copy read (seeds and masters) */
  copies: NodeCopy[];
  clientFor(address: string): Redis;
  /** control clients of the configuration's masters */
  masters(): Map<string, Redis>;
  close(): void;
}

export async function openCluster(seeds: string[], opts: { timeoutMs?: number } = {}): Promise<AdminCluster> {
  const clients = new Map<string, Redis>();
  const timeout = opts.timeoutMs ?? 2000;
  const clientFor = (a: string): Redis => {
    let c = clients.get(a);
    if (!c) clients.set(a, (c = adminClient(a, { commandTimeoutMs: timeout, connectTimeoutMs: Math.min(timeout, 1000) })));
    return c;
  };
  try {
    let copies = await Promise.all(seeds.map((a) => readCopy(clientFor(a), a)));
    let best = newest(copies);
    if (!best) {
      const why = copies.map((c) => `${c.address}: ${c.ok ? 'ok' : c.reason}`).join('; ');
      throw new NoConfigurationError(`no seed holds a usable configuration (${why})`);
    }
    const more = mastersOf(best.config).filter((m) => !seeds.includes(m));
    copies = copies.concat(await Promise.all(more.map((a) => readCopy(clientFor(a), a))));
    best = newest(copies)!;
    const config = best.config;
    return {
      config,
      copies,
      clientFor,
      masters: () => new Map(mastersOf(config).map((m) => [m, clientFor(m)])),
      close: () => closeAll(clients),
    };
  } catch (e) {
    closeAll(clients);
    throw e;
  }
}

/**
 * `ringside fix` (issue 24): repairs what `ringside check` finds, where the repair is safe
 * without a person, and leaves the rest in its report. The repairs, in order:
 *   1. A replica that follows another server than its node's master gets `REPLICAOF <master>`.
 *   2. Slots left migrating are finished by move-slots. It moves their keys and gives the slots
 *      to the target, with the protocol's lease waits.
 *   3. Keys sitting on a master that does not own their slot are MIGRATEd to the owner. A key the
 *      owner already holds is a conflict: both are kept, and it is reported. With `replace`, the
 *      stray copy overwrites the owner's.
 * Nothing runs while a fail-over is recorded as under way: the sidecars finish that one.
 */
import type Redis from 'ioredis';
import { splitAddress, masters } from '../cluster/config';
import { clusterStatus } from './status';
import { CheckResult, checkCluster, scanStray } from './check';
import { migrateAuth, moveSlots } from './move-slots';
import { adminClient, appendLog, closeAll } from './create';
import { FixRefusedError } from './errors';

export interface FixOptions {
  seeds: string[];
  /** a stray key overwrites the owner's copy of it (default: both kept, reported) */
  replace?: boolean;
  onProgress?: (line: string) => void;
}

export interface FixResult {
  /** what was done, one line each */
  done: string[];
  /** conflicts left for a person */
  conflicts: string[];
  /** what check finds afterwards */
  after: CheckResult;
}

export async function fixCluster(o: FixOptions): Promise<FixResult> {
  const progress = o.onProgress ?? (() => {});
  const done: string[] = [];
  const conflicts: string[] = [];
  const say = (line: string): void => {
    done.push(line);
    progress(line);
  };
  const status = await clusterStatus({ seeds: o.seeds });
  if (status.switching) throw new FixRefusedError(`a fail-over of node ${status.switching.node} is recorded as under way: the sidecars finish it; run fix when it has ended`);
  const clients = new Map<string, Redis>();
  const client = (a: string): Redis => {
    let c = clients.get(a);
    if (!c) clients.set(a, (c = adminClient(a, { commandTimeoutMs: 10_000 })));
    return c;
  };
  try {
    // 1. replicas on the wrong master
    for (const n of status.nodes)
      for (const r of n.replicas) {
        if (!r.reachable || r.role === undefined) continue;
        if (r.role === 'replica' && r.following === n.master.address) continue;
        const { host, port } = splitAddress(n.master.address);
        await client(r.address).call('REPLICAOF', host, String(port));
        say(`${r.address} (a replica of node ${n.name}) now follows ${n.master.address}; it was ${r.role === 'replica' ? `following ${r.following}` : `a ${r.role}`}`);
      }

    // 2. slots left migrating, finished per target
    const byTarget = new Map<string, number[]>();
    for (const m of status.migrating) for (let s = m.first; s <= m.last; s++) byTarget.set(m.to, [...(byTarget.get(m.to) ?? []), s]);
    for (const [to, slots] of byTarget) {
      const r = await moveSlots({ seeds: o.seeds, slots, to });
      say(`slots ${slots.length === 1 ? slots[0] : `${slots[0]}-${slots.at(-1)}`} finished moving to node ${to} (epoch ${r.config.epoch})`);
    }

    // 3. keys outside their slot's owner, on the configuration as it is now
    const config = (await clusterStatus({ seeds: o.seeds })).config;
    const names = Object.keys(config.nodes).sort();
    for (const [i, addr] of masters(config).entries()) {
      const stray: Array<{ key: Buffer; owner: string }> = [];
      await scanStray(client(addr), names[i]!, config, (key, _slot, owner) => stray.push({ key, owner }));
      let moved = 0;
      for (const { key, owner } of stray) {
        const to = splitAddress(config.nodes[owner]!.master);
        try {
          await client(addr).call('MIGRATE', to.host, String(to.port), key, '0', '5000', ...(o.replace ? ['REPLACE'] : []), ...migrateAuth());
          moved++;
        } catch (e) {
          if (/BUSYKEY/.test((e as Error).message)) conflicts.push(`${JSON.stringify(key.toString('utf8'))} is on ${addr} (node ${names[i]}) and on its owner node ${owner}: both kept (fix --replace would overwrite the owner's)`);
          else throw e;
        }
      }
      if (moved) say(`${moved} key(s) moved from ${addr} (node ${names[i]}) to the nodes that own their slots`);
    }
    if (done.length) await appendLog(new Map(masters(config).map((a) => [a, client(a)])), { event: 'fix', done, conflicts: conflicts.length, by: 'admin' });
  } finally {
    closeAll(clients);
  }
  return { done, conflicts, after: await checkCluster({ seeds: o.seeds }) };
}

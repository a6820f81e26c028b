/**
 * `ringside check` (issue 24): finds what an interrupted operation or a hand-made change left,
 * reading only. Each finding says what is wrong and what to run. It reports:
 *   - everything `status` warns about: copies, unreachable servers, roles;
 *   - slots left migrating (a move-slots that stopped);
 *   - a switch recorded as under way;
 *   - replicas that follow another server than their node's master (with the fix);
 *   - keys that sit on a master that does not own their slot. A full SCAN of every master;
 *     `--no-keys` skips it. The metadata and slots migrating right now are left out.
 */
import { clusterStatus, ClusterStatus, StatusOptions } from './status';
import { ClusterConfig, SlotTable, masters } from '../cluster/config';
import { slotOf } from '../cluster/slot';
import { isMetaKeyName } from '../cluster/meta-keys';
import { adminClient, closeAll } from './create';
import { formatSlotList } from './move-slots';
import type Redis from 'ioredis';

export interface Finding {
  kind: 'status' | 'migrating' | 'switching' | 'replication' | 'stray-keys';
  message: string;
  /** what to run or do about it */
  fix?: string;
}

export interface CheckOptions extends StatusOptions {
  /** SCAN every master for keys of slots it does not own (default true) */
  keys?: boolean;
  /** keys named per finding (default 3) */
  sample?: number;
}

export interface CheckResult {
  status: ClusterStatus;
  findings: Finding[];
  /** keys scanned, per master (when keys were scanned) */
  scanned: Record<string, number>;
}

export async function checkCluster(o: CheckOptions): Promise<CheckResult> {
  const status = await clusterStatus(o);
  const config = status.config;
  // status's warnings, with what to do where a replica follows the wrong server
  const findings: Finding[] = status.warnings.map((w) => {
    const n = status.nodes.find((x) => x.replicas.some((r) => w.includes(`replica ${r.address} `) || w.includes(`${r.address} is configured as replica`)));
    return n && /follows|reports role/.test(w)
      ? { kind: 'replication', message: w, fix: `REPLICAOF ${n.master.address.replace(':', ' ')} on the replica (or ringside add-replica/remove-replica)` }
      : { kind: 'status', message: w };
  });
  for (const m of status.migrating)
    findings.push({
      kind: 'migrating',
      message: `slots ${m.first === m.last ? m.first : `${m.first}-${m.last}`} are marked as migrating from node ${m.from} to node ${m.to}: a move-slots that did not finish`,
      fix: `ringside move-slots ${m.first === m.last ? m.first : `${m.first}-${m.last}`} --to ${m.to} --seeds ... (it finishes the move)`,
    });
  if (status.switching)
    findings.push({
      kind: 'switching',
      message: `a fail-over of node ${status.switching.node} to ${status.switching.to} is recorded as under way`,
      fix: 'sidecars with fail-over on finish it or roll it back within a few check rounds; if it stays, look at `ringside log` and the sidecars\' logs',
    });
  const scanned: Record<string, number> = {};
  if (o.keys !== false) {
    const names = Object.keys(config.nodes).sort();
    const clients = new Map<string, Redis>();
    try {
      for (const [i, addr] of masters(config).entries()) {
        const me = names[i]!;
        const c = adminClient(addr, { commandTimeoutMs: o.commandTimeoutMs ?? 5000 });
        clients.set(addr, c);
        const stray = new Map<string, { slots: Set<number>; count: number; sample: string[] }>();
        let n = 0;
        try {
          n = await scanStray(c, me, config, (k, slot, owner) => {
            const e = stray.get(owner) ?? { slots: new Set<number>(), count: 0, sample: [] };
            e.slots.add(slot);
            e.count++;
            if (e.sample.length < (o.sample ?? 3)) e.sample.push(JSON.stringify(k.toString('utf8')));
            stray.set(owner, e);
          });
        } catch (e) {
          findings.push({ kind: 'status', message: `${addr} could not be scanned: ${(e as Error).message}` });
          continue;
        }
        scanned[addr] = n;
        for (const [owner, e] of stray)
          findings.push({
            kind: 'stray-keys',
            message: `master ${addr} (node ${me}) holds ${e.count} key(s) of slot(s) ${formatSlotList([...e.slots])}, which node ${owner} owns (e.g. ${e.sample.join(', ')}); the sidecars never route there, so apps do not see them`,
            fix: `compare with node ${owner}'s master ${config.nodes[owner]!.master}: MIGRATE there the keys it lacks, then delete these on ${addr}`,
          });
      }
    } finally {
      closeAll(clients);
    }
  }
  return { status, findings, scanned };
}

/**
 * SCANs one master (node `me`) and calls `onStray` for each key of a slot another node owns (the
 * metadata and slots migrating now left out). Resolves with the number of keys scanned.
 */
export async function scanStray(c: Redis, me: string, config: ClusterConfig, onStray: (key: Buffer, slot: number, owner: string) => void): Promise<number> {
  const table = SlotTable.from(config);
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = (await c.scanBuffer(cursor, 'COUNT', 1000)) as [Buffer, Buffer[]];
    cursor = next.toString();
    n += keys.length;
    for (const k of keys) {
      if (isMetaKeyName(k)) continue;
      const slot = slotOf(k);
      const owner = table.nodeOf(slot);
      if (owner !== me && config.migrating[String(slot)] === undefined) onStray(k, slot, owner);
    }
  } while (cursor !== '0');
  return n;
}

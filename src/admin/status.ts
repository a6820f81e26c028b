/**
 * `ringside status`: what the cluster looks like from the data nodes. Reads every copy of the
 * configuration (seeds first, then every master and replica the newest copy names), asks each
 * reachable server for its replication state, and lists the sidecars that checked in recently.
 */
import Redis from 'ioredis';
import {
  ClusterConfig,
  SIDECARS_KEY,
  Switching,
  Timing,
  FailoverMode,
  roleOf,
} from '../cluster/config';
import { SIDECARS_INFO_KEY } from '../cluster/meta-keys';
import { checkInLiveMs } from '../cluster/check-in';
import { NodeCopy, newest, readCopy } from '../cluster/store';
import { adminClient, closeAll, replicationInfo, whenConnected } from './create';
import { NoConfigurationError, NoSeedReachableError } from './errors';


export interface ServerState {
  address: string;
  node: string;
  /** The role the configuration gives it. */
  configuredRole: 'master' | 'replica';
  reachable: boolean;
  /** Why it is unreachable, or why INFO failed. */
  error?: string;
  /** The role the server itself reports. */
  role?: 'master' | 'replica';
  /** For a server that replicates: the address it follows, and its link. */
  following?: string;
  link?: string;
  /** master_repl_offset of a master, slave_repl_offset of a replica. */
  offset?: number;
  /** Epoch of the copy it holds (null: none usable). */
  epoch: number | null;
}

export interface NodeReport {
  name: string;
  slots: Array<[number, number]>;
  slotCount: number;
  master: ServerState;
  replicas: ServerState[];
}

export interface SidecarReport {
  id: string;
  addr?: string;
  version?: string;
  epoch?: number;
  /** unix ms of the last check-in */
  lastSeen: number;
  ageMs: number;
}

/** The epoch a copy's text claims, even when the JSON around it is broken (what the repair script reads). */
export function claimedEpoch(text: string | undefined): number | null {
  if (text === undefined) return null;
  try {
    const e = Number((JSON.parse(text) as { epoch?: unknown }).epoch);
    if (Number.isFinite(e)) return e;
  } catch {
    /* read below */
  }
  const m = /"epoch"\s*:\s*(\d+)/.exec(text);
  return m ? Number(m[1]) : null;
}

export interface ClusterStatus {
  time: number;
  epoch: number;
  version: string;
  failover: FailoverMode;
  timing: Timing;
  nodes: NodeReport[];
  migrating: Array<{ first: number; last: number; from: string; to: string }>;
  switching: Switching | null;
  copies: {
    byEpoch: Array<{ epoch: number; addresses: string[] }>;
    missing: string[];
    /** `needsOperator`: the broken copy claims a newer epoch than the cluster's, so no sidecar overwrites it */
    bad: Array<{ address: string; reason: string; needsOperator: boolean }>;
    unreachable: Array<{ address: string; reason: string }>;
  };
  sidecars: { liveWithinMs: number; live: SidecarReport[]; stale: number };
  warnings: string[];
  config: ClusterConfig;
}

export interface StatusOptions {
  seeds: string[];
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  now?: () => number;
}

function addresses(c: ClusterConfig): string[] {
  return Object.keys(c.nodes)
    .sort()
    .flatMap((n) => [c.nodes[n]!.master, ...c.nodes[n]!.replicas]);
}

/** Consecutive slots with the same move, as ranges. */
function migratingRanges(c: ClusterConfig): ClusterStatus['migrating'] {
  const out: ClusterStatus['migrating'] = [];
  for (const s of Object.keys(c.migrating).map(Number).sort((a, b) => a - b)) {
    const m = c.migrating[String(s)]!;
    const last = out[out.length - 1];
    if (last && last.last === s - 1 && last.from === m.from && last.to === m.to) last.last = s;
    else out.push({ first: s, last: s, from: m.from, to: m.to });
  }
  return out;
}

export async function clusterStatus(opts: StatusOptions): Promise<ClusterStatus> {
  const now = opts.now ?? Date.now;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
  const clients = new Map<string, Redis>();
  const client = (a: string): Redis => {
    let c = clients.get(a);
    if (!c) {
      c = adminClient(a, { connectTimeoutMs, commandTimeoutMs: opts.commandTimeoutMs ?? 2000 });
      clients.set(a, c);
    }
    return c;
  };
  const copies = new Map<string, NodeCopy>();
  const readOne = async (a: string): Promise<NodeCopy> => {
    const c = client(a);
    // The connection's own error ("connect ECONNREFUSED ...") says more than a failed command's.
    const err = await whenConnected(c, connectTimeoutMs + 500);
    if (err) return { address: a, ok: false, reachable: false, reason: `unreachable: ${err.message}` };
    return readCopy(c, a);
  };
  const readAll = async (addrs: string[]): Promise<void> => {
    const todo = addrs.filter((a) => !copies.has(a));
    for (const c of await Promise.all(todo.map(readOne))) copies.set(c.address, c);
  };
  try {
    await readAll(opts.seeds);
    let best = newest([...copies.values()]);
    if (!best) {
      const all = [...copies.values()] as Array<Extract<NodeCopy, { ok: false }>>;
      const why = all.map((c) => `${c.address} (${c.reason})`).join(', ');
      if (all.every((c) => !c.reachable)) throw new NoSeedReachableError(`no seed is reachable: ${why}`);
      throw new NoConfigurationError(`no configuration could be read from the seeds: ${why}`);
    }
    // The newest copy may name servers that hold a still newer one: follow until it settles.
    for (let i = 0; i < 5; i++) {
      await readAll(addresses(best.config));
      const next = newest([...copies.values()])!;
      if (next.config.epoch === best.config.epoch) break;
      best = next;
    }
    const config = best.config;

    const infos = new Map<string, Record<string, string> | Error>();
    await Promise.all(
      addresses(config).map(async (a) => {
        const copy = copies.get(a)!;
        if (!copy.ok && !copy.reachable) return;
        try {
          infos.set(a, await replicationInfo(client(a)));
        } catch (e) {
          infos.set(a, e as Error);
        }
      }),
    );

    const warnings: string[] = [];
    const server = (address: string): ServerState => {
      const r = roleOf(config, address)!;
      const copy = copies.get(address)!;
      const s: ServerState = {
        address,
        node: r.node,
        configuredRole: r.role,
        reachable: copy.ok || copy.reachable,
        epoch: copy.ok ? copy.config.epoch : null,
      };
      if (!copy.ok && !copy.reachable) {
        s.error = copy.reason.replace(/^unreachable: /, '');
        warnings.push(`${r.node}: ${r.role} ${address} is unreachable`);
        return s;
      }
      const info = infos.get(address);
      if (info instanceof Error || info === undefined) {
        s.error = info ? `INFO failed: ${info.message}` : 'no INFO';
        return s;
      }
      s.role = info.role === 'slave' ? 'replica' : 'master';
      if (s.role === 'replica') {
        s.following = `${info.master_host}:${info.master_port}`;
        s.link = info.master_link_status;
        s.offset = Number(info.slave_repl_offset ?? info.master_repl_offset);
      } else s.offset = Number(info.master_repl_offset);
      if (s.role !== r.role) warnings.push(`${r.node}: ${address} is configured as ${r.role} but reports role ${s.role}`);
      const master = config.nodes[r.node]!.master;
      if (r.role === 'replica' && s.role === 'replica' && s.following !== master)
        warnings.push(`${r.node}: replica ${address} follows ${s.following}, not its master ${master}`);
      if (s.role === 'replica' && s.link !== 'up') warnings.push(`${r.node}: replica ${address} has its link ${s.link}`);
      if (s.epoch !== null && s.epoch < config.epoch) warnings.push(`${address} holds epoch ${s.epoch}, older than ${config.epoch}`);
      return s;
    };

    const nodes: NodeReport[] = Object.keys(config.nodes)
      .sort()
      .map((name) => {
        const slots = config.slots.filter((r) => r[2] === name).map(([a, b]) => [a, b] as [number, number]);
        return {
          name,
          slots,
          slotCount: slots.reduce((n, [a, b]) => n + b - a + 1, 0),
          master: server(config.nodes[name]!.master),
          replicas: config.nodes[name]!.replicas.map(server),
        };
      });

    const byEpoch = new Map<number, string[]>();
    const copiesReport: ClusterStatus['copies'] = { byEpoch: [], missing: [], bad: [], unreachable: [] };
    for (const c of copies.values()) {
      if (c.ok) byEpoch.set(c.config.epoch, [...(byEpoch.get(c.config.epoch) ?? []), c.address]);
      else if (!c.reachable) copiesReport.unreachable.push({ address: c.address, reason: c.reason });
      else if (c.text === undefined) copiesReport.missing.push(c.address);
      else copiesReport.bad.push({ address: c.address, reason: c.reason, needsOperator: (claimedEpoch(c.text) ?? 0) > config.epoch });
    }
    copiesReport.byEpoch = [...byEpoch].sort((a, b) => b[0] - a[0]).map(([epoch, addresses]) => ({ epoch, addresses }));
    for (const b of copiesReport.bad)
      warnings.push(
        b.needsOperator
          ? `${b.address} holds a bad configuration that claims an epoch above ${config.epoch} (${b.reason}): sidecars will not overwrite it, as a copy never goes back. ` +
              'A person must look: if it is garbage, DEL __cluster__:config __cluster__:version on that server and the sidecars rewrite it within a check round'
          : `${b.address} holds a bad configuration (${b.reason}): the sidecars rewrite it from the majority's within a check round`,
      );
    for (const m of copiesReport.missing) warnings.push(`${m} holds no configuration`);

    const sidecars = await readSidecars(config, copies, client, now(), checkInLiveMs(config.timing));
    return {
      time: now(),
      epoch: config.epoch,
      version: best.version,
      failover: config.failover,
      timing: config.timing,
      nodes,
      migrating: migratingRanges(config),
      switching: config.switching,
      copies: copiesReport,
      sidecars,
      warnings,
      config,
    };
  } finally {
    closeAll(clients);
  }
}

/** Sidecar check-ins from every reachable master, merged (the latest check-in of each wins). */
async function readSidecars(
  config: ClusterConfig,
  copies: Map<string, NodeCopy>,
  client: (a: string) => Redis,
  now: number,
  liveWithinMs: number,
): Promise<ClusterStatus['sidecars']> {
  const seen = new Map<string, SidecarReport>();
  const reachableMasters = Object.values(config.nodes)
    .map((n) => n.master)
    .filter((a) => copies.get(a)!.ok || (copies.get(a) as { reachable?: boolean }).reachable);
  await Promise.all(
    reachableMasters.map(async (a) => {
      let raw: unknown;
      let info: Record<string, string>;
      try {
        const c = client(a);
        [raw, info] = await Promise.all([c.call('ZRANGE', SIDECARS_KEY, '0', '-1', 'WITHSCORES'), c.hgetall(SIDECARS_INFO_KEY)]);
      } catch {
        return;
      }
      // RESP2 gives a flat [member, score, ...] list, RESP3 [[member, score], ...].
      const flat = (Array.isArray(raw) ? raw : []).flat() as Array<string | number>;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const id = String(flat[i]);
        const lastSeen = Number(flat[i + 1]);
        const prev = seen.get(id);
        if (prev && prev.lastSeen >= lastSeen) continue;
        const r: SidecarReport = { id, lastSeen, ageMs: Math.max(0, now - lastSeen) };
        try {
          const d = JSON.parse(info[id] ?? 'null') as Record<string, unknown> | null;
          if (d && typeof d === 'object') {
            if (typeof d.addr === 'string') r.addr = d.addr;
            if (typeof d.version === 'string') r.version = d.version;
            if (typeof d.epoch === 'number') r.epoch = d.epoch;
          }
        } catch {
          /* a bad info entry leaves only the id and time */
        }
        seen.set(id, r);
      }
    }),
  );
  const all = [...seen.values()].sort((a, b) => a.id.localeCompare(b.id));
  const live = all.filter((s) => s.ageMs <= liveWithinMs);
  return { liveWithinMs, live, stale: all.length - live.length };
}

const range = ([a, b]: [number, number]): string => (a === b ? `${a}` : `${a}-${b}`);

function serverLine(s: ServerState): string {
  const head = `    ${s.configuredRole.padEnd(8)} ${s.address.padEnd(21)}`;
  if (!s.reachable) return `${head} UNREACHABLE  (${s.error})`;
  if (!s.role) return `${head} reachable    (${s.error})`;
  const role = s.role === 'master' ? 'role master' : `role replica of ${s.following} (link ${s.link})`;
  const mismatch = s.role !== s.configuredRole ? '  [!]' : '';
  return `${head} reachable    ${role}  offset ${s.offset}  epoch ${s.epoch ?? 'none'}${mismatch}`;
}

/** The report as text for a terminal. */
export function formatStatus(s: ClusterStatus): string {
  const t = s.timing;
  const lines = [
    `epoch ${s.epoch}  version ${s.version}`,
    `failover ${s.failover}  timing: check ${t.checkMs} ms, lease ${t.leaseMs} ms, down after ${t.downAfterMs} ms`,
    '',
  ];
  for (const n of s.nodes) {
    lines.push(`node ${n.name}  slots ${n.slots.map(range).join(',') || '(none)'}  (${n.slotCount} slots)`);
    lines.push(serverLine(n.master));
    for (const r of n.replicas) lines.push(serverLine(r));
  }
  lines.push('');
  if (s.migrating.length) {
    lines.push('migrating:');
    for (const m of s.migrating) lines.push(`  slots ${range([m.first, m.last])}  ${m.from} -> ${m.to}`);
  } else lines.push('migrating: none');
  const sw = s.switching;
  lines.push(
    sw
      ? `switching: node ${sw.node} from ${sw.from} to ${sw.to} since ${new Date(sw.since).toISOString()} by ${sw.by}`
      : 'switching: none',
  );
  lines.push('', 'copies:');
  for (const e of s.copies.byEpoch) lines.push(`  epoch ${e.epoch}: ${e.addresses.join(', ')}`);
  if (s.copies.missing.length) lines.push(`  no configuration: ${s.copies.missing.join(', ')}`);
  for (const b of s.copies.bad) lines.push(`  bad: ${b.address} (${b.reason})`);
  if (s.copies.unreachable.length) lines.push(`  unreachable: ${s.copies.unreachable.map((u) => u.address).join(', ')}`);
  lines.push('', `sidecars: ${s.sidecars.live.length} live (seen within ${s.sidecars.liveWithinMs} ms), ${s.sidecars.stale} stale`);
  for (const c of s.sidecars.live)
    lines.push(`  ${c.id}  ${c.addr ?? '?'}  version ${c.version ?? '?'}  epoch ${c.epoch ?? '?'}  ${c.ageMs} ms ago`);
  if (s.warnings.length) {
    lines.push('', 'warnings:');
    for (const w of s.warnings) lines.push(`  - ${w}`);
  }
  return lines.join('\n');
}

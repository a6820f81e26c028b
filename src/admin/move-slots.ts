/**
 * `ringside move-slots`: gives slots to another node, following "Moving slots" in the protocol:
 *
 * 1. configuration epoch+1 marks each slot `migrating` from its owner to the target, written
 *    with compare-and-set on every master (a majority must take it); then a wait longer than
 *    `leaseMs`, after which every sidecar either knows of the migration or has stopped routing;
 * 2. the slots' keys are moved from each source master to the target master with MIGRATE (atomic
 *    per batch, no REPLACE: a key already on the target is an error to resolve by hand), scanning
 *    until a full pass finds none left;
 * 3. configuration epoch+1 gives the slots to the target and clears their `migrating` entries.
 *
 * Running it again after an interruption resumes: slots already migrating to the same target
 * are not marked twice.
 */
import Redis from 'ioredis';
import { isMetaKeyName } from '../cluster/meta-keys';
import { ClusterConfig, compactSlots, leaseToWaitMs, majority, masters, splitAddress } from '../cluster/config';
import { NodeCopy, newest, readCopy, writeEverywhere } from '../cluster/store';
import { SLOT_COUNT, slotOf } from '../cluster/slot';
import { adminClient, appendLog, closeAll, whenConnected } from './create';
import { nodeCredentials } from '../cluster/credentials';
import { ConcurrentChangeError, MigrateError, MoveSlotsError, SlotListError } from './errors';

export type MoveProgress =
  | { phase: 'marked'; epoch: number; slots: number[]; to: string; written: number; masters: number }
  | { phase: 'resumed'; epoch: number; slots: number[]; to: string }
  | { phase: 'waiting'; ms: number; leaseMs: number }
  | { phase: 'moving'; from: string; to: string; moved: number; pass: number }
  | { phase: 'moved'; from: string; to: string; moved: number }
  | { phase: 'done'; epoch: number; slots: number[]; to: string; moved: number; written: number; masters: number };

export interface MoveSlotsOptions {
  seeds: string[];
  slots: number[];
  /** Name of the node that receives the slots. */
  to: string;
  /** Keys per MIGRATE (default 100). */
  batchSize?: number;
  /** MIGRATE's own timeout (default 5000 ms). */
  migrateTimeoutMs?: number;
  onProgress?: (p: MoveProgress) => void;
}

export interface MoveSlotsResult {
  /** The final configuration, the slots given to the target. */
  config: ClusterConfig;
  /** Keys moved, per source node. */
  moved: Record<string, number>;
}

/** "100-200,300" → [100, ..., 200, 300], sorted, without repeats. */
export function parseSlotList(spec: string): number[] {
  const out = new Set<number>();
  const parts = spec.split(',').map((p) => p.trim());
  if (!spec.trim() || parts.some((p) => p === '')) throw new SlotListError(`bad slot list ${JSON.stringify(spec)}: use e.g. 100-200,300`);
  for (const p of parts) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(p);
    if (!m) throw new SlotListError(`bad slot range ${JSON.stringify(p)}: use first-last or one slot number`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (const n of [a, b]) if (n >= SLOT_COUNT) throw new SlotListError(`slot ${n} is out of range 0..${SLOT_COUNT - 1}`);
    if (a > b) throw new SlotListError(`bad slot range ${p}: first is after last`);
    for (let s = a; s <= b; s++) out.add(s);
  }
  return [...out].sort((x, y) => x - y);
}

/** "100-200,300" from [100..200, 300]. */
export function formatSlotList(slots: number[]): string {
  const sorted = [...slots].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function owners(config: ClusterConfig): string[] {
  const owner: string[] = new Array(SLOT_COUNT);
  for (const [a, b, n] of config.slots) for (let s = a; s <= b; s++) owner[s] = n;
  return owner;
}

export interface MovePlan {
  /** The marking configuration (epoch+1), or null when every slot is already migrating to `to`. */
  marked: ClusterConfig | null;
  /** Source node → its slots. */
  sources: Map<string, number[]>;
}

/** Checks a move against a configuration and builds the marking step. Pure. */
export function planMove(config: ClusterConfig, slots: number[], to: string): MovePlan {
  if (!slots.length) throw new MoveSlotsError('no slots to move');
  for (const s of slots) if (!Number.isInteger(s) || s < 0 || s >= SLOT_COUNT) throw new MoveSlotsError(`slot ${s} is out of range 0..${SLOT_COUNT - 1}`);
  if (!(to in config.nodes)) throw new MoveSlotsError(`unknown node ${JSON.stringify(to)}; the nodes are ${Object.keys(config.nodes).sort().join(', ')}`);
  if (config.switching)
    throw new MoveSlotsError(`a fail-over of node ${config.switching.node} is in progress (switching); try again when it has ended`);
  const owner = owners(config);
  const owned = slots.filter((s) => owner[s] === to);
  if (owned.length) throw new MoveSlotsError(`node ${to} already owns slot(s) ${formatSlotList(owned)}`);
  const elsewhere = slots.filter((s) => {
    const m = config.migrating[String(s)];
    return m !== undefined && (m.to !== to || m.from !== owner[s]);
  });
  if (elsewhere.length) {
    const s = elsewhere[0]!;
    const m = config.migrating[String(s)]!;
    throw new MoveSlotsError(`slot(s) ${formatSlotList(elsewhere)} are already migrating (slot ${s}: ${m.from} -> ${m.to}); finish that move first`);
  }
  const sources = new Map<string, number[]>();
  for (const s of slots) sources.set(owner[s]!, [...(sources.get(owner[s]!) ?? []), s]);
  const unmarked = slots.filter((s) => config.migrating[String(s)] === undefined);
  if (!unmarked.length) return { marked: null, sources };
  const migrating = { ...config.migrating };
  for (const s of unmarked) migrating[String(s)] = { from: owner[s]!, to };
  return { marked: { ...config, epoch: config.epoch + 1, migrating }, sources };
}

/** The final step: epoch+1 with the slots owned by `to` and their `migrating` entries cleared. Pure. */
export function giveSlots(config: ClusterConfig, slots: number[], to: string): ClusterConfig {
  const owner = owners(config);
  for (const s of slots) owner[s] = to;
  const migrating = { ...config.migrating };
  for (const s of slots) delete migrating[String(s)];
  return {
    ...config,
    epoch: config.epoch + 1,
    slots: compactSlots(owner.map((n, s) => [s, s, n] as [number, number, string])),
    migrating,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long to wait after a migration mark: longer than the lease, with a margin. */
export function leaseWaitMs(config: ClusterConfig): number {
  const lease = leaseToWaitMs(config.timing);
  return lease + Math.max(100, Math.ceil(lease / 10));
}

/** Connections to every address we need, opened once. */
class Clients {
  readonly map = new Map<string, Redis>();
  #timeout: number;
  constructor(commandTimeoutMs: number) {
    this.#timeout = commandTimeoutMs;
  }
  get(a: string): Redis {
    let c = this.map.get(a);
    if (!c) {
      c = adminClient(a, { commandTimeoutMs: this.#timeout });
      this.map.set(a, c);
    }
    return c;
  }
  of(addrs: string[]): Map<string, Redis> {
    return new Map(addrs.map((a) => [a, this.get(a)]));
  }
  async read(a: string): Promise<NodeCopy> {
    const err = await whenConnected(this.get(a), 1500);
    if (err) return { address: a, ok: false, reachable: false, reason: `unreachable: ${err.message}` };
    return readCopy(this.get(a), a);
  }
  close(): void {
    closeAll(this.map);
  }
}

/** The newest configuration held by the seeds and every master it names. */
async function newestConfig(clients: Clients, seeds: string[]): Promise<ClusterConfig> {
  const copies = await Promise.all(seeds.map((a) => clients.read(a)));
  const first = newest(copies);
  if (!first) {
    const why = copies.map((c) => `${c.address} (${c.ok ? 'ok' : c.reason})`).join(', ');
    throw new MoveSlotsError(`no configuration could be read from the seeds: ${why}`);
  }
  let best: Extract<NodeCopy, { ok: true }> = first;
  for (let i = 0; i < 5; i++) {
    const more = await Promise.all(masters(best.config).map((a) => clients.read(a)));
    const next: Extract<NodeCopy, { ok: true }> = newest([best, ...more])!;
    if (next.config.epoch === best.config.epoch) break;
    best = next;
  }
  return best.config;
}

/** CAS-writes `config` on every master; a majority must take it and none may already be newer. */
async function publish(clients: Clients, config: ClusterConfig): Promise<number> {
  const addrs = masters(config);
  const res = await writeEverywhere(clients.of(addrs), config);
  const newer = addrs.filter((a) => res.get(a) === 'current');
  if (newer.length)
    throw new ConcurrentChangeError(
      `${newer.join(', ')} already hold epoch ${config.epoch} or newer: the configuration changed meanwhile; run status, then move-slots again`,
    );
  const failed = addrs.filter((a) => res.get(a) instanceof Error);
  const written = addrs.length - failed.length;
  if (written < majority(addrs.length))
    throw new MoveSlotsError(
      `configuration epoch ${config.epoch} reached only ${written} of ${addrs.length} masters: ${failed.map((a) => `${a} (${(res.get(a) as Error).message})`).join(', ')}`,
    );
  return written;
}

export async function moveSlots(opts: MoveSlotsOptions): Promise<MoveSlotsResult> {
  const progress = opts.onProgress ?? (() => {});
  const batchSize = opts.batchSize ?? 100;
  const migrateTimeout = opts.migrateTimeoutMs ?? 5000;
  const slots = [...new Set(opts.slots)].sort((a, b) => a - b);
  const clients = new Clients(migrateTimeout + 5000);
  try {
    const config = await newestConfig(clients, opts.seeds);
    const plan = planMove(config, slots, opts.to);
    const target = config.nodes[opts.to]!.master;
    // Both ends must answer before anything is marked.
    for (const a of [target, ...[...plan.sources.keys()].map((n) => config.nodes[n]!.master)]) {
      const err = await whenConnected(clients.get(a), 1500);
      if (err) throw new MoveSlotsError(`cannot reach ${a} (${roleName(config, a)}): ${err.message}`);
    }
    let current = config;
    if (plan.marked) {
      const written = await publish(clients, plan.marked);
      current = plan.marked;
      progress({ phase: 'marked', epoch: current.epoch, slots, to: opts.to, written, masters: masters(current).length });
      await appendLog(clients.of(masters(current)), {
        event: 'migrate-start',
        epoch: current.epoch,
        by: 'admin',
        slots: formatSlotList(slots),
        from: [...plan.sources.keys()],
        to: opts.to,
      });
    } else progress({ phase: 'resumed', epoch: current.epoch, slots, to: opts.to });
    const wait = leaseWaitMs(current);
    progress({ phase: 'waiting', ms: wait, leaseMs: current.timing.leaseMs });
    await sleep(wait);

    const moved: Record<string, number> = {};
    const { host, port } = splitAddress(target);
    for (const [from, fromSlots] of plan.sources) {
      const source = current.nodes[from]!.master;
      moved[from] = await drain(clients.get(source), clients.get(target), {
        slots: new Set(fromSlots),
        host,
        port,
        batchSize,
        migrateTimeout,
        onMoved: (n, pass) => progress({ phase: 'moving', from, to: opts.to, moved: n, pass }),
        describe: `${from} (${source}) -> ${opts.to} (${target})`,
      });
      progress({ phase: 'moved', from, to: opts.to, moved: moved[from]! });
    }

    // Apply the final step to whatever is newest now, as long as it still carries our marks.
    const latest = await newestConfig(clients, [...opts.seeds, ...masters(current)]);
    if (latest.switching) throw new ConcurrentChangeError(`a fail-over of node ${latest.switching.node} started during the move; run move-slots again when it has ended`);
    for (const s of slots) {
      const m = latest.migrating[String(s)];
      const mine = plan.marked?.migrating[String(s)] ?? config.migrating[String(s)];
      if (!m || m.to !== mine!.to || m.from !== mine!.from)
        throw new ConcurrentChangeError(`slot ${s} is no longer marked as migrating to ${opts.to} (epoch ${latest.epoch}); nothing was given`);
    }
    const final = giveSlots(latest, slots, opts.to);
    const written = await publish(clients, final);
    const total = Object.values(moved).reduce((a, b) => a + b, 0);
    await appendLog(clients.of(masters(final)), {
      event: 'migrate',
      epoch: final.epoch,
      by: 'admin',
      slots: formatSlotList(slots),
      from: [...plan.sources.keys()],
      to: opts.to,
      keys: total,
    });
    progress({ phase: 'done', epoch: final.epoch, slots, to: opts.to, moved: total, written, masters: masters(final).length });
    return { config: final, moved };
  } finally {
    clients.close();
  }
}

function roleName(config: ClusterConfig, address: string): string {
  for (const [n, spec] of Object.entries(config.nodes)) if (spec.master === address) return `master of ${n}`;
  return 'node';
}


/**
 * Moves every key of `slots` from source to target; scans again until a whole pass finds none.
 * Resolves with the number of keys moved.
 */
async function drain(
  source: Redis,
  target: Redis,
  o: {
    slots: Set<number>;
    host: string;
    port: number;
    batchSize: number;
    migrateTimeout: number;
    onMoved: (moved: number, pass: number) => void;
    describe: string;
  },
): Promise<number> {
  let moved = 0;
  for (let pass = 1; pass <= 10; pass++) {
    let found = 0;
    let cursor = '0';
    do {
      const [next, keys] = (await source.scanBuffer(cursor, 'COUNT', 1000)) as [Buffer, Buffer[]];
      cursor = next.toString();
      const pick = keys.filter((k) => !isMetaKeyName(k) && o.slots.has(slotOf(k)));
      found += pick.length;
      for (let i = 0; i < pick.length; i += o.batchSize) {
        const batch = pick.slice(i, i + o.batchSize);
        let reply: unknown;
        try {
          reply = await source.call('MIGRATE', o.host, String(o.port), '', '0', String(o.migrateTimeout), ...migrateAuth(), 'KEYS', ...batch);
        } catch (e) {
          throw await migrateFailure(e as Error, batch, source, target, o.describe, moved);
        }
        if (String(reply) === 'OK') {
          // Keys that expired or were deleted meanwhile are not moved; count what left the source.
          // (anything still there is picked up by the next pass).
          const left = (await source.exists(...batch)) as number;
          moved += batch.length - left;
        }
      }
      if (pick.length) o.onMoved(moved, pass);
    } while (cursor !== '0');
    if (found === 0) return moved;
  }
  throw new MigrateError(`${o.describe}: keys of the slots keep appearing on the source after 10 passes`);
}

/** MIGRATE's AUTH/AUTH2 arguments for the target, as the control user (Redis hides them in its slow log and MONITOR). */
export function migrateAuth(): string[] {
  const c = nodeCredentials.get('control');
  if (!c) return [];
  return c.user ? ['AUTH2', c.user, c.password] : ['AUTH', c.password];
}

async function migrateFailure(e: Error, batch: Buffer[], source: Redis, target: Redis, describe: string, moved: number): Promise<Error> {
  const after = moved > 0 ? ` (${moved} key(s) moved before this)` : '';
  if (/BUSYKEY/.test(e.message)) {
    const busy: string[] = [];
    for (const k of batch) {
      try {
        if ((await target.exists(k)) && (await source.exists(k))) busy.push(k.toString('utf8'));
      } catch {
        /* listed as far as we can */
      }
    }
    const list = busy.slice(0, 10).map((k) => JSON.stringify(k)).join(', ') + (busy.length > 10 ? `, and ${busy.length - 10} more` : '');
    return new MigrateError(
      `${describe}: key(s) already exist on the target: ${list || '(could not tell which)'}${after}. ` +
        'Nothing is overwritten: remove or rename them on one side, then run move-slots again to finish.',
    );
  }
  return new MigrateError(`${describe}: MIGRATE failed: ${e.message}${after}. Run move-slots again to finish.`);
}

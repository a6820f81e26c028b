/**
 * Routing decisions, pure: no socket, no clock, no session. Every command family asks these
 * functions where a command goes, and refuses with their answer when it cannot go anywhere:
 *
 *   keys ─▶ slotOf ─▶ slot ─▶ nodeFor(routing, slot) ─▶ node index ─▶ addressFor ─▶ address
 *             │                     │
 *             └ refusal text        └ SWITCHING / MIGRATING (refusalFor says why)
 *
 * Before any of it, the lease: whether a configuration may be routed on at all (leaseRefusal;
 * the cluster view keeps its confirmation time and calls it, src/proxy/keyed.ts asks the view). Everything here works on the client's
 * request bytes without making strings, and allocates nothing on the single-key path.
 * test/unit/router.test.ts covers every family's routing and refusals without a redis-server.
 */
import type { ParsedCommand } from '../resp/request-parser';
import { CommandSpec, KeyExtractionError, keyIndexes, subcommand } from '../commands/table';
import { slotOfBytes } from '../cluster/slot';
import { isMetaKey } from '../cluster/meta-keys';
import type { Routing } from './routing';
import * as text from './replies';

/**
 * Why no command may be routed now, or null: no configuration yet, none confirmed by a majority
 * of masters yet (`confirmedAt` 0), or the last confirmation older than the lease
 * (docs/protocol.md, "The lease"). `now` and `confirmedAt` are unix ms.
 */
export function leaseRefusal(hasConfig: boolean, confirmedAt: number, now: number, leaseMs: number): string | null {
  if (!hasConfig) return text.NO_CONFIG;
  if (confirmedAt === 0) return text.NOT_CONFIRMED;
  if (now - confirmedAt > leaseMs) return text.leaseLapsed(now - confirmedAt, leaseMs);
  return null;
}

/** nodeFor's answers that are not a node index */
export const SWITCHING = -1;
export const MIGRATING = -2;

/**
 * The slot of a keyed command; or a string: '' when it names no key, else the error to answer
 * (a metadata key, keys in several slots, a subcommand the sidecar cannot route, bad key counts).
 */
export function slotOf(spec: CommandSpec, cmd: ParsedCommand): number | string {
  let effective = spec;
  if (spec.subcommands) {
    const sub = subcommand(spec, cmd);
    // HELP of a keyed container command (OBJECT, XINFO, XGROUP, ...): no key, any node answers
    if (sub && sub.name.endsWith('|help')) return '';
    if (!sub || (sub.keyStart <= 0 && !sub.movable)) return text.notSupported(cmd.argc > 1 ? `${spec.name} ${cmd.argString(1).slice(0, 64)}` : spec.name);
    effective = sub;
  }
  if (!effective.movable && effective.keyStart === 1 && effective.keyStop === 1 && cmd.argc >= 2) {
    // one key, the first argument (GET, SET, INCR, LPUSH, ...): no key list to build
    const s = cmd.argStart[1]!;
    const e = cmd.argEnd[1]!;
    if (isMetaKey(cmd.buf, s, e)) return text.META_REFUSED;
    return slotOfBytes(cmd.buf, s, e);
  }
  const keys: number[] = [];
  try {
    keyIndexes(effective, cmd, keys);
  } catch (e) {
    if (e instanceof KeyExtractionError) return e.message;
    throw e;
  }
  if (keys.length === 0) return '';
  let slot = -1;
  const buf = cmd.buf;
  for (let i = 0; i < keys.length; i++) {
    const s = cmd.argStart[keys[i]!]!;
    const e = cmd.argEnd[keys[i]!]!;
    if (isMetaKey(buf, s, e)) return text.META_REFUSED;
    const ks = slotOfBytes(buf, s, e);
    if (slot === -1) slot = ks;
    else if (ks !== slot) return crossSlotOf(cmd, keys);
  }
  return slot;
}

/** The refusal of keys in several slots, naming each key's slot (the refusal path only). */
function crossSlotOf(cmd: ParsedCommand, keys: number[]): string {
  const named: Array<[string, number]> = [];
  for (const i of keys) named.push([cmd.argString(i), slotOfBytes(cmd.buf, cmd.argStart[i]!, cmd.argEnd[i]!)]);
  return text.crossSlot(named);
}

/**
 * The node index that serves `slot` now; SWITCHING while that node's master is being switched;
 * MIGRATING when the slot is moving and `migrationOk` is false (the command cannot take the
 * migration path: blocking commands, WATCH, transactions, a redirected command whose arguments
 * are gone).
 */
export function nodeFor(r: Routing, slot: number, migrationOk: boolean): number {
  const node = r.table.owner[slot]!;
  if (node === r.switchingIndex) return SWITCHING;
  if (!migrationOk && r.migrating.size !== 0 && r.migrating.has(slot)) return MIGRATING;
  return node;
}

/**
 * Why nodeFor answered `code` for `slot`, as a client is told. `waiting` names which commands
 * wait for a migrating slot ('' = this one).
 */
export function refusalFor(r: Routing, code: number, slot: number, waiting = ''): string {
  if (code === SWITCHING) return text.switching(r.table.names[r.table.owner[slot]!]!);
  return text.migrating(slot, waiting);
}

/** Why a command to every master cannot go now (one of them is switching), or null. */
export function everyMasterRefusal(r: Routing): string | null {
  return r.switchingIndex >= 0 ? text.switching(r.table.names[r.switchingIndex]!) : null;
}

export type ReadFrom = 'master' | 'replica' | 'any';

/**
 * The address a command for node index `node` goes to: its master for writes and under
 * `--read-from master`; for reads, a replica (`replica`) or any copy (`any`), chosen by the
 * client's id so one client keeps reading one copy. Copies that `isDown` are passed over; with
 * none left, the master.
 */
export function addressFor(r: Routing, node: number, read: boolean, readFrom: ReadFrom, clientId: number, isDown: (addr: string) => boolean): string {
  // apart, so the common case stays small enough to inline into the keyed family's route
  return !read || readFrom === 'master' ? r.masterOf[node]! : readAddress(r, node, readFrom, clientId, isDown);
}

export function readAddress(r: Routing, node: number, readFrom: ReadFrom, clientId: number, isDown: (addr: string) => boolean): string {
  const master = r.masterOf[node]!;
  const up = r.replicasOf[node]!.filter((a) => !isDown(a));
  if (readFrom === 'replica') return up.length ? up[clientId % up.length]! : master;
  const all = isDown(master) ? up : [master, ...up];
  return all.length ? all[clientId % all.length]! : master;
}

/** The same for a keyless command any master can answer: one chosen by the client's id, up ones first. */
export function anyMaster(r: Routing, clientId: number, isDown: (addr: string) => boolean): string {
  const up = r.masters.filter((m) => !isDown(m));
  const from = up.length ? up : r.masters;
  return from[clientId % from.length]!;
}

/**
 * How a multi-key command that may span nodes (MGET, MSET, DEL, EXISTS, ...) is split: its key
 * argument indexes grouped by node, in their original order. `step` is 2 for key-value lists.
 */
export interface SplitPlan {
  /** every key in one slot: the command goes as it came, routed like any keyed command */
  oneSlot: boolean;
  /** the first key's slot */
  firstSlot: number;
  /** node indexes, in order of their first key */
  nodes: number[];
  /** argument indexes of the keys, per node (same order as nodes) */
  groups: number[][];
}

/** Splits the keys of `cmd` by node, or returns the refusal to answer. */
export function splitByNode(r: Routing, cmd: ParsedCommand, step: 1 | 2): SplitPlan | string {
  const owner = r.table.owner;
  const buf = cmd.buf;
  const nodes: number[] = [];
  const groups: number[][] = [];
  let firstSlot = -1;
  let oneSlot = true;
  /** a migrating slot among the keys: only a command in that one slot can take the migration path */
  let migrating = -1;
  for (let i = 1; i < cmd.argc; i += step) {
    const s = cmd.argStart[i]!;
    const e = cmd.argEnd[i]!;
    if (isMetaKey(buf, s, e)) return text.META_REFUSED;
    const slot = slotOfBytes(buf, s, e);
    if (firstSlot === -1) firstSlot = slot;
    else if (slot !== firstSlot) oneSlot = false;
    const node = owner[slot]!;
    if (node === r.switchingIndex) return refusalFor(r, SWITCHING, slot);
    if (migrating === -1 && r.migrating.size !== 0 && r.migrating.has(slot)) migrating = slot;
    let k = nodes.indexOf(node);
    if (k === -1) {
      k = nodes.length;
      nodes.push(node);
      groups.push([]);
    }
    groups[k]!.push(i);
  }
  if (migrating !== -1 && !oneSlot) return text.migrating(migrating, 'multi-key commands across slots');
  return { oneSlot, firstSlot, nodes, groups };
}

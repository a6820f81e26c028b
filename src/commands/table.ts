/**
 * The command table. Key positions, arity and flags come from @ioredis/commands (data kept in
 * step with Redis's COMMAND output); how the sidecar handles each command is data too
 * (HANDLING below). A command the table does not know is refused by name; a keyless command
 * with no entry in HANDLING is refused rather than sent to an arbitrary node (tests enforce
 * that every movable-keys command and every keyless command is classified).
 */
import rawTable from '@ioredis/commands/built/commands.json';
import type { ParsedCommand } from '../resp/request-parser';
import { hashedRange, slotOfBytes } from '../cluster/slot';

/** How the sidecar handles a command. */
export type Handling =
  /** routed by its keys to the owning node; all keys must share a slot */
  | 'keyed'
  /** answered by the sidecar itself */
  | 'local'
  /** keys split per slot, sent in parallel, replies merged */
  | 'split-mget'
  | 'split-mset'
  | 'split-sum'
  /** sent to every master, replies merged */
  | 'fanout'
  /** scripts and functions: routed by declared keys, or (no keys) to any master */
  | 'script'
  /** MULTI/EXEC/DISCARD/WATCH/UNWATCH: a dedicated connection for the span */
  | 'transaction'
  /** commands that may block: a dedicated connection */
  | 'blocking'
  /** subscriptions and publishing */
  | 'pubsub'
  /** refused with a clear error */
  | 'refused';

interface RawSpec {
  arity: number;
  flags: string[];
  keyStart: number;
  keyStop: number;
  step: number;
  subcommands?: Record<string, RawSpec>;
}

export interface CommandSpec {
  name: string;
  arity: number;
  write: boolean;
  readonly: boolean;
  blocking: boolean;
  movable: boolean;
  pubsub: boolean;
  keyStart: number;
  keyStop: number;
  step: number;
  handling: Handling;
  /** for refused commands: why */
  reason?: string;
  subcommands?: Map<string, CommandSpec>;
}

const REFUSE_ADMIN = 'is an administrative command of the data nodes; run it on the nodes directly or through ringside\'s admin CLI';

/** How each command is handled, where that is not 'keyed'. */
export const HANDLING: Record<string, Handling | [Handling, string]> = {
  // answered by the sidecar
  ping: 'local',
  echo: 'local',
  quit: 'local',
  select: 'local',
  hello: 'local',
  client: 'local',
  command: 'local',
  info: 'local',
  config: 'local',
  time: 'local',
  auth: 'local',
  readonly: 'local',
  readwrite: 'local',
  reset: 'local',
  slowlog: 'local',
  lolwut: 'local',
  // split per slot
  mget: 'split-mget',
  mset: 'split-mset',
  del: 'split-sum',
  unlink: 'split-sum',
  exists: 'split-sum',
  touch: 'split-sum',
  // keyspace-wide
  keys: 'fanout',
  scan: 'fanout',
  dbsize: 'fanout',
  randomkey: 'fanout',
  flushall: 'fanout',
  flushdb: 'fanout',
  // scripts and functions
  eval: 'script',
  evalsha: 'script',
  eval_ro: 'script',
  evalsha_ro: 'script',
  fcall: 'script',
  fcall_ro: 'script',
  script: 'script',
  function: 'script',
  // transactions
  multi: 'transaction',
  exec: 'transaction',
  discard: 'transaction',
  watch: 'transaction',
  unwatch: 'transaction',
  // pub/sub
  subscribe: 'pubsub',
  unsubscribe: 'pubsub',
  psubscribe: 'pubsub',
  punsubscribe: 'pubsub',
  ssubscribe: 'pubsub',
  sunsubscribe: 'pubsub',
  publish: 'pubsub',
  spublish: 'pubsub',
  pubsub: 'pubsub',
  // blocking (besides those flagged 'blocking' in the table)
  wait: 'blocking',
  xread: 'keyed', // blocking only with BLOCK: decided per call
  xreadgroup: 'keyed',
  // refused
  monitor: ['refused', 'is not supported through the sidecar: run MONITOR on a data node'],
  sync: ['refused', REFUSE_ADMIN],
  psync: ['refused', REFUSE_ADMIN],
  replconf: ['refused', REFUSE_ADMIN],
  replicaof: ['refused', REFUSE_ADMIN],
  slaveof: ['refused', REFUSE_ADMIN],
  failover: ['refused', 'is not how a ringside cluster fails over: use `ringside failover <node>`'],
  shutdown: ['refused', REFUSE_ADMIN],
  save: ['refused', REFUSE_ADMIN],
  bgsave: ['refused', REFUSE_ADMIN],
  bgrewriteaof: ['refused', REFUSE_ADMIN],
  lastsave: ['refused', REFUSE_ADMIN],
  debug: ['refused', REFUSE_ADMIN],
  swapdb: ['refused', 'is not supported: a ringside cluster has only database 0'],
  move: ['refused', 'is not supported: a ringside cluster has only database 0'],
  migrate: ['refused', 'is not supported through the sidecar: slots are moved with `ringside move-slots`'],
  cluster: ['refused', 'is not supported: ringside nodes are not in Redis Cluster mode; use `ringside status`'],
  asking: ['refused', 'is not supported: ringside nodes are not in Redis Cluster mode'],
  acl: ['refused', REFUSE_ADMIN],
  module: ['refused', REFUSE_ADMIN],
  latency: ['refused', REFUSE_ADMIN],
  memory: 'keyed', // MEMORY USAGE key; other subcommands refused below
  object: 'keyed',
  role: ['refused', REFUSE_ADMIN],
  waitaof: ['refused', 'is not supported through the sidecar'],
  pfselftest: 'local', // a self-test of the HyperLogLog code: any master runs it
  pfdebug: 'keyed', // PFDEBUG <subcommand> key: the key's node
  trimslots: ['refused', 'is not supported: ringside nodes are not in Redis Cluster mode'],
  backup: ['refused', REFUSE_ADMIN],
  hotkeys: ['refused', REFUSE_ADMIN],
};

function build(name: string, raw: RawSpec, parent?: string): CommandSpec {
  const h = parent === undefined ? HANDLING[name] : undefined;
  const [handling, reason] = Array.isArray(h) ? h : [h ?? (raw.flags.includes('blocking') ? 'blocking' : 'keyed'), undefined];
  const spec: CommandSpec = {
    name: parent ? `${parent}|${name}` : name,
    arity: raw.arity,
    write: raw.flags.includes('write'),
    readonly: raw.flags.includes('readonly'),
    blocking: raw.flags.includes('blocking'),
    movable: raw.flags.includes('movablekeys'),
    pubsub: raw.flags.includes('pubsub'),
    keyStart: raw.keyStart,
    keyStop: raw.keyStop,
    step: raw.step,
    handling,
    // always present, so that every spec has one shape (the hot path's loads stay monomorphic)
    reason: reason || undefined,
    subcommands: raw.subcommands ? new Map(Object.entries(raw.subcommands).map(([sub, rs]) => [sub, build(sub, rs, name)])) : undefined,
  };
  return spec;
}

export const COMMANDS: Map<string, CommandSpec> = new Map(
  Object.entries(rawTable as unknown as Record<string, RawSpec>).map(([n, r]) => [n, build(n, r)]),
);

/**
 * Specs bucketed by name length and first letter, so the hot path finds a command by comparing
 * bytes (case-insensitively) instead of building a lower-case string per command. Each entry
 * keeps its name as bytes for ParsedCommand.argIsBytes: comparing with a string's charCodeAt cost
 * a generic property load per call in optimized code (callgrind: 3 per lookup, ~120 instructions
 * each).
 */
interface ShapeEntry {
  spec: CommandSpec;
  bytes: Uint8Array;
  /** the name's last byte: most names that share a bucket differ there (lindex, lpushx, lrange) */
  last: number;
}
// indexed by (length << 8) | first byte: an array load rather than a Map's hash lookup per command
const MAX_NAME = Math.max(...[...COMMANDS.keys()].map((n) => n.length));
const BY_SHAPE: (ShapeEntry[] | null)[] = new Array<ShapeEntry[] | null>((MAX_NAME + 1) << 8).fill(null);
for (const spec of COMMANDS.values()) {
  const k = (spec.name.length << 8) | spec.name.charCodeAt(0);
  (BY_SHAPE[k] ??= []).push({ spec, bytes: Buffer.from(spec.name, 'latin1'), last: spec.name.charCodeAt(spec.name.length - 1) });
}

/** The spec of the command in `cmd`, or undefined when the table does not know it. */
export function lookup(cmd: ParsedCommand): CommandSpec | undefined {
  const s = cmd.argStart[0]!;
  const len = cmd.argEnd[0]! - s;
  const first = cmd.buf[s]!;
  if (len > MAX_NAME) return undefined;
  const bucket = BY_SHAPE[(len << 8) | (first >= 0x41 && first <= 0x5a ? first | 0x20 : first)];
  if (bucket === null) return undefined; // the index is below the array's length: len <= MAX_NAME, a byte
  const lastByte = cmd.buf[s + len - 1]!;
  const last = lastByte >= 0x41 && lastByte <= 0x5a ? lastByte | 0x20 : lastByte;
  for (let i = 0; i < bucket.length; i++) {
    const entry = bucket[i]!;
    if (entry.last === last && cmd.argIsBytes(0, entry.bytes)) return entry.spec;
  }
  return undefined;
}

/** Redis's arity check: positive = exact argc, negative = at least -arity. */
export function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity >= 0 ? argc === spec.arity : argc >= -spec.arity;
}

/** A command whose keys cannot be found (bad numkeys and the like); the message is the reply. */
export class KeyExtractionError extends Error {
  override name = 'KeyExtractionError';
}

/** Indexes of the key arguments of a command with fixed key positions. */
function fixedKeys(spec: { keyStart: number; keyStop: number; step: number }, argc: number, out: number[]): void {
  if (spec.keyStart <= 0) return;
  const last = spec.keyStop >= 0 ? Math.min(spec.keyStop, argc - 1) : argc + spec.keyStop;
  for (let i = spec.keyStart; i <= last; i += spec.step || 1) out.push(i);
}

/**
 * How a command family checks its numkeys argument, with Redis's own error texts (7.0):
 * scripts allow 0 keys; ZUNION/ZINTER/ZDIFF want at least one; the *CARD and *MPOP commands
 * (and MSETEX) want at least one and say so for a non-number too.
 */
const enum Numkeys {
  Script,
  ZsetOp,
  Card,
}

function numkeysAt(cmd: ParsedCommand, at: number, out: number[], step = 1, style = Numkeys.Card): void {
  const n = cmd.argInt(at);
  const left = cmd.argc - at - 1;
  if (style === Numkeys.Script) {
    // FCALL's own text for a numkeys that is not a number; EVAL's is the generic one
    if (!Number.isInteger(n)) throw new KeyExtractionError(cmd.argLower(0).startsWith('fcall') ? 'ERR Bad number of keys provided' : 'ERR value is not an integer or out of range');
    if (n < 0) throw new KeyExtractionError("ERR Number of keys can't be negative");
    if (n * step > left) throw new KeyExtractionError("ERR Number of keys can't be greater than number of args");
  } else if (style === Numkeys.ZsetOp) {
    if (!Number.isInteger(n)) throw new KeyExtractionError('ERR value is not an integer or out of range');
    if (n < 1) throw new KeyExtractionError(`ERR at least 1 input key is needed for '${cmd.argLower(0)}' command`);
    if (n * step > left) throw new KeyExtractionError('ERR syntax error');
  } else {
    if (!Number.isInteger(n) || n < 1) throw new KeyExtractionError('ERR numkeys should be greater than 0');
    if (n * step > left) throw new KeyExtractionError("ERR Number of keys can't be greater than number of args");
  }
  for (let i = 0; i < n; i++) out.push(at + 1 + i * step);
}

/** Key finders for commands whose keys move with their arguments. */
export const MOVABLE_KEYS: Record<string, (cmd: ParsedCommand, out: number[]) => void> = {
  eval: (c, o) => numkeysAt(c, 2, o, 1, Numkeys.Script),
  evalsha: (c, o) => numkeysAt(c, 2, o, 1, Numkeys.Script),
  eval_ro: (c, o) => numkeysAt(c, 2, o, 1, Numkeys.Script),
  evalsha_ro: (c, o) => numkeysAt(c, 2, o, 1, Numkeys.Script),
  fcall: (c, o) => numkeysAt(c, 2, o, 1, Numkeys.Script),
  fcall_ro: (c, o) => numkeysAt(c, 2, o, 1, Numkeys.Script),
  zunion: (c, o) => numkeysAt(c, 1, o, 1, Numkeys.ZsetOp),
  zinter: (c, o) => numkeysAt(c, 1, o, 1, Numkeys.ZsetOp),
  zdiff: (c, o) => numkeysAt(c, 1, o, 1, Numkeys.ZsetOp),
  zintercard: (c, o) => numkeysAt(c, 1, o, 1, Numkeys.ZsetOp),
  sintercard: (c, o) => numkeysAt(c, 1, o),
  sdiffcard: (c, o) => numkeysAt(c, 1, o),
  sunioncard: (c, o) => numkeysAt(c, 1, o),
  lmpop: (c, o) => numkeysAt(c, 1, o),
  zmpop: (c, o) => numkeysAt(c, 1, o),
  blmpop: (c, o) => numkeysAt(c, 2, o),
  bzmpop: (c, o) => numkeysAt(c, 2, o),
  zunionstore: (c, o) => {
    o.push(1);
    numkeysAt(c, 2, o, 1, Numkeys.ZsetOp);
  },
  zinterstore: (c, o) => {
    o.push(1);
    numkeysAt(c, 2, o, 1, Numkeys.ZsetOp);
  },
  zdiffstore: (c, o) => {
    o.push(1);
    numkeysAt(c, 2, o, 1, Numkeys.ZsetOp);
  },
  msetex: (c, o) => numkeysAt(c, 1, o, 2),
  georadius: (c, o) => storeOption(c, 1, 6, o),
  georadiusbymember: (c, o) => storeOption(c, 1, 5, o),
  sort: (c, o) => sortKeys(c, o),
  sort_ro: (c, o) => sortKeys(c, o),
  xread: (c, o) => streamsKeys(c, o),
  xreadgroup: (c, o) => streamsKeys(c, o),
  migrate: () => {
    throw new KeyExtractionError('ERR MIGRATE is not supported through the sidecar');
  },
};

function storeOption(cmd: ParsedCommand, key: number, from: number, out: number[]): void {
  out.push(key);
  for (let i = from; i < cmd.argc - 1; i++) if (cmd.argIs(i, 'store') || cmd.argIs(i, 'storedist')) out.push(++i);
}

/**
 * SORT key [BY pattern] [GET pattern ...] [STORE dest]. BY and GET read other keys, which may
 * live on other nodes: allowed only when the pattern is `#`, a BY without `*` (no sorting by
 * other keys), or a pattern whose {tag} is in the key's slot — as Redis Cluster allows.
 */
function sortKeys(cmd: ParsedCommand, out: number[]): void {
  out.push(1);
  const keySlot = slotOfBytes(cmd.buf, cmd.argStart[1]!, cmd.argEnd[1]!);
  const readonly = cmd.argIs(0, 'sort_ro');
  for (let i = 2; i < cmd.argc - 1; i++) {
    if (cmd.argIs(i, 'store')) {
      // SORT_RO has no STORE: Redis's own answer
      if (readonly) throw new KeyExtractionError('ERR syntax error');
      out.push(++i);
    }
    else if (cmd.argIs(i, 'by') || cmd.argIs(i, 'get')) {
      const isBy = cmd.argIs(i, 'by');
      i++;
      const p = cmd.arg(i);
      if (!isBy && p.length === 1 && p[0] === 0x23) continue;
      if (isBy && p.indexOf(0x2a) === -1) continue;
      const [s, e] = hashedRange(p);
      if (s === 0 && e === p.length)
        throw new KeyExtractionError('CROSSSLOT SORT BY/GET patterns must use a {tag} in the same slot as the key');
      if (slotOfBytes(p, s, e) !== keySlot)
        throw new KeyExtractionError("CROSSSLOT Keys in request don't hash to the same slot");
    } else if (cmd.argIs(i, 'limit')) i += 2;
  }
}

function streamsKeys(cmd: ParsedCommand, out: number[]): void {
  for (let i = 1; i < cmd.argc; i++) {
    if (cmd.argIs(i, 'streams')) {
      const rest = cmd.argc - i - 1;
      if (rest === 0 || rest % 2 !== 0)
        throw new KeyExtractionError("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.");
      for (let k = 0; k < rest / 2; k++) out.push(i + 1 + k);
      return;
    }
  }
  throw new KeyExtractionError('ERR syntax error');
}

/** True for XREAD/XREADGROUP calls that carry BLOCK (they may block). */
export function hasBlockOption(cmd: ParsedCommand): boolean {
  for (let i = 1; i < cmd.argc; i++) {
    if (cmd.argIs(i, 'streams')) return false;
    if (cmd.argIs(i, 'block')) return true;
  }
  return false;
}

/**
 * Appends the key argument indexes of `cmd` to `out`. Throws KeyExtractionError when the
 * arguments do not say where the keys are.
 */
export function keyIndexes(spec: CommandSpec, cmd: ParsedCommand, out: number[]): void {
  if (spec.movable) {
    const f = MOVABLE_KEYS[spec.name];
    if (!f) throw new KeyExtractionError(`ERR ${spec.name.toUpperCase()} is not supported through the sidecar`);
    f(cmd, out);
    return;
  }
  fixedKeys(spec, cmd.argc, out);
}

/** The subcommand spec of a container command (CLIENT, OBJECT, ...), if the table knows it. */
export function subcommand(spec: CommandSpec, cmd: ParsedCommand): CommandSpec | undefined {
  if (!spec.subcommands || cmd.argc < 2) return undefined;
  return spec.subcommands.get(cmd.argLower(1));
}

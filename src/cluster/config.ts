/**
 * The configuration document stored in every data node (docs/protocol.md, "The configuration
 * document"), its validation, its version, and the slot table built from it. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import { SLOT_COUNT } from './slot';
import { ConfigError } from './errors';

export { META_PREFIX, CONFIG_KEY, VERSION_KEY, ERRORS_KEY, SIDECARS_KEY, LOG_KEY, votesKey, electionKey, demoteKey, probeSeatKey, PROBE_SEATS } from './meta-keys';

export interface NodeSpec {
  master: string;
  replicas: string[];
}
export interface Migration {
  from: string;
  to: string;
}
export interface Switching {
  node: string;
  /** address of the replica being promoted */
  to: string;
  /** address of the master being replaced */
  from: string;
  since: number;
  by: string;
  /**
   * Led on suspicions, before the votes (docs/failover.md, "Starting early"): the promotion waits
   * for a majority of votes, and a leader that takes over rolls back if the old master answers.
   */
  early?: true;
}
export interface Timing {
  checkMs: number;
  leaseMs: number;
  downAfterMs: number;
  /**
   * Written by `ringside set` while a lease is being shortened: sidecars that have not seen the
   * shorter lease may still route on the longer one, so switches and moves wait this long
   * instead, until `set` removes it (a lease later).
   */
  leaseFloorMs?: number;
}

/** How long switches and moves wait for every sidecar's lease: the lease, or a longer floor while one is being shortened. */
export const leaseToWaitMs = (t: Timing): number => Math.max(t.leaseMs, t.leaseFloorMs ?? 0);
export type FailoverMode = 'auto' | 'manual';
/**
 * When a write is acknowledged to the app (docs/failover.md, "Durability"): `async` as soon as its
 * master ran it (Redis's own behaviour; a fail-over may lose the last instant of writes), `replica`
 * once a replica also holds it (no acknowledged write lost; a shard with no replica refuses writes).
 */
export type Durability = 'async' | 'replica';

export interface ClusterConfig {
  epoch: number;
  hash: 'sha1-10';
  nodes: Record<string, NodeSpec>;
  slots: Array<[number, number, string]>;
  migrating: Record<string, Migration>;
  switching: Switching | null;
  failover: FailoverMode;
  timing: Timing;
  durability: Durability;
}

/**
 * A fail-over in about 3.7 s (bench/results/failover.md, beside Sentinel's 4.2 s at the same
 * down-after), for a version round per second and a probe every 500 ms per sidecar and master
 * (README, "What the defaults cost"). The seed's 10 000 / 15 000 / 3 000 took ~20 s.
 */
export const DEFAULT_TIMING: Timing = { checkMs: 1_000, leaseMs: 1_500, downAfterMs: 3_000 };

const ADDRESS = /^[A-Za-z0-9_.\-:[\]]+:\d{1,5}$/;
const NODE_NAME = /^[A-Za-z0-9_\-]{1,64}$/;

export function isAddress(a: unknown): a is string {
  if (typeof a !== 'string' || !ADDRESS.test(a)) return false;
  const port = Number(a.slice(a.lastIndexOf(':') + 1));
  return port > 0 && port < 65536;
}

export function splitAddress(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':');
  let host = a.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(a.slice(i + 1)) };
}

function fail(msg: string): never {
  throw new ConfigError(msg);
}

function isInt(n: unknown, min: number, max: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
}

/** Checks a decoded document and returns it typed; throws ConfigError naming the first fault. */
export function validateConfig(doc: unknown): ClusterConfig {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail('configuration is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (!isInt(d.epoch, 0, Number.MAX_SAFE_INTEGER)) fail('epoch must be a non-negative integer');
  if (d.hash !== 'sha1-10') fail(`unknown hash function ${JSON.stringify(d.hash)} (expected "sha1-10")`);
  if (d.nodes === null || typeof d.nodes !== 'object' || Array.isArray(d.nodes)) fail('nodes must be an object');
  const nodes = d.nodes as Record<string, unknown>;
  const names = Object.keys(nodes);
  if (names.length === 0) fail('nodes is empty');
  const seen = new Set<string>();
  for (const name of names) {
    if (!NODE_NAME.test(name)) fail(`bad node name ${JSON.stringify(name)}`);
    const n = nodes[name] as Record<string, unknown> | null;
    if (n === null || typeof n !== 'object') fail(`node ${name} is not an object`);
    if (!isAddress(n.master)) fail(`node ${name} has a bad master address ${JSON.stringify(n.master)}`);
    if (!Array.isArray(n.replicas) || !n.replicas.every(isAddress)) fail(`node ${name} has bad replicas`);
    for (const a of [n.master, ...(n.replicas as string[])] as string[]) {
      if (seen.has(a)) fail(`address ${a} appears twice`);
      seen.add(a);
    }
  }
  if (!Array.isArray(d.slots)) fail('slots must be an array of [first, last, node]');
  const covered = new Uint8Array(SLOT_COUNT);
  for (const r of d.slots as unknown[]) {
    if (!Array.isArray(r) || r.length !== 3) fail(`bad slot range ${JSON.stringify(r)}`);
    const [a, b, name] = r as [unknown, unknown, unknown];
    if (!isInt(a, 0, SLOT_COUNT - 1) || !isInt(b, 0, SLOT_COUNT - 1) || a > b) fail(`bad slot range ${JSON.stringify(r)}`);
    if (typeof name !== 'string' || !(name in nodes)) fail(`slot range ${a}-${b} names unknown node ${JSON.stringify(name)}`);
    for (let s = a; s <= b; s++) {
      if (covered[s]) fail(`slot ${s} is assigned twice`);
      covered[s] = 1;
    }
  }
  const missing = covered.indexOf(0);
  if (missing !== -1) fail(`slot ${missing} is not covered`);
  const migrating = (d.migrating ?? {}) as Record<string, unknown>;
  if (typeof migrating !== 'object' || Array.isArray(migrating)) fail('migrating must be an object');
  for (const [slot, m] of Object.entries(migrating)) {
    const mm = m as Record<string, unknown> | null;
    if (!isInt(Number(slot), 0, SLOT_COUNT - 1) || !/^\d+$/.test(slot)) fail(`migrating names bad slot ${slot}`);
    if (!mm || typeof mm.from !== 'string' || typeof mm.to !== 'string' || !(mm.from in nodes) || !(mm.to in nodes))
      fail(`migration of slot ${slot} names unknown nodes`);
  }
  const sw = d.switching ?? null;
  if (sw !== null) {
    const s = sw as Record<string, unknown>;
    if (typeof s !== 'object' || typeof s.node !== 'string' || !(s.node in nodes)) fail('switching names an unknown node');
    if (!isAddress(s.to) || !isAddress(s.from)) fail('switching has bad addresses');
    if (!isInt(s.since, 0, Number.MAX_SAFE_INTEGER) || typeof s.by !== 'string') fail('switching has bad since/by');
    if (s.early !== undefined && s.early !== true) fail('switching.early must be true when present');
  }
  const failover = d.failover ?? 'auto';
  if (failover !== 'auto' && failover !== 'manual') fail(`failover must be "auto" or "manual"`);
  const t = (d.timing ?? {}) as Record<string, unknown>;
  const timing: Timing = { ...DEFAULT_TIMING };
  for (const k of ['checkMs', 'leaseMs', 'downAfterMs'] as const) {
    if (t[k] !== undefined) {
      if (!isInt(t[k], 10, 3_600_000)) fail(`timing.${k} must be an integer number of milliseconds`);
      timing[k] = t[k] as number;
    }
  }
  if (timing.leaseMs <= timing.checkMs) fail('timing.leaseMs must be longer than timing.checkMs');
  if (t.leaseFloorMs !== undefined) {
    if (!isInt(t.leaseFloorMs, 10, 3_600_000)) fail('timing.leaseFloorMs must be an integer number of milliseconds');
    timing.leaseFloorMs = t.leaseFloorMs as number;
  }
  const durability = d.durability ?? 'async';
  if (durability !== 'async' && durability !== 'replica') fail('durability must be "async" or "replica"');
  return {
    epoch: d.epoch as number,
    hash: 'sha1-10',
    nodes: nodes as unknown as Record<string, NodeSpec>,
    slots: d.slots as Array<[number, number, string]>,
    migrating: migrating as unknown as Record<string, Migration>,
    switching: sw as Switching | null,
    failover,
    timing,
    durability,
  };
}

/** Parses the stored text; throws ConfigError on bad JSON or a bad document. */
export function parseConfig(text: string | Buffer): ClusterConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch (e) {
    throw new ConfigError(`configuration is not valid JSON: ${(e as Error).message}`);
  }
  return validateConfig(doc);
}

/** The bytes written to `__cluster__:config`: fixed key order, so equal documents hash equal. */
export function serializeConfig(c: ClusterConfig): string {
  const nodes: Record<string, NodeSpec> = {};
  for (const name of Object.keys(c.nodes).sort()) nodes[name] = { master: c.nodes[name]!.master, replicas: [...c.nodes[name]!.replicas] };
  const migrating: Record<string, Migration> = {};
  for (const s of Object.keys(c.migrating).sort((a, b) => Number(a) - Number(b))) migrating[s] = { from: c.migrating[s]!.from, to: c.migrating[s]!.to };
  return JSON.stringify({
    epoch: c.epoch,
    hash: c.hash,
    nodes,
    slots: compactSlots(c.slots),
    migrating,
    switching: c.switching
      ? { node: c.switching.node, to: c.switching.to, from: c.switching.from, since: c.switching.since, by: c.switching.by, ...(c.switching.early ? { early: true } : {}) }
      : null,
    failover: c.failover,
    timing: {
      checkMs: c.timing.checkMs,
      leaseMs: c.timing.leaseMs,
      downAfterMs: c.timing.downAfterMs,
      ...(c.timing.leaseFloorMs !== undefined ? { leaseFloorMs: c.timing.leaseFloorMs } : {}),
    },
    // written only when not the default, so the bytes (and versions) of existing configurations stay the same
    ...(c.durability === 'replica' ? { durability: c.durability } : {}),
  });
}

/** SHA1 (hex) of the exact stored bytes: the value of `__cluster__:version`. */
export function configVersion(text: string | Buffer): string {
  return createHash('sha1').update(text).digest('hex');
}

/** Sorted, merged slot ranges. */
export function compactSlots(ranges: Array<[number, number, string]>): Array<[number, number, string]> {
  const owner: string[] = new Array(SLOT_COUNT);
  for (const [a, b, n] of ranges) for (let s = a; s <= b; s++) owner[s] = n;
  const out: Array<[number, number, string]> = [];
  for (let s = 0; s < SLOT_COUNT; s++) {
    const n = owner[s];
    if (n === undefined) continue;
    const last = out[out.length - 1];
    if (last && last[2] === n && last[1] === s - 1) last[1] = s;
    else out.push([s, s, n]);
  }
  return out;
}

/** Evenly split slots over the named nodes, in order. */
export function evenSlots(names: string[]): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  const per = Math.floor(SLOT_COUNT / names.length);
  let rest = SLOT_COUNT % names.length;
  let s = 0;
  for (const n of names) {
    const len = per + (rest > 0 ? 1 : 0);
    if (rest > 0) rest--;
    out.push([s, s + len - 1, n]);
    s += len;
  }
  return out;
}

/** Node names a, b, c, ... z, n26, n27, ... */
export function nodeName(i: number): string {
  return i < 26 ? String.fromCharCode(97 + i) : `n${i}`;
}

export interface InitialShard {
  master: string;
  replicas: string[];
}

export function initialConfig(shards: InitialShard[], opts: { failover?: FailoverMode; timing?: Partial<Timing>; durability?: Durability } = {}): ClusterConfig {
  const names = shards.map((_, i) => nodeName(i));
  const nodes: Record<string, NodeSpec> = {};
  shards.forEach((s, i) => (nodes[names[i]!] = { master: s.master, replicas: [...s.replicas] }));
  return validateConfig({
    epoch: 1,
    hash: 'sha1-10',
    nodes,
    slots: evenSlots(names),
    migrating: {},
    switching: null,
    failover: opts.failover ?? 'auto',
    timing: { ...DEFAULT_TIMING, ...opts.timing },
    durability: opts.durability ?? 'async',
  });
}

/** Slot → node lookup in O(1): `owner[slot]` indexes `names`. */
export class SlotTable {
  readonly names: string[];
  readonly owner: Uint16Array;
  private constructor(names: string[], owner: Uint16Array) {
    this.names = names;
    this.owner = owner;
  }
  static from(c: ClusterConfig): SlotTable {
    const names = Object.keys(c.nodes).sort();
    const index = new Map(names.map((n, i) => [n, i]));
    const owner = new Uint16Array(SLOT_COUNT);
    for (const [a, b, n] of c.slots) owner.fill(index.get(n)!, a, b + 1);
    return new SlotTable(names, owner);
  }
  nodeOf(slot: number): string {
    return this.names[this.owner[slot]!]!;
  }
}

/** Which node (shard name) an address belongs to, and as what. */
export function roleOf(c: ClusterConfig, address: string): { node: string; role: 'master' | 'replica' } | null {
  for (const [name, n] of Object.entries(c.nodes)) {
    if (n.master === address) return { node: name, role: 'master' };
    if (n.replicas.includes(address)) return { node: name, role: 'replica' };
  }
  return null;
}

export function masters(c: ClusterConfig): string[] {
  return Object.keys(c.nodes)
    .sort()
    .map((n) => c.nodes[n]!.master);
}

/** Majority of n: the least count strictly more than half. */
export const majority = (n: number): number => Math.floor(n / 2) + 1;

/**
 * Compare-and-set write of a configuration on one node (KEYS: config, version; ARGV: text,
 * epoch, version). Writes only when the stored epoch is lower (or absent, or unreadable), so a
 * node never goes back. Returns 1 when written, 0 when the node already holds that epoch or a
 * higher one.
 */
export const CAS_CONFIG_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if ok and type(doc) == 'table' and tonumber(doc['epoch']) and tonumber(doc['epoch']) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3])
return 1
`;

/**
 * Repair of a broken copy (KEYS: config, version; ARGV: text, epoch, version): writes the pair when
 * the node's copy is absent or broken (its version is not the SHA1 of its text, or the text is
 * not a configuration) and claims no newer epoch than ARGV[2]; an intact copy is replaced only
 * when older, as compare-and-set does. A broken copy that claims a newer epoch (the epoch field
 * read from the text even when the JSON around it is broken) is left for a person: returns -1.
 * Returns 1 when written, 0 when the copy is intact and current.
 */
export const REPAIR_CONFIG_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
local want = tonumber(ARGV[2])
if cur then
  local intact = redis.call('GET', KEYS[2]) == redis.sha1hex(cur)
  local ok, doc = pcall(cjson.decode, cur)
  local epoch = nil
  if ok and type(doc) == 'table' then epoch = tonumber(doc['epoch']) else intact = false end
  if epoch == nil then
    local claimed = string.match(cur, '"epoch"%s*:%s*(%d+)')
    if claimed then epoch = tonumber(claimed) end
  end
  if intact and epoch and epoch >= want then return 0 end
  if epoch and epoch > want then return -1 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3])
return 1
`;

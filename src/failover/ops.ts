/**
 * Small control-plane operations shared by the switch, the agent and the CLI: bounded calls,
 * replication state, the election lock, error reports and the event log. I/O through ioredis
 * control clients (src/cluster/store.ts).
 */
import type Redis from 'ioredis';
import { ERRORS_KEY, LOG_KEY, electionKey, splitAddress } from '../cluster/config';
import { TimeoutError } from './errors';

/** Resolves with `p`, or rejects with TimeoutError after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what = 'call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not answer within ${ms} ms`)), ms);
  });
  p.catch(() => {}); // a late rejection of the loser is not unhandled
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ReplicationInfo {
  role: 'master' | 'slave';
  /** for a replica: its master's address as it knows it, and whether the link is up */
  masterAddress?: string;
  linkUp?: boolean;
  /** bytes of the replication stream processed: slave_repl_offset on a replica, master_repl_offset on a master */
  offset: number;
}

/** Parses `INFO replication`. */
export function parseReplication(text: string): ReplicationInfo {
  const f: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) f[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  if (f.role === 'slave') {
    return {
      role: 'slave',
      masterAddress: f.master_host ? `${f.master_host}:${f.master_port}` : undefined,
      linkUp: f.master_link_status === 'up',
      offset: Number(f.slave_repl_offset ?? f.master_repl_offset ?? 0),
    };
  }
  return { role: 'master', offset: Number(f.master_repl_offset ?? 0) };
}

export async function replication(client: Redis, timeoutMs = 1000): Promise<ReplicationInfo> {
  return parseReplication(await within(client.info('replication'), timeoutMs, 'INFO replication'));
}

/** REPLICAOF <address>, or REPLICAOF NO ONE when address is null. */
export async function replicaOf(client: Redis, address: string | null, timeoutMs = 2000): Promise<void> {
  if (address === null) await within(client.replicaof('NO', 'ONE'), timeoutMs, 'REPLICAOF NO ONE');
  else {
    const { host, port } = splitAddress(address);
    await within(client.replicaof(host, port), timeoutMs, `REPLICAOF ${address}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The election lock: `__cluster__:election:<node>` = token, SET NX PX on every master.

/** Refreshes the TTL only if the value is still ours. */
const REFRESH_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes only if the value is still ours. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface LockTally {
  held: string[];
  refused: string[];
  /** failed, or did not answer before the call returned (see `onQuorum`) */
  failed: string[];
}

/** What `onQuorum` found on one address: a value, an error, or no answer yet. */
export type QuorumResult<T> = { ok: true; value: T } | { ok: false; error: Error } | { ok: false; pending: true };

export interface QuorumOptions<T> {
  /** successes that make the call good enough (default: wait for every address, up to the timeout) */
  need?: number;
  /** whether a value is a success (default: any value) */
  good?: (value: T) => boolean;
  /** bound of the whole call */
  timeoutMs: number;
  /** once `need` successes are in, how long the others may still answer (default 30 ms) */
  graceMs?: number;
}

/**
 * Runs `fn` on every client at once and returns as soon as the outcome is known: every address
 * answered, or `need` of them succeeded and the others had `graceMs` more, or `need` can no
 * longer be reached, or `timeoutMs` ran out. A stopped (SIGSTOP) or dead master costs at most
 * the grace once a majority has answered, instead of a whole command timeout per step. Calls
 * still pending go on in the background (a late success still takes effect on that master).
 */
export async function onQuorum<T>(
  clients: Map<string, Redis>,
  fn: (c: Redis, address: string) => Promise<T>,
  opts: QuorumOptions<T>,
): Promise<Map<string, QuorumResult<T>>> {
  const out = new Map<string, QuorumResult<T>>([...clients.keys()].map((a) => [a, { ok: false, pending: true }]));
  const need = opts.need ?? clients.size;
  const good = opts.good ?? (() => true);
  const grace = opts.graceMs ?? 30;
  let successes = 0;
  let settled = 0;
  await new Promise<void>((resolve) => {
    let graceTimer: NodeJS.Timeout | undefined;
    const overall = setTimeout(finish, opts.timeoutMs);
    function finish(): void {
      clearTimeout(overall);
      if (graceTimer) clearTimeout(graceTimer);
      resolve();
    }
    const check = (): void => {
      const pending = clients.size - settled;
      if (pending === 0) return finish();
      if (opts.need !== undefined && successes + pending < need) return finish(); // cannot be reached any more
      if (successes >= need && !graceTimer) graceTimer = setTimeout(finish, grace);
    };
    if (clients.size === 0) return finish();
    for (const [addr, c] of clients) {
      let p: Promise<T>;
      try {
        p = fn(c, addr);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (value) => {
          out.set(addr, { ok: true, value });
          if (good(value)) successes++;
        },
        (e) => out.set(addr, { ok: false, error: e instanceof Error ? e : new Error(String(e)) }),
      ).finally(() => {
        settled++;
        check();
      });
    }
  });
  return new Map(out); // a snapshot: later answers do not change what the caller saw
}

async function onEach(
  clients: Map<string, Redis>,
  timeoutMs: number,
  fn: (c: Redis) => Promise<unknown>,
  ok: (r: unknown) => boolean,
  need?: number,
): Promise<LockTally> {
  const tally: LockTally = { held: [], refused: [], failed: [] };
  const res = await onQuorum(clients, (c) => fn(c), { timeoutMs, need, good: ok });
  for (const [addr, r] of res) (r.ok ? (ok(r.value) ? tally.held : tally.refused) : tally.failed).push(addr);
  return tally;
}

/**
 * The lock calls return once `need` masters (default: all) said yes and the others had a short
 * grace, or when the outcome is settled otherwise; a master that has not answered is `failed`.
 */
export function takeLock(clients: Map<string, Redis>, node: string, token: string, ttlMs: number, timeoutMs = 1000, need?: number): Promise<LockTally> {
  return onEach(clients, timeoutMs, (c) => c.set(electionKey(node), token, 'PX', ttlMs, 'NX'), (r) => r === 'OK', need);
}

export function refreshLock(clients: Map<string, Redis>, node: string, token: string, ttlMs: number, timeoutMs = 1000, need?: number): Promise<LockTally> {
  return onEach(clients, timeoutMs, (c) => c.eval(REFRESH_SCRIPT, 1, electionKey(node), token, String(ttlMs)), (r) => r === 1, need);
}

export function releaseLock(clients: Map<string, Redis>, node: string, token: string, timeoutMs = 1000, need?: number): Promise<LockTally> {
  return onEach(clients, timeoutMs, (c) => c.eval(RELEASE_SCRIPT, 1, electionKey(node), token), (r) => r === 1, need);
}

// ---------------------------------------------------------------------------------------------
// Error reports (`__cluster__:errors`) and the event log (`__cluster__:log`).

/** Lists are trimmed to this many entries on every push. */
export const LIST_LIMIT = 1000;

export interface ErrorReport {
  node: string;
  /** unix seconds */
  time: number;
  sidecar: string;
  raw: string;
}

/** `<node>:<unix seconds>:<sidecar id>`: the seed's `3:1272545939` followed by the reporter. */
export const formatReport = (node: string, unixSeconds: number, sidecar: string): string => `${node}:${unixSeconds}:${sidecar}`;

export function parseReport(raw: string): ErrorReport | null {
  const m = /^([^:]+):(\d+)(?::(.*))?$/s.exec(raw);
  if (!m) return null;
  return { node: m[1]!, time: Number(m[2]), sidecar: m[3] ?? '', raw };
}

export interface LogEvent {
  /** unix ms */
  time: number;
  event: string;
  [field: string]: unknown;
}

/** A log entry's time and event, tolerating entries other writers shaped differently. */
export function parseLogEntry(raw: string): { time: number; event: string; doc: Record<string, unknown> | null; raw: string } {
  try {
    const doc = JSON.parse(raw) as Record<string, unknown>;
    if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
      let time = typeof doc.time === 'number' ? doc.time : typeof doc.time === 'string' ? Date.parse(doc.time) : NaN;
      if (Number.isFinite(time) && time < 1e11) time *= 1000; // seconds
      const event = typeof doc.event === 'string' ? doc.event : typeof doc.type === 'string' ? doc.type : '?';
      return { time: Number.isFinite(time) ? time : 0, event, doc, raw };
    }
  } catch {
    /* not JSON */
  }
  return { time: 0, event: '?', doc: null, raw };
}

/** LPUSH + LTRIM on every client; resolves with the addresses that took it. */
export async function pushEverywhere(clients: Iterable<[string, Redis]>, key: string, value: string, timeoutMs = 1000): Promise<string[]> {
  const done: string[] = [];
  await Promise.all(
    [...clients].map(async ([addr, c]) => {
      try {
        const res = await within(c.multi().lpush(key, value).ltrim(key, 0, LIST_LIMIT - 1).exec(), timeoutMs, addr);
        if (res && res.every(([e]) => !e)) done.push(addr);
      } catch {
        /* unreachable: that copy misses the entry */
      }
    }),
  );
  return done;
}

export const appendLog = (clients: Iterable<[string, Redis]>, event: LogEvent, timeoutMs?: number): Promise<string[]> =>
  pushEverywhere(clients, LOG_KEY, JSON.stringify(event), timeoutMs);

/**
 * Reads a list from every client and merges it: de-duplicated by exact value, newest first by
 * `timeOf`, at most `count` entries. Returns also which addresses could not be read.
 */
export async function readMerged<T>(
  clients: Map<string, Redis>,
  key: string,
  count: number,
  parse: (raw: string) => T,
  timeOf: (e: T) => number,
  timeoutMs = 2000,
): Promise<{ entries: T[]; unreachable: string[] }> {
  const seen = new Map<string, { e: T; order: number }>();
  const unreachable: string[] = [];
  const lists = await Promise.all(
    [...clients].map(async ([addr, c]) => {
      try {
        return await within(c.lrange(key, 0, Math.max(count, LIST_LIMIT) - 1), timeoutMs, addr);
      } catch {
        unreachable.push(addr);
        return [] as string[];
      }
    }),
  );
  for (const list of lists)
    list.forEach((raw, i) => {
      const prev = seen.get(raw);
      if (!prev) seen.set(raw, { e: parse(raw), order: i });
      else prev.order = Math.min(prev.order, i);
    });
  const all = [...seen.values()].sort((a, b) => timeOf(b.e) - timeOf(a.e) || a.order - b.order).map((x) => x.e);
  return { entries: all.slice(0, count), unreachable: unreachable.sort() };
}

export const readErrors = (clients: Map<string, Redis>, count: number) =>
  readMerged(clients, ERRORS_KEY, count, (raw) => parseReport(raw) ?? { node: '?', time: 0, sidecar: '', raw }, (e) => e.time);

export const readLog = (clients: Map<string, Redis>, count: number) => readMerged(clients, LOG_KEY, count, parseLogEntry, (e) => e.time);

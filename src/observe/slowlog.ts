/**
 * The sidecar's own slow log, with Redis's rules: a command taking at least `thresholdUsec`
 * microseconds from arrival to reply is kept (negative threshold: off; 0: every command), newest
 * first, at most `maxLen` entries; entry ids keep growing across RESET; at most 32 arguments and
 * 128 bytes per argument are kept, with Redis's "... (N more ...)" markers.
 *
 * SLOWLOG GET entries carry the node the command went to as a 7th element, after Redis's six
 * (id, time, usec, args, client address, client name); clients read the first six and ignore the
 * rest, and the client name keeps its meaning.
 */
import type { SlowEntry } from './stats';
import { SlowLogSettingError } from './errors';
export { SlowLogSettingError } from './errors';

export type { SlowEntry } from './stats';

/** Redis's defaults: slowlog-log-slower-than 10000, slowlog-max-len 128. */
export const DEFAULT_SLOWLOG_THRESHOLD_USEC = 10000;
export const DEFAULT_SLOWLOG_MAX_LEN = 128;
const MAX_ARGC = 32;
const MAX_ARG_BYTES = 128;

export interface SlowClient {
  /** ip:port of the application connection */
  addr: string;
  /** CLIENT SETNAME, '' when none */
  name?: string;
}

function keepArg(a: Buffer | string): string {
  const bytes = typeof a === 'string' ? Buffer.from(a) : a;
  if (bytes.length <= MAX_ARG_BYTES) return typeof a === 'string' ? a : bytes.toString();
  return `${bytes.subarray(0, MAX_ARG_BYTES).toString()}... (${bytes.length - MAX_ARG_BYTES} more bytes)`;
}

export class SlowLog {
  #threshold: number;
  #maxLen: number;
  #nextId = 0;
  /**
   * Oldest first, as a ring: `#start` is the oldest entry's index and `#n` the number kept.
   * Adding is O(1) whatever slowlog-max-len is (a slow node makes every command an entry).
   * Until the ring is full it is a plain array (`#start` 0, length `#n`); once full, its length
   * is slowlog-max-len and the newest entry replaces the oldest. Changing max-len rebuilds it.
   */
  #ring: SlowEntry[] = [];
  #start = 0;
  #n = 0;

  constructor(thresholdUsec: number = DEFAULT_SLOWLOG_THRESHOLD_USEC, maxLen: number = DEFAULT_SLOWLOG_MAX_LEN) {
    this.#threshold = 0;
    this.#maxLen = 0;
    this.threshold = thresholdUsec;
    this.maxLen = maxLen;
  }

  /** slowlog-log-slower-than, microseconds; negative turns the log off */
  get threshold(): number {
    return this.#threshold;
  }
  set threshold(usec: number) {
    if (!Number.isInteger(usec)) throw new SlowLogSettingError(`slowlog threshold must be an integer number of microseconds, not ${usec}`);
    this.#threshold = usec;
  }

  /** slowlog-max-len; lowering it drops the oldest entries */
  get maxLen(): number {
    return this.#maxLen;
  }
  set maxLen(n: number) {
    if (!Number.isInteger(n) || n < 0) throw new SlowLogSettingError(`slowlog max length must be a non-negative integer, not ${n}`);
    // keep the newest min(n, kept) entries, oldest first, in a ring of capacity n
    const keep = this.#newestFirst(n).reverse();
    this.#maxLen = n;
    this.#ring = keep;
    this.#start = 0;
    this.#n = keep.length;
  }

  /**
   * Records the command if it took at least the threshold. Only a comparison when it did not.
   * `args` is the command with its arguments as received; `node` the data node address it went to
   * ('' when it went to none, e.g. refused or answered locally). Returns whether it was kept.
   */
  maybeAdd(usec: number, args: readonly (Buffer | string)[], client: SlowClient | string, node: string): boolean {
    if (this.#threshold < 0 || usec < this.#threshold) return false;
    if (this.#maxLen === 0) {
      this.#nextId++; // Redis numbers it, then trims it away at once
      return false;
    }
    const argc = Math.min(args.length, MAX_ARGC);
    const kept: string[] = [];
    for (let i = 0; i < argc; i++) {
      kept.push(i === MAX_ARGC - 1 && args.length > MAX_ARGC ? `... (${args.length - MAX_ARGC + 1} more arguments)` : keepArg(args[i]!));
    }
    const entry: SlowEntry = {
      id: this.#nextId++,
      time: Math.floor(Date.now() / 1000),
      usec: Math.round(usec),
      args: kept,
      client: typeof client === 'string' ? client : client.addr,
      name: typeof client === 'string' ? '' : (client.name ?? ''),
      node,
    };
    if (this.#n < this.#maxLen) {
      this.#ring.push(entry);
      this.#n++;
    } else {
      // full: the newest takes the oldest's place
      this.#ring[this.#start] = entry;
      this.#start = (this.#start + 1) % this.#maxLen;
    }
    return true;
  }

  /** Up to `count` entries, newest first. */
  #newestFirst(count: number): SlowEntry[] {
    const out: SlowEntry[] = [];
    const ring = this.#ring;
    for (let k = this.#n - 1; k >= 0 && out.length < count; k--) out.push(ring[(this.#start + k) % ring.length]!);
    return out;
  }

  /** SLOWLOG GET [count]: the newest `count` entries (default 10, negative: all), newest first. */
  get(count = 10): SlowEntry[] {
    return this.#newestFirst(count < 0 ? this.#n : count);
  }

  /** SLOWLOG LEN */
  len(): number {
    return this.#n;
  }

  /** SLOWLOG RESET (ids keep growing, as in Redis) */
  reset(): void {
    this.#ring = [];
    this.#start = 0;
    this.#n = 0;
  }
}

function bulk(parts: Buffer[], s: string): void {
  const b = Buffer.from(s);
  parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
}

/**
 * The RESP reply to SLOWLOG GET: an array of entries, each
 * [id, unix time, microseconds, [args...], client address, client name, node address].
 */
export function encodeSlowlogGet(entries: readonly SlowEntry[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${entries.length}\r\n`)];
  for (const e of entries) {
    parts.push(Buffer.from(`*7\r\n:${e.id}\r\n:${e.time}\r\n:${e.usec}\r\n*${e.args.length}\r\n`));
    for (const a of e.args) bulk(parts, a);
    bulk(parts, e.client);
    bulk(parts, e.name);
    bulk(parts, e.node);
  }
  return Buffer.concat(parts);
}

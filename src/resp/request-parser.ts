/**
 * Frames client requests without decoding them: for each complete command it reports the raw
 * byte range and the byte offsets of every argument, so the router can hash keys and forward
 * the original bytes unchanged. RESP2 multibulk requests and inline commands (telnet,
 * redis-benchmark's PING_INLINE) are both accepted, with Redis's own limits and error texts.
 *
 *   chunk ─▶ [pending chunks until `need` bytes] ─▶ scan ─▶ onCommand(cmd) per command
 *                                                        └▶ onError(message) once, then stop
 *
 * `cmd` is one reused object: its fields are valid only during the callback. The buffers it
 * points into are never reused by the parser, so views (`subarray`) may be kept.
 */

export interface ParseLimits {
  /** largest bulk argument, bytes (Redis: proto-max-bulk-len, 512 MB) */
  maxBulkLen: number;
  /** most arguments in one command (Redis: 1024*1024 for multibulk counts it will accept here) */
  maxArgs: number;
  /** longest inline command line (Redis: PROTO_INLINE_MAX_SIZE, 64 KB) */
  maxInline: number;
}

export const DEFAULT_LIMITS: ParseLimits = { maxBulkLen: 512 * 1024 * 1024, maxArgs: 1024 * 1024, maxInline: 64 * 1024 };

/** one empty buffer for every ParsedCommand that has not parsed anything yet (never written) */
const NO_BYTES = Buffer.alloc(0);
/** argIs's keywords as bytes, by keyword (a fixed set: the literals its callers pass) */
const KEYWORDS = new Map<string, Uint8Array>();

export class ParsedCommand {
  /** the buffer that holds the arguments (and, unless inline, the raw command) */
  buf: Buffer = NO_BYTES;
  /** raw RESP bytes of the command in `buf`; meaningless when `inline` */
  start = 0;
  end = 0;
  argc = 0;
  argStart: Int32Array = new Int32Array(16);
  argEnd: Int32Array = new Int32Array(16);
  inline = false;

  ensure(n: number): void {
    if (n <= this.argStart.length) return;
    let size = this.argStart.length;
    while (size < n) size *= 2;
    const s = new Int32Array(size);
    s.set(this.argStart);
    const e = new Int32Array(size);
    e.set(this.argEnd);
    this.argStart = s;
    this.argEnd = e;
  }
  arg(i: number): Buffer {
    return this.buf.subarray(this.argStart[i], this.argEnd[i]);
  }
  argString(i: number): string {
    return this.buf.toString('utf8', this.argStart[i], this.argEnd[i]);
  }
  argLength(i: number): number {
    return this.argEnd[i]! - this.argStart[i]!;
  }
  /** lower-case ASCII name of argument i (for command and subcommand names) */
  argLower(i: number): string {
    return this.buf.toString('latin1', this.argStart[i]!, this.argEnd[i]!).toLowerCase();
  }
  /** argument i as an integer, or NaN when it is not a plain decimal integer */
  argInt(i: number): number {
    return parseDecimal(this.buf, this.argStart[i]!, this.argEnd[i]!);
  }
  /**
   * true when argument i equals `lower` ignoring ASCII case. `lower` is a literal keyword
   * ('store', 'streams', ...): its bytes are made once and kept (see argIsBytes).
   */
  argIs(i: number, lower: string): boolean {
    let bytes = KEYWORDS.get(lower);
    if (bytes === undefined) KEYWORDS.set(lower, (bytes = Buffer.from(lower, 'latin1')));
    return this.argIsBytes(i, bytes);
  }
  /**
   * argIs against the lower-case keyword as bytes. On the per-command path (the command table's
   * lookup) this is the one to use: a string's length and charCodeAt cost a generic property
   * load each in optimized code there (bench/results/profile.md).
   */
  argIsBytes(i: number, lower: Uint8Array): boolean {
    const s = this.argStart[i]!;
    const len = this.argEnd[i]! - s;
    if (len !== lower.length) return false;
    for (let j = 0; j < len; j++) {
      let c = this.buf[s + j]!;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20; // A-Z only: '_' and others compare as they are
      if (c !== lower[j]) return false;
    }
    return true;
  }
  /** the command as a RESP multibulk (a view of the input when it came as one) */
  toResp(): Buffer {
    if (!this.inline) return this.buf.subarray(this.start, this.end);
    const parts: Buffer[] = [];
    for (let i = 0; i < this.argc; i++) parts.push(this.arg(i));
    return encodeCommand(parts);
  }
}

/** Parses a decimal integer from bytes; NaN when not one. */
export function parseDecimal(buf: Buffer, s: number, e: number): number {
  if (s >= e || e - s > 20) return NaN;
  let neg = false;
  let i = s;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
    if (i === e) return NaN;
  }
  let n = 0;
  for (; i < e; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return neg ? -n : n;
}

/** Encodes arguments as a RESP multibulk. */
export function encodeCommand(args: Array<Buffer | string>): Buffer {
  let len = 1 + String(args.length).length + 2;
  const bufs = args.map((a) => (typeof a === 'string' ? Buffer.from(a) : a));
  for (const b of bufs) len += 1 + String(b.length).length + 2 + b.length + 2;
  const out = Buffer.allocUnsafe(len);
  let p = out.write(`*${bufs.length}\r\n`, 0, 'latin1');
  for (const b of bufs) {
    p += out.write(`$${b.length}\r\n`, p, 'latin1');
    p += b.copy(out, p);
    out[p++] = 13;
    out[p++] = 10;
  }
  return out;
}

const CR = 13;
const LF = 10;

export class RequestParser {
  readonly #limits: ParseLimits;
  readonly #onCommand: (cmd: ParsedCommand) => void;
  readonly #onError: (message: string) => void;
  /** made on the first command: an idle connection does without it (bench --memory) */
  #cmd: ParsedCommand | null = null;
  #pending: Buffer[] = [];
  #pendingLen = 0;
  /** bytes needed before a new parse attempt can make progress */
  #need = 0;
  #failed = false;
  /** set by the consumer to stop parsing the rest of a chunk (e.g. QUIT) */
  stopped = false;

  constructor(onCommand: (cmd: ParsedCommand) => void, onError: (message: string) => void, limits: ParseLimits = DEFAULT_LIMITS) {
    this.#onCommand = onCommand;
    this.#onError = onError;
    this.#limits = limits;
  }

  /** bytes held waiting for the rest of a command */
  get buffered(): number {
    return this.#pendingLen;
  }

  feed(chunk: Buffer): void {
    if (this.#failed || this.stopped) return;
    let buf: Buffer;
    if (this.#pendingLen > 0) {
      this.#pending.push(chunk);
      this.#pendingLen += chunk.length;
      if (this.#pendingLen < this.#need) return;
      buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingLen);
      this.#pending = [];
      this.#pendingLen = 0;
    } else buf = chunk;
    this.#need = 0;
    let pos = 0;
    const end = buf.length;
    while (pos < end && !this.stopped) {
      const next = buf[pos] === 0x2a /* * */ ? this.#multibulk(buf, pos, end) : this.#inlineCmd(buf, pos, end);
      if (next === -1) {
        // incomplete: keep the rest
        this.#pending.push(pos === 0 ? buf : buf.subarray(pos));
        this.#pendingLen = end - pos;
        if (this.#need < this.#pendingLen + 1) this.#need = this.#pendingLen + 1;
        return;
      }
      if (next === -2) return; // error reported
      pos = next;
    }
  }

  #fail(message: string): number {
    this.#failed = true;
    this.#pending = [];
    this.#pendingLen = 0;
    this.#onError(message);
    return -2;
  }

  /** Reads a CRLF-terminated integer line starting after the type byte at `pos`. */
  #line(buf: Buffer, pos: number, end: number): number {
    // count lines are a few digits: look at the first bytes here, and leave longer
    // searches (bad input, a line still arriving) to indexOf
    const stop = pos + 16 < end ? pos + 16 : end;
    let cr = pos;
    while (cr < stop && buf[cr] !== CR) cr++;
    if (cr === stop) {
      if (stop === end) return -1;
      cr = buf.indexOf(CR, stop);
    }
    if (cr === -1 || cr + 1 >= end) return -1;
    return cr;
  }

  #multibulk(buf: Buffer, start: number, end: number): number {
    const cr = this.#line(buf, start + 1, end);
    if (cr === -1) {
      if (end - start > this.#limits.maxInline) return this.#fail('Protocol error: too big mbulk count string');
      return -1;
    }
    if (buf[cr + 1] !== LF) return this.#fail('Protocol error: invalid multibulk length');
    const argc = parseDecimal(buf, start + 1, cr);
    if (Number.isNaN(argc) || argc > this.#limits.maxArgs) return this.#fail('Protocol error: invalid multibulk length');
    let pos = cr + 2;
    if (argc <= 0) return pos; // empty command: ignored, as Redis does
    const cmd = (this.#cmd ??= new ParsedCommand());
    cmd.ensure(argc);
    for (let i = 0; i < argc; i++) {
      if (pos >= end) return this.#needMore(start, end, pos + 4);
      if (buf[pos] !== 0x24 /* $ */) return this.#fail(`Protocol error: expected '$', got '${String.fromCharCode(buf[pos]!)}'`);
      const lcr = this.#line(buf, pos + 1, end);
      if (lcr === -1) {
        if (end - pos > 32) return this.#fail('Protocol error: invalid bulk length');
        return this.#needMore(start, end, end + 1);
      }
      if (buf[lcr + 1] !== LF) return this.#fail('Protocol error: invalid bulk length');
      const len = parseDecimal(buf, pos + 1, lcr);
      if (Number.isNaN(len) || len < 0 || len > this.#limits.maxBulkLen) return this.#fail('Protocol error: invalid bulk length');
      const s = lcr + 2;
      const e = s + len;
      if (e + 2 > end) return this.#needMore(start, end, e + 2 + (argc - i - 1) * 4);
      if (buf[e] !== CR || buf[e + 1] !== LF) return this.#fail('Protocol error: bulk argument not followed by CRLF');
      cmd.argStart[i] = s;
      cmd.argEnd[i] = e;
      pos = e + 2;
    }
    cmd.buf = buf;
    cmd.start = start;
    cmd.end = pos;
    cmd.argc = argc;
    cmd.inline = false;
    this.#onCommand(cmd);
    return pos;
  }

  /** Records how many bytes (counted from `start`) are needed at least; returns -1. */
  #needMore(start: number, _end: number, absoluteNeed: number): number {
    this.#need = absoluteNeed - start;
    return -1;
  }

  #inlineCmd(buf: Buffer, start: number, end: number): number {
    const lf = buf.indexOf(LF, start);
    if (lf === -1) {
      if (end - start > this.#limits.maxInline) return this.#fail('Protocol error: too big inline request');
      return -1;
    }
    if (lf - start > this.#limits.maxInline) return this.#fail('Protocol error: too big inline request');
    const lineEnd = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
    const args = splitInline(buf.toString('latin1', start, lineEnd));
    if (args === null) return this.#fail('Protocol error: unbalanced quotes in request');
    if (args.length === 0) return lf + 1; // empty line: ignored
    const cmd = (this.#cmd ??= new ParsedCommand());
    cmd.ensure(args.length);
    const joined = Buffer.from(args.join(''), 'latin1');
    let p = 0;
    for (let i = 0; i < args.length; i++) {
      cmd.argStart[i] = p;
      p += args[i]!.length;
      cmd.argEnd[i] = p;
    }
    cmd.buf = joined;
    cmd.start = 0;
    cmd.end = 0;
    cmd.argc = args.length;
    cmd.inline = true;
    this.#onCommand(cmd);
    return lf + 1;
  }
}

/**
 * Splits an inline command line the way Redis's sdssplitargs does: whitespace separates
 * arguments; "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes; 'single quotes' take \'.
 * A closing quote must be followed by a space or the end. Null on unbalanced quotes. Works on
 * latin1 strings so every byte maps to one char.
 */
export function splitInline(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
  // an unquoted argument ends only at these (sdssplitargs), not at every isspace() byte
  const ends = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\0';
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    // a NUL ends the line, as in Redis (sdssplitargs works on a C string)
    if (i >= n || line[i] === '\0') return out;
    let cur = '';
    let inq = false;
    let insq = false;
    for (;;) {
      if (inq) {
        if (i >= n) return null;
        const c = line[i]!;
        if (c === '\\' && line[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          cur += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 3;
        } else if (c === '\\' && i + 1 < n) {
          i++;
          const e = line[i]!;
          cur += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e === 'b' ? '\b' : e === 'a' ? '\x07' : e;
        } else if (c === '"') {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          inq = false;
          i++;
          break;
        } else cur += c;
        i++;
      } else if (insq) {
        if (i >= n) return null;
        const c = line[i]!;
        if (c === '\\' && line[i + 1] === "'") {
          i++;
          cur += "'";
        } else if (c === "'") {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          insq = false;
          i++;
          break;
        } else cur += c;
        i++;
      } else {
        if (i >= n) break;
        const c = line[i]!;
        if (ends(c)) break;
        if (c === '"') inq = true;
        else if (c === "'") insq = true;
        else cur += c;
        i++;
      }
    }
    out.push(cur);
  }
}

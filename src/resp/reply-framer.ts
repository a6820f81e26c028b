/**
 * Finds where each RESP2 reply from a data node ends, without decoding it, so replies can be
 * forwarded to clients as the node's own bytes. Resumable across chunks: a reply split over many
 * reads is scanned once, and handed over whole (a view of the chunk when it lies in one chunk,
 * one concatenation when it spans several).
 *
 *   node socket ─▶ push(chunk) ─▶ onReply(buf, start, end, type) per complete reply
 *                              └▶ onError(message) on bytes that are not RESP2 (then stops)
 *
 * A reply is complete when every value it announced has been read: `remaining` counts values
 * still to read; an array header `*n` consumes one and adds n.
 */

/*
 * Byte values as a const enum, which the compiler writes into the code as literals. As
 * module-level `const`s, V8 (Node 20) compiled each use in the bulk loop below to a context
 * load and a check for the hole (seen with --print-opt-code).
 */
const enum Byte {
  CR = 13,
  LF = 10,
}

export type ReplyHandler = (buf: Buffer, start: number, end: number, type: number) => void;

export class ReplyFramer {
  readonly #onReply: ReplyHandler;
  readonly #onError: (message: string) => void;
  /** earlier parts of the reply in progress */
  #parts: Buffer[] = [];
  #partsLen = 0;
  /** values still to read in the reply in progress (0: between replies) */
  #remaining = 0;
  /** bulk bytes (payload + CRLF) still to skip */
  #skip = 0;
  /** type byte of the reply in progress */
  #type = 0;
  /** an unterminated header line carried over from the previous chunk */
  #line: Buffer | null = null;
  #failed = false;

  constructor(onReply: ReplyHandler, onError: (message: string) => void) {
    this.#onReply = onReply;
    this.#onError = onError;
  }

  /** true while a reply is only partly received */
  get inProgress(): boolean {
    return this.#remaining > 0 || this.#partsLen > 0;
  }

  reset(): void {
    this.#parts = [];
    this.#partsLen = 0;
    this.#remaining = 0;
    this.#skip = 0;
    this.#line = null;
    this.#failed = false;
  }

  push(chunk: Buffer): void {
    if (this.#failed) return;
    const end = chunk.length;
    let pos = 0;
    let replyStart = 0; // where the reply in progress starts in this chunk
    while (pos < end) {
      if (this.#skip === 0 && this.#line === null && chunk[pos] === 0x24) {
        // Fast path: bulk strings wholly in this chunk (GET replies, LRANGE's elements), in a
        // tight loop without a search call per line. Anything else (a null, a bulk cut by the
        // chunk's end, a malformed length) leaves it for the general path below.
        if (this.#remaining === 0) this.#startReply(0x24);
        // `remaining` lives in a local for the loop and is written back on every way out.
        let remaining = this.#remaining;
        while (pos < end && chunk[pos] === 0x24) {
          // the length's first digit, then any more (a short value's length has one)
          if (pos + 3 >= end) break;
          let n = chunk[pos + 1]! - 0x30;
          if (n < 0 || n > 9) break;
          let i = pos + 2;
          let c = chunk[i]!;
          while (c >= 0x30 && c <= 0x39 && i < pos + 16) {
            n = n * 10 + (c - 0x30);
            if (++i >= end) break;
            c = chunk[i]!;
          }
          // more than 15 digits (past exact integers), the line cut by the chunk's end, or not
          // CRLF after the digits (c is the byte that stopped them): the general path
          if (i + 1 >= end || c !== Byte.CR || chunk[i + 1] !== Byte.LF) break;
          const payloadEnd = i + 2 + n;
          if (payloadEnd + 2 > end) break;
          if (chunk[payloadEnd] !== Byte.CR || chunk[payloadEnd + 1] !== Byte.LF) {
            this.#remaining = remaining;
            return this.#fail('bulk reply not followed by CRLF');
          }
          pos = payloadEnd + 2;
          if (--remaining === 0) {
            this.#remaining = 0;
            this.#emit(chunk, replyStart, pos);
            replyStart = pos;
            break;
          }
        }
        this.#remaining = remaining;
        if (pos >= end) break;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, end - pos);
        // the payload's last two bytes must be CRLF (they may straddle chunks)
        const crAt = pos + this.#skip - 2;
        if (crAt >= pos && crAt < pos + n && chunk[crAt] !== Byte.CR) return this.#fail('bulk reply not followed by CRLF');
        if (crAt + 1 >= pos && crAt + 1 < pos + n && chunk[crAt + 1] !== Byte.LF) return this.#fail('bulk reply not followed by CRLF');
        this.#skip -= n;
        pos += n;
        if (this.#skip > 0) break;
        if (--this.#remaining === 0) {
          this.#emit(chunk, replyStart, pos);
          replyStart = pos;
        }
        continue;
      }
      // a header line: type byte, text, CRLF
      let lineBuf = chunk;
      let ls = pos;
      let le: number;
      if (this.#line !== null) {
        const lf = chunk.indexOf(Byte.LF, pos);
        if (lf === -1) {
          this.#line = Buffer.concat([this.#line, chunk.subarray(pos)]);
          if (this.#line.length > 64 * 1024) return this.#fail('reply header line too long');
          pos = end;
          break;
        }
        lineBuf = Buffer.concat([this.#line, chunk.subarray(pos, lf + 1)]);
        this.#line = null;
        ls = 0;
        le = lineBuf.length - 2;
        pos = lf + 1;
      } else {
        const lf = chunk.indexOf(Byte.LF, pos);
        if (lf === -1) {
          if (this.#remaining === 0) this.#startReply(chunk[pos]!);
          this.#line = chunk.subarray(pos);
          pos = end;
          break;
        }
        le = lf - 1;
        pos = lf + 1;
      }
      if (le < ls || lineBuf[le] !== Byte.CR) return this.#fail('reply line not terminated by CRLF');
      const type = lineBuf[ls]!;
      if (this.#remaining === 0) this.#startReply(type);
      switch (type) {
        case 0x2b: // +
        case 0x2d: // -
        case 0x3a: // :
        case 0x5f: // _ RESP3 null
        case 0x2c: // , RESP3 double
        case 0x23: // # RESP3 boolean
        case 0x28: // ( RESP3 big number
          this.#remaining--;
          break;
        case 0x24: // $
        case 0x3d: // = RESP3 verbatim string
        case 0x21: {
          // ! RESP3 blob error
          const n = decimal(lineBuf, ls + 1, le);
          if (Number.isNaN(n) || n < -1) return this.#fail('bad bulk length in reply');
          if (n === -1) this.#remaining--;
          else this.#skip = n + 2;
          break;
        }
        case 0x2a: // *
        case 0x7e: // ~ RESP3 set
        case 0x3e: {
          // > RESP3 push
          const n = decimal(lineBuf, ls + 1, le);
          if (Number.isNaN(n) || n < -1) return this.#fail('bad array length in reply');
          this.#remaining += (n > 0 ? n : 0) - 1;
          break;
        }
        case 0x25: {
          // % RESP3 map: n pairs
          const n = decimal(lineBuf, ls + 1, le);
          if (Number.isNaN(n) || n < 0) return this.#fail('bad map length in reply');
          this.#remaining += 2 * n - 1;
          break;
        }
        case 0x7c: {
          // | RESP3 attribute: n pairs, then the value it describes (so the value still counts)
          const n = decimal(lineBuf, ls + 1, le);
          if (Number.isNaN(n) || n < 0) return this.#fail('bad attribute length in reply');
          this.#remaining += 2 * n;
          break;
        }
        default:
          return this.#fail(`unexpected reply type byte 0x${type.toString(16)}`);
      }
      if (this.#remaining === 0 && this.#skip === 0) {
        this.#emit(chunk, replyStart, pos);
        replyStart = pos;
      }
    }
    if (this.#remaining > 0 || this.#line !== null) {
      // keep what this chunk holds of the reply in progress
      if (replyStart < end) {
        this.#parts.push(replyStart === 0 ? chunk : chunk.subarray(replyStart));
        this.#partsLen += end - replyStart;
      }
    }
  }

  #startReply(type: number): void {
    this.#remaining = 1;
    this.#type = type;
  }

  #emit(chunk: Buffer, start: number, end: number): void {
    if (this.#partsLen === 0) {
      this.#onReply(chunk, start, end, this.#type);
      return;
    }
    this.#parts.push(chunk.subarray(0, end));
    const whole = Buffer.concat(this.#parts, this.#partsLen + end);
    this.#parts = [];
    this.#partsLen = 0;
    this.#onReply(whole, 0, whole.length, this.#type);
  }

  #fail(message: string): void {
    this.#failed = true;
    this.#onError(message);
  }
}

function decimal(buf: Buffer, s: number, e: number): number {
  if (s >= e) return NaN;
  let neg = false;
  let i = s;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  if (i >= e) return NaN;
  let n = 0;
  for (; i < e; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return neg ? -n : n;
}

/**
 * Splits a complete array reply (or a RESP3 set, push or map, whose pairs come flattened) into
 * its elements' raw byte ranges (used to merge split and fanned-out replies). Returns null for a
 * non-array (e.g. an error) or a null array.
 */
export function arrayElements(buf: Buffer, start = 0, end = buf.length): Array<[number, number]> | null {
  const t = buf[start];
  // arrays, and RESP3 sets, pushes and maps (a map's pairs flattened)
  if (t !== 0x2a && t !== 0x7e && t !== 0x3e && t !== 0x25) return null;
  const out: Array<[number, number]> = [];
  const f = new ReplyFramer(
    (_b, s, e) => out.push([s + start + headerLen, e + start + headerLen]),
    () => {
      throw new Error('bad array reply');
    },
  );
  const cr = buf.indexOf(Byte.CR, start);
  const count = decimal(buf, start + 1, cr);
  if (count < 0) return null;
  const n = t === 0x25 ? 2 * count : count;
  const headerLen = cr + 2 - start;
  f.push(buf.subarray(start + headerLen, end));
  if (out.length !== n) throw new Error('incomplete array reply');
  return out;
}

/**
 * Bytes waiting to be written to one socket, kept as (buffer, start, end) ranges of buffers we
 * already hold (client input, node replies). Adjacent ranges of the same buffer merge, so a run
 * of pipelined commands that came in together and go to the same node is written as the one
 * range it was read as. `take()` returns the bytes as one Uint8Array: the buffer itself when
 * one range covers it, a view of it when one range is longer than SHORT, else one allocation and
 * a copy of each range. The range arrays keep their capacity between takes
 * (counted by `#n`): resetting an array's length is a slow path in V8 and this runs per write.
 */
// A view of one range is a plain Uint8Array made with the intrinsic constructor, not
// `buf.subarray`: on a Buffer, subarray looks up the species constructor (FastBuffer) through
// generic property loads and constructs through the generic stub, ~970 instructions a request at
// -P 1 by callgrind. Sockets take any Uint8Array. `Buffer` is a getter on the global object, so
// allocUnsafe is looked up once, here.
const allocUnsafe = Buffer.allocUnsafe;
/** Ranges up to this many bytes are copied with a loop, longer ones with copy() or as a view. */
const SHORT = 32;

export class OutList {
  #bufs: (Buffer | null)[] = [];
  #starts: number[] = [];
  #ends: number[] = [];
  #n = 0;
  #bytes = 0;

  get bytes(): number {
    return this.#bytes;
  }
  get empty(): boolean {
    return this.#bytes === 0;
  }

  add(buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    const n = this.#n - 1;
    if (n >= 0 && this.#bufs[n] === buf && this.#ends[n] === start) this.#ends[n] = end;
    else {
      const i = this.#n++;
      if (i < this.#bufs.length) {
        this.#bufs[i] = buf;
        this.#starts[i] = start;
        this.#ends[i] = end;
      } else {
        this.#bufs.push(buf);
        this.#starts.push(start);
        this.#ends.push(end);
      }
    }
    this.#bytes += end - start;
  }

  addBuffer(buf: Buffer): void {
    this.add(buf, 0, buf.length);
  }

  take(): Uint8Array {
    const n = this.#n;
    if (n === 1) {
      const b = this.#bufs[0]!;
      const s = this.#starts[0]!;
      const e = this.#ends[0]!;
      if (s === 0 && e === b.length) {
        this.clear();
        return b;
      }
      // a view costs about as much as copying 50-100 bytes (`b.buffer` is a call into C++):
      // short ranges are copied below
      if (e - s > SHORT) {
        this.clear();
        return new Uint8Array(b.buffer, b.byteOffset + s, e - s);
      }
    }
    const out = allocUnsafe(this.#bytes);
    let p = 0;
    const bufs = this.#bufs;
    const starts = this.#starts;
    const ends = this.#ends;
    for (let i = 0; i < n; i++) {
      const b = bufs[i]!;
      const s = starts[i]!;
      const e = ends[i]!;
      // replies of a few bytes (+OK, :1, a short bulk) are most ranges: copy() costs about 65 ns
      // whatever the length, a loop about 1.5 ns a byte (5 bytes: 10 ns against 70)
      if (e - s <= SHORT) for (let j = s; j < e; j++) out[p++] = b[j]!;
      else p += b.copy(out, p, s, e);
    }
    this.clear();
    return out;
  }

  clear(): void {
    // drop the references, so written buffers can be collected; keep the arrays' capacity
    for (let i = 0; i < this.#n; i++) this.#bufs[i] = null;
    this.#n = 0;
    this.#bytes = 0;
  }
}

/**
 * Bytes waiting to be written to one socket, kept as (buffer, start, end) ranges of buffers we
 * already hold (client input, node replies). Adjacent ranges of the same buffer merge, so a run
 * of pipelined commands that came in together and go to the same node is written as the one
 * range it was read as. `take()` returns one Buffer: a view when there is one range, else one
 * allocation and a copy of each range. The range arrays keep their capacity between takes
 * (counted by `#n`): resetting an array's length is a slow path in V8 and this runs per write.
 */
// Called, not looked up on each buffer: `buf.subarray` here compiled to a generic inline-cache
// call (Builtins_LoadIC) in take's optimized code, ~380 instructions a request at -P 1 by
// callgrind; through the constant, none.
const subarray = Uint8Array.prototype.subarray;
const allocUnsafe = Buffer.allocUnsafe;

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

  take(): Buffer {
    const n = this.#n;
    let out: Buffer;
    if (n === 1) out = subarray.call(this.#bufs[0]!, this.#starts[0], this.#ends[0]) as Buffer;
    else {
      out = allocUnsafe(this.#bytes);
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
        if (e - s <= 32) for (let j = s; j < e; j++) out[p++] = b[j]!;
        else p += b.copy(out, p, s, e);
      }
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

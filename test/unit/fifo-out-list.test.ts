/**
 * The two queues on the hot path: Fifo (a ring buffer) against a plain array as the model, over
 * random pushes and shifts that wrap around and grow while wrapped; OutList's ranges merge and
 * its output is the bytes added, in order, however often it is reused.
 */
import t from 'tap';
import { Fifo } from '../../src/proxy/fifo';
import { OutList } from '../../src/proxy/out-list';

/** The bytes of a take() as a latin1 string (take returns a Uint8Array, a Buffer or a view). */
const text = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.length).toString('latin1');

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 4294967296;
  };
}

t.test('a Fifo gives back what was pushed, in order, through wrap-around and growth', async (t) => {
  const r = rng(7);
  for (let run = 0; run < 20; run++) {
    const f = new Fifo<number>(run % 3 === 0 ? 1 : 8);
    const model: number[] = [];
    let next = 0;
    let mismatches = 0;
    for (let step = 0; step < 5000; step++) {
      // bursts of pushes (growth while the head is mid-ring), then bursts of shifts
      if (r() < (step % 400 < 200 ? 0.7 : 0.3)) {
        f.push(next);
        model.push(next++);
      } else if (f.shift() !== model.shift()) mismatches++;
      if (f.length !== model.length || f.peek() !== model[0]) mismatches++;
    }
    if (![...f].every((x, i) => x === model[i])) mismatches++;
    const rest = f.drain();
    if (rest.length !== model.length || !rest.every((x, i) => x === model[i])) mismatches++;
    if (f.length !== 0 || f.shift() !== undefined || f.peek() !== undefined) mismatches++;
    f.push(1);
    if (f.shift() !== 1) mismatches++;
    t.equal(mismatches, 0, `run ${run}: matches the array model`);
  }
});

t.test('an OutList writes the ranges it was given, in order, and merges adjacent ones', async (t) => {
  const a = Buffer.from('0123456789');
  const b = Buffer.from('abcdefghij');
  const o = new OutList();
  o.add(a, 0, 3);
  o.add(a, 3, 10); // adjacent: merged into one range, the whole buffer
  t.equal(o.bytes, 10);
  t.equal(o.take(), a, 'merged into one range that is the whole buffer: handed over as it is');
  t.ok(o.empty);
  const r = rng(3);
  for (let round = 0; round < 50; round++) {
    let want = '';
    const n = 1 + Math.floor(r() * 12);
    for (let i = 0; i < n; i++) {
      const src = r() < 0.5 ? a : b;
      const s = Math.floor(r() * 10);
      const e = s + Math.floor(r() * (11 - s));
      o.add(src, s, e);
      want += src.toString('latin1', s, e);
    }
    t.equal(text(o.take()), want, `round ${round}: the bytes, in order`);
    t.ok(o.empty);
  }
  o.add(a, 0, 10);
  o.clear();
  t.ok(o.empty, 'clear drops what was queued');
  t.equal(o.take().length, 0);
});

t.test('an OutList copies short and long ranges alike (a byte loop up to 32 bytes, copy() above)', async (t) => {
  const a = Buffer.from(Array.from({ length: 200 }, (_, i) => String.fromCharCode(33 + (i % 90))).join(''), 'latin1');
  const b = Buffer.from(a.toString('latin1').split('').reverse().join(''), 'latin1');
  const o = new OutList();
  const r = rng(11);
  let bad = 0;
  for (let round = 0; round < 200; round++) {
    let want = '';
    const n = 2 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) {
      const src = i % 2 === 0 ? a : b; // alternating sources: never merged, always copied
      const len = [0, 1, 31, 32, 33, 64, 150][Math.floor(r() * 7)]!;
      const s = Math.floor(r() * (200 - len));
      o.add(src, s, s + len);
      want += src.toString('latin1', s, s + len);
    }
    if (text(o.take()) !== want) bad++;
  }
  t.equal(bad, 0, 'every take is the ranges in order, whatever their lengths');
});

t.test('an OutList hands one range over without copying it, unless it is short', async (t) => {
  const long = Buffer.from('x'.repeat(40) + '0123456789'.repeat(10) + 'y'.repeat(40), 'latin1');
  const o = new OutList();
  o.add(long, 0, long.length);
  t.equal(o.take(), long, 'a whole buffer is written as it is');
  o.add(long, 40, 140);
  const v = o.take();
  t.equal(text(v), '0123456789'.repeat(10));
  t.equal(v.buffer, long.buffer, 'a long part of one is a view of the same memory');
  t.equal(v.byteOffset, long.byteOffset + 40);
  o.add(long, 40, 72);
  const c = o.take();
  t.equal(text(c), long.toString('latin1', 40, 72));
  t.not(c.buffer === long.buffer && c.byteOffset === long.byteOffset + 40, true, 'a short part (32 bytes) is copied');
  long[40] = 0x21;
  t.equal(c[0], 0x30, 'the copy does not change with the source');
  t.ok(o.empty);
});

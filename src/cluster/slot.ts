/**
 * The slot function of the cluster protocol (docs/protocol.md, "Slots").
 *
 * A key's slot is the first 10 bits of the SHA1 digest of the key, read big-endian:
 * `((d[0] << 8) | d[1]) >> 6`. When the key holds a tag, a `{` followed later by a `}` with at
 * least one byte between, only the bytes between the first `{` and the first `}` after it are
 * hashed. Pure and byte-oriented: the hot path passes a view of the client's input buffer and no
 * string is built.
 */
import { hash } from 'node:crypto';

export const SLOT_BITS = 10;
export const SLOT_COUNT = 1 << SLOT_BITS; // 1024

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }

/** The bytes of `key[start, end)` that are hashed: the tag's, when there is one. */
export function hashedRange(key: Buffer, start = 0, end = key.length): [number, number] {
  const open = key.indexOf(OPEN, start);
  if (open === -1 || open >= end) return [start, end];
  const close = key.indexOf(CLOSE, open + 1);
  if (close === -1 || close >= end || close === open + 1) return [start, end];
  return [open + 1, close];
}

/** Slot of the key held in `key[start, end)`. */
export function slotOfBytes(key: Buffer, start = 0, end = key.length): number {
  let s = start;
  let e = end;
  const open = key.indexOf(OPEN, start);
  if (open !== -1 && open < end) {
    const close = key.indexOf(CLOSE, open + 1);
    if (close !== -1 && close < end && close > open + 1) {
      s = open + 1;
      e = close;
    }
  }
  return e - s <= MAX_INLINE_KEY ? sha1Top16(key, s, e) >> (16 - SLOT_BITS) : slotViaCrypto(key, s, e);
}

function slotViaCrypto(key: Buffer, s: number, e: number): number {
  const d = hash('sha1', key.subarray(s, e), 'buffer') as unknown as Buffer;
  return ((d[0]! << 8) | d[1]!) >> (16 - SLOT_BITS);
}

/*
 * SHA1 of a short key, first 16 bits only. node:crypto computes the same digest (and does for
 * keys over MAX_INLINE_KEY bytes, and in the tests, which check the two agree on generated keys),
 * but for the few bytes of a typical key its per-call cost (~750 ns here) is nearly three times
 * this loop's (~270 ns), and a slot is computed for every routed command.
 */
const MAX_INLINE_KEY = 183; // message + padding fits the 256-byte scratch block
const W = new Int32Array(80);
const BLOCK = new Uint8Array(256);

function sha1Top16(buf: Buffer, s: number, e: number): number {
  const len = e - s;
  const total = (((len + 8) >> 6) + 1) * 64;
  const m = BLOCK;
  m.fill(0, 0, total);
  for (let i = 0; i < len; i++) m[i] = buf[s + i]!;
  m[len] = 0x80;
  const bits = len * 8;
  m[total - 2] = (bits >>> 8) & 255;
  m[total - 1] = bits & 255;
  let h0 = 0x67452301;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0 | 0;
  for (let b = 0; b < total; b += 64) {
    for (let i = 0; i < 16; i++) W[i] = (m[b + 4 * i]! << 24) | (m[b + 4 * i + 1]! << 16) | (m[b + 4 * i + 2]! << 8) | m[b + 4 * i + 3]!;
    for (let i = 16; i < 80; i++) {
      const x = W[i - 3]! ^ W[i - 8]! ^ W[i - 14]! ^ W[i - 16]!;
      W[i] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let bb = h1;
    let c = h2;
    let d = h3;
    let ee = h4;
    let t: number;
    for (let i = 0; i < 20; i++) {
      t = (((a << 5) | (a >>> 27)) + ((bb & c) | (~bb & d)) + ee + 0x5a827999 + W[i]!) | 0;
      ee = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = t;
    }
    for (let i = 20; i < 40; i++) {
      t = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + ee + 0x6ed9eba1 + W[i]!) | 0;
      ee = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = t;
    }
    for (let i = 40; i < 60; i++) {
      t = (((a << 5) | (a >>> 27)) + ((bb & c) | (bb & d) | (c & d)) + ee - 0x70e44324 + W[i]!) | 0;
      ee = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = t;
    }
    for (let i = 60; i < 80; i++) {
      t = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + ee - 0x359d3e2a + W[i]!) | 0;
      ee = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = t;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + bb) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + ee) | 0;
  }
  return h0 >>> 16;
}

/** Slot of a key given as a string (UTF-8) or bytes. */
export function slotOf(key: string | Buffer): number {
  const b = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return slotOfBytes(b, 0, b.length);
}

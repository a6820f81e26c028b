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
import { H, W, compress } from './sha1-compress';

export const SLOT_BITS = 10;
export const SLOT_COUNT = 1 << SLOT_BITS; // 1024

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }

/*
 * The tag rule, in one place: the first `{` in the key, then the first `}` after it, with at
 * least one byte between. Plain loops, as keys are short and a native indexOf costs a call each.
 */

/** The first `}` after `open` in `key[open + 1, end)`, or `end`. */
function closeAfter(key: Buffer, open: number, end: number): number {
  let close = open + 1;
  while (close < end && key[close] !== CLOSE) close++;
  return close;
}

/** The index of the tag's `{` in `key[start, end)`, or -1 when the key has no tag. */
function tagOpen(key: Buffer, start: number, end: number): number {
  let open = start;
  while (open < end && key[open] !== OPEN) open++;
  if (open === end) return -1;
  const close = closeAfter(key, open, end);
  return close < end && close > open + 1 ? open : -1;
}

/** The bytes of `key[start, end)` that are hashed: the tag's, when there is one. */
export function hashedRange(key: Buffer, start = 0, end = key.length): [number, number] {
  const open = tagOpen(key, start, end);
  return open === -1 ? [start, end] : [open + 1, closeAfter(key, open, end)];
}

/** Slot of the key held in `key[start, end)`. */
export function slotOfBytes(key: Buffer, start = 0, end = key.length): number {
  let s = start;
  let e = end;
  const open = tagOpen(key, start, end);
  if (open !== -1) {
    s = open + 1;
    e = closeAfter(key, open, end);
  }
  return e - s <= MAX_INLINE_KEY ? sha1Top16(key, s, e) >> (16 - SLOT_BITS) : slotViaCrypto(key, s, e);
}

function slotViaCrypto(key: Buffer, s: number, e: number): number {
  const d = hash('sha1', key.subarray(s, e), 'buffer') as unknown as Buffer;
  return ((d[0]! << 8) | d[1]!) >> (16 - SLOT_BITS);
}

/*
 * SHA1 of a short key, first 16 bits only. node:crypto computes the same digest (and does for
 * keys over MAX_INLINE_KEY bytes, and in the tests, which check the two agree on generated keys
 * of every length), but for the few bytes of a typical key its per-call cost (~750 ns here) is
 * several times this (~165 ns with the unrolled compression of ./sha1-compress, ~270 ns with
 * the looped one it replaced), and a slot is computed for every routed command. Building the
 * block's words from the key directly, instead of copying the key into a byte block that the
 * compression then reads back a byte at a time, took the key's slot from ~3 100 to ~2 400
 * instructions a request by callgrind (GET -P 16, 16-byte keys).
 */
const MAX_INLINE_KEY = 183; // a few blocks at most; above that, node:crypto is the faster

/**
 * The padded message (the key, 0x80, zeros, the length in bits in the last 8 bytes) is built a
 * word at a time straight into the block W: whole words of key bytes, the word holding the
 * key's last 0-3 bytes and the 0x80, then zeros and the length. The padding always leaves the
 * 0x80 out of the last 8 bytes, and the length (at most 183 × 8 bits) fits its last word.
 */
function sha1Top16(buf: Buffer, s: number, e: number): number {
  const len = e - s;
  const words = (((len + 8) >> 6) + 1) * 16;
  const full = len >> 2; // words made only of key bytes
  H[0] = 0x67452301;
  H[1] = 0xefcdab89 | 0;
  H[2] = 0x98badcfe | 0;
  H[3] = 0x10325476;
  H[4] = 0xc3d2e1f0 | 0;
  let o = s;
  if (words === 16) {
    // one block (keys up to 55 bytes, nearly all): the words in order, no per-word tests
    let q = 0;
    for (; q < full; q++, o += 4) W[q] = keyWord(buf, o);
    W[q] = tailWord(buf, o, len & 3);
    for (q++; q < 15; q++) W[q] = 0;
    W[15] = len * 8;
    compress();
    return H[0]! >>> 16;
  }
  for (let q = 0; q < words; q++) {
    let w = 0;
    if (q < full) {
      w = keyWord(buf, o);
      o += 4;
    } else if (q === full) w = tailWord(buf, o, len & 3);
    else if (q === words - 1) w = len * 8;
    W[q & 15] = w;
    if ((q & 15) === 15) compress();
  }
  return H[0]! >>> 16;
}

/** The big-endian word of the four key bytes at `o`. */
function keyWord(buf: Buffer, o: number): number {
  return (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
}

/** The word of the key's last `r` (0-3) bytes, at `o`, followed by the padding's 0x80. */
function tailWord(buf: Buffer, o: number, r: number): number {
  if (r === 0) return 0x80000000 | 0;
  if (r === 1) return (buf[o]! << 24) | 0x800000;
  if (r === 2) return (buf[o]! << 24) | (buf[o + 1]! << 16) | 0x8000;
  return (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | 0x80;
}

/** Slot of a key given as a string (UTF-8) or bytes. */
export function slotOf(key: string | Buffer): number {
  const b = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return slotOfBytes(b, 0, b.length);
}

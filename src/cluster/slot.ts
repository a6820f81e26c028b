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
  const [s, e] = hashedRange(key, start, end);
  const d = hash('sha1', key.subarray(s, e), 'buffer') as unknown as Buffer;
  return ((d[0]! << 8) | d[1]!) >> (16 - SLOT_BITS);
}

/** Slot of a key given as a string (UTF-8) or bytes. */
export function slotOf(key: string | Buffer): number {
  const b = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return slotOfBytes(b, 0, b.length);
}

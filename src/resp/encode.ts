/** RESP2 reply encoding for what the sidecar answers itself. */

export const OK = Buffer.from('+OK\r\n');
export const PONG = Buffer.from('+PONG\r\n');
export const NULL_BULK = Buffer.from('$-1\r\n');
/** RESP3 null */
export const NULL3 = Buffer.from('_\r\n');
export const QUEUED = Buffer.from('+QUEUED\r\n');

export function simple(s: string): Buffer {
  return Buffer.from(`+${s}\r\n`);
}

/** An error reply. `message` starts with its code (ERR, CROSSSLOT, ...); CR/LF are replaced. */
export function error(message: string): Buffer {
  return Buffer.from(`-${message.replace(/[\r\n]+/g, ' ')}\r\n`);
}

export function integer(n: number | bigint): Buffer {
  return Buffer.from(`:${n}\r\n`);
}

export function bulk(v: string | Buffer | null): Buffer {
  if (v === null) return NULL_BULK;
  const b = typeof v === 'string' ? Buffer.from(v) : v;
  const head = Buffer.from(`$${b.length}\r\n`);
  return Buffer.concat([head, b, CRLF]);
}

const CRLF = Buffer.from('\r\n');

/** An array of already-encoded replies. */
export function array(items: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from(`*${items.length}\r\n`), ...items]);
}

/** A RESP3 map of already-encoded keys and values, flattened [k, v, k, v, ...]. */
export function map(flat: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from(`%${flat.length / 2}\r\n`), ...flat]);
}

/** Encodes a JS value: string → bulk, number → integer, null → null bulk, array → array. */
export function value(v: unknown): Buffer {
  if (v === null || v === undefined) return NULL_BULK;
  if (typeof v === 'number' || typeof v === 'bigint') return integer(v);
  if (typeof v === 'string' || Buffer.isBuffer(v)) return bulk(v);
  if (Array.isArray(v)) return array(v.map(value));
  return bulk(String(v));
}

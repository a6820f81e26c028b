/**
 * The names of the keys the cluster keeps in every node (docs/protocol.md, "Keys the cluster
 * keeps in every node"): one leaf module, imported by the control plane, the admin CLI and the
 * data path alike. Everything under `__cluster__:` is metadata; applications never see it.
 */
export const META_PREFIX = '__cluster__:';
/** the prefix as bytes, for the data path's checks on the client's own buffer */
const META = Buffer.from(META_PREFIX);

export const CONFIG_KEY = '__cluster__:config';
export const VERSION_KEY = '__cluster__:version';
export const ERRORS_KEY = '__cluster__:errors';
export const SIDECARS_KEY = '__cluster__:sidecars';
/** hash of sidecar id → JSON `{"id","addr","version","epoch","time"}`, next to SIDECARS_KEY */
export const SIDECARS_INFO_KEY = '__cluster__:sidecars:info';
export const LOG_KEY = '__cluster__:log';
/** the write a WAIT waits on (docs/protocol.md, "Blocking commands") */
export const WAIT_FENCE_KEY = '__cluster__:wait-fence';
export const votesKey = (node: string): string => `__cluster__:votes:${node}`;
export const electionKey = (node: string): string => `__cluster__:election:${node}`;
/**
 * Seat `i` of the node's probers (docs/protocol.md, "Probers"): the id of the sidecar that probes
 * the node's master and votes on it, with a TTL its holder renews; on every master.
 */
export const probeSeatKey = (node: string, i: number): string => `__cluster__:probe:${node}:${i}`;
/** how many sidecars probe each master (seats per node) */
export const PROBE_SEATS = 5;
/** taken (SET NX PX, on the node's master) by the one sidecar that demotes a returning old master */
export const demoteKey = (node: string): string => `__cluster__:demote:${node}`;

/** Whether bytes [s, e) of `buf` are a metadata key name (no string is made). */
export function isMetaKey(buf: Buffer, s: number, e: number): boolean {
  return e - s >= META.length && buf[s] === 0x5f && buf.compare(META, 0, META.length, s, s + META.length) === 0;
}

/** Whether a key name (a string or bytes) is a metadata key. */
export function isMetaKeyName(key: string | Buffer): boolean {
  return typeof key === 'string' ? key.startsWith(META_PREFIX) : isMetaKey(key, 0, key.length);
}

/** Whether a script body or function library names the metadata's prefix anywhere. */
export function namesMeta(text: Buffer): boolean {
  return text.includes('__cluster__');
}

/** Every metadata key a node may hold for a configuration with these node names. */
export function metaKeysFor(nodeNames: readonly string[]): string[] {
  const keys = [CONFIG_KEY, VERSION_KEY, ERRORS_KEY, SIDECARS_KEY, SIDECARS_INFO_KEY, LOG_KEY, WAIT_FENCE_KEY];
  for (const n of nodeNames) {
    keys.push(votesKey(n), electionKey(n), demoteKey(n));
    for (let i = 0; i < PROBE_SEATS; i++) keys.push(probeSeatKey(n, i));
  }
  return keys;
}

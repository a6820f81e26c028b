/**
 * Every reply text the sidecar makes itself, and the functions that merge several nodes' replies
 * into one (after Envoy's `Response::get()`): one place to read what a client can be told, and
 * to keep the texts Redis's own where the sidecar answers for a node. The texts are without
 * RESP framing; `enc.error(text)` frames one.
 */
import * as enc from '../resp/encode';

const upper = (name: string): string => name.toUpperCase();

// ---------------------------------------------------------------- Redis's own texts

export const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";

/** A key's name fit for an error line: at most 64 bytes, control bytes shown as `?`. */
function keyForError(name: string): string {
  const short = name.length > 64 ? `${name.slice(0, 64)}...` : name;
  return short.replace(/[\x00-\x1f\x7f]/g, '?');
}

/**
 * CROSSSLOT, naming each key's slot (the first few keys), so that an operator sees which keys
 * must meet and can give them one `{tag}`. Redis's text first: clients match on it. Built only
 * when refusing.
 */
export function crossSlot(keys: ReadonlyArray<readonly [string, number]>): string {
  const named = keys.slice(0, 4).map(([k, slot]) => `${keyForError(k)} in slot ${slot}`);
  if (keys.length > 4) named.push(`${keys.length - 4} more`);
  return `${CROSSSLOT} (${named.join(', ')}); keys that must meet need one {tag}`;
}
export const SYNTAX = 'ERR syntax error';
export const INVALID_CURSOR = 'ERR invalid cursor';
export const NOT_INTEGER = 'ERR value is not an integer or out of range';
export const EXEC_WITHOUT_MULTI = 'ERR EXEC without MULTI';
export const DISCARD_WITHOUT_MULTI = 'ERR DISCARD without MULTI';
export const MULTI_NESTED = 'ERR MULTI calls can not be nested';
export const WATCH_IN_MULTI = 'ERR WATCH inside MULTI is not allowed';
export const EXECABORT_PREVIOUS = 'EXECABORT Transaction discarded because of previous errors.';
export const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';
export const BAD_CLIENT_NAME = 'ERR Client names cannot contain spaces, newlines or special characters.';

export const DB_OUT_OF_RANGE = 'ERR DB index is out of range (a ringside cluster has only database 0)';
export const NOAUTH = 'NOAUTH Authentication required.';
export const HELLO_NOAUTH = 'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time';
export const AUTH_NO_PASSWORD = 'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?';
export const PROTO_NOT_INTEGER = 'ERR Protocol version is not an integer or out of range';
export const NOPROTO = 'NOPROTO unsupported protocol version';
export const TIMEOUT_NOT_INTEGER = 'ERR timeout is not an integer or out of range';
export const NO_SUCH_CLIENT = 'ERR No such client';
export const OUT_OF_RANGE_POSITIVE = 'ERR value is out of range, must be positive';
export const helloSyntax = (option: string): string => `ERR Syntax error in HELLO option '${option}'`;
export const notInSubscribeContext = (name: string): string =>
  `ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`;
export const wrongArity = (name: string): string => `ERR wrong number of arguments for '${name}' command`;
export const unknownSubcommand = (cmd: string, sub: string): string => `ERR unknown subcommand '${sub}'. Try ${upper(cmd)} HELP.`;
export function unknownCommand(name: string, args: string[]): string {
  return `ERR unknown command '${name.slice(0, 128)}', with args beginning with: ${args.map((a) => `'${a.slice(0, 128)}' `).join('')}`;
}

// ---------------------------------------------------------------- the sidecar's refusals

export const META_REFUSED = "ERR ringside: keys under __cluster__: are the cluster's metadata and cannot be read or written by applications";
export const META_IN_SCRIPT = "ERR ringside: scripts may not name keys under __cluster__: (the cluster's metadata)";
export const CROSSSLOT_TX = "CROSSSLOT Keys in request don't hash to the same slot as the transaction's other keys";
export const CROSSSLOT_WATCH = 'CROSSSLOT ringside: WATCH keys must hash to the slot of the keys already watched';

export const notSupported = (what: string): string => `ERR ringside: ${upper(what)} is not supported through the sidecar`;
export const refusedByTable = (name: string, reason: string): string => `ERR ringside: ${upper(name)} ${reason}`;
export const mergeFailed = (why: string): string => `ERR ringside: could not merge replies: ${why}`;
export const configSetRefused = (param: string): string =>
  `ERR ringside: CONFIG SET ${param} is refused through the sidecar: it sets where a node keeps its files, its replication, network or security, which the cluster depends on; set it on the nodes directly`;
export const noKey = (name: string): string => `ERR ringside: ${upper(name)} has no key to route by`;
export const notInTransaction = (name: string): string => `ERR ringside: ${upper(name)} cannot be part of a transaction through the sidecar`;
export const redirectedTooOften = (name: string, n: number): string =>
  `ERR ringside: ${upper(name)} was redirected more than ${n} times; the cluster configuration is changing, retry`;

// the configuration and its lease
export const NO_CONFIG = 'CLUSTERDOWN ringside: no cluster configuration loaded yet (no seed reachable?)';
export const NOT_CONFIRMED = 'CLUSTERDOWN ringside: configuration not yet confirmed by a majority of masters; not routing until it is';
export const leaseLapsed = (agoMs: number, leaseMs: number): string =>
  `CLUSTERDOWN ringside: configuration not confirmed by a majority of masters for ${agoMs} ms (lease ${leaseMs} ms); not routing until it is`;

// a node's master being switched, a slot being moved
export const switching = (node: string): string => `TRYAGAIN ringside: node ${node} is switching to a new master; retry shortly`;
/** why a command for a migrating slot waits: `what` says which commands ('' = this one) */
export const migrating = (slot: number, what = ''): string =>
  what === '' ? `TRYAGAIN ringside: slot ${slot} is migrating; retry shortly` : `TRYAGAIN ringside: slot ${slot} is migrating; ${what} wait until it has moved`;
export const migratingUnchecked = (slot: number, name: string): string =>
  `TRYAGAIN ringside: slot ${slot} is migrating and ${upper(name)} cannot be checked on its old node; retry shortly`;
export const MIGRATING_SPLIT = 'TRYAGAIN ringside: the keys of a migrating slot are split between its old and new node; retry';

// a node connection's failures (NodeError messages)
export const nodeMalformed = (node: string, msg: string): string => `ERR ringside: ${node} sent a malformed reply (${msg})`;
export const nodeConnectTimeout = (node: string, ms: number): string => `ERR ringside: ${node} did not accept a connection within ${ms} ms`;
export const noReplicas = (node: string, replicas: number, ms: number, got: string): string =>
  `NOREPLICAS ringside: the write ran on ${node}, but ${replicas === 1 ? 'no replica' : `fewer than ${replicas} replicas`} confirmed it within ${ms} ms (${got}; durability "replica"); it may or may not be kept`;
export const nodeTimeout = (node: string, ms: number): string => `ERR ringside: ${node} did not answer within ${ms} ms; the command may or may not have run`;
export const nodeTlsFailed = (node: string, why: string): string => `ERR ringside: TLS to ${node} failed (${why})`;
export const nodeUnreachable = (node: string, why: string): string => `ERR ringside: ${node} is unreachable (${why})`;
export const nodeLost = (node: string, why: string): string =>
  `ERR ringside: connection to ${node} lost${why ? ` (${why})` : ''}; the command may or may not have run`;
export const nodeConnectionLost = (node: string, reason: string): string => `ERR ringside: connection to ${node} ${reason}`;

// transactions
/** EXEC's answer when the transaction could not be sent or its connection failed: `reason` as an EXECABORT */
export const execAbortedBy = (reason: string): string => (/^(TRYAGAIN|ERR) /.test(reason) ? reason.replace(/^(TRYAGAIN|ERR) /, 'EXECABORT ') : `EXECABORT ${reason}`);
export const EXECABORT_WATCH_LOST = 'EXECABORT ringside: the connection holding the WATCH was lost; transaction discarded';
export const EXECABORT_WATCH_MOVED = 'EXECABORT ringside: the watched keys moved to another node; transaction discarded';
export const execAbortMigrating = (slot: number): string => `EXECABORT ringside: slot ${slot} is migrating; transaction discarded, retry shortly`;

// ---------------------------------------------------------------- merging several nodes' replies

/** The first error reply among several nodes' replies, or null. */
export function firstError(replies: readonly Buffer[]): Buffer | null {
  for (const r of replies) if (r[0] === 0x2d) return r;
  return null;
}

/** OK when every node said OK, else the first error. */
export function allOk(replies: readonly Buffer[]): Buffer {
  return firstError(replies) ?? enc.OK;
}

/** The sum of every node's integer reply (never below 0), or the first error; throws on a reply of another type. */
export function sumIntegers(replies: readonly Buffer[]): Buffer {
  const err = firstError(replies);
  if (err) return err;
  let n = 0;
  for (const r of replies) {
    if (r[0] !== 0x3a) throw new Error('expected an integer reply');
    n += Number(r.toString('latin1', 1, r.length - 2));
  }
  return enc.integer(Math.max(0, n));
}

/** The first error, or the first reply (the same answer from every node: SCRIPT LOAD, FUNCTION LOAD). */
export function firstErrorOrFirst(replies: readonly Buffer[]): Buffer {
  return firstError(replies) ?? replies[0]!;
}

/** A simple-string reply where one node gave one (SCRIPT KILL, FUNCTION KILL), else the first. */
export function anyOk(replies: readonly Buffer[]): Buffer {
  return replies.find((r) => r[0] === 0x2b) ?? replies[0]!;
}

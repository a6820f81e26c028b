/**
 * Control-plane access to the configuration kept in the data nodes: read every copy, pick the
 * highest epoch, write with compare-and-set. Uses ioredis connections that never queue commands
 * while disconnected and never retry on their own: the caller decides what a failure means.
 */
import Redis from 'ioredis';
import {
  CAS_CONFIG_SCRIPT,
  CONFIG_KEY,
  VERSION_KEY,
  ClusterConfig,
  configVersion,
  parseConfig,
  serializeConfig,
  splitAddress,
} from './config';
import { ConfigError } from './errors';
import { CredentialStore, authFailure, isAuthError, nodeCredentials } from './credentials';
import { isTlsError, nodeTls } from './node-tls';

export interface ControlOptions {
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** reconnect after times × stepMs, at most maxMs (default 20 / 200: a sidecar's, soon and often) */
  reconnectStepMs?: number;
  reconnectMaxMs?: number;
  /** the node credentials (default: the process's); the control role's are used */
  credentials?: CredentialStore;
}

/** Set on an error whose cause is the node refusing the credentials (the node answered: it is up). */
export interface AuthFailure extends Error {
  authFailure?: true;
}

/** True when a control command failed because the node refused the credentials. */
export const isAuthFailure = (e: unknown): boolean => (e as AuthFailure | null)?.authFailure === true;

/**
 * A control-plane connection to one node: the one factory for the sidecar's control plane, the
 * fail-over agent and the admin CLI. It never retries a command by itself and fails fast while
 * disconnected; closing it (`disconnect()`) leaves no timer behind, so a CLI process exits as soon
 * as its work is done.
 */
export function controlClient(address: string, opts: ControlOptions = {}): Redis {
  const { host, port } = splitAddress(address);
  const step = opts.reconnectStepMs ?? 20;
  const max = opts.reconnectMaxMs ?? 200;
  const creds = opts.credentials ?? nodeCredentials;
  const cred = creds.get('control');
  const r = new Redis({
    host,
    port,
    ...(cred ? { password: cred.password, ...(cred.user ? { username: cred.user } : {}) } : {}),
    ...(nodeTls.enabled ? { tls: nodeTls.ioredisOptions() } : {}),
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    // reconnect soon and often: a command queued for a dead node fails at the next refused attempt
    retryStrategy: (times) => Math.min(times * step, max),
    enableReadyCheck: false,
    autoResendUnfulfilledCommands: false,
    disconnectTimeout: 0,
  });
  // a TLS failure (certificate, handshake) is reported as such, and like a refused password it
  // is not the node being down
  let tlsFailure: string | null = null;
  r.on('error', (e: Error) => {
    if (isTlsError(e)) tlsFailure = `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim();
  });
  r.on('connect', () => (tlsFailure = null));
  // the credentials are read again at every reconnect (a SIGHUP may have changed them)
  r.on('reconnecting', () => {
    const c = creds.get('control');
    r.options.username = c?.user;
    r.options.password = c?.password;
    r.options.tls = nodeTls.ioredisOptions();
  });
  // a refused credential names the node and the user (never the password), and is marked
  const send = r.sendCommand.bind(r);
  r.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], stream?: Parameters<Redis['sendCommand']>[1]) => {
    const reject = command.reject;
    command.reject = (err: Error) => {
      if (err && typeof err.message === 'string' && !isAuthFailure(err)) {
        if (isAuthError(err.message)) {
          err.message = authFailure(`node ${address}`, 'control', creds.user('control'), err.message);
          (err as AuthFailure).authFailure = true;
        } else if (tlsFailure !== null) {
          err.message = `ERR TLS to node ${address} failed (${tlsFailure})`;
          (err as AuthFailure).authFailure = true;
        }
      }
      reject(err);
    };
    return send(command, stream);
  }) as Redis['sendCommand'];
  return r;
}

/** One node's copy of the configuration, or why it has none usable. */
export type NodeCopy =
  | { address: string; ok: true; config: ClusterConfig; text: string; version: string }
  | { address: string; ok: false; reachable: boolean; reason: string; text?: string };

/** Reads `__cluster__:config` and `__cluster__:version` from one node and checks them. */
export async function readCopy(client: Redis, address: string): Promise<NodeCopy> {
  let text: string | null;
  let version: string | null;
  try {
    const res = await client.pipeline().get(CONFIG_KEY).get(VERSION_KEY).exec();
    if (!res) throw new Error('no reply');
    for (const [err] of res) if (err) throw err;
    text = res[0]![1] as string | null;
    version = res[1]![1] as string | null;
  } catch (e) {
    // a refused credential: the node answered, but nothing could be read
    return { address, ok: false, reachable: false, reason: isAuthFailure(e) ? (e as Error).message.replace(/^ERR /, '') : `unreachable: ${(e as Error).message}` };
  }
  if (text === null) return { address, ok: false, reachable: true, reason: 'holds no configuration' };
  if (version !== configVersion(text))
    return { address, ok: false, reachable: true, reason: `version ${version} is not the SHA1 of the stored configuration`, text };
  try {
    return { address, ok: true, config: parseConfig(text), text, version };
  } catch (e) {
    return { address, ok: false, reachable: true, reason: (e as ConfigError).message, text };
  }
}

/** The good copy with the highest epoch, if any. */
export function newest(copies: NodeCopy[]): Extract<NodeCopy, { ok: true }> | null {
  let best: Extract<NodeCopy, { ok: true }> | null = null;
  for (const c of copies) if (c.ok && (!best || c.config.epoch > best.config.epoch)) best = c;
  return best;
}

/**
 * Compare-and-set write of `config` on one node: written only if the node's epoch is lower.
 * Resolves true when written, false when the node already had that epoch or a newer one.
 */
export async function writeCopy(client: Redis, config: ClusterConfig): Promise<boolean> {
  const text = serializeConfig(config);
  const r = await client.eval(CAS_CONFIG_SCRIPT, 2, CONFIG_KEY, VERSION_KEY, text, String(config.epoch), configVersion(text));
  return r === 1;
}

/** Writes on every address; returns per-address outcome ('written', 'current', or an error). */
export async function writeEverywhere(
  clients: Map<string, Redis>,
  config: ClusterConfig,
): Promise<Map<string, 'written' | 'current' | Error>> {
  const out = new Map<string, 'written' | 'current' | Error>();
  await Promise.all(
    [...clients].map(async ([addr, c]) => {
      try {
        out.set(addr, (await writeCopy(c, config)) ? 'written' : 'current');
      } catch (e) {
        out.set(addr, e as Error);
      }
    }),
  );
  return out;
}

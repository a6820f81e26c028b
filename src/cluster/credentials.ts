/**
 * Credentials for the data nodes (docs/protocol.md, "Credentials and the two users").
 *
 * Two roles, each a user name and a password:
 *   control  the metadata, votes, switches, migrations, replication set up by `create`, and the
 *            sidecar's own keyspace-wide answers (FLUSHALL keeping metadata, SCAN hiding it)
 *   data     every command a sidecar forwards for apps; its ACL on the nodes cannot touch
 *            `__cluster__:*` nor run node administration (`dataUserAcl`)
 * A role left out takes the other's credentials; with neither, nothing is sent (nodes without
 * `requirepass`). Secrets come from a JSON file (`--auth-file`, RINGSIDE_AUTH_FILE) or from the
 * environment, never from the command line, and are never logged: errors name the node and the
 * user, not the password.
 *
 * One process talks to one cluster, so the credentials in use are one process-wide store
 * (`nodeCredentials`), read at every (re)connect: a SIGHUP that loads a changed file is taken up
 * by the next connection, and connections already authenticated stay up.
 */
import { readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { META_PREFIX, WAIT_FENCE_KEY } from './meta-keys';

export interface Credential {
  /** ACL user; absent: `AUTH <password>`, the `default` user (requirepass) */
  user?: string;
  password: string;
}

export interface NodeCredentials {
  control?: Credential;
  data?: Credential;
}

export type Role = 'control' | 'data';

/** The credentials file or environment is unusable; the message never holds a secret. */
export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

const sameCredential = (a: Credential | undefined, b: Credential | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.password === b.password && (a.user ?? 'default') === (b.user ?? 'default'));

export class CredentialStore {
  #creds: NodeCredentials = {};
  #generation = 0;

  /** Replaces the credentials; returns true when anything changed. */
  set(creds: NodeCredentials): boolean {
    const before = [this.get('control'), this.get('data')];
    this.#creds = { ...(creds.control ? { control: { ...creds.control } } : {}), ...(creds.data ? { data: { ...creds.data } } : {}) };
    const changed = !sameCredential(before[0], this.get('control')) || !sameCredential(before[1], this.get('data'));
    if (changed) this.#generation++;
    return changed;
  }

  /** The credential a role authenticates with, or undefined (send nothing). */
  get(role: Role): Credential | undefined {
    return role === 'control' ? (this.#creds.control ?? this.#creds.data) : (this.#creds.data ?? this.#creds.control);
  }

  /** The user a role runs as, for messages ("default" when no user name is set). */
  user(role: Role): string {
    return this.get(role)?.user ?? 'default';
  }

  /** True when the two roles use different credentials: the data path then keeps its metadata work on control connections. */
  get split(): boolean {
    return !sameCredential(this.get('control'), this.get('data'));
  }

  /** Bumped on every change (connections compare it to know their credentials are old). */
  get generation(): number {
    return this.#generation;
  }

  /** What can be shown (status, INFO, logs): users only, never passwords. */
  describe(): { control: string | null; data: string | null } {
    const d = (c: Credential | undefined): string | null => (c ? (c.user ?? 'default') : null);
    return { control: d(this.get('control')), data: d(this.get('data')) };
  }

  /** Every secret in use, for tests and redaction. */
  secrets(): string[] {
    return [this.#creds.control?.password, this.#creds.data?.password].filter((p): p is string => typeof p === 'string' && p.length > 0);
  }
}

/** The process's node credentials (see the header comment). */
export const nodeCredentials = new CredentialStore();

function credentialOf(v: unknown, where: string): Credential | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new CredentialsError(`${where}: must be an object {"user", "password"}`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'user' && k !== 'password') throw new CredentialsError(`${where}: unknown field "${k}" (fields: user, password)`);
  if (typeof o.password !== 'string' || o.password === '') throw new CredentialsError(`${where}: "password" must be a non-empty string`);
  if (o.user !== undefined && (typeof o.user !== 'string' || o.user === '' || /\s/.test(o.user)))
    throw new CredentialsError(`${where}: "user" must be a name without spaces`);
  return o.user === undefined ? { password: o.password } : { user: o.user as string, password: o.password };
}

/**
 * Parses a credentials file's text: `{"control": {...}, "data": {...}}`, either optional, or one
 * `{"user", "password"}` for both roles.
 */
export function parseCredentials(text: string, file: string): NodeCredentials {
  const rec = parseSecretJson(text, file, (m) => new CredentialsError(m));
  if ('password' in rec || 'user' in rec) {
    const both = credentialOf(rec, file)!;
    return { control: both, data: both };
  }
  for (const k of Object.keys(rec))
    if (k !== 'control' && k !== 'data') throw new CredentialsError(`${file}: unknown field "${k}" (fields: control, data; or user, password)`);
  const control = credentialOf(rec.control, `${file}: control`);
  const data = credentialOf(rec.data, `${file}: data`);
  return { ...(control ? { control } : {}), ...(data ? { data } : {}) };
}

/**
 * Reads the credentials: the file when one is named, then the environment on top
 * (RINGSIDE_NODE_USER/_PASSWORD for both roles; RINGSIDE_CONTROL_USER/_PASSWORD and
 * RINGSIDE_DATA_USER/_PASSWORD per role). `warn` hears about a file others can read.
 */
export function loadCredentials(file: string | undefined, env: NodeJS.ProcessEnv = process.env, warn?: (msg: string) => void): NodeCredentials {
  let creds: NodeCredentials = {};
  if (file) creds = parseCredentials(readSecretFile(file, 'credentials file', (m) => new CredentialsError(m), warn), file);
  const fromEnv = (userVar: string, passVar: string): Credential | undefined => {
    const password = env[passVar];
    if (password === undefined || password === '') {
      if (env[userVar]) throw new CredentialsError(`${userVar} is set but ${passVar} is not`);
      return undefined;
    }
    const user = env[userVar];
    return user ? { user, password } : { password };
  };
  const both = fromEnv('RINGSIDE_NODE_USER', 'RINGSIDE_NODE_PASSWORD');
  if (both) creds = { control: both, data: both };
  const control = fromEnv('RINGSIDE_CONTROL_USER', 'RINGSIDE_CONTROL_PASSWORD');
  const data = fromEnv('RINGSIDE_DATA_USER', 'RINGSIDE_DATA_PASSWORD');
  if (control) creds = { ...creds, control };
  if (data) creds = { ...creds, data };
  return creds;
}

/**
 * A JSON object from a file of secrets: the parser's own message is not passed on, as it quotes
 * the text (which may hold a secret).
 */
export function parseSecretJson(text: string, file: string, error: (msg: string) => Error): Record<string, unknown> {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw error(`${file} is not valid JSON`);
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw error(`${file} must hold a JSON object`);
  return o as Record<string, unknown>;
}

/** Reads a file of secrets; `warn` hears when users other than its owner can read it. */
export function readSecretFile(file: string, what: string, error: (msg: string) => Error, warn?: (msg: string) => void): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw error(`cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    if ((statSync(file).mode & 0o077) !== 0) warn?.(`the ${what} ${file} can be read by other users; chmod 600 it`);
  } catch {
    /* read above; a stat failure changes nothing */
  }
  return text;
}

const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/** The command that authenticates a raw connection: AUTH, or HELLO 3 AUTH for RESP3 links. */
export function authCommand(c: Credential, proto: 2 | 3 = 2): Buffer {
  if (proto === 3) return Buffer.from(`*5\r\n${bulk('HELLO')}${bulk('3')}${bulk('AUTH')}${bulk(c.user ?? 'default')}${bulk(c.password)}`);
  return Buffer.from(c.user ? `*3\r\n${bulk('AUTH')}${bulk(c.user)}${bulk(c.password)}` : `*2\r\n${bulk('AUTH')}${bulk(c.password)}`);
}

/** Whether a node's error text means the credentials (or their ACL) are the problem. */
export function isAuthError(message: string): boolean {
  return /^(?:ERR )?(?:NOAUTH|WRONGPASS|NOPERM)\b|AUTH <password> called without|invalid password|invalid username-password/.test(message);
}

/** The message for an authentication failure: names the node and the user, never the password. */
export function authFailure(label: string, role: Role, user: string, nodeMessage: string): string {
  const what = /^NOAUTH/.test(nodeMessage)
    ? 'requires a password and none is configured (set RINGSIDE_NODE_PASSWORD or --auth-file)'
    : /no password is set|without any password configured/i.test(nodeMessage)
      ? `has no password set, but one is configured for user "${user}"`
      : `refused the ${role} credentials of user "${user}"`;
  return `ERR ${label} ${what}: ${nodeMessage.replace(/^ERR /, '')}`;
}

/**
 * Glob patterns that match every key except those under `prefix`, for an ACL whose key patterns
 * can only allow: for each position i, keys that agree with the prefix before i and differ at i,
 * and the prefix's proper beginnings themselves (the empty key too).
 */
export function keyPatternsExcluding(prefix: string): string[] {
  const esc = (s: string): string => s.replace(/[*?[\]\\]/g, (c) => '\\' + c);
  const out: string[] = [];
  for (let i = 0; i < prefix.length; i++) {
    const ch = prefix[i]!;
    const cls = ch === ']' || ch === '\\' || ch === '^' || ch === '-' ? '\\' + ch : ch;
    out.push(`${esc(prefix.slice(0, i))}[^${cls}]*`);
  }
  for (let i = 0; i < prefix.length; i++) out.push(esc(prefix.slice(0, i)));
  return out;
}

/** SHA-256 of a password, as ACL SETUSER's `#<hash>` takes it (the password itself is never sent in an ACL rule). */
export function passwordHash(password: string): string {
  return createHash('sha256').update(password).digest('hex');
}

/**
 * The data user's ACL rules (docs/protocol.md): every key but the metadata (and the one fence key
 * WAIT writes), every channel, every command but node administration and those that list or
 * empty the whole keyspace or switch databases; SORT's BY/GET stay refused by the node, as the
 * user lacks access to all keys.
 */
export function dataUserAcl(password: string): string[] {
  return [
    'reset',
    'on',
    `#${passwordHash(password)}`,
    ...keyPatternsExcluding(META_PREFIX).map((p) => `~${p}`),
    `~${WAIT_FENCE_KEY}`,
    '&*',
    '+@all',
    '-@admin',
    '-@dangerous',
    // harmless for the metadata and used by apps: SORT/SORT_RO (BY/GET need all keys), RESTORE (keys checked)
    '+sort',
    '+sort_ro',
    '+restore',
    // list the whole keyspace or leave database 0
    '-scan',
    '-randomkey',
    '-select',
    '-move',
    '-swapdb',
  ];
}

/** The control user's ACL rules: everything (it keeps the metadata and runs replication, fail-over and migrations). */
export function controlUserAcl(password: string): string[] {
  return ['reset', 'on', `#${passwordHash(password)}`, '~*', '&*', '+@all'];
}

/** One `user` line of an ACL file (or redis.conf) for these rules. */
export function aclFileLine(user: string, rules: string[]): string {
  return ['user', user, ...rules.filter((r) => r !== 'reset')].join(' ');
}

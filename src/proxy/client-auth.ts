/**
 * Passwords the sidecar asks of its own clients (optional; off by default, as a localhost
 * sidecar's apps are on the same host): Redis's `requirepass` for the default user and named
 * users, checked by AUTH and HELLO ... AUTH. Every user may run every command (authentication,
 * not authorisation: the nodes' ACL keeps the metadata out of reach). Passwords are kept as
 * SHA-256 digests and compared in constant time; none is ever logged.
 *
 * The setting comes from a JSON file (`--client-auth-file`, RINGSIDE_CLIENT_AUTH_FILE):
 *   {"requirepass": "...", "users": {"alice": "...", "bob": ["old", "new"]}}
 * or RINGSIDE_REQUIREPASS, and is re-read on SIGHUP: clients already authenticated stay so, as
 * in Redis when a password changes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseSecretJson, readSecretFile } from '../cluster/credentials';

/** user name → its passwords (plain: hashed when set) */
export type ClientUsers = Record<string, string[]>;

export class ClientAuthError extends Error {
  override name = 'ClientAuthError';
}

const digest = (password: string): Buffer => createHash('sha256').update(password).digest();

export class ClientAuth {
  #users = new Map<string, Buffer[]>();

  set(users: ClientUsers | null): void {
    const next = new Map<string, Buffer[]>();
    for (const [user, pws] of Object.entries(users ?? {})) if (pws.length) next.set(user, pws.map(digest));
    this.#users = next;
  }

  /** Whether clients must authenticate. */
  get enabled(): boolean {
    return this.#users.size > 0;
  }

  /** Whether the default user has a password (AUTH <password> then makes sense). */
  get hasDefaultPassword(): boolean {
    return this.#users.has('default');
  }

  /** The user names (for logs and INFO; never the passwords). */
  users(): string[] {
    return [...this.#users.keys()].sort();
  }

  /** True when `password` is one of `user`'s. The time taken does not depend on where they differ. */
  check(user: string, password: Buffer | string): boolean {
    const want = this.#users.get(user);
    const got = createHash('sha256').update(password).digest();
    let ok = false;
    for (const w of want ?? [digest('')]) ok = timingSafeEqual(w, got) || ok;
    return ok && want !== undefined;
  }
}

/** Parses a client-auth file's text (its errors quote no secret). */
export function parseClientAuth(text: string, file: string): ClientUsers {
  const rec = parseSecretJson(text, file, (m) => new ClientAuthError(m));
  for (const k of Object.keys(rec)) if (k !== 'requirepass' && k !== 'users') throw new ClientAuthError(`${file}: unknown field "${k}" (fields: requirepass, users)`);
  const out: ClientUsers = {};
  const list = (v: unknown, where: string): string[] => {
    const a = Array.isArray(v) ? v : [v];
    if (a.length === 0 || a.some((p) => typeof p !== 'string' || p === '')) throw new ClientAuthError(`${where}: a password is a non-empty string (or a list of them)`);
    return a as string[];
  };
  if (rec.requirepass !== undefined) out.default = list(rec.requirepass, `${file}: requirepass`);
  if (rec.users !== undefined) {
    if (rec.users === null || typeof rec.users !== 'object' || Array.isArray(rec.users)) throw new ClientAuthError(`${file}: "users" maps user names to passwords`);
    for (const [u, v] of Object.entries(rec.users as Record<string, unknown>)) {
      if (u === '' || /\s/.test(u)) throw new ClientAuthError(`${file}: a user name has no spaces`);
      out[u] = [...(out[u] ?? []), ...list(v, `${file}: user "${u}"`)];
    }
  }
  return out;
}

/** Reads the client-auth setting: the file when named, then RINGSIDE_REQUIREPASS for the default user. */
export function loadClientAuth(file: string | undefined, env: NodeJS.ProcessEnv = process.env, warn?: (msg: string) => void): ClientUsers | null {
  let users: ClientUsers = {};
  if (file) users = parseClientAuth(readSecretFile(file, 'client-auth file', (m) => new ClientAuthError(m), warn), file);
  if (env.RINGSIDE_REQUIREPASS) users = { ...users, default: [env.RINGSIDE_REQUIREPASS] };
  return Object.keys(users).length ? users : null;
}

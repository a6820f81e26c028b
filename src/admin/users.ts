/**
 * `ringside users apply`: makes (or updates) the data user on every server of a running cluster,
 * masters and replicas (ACL rules are not replicated), with the rules of `dataUserAcl` and the
 * data password now configured. For a cluster created with one credential that moves to two
 * users, for servers added later, and for rotating the data password without a dropped request:
 *
 *   1. the new password in the credentials file; `ringside users apply`: the servers accept the
 *      new password and still the old ones
 *   2. SIGHUP (systemctl reload) every sidecar: new connections use the new password
 *   3. `ringside users apply --drop-other-passwords`: only the new password is left
 *
 * The user's rules are set in full each time; only its passwords are kept unless asked. Users are
 * saved where the server keeps them (ACL SAVE with an ACL file, CONFIG REWRITE with redis.conf).
 */
import type Redis from 'ioredis';
import { openCluster } from '../failover/connect';
import { dataUserAcl, nodeCredentials, passwordHash } from '../cluster/credentials';
import { UsersError } from './errors';

export interface UsersApplyOptions {
  seeds: string[];
  /** leave the data password configured now as the user's only one */
  dropOtherPasswords?: boolean;
  timeoutMs?: number;
  onProgress?: (line: string) => void;
}

export interface UsersApplyResult {
  user: string;
  servers: string[];
  /** servers where the user was saved to disk (ACL SAVE or CONFIG REWRITE) */
  saved: string[];
}

/** Saves users the way the server keeps them; true when something was written. */
async function persist(c: Redis): Promise<boolean> {
  try {
    await c.call('ACL', 'SAVE');
    return true;
  } catch (e) {
    if (!/not configured to use an ACL file/i.test((e as Error).message)) throw e;
  }
  try {
    await c.call('CONFIG', 'REWRITE');
    return true;
  } catch (e) {
    if (/without a config file/i.test((e as Error).message)) return false;
    throw e;
  }
}

export async function applyUsers(opts: UsersApplyOptions): Promise<UsersApplyResult> {
  const progress = opts.onProgress ?? (() => {});
  const data = nodeCredentials.get('data');
  if (!data || !nodeCredentials.split)
    throw new UsersError('no data user of its own is configured: give the data role its own user and password (--auth-file {"control": ..., "data": ...})');
  const user = data.user ?? 'default';
  if (user === nodeCredentials.user('control')) throw new UsersError(`the data and control roles both name user "${user}"`);
  const cluster = await openCluster(opts.seeds, { timeoutMs: opts.timeoutMs ?? 2000 });
  try {
    const servers = Object.values(cluster.config.nodes).flatMap((n) => [n.master, ...n.replicas]);
    // everything but the password itself: `reset` would drop the passwords the sidecars use now
    const rules = dataUserAcl(data.password).filter((r) => r !== 'reset' && !r.startsWith('#'));
    const failed: string[] = [];
    const saved: string[] = [];
    await Promise.all(
      servers.map(async (a) => {
        const c = cluster.clientFor(a);
        try {
          await c.call('ACL', 'SETUSER', user, 'resetkeys', 'resetchannels', '-@all', ...rules, ...(opts.dropOtherPasswords ? ['resetpass'] : []), `#${passwordHash(data.password)}`);
          if (await persist(c)) saved.push(a);
        } catch (e) {
          failed.push(`${a}: ${(e as Error).message}`);
        }
      }),
    );
    if (failed.length) throw new UsersError(`data user "${user}" not set on every server (run again once they answer): ${failed.sort().join('; ')}`);
    progress(
      `data user "${user}" set on ${servers.length} server(s)` +
        (opts.dropOtherPasswords ? '; its only password is the one configured now' : '; the passwords it had are kept (--drop-other-passwords removes them)'),
    );
    return { user, servers: servers.sort(), saved: saved.sort() };
  } finally {
    cluster.close();
  }
}

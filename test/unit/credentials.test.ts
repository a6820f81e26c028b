/**
 * The node credentials (src/cluster/credentials.ts), without servers: the file and environment
 * forms, errors that never quote a secret, the AUTH bytes, and the key patterns that exclude the
 * metadata, checked exhaustively against a glob matcher (the real ACL check is in
 * test/security/node-auth.test.ts).
 */
import t from 'tap';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CredentialStore,
  CredentialsError,
  aclFileLine,
  authCommand,
  authFailure,
  dataUserAcl,
  isAuthError,
  keyPatternsExcluding,
  loadCredentials,
  parseCredentials,
  passwordHash,
} from '../../src/cluster/credentials';

const SECRET = 'pa$$w0rd-"quoted"-secret';

/** Redis's stringmatchlen for the subset the patterns use: literal bytes, `*`, `[^x]`, `\x`. */
function glob(p: string, s: string): boolean {
  if (p === '') return s === '';
  if (p[0] === '*') {
    for (let i = 0; i <= s.length; i++) if (glob(p.slice(1), s.slice(i))) return true;
    return false;
  }
  if (s === '') return false;
  if (p[0] === '[') {
    const neg = p[1] === '^';
    let i = neg ? 2 : 1;
    let set = '';
    for (; p[i] !== ']'; i++) set += p[i] === '\\' ? p[++i] : p[i];
    const hit = set.includes(s[0]!);
    return (neg ? !hit : hit) && glob(p.slice(i + 1), s.slice(1));
  }
  if (p[0] === '\\') return p[1] === s[0] && glob(p.slice(2), s.slice(1));
  return p[0] === s[0] && glob(p.slice(1), s.slice(1));
}

t.test('the key patterns allow every key except those under the prefix, exactly', async (t) => {
  const prefix = '__cluster__:';
  const patterns = keyPatternsExcluding(prefix);
  const allowed = (k: string): boolean => patterns.some((p) => glob(p, k));
  const keys = new Set<string>(['', 'a', 'foo', '_', '__', '__c', '__cluster', '__cluster__', '__cluster__:', '__cluster__:config', '__cluster__:votes:a', '__cluster_:x', '__Cluster__:config', '___cluster__:config', 'x__cluster__:config', '__cluster__;', '__cluster__::']);
  // every beginning of the prefix, with every character of interest after it
  for (let i = 0; i <= prefix.length; i++) for (const c of ['', '_', ':', 'c', 'x', '*', '[', '\\', prefix[i] ?? 'z']) keys.add(prefix.slice(0, i) + c + 'tail');
  for (let i = 0; i <= prefix.length; i++) keys.add(prefix.slice(0, i));
  let checked = 0;
  for (const k of keys) {
    t.equal(allowed(k), !k.startsWith(prefix), `key ${JSON.stringify(k)}`);
    checked++;
  }
  t.ok(checked > 100, `${checked} keys checked`);
  t.equal(patterns.length, 2 * prefix.length, 'one pattern per position and one per proper beginning');
});

t.test('special characters in a prefix are escaped in the patterns', async (t) => {
  const patterns = keyPatternsExcluding('a*]');
  const allowed = (k: string): boolean => patterns.some((p) => glob(p, k));
  for (const k of ['a*]', 'a*]x']) t.notOk(allowed(k), `${k} is under the prefix`);
  for (const k of ['a', 'a*', 'ab]', 'a*x', 'b']) t.ok(allowed(k), `${k} is not`);
});

t.test('the data user gets no administration, no keyspace listing, and its password only as a hash', async (t) => {
  const rules = dataUserAcl(SECRET);
  t.ok(rules.includes('-@admin') && rules.includes('-@dangerous'), 'no @admin or @dangerous');
  for (const c of ['-scan', '-randomkey', '-select', '-swapdb']) t.ok(rules.includes(c), c);
  t.ok(rules.includes(`#${passwordHash(SECRET)}`), 'the SHA-256 of the password');
  t.notOk(rules.join(' ').includes(SECRET), 'never the password itself');
  t.ok(rules.includes('~__cluster__:wait-fence'), 'the WAIT fence key stays writable');
  t.notOk(aclFileLine('app', rules).includes('reset'), 'an ACL file line has no reset');
  t.match(aclFileLine('app', rules), /^user app on #[0-9a-f]{64} ~/);
});

t.test('a credentials file: both roles, one credential for both, and clear errors that quote no secret', async (t) => {
  t.same(parseCredentials(JSON.stringify({ control: { user: 'admin', password: 'a' }, data: { user: 'app', password: 'b' } }), 'f'), {
    control: { user: 'admin', password: 'a' },
    data: { user: 'app', password: 'b' },
  });
  t.same(parseCredentials(JSON.stringify({ password: 'p' }), 'f'), { control: { password: 'p' }, data: { password: 'p' } });
  t.same(parseCredentials(JSON.stringify({ control: { password: 'p' } }), 'f'), { control: { password: 'p' } });
  const bad = [
    `{"password": "${SECRET}"`,
    JSON.stringify({ control: { user: 'x', pasword: SECRET } }),
    JSON.stringify({ control: { user: 'x', password: '' } }),
    JSON.stringify({ contrl: { password: SECRET } }),
    JSON.stringify({ user: 'a b', password: SECRET }),
    JSON.stringify([SECRET]),
  ];
  for (const text of bad) {
    const e = (() => {
      try {
        parseCredentials(text, '/etc/ringside/auth.json');
      } catch (err) {
        return err as Error;
      }
      return null;
    })();
    t.ok(e instanceof CredentialsError, `refused: ${text.replace(SECRET, '***')}`);
    t.notOk(e?.message.includes(SECRET), 'the message quotes no secret');
    t.match(e?.message, /\/etc\/ringside\/auth\.json/, 'and names the file');
  }
});

t.test('the environment adds to or replaces the file, and a file others can read gets a warning', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-cred-'));
  t.teardown(() => require('node:fs').rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'auth.json');
  writeFileSync(file, JSON.stringify({ control: { user: 'admin', password: 'a' } }));
  chmodSync(file, 0o644);
  const warnings: string[] = [];
  const c = loadCredentials(file, { RINGSIDE_DATA_USER: 'app', RINGSIDE_DATA_PASSWORD: 'b' }, (m) => warnings.push(m));
  t.same(c, { control: { user: 'admin', password: 'a' }, data: { user: 'app', password: 'b' } });
  t.match(warnings.join(), /can be read by other users; chmod 600/);
  chmodSync(file, 0o600);
  warnings.length = 0;
  loadCredentials(file, {}, (m) => warnings.push(m));
  t.same(warnings, [], 'no warning at 600');
  t.same(loadCredentials(undefined, { RINGSIDE_NODE_PASSWORD: 'p' }), { control: { password: 'p' }, data: { password: 'p' } });
  t.same(loadCredentials(undefined, {}), {}, 'nothing set: no credentials');
  t.throws(() => loadCredentials(undefined, { RINGSIDE_NODE_USER: 'u' }), /RINGSIDE_NODE_USER is set but RINGSIDE_NODE_PASSWORD is not/);
  t.throws(() => loadCredentials(path.join(dir, 'missing.json')), /cannot read the credentials file .*missing\.json: ENOENT/);
});

t.test('the store: a role falls back to the other, split only when they differ, users shown without passwords', async (t) => {
  const s = new CredentialStore();
  t.equal(s.get('data'), undefined);
  t.notOk(s.split);
  t.ok(s.set({ control: { password: 'p' } }), 'a change');
  t.same(s.get('data'), { password: 'p' }, 'data falls back to control');
  t.notOk(s.split, 'one credential: not split');
  t.notOk(s.set({ control: { password: 'p' }, data: { user: 'default', password: 'p' } }), 'the same credentials (default named or not): no change');
  const g = s.generation;
  t.ok(s.set({ control: { user: 'admin', password: 'a' }, data: { user: 'app', password: SECRET } }));
  t.ok(s.split);
  t.equal(s.generation, g + 1);
  t.same(s.describe(), { control: 'admin', data: 'app' });
  t.notOk(JSON.stringify(s.describe()).includes(SECRET));
  t.same(s.secrets().sort(), ['a', SECRET].sort());
});

t.test('AUTH bytes for each form, and failure messages that name node and user but not the password', async (t) => {
  t.equal(authCommand({ password: 'p' }).toString(), '*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n');
  t.equal(authCommand({ user: 'u', password: 'p' }).toString(), '*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n');
  t.equal(authCommand({ password: 'p' }, 3).toString(), '*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$1\r\np\r\n');
  t.equal(authCommand({ user: 'é', password: 'p' }).toString('utf8'), '*3\r\n$4\r\nAUTH\r\n$2\r\né\r\n$1\r\np\r\n', 'lengths in bytes');
  for (const m of ['WRONGPASS invalid username-password pair or user is disabled.', 'NOAUTH Authentication required.', 'NOPERM this user has no permissions', "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"])
    t.ok(isAuthError(m), m);
  t.notOk(isAuthError('ERR unknown command'), 'other errors are not');
  const msg = authFailure('node a (127.0.0.1:7001)', 'data', 'app', 'WRONGPASS invalid username-password pair or user is disabled.');
  t.match(msg, /^ERR node a \(127\.0\.0\.1:7001\) refused the data credentials of user "app": WRONGPASS/);
  t.match(authFailure('node x', 'control', 'default', 'NOAUTH Authentication required.'), /requires a password and none is configured/);
});

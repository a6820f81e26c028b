// The systemd units in deploy/systemd verify with `systemd-analyze verify` (and pass an
// offline `systemd-analyze security` threshold). verify also checks that ExecStart's binary
// exists, and /opt/ringside is not installed here, so the sidecar's unit is verified as a
// copy in a temp dir whose ExecStart points at this machine's node and this repository —
// the only line that differs, and the test checks it has the expected form first.
import { loadCredentials } from '../../src/cluster/credentials';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { NODE_FLAGS } from '../../src/cli/node-flags';

const repo = resolve(__dirname, '../../..');
const unitDir = join(repo, 'deploy/systemd');
const ANALYZE = '/usr/bin/systemd-analyze';
const INSTALLED_EXEC = `ExecStart=/usr/bin/node ${NODE_FLAGS.join(' ')} /opt/ringside/bin/ringside.js serve`;

const read = (name: string): string => readFileSync(join(unitDir, name), 'utf8');

/** Values of `Key=` in a unit file (all occurrences, in order). */
function directive(text: string, key: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m && m[1] === key) out.push(m[2]);
  }
  return out;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

interface Verify {
  status: number | null;
  /** Output lines that are about the given unit files. */
  about: string[];
  other: string[];
}

/** `systemd-analyze verify` on unit files in dir; lines naming them count as about the units. */
function verify(dir: string, units: string[], names: string[]): Verify {
  const r = spawnSync(ANALYZE, ['verify', '--man=no', ...units.map((u) => join(dir, u))], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' },
  });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  const mentions = (l: string): boolean => l.includes(dir) || names.some((n) => l.includes(n));
  return { status: r.status, about: lines.filter(mentions), other: lines.filter((l) => !mentions(l)) };
}

/** A temp dir with the units as they would be installed, ExecStart pointed at real binaries. */
function stage(t: Tap, edit: (name: string, text: string) => string = (_n, s) => s): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringside-units-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sidecar = read('ringside.service');
  t.equal(sidecar.split('\n').filter((l) => l === INSTALLED_EXEC).length, 1, 'ringside.service has the documented ExecStart');
  writeFileSync(
    join(dir, 'ringside.service'),
    edit('ringside.service', sidecar.replace(INSTALLED_EXEC, `ExecStart=${process.execPath} ${NODE_FLAGS.join(' ')} ${join(repo, 'bin/ringside.js')} serve`)),
  );
  let node = read('redis-node@.service');
  const redis = which('redis-server');
  if (redis && redis !== '/usr/bin/redis-server') node = node.replaceAll('/usr/bin/redis-server', redis);
  writeFileSync(join(dir, 'redis-node@.service'), edit('redis-node@.service', node));
  return dir;
}
/** The bits of a tap test that stage() uses. */
interface Tap {
  teardown: (fn: () => void) => unknown;
  equal: (...args: any[]) => unknown;
}

const haveAnalyze = existsSync(ANALYZE);

t.test('ringside.service and redis-node@.service pass systemd-analyze verify', { skip: !haveAnalyze && 'no systemd-analyze' }, async (t) => {
  t.ok(existsSync(join(repo, 'bin/ringside.js')), 'bin/ringside.js exists (the ExecStart script)');
  const dir = stage(t);
  const side = verify(dir, ['ringside.service'], ['ringside.service']);
  t.equal(side.status, 0, 'verify exit status for ringside.service');
  t.same(side.about, [], 'no warnings about ringside.service');
  // The template is checked through an instance, so %i is expanded (port 6380).
  const node = verify(dir, ['redis-node@6380.service'], ['redis-node@']);
  t.equal(node.status, 0, 'verify exit status for redis-node@6380.service');
  t.same(node.about, [], 'no warnings about redis-node@6380.service');
  for (const l of [...side.other, ...node.other]) t.comment(`(not about our units) ${l}`);
});

t.test('verify catches a broken unit (the check can fail)', { skip: !haveAnalyze && 'no systemd-analyze' }, async (t) => {
  const dir = stage(t, (name, s) =>
    name === 'ringside.service' ? s.replace('NoNewPrivileges=yes', 'NoNewPrivilegs=yes').replace('Restart=on-failure', 'Restart=sometimes') : s,
  );
  const side = verify(dir, ['ringside.service'], ['ringside.service']);
  t.ok(side.about.some((l) => l.includes('NoNewPrivilegs')), 'unknown key reported');
  t.ok(side.about.some((l) => l.includes('sometimes')), 'bad Restart= value reported');

  const dir2 = stage(t, (name, s) => (name === 'redis-node@.service' ? s.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/redis-server') : s));
  const node = verify(dir2, ['redis-node@6380.service'], ['redis-node@']);
  t.not(node.status, 0, 'missing ExecStart binary fails verify');
});

t.test('hardening exposure stays low (systemd-analyze security --offline)', { skip: !haveAnalyze && 'no systemd-analyze' }, async (t) => {
  const dir = stage(t);
  for (const unit of ['ringside.service', 'redis-node@6380.service']) {
    const r = spawnSync(ANALYZE, ['security', '--offline=yes', '--no-pager', '--threshold=25', join(dir, unit)], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_COLORS: '0' },
    });
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout);
    t.ok(m, `${unit}: exposure reported`);
    t.equal(r.status, 0, `${unit}: exposure ${m?.[1]} within --threshold=25 (i.e. 2.5)`);
  }
});

t.test('the sidecar unit has what the deploy contract asks for', async (t) => {
  const s = read('ringside.service');
  t.same(directive(s, 'Restart'), ['on-failure']);
  t.same(directive(s, 'EnvironmentFile'), ['/etc/ringside/ringside.env']);
  t.ok(directive(s, 'DynamicUser').includes('yes') || directive(s, 'User').length === 1, 'runs unprivileged');
  t.same(directive(s, 'KillSignal'), ['SIGTERM']);
  const stop = /^(\d+)s?$/.exec(directive(s, 'TimeoutStopSec')[0] ?? '');
  t.ok(stop && Number(stop[1]) >= 20, 'TimeoutStopSec leaves time for the drain');
  t.match(directive(s, 'ExecReload')[0], /kill -HUP \$MAINPID/);
  t.same(directive(s, 'NoNewPrivileges'), ['yes']);
  t.same(directive(s, 'ProtectSystem'), ['strict']);
  // MemoryDenyWriteExecute would break V8's JIT.
  t.notOk(directive(s, 'MemoryDenyWriteExecute').includes('yes'), 'no MemoryDenyWriteExecute for node');
});

t.test('ringside.env.example only sets documented RINGSIDE_* variables', async (t) => {
  const flags = ['port', 'bind', 'unixsocket', 'unixsocketperm', 'seeds', 'read-from', 'metrics-port', 'metrics-bind', 'log-level', 'config', 'id'];
  const known = new Set(flags.map((f) => 'RINGSIDE_' + f.replace(/-/g, '_').toUpperCase()));
  // the node credentials' variables (src/cluster/credentials.ts: never flags, as a command line is public)
  for (const v of ['RINGSIDE_NODE_USER', 'RINGSIDE_NODE_PASSWORD']) {
    t.same(loadCredentials(undefined, { RINGSIDE_NODE_USER: 'u', RINGSIDE_NODE_PASSWORD: 'p' }).control, { user: 'u', password: 'p' }, `${v} is read by the credentials`);
    known.add(v);
  }
  const env = read('ringside.env.example');
  const names = [...env.matchAll(/^#?(RINGSIDE_[A-Z_]+)=/gm)].map((m) => m[1]);
  t.ok(names.length >= flags.length, 'every flag is shown');
  for (const n of names) t.ok(known.has(n), `${n} is a serve flag's variable`);
  t.match(env, /^RINGSIDE_SEEDS=\S+/m, 'RINGSIDE_SEEDS is set (not commented out)');
});

/**
 * A changed node password is taken up on SIGHUP without dropping a client connection, and no
 * secret ever shows: the sidecar's log (at debug), `ringside status --json`, INFO, CONFIG GET,
 * CLIENT LIST, SLOWLOG and /metrics are grepped for every password in use (issue 22).
 */
import t from 'tap';
import Redis from 'ioredis';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { setLogSink } from '../../src/observe/log';
import { freePort } from '../../src/embedded/redis-process';
import { startCluster } from '../failover/servers';
import { BIN, ROOT, childSidecar, waitFor } from '../failover/load';

setLogSink(() => {});

const run = promisify(execFile);
const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };
const ADMIN = { user: 'rs-admin', password: 'adm-Rot-0a1b2c' };
const OLD = 'app-Old-3d4e5f';
const NEW = 'app-New-6a7b8c';

t.test('SIGHUP takes up a rotated data password; clients stay connected; no secret shows anywhere', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing, credentials: { control: ADMIN, data: { user: 'rs-app', password: OLD } } });
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-rot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'auth.json');
  const write = (pw: string): void => writeFileSync(file, JSON.stringify({ control: ADMIN, data: { user: 'rs-app', password: pw } }), { mode: 0o600 });
  write(OLD);
  const metricsPort = await freePort();
  const sc = await childSidecar(t, c, 'rot', ['--auth-file', file, '--log-level', 'debug', '--metrics-port', String(metricsPort)]);
  const app = new Redis({ port: sc.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  app.on('error', () => {});
  t.teardown(() => app.disconnect());
  let reconnects = 0;
  app.on('reconnecting', () => reconnects++);
  t.equal(await app.set('k', 'before'), 'OK');
  const id = await app.client('ID');

  // the rotation: the new password added on the nodes, the file changed, SIGHUP, the old one removed
  const masters = [...c.masters().values()];
  for (const m of masters) await m.call('ACL', 'SETUSER', 'rs-app', `>${NEW}`);
  write(NEW);
  sc.child!.kill('SIGHUP');
  await waitFor('the sidecar to reload the credentials', () => /node-credentials-reloaded/.test(sc.output!()), 10_000);
  for (const m of masters) await m.call('ACL', 'SETUSER', 'rs-app', `<${OLD}`);
  t.equal(await app.get('k'), 'before', 'connections made before the rotation still work');
  // every data connection of the sidecar dropped by the nodes: new ones must use the new password
  for (const m of masters) await m.call('CLIENT', 'KILL', 'USER', 'rs-app');
  await waitFor('commands to succeed again', async () => (await app.set('k', 'after').then(() => true, () => false)), 10_000, 50);
  t.equal(await app.get('k'), 'after', 'the sidecar reconnected with the new password');
  t.equal(await app.client('ID'), id, 'the app\'s connection to the sidecar is the same one');
  t.equal(reconnects, 0, 'and it never reconnected');

  // an unusable file on SIGHUP keeps the running credentials
  writeFileSync(file, '{"data": {"user": "rs-app", "password": ', { mode: 0o600 });
  sc.child!.kill('SIGHUP');
  await waitFor('the failed reload to be logged', () => /node-credentials-reload-failed/.test(sc.output!()), 10_000);
  for (const m of masters) await m.call('CLIENT', 'KILL', 'USER', 'rs-app');
  await waitFor('commands to succeed again', async () => (await app.set('k', 'again').then(() => true, () => false)), 10_000, 50);
  t.pass('still running on the last good credentials');
  write(NEW);

  // everything an operator or an app can read
  await app.config('SET', 'slowlog-log-slower-than', '0');
  await app.set('slow', 'x');
  t.match(String(await app.info('ringside')), /node_tls:no\r\nnode_control_user:rs-admin\r\nnode_data_user:rs-app\r\nclient_auth:no\r\ntls_listener:no/, 'INFO ringside says how the nodes are reached, by user name');
  const shown: Array<[string, string]> = [
    ['the sidecar\'s log', sc.output!()],
    ['INFO everything', String(await app.info('everything'))],
    ['CONFIG GET *', JSON.stringify(await app.config('GET', '*'))],
    ['CLIENT LIST', String(await app.client('LIST'))],
    ['SLOWLOG GET', JSON.stringify(await app.call('SLOWLOG', 'GET', '100'))],
    ['/metrics', await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()],
  ];
  const status = await run(process.execPath, [BIN, 'status', '--seeds', c.seeds, '--json', '--auth-file', file], { cwd: ROOT });
  shown.push(['ringside status --json', status.stdout + status.stderr]);
  const wrong = await run(process.execPath, [BIN, 'status', '--seeds', c.seeds], { cwd: ROOT, env: { ...process.env, RINGSIDE_NODE_USER: 'rs-admin', RINGSIDE_NODE_PASSWORD: 'wrong-Secret-99' } }).catch(
    (e: { stdout: string; stderr: string }) => e,
  );
  shown.push(['ringside status with a wrong password', wrong.stdout + wrong.stderr]);
  t.match(wrong.stderr, /refused the control credentials of user "rs-admin"/, 'a wrong password is named as such');
  t.match(JSON.parse(status.stdout), { epoch: Number }, 'status --json works with the credentials file');
  for (const [where, text] of shown) {
    t.ok(text.length > 0, `${where}: read`);
    for (const secret of [ADMIN.password, OLD, NEW, 'wrong-Secret-99']) t.notOk(text.includes(secret), `${where}: no secret`);
  }
});

t.test('ringside users apply: the data password rotated on masters and replicas in three steps, no request refused', async (t) => {
  const c = await startCluster(t, { masters: 2, replicasPerMaster: 1, timing, credentials: { control: ADMIN, data: { user: 'rs-app', password: OLD } } });
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-users-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'auth.json');
  const write = (pw: string): void => writeFileSync(file, JSON.stringify({ control: ADMIN, data: { user: 'rs-app', password: pw } }), { mode: 0o600 });
  write(OLD);
  const sc = await childSidecar(t, c, 'users', ['--auth-file', file, '--log-level', 'info']);
  const app = new Redis({ port: sc.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  app.on('error', () => {});
  t.teardown(() => app.disconnect());
  const servers = c.shards.flatMap((s) => [s.master.address, ...s.replicas.map((r) => r.address)]);
  /** which of the passwords each server takes for rs-app */
  const accepted = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const a of servers)
      for (const [name, pw] of [['old', OLD], ['new', NEW]] as const) {
        const [host, port] = a.split(':');
        const probe = new Redis({ host, port: Number(port), username: 'rs-app', password: pw, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => {});
        const ok = await probe.connect().then(() => probe.ping()).then((r) => r === 'PONG', () => false);
        probe.disconnect();
        if (ok) out.push(name);
      }
    return [...new Set(out)].sort();
  };
  const users = (extra: string[] = []) =>
    run(process.execPath, [BIN, 'users', 'apply', '--seeds', c.seeds, '--auth-file', file, ...extra], { cwd: ROOT });
  t.same(await accepted(), ['old'], 'before: the old password');
  write(NEW);
  const step1 = await users();
  t.match(step1.stdout, /data user "rs-app" set on 4 server\(s\); the passwords it had are kept/, 'step 1');
  t.same(await accepted(), ['new', 'old'], 'every server, replicas too, takes both');
  t.equal(await app.set('u', '1'), 'OK', 'traffic flows on the old connections');
  sc.child!.kill('SIGHUP');
  await waitFor('the reload', () => /node-credentials-reloaded/.test(sc.output!()), 10_000);
  const step3 = await users(['--drop-other-passwords']);
  t.match(step3.stdout, /its only password is the one configured now/, 'step 3');
  t.same(await accepted(), ['new'], 'the old password is gone everywhere');
  for (const m of [...c.masters().values()]) await m.call('CLIENT', 'KILL', 'USER', 'rs-app');
  await waitFor('commands to succeed on new connections', async () => (await app.set('u', '2').then(() => true, () => false)), 10_000, 50);
  t.equal(await app.get('u'), '2', 'the sidecar works on the new password');
  t.match(await app.eval("return redis.call('get', '__clu'..'ster__:config')", 0).catch((e: Error) => e.message), /can't access|NOPERM/, 'the user\'s rules are intact');
  const bad = await run(process.execPath, [BIN, 'users', 'apply', '--seeds', c.seeds], { cwd: ROOT }).catch((e: { stderr: string; code: number }) => e);
  t.match((bad as { stderr: string }).stderr, /no data user of its own is configured/, 'without a data user: a clear refusal');
});

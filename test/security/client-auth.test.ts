/**
 * Passwords asked of the sidecar's own clients (issue 22): AUTH and HELLO ... AUTH, compared
 * reply for reply with a real redis-server configured alike (requirepass and an ACL user), a
 * real client library authenticating, RESET, a live change of the passwords, and protected mode
 * accepting a non-loopback --bind once passwords are asked.
 */
import t from 'tap';
import Redis from 'ioredis';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setLogSink } from '../../src/observe/log';
import { RedisProcess } from '../../src/embedded/redis-process';
import { parseOptions } from '../../src/cli/args';
import { SERVE_OPTIONS, sidecarConfig } from '../../src/cli/serve';
import { parseClientAuth } from '../../src/proxy/client-auth';
import { startCluster } from '../helpers/cluster';
import { rawTo, run, startSidecar } from '../helpers/sidecar';

setLogSink(() => {});

const users = { default: ['top-Secret-1'], alice: ['alice-Pw-2'], bob: ['bob-Old-3', 'bob-New-4'] };

t.test('AUTH and HELLO AUTH answer as a redis-server with the same passwords does', async (t) => {
  const cluster = await startCluster(t, { masters: 1, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster, { clientUsers: users });
  const redis = await RedisProcess.start({
    config: ['requirepass "top-Secret-1"', 'user alice on >alice-Pw-2 ~* &* +@all', 'user bob on >bob-Old-3 >bob-New-4 ~* &* +@all'],
    auth: { password: 'top-Secret-1' },
  });
  t.teardown(() => redis.stop({ removeDir: true }));
  const script: string[][] = [
    ['GET', 'k'],
    ['PING'],
    ['NOSUCHCOMMAND', 'x'],
    ['HELLO', '2'],
    ['HELLO', '2', 'AUTH', 'alice', 'wrong'],
    ['AUTH', 'wrong'],
    ['AUTH', 'alice', 'wrong'],
    ['AUTH', 'nobody', 'alice-Pw-2'],
    ['SET', 'k', 'v'],
    ['AUTH', 'top-Secret-1'],
    ['SET', 'k', 'v'],
    ['GET', 'k'],
    ['AUTH', 'bob', 'bob-Old-3'],
    ['AUTH', 'bob', 'bob-New-4'],
    ['AUTH', 'alice', 'wrong'],
    ['GET', 'k'],
    ['RESET'],
    ['GET', 'k'],
    ['AUTH', 'a', 'b', 'c'],
  ];
  const viaSidecar = await run(await rawTo(t, sc.address), ...script);
  const direct = await run(await rawTo(t, redis.address), ...script);
  const strip = (r: unknown): unknown => (typeof r === 'string' ? r.replace(/, with args beginning with: .*$/, '') : r);
  script.forEach((cmd, i) => t.same(strip(viaSidecar[i]), strip(direct[i]), `${cmd.join(' ')} -> ${JSON.stringify(direct[i])}`));
  // HELLO with AUTH (replies differ in their server fields: compare the outcome)
  const c = await rawTo(t, sc.address);
  const [hello] = await run(c, ['HELLO', '2', 'AUTH', 'alice', 'alice-Pw-2', 'SETNAME', 'app1']);
  t.ok(Array.isArray(hello), 'HELLO 2 AUTH alice: the server map');
  const [info] = await run(c, ['CLIENT', 'INFO']);
  t.match(String(info), /name=app1 .*user=alice /, 'CLIENT INFO names the user and the name');
});

t.test('a client library authenticates; a change of passwords keeps authenticated clients', async (t) => {
  const cluster = await startCluster(t, { masters: 1, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster, { clientUsers: users });
  const opts = { host: '127.0.0.1', port: sc.options.port, maxRetriesPerRequest: 0, retryStrategy: () => null };
  const ok = new Redis({ ...opts, password: 'top-Secret-1' });
  const named = new Redis({ ...opts, username: 'alice', password: 'alice-Pw-2' });
  const wrong = new Redis({ ...opts, password: 'nope' });
  const wrongErrors: string[] = [];
  wrong.on('error', (e: Error) => wrongErrors.push(e.message));
  for (const c of [ok, named, wrong]) {
    c.on('error', () => {});
    t.teardown(() => c.disconnect());
  }
  t.equal(await ok.set('x', '1'), 'OK', 'ioredis with requirepass');
  t.equal(await named.get('x'), '1', 'ioredis with a user');
  t.notOk(await wrong.get('x').then(() => true, () => false), 'a wrong password gets no reply');
  t.match(wrongErrors.join(), /WRONGPASS/, 'the client is told WRONGPASS');
  sc.clientAuth.set({ default: ['rotated-5'] });
  t.equal(await ok.get('x'), '1', 'an authenticated client stays so after the passwords change');
  const again = new Redis({ ...opts, password: 'top-Secret-1' });
  const againErrors: string[] = [];
  again.on('error', (e: Error) => againErrors.push(e.message));
  t.teardown(() => again.disconnect());
  t.notOk(await again.get('x').then(() => true, () => false), 'the old password no longer opens a new connection');
  t.match(againErrors.join(), /WRONGPASS/);
  const rotated = new Redis({ ...opts, password: 'rotated-5' });
  rotated.on('error', () => {});
  t.teardown(() => rotated.disconnect());
  t.equal(await rotated.get('x'), '1', 'the new one does');
  sc.clientAuth.set(null);
  const open = new Redis(opts);
  open.on('error', () => {});
  t.teardown(() => open.disconnect());
  t.equal(await open.get('x'), '1', 'no passwords: no AUTH needed, as before');
});

t.test('the client-auth file: forms and errors that quote no secret; protected mode accepts a bind with passwords', async (t) => {
  t.same(parseClientAuth(JSON.stringify({ requirepass: 'a', users: { bob: ['b', 'c'], eve: 'd' } }), 'f'), { default: ['a'], bob: ['b', 'c'], eve: ['d'] });
  for (const bad of [`{"requirepass": "secret-9"`, JSON.stringify({ requirepas: 'secret-9' }), JSON.stringify({ users: { 'a b': 'secret-9' } }), JSON.stringify({ users: { a: '' } })])
  {
    let err: Error | null = null;
    try {
      parseClientAuth(bad, 'auth.json');
    } catch (e) {
      err = e as Error;
    }
    t.ok(err?.name === 'ClientAuthError' && !err.message.includes('secret-9'), `refused without the secret: ${bad.replace('secret-9', '***')} (${err?.message})`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-cauth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'clients.json');
  writeFileSync(file, JSON.stringify({ requirepass: 'x' }), { mode: 0o600 });
  const cfg = sidecarConfig(parseOptions(['--seeds', '127.0.0.1:7000', '--bind', '0.0.0.0', '--client-auth-file', file], SERVE_OPTIONS, {}).options);
  t.equal(cfg.bind, '0.0.0.0', 'a non-loopback bind is accepted when clients must authenticate');
  t.same(cfg.clientUsers, { default: ['x'] });
  t.throws(() => sidecarConfig(parseOptions(['--seeds', '127.0.0.1:7000', '--bind', '0.0.0.0'], SERVE_OPTIONS, {}).options), /protected mode/, 'and refused without');
});

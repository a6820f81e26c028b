/**
 * Nodes that require credentials (issue 22): a cluster whose nodes have a password
 * (`requirepass`), and one with two ACL users, the control user and the data user that `create`
 * sets up. Real redis-servers, real sidecars (in this process, and `ringside serve` children for
 * wrong credentials and a SIGHUP rotation): create, serve, move-slots, fail-over after kill -9;
 * wrong credentials give errors that name the node and the user, never a hang, a crash or a vote.
 */
import t, { Test } from 'tap';
import Redis from 'ioredis';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setLogSink } from '../../src/observe/log';
import { NodeCredentials, nodeCredentials } from '../../src/cluster/credentials';
import { readCopy } from '../../src/cluster/store';
import { moveSlots } from '../../src/admin/move-slots';
import { slotOf } from '../../src/cluster/slot';
import { startCluster, Cluster } from '../failover/servers';
import { BIN, ROOT, childSidecar, inProcessSidecar, keyOn, logEvents, allAddresses, sleep, waitFor, roleOf } from '../failover/load';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

setLogSink(() => {});

const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };
const PASSWORD = 'req-Pass-7f3a';
const ADMIN = { user: 'rs-admin', password: 'adm-Secret-91c2' };
const APP = { user: 'rs-app', password: 'app-Secret-44d8' };

function sidecarClient(t: Test, port: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  c.on('error', () => {});
  t.teardown(() => c.disconnect());
  return c;
}

/** A raw connection to a node that authenticates as nobody. */
function anonymous(t: Test, address: string): Redis {
  const [host, port] = address.split(':');
  const c = new Redis({ host, port: Number(port), maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true, protocol: 2 } as never);
  c.on('error', () => {});
  t.teardown(() => c.disconnect());
  return c;
}

function authFile(t: Test, creds: NodeCredentials): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-auth-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'auth.json');
  writeFileSync(file, JSON.stringify(creds), { mode: 0o600 });
  return file;
}

const errorOf = async (p: Promise<unknown>): Promise<string> => p.then((v) => `no error (${JSON.stringify(v)})`, (e: Error) => e.message);

/** kill -9 of shard 0's master: one failover event, the replica promoted, writes resume through the sidecar. */
async function failOver(t: Test, c: Cluster, app: Redis): Promise<void> {
  const victim = c.shards[0]!;
  const from = victim.master.address;
  const to = victim.replicas[0]!.address;
  const key = keyOn(c.config, from, 'fo');
  t.equal(await app.set(key, 'before'), 'OK', 'a write to the shard before the kill');
  await victim.master.kill('SIGKILL');
  const node = Object.keys(c.config.nodes).find((n) => c.config.nodes[n]!.master === from)!;
  await waitFor(`a failover event for node ${node}`, async () => (await logEvents(c, allAddresses(c).filter((a) => a !== from), ['failover'])).some((e) => e.node === node), 30_000);
  t.equal((await roleOf(c.client(to))).role, 'master', 'the replica was promoted');
  await waitFor('writes to the shard to resume', async () => (await app.set(key, 'after').then(() => true, () => false)), 20_000, 50);
  t.equal(await app.get(key), 'after', 'and read back');
}

/** Slots 0..3 moved to the last node with their keys. */
async function moveSome(t: Test, c: Cluster, app: Redis): Promise<void> {
  const keys: string[] = [];
  for (let i = 0; keys.length < 20; i++) if (slotOf(`mv:${i}`) < 4) keys.push(`mv:${i}`);
  for (const k of keys) await app.set(k, k);
  const to = Object.keys(c.config.nodes).sort().at(-1)!;
  const r = await moveSlots({ seeds: c.seeds.split(','), slots: [0, 1, 2, 3], to });
  t.equal(r.config.slots.filter(([a, b, n]) => n === to && a <= 3 && b >= 0).length > 0, true, 'the configuration gives the slots to the target');
  const target = c.client(c.config.nodes[to]!.master);
  t.equal(await target.exists(...keys), keys.length, `the ${keys.length} keys are on the target`);
  await waitFor('the sidecar to route by the new configuration', async () => (await app.get(keys[0]!)) === keys[0], 10_000, 50);
  for (const k of keys) t.equal(await app.get(k), k, `${k} through the sidecar`);
}

t.test('nodes with a password (requirepass): create, serve, move-slots, fail-over after kill -9', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, credentials: { control: { password: PASSWORD } } });
  const anon = anonymous(t, c.shards[0]!.master.address);
  t.match(await errorOf(anon.get('x')), /NOAUTH/, 'the nodes refuse a client without the password');
  const replInfo = await c.client(c.shards[0]!.replicas[0]!.address).info('replication');
  t.match(replInfo, /master_link_status:up/, 'replication authenticated (masterauth set by create)');
  const sc = await inProcessSidecar(t, c, '1');
  const app = sidecarClient(t, sc.port);
  t.equal(await app.set('k', 'v'), 'OK');
  t.equal(await app.get('k'), 'v', 'the data path authenticates');
  t.same(await app.config('GET', 'requirepass'), ['requirepass', ''], 'CONFIG GET does not hand the nodes\' password to apps');
  t.same(await app.config('GET', 'masterauth'), ['masterauth', ''], 'nor the replication password');
  await moveSome(t, c, app);
  await failOver(t, c, app);
});

t.test('nodes with two ACL users: create sets up the data user; apps reach no metadata by any route', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, credentials: { control: ADMIN, data: APP } });
  for (const p of c.shards.flatMap((s) => [s.master, ...s.replicas])) {
    const rules = (await c.client(p.address).call('ACL', 'GETUSER', APP.user)) as unknown[];
    t.ok(Array.isArray(rules), `the data user exists on ${p.address}`);
  }
  const master = c.shards[0]!.master.address;
  t.match(await errorOf(anonymous(t, master).get('x')), /NOAUTH|WRONGPASS|disabled/, 'the default user is off');
  // the node's own ACL check over every beginning of the prefix: exactly the metadata is out of reach
  const prefix = '__cluster__:';
  const keys = ['', 'user:1', '__cluster__:config', '__cluster__:votes:a', '__cluster__:', '__cluster__:wait-fence'];
  for (let i = 0; i < prefix.length; i++) keys.push(prefix.slice(0, i), prefix.slice(0, i) + 'x', prefix.slice(0, i) + prefix[i] + 'tail');
  for (const k of keys) {
    const r = String(await c.client(master).call('ACL', 'DRYRUN', APP.user, 'GET', k));
    const allowed = !k.startsWith(prefix) || k === '__cluster__:wait-fence';
    t.equal(r === 'OK', allowed, `ACL DRYRUN GET ${JSON.stringify(k)}: ${allowed ? 'allowed' : 'refused'} (${r})`);
  }
  const sc = await inProcessSidecar(t, c, '1');
  const app = sidecarClient(t, sc.port);
  t.equal(await app.set('user:1', 'alice'), 'OK');
  t.equal(await app.get('user:1'), 'alice', 'app traffic flows as the data user');

  // every route to the metadata
  const refused: Array<[string, Promise<unknown>, RegExp]> = [
    ['GET of a metadata key', app.get('__cluster__:config'), /./],
    ['EVAL reading it by a built name', app.eval("return redis.call('get', '__clu'..'ster__:config')", 0), /can't access|NOPERM/],
    ['EVAL deleting a version', app.eval("return redis.call('del', '__clu'..'ster__:version')", 0), /can't access|NOPERM/],
    ['EVAL listing keys', app.eval("return redis.call('keys', '*')", 0), /can't run|NOPERM/],
    ['EVAL scanning', app.eval("return redis.call('scan', '0')", 0), /can't run|NOPERM/],
    ['EVAL RANDOMKEY', app.eval("return redis.call('randomkey')", 0), /can't run|NOPERM/],
    ['FLUSHALL in a script', app.eval("return redis.call('flushall')", 0), /can't run|NOPERM/],
    ['FLUSHDB in a script', app.eval("return redis.call('flushdb')", 0), /can't run|NOPERM/],
    ['SELECT in a script', app.eval("return redis.call('select', '1')", 0), /can't run|NOPERM/],
    ['SWAPDB in a script', app.eval("return redis.call('swapdb', '0', '1')", 0), /can't run|NOPERM/],
    ['CONFIG in a script', app.eval("return redis.call('config', 'set', 'maxmemory', '1')", 0), /can't run|NOPERM|not allowed from script/],
    ['DEBUG in a script', app.eval("return redis.call('debug', 'sleep', '0')", 0), /can't run|NOPERM|not allowed from script/],
    ['MIGRATE in a script', app.eval("return redis.call('migrate', '127.0.0.1', '1', '__clu'..'ster__:config', '0', '10')", 0), /can't run|NOPERM|can't access/],
    ['SORT ... BY a pattern', app.sort('{s}list', 'BY', '{s}w_*'), /denied|NOPERM/],
    ['SORT ... GET a pattern', app.sort('{s}list', 'GET', '{s}o_*'), /denied|NOPERM/],
  ];
  await app.rpush('{s}list', '3', '1', '2');
  for (const [what, p, re] of refused) t.match(await errorOf(p), re, `${what}: refused`);
  const lib = "#!lua name=sneaky\nredis.register_function('peek', function() return redis.call('get', '__clu'..'ster__:config') end)\nredis.register_function('wipe', function() return redis.call('del', '__clu'..'ster__:version') end)";
  t.equal(await app.call('FUNCTION', 'LOAD', lib), 'sneaky');
  t.match(await errorOf(app.call('FCALL', 'peek', '0')), /can't access|NOPERM/, 'FCALL reading metadata: refused by the node');
  t.match(await errorOf(app.call('FCALL', 'wipe', '0')), /can't access|NOPERM/, 'FCALL deleting metadata: refused by the node');

  // the sidecar's own answers keep working, in order with the client's writes
  const p = app.pipeline().set('a1', '1').set('a2', '2').dbsize().keys('*').scan('0', 'COUNT', '1000').randomkey().call('INFO', 'keyspace');
  const res = (await p.exec())!.map(([e, v]) => (e ? e.message : v));
  t.equal(res[2], 4, 'DBSIZE counts the writes pipelined before it, and no metadata');
  t.same((res[3] as string[]).sort(), ['a1', 'a2', 'user:1', '{s}list'].sort(), 'KEYS: user keys only');
  t.notOk(JSON.stringify(res[4]).includes('__cluster__'), 'SCAN hides the metadata');
  t.notOk(String(res[5]).startsWith('__cluster__'), 'RANDOMKEY never draws it');
  t.match(String(res[6]), /db0:keys=4,/, 'INFO keyspace counts user keys');
  t.equal(await app.wait(0, 100), 0, 'WAIT (its fence key is the data user\'s)');
  t.equal(await app.flushall(), 'OK', 'FLUSHALL through the sidecar');
  t.equal(await app.dbsize(), 0, 'empties the user keys');
  for (const s of c.shards) {
    const copy = await readCopy(c.client(s.master.address), s.master.address);
    t.ok(copy.ok, `master ${s.master.address} still holds a valid configuration`);
  }
  t.same(await app.config('GET', 'maxmemory-policy'), ['maxmemory-policy', 'noeviction'], 'CONFIG GET (the control user asks)');
  await moveSome(t, c, app);
  // a manual fail-over from the CLI, with the credentials from a file
  const file = authFile(t, { control: ADMIN, data: APP });
  const b = c.shards[1]!;
  const cli = await run(process.execPath, [BIN, 'failover', 'b', '--seeds', c.seeds, '--yes', '--auth-file', file], { cwd: ROOT }).catch((e: { stdout: string; stderr: string }) => e);
  t.equal((await roleOf(c.client(b.replicas[0]!.address))).role, 'master', `ringside failover b: the replica is master (${(cli.stdout + cli.stderr).trim().split('\n').at(-1)})`);
  const missing = await run(process.execPath, [BIN, 'status', '--seeds', c.seeds], { cwd: ROOT }).catch((e: { stdout: string; stderr: string }) => e);
  t.match(missing.stderr, /requires a password and none is configured|refused the control credentials/, 'status without credentials says so');
  await failOver(t, c, app);
});

t.test('wrong credentials: clear errors naming node and user, no hang, no crash, no vote against a healthy master', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing, credentials: { control: ADMIN, data: APP } });
  // a sidecar whose data password is wrong: app commands fail fast with a message that names node and user
  const wrongData = authFile(t, { control: ADMIN, data: { user: APP.user, password: 'not-it' } });
  const s1 = await childSidecar(t, c, 'wrong-data', ['--auth-file', wrongData, '--log-level', 'debug'], { waitToRoute: false });
  const app1 = sidecarClient(t, s1.port);
  await waitFor('the sidecar to have a configuration', async () => !/CLUSTERDOWN|no configuration/i.test(await errorOf(app1.get('x'))), 10_000, 50);
  const m = await errorOf(app1.get('x'));
  t.match(m, /^ERR node \w+ master \(127\.0\.0\.1:\d+\) refused the data credentials of user "rs-app": WRONGPASS/, `the app is told: ${m}`);
  const started = Date.now();
  t.match(await errorOf(app1.get('y')), /refused the data credentials/, 'and again, at once');
  t.ok(Date.now() - started < 3000, 'no hang');
  t.equal(await app1.ping(), 'PONG', 'the sidecar itself answers');

  // master c's control password changed (rotated on that node only): a sidecar with the old one
  // reaches a and b, and never votes against c, which is up
  const names = Object.keys(c.config.nodes).sort();
  const cNode = names[2]!;
  const cAddr = c.config.nodes[cNode]!.master;
  await c.client(cAddr).call('ACL', 'SETUSER', ADMIN.user, 'resetpass', '>rotated-elsewhere');
  const oldFile = authFile(t, { control: ADMIN, data: APP });
  const s2 = await childSidecar(t, c, 'stale-control', ['--auth-file', oldFile]);
  const app2 = sidecarClient(t, s2.port);
  t.equal(await app2.set(keyOn(c.config, c.config.nodes[names[0]!]!.master, 'k'), 'v'), 'OK', 'routes with the other masters\' confirmation');
  await sleep(6 * timing.downAfterMs);
  const votes = await c.client(c.config.nodes[names[0]!]!.master).hgetall(`__cluster__:votes:${cNode}`);
  t.same(votes, {}, `no vote against node ${cNode}, whose master refuses the credentials but is up`);
  t.equal((await logEvents(c, [c.config.nodes[names[0]!]!.master], ['failover'])).length, 0, 'no fail-over');
  t.match(s2.output!(), new RegExp(`node-credentials-refused.*${cAddr.replace(/\./g, '\\.')}.*rs-admin`), 'the log names the node and the user');
  t.equal(s2.child!.exitCode, null, 'the sidecar is still running');
  t.equal(s1.child!.exitCode, null, 'the sidecar with the wrong data password is still running');
  for (const out of [s2.output!(), s1.output!()]) {
    for (const secret of [ADMIN.password, APP.password, 'not-it']) t.notOk(out.includes(secret), 'no secret in the sidecar\'s output');
  }
});

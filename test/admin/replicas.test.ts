/**
 * add-replica and remove-replica (issue 24) on a cluster whose nodes require two ACL users: the
 * new server is checked, set up like create's servers (data user, replication credentials),
 * synced, and added by compare-and-set; the sidecar adopts it; a fail-over can promote it;
 * removal leaves the server running. Bad requests are refused before anything is touched.
 */
import t from 'tap';
import Redis from 'ioredis';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setLogSink } from '../../src/observe/log';
import { RedisProcess } from '../../src/embedded/redis-process';
import { authConfig } from '../../src/embedded/local-cluster';
import { readCopy } from '../../src/cluster/store';
import { addReplica, removeReplica } from '../../src/admin/replicas';
import { startCluster } from '../failover/servers';
import { BIN, ROOT, inProcessSidecar, keyOn, logEvents, roleOf, waitFor } from '../failover/load';

const logLines: string[] = [];
setLogSink((l) => void logLines.push(typeof l === 'string' ? l : JSON.stringify(l)));
const run = promisify(execFile);
const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };
const ADMIN = { user: 'rs-admin', password: 'adm-Repl-1' };
const APP = { user: 'rs-app', password: 'app-Repl-2' };

const errorOf = async (p: Promise<unknown>): Promise<string> => p.then(() => 'no error', (e: Error) => e.message);

t.test('add-replica: a checked, synced server joins node a; the sidecar adopts it; a fail-over can promote it', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, credentials: { control: ADMIN, data: APP } });
  const fresh = async (): Promise<RedisProcess> => {
    const p = await RedisProcess.start({ config: authConfig(ADMIN), auth: ADMIN });
    t.teardown(() => p.stop({ removeDir: true }));
    return p;
  };
  const extra = await fresh();
  const sc = await inProcessSidecar(t, c, '1');
  const app = new Redis({ port: sc.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  t.teardown(() => app.disconnect());
  const a = c.shards[0]!;
  const key = keyOn(c.config, a.master.address, 'r');
  await app.set(key, 'before');

  // refusals first: nothing may be touched
  const seeds = c.seeds.split(',');
  t.match(await errorOf(addReplica({ seeds, node: 'zz', address: extra.address })), /no node "zz"/, 'an unknown node');
  t.match(await errorOf(addReplica({ seeds, node: 'a', address: a.replicas[0]!.address })), /already in the configuration \(node a, replica\)/, 'a member already');
  const busy = await fresh();
  const bc = c.client(busy.address);
  await bc.set('x', '1');
  t.match(await errorOf(addReplica({ seeds, node: 'a', address: busy.address })), /holds 1 key\(s\), which REPLICAOF would replace/, 'a server with keys');
  t.equal((await roleOf(bc)).role, 'master', 'and it was left alone');

  // from the CLI, with the credentials from a file
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-repl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'auth.json');
  writeFileSync(file, JSON.stringify({ control: ADMIN, data: APP }), { mode: 0o600 });
  const out = await run(process.execPath, [BIN, 'add-replica', 'a', extra.address, '--seeds', c.seeds, '--auth-file', file], { cwd: ROOT });
  t.match(out.stdout, /node a: replica 127\.0\.0\.1:\d+ added \(epoch 2\)/, 'ringside add-replica');
  const copy = await readCopy(c.client(a.master.address), a.master.address);
  t.ok(copy.ok && copy.config.nodes.a!.replicas.includes(extra.address), 'the configuration lists it');
  t.match(await c.client(extra.address).info('replication'), /master_link_status:up/, 'it replicates');
  t.ok(Array.isArray(await c.client(extra.address).call('ACL', 'GETUSER', APP.user)), 'with the data user set up');
  t.equal(await c.client(extra.address).get(key), 'before', 'and the master\'s data');
  await waitFor('the sidecar to adopt epoch 2', () => sc.sidecar!.stats.epoch === 2);
  t.match((await logEvents(c, [a.master.address], ['replica-added']))[0], { node: 'a', replica: extra.address }, 'logged');

  // the original replica and the master die: the election can only pick the new replica
  await a.replicas[0]!.kill('SIGKILL');
  await a.master.kill('SIGKILL');
  await waitFor('a fail-over to the new replica', async () => (await roleOf(c.client(extra.address))).role === 'master', 30_000).catch((e: Error) => {
    t.comment(logLines.slice(-12).join('\n'));
    throw e;
  });
  await waitFor('writes to resume', async () => (await app.set(key, 'after').then(() => true, () => false)), 20_000, 50);
  t.equal(await c.client(extra.address).get(key), 'after', 'the new replica is node a\'s master now');
});

t.test('remove-replica: the replica leaves the configuration after a lease; the server keeps running', async (t) => {
  const c = await startCluster(t, { masters: 2, replicasPerMaster: 1, timing });
  const b = c.shards[1]!;
  const seeds = c.seeds.split(',');
  t.match(await errorOf(removeReplica({ seeds, node: 'b', address: b.master.address })), /is its master: fail over first/, 'not a master');
  const lines: string[] = [];
  const started = Date.now();
  const cfg = await removeReplica({ seeds, node: 'b', address: b.replicas[0]!.address, onProgress: (l) => lines.push(l) });
  t.ok(Date.now() - started >= timing.leaseMs, 'it waited a lease before saying it is done');
  t.same(cfg.nodes.b!.replicas, [], 'node b has no replica in the configuration');
  const copy = await readCopy(c.client(b.master.address), b.master.address);
  t.ok(copy.ok && copy.config.epoch === cfg.epoch && copy.config.nodes.b!.replicas.length === 0, 'on the masters');
  t.match(lines.join('\n'), /left running and replicating/, 'the operator is told what is left');
  t.equal((await roleOf(c.client(b.replicas[0]!.address))).role, 'slave', 'the server was not touched: still a replica');
});

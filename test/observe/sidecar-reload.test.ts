/**
 * Changing settings while running: Sidecar.reconfigure in process, and SIGHUP to a child
 * `ringside serve --config FILE` that re-reads its file without dropping a connection.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type Teardown } from '../helpers/cluster';
import { startSidecar, RawClient, resp, ownerOf } from '../proxy/helpers';
import { setLogSink } from '../../src/observe/log';
import { Child, freePort, get, until, type LogLine } from './sidecar-harness';

/** Captures the JSON log lines written while `t` runs. */
function captureLogs(t: Teardown): LogLine[] {
  const lines: LogLine[] = [];
  const prev = setLogSink((l) => lines.push(JSON.parse(l) as LogLine));
  t.teardown(() => void setLogSink(prev));
  return lines;
}

async function cmd(c: RawClient, ...args: string[]): Promise<unknown> {
  const n = c.replies.length;
  c.write(resp(...args));
  await c.waitReplies(n + 1);
  return c.replies[n];
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)\r?$`, 'm').exec(info)?.[1];
}

t.test('reconfigure applies live settings, warns about restart-only ones, and rejects bad values whole', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  const sidecar = await startSidecar(t, cluster, { failover: false, checkMs: 200, leaseMs: 2000 });
  const logs = captureLogs(t);
  const c = await RawClient.connect(t, sidecar.options.port);
  t.equal(await cmd(c, 'SET', 'rc:k', 'v'), 'OK');

  const res = sidecar.reconfigure({
    readFrom: 'replica',
    slowlogLogSlowerThan: 0,
    slowlogMaxLen: 5,
    outputLimit: 2 * 1024 * 1024,
    maxClients: 50,
    nodeTimeoutMs: 1234,
    checkMs: 150,
    leaseMs: 3000,
    port: sidecar.options.port + 1,
    seeds: ['127.0.0.1:1'],
    bind: '127.0.0.1',
  });
  t.same(Object.keys(res.applied).sort(), ['checkMs', 'leaseMs', 'maxClients', 'nodeTimeoutMs', 'outputLimit', 'readFrom', 'slowlogLogSlowerThan', 'slowlogMaxLen']);
  t.same(Object.keys(res.ignored).sort(), ['port', 'seeds'], 'port and seeds need a restart; bind is unchanged so not mentioned');
  t.equal(sidecar.options.readFrom, 'replica');
  t.equal(sidecar.options.maxClients, 50);
  t.equal(sidecar.options.outputLimit, 2 * 1024 * 1024);
  t.equal(sidecar.view.checkMs, 150, 'the view uses the new check interval');
  t.equal(sidecar.view.leaseMs, 3000, 'and the new lease');
  t.equal(sidecar.pool.connectionOptions('127.0.0.1:1').timeoutMs, 1234, 'new node connections get the new timeout');
  t.equal(await cmd(c, 'CONFIG', 'GET', 'maxclients').then((r) => (r as string[])[1]), '50', 'CONFIG GET maxclients through the open connection');
  const reconf = logs.filter((l) => l.event === 'reconfigured');
  t.equal(reconf.length, 1, 'one "reconfigured" line for the whole change');
  t.same((reconf[0]!.changes as Record<string, unknown>).readFrom, { from: 'master', to: 'replica' });
  const ignored = logs.filter((l) => l.event === 'reconfigure-ignored');
  t.same(ignored.map((l) => [l.level, l.setting]).sort(), [['warn', 'port'], ['warn', 'seeds']], 'a warning per restart-only setting');
  t.equal(sidecar.address.split(':')[1], String(sidecar.options.port), 'still listening where it was');

  // reads now go to the replica: the slow log (threshold 0) names the node each command went to
  const replicaOf = cluster.shards.find((s) => s.master.address === ownerOf(cluster.config, 'rc:k'))!.replicas[0]!.address;
  await until('the replica has the key', async () => (await cmd(c, 'GET', 'rc:k')) === 'v');
  const entries = (await cmd(c, 'SLOWLOG', 'GET', '1')) as unknown[][];
  t.same([(entries[0]![3] as string[]).join(' '), entries[0]![6]], ['GET rc:k', replicaOf], 'the GET went to the replica');

  // checkMs/leaseMs present as undefined: back to the configuration's timing
  const back = sidecar.reconfigure({ checkMs: undefined, leaseMs: null });
  t.same(Object.keys(back.applied).sort(), ['checkMs', 'leaseMs']);
  t.equal(sidecar.view.checkMs, cluster.config.timing.checkMs, 'the configuration\'s checkMs again');
  t.same(sidecar.reconfigure({ readFrom: 'replica', maxClients: 50 }), { applied: {}, ignored: {} }, 'the same values: nothing applied');

  // a bad value anywhere: nothing changes
  const n = logs.length;
  t.throws(() => sidecar.reconfigure({ readFrom: 'master', slowlogMaxLen: -1 }), /slowlogMaxLen/);
  t.throws(() => sidecar.reconfigure({ readFrom: 'nowhere' as 'master' }), /readFrom/);
  t.throws(() => sidecar.reconfigure({ maxClients: 1, logLevel: 'loud' }), /logLevel/);
  t.equal(sidecar.options.readFrom, 'replica', 'readFrom kept');
  t.equal(sidecar.options.maxClients, 50, 'maxClients kept');
  t.equal(sidecar.slowlog.maxLen, 5, 'slowlog max len kept');
  t.equal(logs.length, n, 'a rejected reconfigure logs nothing itself (the caller reports it)');

  // maxClients applies to new connections: with 1 open and maxClients 1, the next is refused
  sidecar.reconfigure({ maxClients: 1 });
  const extra = await RawClient.connect(t, sidecar.options.port);
  await extra.waitReplies(1);
  t.match((extra.replies[0] as Error).message, /max number of clients/, 'a connection over the new maxClients is refused');
  t.equal(await cmd(c, 'GET', 'rc:k'), 'v', 'the open connection keeps working');
});

t.test('SIGHUP reloads the config file without dropping connections; a broken file keeps the running settings', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringside-hup-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ringside.json');
  const port = await freePort();
  const base = { seeds: cluster.seeds.join(','), port, metricsPort: 0, checkMs: 200, leaseMs: 2000, failover: false };
  fs.writeFileSync(file, JSON.stringify({ ...base, readFrom: 'master', slowlogLogSlowerThan: 10000 }));
  // RINGSIDE_CONFIG, not --config: the environment way of naming the file works for reloads too
  const child = Child.start(t, ['serve'], { RINGSIDE_CONFIG: file, RINGSIDE_LOG_LEVEL: 'info' });
  const { metricsUrl } = await child.serveBanner();
  await until('ready', async () => (await get(`${metricsUrl}/readyz`)).status === 200);

  const c = await RawClient.connect(t, port);
  t.equal(await cmd(c, 'SET', 'hup:k', 'v1'), 'OK');
  t.same(await cmd(c, 'CONFIG', 'GET', 'slowlog-log-slower-than'), ['slowlog-log-slower-than', '10000'], 'threshold from the file');
  t.equal(infoField((await cmd(c, 'INFO', 'ringside')) as string, 'read_policy'), 'master');

  // change read-from and the slow-log threshold, and a restart-only setting
  fs.writeFileSync(file, JSON.stringify({ ...base, port: port + 1, readFrom: 'replica', slowlogLogSlowerThan: 0 }));
  let from = child.logs.length;
  child.proc.kill('SIGHUP');
  const reloaded = await child.waitLog('config-file-reloaded', (l) => l.event === 'config-file-reloaded', from);
  t.same((reloaded.changed as string[]).sort(), ['readFrom', 'slowlogLogSlowerThan']);
  t.same(reloaded.ignored, ['port']);
  const warn = child.logs.slice(from).find((l) => l.event === 'reconfigure-ignored');
  t.equal(warn?.level, 'warn', 'the port change is a warning');
  t.equal(warn?.setting, 'port');
  t.equal(child.exit, null, 'still running after SIGHUP');
  t.notOk(c.closed, 'the open connection was not dropped');
  t.same(await cmd(c, 'CONFIG', 'GET', 'slowlog-log-slower-than'), ['slowlog-log-slower-than', '0'], 'the new threshold, through the same connection');
  t.equal(infoField((await cmd(c, 'INFO', 'ringside')) as string, 'read_policy'), 'replica', 'the new read policy');
  const replica = cluster.shards.find((s) => s.master.address === ownerOf(cluster.config, 'hup:k'))!.replicas[0]!.address;
  await until('the replica has the key', async () => (await cmd(c, 'GET', 'hup:k')) === 'v1');
  const [entry] = (await cmd(c, 'SLOWLOG', 'GET', '1')) as unknown[][];
  t.same([(entry![3] as string[]).join(' '), entry![6]], ['GET hup:k', replica], 'a GET now goes to the replica (and is in the slow log)');
  t.equal(await cmd(c, 'SET', 'hup:k', 'v2'), 'OK', 'writes still go to the master');

  // a file that is not JSON: an error line, the running settings stay
  fs.writeFileSync(file, '{ "readFrom": "master", ');
  from = child.logs.length;
  child.proc.kill('SIGHUP');
  const failed = await child.waitLog('config-file-reload-failed', (l) => l.event === 'config-file-reload-failed', from);
  t.equal(failed.level, 'error');
  t.match(failed.error, /cannot read config file .*ringside\.json/, `says what is wrong: ${failed.error}`);
  t.equal(failed.file, file);
  t.same(await cmd(c, 'CONFIG', 'GET', 'slowlog-log-slower-than'), ['slowlog-log-slower-than', '0'], 'threshold kept');
  t.equal(infoField((await cmd(c, 'INFO', 'ringside')) as string, 'read_policy'), 'replica', 'read policy kept');

  // valid JSON with a bad value, or an unknown key: the same
  for (const [bad, re] of [
    [{ ...base, readFrom: 'nowhere', slowlogLogSlowerThan: 5 }, /read-from/],
    [{ ...base, readFrom: 'master', slowlogLogSlowerThan: 5, logLevl: 'debug' }, /unknown setting "logLevl"/],
  ] as const) {
    fs.writeFileSync(file, JSON.stringify(bad));
    from = child.logs.length;
    child.proc.kill('SIGHUP');
    const f = await child.waitLog('config-file-reload-failed', (l) => l.event === 'config-file-reload-failed', from);
    t.match(f.error, re, `rejected: ${f.error}`);
    t.notOk(child.logs.slice(from).some((l) => l.event === 'reconfigured'), 'nothing applied');
    t.same(await cmd(c, 'CONFIG', 'GET', 'slowlog-log-slower-than'), ['slowlog-log-slower-than', '0'], 'threshold kept');
  }
  t.equal(infoField((await cmd(c, 'INFO', 'ringside')) as string, 'read_policy'), 'replica', 'read policy kept');
  t.notOk(c.closed, 'the connection survived every reload');
  t.equal(child.exit, null, 'and so did the process');
  t.same(child.otherStderr, [], 'every stderr line is JSON');

  child.proc.kill('SIGTERM');
  t.same(await child.exited, { code: 0, signal: null }, 'SIGTERM: exit 0');
});

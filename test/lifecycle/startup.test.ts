/**
 * Start-up through the real binary: `ringside serve --seeds` needs one reachable seed; with none
 * it logs a clear error and retries (it does not exit), then routes once a seed answers.
 */
import t from 'tap';
import Redis from 'ioredis';
import { freePort } from '../../src/embedded/redis-process';
import { startCluster } from '../helpers/cluster';
import { keysPerMaster } from '../helpers/sidecar';
import { LIFECYCLE_TIMING, logLines, ringsideProcess, until } from './helpers';

const SERVE = ['--port', '0', '--metrics-port', 'off', '--no-failover', '--check-ms', '200', '--lease-ms', '600'];

function clientTo(t: { teardown(fn: () => unknown): void }, port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => undefined);
  t.teardown(() => c.disconnect());
  return c;
}

async function listeningPort(out: () => string): Promise<number> {
  await until('the listening line', () => /listening on 127\.0\.0\.1:\d+/.test(out()));
  return Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out())![1]);
}

async function setWorks(c: Redis, key: string): Promise<boolean> {
  try {
    return (await c.set(key, 'v')) === 'OK';
  } catch {
    return false;
  }
}

t.test('serve --seeds <unreachable>,<reachable> routes', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const dead = `127.0.0.1:${await freePort()}`;
  const p = ringsideProcess(t, ['serve', '--seeds', `${dead},${cluster.seeds[1]}`, ...SERVE]);
  const c = clientTo(t, await listeningPort(p.out));
  const keys = [...keysPerMaster(cluster.config, 's', 1).values()].map((l) => l[0]!);
  await until('the sidecar routes', () => setWorks(c, keys[0]!));
  for (const k of keys) {
    t.equal(await c.set(k, `v-${k}`), 'OK');
    t.equal(await c.get(k), `v-${k}`, `${k} routed`);
  }
  t.notOk(logLines(p.err()).some((l) => l.event === 'no-seed-reachable'), 'one reachable seed is enough');
  p.child.kill('SIGTERM');
  // bounded: a stop that hangs is reported here, not as the runner's timeout
  const code = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r(`no exit within 15 s; stderr tail: ${p.err().slice(-500)}`), 15_000).unref())]);
  t.equal(code, 0, 'graceful stop');
});

t.test('serve with no reachable seed logs a clear error, retries, and routes once a seed is back', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const [a, b] = cluster.shards;
  await a.master.kill('SIGKILL'); // refuses connections
  b.master.pause(); // accepts, never answers
  const p = ringsideProcess(t, ['serve', '--seeds', `${a.master.address},${b.master.address}`, ...SERVE]);
  const c = clientTo(t, await listeningPort(p.out));
  await until('two start-up attempts have failed', () => logLines(p.err()).filter((l) => l.event === 'no-seed-reachable').length >= 2);
  const line = logLines(p.err()).find((l) => l.event === 'no-seed-reachable')!;
  t.match(line, { level: 'error', seeds: [a.master.address, b.master.address] });
  const why = line.why as Record<string, string>;
  t.match(why[a.master.address], /ECONNREFUSED|Connection is closed|unreachable/, 'why, per seed (refused)');
  t.match(why[b.master.address], /unreachable/, 'why, per seed (no answer)');
  t.equal(p.child.exitCode, null, 'still running: a retry loop, not an exit');
  const kb = keysPerMaster(cluster.config, 'n', 1).get(b.master.address)![0]!;
  await t.rejects(c.get(kb), /^CLUSTERDOWN ringside: no cluster configuration loaded yet/, 'the data path answers meanwhile');

  b.master.resume();
  await until('the sidecar routes once b answers', () => setWorks(c, kb), 20_000);
  const kc = keysPerMaster(cluster.config, 'n', 1).get(cluster.shards[2]!.master.address)![0]!;
  t.equal(await c.set(kc, 'c'), 'OK', 'b and c are a majority: it routes');
  t.equal(await c.get(kc), 'c');
  t.equal(p.child.exitCode, null);
});

/**
 * Check-in: every 20th round (src/cluster/check-in.ts) records the sidecar in `__cluster__:sidecars`
 * (score: time of the round) and `__cluster__:sidecars:info` (its JSON) on the masters; entries
 * older than three check-in periods (at least three leases) are trimmed from both. And `ringside status`, with one master down, lists the live sidecars with
 * the configuration version each has seen, in text and --json.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { SIDECARS_KEY } from '../../src/cluster/config';
import { SIDECARS_INFO_KEY } from '../../src/cluster/meta-keys';
import { checkInTrimMs } from '../../src/cluster/check-in';
import { giveSlots } from '../../src/admin/move-slots';
import { controlClient, writeCopy } from '../../src/cluster/store';
import { directClient, startCluster } from '../helpers/cluster';
import { LIFECYCLE_TIMING, lifecycleSidecar, stored, until } from './helpers';

const BIN = resolve(__dirname, '../../../bin/ringside.js');

function ringside(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

t.test('a sidecar checks in on every master at its first round and every 20th; stale entries are trimmed from both keys', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const startedAt = Date.now();
  const sc = await lifecycleSidecar(t, cluster);
  await until('a few rounds', () => sc.stats.configChecks >= 3);
  const id = sc.options.id;
  const masters = cluster.seeds.map((m) => directClient(t, m));
  for (const m of masters) {
    const score = Number(await m.zscore(SIDECARS_KEY, id));
    t.ok(score >= startedAt, 'checked in since the sidecar started');
    const info = JSON.parse((await m.hget(SIDECARS_INFO_KEY, id)) ?? 'null');
    t.match(info, { id, version: sc.stats.version, epoch: 1 });
    t.ok(info.time >= startedAt);
    t.equal(info.addr, sc.address, 'the address apps reach it on');
  }
  // a sidecar last seen four check-in periods ago: gone from both keys after the next check-in
  const old = Date.now() - 4 * checkInTrimMs(LIFECYCLE_TIMING);
  for (const m of masters) {
    await m.zadd(SIDECARS_KEY, old, 'sc-gone');
    await m.hset(SIDECARS_INFO_KEY, 'sc-gone', JSON.stringify({ id: 'sc-gone', addr: '127.0.0.1:1', version: 'x', epoch: 1, time: old }));
  }
  await until('the stale entry is trimmed on every master', async () => (await Promise.all(masters.map((m) => m.zscore(SIDECARS_KEY, 'sc-gone')))).every((s) => s === null));
  for (const m of masters) {
    t.equal(await m.hexists(SIDECARS_INFO_KEY, 'sc-gone'), 0, 'its info is trimmed too');
    t.not(await m.zscore(SIDECARS_KEY, id), null, 'the live sidecar stays');
    t.equal(await m.hexists(SIDECARS_INFO_KEY, id), 1);
  }
});

t.test('a sidecar with a shorter local lease does not trim sidecars that follow the cluster lease', async (t) => {
  // the cluster's lease is 60 s: an entry from 10 s ago is live for everyone
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: { checkMs: 200, leaseMs: 60_000, downAfterMs: 300 } });
  const sc = await lifecycleSidecar(t, cluster); // local override: 600 ms lease
  const m = directClient(t, cluster.seeds[0]!);
  await m.zadd(SIDECARS_KEY, Date.now() - 10_000, 'sc-slow');
  // a check-in (which trims) after the entry went in
  const since = Date.now();
  await until('the sidecar checked in again', async () => Number(await m.zscore(SIDECARS_KEY, sc.options.id)) > since);
  t.not(await m.zscore(SIDECARS_KEY, 'sc-slow'), null, 'still listed');
});

t.test('status with one master down lists live sidecars and the version each has seen', async (t) => {
  // the cluster's lease is long, so sidecars seen within 3 x 60 s are live whatever this test's pace
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: { checkMs: 200, leaseMs: 60_000, downAfterMs: 300 } });
  const [a, b, c] = cluster.shards;
  const fresh = await lifecycleSidecar(t, cluster); // a round every 200 ms
  const slow = await lifecycleSidecar(t, cluster, { checkMs: 60_000, leaseMs: 120_000 }); // checks in at start, then not for a minute
  await until('both checked in', () => fresh.stats.configChecks >= 1 && slow.stats.configChecks >= 1);
  const v1 = stored(cluster.config).version;
  await b.master.kill('SIGKILL');
  // epoch 2 on the two masters still up: the fresh sidecar sees it, the slow one has not looked yet
  const cfg2 = giveSlots(cluster.config, [0], 'c');
  const v2 = stored(cfg2).version;
  for (const s of [a, c]) {
    const ctl = controlClient(s.master.address);
    t.teardown(() => ctl.disconnect());
    t.equal(await writeCopy(ctl, cfg2), true);
  }
  const ma = directClient(t, a.master.address);
  await until('the fresh sidecar checked in with epoch 2', async () => JSON.parse((await ma.hget(SIDECARS_INFO_KEY, fresh.options.id)) ?? '{}').epoch === 2);
  t.equal(slow.stats.version, v1);

  const text = await ringside(['status', '--seeds', cluster.seeds.join(',')]);
  t.equal(text.code, 0);
  t.match(text.stdout, /^epoch 2 /m);
  t.match(text.stdout, new RegExp(`master\\s+${b.master.address}\\s+UNREACHABLE`));
  t.match(text.stdout, /sidecars: 2 live/);
  t.match(text.stdout, new RegExp(`${fresh.options.id}\\s+\\S+\\s+version ${v2}\\s+epoch 2\\s`));
  t.match(text.stdout, new RegExp(`${slow.options.id}\\s+\\S+\\s+version ${v1}\\s+epoch 1\\s`));

  const json = await ringside(['status', '--seeds', cluster.seeds.join(','), '--json']);
  t.equal(json.code, 0);
  const s = JSON.parse(json.stdout);
  t.equal(s.epoch, 2);
  t.match(s.nodes[1].master, { address: b.master.address, reachable: false });
  const live = new Map<string, { version: string; epoch: number }>(s.sidecars.live.map((x: { id: string; version: string; epoch: number }) => [x.id, x]));
  t.match(live.get(fresh.options.id), { version: v2, epoch: 2 });
  t.match(live.get(slow.options.id), { version: v1, epoch: 1 });
  t.ok(s.warnings.some((w: string) => w.includes(`${b.master.address} is unreachable`)));
});

import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { SIDECARS_KEY, VERSION_KEY, ClusterConfig } from '../../src/cluster/config';
import { controlClient, writeCopy } from '../../src/cluster/store';
import { SIDECARS_INFO_KEY } from '../../src/cluster/meta-keys';
import { directClient, startCluster } from '../helpers/cluster';

const BIN = resolve(__dirname, '../../../bin/ringside.js');

function ringside(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

t.test('status reports every server, copies, migrations and live sidecars with one master down', async (t) => {
  // A long lease: sidecars seen within 3 x 60 s are live, so the test's own duration never matters.
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing: { checkMs: 200, leaseMs: 60_000, downAfterMs: 300 } });
  const [a, b, c] = cluster.shards as [(typeof cluster.shards)[0], (typeof cluster.shards)[0], (typeof cluster.shards)[0]];
  const now = Date.now();
  for (const s of [a, c]) {
    const m = directClient(t, s.master.address);
    await m.zadd(SIDECARS_KEY, now, 'sc-live', now - 600_000, 'sc-old');
    await m.hset(SIDECARS_INFO_KEY, 'sc-live', JSON.stringify({ id: 'sc-live', addr: '127.0.0.1:6390', version: '0.1.0', epoch: 2, time: now }));
  }
  await b.master.kill('SIGKILL');

  // Epoch 2 (slots 77-78 migrating from a to c) reaches the masters still up and their replicas;
  // b's replica, cut off from its master, keeps epoch 1.
  const epoch2: ClusterConfig = { ...cluster.config, epoch: 2, migrating: { '77': { from: 'a', to: 'c' }, '78': { from: 'a', to: 'c' } } };
  for (const s of [a, c]) {
    const ctl = controlClient(s.master.address);
    t.teardown(() => ctl.disconnect());
    t.equal(await writeCopy(ctl, epoch2), true);
    await ctl.call('WAIT', '1', '5000');
  }
  // c's replica gets a damaged copy: its version no longer matches the bytes.
  const cr = directClient(t, c.replicas[0]!.address);
  await cr.config('SET', 'replica-read-only', 'no');
  await cr.set(VERSION_KEY, 'not-a-sha1');

  const text = await ringside(['status', '--seeds', cluster.seeds.join(',')]);
  t.equal(text.code, 0, 'exit 0: a configuration could be read');
  t.equal(text.stderr, '');
  const out = text.stdout;
  t.match(out, /^epoch 2 /m);
  t.match(out, /node a\s+slots 0-341/);
  t.match(out, new RegExp(`master\\s+${a.master.address}\\s+reachable\\s+role master\\s+offset \\d+`));
  t.match(out, new RegExp(`replica\\s+${a.replicas[0]!.address}\\s+reachable\\s+role replica of ${a.master.address} \\(link up\\)`));
  t.match(out, new RegExp(`master\\s+${b.master.address}\\s+UNREACHABLE\\s+\\(connect ECONNREFUSED`));
  t.match(out, new RegExp(`replica\\s+${b.replicas[0]!.address}\\s+reachable\\s+role replica of ${b.master.address} \\(link down\\)`));
  t.match(out, /slots 77-78\s+a -> c/);
  t.match(out, /switching: none/);
  t.match(out, new RegExp(`epoch 2: .*${a.master.address}`));
  t.match(out, new RegExp(`epoch 1: ${b.replicas[0]!.address}\\n`));
  t.match(out, new RegExp(`bad: ${c.replicas[0]!.address} \\(version not-a-sha1 is not the SHA1`));
  t.match(out, new RegExp(`unreachable: ${b.master.address}\\n`));
  t.match(out, /sidecars: 1 live \(seen within 180000 ms\), 1 stale/);
  t.match(out, /sc-live\s+127\.0\.0\.1:6390\s+version 0\.1\.0\s+epoch 2/);
  t.notMatch(out, /sc-old\s/);

  const json = await ringside(['status', '--seeds', cluster.seeds.join(','), '--json']);
  t.equal(json.code, 0);
  const s = JSON.parse(json.stdout);
  t.equal(s.epoch, 2);
  t.same(s.nodes.map((n: { name: string }) => n.name), ['a', 'b', 'c']);
  t.match(s.nodes[0], { slots: [[0, 341]], slotCount: 342, master: { address: a.master.address, reachable: true, role: 'master', configuredRole: 'master', epoch: 2, offset: Number } });
  t.match(s.nodes[0].replicas[0], { reachable: true, role: 'replica', configuredRole: 'replica', following: a.master.address, link: 'up' });
  t.match(s.nodes[1].master, { address: b.master.address, reachable: false, error: /ECONNREFUSED/, epoch: null });
  t.notOk('role' in s.nodes[1].master, 'no role for a server that does not answer');
  t.same(s.migrating, [{ first: 77, last: 78, from: 'a', to: 'c' }]);
  t.equal(s.switching, null);
  t.same(s.copies.byEpoch.map((e: { epoch: number }) => e.epoch), [2, 1]);
  t.same([...s.copies.byEpoch[0].addresses].sort(), [a.master.address, a.replicas[0]!.address, c.master.address].sort());
  t.same(s.copies.byEpoch[1].addresses, [b.replicas[0]!.address]);
  t.match(s.copies.bad, [{ address: c.replicas[0]!.address, reason: /not the SHA1/ }]);
  t.match(s.copies.unreachable, [{ address: b.master.address }]);
  t.same(s.sidecars.live.map((x: { id: string }) => x.id), ['sc-live']);
  t.match(s.sidecars.live[0], { addr: '127.0.0.1:6390', version: '0.1.0', epoch: 2 });
  t.equal(s.sidecars.stale, 1);
  t.ok(s.warnings.some((w: string) => w.includes(`${b.master.address} is unreachable`)));
});

t.test('status exits 1 with a clear message when no seed is reachable', async (t) => {
  const cluster = await startCluster(t, { masters: 2, replicasPerMaster: 0 });
  for (const p of cluster.processes) await p.kill('SIGKILL');
  const r = await ringside(['status', '--seeds', cluster.seeds.join(',')]);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, /no seed is reachable: .*ECONNREFUSED/);
});

t.test('status without --seeds is a usage error', async (t) => {
  const r = await ringside(['status']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--seeds is required/);
});

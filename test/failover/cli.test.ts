import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ClusterConfig, ERRORS_KEY, LOG_KEY, masters as mastersOf } from '../../src/cluster/config';
import { newest, readCopy, writeEverywhere } from '../../src/cluster/store';
import { parseReplication } from '../../src/failover/ops';
import { Cluster, startCluster } from './servers';

const BIN = join(__dirname, '..', '..', '..', 'bin', 'ringside.js');
const timing = { checkMs: 100, leaseMs: 300, downAfterMs: 200 };

function ringside(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end();
  });
}

async function newestConfig(c: Cluster): Promise<ClusterConfig> {
  const addrs = c.shards.flatMap((s) => [s.master.address, ...s.replicas.map((r) => r.address)]);
  const copies = await Promise.all(addrs.map((a) => readCopy(c.client(a), a)));
  return newest(copies)!.config;
}

t.test('ringside failover switches a node in manual mode and prints every step', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, failover: 'manual' });
  const a = c.shards[0]!;
  await c.client(a.master.address).set('k', 'v');
  const res = await ringside(['failover', 'a', '--seeds', c.shards[1]!.master.address, '--yes', '--margin-ms', '50']);
  t.equal(res.code, 0, res.stderr);
  for (const step of ['lock', 'config', 'offsets', 'chosen', 'hint', 'wait', 'fence', 'promote', 'final', 'log', 'unlock'])
    t.match(res.stdout, new RegExp(`\\] ${step} `), `prints the ${step} step`);
  t.match(res.stdout, `node a is now served by ${a.replicas[0]!.address} (was ${a.master.address}); configuration epoch ${c.config.epoch + 2}`);
  const cfg = await newestConfig(c);
  t.equal(cfg.nodes.a!.master, a.replicas[0]!.address);
  t.equal(parseReplication(await c.client(a.replicas[0]!.address).info('replication')).role, 'master');
  t.equal(await c.client(a.replicas[0]!.address).get('k'), 'v');

  const log = await ringside(['log', '--seeds', c.seeds, '--json']);
  t.equal(log.code, 0, log.stderr);
  const events = JSON.parse(log.stdout) as Array<Record<string, unknown>>;
  t.match(events[0], { event: 'failover', node: 'a', from: a.master.address, to: a.replicas[0]!.address, reason: 'manual', by: /^cli:/ });
  t.equal(events.filter((e) => e.event === 'failover').length, 1, 'one entry, though every master holds it');
  const text = await ringside(['log', '--seeds', c.seeds, '--count', '1']);
  t.equal(text.stdout.trim().split('\n').length, 1);
  t.match(text.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}failover +node=a from=\S+ to=\S+/);
});

t.test('ringside failover refuses typos and unconfirmed runs without touching anything', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const cases: Array<[string[], RegExp]> = [
    [['failover', 'a', '--seeds', c.seeds], /refusing to switch node a .* without --yes/],
    [['failover', 'zz', '--seeds', c.seeds, '--yes'], /no node "zz"; the nodes are a, b, c/],
    [['failover', 'a', '--seeds', c.seeds, '--yes', '--to', c.shards[1]!.replicas[0]!.address], /is not a replica of node a/],
    [['failover', '--seeds', c.seeds, '--yes'], /name exactly one node/],
    [['failover', 'a', '--yes'], /--seeds is required/],
  ];
  for (const [args, message] of cases) {
    const res = await ringside(args);
    t.equal(res.code, 2, args.join(' '));
    t.match(res.stderr, message);
  }
  t.equal((await newestConfig(c)).epoch, c.config.epoch, 'nothing written');
});

t.test('ringside failover settles a switch a dead leader left for that node', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const spec = c.config.nodes.b!;
  const hinted: ClusterConfig = { ...c.config, epoch: c.config.epoch + 1, switching: { node: 'b', from: spec.master, to: spec.replicas[0]!, since: Date.now(), by: 'gone' } };
  await writeEverywhere(c.masters(), hinted);
  const res = await ringside(['failover', 'b', '--seeds', c.seeds, '--yes', '--margin-ms', '50']);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /settling node b/);
  t.match(res.stdout, `node b is now served by ${spec.replicas[0]}`);
  const cfg = await newestConfig(c);
  t.equal(cfg.switching, null);
  t.equal(cfg.epoch, hinted.epoch + 1);
});

t.test('ringside errors merges the reports of every master, newest first, without duplicates', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const [m0, m1, m2] = mastersOf(c.config).map((m) => c.client(m));
  // the same report lands on every other master; lists are newest first (LPUSH)
  await m1!.lpush(ERRORS_KEY, 'a:1700000000:s1', 'a:1700000005:s2');
  await m2!.lpush(ERRORS_KEY, 'a:1700000000:s1', 'a:1700000005:s2', 'b:1700000009:s1');
  await m0!.lpush(ERRORS_KEY, 'b:1700000009:s1', 'c:1700000001:s3');
  const res = await ringside(['errors', '--seeds', c.seeds, '--json']);
  t.equal(res.code, 0, res.stderr);
  t.same(
    (JSON.parse(res.stdout) as Array<{ raw: string }>).map((e) => e.raw),
    ['b:1700000009:s1', 'a:1700000005:s2', 'c:1700000001:s3', 'a:1700000000:s1'],
  );
  t.match(JSON.parse(res.stdout)[0], { node: 'b', time: 1700000009, sidecar: 's1', iso: '2023-11-14T22:13:29.000Z' });
  const text = await ringside(['errors', '--seeds', c.seeds, '--count', '2']);
  t.equal(text.code, 0);
  t.same(text.stdout.trim().split('\n'), ['2023-11-14T22:13:29Z  node b      reported by s1', '2023-11-14T22:13:25Z  node a      reported by s2']);
  await Promise.all([m0, m1, m2].map((m) => m!.del(ERRORS_KEY)));
  t.equal((await ringside(['errors', '--seeds', c.seeds])).stdout, 'no failure reports\n');
});

t.test('ringside log keeps entries other writers shaped differently', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing });
  const m0 = c.client(mastersOf(c.config)[0]!);
  await m0.lpush(LOG_KEY, 'not json', JSON.stringify({ time: 1_800_000_000, type: 'migrate', slots: '0-9' }));
  const res = await ringside(['log', '--seeds', c.seeds, '--json']);
  const docs = JSON.parse(res.stdout) as Array<Record<string, unknown>>;
  t.match(docs[0], { type: 'migrate', slots: '0-9' }, 'unix seconds sort as such');
  t.same(docs[docs.length - 1], { raw: 'not json' }, 'an entry without a time sorts last');
});

import t from 'tap';
import { CONFIG_KEY, ClusterConfig, LOG_KEY, electionKey, parseConfig, votesKey } from '../../src/cluster/config';
import { newest, readCopy, writeEverywhere } from '../../src/cluster/store';
import { parseReplication, readLog } from '../../src/failover/ops';
import { LockNotTakenError, NoReplicaError, NotSwitchableError } from '../../src/failover/errors';
import {
  SwitchProgress,
  resumeSwitch,
  runSwitch,
} from '../../src/failover/switch';
import { Cluster, startCluster } from './servers';

const timing = { checkMs: 100, leaseMs: 300, downAfterMs: 200 };

async function newestConfig(c: Cluster, addresses: string[]): Promise<ClusterConfig> {
  const copies = await Promise.all(addresses.map((a) => readCopy(c.client(a), a)));
  return newest(copies)!.config;
}

async function role(c: Cluster, address: string) {
  return parseReplication(await c.client(address).info('replication'));
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.test('a switch promotes the replica holding the data, demotes the old master and bumps the epoch twice', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const a = c.shards[0]!;
  const old = a.master.address;
  const replica = a.replicas[0]!.address;
  for (let i = 0; i < 200; i++) await c.client(old).set(`k${i}`, `v${i}`);
  await c.client(old).hset(votesKey('a'), 's1', Date.now());
  const steps: SwitchProgress[] = [];
  const res = await runSwitch({
    config: c.config,
    node: 'a',
    by: 'test',
    masters: c.masters(),
    clientFor: c.client,
    onProgress: (p) => steps.push(p),
    marginMs: 50,
    reason: 'manual',
  });
  t.equal(res.outcome, 'switched');
  t.equal(res.to, replica);
  t.equal(res.from, old);
  t.equal(res.epoch, c.config.epoch + 2);
  t.same(
    [...new Set(steps.map((s) => s.step))],
    ['lock', 'config', 'offsets', 'chosen', 'hint', 'wait', 'fence', 'catch-up', 'promote', 'repoint', 'final', 'log', 'unlock'],
    'every step reported, in order',
  );

  t.equal((await role(c, replica)).role, 'master', 'the replica is master');
  for (let i = 0; i < 200; i++) t.equal(await c.client(replica).get(`k${i}`), `v${i}`, `k${i} is on the new master`);
  const oldRole = await role(c, old);
  t.equal(oldRole.role, 'slave', 'the old master is a replica');
  t.equal(oldRole.masterAddress, replica, 'of the new master');
  t.rejects(c.client(old).set('x', '1'), /READONLY/, 'the old master refuses writes');

  const newMasters = [replica, c.shards[1]!.master.address, c.shards[2]!.master.address];
  for (const m of newMasters) {
    const cfg = parseConfig((await c.client(m).get(CONFIG_KEY))!);
    t.equal(cfg.epoch, c.config.epoch + 2, `${m} holds epoch+2`);
    t.equal(cfg.switching, null);
    t.same(cfg.nodes.a, { master: replica, replicas: [old] });
    t.equal(await c.client(m).exists(electionKey('a')), 0, `lock released on ${m}`);
    t.equal(await c.client(m).exists(votesKey('a')), 0, `votes cleared on ${m}`);
    const log = (await c.client(m).lrange(LOG_KEY, 0, -1)).map((e) => JSON.parse(e) as { event: string });
    t.equal(log.filter((e) => e.event === 'failover').length, 1, `one failover logged on ${m}`);
    t.match(log[0], { event: 'failover', node: 'a', from: old, to: replica, by: 'test', epoch: 3, reason: 'manual', caughtUp: true });
  }
});

t.test('two leaders racing for the same node: one switch, one promotion', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const run = (by: string) =>
    runSwitch({ config: c.config, node: 'b', by, masters: c.masters(), clientFor: c.client, marginMs: 50 }).then(
      (r) => ({ ok: true as const, r }),
      (e: Error) => ({ ok: false as const, e }),
    );
  const results = await Promise.all([run('one'), run('two')]);
  const won = results.filter((r) => r.ok);
  const lost = results.filter((r) => !r.ok);
  t.equal(won.length, 1, 'exactly one leader');
  t.equal(lost.length, 1);
  if (!lost[0]!.ok) t.ok(lost[0]!.e instanceof LockNotTakenError || lost[0]!.e instanceof NotSwitchableError, lost[0]!.e.message);
  const b = c.shards[1]!;
  t.equal((await role(c, b.replicas[0]!.address)).role, 'master');
  t.equal((await role(c, b.master.address)).role, 'slave');
  const cfg = await newestConfig(c, [c.shards[0]!.master.address, b.replicas[0]!.address, c.shards[2]!.master.address]);
  t.equal(cfg.epoch, c.config.epoch + 2, 'the epoch moved twice, not four times');
  t.equal(cfg.nodes.b!.master, b.replicas[0]!.address);
  const { entries } = await readLog(new Map([[c.shards[0]!.master.address, c.client(c.shards[0]!.master.address)]]), 10);
  t.equal(entries.filter((e) => e.event === 'failover').length, 1, 'one failover logged');

  // A late second attempt on the old view finds nothing to do.
  await t.rejects(
    runSwitch({ config: c.config, node: 'b', by: 'late', masters: c.masters(), clientFor: c.client, marginMs: 50 }),
    NotSwitchableError,
  );
});

t.test('the replica with the highest offset is chosen when the master is dead, and the other replica follows it', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 2, timing });
  const a = c.shards[0]!;
  const [r1, r2] = a.replicas as [typeof a.replicas[0], typeof a.replicas[0]];
  // r1 stops following: it keeps an older offset.
  await c.client(r1.address).replicaof('127.0.0.1', 1);
  for (let i = 0; i < 100; i++) await c.client(a.master.address).set(`k${i}`, 'v');
  await waitFor('r2 to catch up', async () => (await role(c, r2.address)).offset >= (await role(c, a.master.address)).offset);
  a.master.kill();
  const res = await runSwitch({ config: c.config, node: 'a', by: 'test', masters: c.masters(), clientFor: c.client, marginMs: 50, callTimeoutMs: 500 });
  t.equal(res.to, r2.address, 'the replica with more data is promoted');
  t.equal((await role(c, r1.address)).masterAddress, r2.address, 'the other replica follows the new master');
  await waitFor('r1 to sync', async () => (await c.client(r1.address).get('k99')) === 'v');
  const cfg = await newestConfig(c, [r2.address]);
  t.same(cfg.nodes.a, { master: r2.address, replicas: [r1.address, a.master.address] });
});

t.test('--to promotes the named replica, and a non-replica is refused before anything happens', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 2, timing });
  const a = c.shards[0]!;
  await t.rejects(
    runSwitch({ config: c.config, node: 'a', to: c.shards[1]!.replicas[0]!.address, by: 'test', masters: c.masters(), clientFor: c.client }),
    NoReplicaError,
  );
  await t.rejects(runSwitch({ config: c.config, node: 'zz', by: 'test', masters: c.masters(), clientFor: c.client }), NotSwitchableError);
  const res = await runSwitch({ config: c.config, node: 'a', to: a.replicas[1]!.address, by: 'test', masters: c.masters(), clientFor: c.client, marginMs: 50 });
  t.equal(res.to, a.replicas[1]!.address);
  t.equal((await role(c, a.replicas[0]!.address)).masterAddress, a.replicas[1]!.address);
});

t.test('a lock held elsewhere on a majority stops the switch and releases what was taken', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const [m0, m1, m2] = c.shards.map((s) => s.master.address) as [string, string, string];
  await c.client(m0).set(electionKey('c'), 'someone-else', 'PX', 60_000);
  await c.client(m1).set(electionKey('c'), 'someone-else', 'PX', 60_000);
  await t.rejects(
    runSwitch({ config: c.config, node: 'c', by: 'test', masters: c.masters(), clientFor: c.client, marginMs: 50 }),
    LockNotTakenError,
  );
  t.equal(await c.client(m2).exists(electionKey('c')), 0, 'the copy it took is released');
  t.equal(await c.client(m0).get(electionKey('c')), 'someone-else', "the other leader's copies are untouched");
  t.equal((await newestConfig(c, [m0, m1, m2])).epoch, c.config.epoch, 'no configuration written');
  t.equal((await role(c, c.shards[2]!.replicas[0]!.address)).role, 'slave', 'nothing promoted');
});

async function leaveSwitching(c: Cluster, node: string, since: number): Promise<ClusterConfig> {
  const spec = c.config.nodes[node]!;
  const hinted: ClusterConfig = {
    ...c.config,
    epoch: c.config.epoch + 1,
    switching: { node, from: spec.master, to: spec.replicas[0]!, since, by: 'dead-leader' },
  };
  await writeEverywhere(c.masters(), hinted);
  return hinted;
}

t.test('a switch left midway with its replica still promotable is finished by the next leader', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const a = c.shards[0]!;
  await c.client(a.master.address).set('before', '1');
  const hinted = await leaveSwitching(c, 'a', Date.now() - 60_000);
  await waitFor('the replica to have the write', async () => (await c.client(a.replicas[0]!.address).get('before')) === '1');
  a.master.kill();
  const res = await resumeSwitch({ config: hinted, by: 'next', masters: c.masters(), clientFor: c.client, marginMs: 50, callTimeoutMs: 500 });
  t.equal(res.outcome, 'switched');
  t.equal(res.epoch, hinted.epoch + 1);
  t.equal((await role(c, a.replicas[0]!.address)).role, 'master');
  t.equal(await c.client(a.replicas[0]!.address).get('before'), '1');
  const cfg = await newestConfig(c, [a.replicas[0]!.address, c.shards[1]!.master.address]);
  t.equal(cfg.switching, null);
  t.equal(cfg.nodes.a!.master, a.replicas[0]!.address);
  t.match(res.event, { event: 'failover', resumed: true, by: 'next' });
});

t.test('a switch left after the promotion is completed without another wait', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const a = c.shards[1]!;
  const hinted = await leaveSwitching(c, 'b', Date.now() - 60_000);
  await c.client(a.replicas[0]!.address).replicaof('NO', 'ONE');
  const steps: string[] = [];
  const res = await resumeSwitch({ config: hinted, by: 'next', masters: c.masters(), clientFor: c.client, onProgress: (p) => steps.push(p.step) });
  t.equal(res.outcome, 'switched');
  t.notOk(steps.includes('wait'), 'no second lease wait');
  t.equal((await role(c, a.master.address)).masterAddress, a.replicas[0]!.address, 'the old master follows the new one');
});

t.test('a switch left with its replica gone is rolled back to the old master', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const s = c.shards[2]!;
  const hinted = await leaveSwitching(c, 'c', Date.now() - 60_000);
  s.replicas[0]!.kill();
  const res = await resumeSwitch({ config: hinted, by: 'next', masters: c.masters(), clientFor: c.client, callTimeoutMs: 500 });
  t.equal(res.outcome, 'rolled-back');
  const cfg = await newestConfig(c, c.shards.map((x) => x.master.address));
  t.equal(cfg.epoch, hinted.epoch + 1);
  t.equal(cfg.switching, null);
  t.same(cfg.nodes.c, c.config.nodes.c, 'the old master is kept');
  t.equal((await role(c, s.master.address)).role, 'master');
  t.match(JSON.parse((await c.client(s.master.address).lrange(LOG_KEY, 0, 0))[0]!), { event: 'failover-rolled-back', leader: 'dead-leader' });
});

t.test('a recent switch is left to its leader, and a new switch waits for it', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const hinted = await leaveSwitching(c, 'a', Date.now());
  await t.rejects(resumeSwitch({ config: hinted, by: 'next', masters: c.masters(), clientFor: c.client }), NotSwitchableError);
  await t.rejects(runSwitch({ config: c.config, node: 'b', by: 'other', masters: c.masters(), clientFor: c.client }), /under way/);
  t.equal((await newestConfig(c, c.shards.map((x) => x.master.address))).epoch, hinted.epoch, 'nothing written');
});

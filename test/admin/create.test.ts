import t from 'tap';
import { CONFIG_KEY, LOG_KEY, VERSION_KEY, configVersion, parseConfig } from '../../src/cluster/config';
import { createCluster, replicationInfo } from '../../src/admin/create';
import { AlreadyCreatedError, UnreachableNodeError } from '../../src/admin/errors';
import { RedisProcess, freePort } from '../../src/embedded/redis-process';
import { TEST_TIMING, directClient, startCluster } from '../helpers/cluster';

t.test('create writes the same configuration to every master and, by replication, every replica', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 2 });
  t.equal(cluster.config.epoch, 1);
  t.same(Object.keys(cluster.config.nodes).sort(), ['a', 'b', 'c']);
  t.same(cluster.config.timing, TEST_TIMING);
  t.same(cluster.seeds, cluster.shards.map((s) => s.master.address));
  let expectedText: string | null = null;
  for (const p of cluster.processes) {
    const c = directClient(t, p.address);
    const text = await c.get(CONFIG_KEY);
    t.ok(text, `${p.address} holds a configuration`);
    expectedText ??= text;
    t.equal(text, expectedText, `${p.address} holds the same bytes`);
    t.equal(await c.get(VERSION_KEY), configVersion(text!), `${p.address} holds the matching version`);
    t.same(parseConfig(text!), cluster.config);
  }
  for (const [i, s] of cluster.shards.entries()) {
    const name = ['a', 'b', 'c'][i]!;
    t.same(cluster.config.nodes[name], { master: s.master.address, replicas: s.replicas.map((r) => r.address) });
    const log = await directClient(t, s.master.address).lrange(LOG_KEY, 0, -1);
    t.equal(log.length, 1, 'one log line per master');
    t.match(JSON.parse(log[0]!), { event: 'create', epoch: 1, by: 'admin', time: Number });
  }
});

t.test('replicas follow their master after create', async (t) => {
  const cluster = await startCluster(t, { masters: 2, replicasPerMaster: 1 });
  for (const s of cluster.shards) {
    const m = directClient(t, s.master.address);
    const r = directClient(t, s.replicas[0]!.address);
    const info = await replicationInfo(r);
    t.equal(info.role, 'slave');
    t.equal(info.master_port, String(s.master.port));
    t.equal(info.master_link_status, 'up');
    t.equal((await replicationInfo(m)).role, 'master');
    await m.set('k', s.master.address);
    await m.call('WAIT', '1', '5000');
    t.equal(await r.get('k'), s.master.address, 'a write on the master reaches its replica');
  }
});

t.test('create refuses servers that already hold a configuration unless forced', async (t) => {
  const cluster = await startCluster(t, { masters: 2, replicasPerMaster: 0 });
  const shards = cluster.shards.map((s) => ({ master: s.master.address, replicas: [] }));
  await t.rejects(createCluster({ shards, timing: TEST_TIMING }), AlreadyCreatedError);
  await t.rejects(createCluster({ shards, timing: TEST_TIMING }), { message: /epoch 1.*--force/ });
  const c = directClient(t, cluster.seeds[0]!);
  t.equal(parseConfig((await c.get(CONFIG_KEY))!).epoch, 1, 'the refused create changed nothing');
  const forced = await createCluster({ shards, timing: TEST_TIMING, force: true });
  t.equal(forced.epoch, 2, 'a forced create goes above the epoch the servers held');
  for (const a of cluster.seeds) t.equal(parseConfig((await directClient(t, a).get(CONFIG_KEY))!).epoch, 2);
});

t.test('create names the address that does not answer', async (t) => {
  const p = await RedisProcess.start();
  t.teardown(() => p.stop({ removeDir: true }));
  const dead = `127.0.0.1:${await freePort()}`;
  await t.rejects(createCluster({ shards: [{ master: p.address, replicas: [dead] }] }), UnreachableNodeError);
  await t.rejects(createCluster({ shards: [{ master: p.address, replicas: [dead] }] }), { message: new RegExp(dead) });
  t.equal(await directClient(t, p.address).get(CONFIG_KEY), null, 'nothing written when a node is missing');
});

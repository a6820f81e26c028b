/**
 * Malformed configuration on one master, written with SET (bad JSON, a version that is not the
 * SHA1 of the text, an unknown node in the slot map, slots left uncovered): the sidecar ignores
 * that copy, logs why, and keeps routing on its last good one. Each bad copy claims a newer
 * epoch whose slot map would move slot 0, so adopting it would show.
 */
import t from 'tap';
import { giveSlots } from '../../src/admin/move-slots';
import { clusterStatus } from '../../src/admin/status';
import { serializeConfig } from '../../src/cluster/config';
import { directClient, startCluster } from '../helpers/cluster';
import { sidecarClient } from '../helpers/sidecar';
import { LIFECYCLE_TIMING, captureLog, copyOn, keyInSlot, lifecycleSidecar, setCopy, stored, until } from './helpers';

t.test('a malformed copy is ignored, logged, and the last good configuration kept', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const sc = await lifecycleSidecar(t, cluster);
  const [a, b] = cluster.shards;
  const ma = directClient(t, a.master.address);
  const mb = directClient(t, b.master.address);
  const log = captureLog(t);
  const good = stored(cluster.config);
  // a valid epoch 2 that gives slot 0 to b, the base of the bad copies
  const next = JSON.parse(serializeConfig(giveSlots(cluster.config, [0], 'b'))) as Record<string, unknown> & { slots: Array<[number, number, string]> };
  const k0 = keyInSlot(0, 'bad');
  const cl = sidecarClient(t, sc);

  const cases: Array<{ name: string; text: string; version?: string; reason: RegExp; repaired: boolean }> = [
    { name: 'bad JSON that claims epoch 2', text: '{"epoch": 2, "hash": "sha1-10", "nodes": {', reason: /^configuration is not valid JSON/, repaired: false },
    { name: 'bad JSON that claims no epoch', text: '{"hash": "sha1-10", "nodes": {', reason: /^configuration is not valid JSON/, repaired: true },
    {
      name: 'version that is not the SHA1 of the text',
      text: JSON.stringify(next),
      version: '0123456789abcdef0123456789abcdef01234567',
      reason: /^version 0123456789abcdef0123456789abcdef01234567 is not the SHA1 of the stored configuration$/,
      repaired: false,
    },
    {
      name: 'unknown node in the slot map',
      text: JSON.stringify({ ...next, slots: next.slots.map(([x, y, n]) => [x, y, x === 0 ? 'zz' : n]) }),
      reason: /^slot range 0-0 names unknown node "zz"$/,
      repaired: false,
    },
    {
      name: 'slots left uncovered',
      text: JSON.stringify({ ...next, slots: next.slots.filter(([x]) => x !== 0) }),
      reason: /^slot 0 is not covered$/,
      repaired: false,
    },
  ];
  for (const bad of cases) {
    log.lines.length = 0;
    const epoch = sc.stats.epoch;
    const version = sc.stats.version;
    const reloads = sc.stats.configReloads;
    await setCopy(ma, bad.text, bad.version);
    await until(`the sidecar logs why it ignores the copy (${bad.name})`, () =>
      Boolean(log.find('config-copy-ignored', (l) => l.node === a.master.address && bad.reason.test(String(l.reason)))),
    );
    t.pass(`${bad.name}: ignored and logged`);
    t.equal(sc.stats.epoch, epoch, `${bad.name}: epoch kept`);
    t.equal(sc.stats.version, version, `${bad.name}: version kept`);
    t.equal(sc.stats.configReloads, reloads, `${bad.name}: nothing adopted`);
    t.equal(sc.view.leaseError(), null, `${bad.name}: still routing (two good masters confirm)`);
    t.equal(await cl.set(k0, bad.name), 'OK');
    t.equal(await ma.get(k0), bad.name, `${bad.name}: slot 0 still routed to a`);
    t.equal(await mb.get(k0), null);
    if (bad.repaired) {
      // a broken copy that claims no newer epoch is rewritten from the confirmed configuration
      await until('the bad JSON copy is repaired', async () => (await copyOn(ma)).version === good.version);
      t.ok(log.find('config-repaired', (l) => l.node === a.master.address), 'repair logged');
    } else {
      // a bad copy claiming a newer epoch is not overwritten (no node goes back); the operator is told
      await until('the refused repair is logged', () => Boolean(log.find('config-repair-refused', (l) => l.node === a.master.address)));
      t.pass(`${bad.name}: not overwritten, and the operator is told`);
      await setCopy(ma, good.text);
    }
  }
});

t.test('a copy deleted or overwritten by anything is repaired from the majority\'s within a round, without CLUSTERDOWN', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const sc = await lifecycleSidecar(t, cluster);
  const [a, b, c] = cluster.shards;
  const log = captureLog(t);
  const good = stored(cluster.config);
  const cl = sidecarClient(t, sc);
  const expiries = sc.stats.leaseExpiries;
  const damage: Array<[string, Awaited<ReturnType<typeof directClient>>, () => Promise<unknown>]> = [];
  const ma = directClient(t, a.master.address);
  const mb = directClient(t, b.master.address);
  const mc = directClient(t, c.master.address);
  damage.push(['the version key deleted', ma, () => ma.del('__cluster__:version')]);
  damage.push(['the configuration overwritten with garbage', mb, () => mb.set('__cluster__:config', 'garbage')]);
  damage.push(['both: version deleted, configuration garbage', mc, () => mc.multi().del('__cluster__:version').set('__cluster__:config', '{"nodes": tr').exec()]);
  damage.push(['the configuration deleted', ma, () => ma.del('__cluster__:config')]);
  damage.push(['the version set to another SHA1', mb, () => mb.set('__cluster__:version', '0'.repeat(40))]);
  damage.push(['the configuration truncated', mc, () => mc.set('__cluster__:config', good.text.slice(0, 20))]);
  for (const [what, node, wreck] of damage) {
    log.lines.length = 0;
    await wreck();
    const at = Date.now();
    await until(`repaired: ${what}`, async () => (await copyOn(node)).version === good.version && (await node.get('__cluster__:config')) === good.text);
    const took = Date.now() - at;
    t.pass(`${what}: repaired in ${took} ms (check every ${LIFECYCLE_TIMING.checkMs} ms)`);
    t.ok(log.find('config-repaired'), 'logged');
    for (let i = 0; i < 3; i++) t.equal(await cl.set(`k${i}`, what), 'OK', 'writes go on');
  }
  t.equal(sc.stats.leaseExpiries, expiries, 'the lease never ran out: no CLUSTERDOWN');
});

t.test('broken copies are not rewritten while no majority confirms the configuration', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const sc = await lifecycleSidecar(t, cluster);
  const [a, b] = cluster.shards;
  const log = captureLog(t);
  const ma = directClient(t, a.master.address);
  const mb = directClient(t, b.master.address);
  await ma.multi().set('__cluster__:config', 'garbage').set('__cluster__:version', 'x').exec();
  await mb.multi().set('__cluster__:config', 'garbage').set('__cluster__:version', 'x').exec();
  await until('the wait for a majority is logged', () => Boolean(log.find('config-repair-waiting')));
  t.equal(await ma.get('__cluster__:config'), 'garbage', 'a copy backed by one master of three rewrites nothing');
  await until('the lease to run out', () => sc.view.leaseError() !== null);
  t.pass('and the sidecar stops routing once its lease runs out');
  // an operator restores one copy: the majority is back, and the other is repaired
  const good = stored(cluster.config);
  await setCopy(ma, good.text);
  await until('the other copy is repaired', async () => (await copyOn(mb)).version === good.version);
  await until('routing again', () => sc.view.leaseError() === null);
  t.pass('repaired once a majority confirms');
});

t.test('a broken copy that claims a newer epoch is left alone, and status says a person must look', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const sc = await lifecycleSidecar(t, cluster);
  const [a] = cluster.shards;
  const log = captureLog(t);
  const ma = directClient(t, a.master.address);
  const bad = '{"epoch": 99, "nodes": {"a": tru';
  await ma.set('__cluster__:config', bad);
  await until('the refused repair is logged', () => Boolean(log.find('config-repair-refused', (l) => l.node === a.master.address)));
  t.equal(await ma.get('__cluster__:config'), bad, 'not overwritten: a copy never goes back');
  t.equal(sc.view.leaseError(), null, 'the other two masters keep the lease');
  const st = await clusterStatus({ seeds: cluster.seeds });
  t.match(st.copies.bad, [{ address: a.master.address, needsOperator: true }], 'status marks it');
  t.match(st.warnings.join('\n'), /claims an epoch above 1 .*A person must look/, 'and says what to do');
  await ma.del('__cluster__:config', '__cluster__:version');
  await until('rewritten once removed', async () => (await ma.get('__cluster__:config')) === stored(cluster.config).text);
  t.pass('deleting it lets the sidecars rewrite it');
});

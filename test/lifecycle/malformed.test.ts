/**
 * Malformed configuration on one master, written with SET (bad JSON, a version that is not the
 * SHA1 of the text, an unknown node in the slot map, slots left uncovered): the sidecar ignores
 * that copy, logs why, and keeps routing on its last good one. Each bad copy claims a newer
 * epoch whose slot map would move slot 0, so adopting it would show.
 */
import t from 'tap';
import { giveSlots } from '../../src/admin/move-slots';
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
    { name: 'bad JSON', text: '{"epoch": 2, "hash": "sha1-10", "nodes": {', reason: /^configuration is not valid JSON/, repaired: true },
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
      // compare-and-set replaces a copy that is not even JSON
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

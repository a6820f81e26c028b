/**
 * Masters holding different epochs: the sidecar uses the highest and repairs the others with
 * compare-and-set, at start-up and while running (copies written behind its back with SET).
 */
import t from 'tap';
import { giveSlots } from '../../src/admin/move-slots';
import { controlClient, writeCopy } from '../../src/cluster/store';
import { directClient, startCluster } from '../helpers/cluster';
import { sidecarClient } from '../helpers/sidecar';
import { LIFECYCLE_TIMING, captureLog, copyOn, keyInSlot, lifecycleSidecar, setCopy, stored, until } from './helpers';

t.test('the highest epoch wins and the other masters are repaired', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const [a, b, c] = cluster.shards;
  const ma = directClient(t, a.master.address);
  const mb = directClient(t, b.master.address);
  const mc = directClient(t, c.master.address);
  const log = captureLog(t);
  const epoch1 = stored(cluster.config);
  // epoch 2: slots 0-9 go from a to b (empty slots); only a holds it
  const cfg2 = giveSlots(cluster.config, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'b');
  const epoch2 = stored(cfg2);
  const ctl = controlClient(a.master.address);
  t.teardown(() => ctl.disconnect());
  t.equal(await writeCopy(ctl, cfg2), true);
  t.equal((await copyOn(mb)).epoch, 1);

  // started from b alone (epoch 1): it learns of a's epoch 2 and repairs b and c
  const sc = await lifecycleSidecar(t, cluster, { seeds: [b.master.address] });
  t.equal(sc.stats.epoch, 2, 'uses the highest epoch');
  t.equal(sc.stats.version, epoch2.version);
  for (const m of [ma, mb, mc]) t.same(await copyOn(m), { epoch: 2, version: epoch2.version, text: epoch2.text }, 'every master holds epoch 2');
  t.ok(sc.stats.configRepairs >= 2, `repairs counted (${sc.stats.configRepairs})`);
  const repaired = log.lines.filter((l) => l.event === 'config-repaired').map((l) => l.node).sort();
  t.same(repaired, [b.master.address, c.master.address].sort(), 'b and c were repaired, and logged');
  // routing follows epoch 2: a key of slot 0 lands on b
  const k0 = keyInSlot(0, 'e');
  const cl = sidecarClient(t, sc);
  t.equal(await cl.set(k0, 'v2'), 'OK');
  t.equal(await mb.get(k0), 'v2', 'slot 0 routed to b (epoch 2)');
  t.equal(await ma.get(k0), null);

  // running: c is set back to epoch 1 and b forward to epoch 3, both by hand (no CAS)
  const cfg3 = giveSlots(cfg2, [10, 11], 'c');
  const epoch3 = stored(cfg3);
  const repairsBefore = sc.stats.configRepairs;
  await setCopy(mc, epoch1.text);
  await setCopy(mb, epoch3.text);
  await until('every master holds epoch 3', async () => {
    const all = await Promise.all([ma, mb, mc].map(copyOn));
    return all.every((x) => x.version === epoch3.version);
  });
  t.equal(sc.stats.epoch, 3, 'the sidecar moved to the higher epoch');
  t.ok(sc.stats.configRepairs >= repairsBefore + 2, 'a (epoch 2) and c (epoch 1) repaired');
  const k10 = keyInSlot(10, 'e');
  t.equal(await cl.set(k10, 'v3'), 'OK');
  t.equal(await mc.get(k10), 'v3', 'slot 10 routed to c (epoch 3)');
  // no node went back: repairs of an older copy never lower an epoch
  t.equal(await writeCopy(ctl, cfg2), false, 'CAS refuses epoch 2 over epoch 3');

  // epoch 4 written by hand in a form of its own (indented JSON): the repairs copy those exact
  // bytes, so every master ends with the same version and the rounds stop reloading
  const pretty = JSON.stringify({ ...JSON.parse(epoch3.text), epoch: 4 }, null, 2);
  await setCopy(ma, pretty);
  await until('every master holds the hand-written epoch 4', async () => {
    const all = await Promise.all([ma, mb, mc].map(copyOn));
    return all.every((x) => x.text === pretty);
  });
  t.equal(sc.stats.epoch, 4);
  log.lines.length = 0;
  const checks = sc.stats.configChecks;
  await until('three more rounds', () => sc.stats.configChecks >= checks + 3);
  t.notOk(log.find('config-reload'), 'no reload: every master agrees');
  t.notOk(log.find('config-same-epoch-differs'));
});

/**
 * The lease: cut off from a majority of masters (two of three stopped with SIGSTOP), the sidecar
 * refuses data commands with the CLUSTERDOWN error once leaseMs has passed without a
 * confirmation, and recovers by itself when they resume. Then its INFO (through the sidecar, as
 * an app would ask) shows the lifecycle's counters.
 */
import t from 'tap';
import { giveSlots } from '../../src/admin/move-slots';
import { controlClient, writeEverywhere } from '../../src/cluster/store';
import { directClient, startCluster } from '../helpers/cluster';
import { keysPerMaster, sidecarClient } from '../helpers/sidecar';
import { LIFECYCLE_TIMING, captureLog, keyInSlot, lifecycleSidecar, parseInfo, until } from './helpers';

const STAGE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('GET', KEYS[1]) end
return redis.error_reply('MIGRATED ' .. ARGV[1])
`;

t.test('past the lease it refuses with CLUSTERDOWN; it recovers without a restart; INFO shows it all', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const sc = await lifecycleSidecar(t, cluster);
  const [a, b, c] = cluster.shards;
  const log = captureLog(t);
  const keys = keysPerMaster(cluster.config, 'l', 1);
  const ka = keys.get(a.master.address)![0]!;
  const kb = keys.get(b.master.address)![0]!;
  const cl = sidecarClient(t, sc);
  for (const k of [ka, kb]) t.equal(await cl.set(k, 'before'), 'OK');
  const expiries = sc.stats.leaseExpiries;
  t.equal(parseInfo(await cl.info('ringside')).lease_valid, '1');

  // a still answers, b and c are stopped: a is a minority
  b.master.pause();
  c.master.pause();
  let refusal = '';
  await until('a command for a (still up) is refused', async () => {
    try {
      await cl.get(ka);
      return false;
    } catch (e) {
      refusal = (e as Error).message;
      return true;
    }
  });
  t.match(refusal, /^CLUSTERDOWN ringside: configuration not confirmed by a majority of masters for \d+ ms \(lease 600 ms\); not routing until it is$/);
  await t.rejects(cl.set(kb, 'x'), /^CLUSTERDOWN ringside: configuration not confirmed/, 'every data command, at once (not a node timeout)');
  await t.rejects(cl.set(ka, 'x'), /^CLUSTERDOWN ringside/);
  t.equal(sc.stats.leaseExpiries, expiries + 1, 'one lease expiry');
  t.ok(log.find('lease-expired'), 'logged');
  const during = parseInfo(await cl.info('ringside'));
  t.equal(during.lease_valid, '0', 'INFO answers (a local command) and says the lease is not valid');

  b.master.resume();
  c.master.resume();
  await until('commands succeed again', async () => {
    try {
      return (await cl.set(ka, 'after')) === 'OK';
    } catch {
      return false;
    }
  });
  for (const k of [ka, kb]) {
    t.equal(await cl.set(k, 'after'), 'OK', `SET ${k} after recovery`);
    t.equal(await cl.get(k), 'after');
  }
  t.ok(log.find('lease-confirmed'), 'confirmation logged');

  // a configuration change and a redirect, so every counter has something to count
  const k9 = keyInSlot(9, 'i');
  const clients = new Map(cluster.seeds.map((m) => [m, controlClient(m)]));
  t.teardown(() => clients.forEach((x) => x.disconnect()));
  await writeEverywhere(clients, giveSlots(cluster.config, [9], 'b'));
  await until('epoch 2 adopted', () => sc.stats.epoch === 2);
  t.equal(await cl.set(k9, 'nine'), 'OK');
  t.equal(await directClient(t, b.master.address).get(k9), 'nine', 'slot 9 routed to b (epoch 2)');
  // a key of a slot of a, present on b only: a answers -MIGRATED b, b answers
  const k20 = keyInSlot(20, 'i');
  await directClient(t, b.master.address).set(k20, 'twenty');
  t.equal(await cl.eval(STAGE, 1, k20, b.master.address), 'twenty');

  const info = parseInfo(await cl.info('ringside'));
  t.equal(info.lease_valid, '1');
  t.equal(info.config_epoch, '2');
  t.equal(info.config_version, sc.view.routing!.version);
  t.ok(Number(info.config_checks) >= 1, `config_checks ${info.config_checks}`);
  t.ok(Number(info.config_check_failures) >= 1, `config_check_failures ${info.config_check_failures} (rounds while cut off)`);
  t.ok(Number(info.config_reloads) >= 2, `config_reloads ${info.config_reloads} (start-up, epoch 2)`);
  t.ok(Number(info.redirects) >= 1, `redirects ${info.redirects}`);
  t.equal(info.lease_expiries, '1');
  t.match(info.seconds_since_confirmed, /^\d+$/, 'seconds since the last confirmation');
  t.equal(info.config_checks, String(sc.stats.configChecks));
  // the same section is in INFO with no argument
  t.match(await cl.info(), /# Ringside\r\n(?:.*\r\n)*lease_expiries:1\r\n/);
});

/**
 * Redirects. A node answering `-MIGRATED host:port` gets the command reissued at the named node
 * and, when the sidecar's configuration did not expect it, a reload; when the configuration
 * already says the slot moves there, no reload. A command redirected again and again ends with a
 * clear error. The node's answer is staged with a small script sent through the sidecar (EVAL is
 * routed by its key like any command).
 */
import t from 'tap';
import { giveSlots, planMove } from '../../src/admin/move-slots';
import { controlClient, writeEverywhere } from '../../src/cluster/store';
import { slotOf } from '../../src/cluster/slot';
import { directClient, startCluster } from '../helpers/cluster';
import { sidecarClient } from '../helpers/sidecar';
import { LIFECYCLE_TIMING, captureLog, keyInSlot, lifecycleSidecar, until } from './helpers';
import type Redis from 'ioredis';
import type { ClusterConfig } from '../../src/cluster/config';

/** On the node that runs it: the key's value when the key is there, else -MIGRATED ARGV[1]. */
const STAGE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('GET', KEYS[1]) end
return redis.error_reply('MIGRATED ' .. ARGV[1])
`;

async function publish(t: { teardown(fn: () => unknown): void; same(a: unknown, b: unknown): unknown }, masters: string[], config: ClusterConfig): Promise<void> {
  const clients = new Map<string, Redis>(masters.map((m) => [m, controlClient(m)]));
  t.teardown(() => clients.forEach((c) => c.disconnect()));
  const res = await writeEverywhere(clients, config);
  t.same([...res.values()], masters.map(() => 'written'));
}

t.test('-MIGRATED the configuration does not know: reissued at the named node, and a reload', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  // no version round for a minute: only the redirect can make this sidecar reload
  const sc = await lifecycleSidecar(t, cluster, { checkMs: 60_000, leaseMs: 120_000 });
  await until('the start-up round', () => sc.stats.configChecks >= 1);
  const [a, b] = cluster.shards;
  const log = captureLog(t);
  // the slot of k moves from a to b (epoch 2, written to every master); k is on b only
  const k = keyInSlot(3, 'r');
  t.equal(sc.view.routing!.table.nodeOf(slotOf(k)), 'a');
  await publish(t, cluster.seeds, giveSlots(cluster.config, [3], 'b'));
  await directClient(t, b.master.address).set(k, 'on-b');
  const cl = sidecarClient(t, sc);
  const checks = sc.stats.configChecks;
  const redirects = sc.stats.redirects;
  const reloads = sc.stats.configReloads;

  // a answers -MIGRATED <b>: the sidecar reissues the script at b, which answers with the value
  t.equal(await cl.eval(STAGE, 1, k, b.master.address), 'on-b', 'the app gets the answer of the named node');
  t.equal(sc.stats.redirects, redirects + 1, 'one redirect');
  await until('the reload adopted epoch 2', () => sc.stats.epoch === 2);
  t.equal(sc.stats.configReloads, reloads + 1, 'one configuration adopted');
  t.equal(sc.stats.configChecks, checks, 'no version round ran: the redirect caused the reload');
  t.ok(log.find('config-reload', (l) => String(l.reason) === `MIGRATED from ${a.master.address}`), 'reload logged with its cause');
  t.equal(await cl.get(k), 'on-b', 'plain GET now routes to b');

  // a node that keeps redirecting: bounded, then a clear error
  const k2 = keyInSlot(4, 'r');
  const before = sc.stats.redirects;
  await t.rejects(cl.eval(STAGE, 1, k2, a.master.address), /ERR ringside: EVAL was redirected more than 3 times/);
  t.equal(sc.stats.redirects - before, 4, 'three redirects followed, the fourth refused');
});

t.test('-MIGRATED for a slot the configuration has migrating there: reissued, no reload', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const sc = await lifecycleSidecar(t, cluster);
  const [a, b] = cluster.shards;
  const log = captureLog(t);
  const marked = planMove(cluster.config, [5], 'b').marked!;
  await publish(t, cluster.seeds, marked);
  await until('the sidecar sees slot 5 migrating', () => sc.stats.epoch === 2);
  const k = keyInSlot(5, 'm');
  const onA = keyInSlot(5, 'n');
  await directClient(t, b.master.address).set(k, 'moved');
  await directClient(t, a.master.address).set(onA, 'still-on-a');
  const cl = sidecarClient(t, sc);
  const redirects = sc.stats.redirects;
  const reloads = sc.stats.configReloads;
  log.lines.length = 0;
  t.equal(await cl.get(k), 'moved', 'a (migration script) answered -MIGRATED; b answered');
  t.equal(await cl.get(onA), 'still-on-a', 'a key still on a is read there');
  t.equal(sc.stats.redirects, redirects + 1);
  t.equal(sc.stats.configReloads, reloads);
  t.notOk(log.find('config-reload'), 'no reload: the configuration already said so');
});

/**
 * A configuration change written by the admin side (`moveSlots`, the code behind
 * `ringside move-slots`) is picked up by a running sidecar by the first version round sent after
 * each write (so within one checkMs), while a client keeps writing and reading every key, the
 * moving ones included, and no command fails or reads a stale value.
 */
import t from 'tap';
import { moveSlots, MoveProgress } from '../../src/admin/move-slots';
import { directClient, startCluster } from '../helpers/cluster';
import { sidecarClient } from '../helpers/sidecar';
import { LIFECYCLE_TIMING, keysInSlots, lifecycleSidecar } from './helpers';
import { slotOf } from '../../src/cluster/slot';

t.test('move-slots is picked up by the first round after each write, with traffic and no failed command', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing: LIFECYCLE_TIMING });
  const sc = await lifecycleSidecar(t, cluster);
  const [a, , c] = cluster.shards;
  // slots 0-9 belong to a; they go to c
  const slots = Array.from({ length: 10 }, (_, i) => i);
  t.equal(cluster.config.slots[0]![2], 'a');
  const moving = keysInSlots(new Set(slots), 'mv', 40);
  const staying = keysInSlots(new Set(Array.from({ length: 1014 }, (_, i) => i + 10)), 'st', 40);
  const keys = [...moving, ...staying];

  // traffic: 4 loops, each owning a quarter of the keys; every GET must return the loop's last SET
  const failures: string[] = [];
  const last = new Map<string, string>();
  let running = true;
  let ops = 0;
  const loops = [0, 1, 2, 3].map(async (n) => {
    const cl = sidecarClient(t, sc);
    const mine = keys.filter((_, i) => i % 4 === n);
    for (let round = 0; running; round++) {
      for (const k of mine) {
        const v = `${k}:${round}`;
        try {
          const ok = await cl.set(k, v);
          if (ok !== 'OK') failures.push(`SET ${k} -> ${ok}`);
          last.set(k, v);
          const got = await cl.get(k);
          if (got !== v) failures.push(`GET ${k} -> ${got}, expected ${v}`);
          ops += 2;
        } catch (e) {
          failures.push(`${k}: ${(e as Error).message}`);
        }
      }
    }
  });

  // when each configuration reached the masters, and when the sidecar adopted it (in rounds sent)
  const writtenAtCheck = new Map<number, number>();
  const adoptedAtCheck = new Map<number, number>();
  sc.view.onChange((r) => adoptedAtCheck.set(r.config.epoch, sc.stats.configChecks));
  const onProgress = (p: MoveProgress): void => {
    if (p.phase === 'marked' || p.phase === 'done') writtenAtCheck.set(p.epoch, sc.stats.configChecks);
  };
  await new Promise((r) => setTimeout(r, 300)); // traffic before the change
  const opsBefore = ops;
  const res = await moveSlots({ seeds: cluster.seeds, slots, to: 'c', onProgress });
  t.same([...writtenAtCheck.keys()], [2, 3], 'two writes: epoch 2 marks the slots migrating, epoch 3 gives them');
  // wait for the final configuration, then a little more traffic
  const until = Date.now() + 10_000;
  while (sc.stats.epoch !== 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  running = false;
  await Promise.all(loops);

  t.same(failures, [], 'no failed command and no stale read during the change');
  t.ok(ops > opsBefore + 100, `traffic flowed throughout (${ops} commands)`);
  t.equal(res.moved.a, moving.length, 'move-slots moved the keys of the slots');
  for (const epoch of [2, 3]) {
    t.ok(adoptedAtCheck.has(epoch), `the sidecar adopted epoch ${epoch}`);
    const delta = adoptedAtCheck.get(epoch)! - writtenAtCheck.get(epoch)!;
    t.ok(delta <= 1, `epoch ${epoch} adopted by the first round sent after it was written (rounds after the write: ${delta})`);
  }
  t.equal(sc.stats.epoch, 3);
  t.same(sc.view.routing!.config.migrating, {}, 'no slot left migrating');
  t.equal(sc.view.routing!.table.nodeOf(slotOf(moving[0]!)), 'c');

  // every key holds the last value written, on the master that owns it now
  const am = directClient(t, a.master.address);
  const cm = directClient(t, c.master.address);
  t.same(await cm.mget(...moving), moving.map((k) => last.get(k)), 'the moved keys hold their last values on c');
  t.equal(await am.exists(...moving), 0, 'and none is left on a');
  t.comment(`${ops} commands, ${sc.stats.redirects} MIGRATED redirects on the way`);
});

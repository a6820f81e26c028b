import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import Redis from 'ioredis';
import { CONFIG_KEY, ERRORS_KEY, LOG_KEY, VERSION_KEY, ClusterConfig, SlotTable, parseConfig } from '../../src/cluster/config';
import { controlClient, writeCopy } from '../../src/cluster/store';
import { slotOf } from '../../src/cluster/slot';
import { MigrateError, MoveSlotsError, SlotListError } from '../../src/admin/errors';
import {
  MoveProgress,
  formatSlotList,
  moveSlots,
  parseSlotList,
} from '../../src/admin/move-slots';
import { directClient, startCluster } from '../helpers/cluster';

const BIN = resolve(__dirname, '../../../bin/ringside.js');

function ringside(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Writes `count` keys, each on the master that owns its slot; returns key → owner node. */
async function fill(clients: Record<string, Redis>, config: ClusterConfig, count: number): Promise<Map<string, string>> {
  const table = SlotTable.from(config);
  const where = new Map<string, string>();
  const pipes = Object.fromEntries(Object.entries(clients).map(([n, c]) => [n, c.pipeline()]));
  for (let i = 0; i < count; i++) {
    const key = `key:${i}`;
    const node = table.nodeOf(slotOf(key));
    where.set(key, node);
    pipes[node]!.set(key, `value ${i}`);
  }
  for (const p of Object.values(pipes)) await p.exec();
  return where;
}

async function storedConfig(c: Redis): Promise<ClusterConfig> {
  return parseConfig((await c.get(CONFIG_KEY))!);
}

t.test('parseSlotList reads ranges and single slots and refuses slots outside 0..1023', async (t) => {
  t.same(parseSlotList('100-103,7,101'), [7, 100, 101, 102, 103]);
  t.same(parseSlotList('1023'), [1023]);
  t.throws(() => parseSlotList('1000-1024'), SlotListError);
  t.throws(() => parseSlotList('5-3'), SlotListError);
  t.throws(() => parseSlotList('a-b'), SlotListError);
  t.throws(() => parseSlotList('1,,2'), SlotListError);
  t.equal(formatSlotList([3, 1, 2, 7, 9, 10]), '1-3,7,9-10');
});

t.test('moved slots take their keys to the target, other keys stay, metadata stays', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  const names = ['a', 'b', 'c'];
  const clients: Record<string, Redis> = {};
  cluster.shards.forEach((s, i) => (clients[names[i]!] = directClient(t, s.master.address)));
  const table = SlotTable.from(cluster.config);

  // Slots 100-200 (a's) and the slots of the metadata keys that are not already c's.
  const meta = [CONFIG_KEY, VERSION_KEY, LOG_KEY, ERRORS_KEY];
  for (const c of Object.values(clients)) await c.lpush(ERRORS_KEY, 'b:1:sidecar-1');
  const metaSlots = meta.map(slotOf).filter((s) => table.nodeOf(s) !== 'c');
  t.ok(metaSlots.length > 0, 'some metadata key lives in a slot that moves');
  const slots = [...new Set([...Array.from({ length: 101 }, (_, i) => 100 + i), ...metaSlots])].sort((x, y) => x - y);
  const moving = new Set(slots);

  const where = await fill(clients, cluster.config, 4000);
  // Two more types: a hash and a key with a time to live, each on the owner of its slot.
  const hashKey = '{key:7}:h';
  const ttlKey = 'key:7:ttl';
  await clients[table.nodeOf(slotOf(hashKey))]!.hset(hashKey, 'f', 'v');
  await clients[table.nodeOf(slotOf(ttlKey))]!.set(ttlKey, 'x', 'PX', 600_000);
  const extra = [hashKey, ttlKey].filter((k) => moving.has(slotOf(k)) && table.nodeOf(slotOf(k)) !== 'c').length;

  const events: MoveProgress[] = [];
  const seenAt = new Map<string, number>();
  const result = await moveSlots({
    seeds: cluster.seeds,
    slots,
    to: 'c',
    batchSize: 7,
    onProgress: (p) => {
      events.push(p);
      if (!seenAt.has(p.phase)) seenAt.set(p.phase, Date.now());
    },
  });

  const final = result.config;
  t.equal(final.epoch, 3, 'one epoch to mark, one to give');
  t.same(final.migrating, {});
  const after = SlotTable.from(final);
  t.same(slots.filter((s) => after.nodeOf(s) !== 'c'), [], 'every moved slot belongs to c');
  const kept = Array.from({ length: 1024 }, (_, s) => s).filter((s) => !moving.has(s));
  t.same(kept.filter((s) => after.nodeOf(s) !== table.nodeOf(s)), [], 'every other slot keeps its owner');
  for (const c of Object.values(clients)) t.same(await storedConfig(c), final, 'every master holds the final configuration');

  let expectMoved = 0;
  const wrong: string[] = [];
  for (const [key, node] of where) {
    const value = `value ${key.slice(4)}`;
    if (moving.has(slotOf(key))) {
      if (node !== 'c') expectMoved++;
      if ((await clients.c!.get(key)) !== value) wrong.push(`${key} is not on c`);
      if (node !== 'c' && (await clients[node]!.exists(key))) wrong.push(`${key} is still on ${node}`);
    } else {
      if ((await clients[node]!.get(key)) !== value) wrong.push(`${key} is not on ${node}`);
      if (node !== 'c' && (await clients.c!.exists(key))) wrong.push(`${key} was copied to c`);
    }
  }
  t.same(wrong, [], 'keys of moved slots are on c only, every other key where it was');
  t.equal(result.moved.a! + (result.moved.b ?? 0), expectMoved + extra, 'the count of moved keys is exact');
  t.ok(expectMoved > 200, 'a real number of keys moved');
  const newHome = (k: string): Redis => clients[after.nodeOf(slotOf(k))]!;
  t.same(await newHome(hashKey).hgetall(hashKey), { f: 'v' }, 'a hash arrives whole');
  t.ok((await newHome(ttlKey).pttl(ttlKey)) > 0, 'a key keeps its time to live');

  for (const [n, c] of Object.entries(clients)) {
    t.equal(await c.lrange(ERRORS_KEY, 0, -1).then((l) => l.length), 1, `${n} keeps its own error list`);
    const log = (await c.lrange(LOG_KEY, 0, -1)).map((l) => JSON.parse(l));
    t.match(log[0], { event: 'migrate', epoch: 3, by: 'admin', to: 'c', keys: expectMoved + extra, slots: formatSlotList(slots) });
    t.match(log[1], { event: 'migrate-start', epoch: 2, to: 'c' });
    t.match(log[2], { event: 'create', epoch: 1 });
  }
  const wait = events.find((e) => e.phase === 'waiting');
  t.ok(wait && wait.phase === 'waiting' && wait.ms > final.timing.leaseMs, 'it announces a wait longer than the lease');
  // A lower bound only (a sleep never ends early): no key moved before the lease had passed.
  t.ok(seenAt.get('moving')! - seenAt.get('waiting')! >= final.timing.leaseMs, 'keys move only after the lease');
  t.ok(events.some((e) => e.phase === 'moving'), 'progress was shown');
});

t.test('move-slots refuses bad requests and leaves the configuration alone', async (t) => {
  const cluster = await startCluster(t, { masters: 2, replicasPerMaster: 0 });
  const seeds = cluster.seeds;
  await t.rejects(moveSlots({ seeds, slots: [10], to: 'z' }), { name: 'MoveSlotsError', message: /unknown node "z".*a, b/ });
  await t.rejects(moveSlots({ seeds, slots: [10, 600], to: 'b' }), { name: 'MoveSlotsError', message: /b already owns slot\(s\) 600/ });
  await t.rejects(moveSlots({ seeds, slots: [1024], to: 'b' }), MoveSlotsError);
  const c = directClient(t, seeds[0]!);
  t.equal((await storedConfig(c)).epoch, 1, 'nothing was written');

  const switching: ClusterConfig = {
    ...cluster.config,
    epoch: 2,
    switching: { node: 'a', from: seeds[0]!, to: '127.0.0.1:1', since: Date.now(), by: 'test' },
  };
  for (const a of seeds) {
    const ctl = controlClient(a);
    t.teardown(() => ctl.disconnect());
    await writeCopy(ctl, switching);
  }
  await t.rejects(moveSlots({ seeds, slots: [10], to: 'b' }), { name: 'MoveSlotsError', message: /fail-over of node a is in progress/ });
  t.equal((await storedConfig(c)).epoch, 2);

  const two = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const m3: ClusterConfig = { ...two.config, epoch: 2, migrating: { '10': { from: 'a', to: 'b' } } };
  for (const a of two.seeds) {
    const ctl = controlClient(a);
    t.teardown(() => ctl.disconnect());
    await writeCopy(ctl, m3);
  }
  await t.rejects(moveSlots({ seeds: two.seeds, slots: [10], to: 'c' }), { message: /already migrating \(slot 10: a -> b\)/ });
});

t.test('a key already on the target stops the move without overwriting; a second run finishes it', async (t) => {
  const cluster = await startCluster(t, { masters: 2, replicasPerMaster: 0 });
  const [a, b] = cluster.seeds.map((s) => directClient(t, s)) as [Redis, Redis];
  let clash = '';
  for (let i = 0; !clash; i++) if (slotOf(`k${i}`) === 5) clash = `k${i}`;
  let other = '';
  for (let i = 0; !other; i++) if (slotOf(`o${i}`) === 5) other = `o${i}`;
  await a.set(clash, 'from a');
  await a.set(other, 'other');
  await b.set(clash, 'already on b');

  const err = await moveSlots({ seeds: cluster.seeds, slots: [5], to: 'b' }).catch((e: Error) => e);
  t.type(err, MigrateError);
  t.match((err as Error).message, new RegExp(`already exist on the target: "${clash}"`));
  t.equal(await b.get(clash), 'already on b', 'the target key was not overwritten');
  t.equal(await a.get(clash), 'from a', 'the source key is still there');
  const mid = await storedConfig(a);
  t.equal(mid.epoch, 2);
  t.same(mid.migrating, { '5': { from: 'a', to: 'b' } }, 'the slot stays migrating');

  await b.del(clash);
  const events: MoveProgress[] = [];
  const done = await moveSlots({ seeds: cluster.seeds, slots: [5], to: 'b', onProgress: (p) => events.push(p) });
  t.ok(events.some((e) => e.phase === 'resumed'), 'the second run resumes the marked move');
  t.equal(done.config.epoch, 3);
  t.same(done.config.migrating, {});
  t.equal(SlotTable.from(done.config).nodeOf(5), 'b');
  t.equal(await b.get(clash), 'from a');
  t.equal(await b.get(other), 'other');
  t.equal(await a.exists(clash, other), 0);
});

t.test('ringside move-slots moves slots from the command line and refuses bad slot lists', async (t) => {
  const cluster = await startCluster(t, { masters: 2, replicasPerMaster: 0 });
  const a = directClient(t, cluster.seeds[0]!);
  let key = '';
  for (let i = 0; !key; i++) if (slotOf(`cli${i}`) === 3) key = `cli${i}`;
  await a.set(key, 'v');
  const r = await ringside(['move-slots', '--seeds', cluster.seeds.join(','), '--slots', '2-4', '--to', 'b']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /epoch 2: slots 2-4 marked migrating to b/);
  t.match(r.stdout, /waiting \d+ ms \(longer than the 500 ms lease\)/);
  t.match(r.stdout, /a -> b: done, 1 keys moved/);
  t.match(r.stdout, /epoch 3: slots 2-4 now belong to b/);
  t.equal(await directClient(t, cluster.seeds[1]!).get(key), 'v');

  const bad = await ringside(['move-slots', '--seeds', cluster.seeds.join(','), '--slots', '1020-1030', '--to', 'b']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /slot 1030 is out of range 0\.\.1023/);
  const owned = await ringside(['move-slots', '--seeds', cluster.seeds.join(','), '--slots', '2', '--to', 'b']);
  t.equal(owned.code, 1);
  t.match(owned.stderr, /b already owns slot\(s\) 2/);
  t.equal((await storedConfig(a)).epoch, 3);
});

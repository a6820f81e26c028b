/**
 * PUBLISH and SPUBLISH inside MULTI (issue 21), with Redis's visible behaviour: EXEC's reply holds
 * each publish's receiver count at its place (compared with a real redis-server); the messages go
 * out after the transaction's writes, in order, once; none when EXEC fails. The pattern is a task
 * framework's result backend: MULTI / SETEX meta:<id> / PUBLISH meta:<id> / EXEC.
 */
import t from 'tap';
import Redis from 'ioredis';
import { setLogSink } from '../../src/observe/log';
import { RedisProcess } from '../../src/embedded/redis-process';
import { startCluster } from '../helpers/cluster';
import { rawTo, run, sidecarClient, sleep, startSidecar, until } from '../helpers/sidecar';

setLogSink(() => {});

t.test('EXEC answers each publish\'s count at its place, as a redis-server does', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster);
  const redis = await RedisProcess.start();
  t.teardown(() => redis.stop({ removeDir: true }));
  const tx = [['MULTI'], ['SET', '{u}a', '1'], ['PUBLISH', 'ch', 'x'], ['INCR', '{u}n'], ['SPUBLISH', 'sch', 'y'], ['PUBLISH', 'ch', 'z'], ['EXEC']];
  const via = await run(await rawTo(t, sc.address), ...tx);
  const direct = await run(await rawTo(t, redis.address), ...tx);
  t.same(via, direct, `the same replies: ${JSON.stringify(direct)}`);
  t.same(via.at(-1), ['OK', 0, 1, 0, 0]);
  // only publishes
  const only = [['MULTI'], ['PUBLISH', 'ch', 'x'], ['EXEC']];
  t.same(await run(await rawTo(t, sc.address), ...only), await run(await rawTo(t, redis.address), ...only), 'a transaction of publishes only');
});

t.test('a result stored and published in one MULTI: the subscriber gets it once, after the write, and counts are real', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster);
  const sub = sidecarClient(t, sc);
  const app = sidecarClient(t, sc);
  const reader = sidecarClient(t, sc);
  const seen: Array<{ msg: string; stored: string | null }> = [];
  sub.on('message', (_ch: string, msg: string) => {
    void reader.get(`meta:${msg}`).then((v) => seen.push({ msg, stored: v }));
  });
  await sub.subscribe('results');
  for (let i = 0; i < 20; i++) {
    const res = await app.multi().setex(`meta:${i}`, 60, `done-${i}`).publish('results', String(i)).exec();
    t.same(res!.map(([e, v]) => (e ? e.message : v)), ['OK', 1], `task ${i}: EXEC says one receiver`);
  }
  await until('every message', () => seen.length === 20);
  t.same(seen.map((s) => s.msg), Array.from({ length: 20 }, (_, i) => String(i)), 'each once, in order');
  t.ok(seen.every((s) => s.stored === `done-${s.msg}`), 'each after its transaction\'s write');
});

t.test('nothing is published when EXEC fails: WATCH, EXECABORT', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster);
  const sub = sidecarClient(t, sc);
  const got: string[] = [];
  sub.on('message', (_c: string, m: string) => got.push(m));
  await sub.subscribe('c');
  const c = await rawTo(t, sc.address);
  const other = sidecarClient(t, sc);
  await run(c, ['WATCH', 'w']);
  await other.set('w', 'changed');
  const watched = await run(c, ['MULTI'], ['SET', 'w', 'mine'], ['PUBLISH', 'c', 'watched'], ['EXEC']);
  t.equal(watched.at(-1), null, 'EXEC after a touched WATCH: nil');
  const aborted = await run(c, ['MULTI'], ['PUBLISH', 'c', 'aborted'], ['NOSUCH'], ['EXEC']);
  t.match(String(aborted.at(-1)), /EXECABORT/, 'EXECABORT');
  await run(c, ['PUBLISH', 'c', 'marker']);
  await until('the marker', () => got.includes('marker'));
  await sleep(100);
  t.same(got, ['marker'], 'neither transaction published anything');
});

t.test('order across a pipeline: a transaction\'s messages, then the next transaction\'s, then a plain PUBLISH', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster);
  const sub = sidecarClient(t, sc);
  const ssub = sidecarClient(t, sc);
  const got: string[] = [];
  sub.on('message', (_c: string, m: string) => got.push(m));
  await sub.subscribe('c');
  const sgot: string[] = [];
  ssub.on('smessage', (_c: string, m: string) => sgot.push(m));
  await ssub.call('SSUBSCRIBE', 's');
  const c = await rawTo(t, sc.address);
  for (let round = 0; round < 10; round++) {
    const out = await run(
      c,
      ['MULTI'], ['INCR', 'n'], ['PUBLISH', 'c', `${round}-1`], ['SPUBLISH', 's', `${round}-s1`], ['PUBLISH', 'c', `${round}-2`], ['EXEC'],
      ['MULTI'], ['PUBLISH', 'c', `${round}-3`], ['EXEC'],
      ['PUBLISH', 'c', `${round}-4`], ['SPUBLISH', 's', `${round}-s2`],
    );
    t.same(out.slice(-2), [1, 1], `round ${round}: the plain publishes after them reach one subscriber each`);
  }
  const want = Array.from({ length: 10 }, (_, r) => [`${r}-1`, `${r}-2`, `${r}-3`, `${r}-4`]).flat();
  await until('every message', () => got.length >= want.length && sgot.length >= 20);
  t.same(got, want, 'classic messages in the order sent, each once');
  t.same(sgot, Array.from({ length: 10 }, (_, r) => [`${r}-s1`, `${r}-s2`]).flat(), 'sharded messages too');
});

t.test('a client library\'s pipelined transaction with a publish (ioredis multi().publish())', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster);
  const app = new Redis({ port: sc.options.port, host: '127.0.0.1' });
  t.teardown(() => app.disconnect());
  const res = await app.multi().set('{t}k', 'v').publish('nobody', 'x').get('{t}k').exec();
  t.same(res!.map(([e, v]) => (e ? e.message : v)), ['OK', 0, 'v']);
});

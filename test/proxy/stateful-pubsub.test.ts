/**
 * Pub/sub through two sidecars in front of the same cluster (3 masters, 1 replica each, real
 * redis-server processes): subscribers on one sidecar, publishers on the other. Frames are read
 * raw, so what is checked is exactly what a client receives.
 */
import t, { Test } from 'tap';
import type Redis from 'ioredis';
import { startCluster } from '../helpers/cluster';
import { RawClient, keysPerMaster, norm, rawTo, resp, run, runWithin, sidecarClient, sleep, startSidecar, until } from '../helpers/sidecar';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Sidecar } from '../../src/proxy/sidecar';

let cluster: LocalCluster;
let A: Sidecar;
let B: Sidecar;
let appB: Redis;

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  A = await startSidecar(t, cluster);
  B = await startSidecar(t, cluster);
  appB = sidecarClient(t, B);
});

const addrOf = (s: Sidecar): string => `127.0.0.1:${s.options.port}`;

/** Two channel names per master, in master order. */
function channels(prefix: string): string[] {
  return [...keysPerMaster(cluster.config, prefix, 2).values()].flat();
}

/** Frames of `kind` received on `c` so far (normalized). */
function framesOf(c: RawClient, kind: string): string[][] {
  return c.replies.map(norm).filter((r): r is string[] => Array.isArray(r) && r[0] === kind) as string[][];
}

/** 200 messages "p<publisher>:<seq>" from two publishers round-robin over `chans`; the last one on each channel is "end". */
async function publishAll(verb: 'PUBLISH' | 'SPUBLISH', chans: string[], pubs: Redis[], n = 200): Promise<void> {
  await Promise.all(
    pubs.map(async (p, pi) => {
      const pipe = p.pipeline();
      for (let i = 0; i < n / pubs.length; i++) pipe.call(verb, chans[i % chans.length]!, `p${pi}:${i}`);
      const res = (await pipe.exec())!;
      if (res.some(([e]) => e)) throw new Error(`a ${verb} failed: ${res.find(([e]) => e)![0]!.message}`);
    }),
  );
  for (const ch of chans) await pubs[0]!.call(verb, ch, 'end');
}

/** Checks that every message arrived once, in publish order per publisher and channel. */
function checkOnceInOrder(t: Test, got: Array<[string, string]>, chans: string[], pubs: number, n = 200): void {
  const expected = new Map<string, string[]>();
  for (let pi = 0; pi < pubs; pi++) for (let i = 0; i < n / pubs; i++) {
    const ch = chans[i % chans.length]!;
    expected.set(`${ch}|p${pi}`, [...(expected.get(`${ch}|p${pi}`) ?? []), `p${pi}:${i}`]);
  }
  const seen = new Map<string, string[]>();
  for (const [ch, msg] of got) {
    if (msg === 'end') continue;
    const key = `${ch}|${msg.split(':')[0]}`;
    seen.set(key, [...(seen.get(key) ?? []), msg]);
  }
  t.equal(got.filter(([, m]) => m !== 'end').length, n, `${n} messages received, no more, no less`);
  t.equal(got.filter(([, m]) => m === 'end').length, chans.length, 'one end marker per channel');
  let bad = '';
  for (const [k, list] of expected) if (JSON.stringify(seen.get(k) ?? []) !== JSON.stringify(list)) bad ||= `${k}: got ${JSON.stringify((seen.get(k) ?? []).slice(0, 5))}...`;
  t.equal(bad, '', 'each publisher\'s messages on each channel arrived once each, in order');
}

t.test('SUBSCRIBE on sidecar A, PUBLISH on sidecar B: 200 messages over channels of all three masters arrive once each, in order', async (t) => {
  const chans = channels('ch:');
  const sub = await rawTo(t, addrOf(A));
  const r = await run(sub, ['SUBSCRIBE', ...chans]);
  t.same(r[0], ['subscribe', chans[0], 1], 'the first confirmation');
  await sub.waitReplies(chans.length);
  t.same(sub.replies.slice(0, chans.length).map(norm), chans.map((c, i) => ['subscribe', c, i + 1]), 'one confirmation per channel, counts 1..6, in order');
  const pubs = [appB, sidecarClient(t, B)];
  await publishAll('PUBLISH', chans, pubs);
  await until('every end marker', () => framesOf(sub, 'message').filter((f) => f[2] === 'end').length === chans.length);
  await sleep(300); // late duplicates would show now
  checkOnceInOrder(t, framesOf(sub, 'message').map((f) => [f[1]!, f[2]!]), chans, 2);
  t.equal(await appB.publish(chans[0]!, 'count'), 1, 'PUBLISH answers the number of receivers: 1');
});

t.test('PSUBSCRIBE on A, PUBLISH on B: pattern messages arrive once each, in order; a channel also subscribed gets both forms once', async (t) => {
  const chans = channels('pat:');
  const sub = await rawTo(t, addrOf(A));
  t.same(await run(sub, ['PSUBSCRIBE', 'pat:*']), [['psubscribe', 'pat:*', 1]]);
  t.same(await run(sub, ['SUBSCRIBE', chans[0]!]), [['subscribe', chans[0], 2]]);
  await publishAll('PUBLISH', chans, [appB, sidecarClient(t, B)]);
  await until('every end marker', () => framesOf(sub, 'pmessage').filter((f) => f[3] === 'end').length === chans.length);
  await sleep(300);
  const pm = framesOf(sub, 'pmessage');
  t.ok(pm.every((f) => f[1] === 'pat:*'), 'every pmessage names the pattern');
  checkOnceInOrder(t, pm.map((f) => [f[2]!, f[3]!]), chans, 2);
  const direct = framesOf(sub, 'message');
  const onFirst = 2 * Array.from({ length: 100 }, (_, i) => i).filter((i) => i % chans.length === 0).length + 1;
  t.equal(direct.length, onFirst, `the channel subscribed by name got each of its ${onFirst} messages once more, as a message frame`);
  t.equal(await appB.publish(chans[0]!, 'x'), 2, 'PUBLISH counts the pattern and the channel subscription');
  t.equal(await appB.publish('pat:nobody-here', 'x'), 1, 'a channel only the pattern matches: 1');
});

t.test('SSUBSCRIBE on A, SPUBLISH on B: sharded messages arrive once each, in order', async (t) => {
  const chans = channels('shard:');
  const sub = await rawTo(t, addrOf(A));
  for (const [i, ch] of chans.entries()) t.same(await run(sub, ['SSUBSCRIBE', ch]), [['ssubscribe', ch, i + 1]], `SSUBSCRIBE ${ch}`);
  await publishAll('SPUBLISH', chans, [appB, sidecarClient(t, B)]);
  await until('every end marker', () => framesOf(sub, 'smessage').filter((f) => f[2] === 'end').length === chans.length);
  await sleep(300);
  checkOnceInOrder(t, framesOf(sub, 'smessage').map((f) => [f[1]!, f[2]!]), chans, 2);
  t.same(await run(sub, ['SUNSUBSCRIBE', chans[0]!]), [['sunsubscribe', chans[0], 5]]);
  t.equal(await appB.call('SPUBLISH', chans[0]!, 'after'), 0, 'nobody listens to it any more');
});

t.test('PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS and SHARDNUMSUB count subscribers of both sidecars', async (t) => {
  const chans = channels('ps:');
  const s1 = await rawTo(t, addrOf(A));
  const s2 = await rawTo(t, addrOf(B));
  await run(s1, ['SUBSCRIBE', ...chans]);
  await s1.waitReplies(chans.length);
  await run(s2, ['SUBSCRIBE', chans[0]!, chans[3]!]);
  await s2.waitReplies(2);
  await run(s1, ['PSUBSCRIBE', 'ps-a:*']);
  await run(s2, ['PSUBSCRIBE', 'ps-a:*']);
  await run(s2, ['PSUBSCRIBE', 'ps-b:*']);
  for (const ch of chans) await run(s1, ['SSUBSCRIBE', `s${ch}`]);
  const q = sidecarClient(t, A);
  t.same(((await q.call('PUBSUB', 'CHANNELS', 'ps:*')) as string[]).sort(), [...chans].sort(), 'CHANNELS lists each channel once');
  t.same(((await q.call('PUBSUB', 'CHANNELS')) as string[]).sort(), [...chans].sort(), 'CHANNELS with no pattern shows only the applications\' channels');
  t.same(await q.call('PUBSUB', 'NUMSUB', chans[0]!, chans[1]!, chans[3]!, 'ps:none'), [chans[0], 2, chans[1], 1, chans[3], 2, 'ps:none', 0], 'NUMSUB sums subscribers of both sidecars, in the order asked');
  t.equal(await q.call('PUBSUB', 'NUMPAT'), 2, 'NUMPAT: two distinct patterns');
  t.same(((await q.call('PUBSUB', 'SHARDCHANNELS')) as string[]).sort(), chans.map((c) => `s${c}`).sort(), 'SHARDCHANNELS');
  t.same(await q.call('PUBSUB', 'SHARDNUMSUB', `s${chans[0]}`, 'none'), [`s${chans[0]}`, 1, 'none', 0], 'SHARDNUMSUB');
});

t.test('a subscribed connection refuses GET with Redis\'s error text and answers PING in the pub/sub form', async (t) => {
  const sub = await rawTo(t, addrOf(A));
  await run(sub, ['SUBSCRIBE', 'mode:a']);
  const r = await run(sub, ['GET', 'k'], ['PING'], ['PING', 'hi'], ['SET', 'k', 'v']);
  t.equal(r[0], "ERR:ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", 'GET refused with Redis\'s text');
  t.same(r[1], ['pong', ''], 'PING answers [pong, ""]');
  t.same(r[2], ['pong', 'hi'], 'PING hi answers [pong, hi]');
  t.match(r[3], /^ERR:ERR Can't execute 'set'/);
  // the same against a redis-server directly
  const node = await rawTo(t, cluster.seeds[0]!);
  await run(node, ['SUBSCRIBE', 'mode:a']);
  t.same(await run(node, ['GET', 'k'], ['PING'], ['PING', 'hi']), r.slice(0, 3), 'the same replies as a redis-server');
});

t.test('UNSUBSCRIBE and PUNSUBSCRIBE with no arguments leave the mode: GET works again and no message follows', async (t) => {
  const chans = channels('un:');
  const sub = await rawTo(t, addrOf(A));
  await run(sub, ['SUBSCRIBE', ...chans]);
  await sub.waitReplies(chans.length);
  await run(sub, ['PSUBSCRIBE', 'un-p:*']);
  const before = sub.replies.length;
  sub.write(resp('UNSUBSCRIBE'));
  await sub.waitReplies(before + chans.length);
  const frames = sub.replies.slice(before).map(norm) as unknown[][];
  t.same(new Set(frames.map((f) => f[1])), new Set(chans), 'one unsubscribe frame per channel');
  t.same(frames.map((f) => f[2]).sort(), [1, 2, 3, 4, 5, 6], 'counts down to 1 (the pattern is left)');
  t.match((await run(sub, ['GET', 'un:x']))[0], /^ERR:ERR Can't execute 'get'/, 'still subscribed to the pattern');
  t.same(await run(sub, ['PUNSUBSCRIBE']), [['punsubscribe', 'un-p:*', 0]]);
  t.same(await run(sub, ['SET', 'un:x', '1'], ['GET', 'un:x'], ['PING']), ['OK', '1', 'PONG'], 'GET works again; PING answers PONG');
  await appB.publish(chans[0]!, 'late');
  await appB.publish('un-p:1', 'late');
  await sleep(300);
  t.same(await run(sub, ['PING']), ['PONG'], 'no message was delivered after leaving');
  t.same(await run(sub, ['UNSUBSCRIBE']), [['unsubscribe', null, 0]], 'UNSUBSCRIBE when subscribed to nothing, as Redis answers');
});

t.test('RESET leaves pub/sub; the same connection can subscribe again and receives messages', async (t) => {
  const sub = await rawTo(t, addrOf(A));
  await run(sub, ['SUBSCRIBE', 'reset:a']);
  t.same(await run(sub, ['RESET']), ['RESET']);
  t.same(await run(sub, ['SET', 'reset:k', 'v'], ['GET', 'reset:k']), ['OK', 'v'], 'commands work after RESET');
  t.equal(await appB.publish('reset:a', 'x'), 0, 'the old subscription is gone from the node');
  t.same(await run(sub, ['SUBSCRIBE', 'reset:b']), [['subscribe', 'reset:b', 1]]);
  t.equal(await appB.publish('reset:b', 'hello'), 1);
  let got = true;
  await until('the message after RESET', () => framesOf(sub, 'message').length > 0, 3000).catch(() => (got = false));
  t.ok(got, 'a message published after re-subscribing arrives');
  t.same(framesOf(sub, 'message'), [['message', 'reset:b', 'hello']]);
});

t.test('an ioredis subscriber on A with on(\'message\') and on(\'pmessage\') gets what B publishes', async (t) => {
  const chans = channels('io:');
  const sub = sidecarClient(t, A);
  const got: string[] = [];
  sub.on('message', (ch: string, m: string) => got.push(`${ch}=${m}`));
  sub.on('pmessage', (_p: string, ch: string, m: string) => got.push(`p:${ch}=${m}`));
  t.equal(await sub.subscribe(...chans), chans.length);
  t.equal(await sub.psubscribe('io-p:*'), chans.length + 1);
  for (let i = 0; i < 30; i++) await appB.publish(chans[i % chans.length]!, String(i));
  await appB.publish('io-p:z', 'pat');
  await until('31 messages', () => got.length >= 31);
  await sleep(200);
  t.same([...got].sort(), [...Array.from({ length: 30 }, (_, i) => `${chans[i % chans.length]}=${i}`), 'p:io-p:z=pat'].sort(), 'every message once');
  for (const ch of chans) {
    const mine = got.filter((g) => g.startsWith(`${ch}=`)).map((g) => Number(g.split('=')[1]));
    t.same(mine, [...mine].sort((a, b) => a - b), `${ch}: in publish order`);
  }
  // (ioredis resolves an argument-less UNSUBSCRIBE only on a count of 0, which a pattern still held prevents, with Redis too)
  t.equal(await sub.unsubscribe(...chans), 1);
  t.equal(await sub.punsubscribe('io-p:*'), 0);
  t.equal(await sub.set('io:after', '1'), 'OK', 'the connection works normally after unsubscribing');
});

t.test('messages one publisher sends one after another (each PUBLISH awaited) over channels of different masters reach a subscriber in publish order', async (t) => {
  // With one redis-server, and with Redis Cluster (one publisher connection, one node, one bus
  // link), a subscriber sees a publisher's messages in the order they were published.
  const chans = channels('ord:');
  const sub = await rawTo(t, addrOf(A));
  await run(sub, ['SUBSCRIBE', ...chans]);
  await sub.waitReplies(chans.length);
  const n = 600;
  for (let i = 0; i < n; i++) await appB.publish(chans[i % chans.length]!, String(i));
  await until(`${n} messages`, () => framesOf(sub, 'message').length >= n);
  const order = framesOf(sub, 'message').map((f) => Number(f[2]));
  const firstOut = order.findIndex((v, i) => v !== i);
  t.equal(firstOut, -1, firstOut >= 0 ? `message ${order[firstOut]} arrived at position ${firstOut}: ${JSON.stringify(order.slice(Math.max(0, firstOut - 2), firstOut + 3))}` : 'in publish order');
});

t.test('SUBSCRIBE followed in the same write by UNSUBSCRIBE, or by RESET, is answered in full and the connection goes on', async (t) => {
  for (const tail of [['UNSUBSCRIBE', 'pipe:a'], ['UNSUBSCRIBE'], ['RESET']]) {
    const c = await rawTo(t, addrOf(A));
    let r: unknown[] = [];
    let err = '';
    await runWithin(c, 3000, ['SUBSCRIBE', 'pipe:a'], tail, ['PING'])
      .then((x) => (r = x))
      .catch((e: Error) => (err = e.message));
    t.equal(err, '', `SUBSCRIBE pipe:a + ${tail.join(' ')} + PING: every reply arrives`);
    if (!err) t.same(r, [['subscribe', 'pipe:a', 1], tail[0] === 'RESET' ? 'RESET' : ['unsubscribe', 'pipe:a', 0], 'PONG']);
    // against a redis-server, for reference
    const node = await rawTo(t, cluster.seeds[0]!);
    t.same(await run(node, ['SUBSCRIBE', 'pipe:a'], tail, ['PING']), [['subscribe', 'pipe:a', 1], tail[0] === 'RESET' ? 'RESET' : ['unsubscribe', 'pipe:a', 0], 'PONG'], `what a redis-server answers to ${tail.join(' ')}`);
  }
});

/**
 * Replies go out once per read of the client's: a pipeline whose commands go to several nodes
 * gets its replies in one write, when the slowest node has answered. Nothing is held behind a
 * blocking command, and large replies are not held at all. One node is made slow with CLIENT
 * PAUSE on it; every assertion is on what arrived in which chunk, never on how long it took.
 */
import t from 'tap';
import { Teardown, startCluster, directClient } from '../helpers/cluster';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import { RawClient, keysPerMaster, resp, sidecarClient, startSidecar } from './helpers';
import type { Sidecar } from '../../src/proxy/sidecar';
import type Redis from 'ioredis';

let cluster: LocalCluster;
let sidecar: Sidecar;
let other: Redis;
let slow = '';
let fastKey = '';
let slowKey = '';
let bigKey = '';

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  sidecar = await startSidecar(t, cluster);
  other = sidecarClient(t, sidecar);
  // keys on two different masters: the second is made slow by pausing it
  const [[, fastKeys], [slowMaster, slowKeys]] = [...keysPerMaster(cluster.config, 'rb:', 2).entries()] as Array<[string, string[]]>;
  [fastKey, bigKey] = fastKeys as [string, string];
  slowKey = slowKeys![0]!;
  slow = slowMaster!;
  await other.set(fastKey, 'f');
  await other.set(slowKey, 's');
});

const pause = (t: Teardown, address: string, ms: number): Promise<unknown> => directClient(t, address).call('CLIENT', 'PAUSE', String(ms), 'ALL');

t.test('a pipeline across two nodes, one of them slow, gets both replies in one write', async (t) => {
  const c = await RawClient.connect(t, sidecar.options.port);
  await pause(t, slow, 400);
  c.write(Buffer.concat([resp('GET', fastKey), resp('GET', slowKey), resp('GET', fastKey)]));
  await c.waitReplies(3, 10_000);
  t.same(c.replies, ['f', 's', 'f'], 'every reply, in order');
  t.equal(c.repliesAfterChunk[0], 3, `the first chunk held all three replies (chunks: ${c.repliesAfterChunk.join(', ')})`);
});

t.test('replies before a blocking command in the same pipeline are not held for it', async (t) => {
  const c = await RawClient.connect(t, sidecar.options.port);
  c.write(Buffer.concat([resp('GET', fastKey), resp('BLPOP', 'rb:{q}', '0')]));
  // BLPOP blocks until the LPUSH below; the GET's reply must not wait for it
  await c.waitReplies(1, 5_000).catch(() => undefined); // a held reply ends the wait here, and the assertion below fails
  const before = c.replies.length;
  await other.lpush('rb:{q}', 'x');
  await c.waitReplies(2, 10_000);
  t.equal(before, 1, "the GET's reply arrived while BLPOP was blocked");
  t.same(c.replies, ['f', ['rb:{q}', 'x']]);
});

t.test('a large reply is written without waiting for the rest of its pipeline', async (t) => {
  const big = 'b'.repeat(200 * 1024);
  await other.set(bigKey, big);
  const c = await RawClient.connect(t, sidecar.options.port);
  await pause(t, slow, 400);
  c.write(Buffer.concat([resp('GET', bigKey), resp('GET', slowKey)]));
  await c.waitReplies(2, 10_000);
  t.equal(c.replies.length, 2);
  t.equal(c.replies[0], big);
  t.equal(c.replies[1], 's');
  const firstWithBig = c.repliesAfterChunk.findIndex((n) => n >= 1);
  const firstWithSlow = c.repliesAfterChunk.findIndex((n) => n >= 2);
  t.ok(firstWithBig < firstWithSlow, `the large reply was complete in chunk ${firstWithBig}, before the slow node's reply in chunk ${firstWithSlow}`);
});

t.test('a client that sends again before its first pipeline is answered gets every reply, in order', async (t) => {
  const c = await RawClient.connect(t, sidecar.options.port);
  await pause(t, slow, 300);
  c.write(Buffer.concat([resp('GET', fastKey), resp('GET', slowKey)]));
  await new Promise((r) => setTimeout(r, 50));
  c.write(Buffer.concat([resp('GET', fastKey), resp('ECHO', 'e')]));
  await c.waitReplies(4, 10_000);
  t.same(c.replies, ['f', 's', 'f', 'e']);
});

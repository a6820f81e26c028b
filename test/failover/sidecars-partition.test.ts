/**
 * A sidecar cut off from the majority of masters (here: two of three masters stopped with
 * SIGSTOP, so that it reaches only one) does not vote, does not lead, and stops routing once its
 * lease runs out — even for the slots of the master it still reaches. First, as the control, the
 * same sidecar with one master stopped (a majority reachable) does vote and lead.
 *
 * Auto mode with no replicas: a lead gets as far as taking the lock and reading the
 * configuration, then finds no replica to promote, so nothing changes in the cluster between the
 * two halves.
 */
import t from 'tap';
import { electionKey, votesKey } from '../../src/cluster/config';
import { setLogSink } from '../../src/observe/log';
import { startCluster } from './servers';
import Redis from 'ioredis';
import { inProcessSidecar, keyOn, now, sleep, waitFor } from './load';

setLogSink(() => {});

const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };

t.test('a sidecar that reaches only a minority of masters does not vote, does not lead, and stops routing after its lease', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing, failover: 'auto' });
  const [a, b, cc] = c.shards.map((s) => s.master);
  const names = Object.keys(c.config.nodes).sort();
  const nodeOf = (addr: string): string => names.find((n) => c.config.nodes[n]!.master === addr)!;
  const h = await inProcessSidecar(t, c, 'p');
  const s = h.sidecar!;
  const app = new Redis({ port: h.port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 20, commandTimeout: 5000 });
  app.on('error', () => {});
  t.teardown(() => app.disconnect());
  const keyOnC = keyOn(c.config, cc!.address, 'p:');
  t.equal(await app.set(keyOnC, 'before'), 'OK', 'routes while all masters answer');

  // Control: one master stopped, a majority reachable: it votes, and (auto mode) leads.
  a!.pause();
  await waitFor('the sidecar to vote and lead with a majority reachable', () => s.stats.votesCast > 0 && s.stats.electionsLed > 0);
  t.pass(`with ${a!.address} stopped: votes ${s.stats.votesCast}, elections led ${s.stats.electionsLed} (no replica, so nothing switched)`);
  a!.resume();
  await waitFor('its vote to be withdrawn', async () => {
    for (const m of [b!, cc!]) if (Object.keys(await c.client(m.address).hgetall(votesKey(nodeOf(a!.address)))).length) return false;
    return s.agent!.status().nodes.every((n) => n.phase === 'up');
  });
  await waitFor('the lock to be released', async () => (await c.client(cc!.address).exists(electionKey(nodeOf(a!.address)))) === 0);
  await waitFor('routing again', async () => (await app.set(keyOnC, 'again').catch(() => null)) === 'OK');

  // The partition: two of three masters stopped.
  const votes = s.stats.votesCast;
  const led = s.stats.electionsLed;
  const stoppedAt = now();
  a!.pause();
  b!.pause();
  let lastOk = stoppedAt;
  let refusal = '';
  await waitFor('the sidecar to refuse commands for the master it still reaches', async () => {
    try {
      await app.set(keyOnC, 'during');
      lastOk = now();
      return false;
    } catch (e) {
      refusal = (e as Error).message;
      return true;
    }
  });
  t.match(refusal, /^CLUSTERDOWN/, `refuses with CLUSTERDOWN: ${refusal}`);
  const refusedAt = now();
  // long enough for votes and a lead, had it thought itself in the majority
  await sleep(4 * timing.downAfterMs);
  t.equal(s.stats.votesCast, votes, 'no vote while it reaches only a minority');
  t.equal(s.stats.electionsLed, led, 'no election led');
  t.same(await c.client(cc!.address).hgetall(votesKey(nodeOf(a!.address))), {}, 'no vote for a on the reachable master');
  t.same(await c.client(cc!.address).hgetall(votesKey(nodeOf(b!.address))), {}, 'no vote for b on the reachable master');
  t.equal(await c.client(cc!.address).exists(electionKey(nodeOf(a!.address)), electionKey(nodeOf(b!.address))), 0, 'no election lock');
  const st = s.agent!.status();
  t.equal(st.mastersReached, 1, 'it knows it reaches one master of three');
  // its probe seats cannot be renewed on a majority: it gave them up, and probes nothing
  t.same(st.probing, [], 'no probe seat kept from a minority');
  t.same(st.nodes, [], 'no node tracked, so none it could vote on');
  await t.rejects(app.get(keyOnC), /^CLUSTERDOWN/, 'still not routing');
  t.comment(`stopped two masters: last write acknowledged ${(lastOk - stoppedAt).toFixed(0)} ms after, refused from ${(refusedAt - stoppedAt).toFixed(0)} ms (lease ${timing.leaseMs} ms)`);

  a!.resume();
  b!.resume();
  await waitFor('routing again once the masters answer', async () => (await app.set(keyOnC, 'after').catch(() => null)) === 'OK');
  t.equal(await c.client(cc!.address).get(keyOnC), 'after');
});

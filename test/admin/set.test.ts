/**
 * `ringside set` (issue 24) on a running cluster with a sidecar: durability switched on and off
 * (the sidecar sends WAIT, then stops), a shorter lease rolled out in two steps (a floor that
 * switches and moves honour, removed a lease later), a longer one at once; refusals.
 */
import t from 'tap';
import Redis from 'ioredis';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setLogSink } from '../../src/observe/log';
import { leaseToWaitMs } from '../../src/cluster/config';
import { readCopy } from '../../src/cluster/store';
import { changed, setCluster } from '../../src/admin/set';
import { leaseWaitMs } from '../../src/admin/move-slots';
import { startCluster } from '../failover/servers';
import { BIN, ROOT, commandCalls, finalMasters, inProcessSidecar, keyOn, logEvents, waitFor } from '../failover/load';

setLogSink(() => {});
const run = promisify(execFile);
const timing = { checkMs: 200, leaseMs: 1200, downAfterMs: 500 };
const errorOf = async (p: Promise<unknown>): Promise<string> => p.then(() => 'no error', (e: Error) => e.message);

t.test('set: durability on and off, a shorter lease in two steps, a longer one at once', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing });
  const seeds = c.seeds.split(',');
  const sc = await inProcessSidecar(t, c, '1', { leaseMs: undefined, checkMs: undefined });
  const app = new Redis({ port: sc.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  t.teardown(() => app.disconnect());
  const a = c.shards[0]!.master.address;
  const key = keyOn(c.config, a, 'set');

  // durability, from the CLI
  const out = await run(process.execPath, [BIN, 'set', '--durability', 'replica', '--seeds', c.seeds], { cwd: ROOT });
  t.match(out.stdout, /epoch 2: durability async → replica/, 'ringside set --durability replica');
  await waitFor('the sidecar to adopt epoch 2', () => sc.sidecar!.stats.epoch === 2);
  const waits = await commandCalls(c.client(a), 'wait');
  t.equal(await app.set(key, 'v'), 'OK');
  t.ok((await commandCalls(c.client(a), 'wait')) > waits, 'the sidecar now confirms writes with WAIT');
  await setCluster({ seeds, durability: 'async' });
  await waitFor('the sidecar to adopt epoch 3', () => sc.sidecar!.stats.epoch === 3);
  const waits2 = await commandCalls(c.client(a), 'wait');
  await app.set(key, 'w');
  t.equal(await commandCalls(c.client(a), 'wait'), waits2, 'and stops when it is switched off');

  // a shorter lease: a floor first, removed a lease later
  const lines: string[] = [];
  const started = Date.now();
  const pending = setCluster({ seeds, leaseMs: 600, onProgress: (l) => lines.push(l) });
  await waitFor('the first step', async () => (await finalMasters(c)).config.epoch === 4);
  const step1 = (await finalMasters(c)).config;
  t.same(step1.timing, { checkMs: 200, leaseMs: 600, downAfterMs: 500, leaseFloorMs: 1200 }, 'step 1: the new lease, and the old one as a floor');
  t.equal(leaseToWaitMs(step1.timing), 1200, 'switches wait the old lease meanwhile');
  t.ok(leaseWaitMs(step1) >= 1200, 'and so do moves');
  t.match(await errorOf(setCluster({ seeds, checkMs: 100 })), /a shorter lease is being rolled out/, 'another set waits for it');
  const done = await pending;
  t.ok(Date.now() - started >= 1200, 'set waited the old lease before the second step');
  t.same(done.timing, { checkMs: 200, leaseMs: 600, downAfterMs: 500 }, 'step 2: the floor is gone');
  await waitFor('the sidecar to route on the new lease', () => sc.sidecar!.view.leaseMs === 600);
  t.match(lines.join('\n'), /lease floor removed/);

  // a longer lease: one step
  const longer = await setCluster({ seeds, leaseMs: 900 });
  t.equal(longer.epoch, done.epoch + 1, 'one epoch');
  t.equal(longer.timing.leaseFloorMs, undefined);
  const copy = await readCopy(c.client(a), a);
  t.ok(copy.ok && copy.config.timing.leaseMs === 900, 'on the masters');

  // refusals
  t.match(await errorOf(setCluster({ seeds, leaseMs: 150 })), /timing.leaseMs must be longer than timing.checkMs/, 'a lease not longer than checkMs');
  t.throws(() => changed({ ...longer, switching: { node: 'a', from: a, to: 'x:1', since: 0, by: 'x' } }, { seeds, checkMs: 300 }), /fail-over of node a is under way/);
  const cli = await run(process.execPath, [BIN, 'set', '--seeds', c.seeds], { cwd: ROOT }).then(() => null, (e: { code: number; stderr: string }) => e);
  t.equal(cli?.code, 2, 'no setting named: a usage error');
  const events = await logEvents(c, seeds, ['settings-changed']);
  t.equal(events.length, 4, 'each change in ringside log');
});

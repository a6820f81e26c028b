/**
 * The observation port of a real sidecar in front of real redis-server processes: the counts a
 * scrape shows after a known workload, readiness following the lease (SIGSTOP / SIGCONT of two of
 * three masters), and SLOWLOG GET naming the node each command went to.
 */
import t from 'tap';
import { startCluster, directClient } from '../helpers/cluster';
import { startSidecar, RawClient, resp, ownerOf } from '../proxy/helpers';
import { slotOf } from '../../src/cluster/slot';
import { scrape, sumOf, get, until } from './sidecar-harness';

t.test('a scrape after a known workload shows its counts', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster, { metricsPort: 0, failover: false });
  t.match(sidecar.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'the HTTP port is on loopback');

  const before = await scrape(sidecar.metricsUrl);
  t.equal(sumOf(before, 'ringside_commands_total'), 0, 'no command counted before the workload');
  t.equal(sumOf(before, 'ringside_connections_received_total'), 0);

  const c = await RawClient.connect(t, sidecar.options.port);
  let bytesReceived = 0;
  c.socket.on('data', (d: Buffer) => (bytesReceived += d.length));
  let bytesSent = 0;
  const send = async (...cmds: Buffer[]): Promise<unknown[]> => {
    const n = c.replies.length;
    const buf = Buffer.concat(cmds);
    bytesSent += buf.length;
    c.write(buf);
    await c.waitReplies(n + cmds.length);
    return c.replies.slice(n);
  };

  const keys = Array.from({ length: 100 }, (_, i) => `m:${i}`);
  const sets = await send(...keys.map((k, i) => resp('SET', k, `v${i}`)));
  t.same(sets, Array(100).fill('OK'), '100 SET answered OK');
  const gets = await send(...keys.slice(0, 50).map((k) => resp('GET', k)));
  t.same(gets, keys.slice(0, 50).map((_, i) => `v${i}`), '50 GET answered with the values');
  // three commands the sidecar refuses itself: wrong arity, a refused command, a CONFIG SET refused by name
  const refused = await send(resp('SET', 'lonely'), resp('MONITOR'), resp('CONFIG', 'SET', 'dir', '/tmp'));
  for (const r of refused) t.ok(r instanceof Error, `refused: ${(r as Error).message}`);
  // one error from a node: INCR on a value that is not a number
  const [incr] = await send(resp('INCR', 'm:0'));
  t.ok(incr instanceof Error && /not an integer/.test(incr.message), 'INCR on a string: the node\'s error');
  // one MGET across slots on different masters
  const owners = new Set(['m:0', 'm:1', 'm:2', 'm:3', 'm:4', 'm:5'].map((k) => ownerOf(cluster.config, k)));
  t.ok(owners.size > 1 && new Set(['m:0', 'm:1', 'm:2', 'm:3', 'm:4', 'm:5'].map((k) => slotOf(k))).size > 1, 'the MGET keys span slots and masters');
  const [mget] = await send(resp('MGET', 'm:0', 'm:1', 'm:2', 'm:3', 'm:4', 'm:5'));
  t.same(mget, ['v0', 'v1', 'v2', 'v3', 'v4', 'v5'], 'cross-slot MGET answered in order');

  const s = await scrape(sidecar.metricsUrl);
  const cmd = (command: string, outcome: string): number => sumOf(s, 'ringside_commands_total', { command, outcome });
  t.equal(cmd('set', 'ok'), 100, 'set ok 100');
  t.equal(cmd('set', 'refused'), 1, 'set refused 1 (wrong arity)');
  t.equal(cmd('set', 'error'), 0);
  t.equal(cmd('get', 'ok'), 50, 'get ok 50');
  t.equal(cmd('monitor', 'refused'), 1, 'monitor refused 1');
  t.equal(cmd('config', 'refused'), 1, 'config refused 1');
  t.equal(cmd('incr', 'error'), 1, 'incr error 1');
  t.equal(cmd('mget', 'ok'), 1, 'mget ok 1');
  t.equal(sumOf(s, 'ringside_commands_total'), 155, 'nothing else counted: 100 + 50 + 3 + 1 + 1');
  t.equal(sumOf(s, 'ringside_commands_total', { outcome: 'refused' }), 3, 'three refused in all');

  // histograms: every command once per family; commands that went to one node once per node
  const fam = (family: string): number => sumOf(s, 'ringside_command_duration_seconds_count', { family });
  t.equal(fam('simple'), 151, 'family simple: 100 SET + 50 GET + 1 INCR');
  t.equal(fam('split'), 1, 'family split: the MGET');
  t.equal(fam('local'), 3, 'family local: the three refusals');
  t.equal(sumOf(s, 'ringside_command_duration_seconds_count'), 155, 'one observation per command');
  t.equal(sumOf(s, 'ringside_command_duration_seconds_bucket', { family: 'simple', le: '+Inf' }), 151, '+Inf bucket = count');
  t.ok(sumOf(s, 'ringside_command_duration_seconds_sum', { family: 'simple' }) > 0, 'latency sum > 0');

  const mgetKeys = ['m:0', 'm:1', 'm:2', 'm:3', 'm:4', 'm:5'];
  const perMaster = new Map<string, { single: number; mget: number }>(cluster.seeds.map((m) => [m, { single: 0, mget: 0 }]));
  keys.forEach((k, i) => (perMaster.get(ownerOf(cluster.config, k))!.single += i < 50 ? 2 : 1));
  perMaster.get(ownerOf(cluster.config, 'm:0'))!.single++; // the INCR
  for (const m of new Set(mgetKeys.map((k) => ownerOf(cluster.config, k)))) perMaster.get(m)!.mget = 1;
  let nodeTotal = 0;
  for (const [m, n] of perMaster) {
    const count = sumOf(s, 'ringside_node_command_duration_seconds_count', { node: m });
    nodeTotal += count;
    t.ok(count >= n.single && count <= n.single + n.mget, `node ${m}: its ${n.single} single-node commands (+ the MGET part it answered: ${n.mget}); counted ${count}`);
    t.equal(count, n.single + n.mget, `node ${m}: the MGET part it answered is counted on it`);
    t.equal(sumOf(s, 'ringside_node_connections', { node: m }), 1, `one shared data connection open to ${m}`);
    t.ok(sumOf(s, 'ringside_node_bytes_out_total', { node: m }) > 0, `bytes sent to ${m}`);
  }
  t.ok(nodeTotal >= 151, 'per-node histograms cover every single-node command');

  t.equal(sumOf(s, 'ringside_connected_clients'), 1, 'one application connection open');
  t.equal(sumOf(s, 'ringside_connections_received_total'), 1, 'one accepted');
  t.equal(sumOf(s, 'ringside_rejected_connections_total'), 0);
  t.equal(sumOf(s, 'ringside_bytes_in_total'), bytesSent, 'bytes in = exactly the bytes the client wrote');
  t.equal(sumOf(s, 'ringside_bytes_out_total'), bytesReceived, 'bytes out = exactly the bytes the client read');
  t.ok(bytesSent > 0 && bytesReceived > 0);
  t.equal(sumOf(s, 'ringside_redirects_total'), 0, 'no redirects on a stable cluster');

  // the first periodic check comes checkMs (200 ms) after start: wait for it, then look again
  await until('a periodic check', async () => sumOf(await scrape(sidecar.metricsUrl), 'ringside_config_checks_total') > 0);
  t.ok(sumOf(await scrape(sidecar.metricsUrl), 'ringside_config_checks_total') > 0, 'config checks counted');
  t.equal(sumOf(s, 'ringside_config_reloads_total'), 1, 'one configuration load: the start-up one');
  t.equal(sumOf(s, 'ringside_lease_valid'), 1, 'lease valid');
  t.equal(sumOf(s, 'ringside_config_epoch'), cluster.config.epoch, 'epoch of the cluster configuration');
  t.equal(sumOf(s, 'ringside_config_info', { version: sidecar.view.routing!.version }), 1, 'config_info carries the cached version');
  const since = sumOf(s, 'ringside_seconds_since_config_confirmed');
  t.ok(Number.isFinite(since) && since >= 0, `time since confirmation is a finite figure (${since})`);
  t.ok(since * 1000 <= sidecar.view.leaseMs + 1000, 'and within the lease while the lease is valid');

  // a second connection, closed: the gauge follows, the counter does not go back
  const c2 = await RawClient.connect(t, sidecar.options.port);
  await until('the second connection counted', async () => sumOf(await scrape(sidecar.metricsUrl), 'ringside_connected_clients') === 2);
  c2.socket.destroy();
  await until('the second connection gone', async () => sumOf(await scrape(sidecar.metricsUrl), 'ringside_connected_clients') === 1);
  t.equal(sumOf(await scrape(sidecar.metricsUrl), 'ringside_connections_received_total'), 2, 'two accepted in all');

  t.equal((await get(`${sidecar.metricsUrl}/healthz`)).status, 200, '/healthz 200');
  const ready = await get(`${sidecar.metricsUrl}/readyz`);
  t.equal(ready.status, 200, `/readyz 200 (${ready.body.trim()})`);
});

t.test('readiness flips when the lease lapses and back when masters return', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster, { metricsPort: 0, failover: false, checkMs: 100, leaseMs: 600, nodeTimeoutMs: 500 });
  const victims = cluster.shards.slice(0, 2).map((s) => s.master);
  t.teardown(() => victims.forEach((v) => v.paused && v.resume()));
  const c = await RawClient.connect(t, sidecar.options.port);
  c.write(resp('SET', 'r:1', 'x'));
  await c.waitReplies(1);
  t.equal(c.replies[0], 'OK');

  t.equal((await get(`${sidecar.metricsUrl}/readyz`)).status, 200, 'ready before');
  const before = await scrape(sidecar.metricsUrl);
  t.equal(sumOf(before, 'ringside_lease_valid'), 1);
  t.equal(sumOf(before, 'ringside_lease_expiries_total'), 0);

  for (const v of victims) v.pause();
  // first the failed check marks two masters unreachable, then the lease runs out
  await until('/readyz answers 503', async () => (await get(`${sidecar.metricsUrl}/readyz`)).status === 503);
  await until('the lease lapsed', async () => sumOf(await scrape(sidecar.metricsUrl), 'ringside_lease_valid') === 0);
  const notReady = await get(`${sidecar.metricsUrl}/readyz`);
  t.equal(notReady.status, 503, '/readyz 503 while the lease is out');
  t.match(notReady.body, /not confirmed by a majority.*lease/, `the 503 says why: ${notReady.body.trim()}`);
  const lapsed = await scrape(sidecar.metricsUrl);
  t.equal(sumOf(lapsed, 'ringside_lease_valid'), 0, 'lease_valid 0');
  t.equal(sumOf(lapsed, 'ringside_lease_expiries_total'), 1, 'one expiry');
  t.ok(sumOf(lapsed, 'ringside_seconds_since_config_confirmed') * 1000 > 600, 'time since confirmation beyond the lease');
  t.ok(sumOf(lapsed, 'ringside_config_check_failures_total') > 0, 'failed checks counted');
  t.equal((await get(`${sidecar.metricsUrl}/healthz`)).status, 200, 'still alive (/healthz 200)');
  // the third master, still up, is refused too: the sidecar does not route without its lease
  const live = cluster.shards[2]!.master.address;
  const k = Array.from({ length: 1000 }, (_, i) => `r:${i}`).find((x) => ownerOf(cluster.config, x) === live)!;
  const n = c.replies.length;
  c.write(resp('GET', k));
  await c.waitReplies(n + 1);
  t.match((c.replies[n] as Error).message, /CLUSTERDOWN/, 'a command for the live master is refused while the lease is out');

  for (const v of victims) v.resume();
  await until('/readyz answers 200 again', async () => (await get(`${sidecar.metricsUrl}/readyz`)).status === 200);
  const back = await scrape(sidecar.metricsUrl);
  t.equal(sumOf(back, 'ringside_lease_valid'), 1, 'lease_valid 1 again');
  t.equal(sumOf(back, 'ringside_lease_expiries_total'), 1, 'still one expiry');
  // the lease is back: commands flow again on the same connection or a new one
  await until('a GET through the sidecar succeeds again', async () => {
    const c2 = await RawClient.connect(t, sidecar.options.port);
    c2.write(resp('GET', 'r:1'));
    await c2.waitReplies(1);
    c2.socket.destroy();
    return c2.replies[0] === 'x';
  });
  t.pass('commands are routed again');
});

t.test('SLOWLOG GET through the sidecar shows its own entries with the node address', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster, { failover: false });
  const c = await RawClient.connect(t, sidecar.options.port);
  const run = async (...args: string[]): Promise<unknown> => {
    const n = c.replies.length;
    c.write(resp(...args));
    await c.waitReplies(n + 1);
    return c.replies[n];
  };
  t.equal(await run('CONFIG', 'SET', 'slowlog-log-slower-than', '0'), 'OK');
  t.same(await run('CONFIG', 'GET', 'slowlog-log-slower-than'), ['slowlog-log-slower-than', '0']);
  t.equal(await run('SLOWLOG', 'RESET'), 'OK');
  const [ka, kb] = ['sl:a', 'sl:b'];
  t.equal(await run('SET', ka, '1'), 'OK');
  t.equal(await run('GET', kb), null);
  const entries = (await run('SLOWLOG', 'GET', '-1')) as unknown[][];
  t.ok(Array.isArray(entries), 'an array of entries');
  const byCmd = new Map(entries.map((e) => [(e[3] as string[]).join(' '), e]));
  const set = byCmd.get(`SET ${ka} 1`);
  const getE = byCmd.get(`GET ${kb}`);
  t.ok(set && getE, `the SET and the GET are logged: ${[...byCmd.keys()].join(' | ')}`);
  t.equal(set![6], ownerOf(cluster.config, ka), 'the SET entry names the master it went to');
  t.equal(getE![6], ownerOf(cluster.config, kb), 'the GET entry names the master it went to');
  t.match(set![4], /^127\.0\.0\.1:\d+$/, 'client address');
  t.equal(typeof set![0], 'number');
  t.ok((getE![0] as number) > (set![0] as number), 'ids grow: the later GET has the larger id');
  t.ok(entries.indexOf(getE!) < entries.indexOf(set!), 'newest first');
  // the nodes' own slow logs are not what SLOWLOG returns: a node has no entry naming a node
  const node = directClient(t, ownerOf(cluster.config, ka));
  const nodeLog = (await node.call('SLOWLOG', 'GET', '-1')) as unknown[][];
  t.ok(nodeLog.every((e) => e.length <= 6), 'a data node\'s entries have six fields; the sidecar\'s seven');
  t.equal(await run('SLOWLOG', 'LEN'), entries.length + 1, 'SLOWLOG LEN counts the SLOWLOG GET itself too');
});

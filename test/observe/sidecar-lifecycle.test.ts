/**
 * The process lifecycle of `ringside serve` and `ringside demo` as child processes: SIGTERM under
 * load loses no acknowledged write and exits 0, --drain-ms bounds the drain, the banner prints the
 * metrics URL, and the logs are JSON lines at the level asked for, never one per command.
 */
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import Redis from 'ioredis';
import { startCluster, directClient } from '../helpers/cluster';
import { RawClient, resp, ownerOf } from '../proxy/helpers';
import { Child, freePort, get, scrape, sumOf, until, sleep } from './sidecar-harness';

const serveArgs = (seeds: string[], port: number, ...more: string[]): string[] => [
  'serve', '--seeds', seeds.join(','), '--port', String(port), '--metrics-port', '0', '--no-failover', '--check-ms', '200', '--lease-ms', '2000', ...more,
];

/** ioredis to the sidecar, connected; no ready check (no INFO of its own), no retries, no offline queue. */
async function client(port: number): Promise<Redis> {
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, retryStrategy: () => null, enableOfflineQueue: false, enableReadyCheck: false });
  c.on('error', () => undefined);
  await new Promise((r) => c.once('ready', r));
  return c;
}

t.test('SIGTERM under load: every acknowledged write is on the nodes, exit 0', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const port = await freePort();
  const child = Child.start(t, serveArgs(cluster.seeds, port, '--drain-ms', '5000'));
  const { metricsUrl } = await child.serveBanner();
  await until('ready', async () => (await get(`${metricsUrl}/readyz`)).status === 200);

  const WRITERS = 8;
  const DEPTH = 16; // commands in flight per client
  const acked = new Map<string, string>();
  let sentTerm = false;
  let ackedAfterTerm = 0;
  let failed = 0;
  const clients = await Promise.all(Array.from({ length: WRITERS }, () => client(port)));
  t.teardown(() => clients.forEach((c) => c.disconnect()));
  const writers = clients.map(async (c, w) => {
    let i = 0;
    let alive = true;
    const lane = async (): Promise<void> => {
      while (alive) {
        const key = `term:${w}:${i++}`;
        const value = `${w}-${i}-${key.length}`;
        try {
          const r = await c.set(key, value);
          if (r === 'OK') {
            acked.set(key, value);
            if (sentTerm) ackedAfterTerm++;
          }
        } catch {
          failed++;
          alive = false;
        }
      }
    };
    await Promise.all(Array.from({ length: DEPTH }, lane));
  });
  await until('some writes acknowledged', () => acked.size >= 2000, 20_000, 10);
  const from = child.logs.length;
  sentTerm = true;
  child.proc.kill('SIGTERM');
  const exit = await child.exited;
  await Promise.all(writers);
  t.same(exit, { code: 0, signal: null }, 'the process exits 0');
  t.ok(failed >= WRITERS, 'every writer saw its connection end');
  t.comment(`${acked.size} acknowledged, ${ackedAfterTerm} of them after SIGTERM was sent`);
  const sig = child.logs.slice(from).find((l) => l.event === 'signal');
  t.same([sig?.signal, sig?.action], ['SIGTERM', 'draining and stopping'], 'the signal is logged');
  t.ok(child.logs.slice(from).some((l) => l.event === 'sidecar-stopped'), 'and the stop');

  // read every acknowledged key straight from the master that owns it
  const direct = new Map(cluster.seeds.map((m) => [m, directClient(t, m)]));
  const byNode = new Map<string, string[]>();
  for (const k of acked.keys()) {
    const m = ownerOf(cluster.config, k);
    if (!byNode.has(m)) byNode.set(m, []);
    byNode.get(m)!.push(k);
  }
  let missing = 0;
  for (const [m, keys] of byNode) {
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const pipe = direct.get(m)!.pipeline();
      for (const k of chunk) pipe.get(k);
      const res = (await pipe.exec())!;
      res.forEach(([, v], j) => v !== acked.get(chunk[j]!) && missing++);
    }
  }
  t.equal(missing, 0, `all ${acked.size} acknowledged writes are on their masters with their values`);
  t.ok(acked.size >= 2000);
});

t.test('--drain-ms: the drain waits for in-flight commands up to the deadline, then closes', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const key = 'drain:list';
  const owner = directClient(t, ownerOf(cluster.config, key));

  // a long deadline: a blocked BLPOP holds the stop until its answer comes, then the process exits 0
  {
    const port = await freePort();
    const child = Child.start(t, serveArgs(cluster.seeds, port, '--drain-ms', '600000'));
    const { metricsUrl } = await child.serveBanner();
    await until('ready', async () => (await get(`${metricsUrl}/readyz`)).status === 200);
    const c = await RawClient.connect(t, port);
    c.write(resp('BLPOP', key, '0'));
    await until('the BLPOP is blocked on the node', async () => /blocked_clients:1/.test(await owner.info('clients')));
    const from = child.logs.length;
    child.proc.kill('SIGTERM');
    await child.waitLog('signal', (l) => l.event === 'signal', from);
    // still draining: new connections are refused, the process is still there
    await until('the listener is closed', () => new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), res(false)));
      s.on('error', () => res(true));
    }));
    await sleep(300);
    t.equal(child.exit, null, 'the process waits for the blocked command');
    t.notOk(c.closed, 'the client with a command in flight is still connected');
    await owner.rpush(key, 'released');
    await c.waitReplies(1);
    t.same(c.replies[0], [key, 'released'], 'the in-flight BLPOP gets its answer during the drain');
    t.same(await child.exited, { code: 0, signal: null }, 'then the process exits 0');
    await c.waitClosed();
    t.ok(c.closed, 'and the client connection is closed');
  }

  // a short deadline: the blocked BLPOP is cut off, the process still exits 0
  {
    const port = await freePort();
    const child = Child.start(t, serveArgs(cluster.seeds, port, '--drain-ms', '200'));
    const { metricsUrl } = await child.serveBanner();
    await until('ready', async () => (await get(`${metricsUrl}/readyz`)).status === 200);
    const c = await RawClient.connect(t, port);
    c.write(resp('BLPOP', key, '0'));
    await until('the BLPOP is blocked on the node', async () => /blocked_clients:1/.test(await owner.info('clients')));
    child.proc.kill('SIGTERM');
    t.same(await child.exited, { code: 0, signal: null }, 'exits 0 once the deadline passed');
    await c.waitClosed();
    t.equal(c.replies.length, 0, 'the cut-off BLPOP got no answer, only the close');
  }

  // a bad value is a usage error
  const bad = Child.start(t, serveArgs(cluster.seeds, 0, '--drain-ms', 'soon'));
  t.equal((await bad.exited).code, 2, `--drain-ms soon: exit 2 (stderr: ${bad.otherStderr.join('\n')} ${JSON.stringify(bad.logs)})`);
  t.match(bad.otherStderr.join('\n'), /--drain-ms must be a whole number/);
});

t.test('logs: JSON lines at the level asked for, none per command', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });

  // default level (info): start-up events, then nothing while commands flow
  const port = await freePort();
  const child = Child.start(t, serveArgs(cluster.seeds, port));
  const { metricsUrl } = await child.serveBanner();
  await until('ready', async () => (await get(`${metricsUrl}/readyz`)).status === 200);
  const started = child.logs.find((l) => l.event === 'sidecar-started');
  t.equal(started?.level, 'info', 'sidecar-started at info');
  t.equal(started?.metrics, metricsUrl, 'it names the metrics URL');
  t.ok(child.logs.some((l) => l.event === 'config-adopted'), 'the configuration adopted is an event');
  for (const l of child.logs) t.ok(typeof l.time === 'string' && typeof l.level === 'string' && typeof l.event === 'string', `time, level, event: ${l.event}`);
  const before = child.logs.length;
  const c = await client(port);
  t.teardown(() => c.disconnect());
  const pipe = c.pipeline();
  for (let i = 0; i < 500; i++) pipe.set(`log:${i}`, 'v').get(`log:${i}`);
  pipe.call('NOSUCHCOMMAND');
  pipe.mget('log:1', 'log:2', 'log:3');
  const res = (await pipe.exec())!;
  t.equal(res.filter(([e]) => e === null).length, 1001, '1001 commands answered (one unknown refused)');
  const s = await scrape(metricsUrl);
  t.same(
    ['set', 'get', 'mget', 'unknown'].map((command) => sumOf(s, 'ringside_commands_total', { command })),
    [500, 500, 1, 1],
    'all counted (besides what ioredis sends on connecting)',
  );
  t.same(child.logs.slice(before).map((l) => l.event).filter((e) => !/^(lease-|config-)/.test(e)), [], 'no log line for the commands');
  t.same(child.otherStderr, [], 'nothing but JSON on stderr');
  child.proc.kill('SIGTERM');
  t.equal((await child.exited).code, 0);

  // --log-level warn: no info lines at all; RINGSIDE_LOG_LEVEL=error the same from the environment
  for (const [args, env, name] of [
    [['--log-level', 'warn'], {}, '--log-level warn'],
    [[], { RINGSIDE_LOG_LEVEL: 'error' }, 'RINGSIDE_LOG_LEVEL=error'],
  ] as const) {
    const p = await freePort();
    const ch = Child.start(t, serveArgs(cluster.seeds, p, ...args), env);
    const b = await ch.serveBanner();
    await until('ready', async () => (await get(`${b.metricsUrl}/readyz`)).status === 200);
    ch.proc.kill('SIGTERM');
    t.equal((await ch.exited).code, 0);
    t.same(ch.logs.filter((l) => l.level === 'info' || l.level === 'debug').map((l) => l.event), [], `${name}: no info lines (start, signal, stop)`);
    t.match(ch.stdout, /listening on/, `${name}: the banner is still printed`);
  }
  // a flag beats the environment; an unknown level is a usage error
  {
    const p = await freePort();
    const ch = Child.start(t, serveArgs(cluster.seeds, p, '--log-level', 'info'), { RINGSIDE_LOG_LEVEL: 'error' });
    await ch.serveBanner();
    t.ok(ch.logs.some((l) => l.event === 'sidecar-started'), '--log-level info over RINGSIDE_LOG_LEVEL=error');
    ch.proc.kill('SIGTERM');
    await ch.exited;
  }
  const bad = Child.start(t, serveArgs(cluster.seeds, 0, '--log-level', 'loud'));
  t.equal((await bad.exited).code, 2, `--log-level loud: exit 2 (stderr: ${bad.otherStderr.join('\n')} ${JSON.stringify(bad.logs)})`);
  t.match(bad.otherStderr.join('\n'), /--log-level must be one of error, warn, info, debug/);
});

t.test('`ringside demo` prints the metrics URL, and SIGTERM leaves no redis-server behind', async (t) => {
  const port = await freePort();
  const child = Child.start(t, ['demo', '--port', String(port), '--metrics-port', '0', '--replicas', '0']);
  const m = await child.waitStdout(/metrics: (http:\/\/127\.0\.0\.1:\d+)\/metrics\s+health: \S+\/readyz/, 60_000);
  t.match(child.stdout, new RegExp(`listening on 127\\.0\\.0\\.1:${port}`), 'listening on the port asked for');
  const metricsUrl = m[1]!;
  t.equal((await get(`${metricsUrl}/readyz`)).status, 200, 'the printed URL answers /readyz 200');
  t.match((await get(`${metricsUrl}/metrics`)).body, /ringside_lease_valid 1/, 'and /metrics');
  const c = await client(port);
  t.equal(await c.set('demo:k', 'v'), 'OK', 'the demo routes commands');
  c.disconnect();

  // the demo's redis-server children, from /proc
  const kids = fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === child.proc.pid && fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'redis-server';
      } catch {
        return false;
      }
    })
    .map(Number);
  t.equal(kids.length, 3, 'three redis-server children (3 masters, no replicas)');
  child.proc.kill('SIGTERM');
  t.same(await child.exited, { code: 0, signal: null }, 'SIGTERM: exit 0');
  const alive = kids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  t.same(alive, [], 'no redis-server child remains');
});

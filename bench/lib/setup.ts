/**
 * Starts what the benchmark measures: redis-servers, twemproxy (nutcracker) and the Ringside
 * sidecar, each on its own free loopback port (and a Unix socket), all through `Procs`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Child, Endpoint, Procs, freePort, run, waitReady } from './procs';
import { NODE_FLAGS } from '../../src/cli/node-flags';

export const ROOT = path.resolve(__dirname, '..', '..', '..'); // dist/bench/lib → repo root
export const RINGSIDE_BIN = path.join(ROOT, 'bin', 'ringside.js');

export interface Target {
  name: 'direct' | 'twemproxy' | 'ringside' | 'relay';
  tcp: { port: number };
  unix: { path: string };
  /** The process whose CPU and RSS are measured (the proxy; for direct, the redis-server). */
  proc: Child;
}

export interface RedisServer {
  port: number;
  socket: string;
  child: Child;
}

export async function startRedis(procs: Procs, name: string, extraArgs: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const socket = path.join(procs.work, `${name}.sock`);
  const child = procs.start(name, 'redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--unixsocket', socket,
    '--unixsocketperm', '700',
    '--save', '',
    '--appendonly', 'no',
    '--dir', procs.work,
    '--maxclients', '20000',
    '--daemonize', 'no',
    ...extraArgs,
  ]);
  await waitReady({ port }, child, name);
  return { port, socket, child };
}

/** nutcracker with two pools over the same three masters: one on TCP, one on a Unix socket. */
export async function startTwemproxy(procs: Procs, masters: RedisServer[], launcher: string[] = [], readyMs = 15000): Promise<Target> {
  const port = await freePort();
  const statsPort = await freePort();
  const sock = path.join(procs.work, 'twemproxy.sock');
  const pool = (listen: string): string[] => [
    `  listen: ${listen}`,
    '  hash: fnv1a_64',
    '  distribution: ketama',
    '  redis: true',
    '  auto_eject_hosts: false',
    '  backlog: 1024',
    '  timeout: 5000',
    '  servers:',
    ...masters.map((m) => `   - 127.0.0.1:${m.port}:1`),
  ];
  const conf = ['bench_tcp:', ...pool(`127.0.0.1:${port}`), 'bench_unix:', ...pool(`${sock} 0700`), ''].join('\n');
  const confFile = path.join(procs.work, 'nutcracker.yml');
  fs.writeFileSync(confFile, conf);
  const check = await run('nutcracker', ['-t', '-c', confFile], { timeoutMs: 10000 });
  if (check.code !== 0) throw new Error(`nutcracker rejected its configuration:\n${check.stdout}${check.stderr}\n${conf}`);
  const [cmd, ...pre] = [...launcher, 'nutcracker'];
  const child = procs.start('twemproxy', cmd!, [
    ...pre,
    '-c', confFile,
    '-s', String(statsPort),
    '-a', '127.0.0.1',
    '-o', path.join(procs.work, 'nutcracker.out'),
  ]);
  await waitReady({ port }, child, 'twemproxy', readyMs);
  await waitReady({ path: sock }, child, 'twemproxy (unix)', readyMs);
  return { name: 'twemproxy', tcp: { port }, unix: { path: sock }, proc: child };
}

/** Whether `ringside <command> --help` works in this build. */
export async function ringsideHas(command: string): Promise<boolean> {
  if (!fs.existsSync(RINGSIDE_BIN)) return false;
  const r = await run(process.execPath, [RINGSIDE_BIN, command, '--help'], { timeoutMs: 15000, cwd: ROOT });
  return r.code === 0;
}

/** Writes the cluster configuration (three masters, no replicas) into the masters. */
export async function createCluster(
  masters: RedisServer[],
  log: (s: string) => void,
  opts: { replicas?: RedisServer[]; createArgs?: string[] } = {},
): Promise<void> {
  const addrs = masters.map((m) => `127.0.0.1:${m.port}`);
  const shards = addrs.map((a, i) => (opts.replicas?.[i] ? `${a},127.0.0.1:${opts.replicas[i]!.port}` : a));
  if (opts.replicas?.length || opts.createArgs?.length || (await ringsideHas('create'))) {
    const args = [RINGSIDE_BIN, 'create', ...shards.flatMap((a) => ['--shard', a]), ...(opts.createArgs ?? [])];
    const r = await run(process.execPath, args, {
      timeoutMs: 30000,
      cwd: ROOT,
    });
    if (r.code !== 0) throw new Error(`ringside create failed (${r.code}):\n${r.stdout}${r.stderr}`);
    return;
  }
  // Until `ringside create` exists: the same document written with the library functions.
  log('bench: `ringside create` not available; writing the configuration with dist/src/cluster/*.js');
  /* eslint-disable @typescript-eslint/no-require-imports */
  const config = require(path.join(ROOT, 'dist/src/cluster/config.js')) as {
    initialConfig(shards: Array<{ master: string; replicas: string[] }>): unknown;
  };
  const store = require(path.join(ROOT, 'dist/src/cluster/store.js')) as {
    controlClient(address: string): { disconnect(): void };
    writeCopy(client: unknown, config: unknown): Promise<boolean>;
  };
  const cfg = config.initialConfig(addrs.map((master) => ({ master, replicas: [] })));
  for (const a of addrs) {
    const c = store.controlClient(a);
    try {
      await store.writeCopy(c, cfg);
    } finally {
      c.disconnect();
    }
  }
}

/** `launcher`: a command the process is started under (e.g. valgrind), with `readyMs` to match. Node runs with
 * NODE_FLAGS, as every launcher of the sidecar does (src/cli/node-flags.ts), and `nodeArgs` after them. */
export async function startRingside(
  procs: Procs,
  masters: RedisServer[],
  extraArgs: string[],
  name = 'ringside',
  launcher: string[] = [],
  readyMs = 30000,
  nodeArgs: string[] = [],
): Promise<Target> {
  const port = await freePort();
  const sock = path.join(procs.work, `${name}.sock`);
  const seeds = masters.map((m) => `127.0.0.1:${m.port}`).join(',');
  const [cmd, ...pre] = [...launcher, process.execPath];
  const child = procs.start(
    name,
    cmd!,
    [...pre, ...NODE_FLAGS, ...nodeArgs, RINGSIDE_BIN, 'serve', '--port', String(port), '--seeds', seeds, '--unixsocket', sock, '--metrics-port', '0', ...extraArgs],
    { cwd: ROOT },
  );
  try {
    await waitReady({ port }, child, name, readyMs);
    await waitReady({ path: sock }, child, `${name} (unix)`, 10000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- ${name} log ---\n${procs.tail(child)}`);
  }
  return { name: 'ringside', tcp: { port }, unix: { path: sock }, proc: child };
}

/** The blind Node.js relay (bench/lib/relay.ts) in front of the same masters, with the sidecar's node flags. */
export async function startRelay(procs: Procs, masters: RedisServer[]): Promise<Target> {
  const port = await freePort();
  const sock = path.join(procs.work, 'relay.sock');
  const child = procs.start('relay', process.execPath, [
    ...NODE_FLAGS,
    path.join(__dirname, 'relay.js'),
    '--port', String(port),
    '--unix', sock,
    '--backends', masters.map((m) => `127.0.0.1:${m.port}`).join(','),
  ]);
  await waitReady({ port }, child, 'relay');
  await waitReady({ path: sock }, child, 'relay (unix)');
  return { name: 'relay', tcp: { port }, unix: { path: sock }, proc: child };
}

export function directTarget(r: RedisServer): Target {
  return { name: 'direct', tcp: { port: r.port }, unix: { path: r.socket }, proc: r.child };
}

/** redis-benchmark / redis-cli connection arguments for an endpoint. */
export function connArgs(e: Endpoint): string[] {
  return 'path' in e ? ['-s', e.path] : ['-h', e.host ?? '127.0.0.1', '-p', String(e.port)];
}

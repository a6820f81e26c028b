import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Socket, connect } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster } from '../../src/embedded/local-cluster';
import { DIR_PREFIX, RedisProcess, freePort, sweepStaleDirs, tiedToParent } from '../../src/embedded/redis-process';

/** The real binary, as RedisProcess would pick it before this file changes the environment. */
const REAL_REDIS = process.env.RINGSIDE_REDIS_SERVER ?? 'redis-server';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true; throws after `ms`. A bounded wait, never a timing assertion. */
async function until(what: string, probe: () => boolean | Promise<boolean>, ms = 10_000, every = 50): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(every);
  }
}

/** The state letter in /proc/<pid>/stat (R, S, Z, ...) and the parent pid; null when unreadable. */
function procStat(pid: number): { state: string; ppid: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' '); // comm may hold spaces and parens
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

/** The command line of `pid`, arguments joined by spaces; '' when unreadable. */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** True while `pid` exists and is not a zombie (a zombie has exited; it waits only to be reaped). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
  return procStat(pid)?.state !== 'Z';
}

/**
 * True while `pid` runs and is still the process this test started on `port` (its command line,
 * the fake script's or redis-server's rewritten title, names the port): guards against pid reuse.
 */
function stillOurs(pid: number, port: number): boolean {
  if (!running(pid)) return false;
  if (!existsSync('/proc')) return true; // cannot tell: assume it is
  return new RegExp(`\\b${port}\\b`).test(cmdline(pid));
}

/** SIGKILL, ignoring a process that is already gone. */
function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * Connects to 127.0.0.1:`port` and resolves with what `use` decides through `done`, or false on
 * an error, a close or after 1 s; the socket is destroyed either way.
 */
function probe(port: number, use: (sock: Socket, done: (ok: boolean) => void) => void): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
    use(sock, done);
  });
}

/**
 * True when something accepts a TCP connection on 127.0.0.1:`port`. A connection to a port in the
 * ephemeral range that nothing listens on can, rarely, be given that same port as its source and
 * connect to itself (TCP simultaneous open); that is not a listener.
 */
const listening = (port: number): Promise<boolean> =>
  probe(port, (sock, done) => sock.on('connect', () => done(sock.localPort !== port)));

/** True when the server on `port` answers INFO server as process `pid`. */
function answersAs(port: number, pid: number): Promise<boolean> {
  return probe(port, (sock, done) => {
    let text = '';
    sock.on('connect', () => sock.write('INFO server\r\n'));
    sock.on('data', (d) => {
      text += d.toString('latin1');
      const m = /\bprocess_id:(\d+)\r\n/.exec(text);
      if (m) done(Number(m[1]) === pid);
    });
  });
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface Invocation {
  n: number;
  pid: number;
  port: number;
}

t.test('a cluster whose second server fails to start rejects and leaves none of the others running', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringside-lc-test-'));
  // A stand-in for redis-server. Each invocation takes the next number (mkdir is atomic, so
  // concurrent invocations never share one) and records "number pid port"; the second one
  // exits 1 at once, the others wait a second and then become the real redis-server (exec: the
  // pid stays the same). The wait keeps the healthy starts under way when the failure is seen.
  const script = join(dir, 'fake-redis-server');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      `D=${shellQuote(dir)}`,
      'n=1',
      'while ! mkdir "$D/inv.$n" 2>/dev/null; do n=$((n+1)); done',
      'port=; prev=',
      'for a in "$@"; do [ "$prev" = --port ] && port=$a; prev=$a; done',
      'echo "$n $$ $port" > "$D/inv.$n/tmp" && mv "$D/inv.$n/tmp" "$D/inv.$n/info"',
      'if [ "$n" = 2 ]; then echo "fake redis-server: invocation 2 fails on purpose" >&2; exit 1; fi',
      'sleep 1',
      `exec ${shellQuote(REAL_REDIS)} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);

  const invocations = (): Invocation[] =>
    readdirSync(dir)
      .filter((f) => f.startsWith('inv.') && existsSync(join(dir, f, 'info')))
      .map((f) => {
        const [n, pid, port] = readFileSync(join(dir, f, 'info'), 'utf8').trim().split(' ').map(Number);
        return { n: n!, pid: pid!, port: port! };
      })
      .sort((a, b) => a.n - b.n);

  const savedEnv = process.env.RINGSIDE_REDIS_SERVER;
  process.env.RINGSIDE_REDIS_SERVER = script;
  t.teardown(() => {
    if (savedEnv === undefined) delete process.env.RINGSIDE_REDIS_SERVER;
    else process.env.RINGSIDE_REDIS_SERVER = savedEnv;
    // whatever is left over (only when the test fails): the fake script or the redis-server it became
    for (const inv of invocations()) if (stillOurs(inv.pid, inv.port)) killQuietly(inv.pid);
    rmSync(dir, { recursive: true, force: true });
  });

  const masters = 2;
  const replicasPerMaster = 1;
  const total = masters * (1 + replicasPerMaster);
  await t.rejects(
    LocalCluster.start({ masters, replicasPerMaster }),
    { name: 'RedisStartError', message: /exited with code 1.*invocation 2 fails on purpose/ },
    'the start rejects with the failed server’s error',
  );

  // Every start was made (a start that never ran would prove nothing); with the fix they all
  // have been by the time the start rejects, the bounded wait only matters without it.
  await until(`${total} invocations of the fake redis-server`, () => invocations().length >= total, 5000);
  const healthy = invocations().filter((inv) => inv.n !== 2);
  t.ok(healthy.length >= total - 1, `${healthy.length} starts that did not fail on purpose`);

  const left = healthy.filter((inv) => stillOurs(inv.pid, inv.port));
  t.same(
    left.map((inv) => `pid ${inv.pid} port ${inv.port}`),
    [],
    'no process of a start that did not fail is running once the start has rejected',
  );
  for (const inv of healthy) t.notOk(await listening(inv.port), `nothing listens on port ${inv.port}`);
});

const noPdeathsig =
  tiedToParent(REAL_REDIS, [])[0] === 'setpriv' ? false : 'setpriv --pdeathsig is not available here (Linux with util-linux 2.33 or later)';

t.test('a redis-server started through tiedToParent dies when its parent is SIGKILLed', { skip: noPdeathsig, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringside-pdeathsig-test-'));
  const port = await freePort();
  const modulePath = join(__dirname, '..', '..', 'src', 'embedded', 'redis-process.js');
  // The parent: starts the server through tiedToParent, prints its pid, then idles.
  const parentScript = `
    const { spawn } = require('node:child_process');
    const { tiedToParent } = require(process.env.RS_MODULE);
    const [command, args] = tiedToParent(process.env.RS_BINARY, [
      '--port', process.env.RS_PORT, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', process.env.RS_DIR,
    ]);
    const child = spawn(command, args, { stdio: 'ignore' });
    process.stdout.write(child.pid + '\\n');
    setInterval(() => {}, 60000);
  `;
  const parent = spawn(process.execPath, ['-e', parentScript], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RS_MODULE: modulePath, RS_BINARY: REAL_REDIS, RS_PORT: String(port), RS_DIR: dir },
  });
  const parentExited = new Promise<void>((resolve) => parent.once('exit', () => resolve()));
  let serverPid: number | undefined;
  t.teardown(async () => {
    if (parent.exitCode === null && parent.signalCode === null) {
      parent.kill('SIGKILL');
      await parentExited;
    }
    if (serverPid !== undefined && stillOurs(serverPid, port)) killQuietly(serverPid);
    rmSync(dir, { recursive: true, force: true });
  });

  let out = '';
  parent.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  await until('the parent to print the redis-server pid', () => /^\d+\n/.test(out) || parent.exitCode !== null, 10_000);
  serverPid = Number(/^(\d+)\n/.exec(out)?.[1]);
  t.ok(serverPid > 0, `the parent started redis-server as pid ${serverPid}`);
  const pid = serverPid;

  // Answering as that pid means setpriv has set the death signal and exec'd redis-server in place.
  await until(`redis-server pid ${pid} to answer on port ${port}`, () => answersAs(port, pid), 10_000);
  t.equal(procStat(pid)?.ppid, parent.pid, 'the server’s parent is the node process that spawned it');

  parent.kill('SIGKILL');
  await parentExited;
  t.equal(parent.signalCode, 'SIGKILL', 'the parent died of SIGKILL (no exit handler ran)');

  await until(`redis-server pid ${pid} to die with its parent`, () => !running(pid), 10_000);
  t.pass('the redis-server is gone (or a zombie awaiting its new parent)');
  // not `listening`: the port is free again, and a test running beside this one may bind it
  t.notOk(await answersAs(port, pid), `nothing answers as pid ${pid} on port ${port} any more`);
});

t.test('the temporary directories of a run that died are removed; those of live processes, and strangers, are not', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ringside-sweep-test-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  // a pid that surely belonged to a process that has exited
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise<void>((r) => child.once('exit', () => r()));
  const deadPid = child.pid!;
  const make = (prefix: string, owner?: number, host = hostname()): string => {
    const dir = mkdtempSync(join(root, prefix));
    if (owner !== undefined) writeFileSync(join(dir, 'owner.pid'), `${owner} ${host}\n`);
    writeFileSync(join(dir, 'redis.log'), 'log\n');
    return dir;
  };
  const stale = make(`${DIR_PREFIX}1-`, deadPid);
  const mine = make(`${DIR_PREFIX}2-`, process.pid);
  const parents = make(`${DIR_PREFIX}3-`, process.ppid);
  const noOwner = make(`${DIR_PREFIX}4-`);
  const other = make('something-else-', deadPid);
  const elsewhere = make(`${DIR_PREFIX}5-`, deadPid, `not-${hostname()}`);
  const removed = sweepStaleDirs(root);
  t.same(removed, [stale], 'exactly the directory whose owner is gone');
  t.notOk(existsSync(stale), 'and it is gone');
  for (const [dir, why] of [[mine, 'owned by this process'], [parents, 'owned by another live process'], [noOwner, 'with no owner file'], [other, 'not ours by name'], [elsewhere, 'made on another host (another PID namespace)']] as const)
    t.ok(existsSync(dir), `kept: ${why}`);
});

t.test('a server started without a directory writes its owner into the one it makes, and removes it when stopped', async (t) => {
  const p = await RedisProcess.start();
  t.teardown(() => p.stop({ removeDir: true }));
  t.equal(readFileSync(join(p.dir, 'owner.pid'), 'utf8').trim(), `${process.pid} ${hostname()}`);
  t.ok(p.dir.startsWith(join(tmpdir(), DIR_PREFIX)), `under ${tmpdir()}, named ${DIR_PREFIX}*`);
  await p.stop({ removeDir: true });
  t.notOk(existsSync(p.dir));
});

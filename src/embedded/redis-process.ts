/**
 * One `redis-server` child process on 127.0.0.1:<port> with its own directory, for the demo and
 * the integration tests. No persistence (`--save '' --appendonly no`) unless extra arguments ask
 * for it. Children never outlive this process: an 'exit' handler SIGKILLs any still running, and
 * on Linux the kernel kills them when this process dies without running it (SIGKILL, a crash):
 * see `tiedToParent`. The temporary directories such a death leaves are removed by the next
 * process that starts a server (`sweepStaleDirs`).
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Credential, authCommand } from '../cluster/credentials';

export interface RedisProcessOptions {
  /** TCP port on 127.0.0.1; a free one when absent. */
  port?: number;
  /** Working directory; a fresh temporary one (removed by `stop({ removeDir: true })`) when absent. */
  dir?: string;
  /** More `redis-server` arguments, e.g. ['--maxmemory', '10mb']. */
  args?: string[];
  /** How long to wait for the server to answer (default 10 s). */
  startTimeoutMs?: number;
  /** The binary (default $RINGSIDE_REDIS_SERVER or `redis-server`). */
  binary?: string;
  /**
   * Lines of a redis.conf written (mode 600) in the server's directory and given to it, for
   * settings that must not show on a command line (passwords, users).
   */
  config?: string[];
  /**
   * TLS only: the server listens with TLS on `port` (its plain port off), requires client
   * certificates signed by the CA, and replicates over TLS. The start-up check connects with TLS.
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** Credentials the start-up check authenticates with (a server started with requirepass or ACL users). */
  auth?: Credential;
}

/** The server did not start or did not answer in time. */
export class RedisStartError extends Error {
  override name = 'RedisStartError';
}

/** An operation that needs a running server was called on a stopped one. */
export class RedisNotRunningError extends Error {
  override name = 'RedisNotRunningError';
}

/** A TCP port that was free a moment ago on 127.0.0.1 (listen on 0, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

let setprivWorks: boolean | undefined;

/** True when util-linux's `setpriv --pdeathsig` works here (Linux; checked once). */
function canSetPdeathsig(): boolean {
  if (setprivWorks === undefined) {
    setprivWorks = false;
    if (process.platform === 'linux') {
      try {
        setprivWorks = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
      } catch {
        /* no setpriv */
      }
    }
  }
  return setprivWorks;
}

/**
 * The command and arguments to spawn so that the child gets `signal` when this process dies,
 * however it dies: a process killed with SIGKILL runs no 'exit' handler, and without this its
 * children would be left running. On Linux, util-linux's `setpriv --pdeathsig` sets
 * PR_SET_PDEATHSIG and then execs the command in place, so the spawned pid is the command's own
 * (SIGSTOP, SIGKILL and INFO's process_id all see the real process) and its parent is this
 * process. The signal comes when the spawning thread ends: spawn from the main thread (as
 * child_process does), not from a worker. Where setpriv is missing (or lacks --pdeathsig, before
 * util-linux 2.33) the command is returned unchanged and only the exit handlers apply.
 */
export function tiedToParent(command: string, args: readonly string[], signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): [string, string[]] {
  if (!canSetPdeathsig()) return [command, [...args]];
  return ['setpriv', ['--pdeathsig', signal.slice(3), '--', command, ...args]];
}

const live = new Set<RedisProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) p.killNow();
  });
  // A signal that nobody else handles would end this process without 'exit': take the children
  // down first, then die of the same signal.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      for (const p of live) p.killNow();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Prefix of the temporary directories made for servers started without `dir`. */
export const DIR_PREFIX = 'ringside-redis-';
/**
 * File in each such directory that names the process that made it: "<pid> <hostname>". The host
 * name keeps a sweep from judging by pid a directory made in another PID namespace (a container
 * sharing this /tmp), where that pid means nothing here.
 */
const OWNER_FILE = 'owner.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, someone else's
  }
}

/**
 * Removes the temporary directories (`ringside-redis-*` under `root`) whose owner process is gone:
 * what a run that died of SIGKILL left (its 'exit' handler, which removes them, never ran). A
 * directory is removed only when its owner file names this host and a process that no longer
 * exists; one without that file (being made right now, or made by an older version) or made on
 * another host is left alone. Returns the paths removed.
 */
export function sweepStaleDirs(root: string = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(root, name);
    let owner: string[];
    try {
      owner = readFileSync(join(dir, OWNER_FILE), 'utf8').trim().split(' ');
    } catch {
      continue;
    }
    const pid = Number(owner[0]);
    if (owner[1] !== hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      /* not ours to remove after all (permissions): leave it */
    }
  }
  return removed;
}

let swept = false;

/**
 * Asks the server on `port` for PING and INFO server; true when it answers PONG and is the
 * process `pid` (not some other server that took the port first).
 */
function answers(port: number, pid: number, timeoutMs: number, auth?: Credential, tlsFiles?: RedisProcessOptions['tls']): Promise<boolean> {
  return new Promise((resolve) => {
    let text = '';
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const sock = tlsFiles
      ? tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(tlsFiles.caFile), cert: readFileSync(tlsFiles.certFile), key: readFileSync(tlsFiles.keyFile), rejectUnauthorized: false })
      : connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
    sock.on(tlsFiles ? 'secureConnect' : 'connect', () => {
      if (auth) sock.write(authCommand(auth));
      sock.write('PING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n');
    });
    let authed = !auth;
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (!authed) {
        if (!text.startsWith('+OK\r\n')) return text.includes('\r\n') ? finish(false) : undefined;
        authed = true;
        text = text.slice(5);
      }
      if (text.startsWith('-')) return finish(false); // e.g. -LOADING
      const m = /^\+PONG\r\n\$(\d+)\r\n/.exec(text);
      if (!m) return;
      const body = text.slice(m[0].length);
      if (body.length < Number(m[1])) return;
      finish(new RegExp(`\\bprocess_id:${pid}\\r\\n`).test(body));
    });
  });
}

export class RedisProcess {
  readonly port: number;
  readonly dir: string;
  readonly args: readonly string[];
  #ownDir: boolean;
  #binary: string;
  #startTimeoutMs: number;
  #auth: Credential | undefined;
  #config: string[] | undefined;
  #tls: RedisProcessOptions['tls'];
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #paused = false;
  #stderr = '';

  private constructor(port: number, dir: string, ownDir: boolean, opts: RedisProcessOptions) {
    this.port = port;
    this.dir = dir;
    this.#ownDir = ownDir;
    this.args = [...(opts.args ?? [])];
    this.#binary = opts.binary ?? process.env.RINGSIDE_REDIS_SERVER ?? 'redis-server';
    this.#startTimeoutMs = opts.startTimeoutMs ?? 10_000;
    this.#auth = opts.auth;
    this.#config = opts.config;
    this.#tls = opts.tls;
  }

  /**
   * Starts a server and resolves once it answers. With no port given, a free one is picked, and
   * picked again if another process takes it before the server binds.
   */
  static async start(opts: RedisProcessOptions = {}): Promise<RedisProcess> {
    installExitHook();
    if (!swept) {
      swept = true;
      sweepStaleDirs();
    }
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await freePort());
      const ownDir = opts.dir === undefined;
      const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${port}-`));
      if (ownDir) writeFileSync(join(dir, OWNER_FILE), `${process.pid} ${hostname()}\n`);
      const p = new RedisProcess(port, dir, ownDir, opts);
      try {
        await p.#spawn();
        return p;
      } catch (e) {
        await p.stop({ removeDir: true });
        const portTaken = /address already in use|another server is listening/i.test((e as Error).message);
        if (opts.port !== undefined || !portTaken || attempt >= 5) throw e;
      }
    }
  }

  /** "127.0.0.1:<port>" */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Process id of the running server, undefined when stopped. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  async #spawn(): Promise<void> {
    const confFile = join(this.dir, 'redis.conf');
    if (this.#config) writeFileSync(confFile, this.#config.join('\n') + '\n', { mode: 0o600 });
    const argv = [
      ...(this.#config ? [confFile] : []),
      ...(this.#tls
        ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.#tls.certFile, '--tls-key-file', this.#tls.keyFile, '--tls-ca-cert-file', this.#tls.caFile, '--tls-replication', 'yes', '--tls-cluster', 'yes']
        : ['--port', String(this.port)]),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', this.dir,
      '--logfile', 'redis.log',
      // A replica's first sync starts at once instead of after the default 5 s gathering delay.
      '--repl-diskless-sync-delay', '0',
      ...this.args,
    ];
    this.#stderr = '';
    // killed by the kernel if this process dies without its 'exit' handler (see tiedToParent)
    const [command, args] = tiedToParent(this.#binary, argv);
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir });
    let spawnError: Error | null = null;
    let exitInfo: string | null = null;
    this.#child = child;
    this.#paused = false;
    live.add(this);
    this.#exited = new Promise<void>((resolve) => {
      child.on('error', (e) => {
        spawnError = e;
        exitInfo = e.message;
        if (this.#child === child) this.#child = null;
        live.delete(this);
        resolve();
      });
      child.on('exit', (code, signal) => {
        exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        if (this.#child === child) this.#child = null;
        this.#paused = false;
        live.delete(this);
        resolve();
      });
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString('utf8')).slice(-4000);
    });
    const deadline = Date.now() + this.#startTimeoutMs;
    for (;;) {
      if (exitInfo !== null || spawnError) {
        await this.#exited;
        throw new RedisStartError(`redis-server on port ${this.port} ${exitInfo}: ${this.#why()}`);
      }
      if (await answers(this.port, child.pid!, 500, this.#auth, this.#tls)) return;
      if (Date.now() > deadline) {
        throw new RedisStartError(`redis-server on port ${this.port} did not answer within ${this.#startTimeoutMs} ms: ${this.#why()}`);
      }
      await sleep(30);
    }
  }

  /** The last lines the server wrote, for error messages. */
  #why(): string {
    let logText = '';
    try {
      logText = readFileSync(join(this.dir, 'redis.log'), 'utf8');
    } catch {
      /* no log yet */
    }
    const lines = (this.#stderr + '\n' + logText).split('\n').map((l) => l.trim()).filter(Boolean);
    return lines.slice(-5).join(' | ') || 'no output';
  }

  /**
   * Stops the server: SIGTERM (after SIGCONT when paused), wait for it to exit, SIGKILL after
   * `graceMs` (default 5 s). With `removeDir`, also removes the directory this object created.
   */
  async stop(opts: { graceMs?: number; removeDir?: boolean } = {}): Promise<void> {
    const child = this.#child;
    if (child) {
      this.#signal(child, 'SIGTERM');
      if (this.#paused) this.#signal(child, 'SIGCONT');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.#signal(child, 'SIGKILL');
          resolve();
        }, opts.graceMs ?? 5000);
      });
      await Promise.race([this.#exited, killed]);
      clearTimeout(timer);
      await this.#exited;
    }
    if (opts.removeDir && this.#ownDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Sends a terminating signal (default SIGKILL, a crash) and resolves once the process is gone.
   * A paused process is continued so that signals other than SIGKILL reach it.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT' || signal === 'SIGTSTP') {
      throw new Error(`kill(${signal}) is not a terminating signal: use pause() / resume()`);
    }
    const child = this.#child;
    if (!child) return;
    this.#signal(child, signal);
    if (this.#paused && signal !== 'SIGKILL') this.#signal(child, 'SIGCONT');
    await this.#exited;
  }

  /** SIGSTOP: the server keeps its port but answers nothing (a hung node). */
  pause(): void {
    const child = this.#child;
    if (!child) throw new RedisNotRunningError(`redis-server on port ${this.port} is not running`);
    this.#signal(child, 'SIGSTOP');
    this.#paused = true;
  }

  /** SIGCONT after pause(). */
  resume(): void {
    const child = this.#child;
    if (!child) throw new RedisNotRunningError(`redis-server on port ${this.port} is not running`);
    this.#signal(child, 'SIGCONT');
    this.#paused = false;
  }

  /** Stops the server if it runs, then starts it again on the same port, directory and arguments. */
  async restart(): Promise<void> {
    await this.stop();
    try {
      await this.#spawn();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Synchronous SIGKILL (SIGCONT first when paused): for the 'exit' handler. */
  killNow(): void {
    const child = this.#child;
    if (!child) return;
    if (this.#paused) this.#signal(child, 'SIGCONT');
    this.#signal(child, 'SIGKILL');
    if (this.#ownDir) {
      try {
        rmSync(this.dir, { recursive: true, force: true });
      } catch {
        /* best effort while exiting */
      }
    }
  }

  #signal(child: ChildProcess, signal: NodeJS.Signals): void {
    try {
      process.kill(child.pid!, signal);
    } catch {
      /* already gone */
    }
  }
}

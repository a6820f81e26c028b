/**
 * Process bookkeeping for the benchmark: every process the bench starts goes through `Procs`, which
 * logs its output to the work directory, records its pid in a file (so that bench/run.sh's trap can
 * stop it even if this Node process is killed), and stops it at the end. Also: free loopback
 * ports, readiness probes, and CPU / RSS readings from /proc.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  log: string;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Set when the bench kills it on purpose (fail-over bench). */
  killed?: boolean;
}

export class Procs {
  readonly children: Child[] = [];
  /** Set once stopAll() has begun (Ctrl-C, error, end of run). */
  shuttingDown = false;

  constructor(
    readonly work: string,
    readonly pidFileName: string,
  ) {}

  /** Starts `cmd args`; stdout and stderr go to <work>/<name>.log. */
  start(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Child {
    const log = path.join(this.work, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    if (proc.pid === undefined) throw new Error(`could not start ${cmd}`);
    const child: Child = { name, proc, pid: proc.pid, log, exited: null };
    fs.appendFileSync(this.pidFileName, `${proc.pid}\n`);
    proc.on('exit', (code, signal) => {
      child.exited = { code, signal };
      if (!child.killed) process.stderr.write(`bench: ${name} (pid ${proc.pid}) exited unexpectedly (${signal ?? code})\n`);
    });
    proc.on('error', (e) => {
      child.exited = { code: -1, signal: null };
      process.stderr.write(`bench: ${name}: ${e.message}\n`);
    });
    this.children.push(child);
    return child;
  }

  /** Stops one child: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(child: Child, graceMs = 3000): Promise<void> {
    child.killed = true;
    if (!child.exited) {
      const done = new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
      child.proc.kill('SIGTERM');
      const t = setTimeout(() => child.exited || child.proc.kill('SIGKILL'), graceMs);
      await done;
      clearTimeout(t);
    }
    const i = this.children.indexOf(child);
    if (i >= 0) this.children.splice(i, 1);
  }

  /** kill -9, on purpose. */
  kill9(child: Child): void {
    child.killed = true;
    child.proc.kill('SIGKILL');
  }

  /** Stops everything this bench started, newest first. */
  async stopAll(): Promise<void> {
    this.shuttingDown = true;
    await Promise.all([...this.children].reverse().map((c) => this.stop(c)));
  }

  tail(child: Child, lines = 15): string {
    try {
      return fs.readFileSync(child.log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export type Endpoint = { port: number; host?: string } | { path: string };

export function describe(e: Endpoint): string {
  return 'path' in e ? e.path : `${e.host ?? '127.0.0.1'}:${e.port}`;
}

/** One PING over a fresh connection; resolves true on +PONG. */
export function ping(e: Endpoint, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = 'path' in e ? net.connect(e.path) : net.connect(e.port, e.host ?? '127.0.0.1');
    let buf = '';
    const finish = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    s.on('connect', () => s.write('*1\r\n$4\r\nPING\r\n'));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) finish(buf.startsWith('+PONG'));
    });
    s.on('error', () => finish(false));
    s.on('close', () => finish(false));
  });
}

/** Waits until `e` answers PING, failing early if `child` exits. */
export async function waitReady(e: Endpoint, child: Child | null, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child?.exited) throw new Error(`${what} exited during start-up (${child.exited.signal ?? child.exited.code})`);
    if (await ping(e, 500)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer PING on ${describe(e)} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** pid → parent pid for every process visible in /proc. */
function parentMap(): Map<number, number> {
  const m = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(Number(d), Number(rest[1]));
    } catch {
      /* gone */
    }
  }
  return m;
}

/** `pid` and all its descendants (a proxy that forks workers is measured as a whole). */
export function processTree(pid: number): number[] {
  const parents = parentMap();
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parents) if (pp === out[i] && !out.includes(p)) out.push(p);
  return out;
}

/** utime+stime of one process, in seconds (0 if it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    // After the comm field: state is f[0], utime is field 14 of the whole line → f[11], stime → f[12].
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return 0;
  }
}

/** CPU seconds of `pid` and its descendants. */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((s, p) => s + cpuSeconds(p), 0);
}

/** VmRSS of `pid` and its descendants, in KB. */
export function treeRssKb(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'latin1'));
      if (m) kb += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return kb;
}

/** Runs a command to completion, capturing stdout/stderr, with a time limit. */
export function run(
  cmd: string,
  args: string[],
  opts: {
    timeoutMs?: number;
    cwd?: string;
    onStdoutLine?: (line: string) => void;
    pidFile?: string;
    /** called once the child exists, with its pid (e.g. to read its CPU counters while it runs) */
    onSpawn?: (pid: number) => void;
  } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (opts.pidFile && p.pid !== undefined) fs.appendFileSync(opts.pidFile, `${p.pid}\n`);
    if (opts.onSpawn && p.pid !== undefined) opts.onSpawn(p.pid);
    let stdout = '';
    let stderr = '';
    let pending = '';
    let timedOut = false;
    p.stdout!.on('data', (d: Buffer) => {
      const s = d.toString('utf8');
      stdout += s;
      if (opts.onStdoutLine) {
        pending += s;
        let i: number;
        while ((i = pending.indexOf('\n')) >= 0) {
          opts.onStdoutLine(pending.slice(0, i).replace(/\r$/, ''));
          pending = pending.slice(i + 1);
        }
      }
    });
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const t = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          p.kill('SIGKILL');
        }, opts.timeoutMs)
      : null;
    const onSignal = (): void => {
      p.kill('SIGKILL');
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    p.on('error', (e) => {
      stderr += e.message;
    });
    p.on('close', (code, signal) => {
      if (t) clearTimeout(t);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (opts.onStdoutLine && pending) opts.onStdoutLine(pending);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

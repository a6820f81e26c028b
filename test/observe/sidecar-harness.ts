/**
 * Shared by test/observe/sidecar-*.test.ts: Prometheus text parsing, scraping, and `ringside`
 * child processes (serve, demo) whose stdout banner and JSON log lines the tests read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { Teardown } from '../helpers/cluster';
import { tiedToParent } from '../../src/embedded/redis-process';

export const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'ringside.js');

/** Sample lines (not comments) of a Prometheus text exposition, as "name{labels}" → value. */
export function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    out.set(m[1]!, m[2] === '+Inf' ? Infinity : m[2] === '-Inf' ? -Infinity : Number(m[2]));
  }
  return out;
}

export async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

export async function scrape(metricsUrl: string): Promise<Map<string, number>> {
  const r = await get(`${metricsUrl}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return samples(r.body);
}

/** Sum of every sample of `name` whose labels include all of `labels`. */
export function sumOf(s: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [k, v] of s) {
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(k)!;
    if (m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([lk, lv]) => have.get(lk) === lv)) total += v;
  }
  return total;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface LogLine {
  level: string;
  event: string;
  [k: string]: unknown;
}

/** A `ringside` child process: its stdout, its JSON log lines (stderr), its exit. */
export class Child {
  readonly proc: ChildProcess;
  stdout = '';
  /** stderr lines that are not JSON (should stay empty) */
  readonly otherStderr: string[] = [];
  readonly logs: LogLine[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #errBuf = '';

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    // SIGKILLed by the kernel if the test process dies without its teardown (a `ringside demo`
    // child's redis-servers go with it: they are tied to the demo the same way)
    const [cmd, argv] = tiedToParent(process.execPath, [BIN, ...args]);
    this.proc = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.#errBuf += d;
      let i: number;
      while ((i = this.#errBuf.indexOf('\n')) >= 0) {
        const line = this.#errBuf.slice(0, i);
        this.#errBuf = this.#errBuf.slice(i + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.otherStderr.push(line);
        }
      }
    });
    // 'close': the process has exited and its stdout/stderr are read to the end
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  /** Starts `ringside <args>`; killed (SIGKILL) when `t` ends if still running. */
  static start(t: Teardown, args: string[], env: NodeJS.ProcessEnv = {}): Child {
    const c = new Child(args, env);
    t.teardown(async () => {
      if (c.exit === null) {
        c.proc.kill('SIGKILL');
        await c.exited;
      }
    });
    return c;
  }

  /** Waits until stdout matches `re`; throws with what was printed if the process exits first or after `ms`. */
  async waitStdout(re: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
    const until = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.stdout);
      if (m) return m;
      if (this.exit || Date.now() > until)
        throw new Error(`no ${re} on stdout (${this.exit ? `exited ${JSON.stringify(this.exit)}` : `after ${ms} ms`}); stdout: ${this.stdout}; stderr: ${this.otherStderr.join('\n')} ${JSON.stringify(this.logs)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits for a log line for which `pred` holds (seen from index `from` on) and returns it. */
  async waitLog(what: string, pred: (l: LogLine) => boolean, from = 0, ms = 10_000): Promise<LogLine> {
    const until = Date.now() + ms;
    for (;;) {
      const l = this.logs.slice(from).find(pred);
      if (l) return l;
      if (this.exit || Date.now() > until) throw new Error(`no log line ${what} (${this.exit ? 'exited' : `after ${ms} ms`}); got ${JSON.stringify(this.logs.slice(from))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** `ringside serve` banner: "listening on host:port; metrics URL/metrics, ..." */
  async serveBanner(): Promise<{ port: number; metricsUrl: string }> {
    const m = await this.waitStdout(/listening on [\d.]+:(\d+).*?; metrics (http:\/\/\S+)\/metrics, health \S+\/readyz\n/);
    return { port: Number(m[1]), metricsUrl: m[2]! };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true; throws naming `what` after `ms`. Waits for state, never asserts a duration. */
export async function until(what: string, probe: () => Promise<boolean> | boolean, ms = 10_000, every = 50): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(every);
  }
}

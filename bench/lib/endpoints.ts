/**
 * What the side-by-side modes (--security, --durability) share: a `ringside serve` endpoint that
 * routes before it is measured, and one redis-benchmark run read back as requests per second
 * (and p50 latency, where redis-benchmark prints it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Procs, run, waitReady, freePort } from './procs';
import { RINGSIDE_BIN, ROOT } from './setup';
import { NODE_FLAGS } from '../../src/cli/node-flags';

/** The options of a side-by-side mode (what bench/run.ts passes). */
export interface SideBySideOptions {
  rounds: number;
  requests: number;
  requestsP16: number;
  clients: number;
  keyspace: number;
  out: string;
}

export interface Endpoint {
  name: string;
  /** redis-benchmark's connection arguments */
  args: string[];
}

/** `ringside serve` in front of `seeds`, waited for until a SET answers OK. */
export async function sidecarEndpoint(procs: Procs, name: string, seeds: string[], extra: string[] = []): Promise<Endpoint> {
  const port = await freePort();
  const child = procs.start(name, process.execPath, [...NODE_FLAGS, RINGSIDE_BIN, 'serve', '--port', String(port), '--seeds', seeds.join(','), '--metrics-port', 'off', ...extra], { cwd: ROOT });
  await waitReady({ port }, child, name, 30_000);
  for (let i = 0; ; i++) {
    const r = await run('redis-cli', ['-p', String(port), 'set', 'bench:ready', '1'], { timeoutMs: 5000 });
    if (r.stdout.trim() === 'OK') break;
    if (i > 100) throw new Error(`${name} does not route: ${r.stdout}${r.stderr}\n${procs.tail(child)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return { name, args: ['-h', '127.0.0.1', '-p', String(port)] };
}

export interface BenchTest {
  test: string;
  p: number;
  n: number;
}

/** SET and GET at -P 1 and -P 16: the tests the side-by-side modes run. */
export function setGetTests(o: SideBySideOptions): BenchTest[] {
  return [
    { test: 'set', p: 1, n: o.requests },
    { test: 'get', p: 1, n: o.requests },
    { test: 'set', p: 16, n: o.requestsP16 },
    { test: 'get', p: 16, n: o.requestsP16 },
  ];
}

/** One `redis-benchmark -q` run of one test against one endpoint. */
export async function benchmarkOnce(procs: Procs, e: Endpoint, t: BenchTest, clients: number, keyspace: number): Promise<{ rps: number; p50: number | null }> {
  const args = [...e.args, '-c', String(clients), '-n', String(t.n), '-r', String(keyspace), '-P', String(t.p), '-t', t.test, '-q'];
  const r = await run('redis-benchmark', args, { timeoutMs: 600_000, pidFile: procs.pidFileName });
  const line = r.stdout.split(/[\r\n]/).filter((l) => /requests per second/.test(l)).at(-1) ?? '';
  const m = /:\s*([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/.exec(line);
  if (!m) throw new Error(`redis-benchmark against ${e.name} gave no result: ${r.stdout.slice(-300)}${r.stderr.slice(-300)}`);
  return { rps: Number(m[1]), p50: m[2] ? Number(m[2]) : null };
}

/** Writes `<out>/<name>.json` and `<out>/<name>.md`, and prints the Markdown. */
export function writeResults(out: string, name: string, json: unknown, lines: string[]): number {
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(path.join(out, `${name}.md`), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
  return 0;
}

/**
 * Helpers for the configuration-lifecycle tests (issue 4): a sidecar with short lifecycle timing,
 * log capture, direct reads of the copies the masters hold, INFO parsing, and hand-made
 * configuration documents.
 */
import { createHash } from 'node:crypto';
import { spawn, ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type Redis from 'ioredis';
import { setLogSink } from '../../src/observe/log';
import { CONFIG_KEY, VERSION_KEY, ClusterConfig, serializeConfig, configVersion } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import type { Sidecar, SidecarConfig } from '../../src/proxy/sidecar';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import { tiedToParent } from '../../src/embedded/redis-process';
import { Teardown } from '../helpers/cluster';
import { startSidecar } from '../helpers/sidecar';

export { until, sleep } from '../helpers/sidecar';

/** Cluster timing for these tests: a round every 200 ms, a 600 ms lease. */
export const LIFECYCLE_TIMING = { checkMs: 200, leaseMs: 600, downAfterMs: 300 };

/** A sidecar with short lifecycle timing and no fail-over agent (no election interferes). */
export function lifecycleSidecar(t: Teardown, cluster: LocalCluster, over: Partial<SidecarConfig> = {}): Promise<Sidecar> {
  return startSidecar(t, cluster, { checkMs: 200, leaseMs: 600, failover: false, ...over });
}

export interface LogLine {
  level: string;
  event: string;
  [k: string]: unknown;
}

/** Captures every log line (parsed) until `t` ends; `lines` can be cleared by the test. */
export function captureLog(t: Teardown): { lines: LogLine[]; find: (event: string, pred?: (l: LogLine) => boolean) => LogLine | undefined } {
  const lines: LogLine[] = [];
  const prev = setLogSink((line) => lines.push(JSON.parse(line) as LogLine));
  t.teardown(() => void setLogSink(prev));
  return { lines, find: (event, pred = () => true) => lines.find((l) => l.event === event && pred(l)) };
}

/** The epoch and version one node holds, read directly (epoch null when the text is not JSON). */
export async function copyOn(c: Redis): Promise<{ epoch: number | null; version: string | null; text: string | null }> {
  const [text, version] = await Promise.all([c.get(CONFIG_KEY), c.get(VERSION_KEY)]);
  let epoch: number | null = null;
  try {
    epoch = (JSON.parse(text ?? 'null') as { epoch?: number } | null)?.epoch ?? null;
  } catch {
    /* not JSON */
  }
  return { epoch, version, text };
}

/** Writes a copy with plain SETs, bypassing compare-and-set; version defaults to the SHA1 of the text. */
export async function setCopy(c: Redis, text: string, version = sha1(text)): Promise<void> {
  await c.set(CONFIG_KEY, text);
  await c.set(VERSION_KEY, version);
}

export const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

/** The stored form of a configuration and its version. */
export function stored(c: ClusterConfig): { text: string; version: string } {
  const text = serializeConfig(c);
  return { text, version: configVersion(text) };
}

/** INFO text as field → value. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** `n` keys with `prefix` whose slots are in `slots`. */
export function keysInSlots(slots: Set<number>, prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (slots.has(slotOf(`${prefix}${i}`))) out.push(`${prefix}${i}`);
  return out;
}

/** The first key with `prefix` whose slot is `slot`. */
export function keyInSlot(slot: number, prefix: string): string {
  return keysInSlots(new Set([slot]), prefix, 1)[0]!;
}

const BIN = resolve(__dirname, '../../../bin/ringside.js');

/** `ringside <args>` as a child process, killed (by its pid) when `t` ends; stdout/stderr collected. */
export function ringsideProcess(t: Teardown, args: string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  // SIGKILLed by the kernel if the test process dies without its teardown
  const [cmd, argv] = tiedToParent(process.execPath, [BIN, ...args]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, out: () => out, err: () => err, exited };
}

/** JSON log lines from a child's stderr. */
export function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

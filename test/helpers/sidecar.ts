/**
 * Helpers for the stateful-command tests (test/proxy/stateful-*.test.ts): the data-path helpers
 * (a sidecar in front of a LocalCluster, ioredis clients, raw RESP sockets, slot owners) plus
 * a few small things those tests share: waiting for a condition with a deadline, raw sequences
 * with their replies made comparable, and keys with chosen owners.
 */
import { RawClient, resp } from '../proxy/helpers';
import { splitAddress, ClusterConfig } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import type { Teardown } from './cluster';
import { ownerOf } from '../proxy/helpers';

export { startSidecar, sidecarClient, ownerOf, shardOf, keysPerMaster, RawClient, resp, commandCalls } from '../proxy/helpers';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns true; throws with `what` (and the last value seen) after `ms`.
 * For waiting on state the test cannot be told about (a node's client count, a message), never
 * for asserting how long something took.
 */
export async function until(what: string, probe: () => Promise<boolean> | boolean, ms = 10_000, every = 50): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(every);
  }
}

/** A reply as plain data: errors become "ERR:<message>", buffers strings. */
export function norm(r: unknown): unknown {
  if (r instanceof Error) return `ERR:${r.message}`;
  if (Buffer.isBuffer(r)) return r.toString();
  if (Array.isArray(r)) return r.map(norm);
  return r;
}

/** A raw RESP connection to `address` (a data node or a sidecar), closed when `t` ends. */
export function rawTo(t: Teardown, address: string): Promise<RawClient> {
  return RawClient.connect(t, splitAddress(address).port);
}

/**
 * Writes each command (arrays of arguments) on `c`, in one write, and resolves with the replies
 * to them (normalized with `norm`).
 */
export function run(c: RawClient, ...cmds: string[][]): Promise<unknown[]> {
  return runWithin(c, 10_000, ...cmds);
}

/** `run`, rejecting when the replies have not all arrived after `ms`. */
export async function runWithin(c: RawClient, ms: number, ...cmds: string[][]): Promise<unknown[]> {
  const before = c.replies.length;
  c.write(Buffer.concat(cmds.map((a) => resp(...a))));
  await c.waitReplies(before + cmds.length, ms);
  return c.replies.slice(before, before + cmds.length).map(norm);
}

/** The first key `${prefix}${i}` whose slot's owner is `master` (and whose slot differs from `not`). */
export function keyOn(config: ClusterConfig, master: string, prefix: string, notSlot = -1): string {
  for (let i = 0; ; i++) {
    const k = `${prefix}${i}`;
    if (ownerOf(config, k) === master && slotOf(k) !== notSlot) return k;
  }
}

/** A key whose owner is not `master`. */
export function keyNotOn(config: ClusterConfig, master: string, prefix: string): string {
  for (let i = 0; ; i++) {
    const k = `${prefix}${i}`;
    if (ownerOf(config, k) !== master) return k;
  }
}

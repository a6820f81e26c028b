/**
 * One clock reading per socket read, shared by everything that read's bytes complete.
 *
 * A reply chunk from a node completes the commands of many clients at once (at -P 16, dozens),
 * and each completion records its latency. Reading the monotonic clock for each costs about as
 * much as the rest of the bookkeeping (~55 ns a reading on the machines of bench/results), so
 * every socket read through src/proxy/fast-read.ts reads it once, before its handler runs
 * (`enterRead`), and what the handler does takes that reading (`readTime`): a command's arrival
 * on a client's read, a reply's on a node's, which is what the latency means. Outside a read
 * handler (a timer, a promise continuation, a socket reading through 'data') `readTime` reads
 * the clock.
 */
import { performance as perf } from 'node:perf_hooks';

/**
 * A fresh reading of the clock the latencies are measured on (performance.now()). The global
 * `performance` is a getter on the global object, called on every use; the module's export is a
 * plain property.
 */
export function clockNow(): number {
  return perf.now();
}

let current = -1;

/** Starts a read handler at time `t` (performance.now()); returns what `leaveRead` restores. */
export function enterRead(t: number): number {
  const prev = current;
  current = t;
  return prev;
}

/** Ends the read handler started by the `enterRead` that returned `prev`. */
export function leaveRead(prev: number): void {
  current = prev;
}

/** performance.now() of the read being handled, or a fresh reading outside one. */
export function readTime(): number {
  return current >= 0 ? current : clockNow();
}

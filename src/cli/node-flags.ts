/**
 * The Node.js (V8) flags the sidecar runs with. V8 reads heap sizes once, when the process
 * starts (they are not allowed in NODE_OPTIONS and `v8.setFlagsFromString` is too late), so every
 * launcher passes them on node's command line: bin/ringside.js's `#!` line, the systemd unit, the
 * Dockerfile's ENTRYPOINT, `npm run demo`, the bench. test/cli/node-flags.test.ts checks that
 * they all carry exactly these, and `serve` warns at start-up when they are missing.
 *
 * `--initial-old-space-size=64`: each read is copied out of the shared read buffer
 * (src/proxy/fast-read.ts), and a copy of over 4 KB is an ArrayBuffer of its own. V8 counts those
 * bytes against the old generation's limit, which after start-up is a few times the live heap
 * (about 8 MB: a limit of 12 to 34 MB). With 1 KB values at -P 16 the sidecar copies about
 * 500 MB/s, almost all of it garbage within a millisecond and freed by the young-generation
 * collections, yet the count alone started a full mark-compact every 60 to 70 ms (`--trace-gc`:
 * 63 in one SET 1 KB -P 16 run, 2 to 5 ms of pause each). A 64 MB initial limit leaves room for
 * what is in flight: 1 to 2 mark-compacts in a whole bench, SET 1 KB -P 16 up 20 to 25%, GET
 * 1 KB -P 16 up 20%, and no change in RSS (the limit is a threshold, not a reservation;
 * bench/results/memory.md for idle connections).
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];

/** The flags of NODE_FLAGS that `execArgv` (the running node's flags) lacks, by name. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const names = new Set(execArgv.map((a) => a.split('=')[0]!.replace(/_/g, '-')));
  return NODE_FLAGS.filter((f) => !names.has(f.split('=')[0]!));
}

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
 * 1 KB -P 16 up 20%, and no change in RSS under load (the limit is a threshold, not a
 * reservation).
 *
 * `--max-semi-space-size=8`: the young generation may grow to 16 MB a semi-space by default, and
 * it does while 10 000 connections are accepted at once (`bench/run.sh --memory`: the new space
 * went from 9 to 27 MB), RSS that stays. Capped at 8 MB, RSS per idle connection fell by 0.7 to
 * 1.5 KB (6.9 and 6.6 KB → 6.1 and 5.1 KB, same build, two runs each), and under load the
 * young generation does not need more: over SET 1 KB -P16, GET -P16 and SET -P1 (2.2 M requests)
 * `--trace-gc` counted 149 scavenges, 89 ms in all, against 141 and 113 ms without the cap
 * (a 4 MB cap: 264 and 151 ms).
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64', '--max-semi-space-size=8'];

/** The flags of NODE_FLAGS that `execArgv` (the running node's flags) lacks, by name. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const names = new Set(execArgv.map((a) => a.split('=')[0]!.replace(/_/g, '-')));
  return NODE_FLAGS.filter((f) => !names.has(f.split('=')[0]!));
}

/**
 * Reading `node --cpu-prof` output for the bench's `--cpu-prof` mode: self time per function over
 * a window of the profile (the measured run, without start-up and warm-up), as shares of the busy
 * samples, and a markdown table of the largest.
 */

/** The parts of V8's .cpuprofile format (Chrome DevTools' Profiler.Profile) read here. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  /** µs, V8's monotonic clock (CLOCK_MONOTONIC on Linux, as process.hrtime in any process) */
  startTime: number;
  endTime: number;
  /** node id of each sample */
  samples: number[];
  /** µs between each sample and the one before it (the first: since startTime) */
  timeDeltas: number[];
}

export interface SelfTime {
  /** `name  file:line`, `(garbage collector)`, `(program)`, ... */
  frame: string;
  samples: number;
  /** share of the busy (not idle) samples in the window */
  share: number;
}

export interface ProfileSummary {
  /** samples in the window, idle ones included */
  samples: number;
  idleShare: number;
  /** whether the window was found in the profile (otherwise the whole profile was read) */
  windowed: boolean;
  top: SelfTime[];
}

const IDLE = '(idle)';

/** `fn  file:line` with the file shortened to what follows dist/ (ours) or node: (Node's). */
export function frameName(cf: { functionName: string; url: string; lineNumber: number }): string {
  const fn = cf.functionName || '(anonymous)';
  if (!cf.url) return fn;
  const m = /\/dist\/(.*)$/.exec(cf.url);
  const file = m ? m[1]! : cf.url.replace(/^file:\/\//, '');
  return `${fn}  ${file}:${cf.lineNumber + 1}`;
}

/**
 * Self time per frame of the samples taken between `from` and `to` (µs, the profile's clock);
 * the whole profile when no sample falls in that window or no window is given.
 */
export function summarizeProfile(p: CpuProfile, top = 15, from?: number, to?: number): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, frameName(n.callFrame)]));
  const stamps: number[] = [];
  let t = p.startTime;
  for (const d of p.timeDeltas) stamps.push((t += d));
  let idx = p.samples.map((_, i) => i);
  let windowed = false;
  if (from !== undefined && to !== undefined) {
    const inside = idx.filter((i) => stamps[i]! >= from && stamps[i]! <= to);
    if (inside.length) {
      idx = inside;
      windowed = true;
    }
  }
  const counts = new Map<string, number>();
  let idle = 0;
  for (const i of idx) {
    const f = byId.get(p.samples[i]!) ?? '(unknown)';
    if (f === IDLE) idle++;
    else counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  const busy = idx.length - idle;
  return {
    samples: idx.length,
    idleShare: idx.length ? idle / idx.length : 0,
    windowed,
    top: [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, top)
      .map(([frame, samples]) => ({ frame, samples, share: busy ? samples / busy : 0 })),
  };
}

/** One markdown table: the largest self times of one test. */
export function profileTable(s: ProfileSummary): string {
  const rows = s.top.map((x) => `| ${(x.share * 100).toFixed(1)}% | ${x.samples} | \`${x.frame.replace(/\|/g, '\\|')}\` |`);
  return ['| share of busy samples | samples | function (self time) |', '|--:|--:|:--|', ...rows].join('\n');
}

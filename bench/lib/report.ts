/**
 * Turns raw redis-benchmark samples into the report: medians over rounds, ratios, the issue-5
 * targets, a markdown table and an SVG bar chart of the ratios.
 */

/** `relay`: the blind Node.js relay (bench/lib/relay.ts), a reference beside the two proxies. */
export type TargetName = 'direct' | 'twemproxy' | 'ringside' | 'relay';
export const TARGETS: TargetName[] = ['direct', 'twemproxy', 'ringside', 'relay'];

export interface Sample {
  round: number;
  target: TargetName;
  transport: 'tcp' | 'unix';
  pipeline: number;
  dataSize: number;
  /** SET, GET, LPUSH, LRANGE_100 */
  test: string;
  requests: number;
  rps: number;
  avgMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU seconds of the measured process during this test (proxy; for direct, the redis-server). */
  cpuSec: number;
  /** CPU seconds of the redis-server(s) behind it during this test. */
  serverCpuSec: number;
  /** CPU seconds of redis-benchmark itself during this test (the load generator). */
  clientCpuSec: number;
  wallSec: number;
}

export interface Failure {
  round: number;
  target: TargetName;
  transport: 'tcp' | 'unix';
  pipeline: number;
  dataSize: number;
  error: string;
}

export interface Cell {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds per million requests of the measured process. */
  cpuPerM: number;
  rounds: number;
}

export interface Row {
  key: string;
  transport: 'tcp' | 'unix';
  pipeline: number;
  dataSize: number;
  test: string;
  cells: Partial<Record<TargetName, Cell>>;
  /**
   * ringside rps / twemproxy rps of each round in which both ran, in round order: how far the
   * machine moved the ratio whose median the table shows.
   */
  rsTwByRound: number[];
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const sizeLabel = (d: number): string => (d >= 1024 && d % 1024 === 0 ? `${d / 1024}KB` : `${d}B`);
export const rowKey = (s: { transport: string; pipeline: number; dataSize: number; test: string }): string =>
  `${s.transport} ${s.test} ${sizeLabel(s.dataSize)} -P${s.pipeline}`;

const TEST_ORDER = ['SET', 'GET', 'LPUSH', 'LRANGE_100'];

export function summarize(samples: Sample[]): Row[] {
  const rows = new Map<string, Row>();
  for (const s of samples) {
    const key = rowKey(s);
    if (!rows.has(key))
      rows.set(key, { key, transport: s.transport, pipeline: s.pipeline, dataSize: s.dataSize, test: s.test, cells: {}, rsTwByRound: [] });
  }
  for (const row of rows.values()) {
    for (const t of TARGETS) {
      const mine = samples.filter((s) => s.target === t && rowKey(s) === row.key);
      if (!mine.length) continue;
      row.cells[t] = {
        rps: median(mine.map((s) => s.rps)),
        p50Ms: median(mine.map((s) => s.p50Ms)),
        p99Ms: median(mine.map((s) => s.p99Ms)),
        cpuPerM: median(mine.map((s) => (s.cpuSec / s.requests) * 1e6)),
        rounds: mine.length,
      };
    }
    const tw = new Map(samples.filter((s) => s.target === 'twemproxy' && rowKey(s) === row.key).map((s) => [s.round, s.rps]));
    row.rsTwByRound = samples
      .filter((s) => s.target === 'ringside' && rowKey(s) === row.key && (tw.get(s.round) ?? 0) > 0)
      .sort((a, b) => a.round - b.round)
      .map((s) => s.rps / tw.get(s.round)!);
  }
  return [...rows.values()].sort(
    (a, b) =>
      a.transport.localeCompare(b.transport) ||
      a.pipeline - b.pipeline ||
      a.dataSize - b.dataSize ||
      TEST_ORDER.indexOf(a.test) - TEST_ORDER.indexOf(b.test),
  );
}

/** Median over rounds of (all proxy CPU seconds / all requests), TCP tests only, per target. */
export function overallCpuPerM(samples: Sample[], target: TargetName): number {
  const rounds = [...new Set(samples.map((s) => s.round))];
  const per = rounds
    .map((r) => samples.filter((s) => s.round === r && s.target === target && s.transport === 'tcp'))
    .filter((xs) => xs.length)
    .map((xs) => (xs.reduce((a, s) => a + s.cpuSec, 0) / xs.reduce((a, s) => a + s.requests, 0)) * 1e6);
  return median(per);
}

const ratio = (a: number | undefined, b: number | undefined): number =>
  a === undefined || b === undefined || !(b > 0) ? NaN : a / b;
const fmtRatio = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const fmtNum = (x: number | undefined, digits = 0): string =>
  x === undefined || !Number.isFinite(x) ? '–' : digits ? x.toFixed(digits) : Math.round(x).toLocaleString('en-US');
const fmtMs = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(3));

function table(header: string[], body: string[][], align: Array<'l' | 'r'>): string {
  const w = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const pad = (s: string, i: number): string => (align[i] === 'r' ? s.padStart(w[i]!) : s.padEnd(w[i]!));
  const line = (cells: string[]): string => `| ${cells.map(pad).join(' | ')} |`;
  const sep = `|${w.map((n, i) => (align[i] === 'r' ? `${'-'.repeat(n + 1)}:` : `:${'-'.repeat(n + 1)}`)).join('|')}|`;
  return [line(header), sep, ...body.map(line)].join('\n');
}

export function rowsTable(rows: Row[]): string {
  const header = [
    'test',
    'direct rps',
    'twemproxy rps',
    'ringside rps',
    'rs/tw',
    'rs/tw per round',
    'rs/direct',
    'tw/direct',
    'p50 ms d / tw / rs',
    'p99 ms d / tw / rs',
    'CPU s/Mreq tw / rs',
    'CPU rs/tw',
  ];
  const body = rows.map((r) => {
    const { direct: d, twemproxy: tw, ringside: rs } = r.cells;
    return [
      r.key.replace(/^(tcp|unix) /, ''),
      fmtNum(d?.rps),
      fmtNum(tw?.rps),
      fmtNum(rs?.rps),
      fmtRatio(ratio(rs?.rps, tw?.rps)),
      r.rsTwByRound.length ? `${Math.min(...r.rsTwByRound).toFixed(2)}–${Math.max(...r.rsTwByRound).toFixed(2)}` : '–',
      fmtRatio(ratio(rs?.rps, d?.rps)),
      fmtRatio(ratio(tw?.rps, d?.rps)),
      `${fmtMs(d?.p50Ms)} / ${fmtMs(tw?.p50Ms)} / ${fmtMs(rs?.p50Ms)}`,
      `${fmtMs(d?.p99Ms)} / ${fmtMs(tw?.p99Ms)} / ${fmtMs(rs?.p99Ms)}`,
      `${fmtNum(tw?.cpuPerM, 2)} / ${fmtNum(rs?.cpuPerM, 2)}`,
      fmtRatio(ratio(rs?.cpuPerM, tw?.cpuPerM)),
    ];
  });
  return table(header, body, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
}

/**
 * The blind Node.js relay beside the proxies: what a Node.js process in front of the same masters
 * reaches moving bytes and nothing else, against twemproxy and ringside.
 */
export function relayTable(rows: Row[]): string {
  const picked = rows.filter((r) => r.cells.relay);
  const body = picked.map((r) => {
    const { direct: d, twemproxy: tw, ringside: rs, relay: rl } = r.cells;
    return [
      r.key,
      fmtNum(rl?.rps),
      fmtRatio(ratio(rl?.rps, d?.rps)),
      fmtRatio(ratio(rl?.rps, tw?.rps)),
      fmtRatio(ratio(rs?.rps, rl?.rps)),
      `${fmtMs(rl?.p50Ms)} / ${fmtMs(rs?.p50Ms)}`,
      `${fmtNum(rl?.cpuPerM, 2)} / ${fmtNum(rs?.cpuPerM, 2)}`,
    ];
  });
  return table(
    ['test', 'relay rps', 'relay/direct', 'relay/tw', 'rs/relay', 'p50 ms relay / rs', 'CPU s/Mreq relay / rs'],
    body,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

/**
 * Where the machine's CPU goes, per request, for one test and target (medians over rounds): the
 * load generator, the redis-server(s), the proxy (none for direct), and how many cores all of
 * them kept busy together ((client + servers + proxy) × requests / wall time).
 */
export interface CpuShare {
  clientUs: number;
  serversUs: number;
  proxyUs: number;
  busyCores: number;
}

export function cpuShare(samples: Sample[], target: TargetName, key: string): CpuShare | undefined {
  const mine = samples.filter((s) => s.target === target && rowKey(s) === key && s.requests > 0 && s.wallSec > 0);
  if (!mine.length) return undefined;
  const us = (x: number, s: Sample): number => (x / s.requests) * 1e6;
  return {
    clientUs: median(mine.map((s) => us(s.clientCpuSec, s))),
    // for direct, cpuSec is the redis-server's own CPU and there is no proxy
    serversUs: median(mine.map((s) => us(target === 'direct' ? s.cpuSec : s.serverCpuSec, s))),
    proxyUs: target === 'direct' ? 0 : median(mine.map((s) => us(s.cpuSec, s))),
    busyCores: median(mine.map((s) => (s.clientCpuSec + s.serverCpuSec + (target === 'direct' ? 0 : s.cpuSec)) / s.wallSec)),
  };
}

/**
 * The CPU budget of a throughput target: on a machine that the load generator, the servers and
 * the proxy share, `rps` requests per second at `busyCores` leave `busyCores / rps` of CPU per
 * request, of which the load generator and the servers take their part whatever the proxy does.
 * `proxyUs` is what is left for the proxy (negative: not reachable by any proxy), and
 * `zeroCostRps` the rate a proxy that used no CPU at all would reach at the same busy cores.
 */
export function cpuBudget(share: CpuShare, rps: number): { perRequestUs: number; proxyUs: number; zeroCostRps: number } {
  const perRequestUs = (share.busyCores / rps) * 1e6;
  const others = share.clientUs + share.serversUs;
  return { perRequestUs, proxyUs: perRequestUs - others, zeroCostRps: others > 0 ? (share.busyCores / others) * 1e6 : NaN };
}

/** CPU per request of every process in the run, for the SET/GET rows, and the -P16 target's budget. */
export function cpuTables(rows: Row[], samples: Sample[]): string {
  const picked = rows.filter((r) => r.transport === 'tcp' && r.dataSize === 3 && (r.test === 'SET' || r.test === 'GET'));
  const body: string[][] = [];
  for (const r of picked)
    for (const t of TARGETS) {
      const c = cpuShare(samples, t, r.key);
      if (!c) continue;
      const all = c.clientUs + c.serversUs + c.proxyUs;
      body.push([r.key.replace(/^tcp /, ''), t, fmtNum(r.cells[t]?.rps), fmtNum(c.clientUs, 2), fmtNum(c.serversUs, 2), t === 'direct' ? '–' : fmtNum(c.proxyUs, 2), fmtNum(all, 2), fmtNum(c.busyCores, 2)]);
    }
  const out = [
    table(
      ['test', 'target', 'rps', 'redis-benchmark µs/req', 'redis-server(s) µs/req', 'proxy µs/req', 'all µs/req', 'busy cores'],
      body,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  ];
  const budget: string[][] = [];
  for (const r of picked.filter((x) => x.pipeline === 16)) {
    const tw = r.cells.twemproxy?.rps;
    const rs = cpuShare(samples, 'ringside', r.key);
    if (!tw || !rs) continue;
    const b = cpuBudget(rs, 2 * tw);
    const relay = cpuShare(samples, 'relay', r.key);
    budget.push([
      r.key.replace(/^tcp /, ''),
      fmtNum(2 * tw),
      fmtNum(b.perRequestUs, 2),
      fmtNum(rs.clientUs + rs.serversUs, 2),
      fmtNum(b.proxyUs, 2),
      fmtNum(rs.proxyUs, 2),
      relay ? fmtNum(relay.proxyUs, 2) : '–',
      `${fmtNum(b.zeroCostRps)} (${fmtRatio(ratio(b.zeroCostRps, tw))})`,
    ]);
  }
  if (budget.length)
    out.push(
      '',
      table(
        ['test', '2 × twemproxy rps', 'CPU µs/req at that rate', 'redis-benchmark + servers µs/req', 'left for the proxy µs/req', 'ringside uses µs/req', 'blind relay uses µs/req', 'rate of a proxy costing nothing (× twemproxy)'],
        budget,
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  return out.join('\n');
}

export interface TargetCheck {
  figure: string;
  target: string;
  measured: string;
  status: 'met' | 'NOT met' | 'not measured';
}

function find(rows: Row[], transport: string, test: string, dataSize: number, pipeline: number): Row | undefined {
  return rows.find((r) => r.transport === transport && r.test === test && r.dataSize === dataSize && r.pipeline === pipeline);
}

/** The issue-5 targets, checked on the TCP figures (RSS: from the memory mode's last result). */
export function checkTargets(rows: Row[], samples: Sample[], memory: MemoryResult | null): TargetCheck[] {
  const out: TargetCheck[] = [];
  const rpsAtLeast = (test: string, d: number, p: number, min: number): void => {
    const r = find(rows, 'tcp', test, d, p);
    const x = ratio(r?.cells.ringside?.rps, r?.cells.twemproxy?.rps);
    out.push({
      figure: `requests/s ${test} ${sizeLabel(d)} -P${p}`,
      target: `≥ ${min.toFixed(1)} × twemproxy`,
      measured: fmtRatio(x),
      status: Number.isFinite(x) ? (x >= min ? 'met' : 'NOT met') : 'not measured',
    });
  };
  for (const t of ['SET', 'GET']) rpsAtLeast(t, 3, 1, 1.0);
  for (const t of ['SET', 'GET']) rpsAtLeast(t, 3, 16, 2.0);
  for (const t of ['SET', 'GET']) {
    const r = find(rows, 'tcp', t, 3, 1);
    const rs = r?.cells.ringside?.p50Ms;
    const tw = r?.cells.twemproxy?.p50Ms;
    out.push({
      figure: `p50 latency ${t} 3B -P1`,
      target: '≤ twemproxy',
      measured: rs !== undefined && tw !== undefined ? `${fmtMs(rs)} vs ${fmtMs(tw)} ms` : '–',
      status: rs !== undefined && tw !== undefined ? (rs <= tw ? 'met' : 'NOT met') : 'not measured',
    });
  }
  for (const p of [1, 16]) rpsAtLeast('LRANGE_100', 3, p, 1.0);
  for (const p of [1, 16]) for (const t of ['SET', 'GET']) rpsAtLeast(t, 1024, p, 1.0);
  const cpuRs = overallCpuPerM(samples, 'ringside');
  const cpuTw = overallCpuPerM(samples, 'twemproxy');
  const cr = ratio(cpuRs, cpuTw);
  out.push({
    figure: 'CPU s per million requests (all TCP tests)',
    target: '≤ 1.5 × twemproxy',
    measured: Number.isFinite(cr) ? `${fmtNum(cpuRs, 2)} vs ${fmtNum(cpuTw, 2)} (${fmtRatio(cr)})` : '–',
    status: Number.isFinite(cr) ? (cr <= 1.5 ? 'met' : 'NOT met') : 'not measured',
  });
  const rssKb = memory?.targets.ringside?.kbPerConnection;
  out.push({
    figure: 'RSS per idle client connection',
    target: '≤ 8 KB',
    measured:
      rssKb !== undefined && Number.isFinite(rssKb)
        ? `${rssKb.toFixed(2)} KB (memory mode, ${memory!.date})`
        : 'run `bash bench/run.sh --memory`',
    status: rssKb !== undefined && Number.isFinite(rssKb) ? (rssKb <= 8 ? 'met' : 'NOT met') : 'not measured',
  });
  return out;
}

export function targetsTable(checks: TargetCheck[]): string {
  return table(
    ['figure', 'target', 'measured', 'status'],
    checks.map((c) => [c.figure, c.target, c.measured, c.status]),
    ['l', 'l', 'l', 'l'],
  );
}

export interface MemoryResult {
  date: string;
  connections: number;
  targets: Partial<
    Record<
      TargetName,
      {
        opened: number;
        failed: number;
        rssBeforeKb: number;
        rssIdleKb: number;
        rssAfterPingKb: number;
        kbPerConnection: number;
        kbPerConnectionAfterPing: number;
      }
    >
  >;
}

export function memoryTable(m: MemoryResult): string {
  const body = TARGETS.filter((t) => m.targets[t]).map((t) => {
    const x = m.targets[t]!;
    return [
      t,
      `${x.opened}${x.failed ? ` (${x.failed} failed)` : ''}`,
      fmtNum(x.rssBeforeKb),
      fmtNum(x.rssIdleKb),
      x.kbPerConnection.toFixed(2),
      fmtNum(x.rssAfterPingKb),
      x.kbPerConnectionAfterPing.toFixed(2),
    ];
  });
  return table(
    ['process', 'connections', 'RSS before KB', 'RSS idle KB', 'KB/conn idle', 'RSS after 1 PING each KB', 'KB/conn after PING'],
    body,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A hand-written SVG bar chart: per test, the ratios rs/tw, rs/direct, tw/direct and relay/tw of requests/s. */
export function ratiosSvg(rows: Row[], title: string): string {
  const series: Array<{ name: string; color: string; get: (r: Row) => number }> = [
    { name: 'ringside / twemproxy', color: '#1f77b4', get: (r) => ratio(r.cells.ringside?.rps, r.cells.twemproxy?.rps) },
    { name: 'ringside / direct', color: '#9ecae1', get: (r) => ratio(r.cells.ringside?.rps, r.cells.direct?.rps) },
    { name: 'twemproxy / direct', color: '#bbbbbb', get: (r) => ratio(r.cells.twemproxy?.rps, r.cells.direct?.rps) },
    { name: 'blind relay / twemproxy', color: '#98df8a', get: (r) => ratio(r.cells.relay?.rps, r.cells.twemproxy?.rps) },
  ];
  const values = rows.flatMap((r) => series.map((s) => s.get(r))).filter(Number.isFinite);
  const maxV = Math.max(2.2, ...values) * 1.08;
  const groupW = 16 * series.length + 18;
  const left = 48;
  const top = 50;
  const plotH = 260;
  const bottom = 120;
  const width = left + rows.length * groupW + 90;
  const height = top + plotH + bottom;
  const y = (v: number): number => top + plotH - (v / maxV) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  );
  series.forEach((s, i) => {
    const lx = left + i * 170;
    parts.push(`<rect x="${lx}" y="28" width="12" height="12" fill="${s.color}"/>`, `<text x="${lx + 16}" y="38">${esc(s.name)}</text>`);
  });
  for (let v = 0; v <= maxV; v += 0.5) {
    parts.push(
      `<line x1="${left}" x2="${width - 10}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${v === 1 || v === 2 ? '#d62728' : '#eeeeee'}"${v === 1 || v === 2 ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(1)}×</text>`,
    );
  }
  rows.forEach((r, gi) => {
    const gx = left + gi * groupW + 9;
    series.forEach((s, si) => {
      const v = s.get(r);
      const x = gx + si * 16;
      if (Number.isFinite(v)) {
        parts.push(
          `<rect x="${x}" y="${y(v).toFixed(1)}" width="14" height="${(top + plotH - y(v)).toFixed(1)}" fill="${s.color}"><title>${esc(`${r.key}: ${s.name} = ${v.toFixed(2)}`)}</title></rect>`,
        );
        if (si === 0) parts.push(`<text x="${x + 7}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${v.toFixed(2)}</text>`);
      } else {
        parts.push(`<text x="${x + 7}" y="${top + plotH - 4}" text-anchor="middle" fill="#999">–</text>`);
      }
    });
    const lx = gx + (series.length * 16) / 2;
    const ly = top + plotH + 10;
    parts.push(`<text transform="translate(${lx},${ly}) rotate(50)" text-anchor="start">${esc(r.key)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${width - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="black"/>`, '</svg>', '');
  return parts.join('\n');
}

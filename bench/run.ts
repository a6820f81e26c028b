/**
 * The Ringside benchmark driver (started by bench/run.sh, which builds it and guards the cleanup).
 *
 *   default    redis-benchmark against direct redis-server, twemproxy and ringside (and a blind
 *              Node.js relay as a reference), alternating, several rounds; medians, ratios, issue-5 targets → bench/results/latest.{md,json},
 *              bench/results/ratios.svg
 *   --memory   RSS per idle client connection (10 000 connections) of ringside and twemproxy
 *              → bench/results/memory.{md,json}
 *   --cpu-prof where the sidecar's CPU goes (node --cpu-prof), test by test → bench/results/cpu-prof.{md,json}
 *   --quick    issue 2's check: redis-benchmark -q -n 20000, full default test list, against the
 *              sidecar; exit code 1 if any test reports an error or is missing
 *
 * Run `bash bench/run.sh --help` for the options.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { CpuProfile, ProfileSummary, profileTable, summarizeProfile } from './lib/cpu-prof';
import { Endpoint, Procs, describe, run, sleep, treeCpuSeconds, treeRssKb } from './lib/procs';
import {
  ROOT,
  RedisServer,
  Target,
  connArgs,
  createCluster,
  directTarget,
  ringsideHas,
  startRedis,
  startRelay,
  startRingside,
  startTwemproxy,
} from './lib/setup';
import { DEFAULT_PROFILES, Profile, failoverMarkdown, parseProfiles, runFailover } from './lib/failover';
import { DEFAULT_TESTS } from './lib/default-tests';
import { securityMode } from './lib/security';
import { durabilityMode } from './lib/durability';
import { swarmMode } from './lib/swarm';
import {
  Failure,
  MemoryResult,
  Sample,
  TARGETS,
  TargetName,
  checkTargets,
  cpuTables,
  memoryTable,
  ratiosSvg,
  relayTable,
  rowsTable,
  summarize,
  targetsTable,
} from './lib/report';

const HELP = () => `usage: bash bench/run.sh [mode] [options]

modes (default: the side-by-side benchmark)
  --quick               issue-2 check: redis-benchmark -q -n 20000 (full default test list) against
                        the sidecar; exits 1 if any test reports an error, is missing or hangs
  --memory              RSS per idle client connection, ringside and twemproxy (and redis-server)
  --failover            issue-6 fail-over time: kill -9 a master under write load, ringside (3 sidecars)
                        beside Redis Sentinel (3 sentinels), per timing profile
  --instructions        user-space instructions per request of twemproxy and ringside under valgrind's
                        callgrind (SET/GET at -P1 and -P16): a count that does not move with the
                        machine's load, for comparing builds; → bench/results/instructions.{md,json}
  --security            what TLS to the nodes and ACL users cost: SET/GET at -P1/-P16 through sidecars
                        with TLS / two ACL users / neither, beside redis-benchmark --tls and as the
                        data user straight at a node, as ratios; → bench/results/security.{md,json}
  --durability          what durable mode costs: SET/GET at -P1/-P16 through a sidecar of a cluster with
                        durability "async" and one with "replica" (3 masters + 3 replicas each),
                        beside one master directly; rps and p50; → bench/results/durability.{md,json}
  --swarm N[,N...]      what N sidecars' control planes (the real ClusterView + FailoverAgent, many per
                        process) cost each master of a real cluster with 1 s timings: commands/s, CPU,
                        connections, memory; time for all to see a new configuration; a kill -9
                        fail-over with N voters (elections started); → bench/results/swarm-<label>.{md,json},
                        swarm.svg. Options: --swarm-masters M (3), --swarm-window-ms (20000),
                        --swarm-label L (now), --swarm-per-worker K (250), --swarm-no-failover
  --cpu-prof            the sidecar under node --cpu-prof, a fresh process per test (SET/GET, LRANGE_100
                        and 1 KB at -P1, SET/GET at -P16): self time per function over the measured run,
                        as shares of the busy samples; → bench/results/cpu-prof.{md,json}

benchmark options
  --rounds N            rounds of the alternating sequence, test by test (default 5); medians over rounds
  --requests N          -n for each -P 1 test (default 100000)
  --requests-p16 N      -n for each -P 16 test (default 5 × --requests)
  --clients N           -c (default 50)
  --keyspace N          -r (default 100000)
  --targets LIST        subset of direct,twemproxy,ringside,relay (default all four; relay is a blind
                        Node.js stream.pipe relay to the same masters, a reference: bench/lib/relay.ts)
  --no-unix             skip the Unix-socket SET/GET runs
  --no-warmup           skip the short unrecorded warm-up run against each target
  --out DIR             where results go (default bench/results)

memory options
  --connections N       idle connections per process (default 10000)

fail-over options
  --profiles LIST       name:checkMs/leaseMs/downAfterMs,... (default ${DEFAULT_PROFILES})
  --systems LIST        subset of ringside,sentinel (default both)
  --rounds N            kills per profile and system (default 3)

quick options
  --port P              check an already running server on 127.0.0.1:P instead of starting a cluster
                        and a sidecar
  --requests N          -n (default 20000)

common
  --serve-arg ARG       extra argument for \`ringside serve\` (repeatable)
  --keep                keep the work directory (logs, configs) after the run
  --help
`;

interface Options {
  mode: 'bench' | 'memory' | 'quick' | 'failover' | 'instructions' | 'cpu-prof' | 'security' | 'durability' | 'swarm';
  swarm: { sizes: number[]; masters: number; windowMs: number; label: string; perWorker: number; failover: boolean };
  profiles: Profile[];
  systems: Array<'ringside' | 'sentinel'>;
  rounds: number;
  requests: number;
  requestsP16: number;
  clients: number;
  keyspace: number;
  targets: TargetName[];
  unix: boolean;
  warmup: boolean;
  out: string;
  connections: number;
  port: number | null;
  serveArgs: string[];
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    mode: 'bench',
    swarm: { sizes: [10, 100, 1000], masters: 3, windowMs: 20_000, label: 'now', perWorker: 250, failover: true },
    profiles: parseProfiles(DEFAULT_PROFILES),
    systems: ['ringside', 'sentinel'],
    rounds: 0,
    requests: 0,
    requestsP16: 0,
    clients: 50,
    keyspace: 100000,
    targets: [...TARGETS],
    unix: true,
    warmup: true,
    out: path.join(ROOT, 'bench', 'results'),
    connections: 10000,
    port: null,
    serveArgs: [],
    keep: false,
  };
  const int = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} needs a positive integer, got "${v ?? ''}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const val = (): string => {
      if (v !== undefined) return v;
      const next = argv[++i];
      if (next === undefined) throw new Error(`${a} needs a value`);
      return next;
    };
    switch (a) {
      case '--help':
      case '-h':
        process.stdout.write(HELP());
        process.exit(0);
      // falls through (process.exit does not return)
      case '--quick':
        o.mode = 'quick';
        break;
      case '--memory':
        o.mode = 'memory';
        break;
      case '--failover':
        o.mode = 'failover';
        break;
      case '--instructions':
        o.mode = 'instructions';
        break;
      case '--cpu-prof':
        o.mode = 'cpu-prof';
        break;
      case '--security':
        o.mode = 'security';
        break;
      case '--durability':
        o.mode = 'durability';
        break;
      case '--swarm': {
        o.mode = 'swarm';
        const next = argv[i + 1];
        if (next !== undefined && /^\d+(,\d+)*$/.test(next)) o.swarm.sizes = val().split(',').map(Number);
        break;
      }
      case '--swarm-masters':
        o.swarm.masters = Number(val());
        break;
      case '--swarm-window-ms':
        o.swarm.windowMs = Number(val());
        break;
      case '--swarm-label':
        o.swarm.label = val();
        break;
      case '--swarm-per-worker':
        o.swarm.perWorker = Number(val());
        break;
      case '--swarm-no-failover':
        o.swarm.failover = false;
        break;
      case '--profiles':
        o.profiles = parseProfiles(val());
        break;
      case '--systems': {
        const list = val().split(',').map((x) => x.trim());
        for (const x of list) if (x !== 'ringside' && x !== 'sentinel') throw new Error(`unknown system "${x}"`);
        o.systems = (['ringside', 'sentinel'] as const).filter((x) => list.includes(x));
        break;
      }
      case '--rounds':
        o.rounds = int(a, val());
        break;
      case '--requests':
        o.requests = int(a, val());
        break;
      case '--requests-p16':
        o.requestsP16 = int(a, val());
        break;
      case '--clients':
        o.clients = int(a, val());
        break;
      case '--keyspace':
        o.keyspace = int(a, val());
        break;
      case '--targets': {
        const list = val().split(',').map((s) => s.trim()).filter(Boolean);
        for (const t of list) if (!TARGETS.includes(t as TargetName)) throw new Error(`unknown target "${t}"`);
        o.targets = TARGETS.filter((t) => list.includes(t));
        break;
      }
      case '--no-unix':
        o.unix = false;
        break;
      case '--no-warmup':
        o.warmup = false;
        break;
      case '--out':
        o.out = path.resolve(val());
        break;
      case '--connections':
        o.connections = int(a, val());
        break;
      case '--port':
        o.port = int(a, val());
        break;
      case '--serve-arg':
        o.serveArgs.push(val());
        break;
      case '--keep':
        o.keep = true;
        break;
      default:
        throw new Error(`unknown option "${a}" (see --help)`);
    }
  }
  // the side-by-side runs take five: their per-round ratios spread by ±10% on a shared 2-core VM
  if (!o.rounds) o.rounds = o.mode === 'bench' ? 5 : 3;
  if (!o.requests) o.requests = o.mode === 'quick' ? 20000 : o.mode === 'instructions' ? 40000 : 100000;
  if (!o.requestsP16) o.requestsP16 = 5 * o.requests;
  return o;
}

const say = (s: string): void => void process.stderr.write(s + '\n');

// ---------------------------------------------------------------------------------------------
// Setup shared by the modes

interface Stage {
  direct?: RedisServer;
  masters: RedisServer[];
  targets: Partial<Record<TargetName, Target>>;
  ringsideMissing?: string;
}

async function stage(procs: Procs, o: Options, want: TargetName[]): Promise<Stage> {
  const st: Stage = { masters: [], targets: {} };
  if (want.includes('ringside') && !(await ringsideHas('serve'))) {
    st.ringsideMissing = '`node bin/ringside.js serve --help` does not work in this build (run `npx tsc -p .`)';
    say(`bench: ringside not measured: ${st.ringsideMissing}`);
    want = want.filter((t) => t !== 'ringside');
  }
  if (want.includes('direct')) {
    st.direct = await startRedis(procs, 'direct');
    st.targets.direct = directTarget(st.direct);
  }
  if (want.includes('twemproxy') || want.includes('ringside') || want.includes('relay'))
    for (let i = 1; i <= 3; i++) st.masters.push(await startRedis(procs, `master${i}`));
  if (want.includes('twemproxy')) st.targets.twemproxy = await startTwemproxy(procs, st.masters);
  if (want.includes('relay')) st.targets.relay = await startRelay(procs, st.masters);
  if (want.includes('ringside')) {
    try {
      await createCluster(st.masters, say);
      st.targets.ringside = await startRingside(procs, st.masters, o.serveArgs);
    } catch (e) {
      st.ringsideMissing = `ringside did not start: ${(e as Error).message}`;
      say(`bench: ringside not measured: ${st.ringsideMissing}`);
    }
  }
  for (const t of Object.values(st.targets))
    say(`bench: ${t.name.padEnd(9)} pid ${t.proc.pid}  tcp 127.0.0.1:${t.tcp.port}  unix ${t.unix.path}`);
  if (st.masters.length) say(`bench: masters ${st.masters.map((m) => `127.0.0.1:${m.port}`).join(' ')}`);
  return st;
}

function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10000 });
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).find(Boolean) ?? 'unknown';
}

function machine(): { cpus: number } & Record<'cpuModel' | 'kernel' | 'node' | 'redis' | 'redisBenchmark' | 'nutcracker' | 'ringsideCommit', string> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim();
    if (dirty) commit += ' (+ uncommitted changes in src/)';
  } catch {
    /* not a git checkout */
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    kernel: os.release(),
    node: process.version,
    redis: versionOf('redis-server', ['--version']),
    redisBenchmark: versionOf('redis-benchmark', ['--version']),
    nutcracker: versionOf('nutcracker', ['--version']),
    ringsideCommit: commit,
  };
}

// ---------------------------------------------------------------------------------------------
// Benchmark mode

interface Group {
  transport: 'tcp' | 'unix';
  pipeline: number;
  dataSize: number;
  tests: string;
}

/**
 * One group per test (one redis-benchmark invocation each), so that the three targets run the
 * same test back to back: the measurements a ratio compares are a second or two apart, not the
 * length of a whole list of tests. On a shared 2-core machine the rate drifts by 10-20% over
 * tens of seconds; the closer the compared runs, the less of that drift lands in a ratio.
 */
function groups(o: Options): Group[] {
  const g: Group[] = [];
  const each = (transport: Group['transport'], pipeline: number, dataSize: number, tests: string[]): void => {
    for (const t of tests) g.push({ transport, pipeline, dataSize, tests: t });
  };
  for (const p of [1, 16]) {
    each('tcp', p, 3, ['set', 'get', 'lrange_100']);
    each('tcp', p, 1024, ['set', 'get']);
  }
  if (o.unix) for (const p of [1, 16]) each('unix', p, 3, ['set', 'get']);
  return g;
}

function csvFields(line: string): string[] | null {
  const m = line.trim();
  if (!m.startsWith('"') || !m.endsWith('"')) return null;
  return m.slice(1, -1).split('","');
}

function testName(csvName: string): string {
  if (csvName.startsWith('LPUSH')) return 'LPUSH'; // "LPUSH (needed to benchmark LRANGE)"
  if (csvName.startsWith('LRANGE_100')) return 'LRANGE_100';
  return csvName;
}

/**
 * One redis-benchmark invocation (one group of tests) against one target. Each CSV line is read as
 * soon as redis-benchmark prints it (stdbuf -oL), and the CPU counters are read at that moment, so
 * each test gets the CPU its proxy spent on it.
 */
async function runGroup(
  o: Options,
  procs: Procs,
  t: Target,
  servers: number[],
  g: Group,
  round: number,
  samples: Sample[],
  failures: Failure[],
): Promise<string> {
  const n = g.pipeline === 1 ? o.requests : o.requestsP16;
  const ep: Endpoint = g.transport === 'tcp' ? t.tcp : t.unix;
  const args = [
    ...connArgs(ep),
    '-c', String(o.clients),
    '-n', String(n),
    '-r', String(o.keyspace),
    '-P', String(g.pipeline),
    '-d', String(g.dataSize),
    '-t', g.tests,
    '--csv',
  ];
  const tests = g.tests.split(',').length + (g.tests.includes('lrange') ? 1 : 0);
  const serverCpu = (): number => servers.reduce((s, p) => s + treeCpuSeconds(p), 0);
  let cpu = treeCpuSeconds(t.proc.pid);
  let srv = serverCpu();
  // the load generator's own CPU (stdbuf execs redis-benchmark: same pid), for the CPU budget
  let clientPid = 0;
  let cli = 0;
  let at = process.hrtime.bigint();
  const got: string[] = [];
  const r = await run('stdbuf', ['-oL', 'redis-benchmark', ...args], {
    timeoutMs: 30_000 + (tests * n * 1000) / 1500,
    pidFile: procs.pidFileName,
    onSpawn: (pid) => {
      clientPid = pid;
    },
    onStdoutLine: (line) => {
      const f = csvFields(line);
      if (!f || f[0] === 'test' || f.length < 8) return;
      const cpu1 = treeCpuSeconds(t.proc.pid);
      const srv1 = serverCpu();
      const cli1 = clientPid ? treeCpuSeconds(clientPid) : 0;
      const at1 = process.hrtime.bigint();
      const test = testName(f[0]!);
      const num = f.slice(1).map(Number);
      samples.push({
        round,
        target: t.name,
        transport: g.transport,
        pipeline: g.pipeline,
        dataSize: g.dataSize,
        test,
        requests: n,
        rps: num[0]!,
        avgMs: num[1]!,
        p50Ms: num[3]!,
        p95Ms: num[4]!,
        p99Ms: num[5]!,
        maxMs: num[6]!,
        cpuSec: cpu1 - cpu,
        serverCpuSec: t.name === 'direct' ? cpu1 - cpu : srv1 - srv,
        clientCpuSec: cli1 - cli,
        wallSec: Number(at1 - at) / 1e9,
      });
      got.push(`${test} ${Math.round(num[0]!).toLocaleString('en-US')}`);
      cpu = cpu1;
      srv = srv1;
      cli = cli1;
      at = at1;
    },
  });
  if (r.code !== 0 || r.timedOut) {
    const why = r.timedOut
      ? 'timed out'
      : `exit ${r.signal ?? r.code}: ${(r.stderr + r.stdout).split('\n').filter((l) => l.trim() && !l.startsWith('"')).slice(-3).join(' | ')}`;
    failures.push({ round, target: t.name, transport: g.transport, pipeline: g.pipeline, dataSize: g.dataSize, error: why });
    got.push(`FAILED (${why})`);
  }
  return got.join(', ');
}

async function benchMode(o: Options, procs: Procs): Promise<number> {
  const started = new Date();
  const load0 = os.loadavg();
  const st = await stage(procs, o, o.targets);
  const targets = o.targets.map((n) => st.targets[n]).filter((t): t is Target => !!t);
  const masterPids = st.masters.map((m) => m.child.pid);
  const dead = new Set<TargetName>();

  if (o.warmup)
    for (const t of targets) {
      say(`bench: warm-up ${t.name}`);
      await run('redis-benchmark', [...connArgs(t.tcp), '-c', String(o.clients), '-n', '20000', '-r', String(o.keyspace), '-P', '16', '-t', 'set,get', '-q'], {
        timeoutMs: 60_000,
        pidFile: procs.pidFileName,
      });
    }

  const samples: Sample[] = [];
  const failures: Failure[] = [];
  const gs = groups(o);
  // even rounds: direct, then ringside, then twemproxy (the relay, a reference, always last)
  const proxyTurn = (n: TargetName): number => ({ direct: 0, ringside: 1, twemproxy: 2, relay: 3 })[n];
  for (let round = 1; round <= o.rounds; round++) {
    // the two proxies take turns at going second, so that neither always runs right after the
    // other: whatever the one before leaves behind (caches, a busy master) falls on both alike
    const order = round % 2 === 1 ? targets : [...targets].sort((a, b) => proxyTurn(a.name) - proxyTurn(b.name));
    for (const g of gs) {
      for (const t of order) {
        if (procs.shuttingDown) throw new Error('interrupted');
        if (dead.has(t.name)) continue;
        const line = await runGroup(o, procs, t, t.name === 'direct' ? [] : masterPids, g, round, samples, failures);
        if (procs.shuttingDown) throw new Error('interrupted');
        say(`round ${round}/${o.rounds}  ${g.transport} -P${g.pipeline} ${g.dataSize}B  ${t.name.padEnd(9)} ${line}`);
        if (t.proc.exited) {
          dead.add(t.name);
          say(`bench: ${t.name} has exited; no more runs against it. Last lines of its log:\n${procs.tail(t.proc)}`);
        }
      }
    }
  }
  const load1 = os.loadavg();

  const rows = summarize(samples);
  let memory: MemoryResult | null = null;
  try {
    memory = JSON.parse(fs.readFileSync(path.join(o.out, 'memory.json'), 'utf8')) as MemoryResult;
  } catch {
    /* memory mode not run yet */
  }
  const checks = checkTargets(rows, samples, memory);
  const m = machine();
  const tcpRows = rows.filter((r) => r.transport === 'tcp');
  const unixRows = rows.filter((r) => r.transport === 'unix');
  const md: string[] = [
    `# Ringside benchmark`,
    '',
    `${started.toISOString()} · ${m.cpus} × ${m.cpuModel} · load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ` +
      `${load1.map((x) => x.toFixed(2)).join(' ')} at end · ${m.redis.replace(/ sha=.*/, '')} · ${m.nutcracker.replace(/^This is /, '')} · node ${m.node} · ringside ${m.ringsideCommit}`,
    '',
    `redis-benchmark -c ${o.clients} -r ${o.keyspace}, -n ${o.requests} at -P 1 and ${o.requestsP16} at -P 16; ` +
      `${o.rounds} rounds, each running every test against direct, then twemproxy, then ringside (odd rounds) or ringside, then twemproxy (even rounds), then the blind relay, before the next test; each figure is the median over the rounds. ` +
      `rps = requests per second; p50/p99 in ms; CPU s/Mreq = CPU seconds (user+system) of the proxy process per million requests.`,
    '',
    '## TCP (127.0.0.1)',
    '',
    rowsTable(tcpRows),
    '',
  ];
  if (unixRows.length) md.push('## Unix sockets', '', rowsTable(unixRows), '');
  if (rows.some((r) => r.cells.relay))
    md.push(
      '## Beside a blind Node.js relay',
      '',
      'The relay (bench/lib/relay.ts) pipes each client connection to a connection of its own to one of the same three ' +
        'masters (taken in turn) with `stream.pipe`: no parsing, no routing, no coalescing of writes. It is what a ' +
        'Node.js process in front of these masters reaches when it only moves bytes; not a proxy anybody could use.',
      '',
      relayTable(rows),
      '',
    );
  md.push('## Issue-5 targets', '', targetsTable(checks), '');
  md.push(
    '## Where the CPU goes',
    '',
    'CPU per request of each process in the run (SET/GET, 3-byte values, TCP; medians over the rounds), and busy cores: ' +
      'all of it together per second of the test. The load generator, the redis-servers and the proxy share the ' +
      `machine's ${m.cpus} cores, so at -P 16 the proxy's CPU and the others' add up to the machine: the second table ` +
      'is what a rate of 2 × twemproxy leaves the proxy per request, at the busy cores of the ringside run.',
    '',
    cpuTables(rows, samples),
    '',
  );
  if (st.ringsideMissing) md.push(`**ringside not measured:** ${st.ringsideMissing}`, '');
  if (failures.length) {
    md.push('## Failed runs', '');
    for (const f of failures) md.push(`- round ${f.round}, ${f.target}, ${f.transport} -P${f.pipeline} ${f.dataSize}B: ${f.error}`);
    md.push('');
  }
  md.push('![ratios](ratios.svg)', '');
  const text = md.join('\n');

  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'latest.md'), text);
  fs.writeFileSync(
    path.join(o.out, 'latest.json'),
    JSON.stringify(
      {
        date: started.toISOString(),
        machine: m,
        loadAverage: { start: load0, end: load1 },
        options: { rounds: o.rounds, requests: o.requests, requestsP16: o.requestsP16, clients: o.clients, keyspace: o.keyspace },
        ringsideMissing: st.ringsideMissing ?? null,
        summary: rows,
        targets: checks,
        failures,
        samples,
      },
      null,
      2,
    ) + '\n',
  );
  fs.writeFileSync(path.join(o.out, 'ratios.svg'), ratiosSvg(rows, `Ringside benchmark ${started.toISOString().slice(0, 10)}: requests/s ratios (median of ${o.rounds})`));
  process.stdout.write('\n' + text);
  say(`bench: wrote ${path.join(o.out, 'latest.md')}, latest.json, ratios.svg ` +
    `(${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)`);
  return failures.length ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Memory mode

async function openIdle(e: Endpoint, n: number): Promise<{ sockets: net.Socket[]; failed: number; lastError: string }> {
  const sockets: net.Socket[] = [];
  let failed = 0;
  let lastError = '';
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = 'path' in e ? net.connect(e.path) : net.connect(e.port, e.host ?? '127.0.0.1');
      s.setTimeout(10000);
      s.once('connect', () => {
        s.setTimeout(0);
        sockets.push(s);
        resolve();
      });
      s.once('timeout', () => s.destroy(new Error('connect timeout')));
      s.on('error', (err) => {
        lastError = err.message;
        if (!sockets.includes(s)) {
          failed++;
          resolve();
        }
      });
    });
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: 200 }, worker));
  return { sockets, failed, lastError };
}

async function pingAll(sockets: net.Socket[], timeoutMs: number): Promise<number> {
  let ok = 0;
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, timeoutMs);
          s.once('data', (d) => {
            if (d.toString('latin1').startsWith('+PONG')) ok++;
            clearTimeout(t);
            resolve();
          });
          s.write('*1\r\n$4\r\nPING\r\n');
        }),
    ),
  );
  return ok;
}

async function memoryMode(o: Options, procs: Procs): Promise<number> {
  const started = new Date();
  const want: TargetName[] = ['twemproxy', 'ringside', 'direct'].filter((t) => o.targets.includes(t as TargetName)) as TargetName[];
  const st = await stage(procs, o, want);
  const result: MemoryResult = { date: started.toISOString(), connections: o.connections, targets: {} };
  for (const name of want) {
    const t = st.targets[name];
    if (!t) continue;
    // Let the process settle after start-up (and, for the proxies, after their first connections).
    await run('redis-benchmark', [...connArgs(t.tcp), '-c', '10', '-n', '2000', '-t', 'set,get', '-q'], { timeoutMs: 30000 });
    await sleep(1000);
    const before = treeRssKb(t.proc.pid);
    say(`bench: ${name}: opening ${o.connections} connections (RSS ${before} KB)`);
    const { sockets, failed, lastError } = await openIdle(t.tcp, o.connections);
    await sleep(2000);
    const open = sockets.filter((s) => !s.destroyed).length;
    const idle = treeRssKb(t.proc.pid);
    const pong = await pingAll(sockets.filter((s) => !s.destroyed), 30000);
    await sleep(1000);
    const afterPing = treeRssKb(t.proc.pid);
    say(
      `bench: ${name}: ${open} open (${failed} failed${lastError ? `, last error: ${lastError}` : ''}), RSS ${idle} KB idle, ` +
        `${afterPing} KB after one PING each (${pong} PONG)`,
    );
    for (const s of sockets) s.destroy();
    await sleep(1500);
    result.targets[name] = {
      opened: open,
      failed: failed + (sockets.length - open),
      rssBeforeKb: before,
      rssIdleKb: idle,
      rssAfterPingKb: afterPing,
      kbPerConnection: open ? (idle - before) / open : NaN,
      kbPerConnectionAfterPing: open ? (afterPing - before) / open : NaN,
    };
  }
  const m = machine();
  const rs = result.targets.ringside?.kbPerConnection;
  const text = [
    '# Ringside memory per idle client connection',
    '',
    `${started.toISOString()} · ${m.cpus} × ${m.cpuModel} · ${m.nutcracker.replace(/^This is /, '')} · node ${m.node} · ringside ${m.ringsideCommit}`,
    '',
    `${o.connections} client connections opened to each process in turn (TCP, 127.0.0.1), nothing sent; RSS is VmRSS ` +
      `from /proc/<pid>/status (process and children) before, 2 s after the last connect, and 1 s after one PING on each.`,
    '',
    memoryTable(result),
    '',
    rs === undefined
      ? `ringside not measured${st.ringsideMissing ? `: ${st.ringsideMissing}` : ''}`
      : `Target ≤ 8 KB per idle connection: ${rs <= 8 ? 'met' : 'NOT met'} (${rs.toFixed(2)} KB).`,
    '',
  ].join('\n');
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'memory.md'), text);
  fs.writeFileSync(path.join(o.out, 'memory.json'), JSON.stringify({ ...result, machine: m }, null, 2) + '\n');
  process.stdout.write('\n' + text);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Instructions mode: user-space instructions per request under callgrind

/**
 * Instruction totals of the newest callgrind dump of `pid`, run with --separate-threads=yes: dumps
 * are `<prefix>.<pid>.<n>-<thread>`, thread 01 being the main thread (the event loop: for Node,
 * JavaScript, libuv and Node's C++; V8's compiler and GC helpers run on threads of their own).
 */
function lastDumpTotals(dir: string, pid: number): { main: number; all: number } {
  const dumps = fs
    .readdirSync(dir)
    .map((f) => /^callgrind\.(\d+)\.(\d+)-(\d+)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) === pid);
  if (dumps.length === 0) throw new Error(`no callgrind dump for pid ${pid} in ${dir}`);
  const last = Math.max(...dumps.map((m) => Number(m[2])));
  let main = 0;
  let all = 0;
  for (const m of dumps.filter((d) => Number(d[2]) === last)) {
    const t = /^(?:totals|summary): (\d+)/m.exec(fs.readFileSync(path.join(dir, m[0]), 'utf8'));
    if (!t) throw new Error(`no totals line in ${m[0]}`);
    all += Number(t[1]);
    if (Number(m[3]) === 1) main = Number(t[1]);
  }
  return { main, all };
}

async function instructionsMode(o: Options, procs: Procs): Promise<number> {
  const started = new Date();
  for (const tool of ['valgrind', 'callgrind_control'])
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) {
      say(`bench: --instructions needs ${tool} (Debian package valgrind)`);
      return 1;
    }
  const masters: RedisServer[] = [];
  for (let i = 1; i <= 3; i++) masters.push(await startRedis(procs, `master${i}`));
  const launcher = ['valgrind', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${path.join(procs.work, 'callgrind.%p')}`];
  const targets: Target[] = [];
  if (o.targets.includes('twemproxy')) targets.push(await startTwemproxy(procs, masters, launcher, 120000));
  if (o.targets.includes('ringside')) {
    await createCluster(masters, say);
    // under callgrind every command is slower than SLOWLOG's 10 ms: without this each would be
    // logged, work the sidecar does not do at full speed
    targets.push(await startRingside(procs, masters, ['--slowlog-log-slower-than=-1', ...o.serveArgs], 'ringside', launcher, 180000));
  }
  const tests = [
    { test: 'set', pipeline: 1 },
    { test: 'get', pipeline: 1 },
    { test: 'set', pipeline: 16 },
    { test: 'get', pipeline: 16 },
    // redis-benchmark fills the list before each LRANGE_100 run: n LPUSHes, then n LRANGEs (100
    // elements each), all counted, divided by n (the row says so; the same for both proxies)
    { test: 'lrange_100', pipeline: 1 },
  ];
  const label = (r: { test: string; pipeline: number }): string =>
    r.test === 'lrange_100' ? `LPUSH + LRANGE_100 -P${r.pipeline}` : `${r.test.toUpperCase()} -P${r.pipeline}`;
  const n = o.requests;
  const rows: Array<{ test: string; pipeline: number; perRequest: Partial<Record<TargetName, number>>; allThreads: Partial<Record<TargetName, number>> }> = tests.map(
    (t) => ({ ...t, perRequest: {}, allThreads: {} }),
  );
  for (const t of targets) {
    const pid = t.proc.pid;
    for (const row of rows) {
      const bench = (count: number) =>
        run('redis-benchmark', [...connArgs(t.tcp), '-c', String(o.clients), '-n', String(count), '-r', String(o.keyspace), '-P', String(row.pipeline), '-t', row.test, '-q'], {
          timeoutMs: 600000,
        });
      // warm-up (the JIT settles), then count exactly one run
      await bench(n);
      if (spawnSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore' }).status !== 0) throw new Error(`callgrind_control -z ${pid} failed`);
      const r = await bench(n);
      if (r.code !== 0) throw new Error(`redis-benchmark against ${t.name} failed: ${r.stderr}`);
      if (spawnSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' }).status !== 0) throw new Error(`callgrind_control -d ${pid} failed`);
      await sleep(500);
      const totals = lastDumpTotals(procs.work, pid);
      row.perRequest[t.name] = totals.main / n;
      row.allThreads[t.name] = totals.all / n;
      say(`bench: ${t.name} ${label(row)}: ${Math.round(row.perRequest[t.name]!)} instructions per request on the main thread, ${Math.round(row.allThreads[t.name]!)} on all`);
    }
  }
  const m = machine();
  const fmt = (x: number | undefined): string => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
  const table = [
    '| test | twemproxy instructions/request | ringside instructions/request | ringside / twemproxy | all threads: twemproxy / ringside |',
    '|:--|--:|--:|--:|--:|',
    ...rows.map((r) => {
      const tw = r.perRequest.twemproxy;
      const rs = r.perRequest.ringside;
      return `| ${label(r)} | ${fmt(tw)} | ${fmt(rs)} | ${tw && rs ? (rs / tw).toFixed(2) + '×' : '–'} | ${fmt(r.allThreads.twemproxy)} / ${fmt(r.allThreads.ringside)} |`;
    }),
  ].join('\n');
  const text = [
    '# User-space instructions per request',
    '',
    `${started.toISOString()} · ${m.cpus} × ${m.cpuModel} · ${m.nutcracker.replace(/^This is /, '')} · node ${m.node} · ringside ${m.ringsideCommit}`,
    '',
    `Each proxy runs under \`valgrind --tool=callgrind\` in front of the same three masters. Per test: one unrecorded ` +
      `redis-benchmark run of ${n} requests (-c ${o.clients} -r ${o.keyspace}), counters zeroed, one run of ${n} requests, counters ` +
      `dumped; the figure is the dump's instruction total on the process's main thread (user space only) divided by ${n}: ` +
      "the event loop, where the requests are handled (for ringside: JavaScript, libuv and Node's C++). V8's compiler and " +
      'garbage-collector helper threads are counted in the last column only, with every other thread: their share moves ' +
      'by a thousand instructions a request or more from run to run. ' +
      'System calls and the kernel are not counted. Under callgrind the proxy is many times slower, so it reads more ' +
      'commands per event than at full speed, and ringside runs with SLOWLOG off (every command would pass its 10 ms ' +
      'threshold): compare builds with this, not with the requests/s tables. ' +
      "The LRANGE_100 row counts a pair per request: redis-benchmark's LRANGE_100 test fills its list first, so each run " +
      `is ${n} LPUSHes and then ${n} LRANGEs of 100 elements.`,
    '',
    table,
    '',
  ].join('\n');
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'instructions.md'), text);
  fs.writeFileSync(path.join(o.out, 'instructions.json'), JSON.stringify({ date: started.toISOString(), requests: n, rows, machine: m }, null, 2) + '\n');
  process.stdout.write('\n' + text);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// CPU profile mode: where the sidecar's own CPU goes, by function

async function cpuProfMode(o: Options, procs: Procs): Promise<number> {
  const started = new Date();
  if (!(await ringsideHas('serve'))) {
    say('bench --cpu-prof: `node bin/ringside.js serve --help` does not work in this build');
    return 2;
  }
  const masters: RedisServer[] = [];
  for (let i = 1; i <= 3; i++) masters.push(await startRedis(procs, `master${i}`));
  await createCluster(masters, say);
  const tests = [
    { test: 'SET', pipeline: 1, dataSize: 3 },
    { test: 'GET', pipeline: 1, dataSize: 3 },
    { test: 'LRANGE_100', pipeline: 1, dataSize: 3 },
    { test: 'SET', pipeline: 1, dataSize: 1024 },
    { test: 'GET', pipeline: 1, dataSize: 1024 },
    { test: 'SET', pipeline: 16, dataSize: 3 },
    { test: 'GET', pipeline: 16, dataSize: 3 },
  ];
  const results: Array<{ test: string; pipeline: number; dataSize: number; requests: number; rps: number; summary: ProfileSummary }> = [];
  for (const [i, x] of tests.entries()) {
    const dir = path.join(procs.work, `cpu-prof-${i}`);
    const label = `${x.test} ${x.dataSize >= 1024 ? `${x.dataSize / 1024}KB` : `${x.dataSize}B`} -P${x.pipeline}`;
    const t = await startRingside(procs, masters, o.serveArgs, `ringside-prof-${i}`, [], 30000, ['--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${dir}`]);
    const n = x.pipeline === 1 ? o.requests : o.requestsP16;
    const args = (count: number): string[] => [
      ...connArgs(t.tcp), '-c', String(o.clients), '-n', String(count), '-r', String(o.keyspace),
      '-P', String(x.pipeline), '-d', String(x.dataSize), '-t', x.test.toLowerCase(), '-q',
    ];
    await run('redis-benchmark', args(20000), { timeoutMs: 120_000, pidFile: procs.pidFileName }); // warm-up, not in the window
    // the profile's clock is CLOCK_MONOTONIC in µs, as process.hrtime here
    const from = Number(process.hrtime.bigint() / 1000n);
    const r = await run('redis-benchmark', args(n), { timeoutMs: 600_000, pidFile: procs.pidFileName });
    const to = Number(process.hrtime.bigint() / 1000n);
    await procs.stop(t.proc, 15000); // SIGTERM: the sidecar drains and exits, and Node writes the profile
    const rps = Number(/([\d.]+) requests per second/.exec(r.stdout.split('\r').pop() ?? '')?.[1] ?? NaN);
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
    if (r.code !== 0 || files.length !== 1) {
      say(`bench --cpu-prof: ${label}: ${r.code !== 0 ? `redis-benchmark failed: ${r.stderr.slice(0, 300)}` : `${files.length} profiles in ${dir}`}`);
      return 1;
    }
    const summary = summarizeProfile(JSON.parse(fs.readFileSync(path.join(dir, files[0]!), 'utf8')) as CpuProfile, 15, from, to);
    results.push({ ...x, requests: n, rps, summary });
    say(`bench --cpu-prof: ${label}: ${Math.round(rps).toLocaleString('en-US')} requests/s, ${summary.samples} samples, ${(summary.idleShare * 100).toFixed(0)}% idle`);
  }
  const m = machine();
  const md = [
    '# Where the sidecar\'s CPU goes (node --cpu-prof)',
    '',
    `${started.toISOString()} · ${m.cpus} × ${m.cpuModel} · node ${m.node} · ringside ${m.ringsideCommit}`,
    '',
    `Each test runs against a fresh \`ringside serve\` (with the node flags every launcher passes) under ` +
      `\`node --cpu-prof --cpu-prof-interval=250\`, in front of three masters: a warm-up of 20000 requests, then the measured ` +
      `redis-benchmark run (-c ${o.clients} -r ${o.keyspace}; -n ${o.requests} at -P 1, ${o.requestsP16} at -P 16). The tables count ` +
      'the samples taken during the measured run only (start-up and warm-up left out), by the function they were in (self time), ' +
      "as shares of the busy samples: `(idle)` is the event loop waiting. `writeBuffer` is Node's call into the write system call, " +
      "where the kernel also delivers the bytes on loopback and wakes the reader. LRANGE_100's run includes redis-benchmark's LPUSH fill.",
    '',
  ];
  for (const x of results) {
    const s = x.summary;
    md.push(
      `## ${x.test} ${x.dataSize >= 1024 ? `${x.dataSize / 1024}KB` : `${x.dataSize}B`} -P${x.pipeline}`,
      '',
      `${Math.round(x.rps).toLocaleString('en-US')} requests/s; ${s.samples} samples, ${(s.idleShare * 100).toFixed(0)}% idle` +
        (s.windowed ? '' : ' (the measured run could not be told apart: the whole profile is counted)'),
      '',
      profileTable(s),
      '',
    );
  }
  const text = md.join('\n');
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'cpu-prof.md'), text);
  fs.writeFileSync(path.join(o.out, 'cpu-prof.json'), JSON.stringify({ date: started.toISOString(), machine: m, results }, null, 2) + '\n');
  process.stdout.write('\n' + text);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Fail-over mode (issue 6)

async function failoverMode(o: Options, procs: Procs): Promise<number> {
  if (o.systems.includes('ringside') && !(await ringsideHas('serve'))) {
    say('bench --failover: `node bin/ringside.js serve --help` does not work in this build; measuring Sentinel only');
    o.systems = o.systems.filter((x) => x !== 'ringside');
  }
  const r = await runFailover(procs, o.profiles, o.rounds, o.systems, say);
  const m = machine();
  const header = `${r.date} · ${m.cpus} × ${m.cpuModel} · load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at end · ${m.redis.replace(/ sha=.*/, '')} · node ${m.node} · ringside ${m.ringsideCommit}`;
  const text = failoverMarkdown(r, header);
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'failover.md'), text);
  fs.writeFileSync(path.join(o.out, 'failover.json'), JSON.stringify({ ...r, machine: m }, null, 2) + '\n');
  process.stdout.write('\n' + text);
  return r.trials.some((t) => t.error || t.allResumedMs === null) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Quick mode (issue 2)


async function quickMode(o: Options, procs: Procs): Promise<number> {
  let ep: Endpoint;
  if (o.port) {
    ep = { port: o.port };
  } else {
    if (!(await ringsideHas('serve'))) {
      say('bench --quick: cannot check the sidecar: `node bin/ringside.js serve --help` does not work in this build');
      return 2;
    }
    const st = await stage(procs, o, ['ringside']);
    if (!st.targets.ringside) {
      say(`bench --quick: cannot check the sidecar: ${st.ringsideMissing}`);
      return 2;
    }
    ep = st.targets.ringside.tcp;
  }
  const args = [...connArgs(ep), '-q', '-n', String(o.requests)];
  say(`bench --quick: redis-benchmark ${args.join(' ')}`);
  const r = await run('redis-benchmark', args, { timeoutMs: 300_000, pidFile: procs.pidFileName });
  const lines = (r.stdout + '\n' + r.stderr).split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean);
  const results = lines.filter((l) => / requests per second/.test(l));
  const problems: string[] = [];
  for (const l of lines) if (/error|warning|could not|closed/i.test(l)) problems.push(l);
  for (const t of DEFAULT_TESTS) if (!results.some((l) => l.startsWith(`${t}: `))) problems.push(`no result for ${t}`);
  if (r.timedOut) problems.push('redis-benchmark timed out after 300 s (a test hangs)');
  else if (r.code !== 0) problems.push(`redis-benchmark exited with ${r.signal ?? r.code}`);
  for (const l of results) process.stdout.write(l + '\n');
  if (problems.length) {
    process.stdout.write(`\nbench --quick: FAILED against ${describe(ep)}:\n${[...new Set(problems)].map((p) => `  ${p}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write(`\nbench --quick: all ${DEFAULT_TESTS.length} tests completed without an error against ${describe(ep)}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    say(`bench: ${(e as Error).message}`);
    process.exit(2);
  }
  const work = process.env.BENCH_WORK ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ringside-bench-'));
  fs.mkdirSync(work, { recursive: true });
  const pidFile = process.env.BENCH_PIDFILE ?? path.join(work, 'pids');
  const procs = new Procs(work, pidFile);
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= procs.stopAll().then(() => {
      if (!o.keep && !process.env.BENCH_WORK) fs.rmSync(work, { recursive: true, force: true });
      else if (o.keep) say(`bench: work directory kept: ${work}`);
    }));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(sig, () => {
      say(`bench: ${sig}, stopping everything`);
      void cleanup().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  let code = 1;
  try {
    code =
      o.mode === 'quick'
        ? await quickMode(o, procs)
        : o.mode === 'memory'
          ? await memoryMode(o, procs)
          : o.mode === 'failover'
            ? await failoverMode(o, procs)
            : o.mode === 'cpu-prof'
              ? await cpuProfMode(o, procs)
              : o.mode === 'security'
              ? await securityMode(o, procs)
              : o.mode === 'durability'
              ? await durabilityMode(o, procs)
              : o.mode === 'swarm'
              ? await swarmMode({ ...o.swarm, out: o.out }, procs)
              : o.mode === 'instructions'
              ? await instructionsMode(o, procs)
              : await benchMode(o, procs);
  } catch (e) {
    if (!procs.shuttingDown) say(`bench: ${(e as Error).stack ?? e}`);
    code = 1;
  } finally {
    await cleanup();
  }
  process.exit(code);
}

void main();

/**
 * The bench's CPU accounting (bench/lib/report.ts): per-request CPU of each process from the
 * samples, and what a throughput target leaves the proxy when all of them share the machine.
 */
import t from 'tap';
import { Sample, cpuBudget, cpuShare, cpuTables, relayTable, rowKey, rowsTable, summarize } from '../../bench/lib/report';

function sample(over: Partial<Sample>): Sample {
  return {
    round: 1,
    target: 'ringside',
    transport: 'tcp',
    pipeline: 16,
    dataSize: 3,
    test: 'SET',
    requests: 1_000_000,
    rps: 400_000,
    avgMs: 1,
    p50Ms: 1,
    p95Ms: 1,
    p99Ms: 1,
    maxMs: 1,
    cpuSec: 2,
    serverCpuSec: 1.5,
    clientCpuSec: 1,
    wallSec: 2.5,
    ...over,
  };
}

t.test('cpuShare turns CPU seconds into µs per request and counts busy cores over all processes', async (t) => {
  const s = sample({});
  const c = cpuShare([s], 'ringside', rowKey(s))!;
  t.equal(c.clientUs, 1);
  t.equal(c.serversUs, 1.5);
  t.equal(c.proxyUs, 2);
  t.equal(c.busyCores, (1 + 1.5 + 2) / 2.5);
});

t.test('for direct, the measured process is the server and there is no proxy', async (t) => {
  // the driver records the redis-server's CPU both as cpuSec and serverCpuSec for direct
  const s = sample({ target: 'direct', cpuSec: 1.2, serverCpuSec: 1.2, clientCpuSec: 0.8, wallSec: 1.25 });
  const c = cpuShare([s], 'direct', rowKey(s))!;
  t.equal(c.proxyUs, 0);
  t.equal(c.serversUs, 1.2);
  t.equal(c.busyCores, 2 / 1.25, 'the server is counted once');
});

t.test('cpuShare takes the median over rounds and ignores other targets and tests', async (t) => {
  const xs = [
    sample({ round: 1, cpuSec: 1 }),
    sample({ round: 2, cpuSec: 3 }),
    sample({ round: 3, cpuSec: 2 }),
    sample({ round: 1, target: 'twemproxy', cpuSec: 9 }),
    sample({ round: 1, test: 'GET', cpuSec: 9 }),
  ];
  t.equal(cpuShare(xs, 'ringside', rowKey(xs[0]!))!.proxyUs, 2);
  t.equal(cpuShare(xs, 'direct', rowKey(xs[0]!)), undefined, 'no samples: no share');
});

t.test('cpuBudget leaves the proxy what the load generator and the servers do not take', async (t) => {
  // 1.8 busy cores at 600 000 rps: 3 µs a request; redis-benchmark and servers take 2.5 of it
  const b = cpuBudget({ clientUs: 1, serversUs: 1.5, proxyUs: 2, busyCores: 1.8 }, 600_000);
  t.ok(Math.abs(b.perRequestUs - 3) < 1e-9);
  t.ok(Math.abs(b.proxyUs - 0.5) < 1e-9);
  t.ok(Math.abs(b.zeroCostRps - 720_000) < 1e-6, 'a proxy that costs nothing: 1.8 cores / 2.5 µs');
  const out = cpuBudget({ clientUs: 1, serversUs: 1.5, proxyUs: 2, busyCores: 1.8 }, 800_000);
  t.ok(out.proxyUs < 0, 'a rate above what the others alone allow leaves a negative budget');
});

t.test('cpuTables prints every target of the SET/GET rows and the -P16 budget against 2 × twemproxy', async (t) => {
  const xs = [
    sample({ target: 'direct', cpuSec: 1.4, serverCpuSec: 1.4, clientCpuSec: 0.9, wallSec: 1.5, rps: 700_000 }),
    sample({ target: 'twemproxy', cpuSec: 3, rps: 290_000, wallSec: 3.4 }),
    sample({ target: 'ringside', cpuSec: 2, rps: 400_000 }),
    sample({ target: 'relay', cpuSec: 1.5, rps: 450_000 }),
    sample({ target: 'ringside', pipeline: 1, rps: 60_000, wallSec: 16 }),
    sample({ target: 'twemproxy', pipeline: 1, rps: 60_000, wallSec: 16 }),
  ];
  const text = cpuTables(summarize(xs), xs);
  t.match(text, /SET 3B -P16 \| direct/);
  t.match(text, /SET 3B -P16 \| twemproxy/);
  t.match(text, /SET 3B -P1 +\| ringside/);
  t.match(text, /SET 3B -P16 \| relay +\| +450,000 \|/);
  // budget: 1.8 busy cores / 580 000 rps = 3.10 µs, minus 2.5 → 0.60 µs; ringside uses 2, the
  // relay 1.5; zero-cost 720 000 (2.48×)
  t.match(text, /SET 3B -P16 \| +580,000 \| +3\.10 \| +2\.50 \| +0\.60 \| +2\.00 \| +1\.50 \| +720,000 \(2\.48×\) \|/);
  t.notMatch(text, /-P1 +\| +120,000/, 'no budget line for -P1 (2 × its 60 000 rps)');
});

t.test("the rows carry ringside/twemproxy per round, paired by round, and the table shows their range", async (t) => {
  const xs = [
    sample({ round: 1, target: 'twemproxy', rps: 100 }),
    sample({ round: 1, target: 'ringside', rps: 90 }),
    sample({ round: 2, target: 'ringside', rps: 130 }),
    sample({ round: 2, target: 'twemproxy', rps: 100 }),
    sample({ round: 3, target: 'ringside', rps: 500 }), // twemproxy missing in round 3: not paired
    sample({ round: 1, target: 'twemproxy', test: 'GET', rps: 1 }), // another test
  ];
  const rows = summarize(xs);
  const set = rows.find((r) => r.test === 'SET')!;
  t.same(set.rsTwByRound, [0.9, 1.3]);
  t.same(rows.find((r) => r.test === 'GET')!.rsTwByRound, [], 'no ringside run of GET: nothing to pair');
  const text = rowsTable(rows);
  t.match(text, /rs\/tw per round/);
  t.match(text, /\|\s+0\.90–1\.30 \|/);
});

t.test('relayTable sets the blind relay beside direct, twemproxy and ringside, and leaves out rows it did not run', async (t) => {
  const xs = [
    sample({ target: 'direct', rps: 800_000 }),
    sample({ target: 'twemproxy', rps: 300_000, cpuSec: 3 }),
    sample({ target: 'ringside', rps: 480_000, cpuSec: 1.5, p50Ms: 1.1 }),
    sample({ target: 'relay', rps: 400_000, cpuSec: 1.2, p50Ms: 2.2 }),
    sample({ target: 'ringside', test: 'GET', rps: 500_000 }),
  ];
  const text = relayTable(summarize(xs));
  // relay/direct 0.50, relay/tw 1.33, rs/relay 1.20; p50 and CPU s per million requests, relay / ringside
  t.match(text, /\| tcp SET 3B -P16 \| +400,000 \| +0\.50× \| +1\.33× \| +1\.20× \| +2\.200 \/ 1\.100 \| +1\.20 \/ 1\.50 \|/);
  t.notMatch(text, /GET/, 'no relay run of GET: no row');
});

/**
 * `bash bench/run.sh --durability`: what durable mode costs (issue 23), as ratios.
 *
 * Two clusters of three masters, each master with one replica, one sidecar in front of each:
 *   ringside-async    durability "async" (the default): a write is acknowledged once its master ran it
 *   ringside-replica  durability "replica": once its replica holds it too (one WAIT per flushed batch)
 * and direct: redis-benchmark straight at one master (with its replica) of the async cluster.
 * SET and GET at -P 1 and -P 16; requests per second and p50 latency, medians of the rounds.
 * → bench/results/durability.{md,json}
 */
import { Procs, run } from './procs';
import { RINGSIDE_BIN, ROOT, RedisServer, startRedis } from './setup';
import { median } from './report';
import { Endpoint, SideBySideOptions, benchmarkOnce, setGetTests, sidecarEndpoint as sidecar, writeResults } from './endpoints';

export type DurabilityOptions = SideBySideOptions;

const say = (s: string): void => void process.stderr.write(s + '\n');

async function cluster(procs: Procs, label: string, durability: string): Promise<RedisServer[]> {
  const masters = await Promise.all([0, 1, 2].map((i) => startRedis(procs, `${label}-m${i}`)));
  const replicas = await Promise.all(masters.map((m, i) => startRedis(procs, `${label}-r${i}`, ['--replicaof', '127.0.0.1', String(m.port)])));
  const shards = masters.map((m, i) => `127.0.0.1:${m.port},127.0.0.1:${replicas[i]!.port}`);
  const r = await run(process.execPath, [RINGSIDE_BIN, 'create', ...shards.flatMap((s) => ['--shard', s]), '--durability', durability], { timeoutMs: 60_000, cwd: ROOT });
  if (r.code !== 0) throw new Error(`ringside create failed: ${r.stdout}${r.stderr}`);
  return masters;
}

export async function durabilityMode(o: DurabilityOptions, procs: Procs): Promise<number> {
  const asyncMasters = await cluster(procs, 'async', 'async');
  const replicaMasters = await cluster(procs, 'replica', 'replica');
  const endpoints: Endpoint[] = [
    { name: 'direct', args: ['-h', '127.0.0.1', '-p', String(asyncMasters[0]!.port)] },
    await sidecar(procs, 'ringside-async', asyncMasters.map((m) => `127.0.0.1:${m.port}`)),
    await sidecar(procs, 'ringside-replica', replicaMasters.map((m) => `127.0.0.1:${m.port}`)),
  ];
  const tests = setGetTests(o);
  const rps = new Map<string, number[]>();
  const p50 = new Map<string, number[]>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const t of tests) {
      // the two sidecars alternate their order from round to round
      const order = round % 2 ? endpoints : [endpoints[0]!, endpoints[2]!, endpoints[1]!];
      for (const e of order) {
        const got = await benchmarkOnce(procs, e, t, o.clients, o.keyspace);
        const key = `${e.name}|${t.test.toUpperCase()} -P ${t.p}`;
        rps.set(key, [...(rps.get(key) ?? []), got.rps]);
        if (got.p50 !== null) p50.set(key, [...(p50.get(key) ?? []), got.p50]);
      }
    }
    say(`bench --durability: round ${round}/${o.rounds} done`);
  }
  const med = (map: Map<string, number[]>, e: string, row: string): number => median(map.get(`${e}|${row}`) ?? [NaN]);
  const rows = tests.map((t) => `${t.test.toUpperCase()} -P ${t.p}`);
  const names = endpoints.map((e) => e.name);
  const json = {
    time: new Date().toISOString(),
    options: o,
    rps: Object.fromEntries(rows.map((row) => [row, Object.fromEntries(names.map((e) => [e, med(rps, e, row)]))])),
    p50ms: Object.fromEntries(rows.map((row) => [row, Object.fromEntries(names.map((e) => [e, med(p50, e, row)]))])),
    rounds: Object.fromEntries([...rps]),
  };
  const r2 = (x: number): string => x.toFixed(2);
  const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '–');
  const lines = [
    '# What durable mode costs (bench --durability)',
    '',
    `${o.rounds} rounds, the two sidecars alternating; redis-benchmark -c ${o.clients} -r ${o.keyspace}, -n ${o.requests} at -P 1 and ${o.requestsP16} at -P 16. ` +
      'Three masters with one replica each, on loopback, 2 cores for everything. Requests per second and p50 latency (ms), medians of the rounds.',
    '',
    '| test | direct rps | ringside-async rps | ringside-replica rps | replica / async | direct p50 | async p50 | replica p50 |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((row) => {
      const v = (e: string): number => med(rps, e, row);
      const l = (e: string): string => ms(med(p50, e, row));
      return `| ${row} | ${Math.round(v('direct'))} | ${Math.round(v('ringside-async'))} | ${Math.round(v('ringside-replica'))} | ${r2(v('ringside-replica') / v('ringside-async'))}× | ${l('direct')} | ${l('ringside-async')} | ${l('ringside-replica')} |`;
    }),
    '',
    'ringside-replica holds the reply of every write until a `WAIT 1` that follows its batch on the same node connection confirms the replica; reads are not held (the GET rows take the same path as async).',
    '',
  ];
  return writeResults(o.out, 'durability', json, lines);
}

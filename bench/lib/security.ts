/**
 * `bash bench/run.sh --security`: what TLS and ACL users cost (issue 22), as ratios.
 *
 * Three clusters of three masters each, one sidecar in front of each (apps reach the sidecar over
 * plain TCP on loopback, as usual):
 *   plain    no TLS, no password                              (ringside-plain vs direct-plain)
 *   tls      the sidecar talks TLS to the nodes (tls-port)    (ringside-tls vs direct-tls:
 *            redis-benchmark --tls straight at a node)
 *   acl      two users: the sidecar forwards as the data user  (ringside-acl vs ringside-plain;
 *            with its 24 key patterns                         direct-acl: redis-benchmark as the
 *                                                              data user at a node, vs direct-plain)
 * SET and GET at -P 1 and -P 16, targets alternating within each round; medians of the rounds.
 * → bench/results/security.{md,json}
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Procs, run, freePort } from './procs';
import { RINGSIDE_BIN, ROOT, RedisServer, startRedis } from './setup';
import { median } from './report';
import { Endpoint, SideBySideOptions, benchmarkOnce, setGetTests, sidecarEndpoint as sidecar, writeResults } from './endpoints';

export type SecurityOptions = SideBySideOptions;

const say = (s: string): void => void process.stderr.write(s + '\n');

interface Certs {
  ca: string;
  cert: string;
  key: string;
}

function makeCerts(dir: string): Certs {
  const f = (n: string): string => path.join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe', cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=bench CA');
  ssl('req', ...ec, '-keyout', f('node.key'), '-out', f('node.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', f('node.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('node.crt'), '-days', '2', '-extfile', f('ext.cnf'));
  return { ca: f('ca.crt'), cert: f('node.crt'), key: f('node.key') };
}

async function create(shards: string[], extra: string[]): Promise<void> {
  const r = await run(process.execPath, [RINGSIDE_BIN, 'create', ...shards.flatMap((s) => ['--shard', s]), ...extra], { timeoutMs: 60_000, cwd: ROOT });
  if (r.code !== 0) throw new Error(`ringside create failed: ${r.stdout}${r.stderr}`);
}

export async function securityMode(o: SecurityOptions, procs: Procs): Promise<number> {
  const certs = makeCerts(procs.work);
  const three = async (label: string, args: (i: number) => Promise<string[]> | string[]): Promise<RedisServer[]> =>
    Promise.all([0, 1, 2].map(async (i) => startRedis(procs, `${label}${i}`, await args(i))));

  // plain
  const plain = await three('plain', () => []);
  await create(plain.map((m) => `127.0.0.1:${m.port}`), []);
  // TLS: a TLS port beside the plain one (which only the readiness check uses)
  const tlsPorts = await Promise.all([0, 1, 2].map(() => freePort()));
  const tlsArgs = (i: number): string[] => ['--tls-port', String(tlsPorts[i]), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca];
  await three('tls', tlsArgs);
  const nodeTls = ['--node-tls', '--node-tls-ca-cert-file', certs.ca, '--node-tls-cert-file', certs.cert, '--node-tls-key-file', certs.key];
  await create(tlsPorts.map((p) => `127.0.0.1:${p}`), nodeTls);
  // ACL: the default user stays open for the readiness check; the sidecar runs as two users
  const authFile = path.join(procs.work, 'auth.json');
  fs.writeFileSync(authFile, JSON.stringify({ control: { user: 'rs-admin', password: 'bench-admin' }, data: { user: 'rs-app', password: 'bench-app' } }), { mode: 0o600 });
  const acl = await three('acl', () => ['--user', 'rs-admin', 'on', '>bench-admin', '~*', '&*', '+@all']);
  await create(acl.map((m) => `127.0.0.1:${m.port}`), ['--auth-file', authFile]);

  const endpoints: Endpoint[] = [
    { name: 'direct-plain', args: ['-h', '127.0.0.1', '-p', String(plain[0]!.port)] },
    await sidecar(procs, 'ringside-plain', plain.map((m) => `127.0.0.1:${m.port}`), []),
    { name: 'direct-tls', args: ['-h', '127.0.0.1', '-p', String(tlsPorts[0]), '--tls', '--cacert', certs.ca, '--cert', certs.cert, '--key', certs.key] },
    await sidecar(procs, 'ringside-tls', tlsPorts.map((p) => `127.0.0.1:${p}`), nodeTls),
    { name: 'direct-acl', args: ['-h', '127.0.0.1', '-p', String(acl[0]!.port), '--user', 'rs-app', '-a', 'bench-app'] },
    await sidecar(procs, 'ringside-acl', acl.map((m) => `127.0.0.1:${m.port}`), ['--auth-file', authFile]),
  ];
  const tests = setGetTests(o);
  const rps = new Map<string, number[]>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const t of tests) {
      for (const e of endpoints) {
        const got = await benchmarkOnce(procs, e, t, o.clients, o.keyspace);
        const key = `${e.name}|${t.test.toUpperCase()} -P ${t.p}`;
        rps.set(key, [...(rps.get(key) ?? []), got.rps]);
      }
    }
    say(`bench --security: round ${round}/${o.rounds} done`);
  }
  const med = (e: string, row: string): number => median(rps.get(`${e}|${row}`) ?? [NaN]);
  const rows = tests.map((t) => `${t.test.toUpperCase()} -P ${t.p}`);
  const json = {
    time: new Date().toISOString(),
    options: o,
    medians: Object.fromEntries(rows.map((row) => [row, Object.fromEntries(endpoints.map((e) => [e.name, med(e.name, row)]))])),
    rounds: Object.fromEntries([...rps]),
  };
  const r2 = (x: number): string => x.toFixed(2);
  const lines = [
    '# What TLS and ACL users cost (bench --security)',
    '',
    `${o.rounds} rounds, targets alternating; redis-benchmark -c ${o.clients} -r ${o.keyspace}, -n ${o.requests} at -P 1 and ${o.requestsP16} at -P 16. ` +
      'Requests per second, medians of the rounds. Apps reach each sidecar over plain TCP on loopback.',
    '',
    '| test | direct-plain | ringside-plain | direct-tls | ringside-tls | direct-acl | ringside-acl | rs/direct plain | rs/direct TLS | rs acl/plain | direct acl/plain |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((row) => {
      const v = (e: string): number => med(e, row);
      return `| ${row} | ${['direct-plain', 'ringside-plain', 'direct-tls', 'ringside-tls', 'direct-acl', 'ringside-acl'].map((e) => Math.round(v(e))).join(' | ')} | ${r2(v('ringside-plain') / v('direct-plain'))}× | ${r2(v('ringside-tls') / v('direct-tls'))}× | ${r2(v('ringside-acl') / v('ringside-plain'))}× | ${r2(v('direct-acl') / v('direct-plain'))}× |`;
    }),
    '',
    'direct-tls: redis-benchmark --tls straight at one TLS node; ringside-tls: the sidecar with TLS to the nodes. ' +
      'direct-acl: redis-benchmark as the data user (24 key patterns) at one node; ringside-acl: the sidecar forwarding as that user.',
    '',
  ];
  return writeResults(o.out, 'security', json, lines);
}

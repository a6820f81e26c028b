/**
 * redis-benchmark's full default test list against a sidecar in front of a 3-master cluster:
 * every test must report requests per second and none may report an error.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { startCluster } from '../helpers/cluster';
import { startSidecar } from './helpers';
import { DEFAULT_TESTS } from '../../bench/lib/default-tests';


function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

let port = 0;
t.before(async () => {
  // the embedded default: 3 masters with 1 replica each
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  port = (await startSidecar(t, cluster)).options.port;
});

for (const extra of [[], ['-P', '16'], ['-c', '200', '-r', '100000']]) {
  t.test(`redis-benchmark -q -n 20000${extra.length ? ' ' + extra.join(' ') : ''} with its full default test list completes every test without an error`, async (t) => {
  const n = 20000;
  const { code, out, err } = await run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-q', '-n', String(n), ...extra]);
  // -q prints progress with carriage returns; the final line of each test ends in a newline
  const lines = out
    .split('\n')
    .map((l) => l.split('\r').pop()!.trim())
    .filter(Boolean);
  t.equal(code, 0, `redis-benchmark exits 0 ${err.slice(0, 500)}`);
  t.notMatch(out + err, /error/i, 'no error anywhere in the output');
  const results = new Map<string, number>();
  for (const l of lines) {
    const m = /^(.+?): ([\d.]+) requests per second/.exec(l);
    if (m) results.set(m[1]!, Number(m[2]));
    else t.fail(`unexpected output line: ${l}`);
  }
  for (const name of DEFAULT_TESTS) {
    t.ok(results.has(name), `${name} ran`);
    t.ok((results.get(name) ?? 0) > 0, `${name}: ${results.get(name)} requests per second`);
  }
  t.equal(results.size, DEFAULT_TESTS.length, `exactly the default tests: ${[...results.keys()].join(', ')}`);
  t.comment(lines.join('\n'));
  });
}

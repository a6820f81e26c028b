/**
 * `ringside demo`: the embedded default. Launches a local cluster of real redis-server processes
 * (3 masters with 1 replica each), writes its configuration, and runs the sidecar in front of it.
 * Ctrl-C or SIGTERM stops everything it started.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { NodeCredentials } from '../cluster/credentials';
import path from 'node:path';
import { OptionSpec, helpText, intOption, parseOptions } from './args';
import { SERVE_OPTIONS, sidecarConfig, stopOnSignals } from './serve';
import { Sidecar } from '../proxy/sidecar';
import { LocalCluster } from '../embedded/local-cluster';
import { setLogLevel } from '../observe/log';

export const summary = 'launch a local 3-master cluster (real redis-server processes) and the sidecar in front of it';

const {
  seeds: _seeds,
  'auth-file': _authFile,
  'node-tls': _t1,
  'node-tls-ca-cert-file': _t2,
  'node-tls-cert-file': _t3,
  'node-tls-key-file': _t4,
  'node-tls-server-name': _t5,
  'node-tls-insecure': _t6,
  ...serveRest
} = SERVE_OPTIONS;
const DEMO_OPTIONS: Record<string, OptionSpec> = {
  ...serveRest,
  masters: { type: 'string', default: '3', arg: 'n', help: 'masters in the local cluster' },
  replicas: { type: 'string', default: '1', arg: 'n', help: 'replicas per master' },
  'base-port': { type: 'string', arg: 'port', help: 'first port of the data nodes (default: free ports)' },
  auth: { type: 'boolean', help: 'nodes that require credentials: a control user and a data user with random passwords (kept in a file readable by you only)' },
};

/** Random credentials for the two users, written to a file only this user can read. */
function demoCredentials(): { creds: NodeCredentials; file: string } {
  const pw = (): string => randomBytes(24).toString('base64url');
  const creds = { control: { user: 'ringside', password: pw() }, data: { user: 'ringside-app', password: pw() } };
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-demo-auth-'));
  const file = path.join(dir, 'auth.json');
  writeFileSync(file, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  return { creds, file };
}

/** Installs redis-server when missing (as root, from the distribution's packages), or says how. */
export function ensureRedis(): void {
  const script = path.join(__dirname, '..', '..', '..', 'scripts', 'ensure-redis.sh');
  execFileSync('bash', [script], { stdio: 'inherit' });
}

export async function run(argv: string[]): Promise<number> {
  const { options, help } = parseOptions(argv, DEMO_OPTIONS);
  if (help) {
    process.stdout.write(helpText('ringside demo [--port 6379] [options]', summary, DEMO_OPTIONS) + '\n');
    return 0;
  }
  setLogLevel(String(options['log-level']));
  ensureRedis();
  const masters = intOption(options, 'masters', 1, 16)!;
  const replicas = intOption(options, 'replicas', 0, 4)!;
  const basePort = intOption(options, 'base-port', 1, 65000);
  process.stdout.write(`starting ${masters} masters with ${replicas} replica(s) each...\n`);
  const auth = options.auth === true ? demoCredentials() : null;
  const cluster = await LocalCluster.start({ masters, replicasPerMaster: replicas, basePort, ...(auth ? { credentials: auth.creds } : {}) });
  let sidecar: Sidecar | null = null;
  const stopAll = async () => {
    await sidecar?.stop(2000);
    await cluster.stop();
    if (auth) rmSync(path.dirname(auth.file), { recursive: true, force: true });
  };
  try {
    sidecar = new Sidecar(sidecarConfig({ ...options, seeds: cluster.seeds.join(',') }));
    await sidecar.start();
    await sidecar.ready();
  } catch (e) {
    await stopAll();
    throw e;
  }
  const port = sidecar.options.port;
  process.stdout.write(
    [
      `cluster: ${cluster.shards.map((s, i) => `${String.fromCharCode(97 + i)}=${s.master.address}${s.replicas.length ? `(+${s.replicas.map((r) => r.address).join(',')})` : ''}`).join('  ')}`,
      `ringside ${sidecar.options.id} listening on ${sidecar.address}${sidecar.options.unixsocket ? ` and ${sidecar.options.unixsocket}` : ''}`,
      sidecar.metricsUrl ? `metrics: ${sidecar.metricsUrl}/metrics   health: ${sidecar.metricsUrl}/readyz` : '',
      `try:    redis-cli -p ${port} set foo bar && redis-cli -p ${port} get foo`,
      `watch:  redis-cli -p ${port} info ringside   |   npx ringside status --seeds ${cluster.seeds[0]}${auth ? ` --auth-file ${auth.file}` : ''}`,
      auth ? `nodes require credentials: control user "ringside", data user "ringside-app" (passwords in ${auth.file})` : '',
      'Ctrl-C stops the sidecar and the cluster.',
      '',
    ]
      .filter(Boolean)
      .join('\n') + '\n',
  );
  stopOnSignals(stopAll);
  // the demo has no file to reload: a hang-up (its terminal closed) stops everything, as Ctrl-C does
  process.on('SIGHUP', () => process.kill(process.pid, 'SIGTERM'));
  await new Promise(() => undefined);
  return 0;
}

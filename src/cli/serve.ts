/**
 * `ringside serve`: the sidecar.
 *
 * Signals: SIGTERM/SIGINT stop gracefully (stop accepting, drain in-flight commands for up to
 * --drain-ms, exit 0). SIGHUP re-reads the config file (--config / RINGSIDE_CONFIG) with the same
 * precedence as at start-up (flags, then environment, then the file, then defaults) and applies
 * what can change live (Sidecar.reconfigure); settings that need a restart are logged as ignored.
 * A config file that cannot be read or holds a bad value is logged as an error and the running
 * settings stay. No connection is dropped by a reload.
 */
import { OptionSpec, UsageError, choiceOption, helpText, intOption, listOption, parseOptions, Options } from './args';
import { ListenerTls, Sidecar, SidecarConfig } from '../proxy/sidecar';
import { isAddress } from '../cluster/config';
import { setLogLevel, logger } from '../observe/log';
import { NODE_FLAGS, missingNodeFlags } from './node-flags';
import { DEFAULT_SLOWLOG_MAX_LEN, DEFAULT_SLOWLOG_THRESHOLD_USEC } from '../observe/slowlog';
import { AUTH_OPTIONS, readNodeCredentials, useNodeTls } from './auth';
import { nodeCredentials } from '../cluster/credentials';
import { nodeTls } from '../cluster/node-tls';
import { ClientAuthError, ClientUsers, loadClientAuth } from '../proxy/client-auth';

export const summary = 'run the sidecar: a Redis endpoint on localhost in front of the cluster';

export const SERVE_OPTIONS: Record<string, OptionSpec> = {
  port: { type: 'string', short: 'p', default: '6379', arg: 'port', help: 'TCP port to listen on' },
  bind: { type: 'string', default: '127.0.0.1', arg: 'addr', help: 'address to listen on (keep it loopback: apps on this host only)' },
  'protected-mode': { type: 'string', default: 'yes', arg: 'yes|no', help: 'refuse to start on a non-loopback --bind, as the sidecar has no client authentication (Redis\'s protected mode)' },
  unixsocket: { type: 'string', arg: 'path', help: 'also listen on this Unix socket' },
  unixsocketperm: { type: 'string', default: '700', arg: 'octal', help: 'permissions of the Unix socket, as in redis.conf' },
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the cluster configuration from (one reachable is enough)' },
  'read-from': { type: 'string', default: 'master', arg: 'master|replica|any', help: 'where read-only commands go' },
  'check-ms': { type: 'string', arg: 'ms', help: 'override the configuration\'s version-check interval' },
  'lease-ms': { type: 'string', arg: 'ms', help: 'override the configuration\'s lease' },
  'metrics-port': { type: 'string', default: '9379', arg: 'port', help: 'HTTP port for /metrics, /healthz, /readyz ("off": none)' },
  'metrics-bind': { type: 'string', default: '127.0.0.1', arg: 'addr', help: 'address of the HTTP port' },
  'node-timeout-ms': { type: 'string', default: '5000', arg: 'ms', help: 'a node that does not answer within this fails its commands' },
  'max-clients': { type: 'string', default: '10000', arg: 'n', help: 'most local client connections' },
  'proto-max-bulk-len': { type: 'string', default: String(512 * 1024 * 1024), arg: 'bytes', help: 'largest argument accepted' },
  'client-output-limit': { type: 'string', default: String(64 * 1024 * 1024), arg: 'bytes', help: 'pause reading a client whose unread replies exceed this' },
  'node-connections': { type: 'string', default: '1', arg: 'n', help: 'shared pipelined connections per node' },
  failover: { type: 'boolean', default: true, help: 'take part in failure reports, votes and elections (--no-failover: not)' },
  id: { type: 'string', arg: 'id', help: 'sidecar id in the cluster (default: random)' },
  'log-level': { type: 'string', default: 'info', arg: 'level', help: 'error, warn, info or debug' },
  config: { type: 'string', arg: 'file', help: 'JSON file with any of these settings (camelCase keys)' },
  'tls-port': { type: 'string', arg: 'port', help: 'also listen with TLS on this port, for apps that require TLS (needs --tls-cert-file and --tls-key-file)' },
  'tls-cert-file': { type: 'string', arg: 'file', help: 'the TLS listener\'s certificate (PEM)' },
  'tls-key-file': { type: 'string', arg: 'file', help: 'its private key (PEM)' },
  'tls-ca-cert-file': { type: 'string', arg: 'file', help: 'CA certificates (PEM) for client certificates (--tls-auth-clients yes)' },
  'tls-auth-clients': { type: 'string', default: 'no', arg: 'yes|no', help: 'require a client certificate signed by --tls-ca-cert-file' },
  'client-auth-file': { type: 'string', arg: 'file', help: 'JSON file with the passwords clients must give (AUTH), {"requirepass": "...", "users": {"name": "..."}}; or RINGSIDE_REQUIREPASS (docs/admin.md)' },
  ...AUTH_OPTIONS,
};

/** `serve` only (not `demo`): lifecycle and slow-log settings. */
export const SERVE_ONLY_OPTIONS: Record<string, OptionSpec> = {
  'drain-ms': { type: 'string', default: '5000', arg: 'ms', help: 'on SIGTERM, how long in-flight commands may take to finish before connections are closed' },
  'slowlog-log-slower-than': { type: 'string', default: String(DEFAULT_SLOWLOG_THRESHOLD_USEC), arg: 'usec', help: 'SLOWLOG keeps commands slower than this (negative: off)' },
  'slowlog-max-len': { type: 'string', default: String(DEFAULT_SLOWLOG_MAX_LEN), arg: 'n', help: 'entries SLOWLOG keeps' },
};

/** The settings of `serve` that live outside SidecarConfig (all can change on SIGHUP). */
export interface ServeSettings {
  logLevel: string;
  slowlogLogSlowerThan: number;
  slowlogMaxLen: number;
  drainMs: number;
}

export function serveSettings(o: Options): ServeSettings {
  const logLevel = String(o['log-level']);
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) throw new UsageError(`--log-level must be one of error, warn, info, debug, not ${JSON.stringify(logLevel)}`);
  return {
    logLevel,
    slowlogLogSlowerThan: intOption(o, 'slowlog-log-slower-than', -(2 ** 31), 2 ** 53 - 1) ?? DEFAULT_SLOWLOG_THRESHOLD_USEC,
    slowlogMaxLen: intOption(o, 'slowlog-max-len', 0, 1_000_000) ?? DEFAULT_SLOWLOG_MAX_LEN,
    drainMs: intOption(o, 'drain-ms', 0, 3_600_000) ?? 5_000,
  };
}

export function sidecarConfig(o: Options): SidecarConfig {
  const seeds = listOption(o, 'seeds');
  if (seeds.length === 0) throw new UsageError('--seeds is required: the address of at least one data node (host:port)');
  for (const s of seeds) if (!isAddress(s)) throw new UsageError(`--seeds: "${s}" is not a host:port address`);
  const perm = String(o.unixsocketperm ?? '700');
  if (!/^[0-7]{3,4}$/.test(perm)) throw new UsageError(`--unixsocketperm must be octal like 700 or 770, not ${JSON.stringify(perm)}`);
  const bind = String(o.bind);
  const clientUsers = readClientUsers(o);
  if (choiceOption(o, 'protected-mode', ['yes', 'no'] as const) === 'yes' && !isLoopback(bind) && !clientUsers)
    throw new UsageError(
      `--bind ${bind} would let other hosts send commands to the cluster, and no password is asked of clients: ` +
        'refused (protected mode, as in Redis). Keep the sidecar on 127.0.0.1 beside the app, ask for a password ' +
        '(--client-auth-file or RINGSIDE_REQUIREPASS), or put it behind a firewall and start it with --protected-mode no.',
    );
  const metricsPort = o['metrics-port'] === 'off' ? -1 : intOption(o, 'metrics-port', 0, 65535);
  const maxBulk = intOption(o, 'proto-max-bulk-len', 1024, 2 ** 31)!;
  return {
    seeds,
    port: intOption(o, 'port', 0, 65535)!,
    bind,
    unixsocket: o.unixsocket ? String(o.unixsocket) : undefined,
    unixsocketperm: parseInt(perm, 8),
    readFrom: choiceOption(o, 'read-from', ['master', 'replica', 'any'] as const),
    checkMs: intOption(o, 'check-ms', 10, 3_600_000),
    leaseMs: intOption(o, 'lease-ms', 20, 3_600_000),
    metricsPort: metricsPort === -1 ? undefined : metricsPort,
    metricsBind: String(o['metrics-bind']),
    nodeTimeoutMs: intOption(o, 'node-timeout-ms', 10, 3_600_000),
    maxClients: intOption(o, 'max-clients', 1, 1_000_000),
    limits: { maxBulkLen: maxBulk, maxArgs: 1024 * 1024, maxInline: 64 * 1024 },
    outputLimit: intOption(o, 'client-output-limit', 1024, 2 ** 40),
    poolPer: intOption(o, 'node-connections', 1, 64),
    failover: o.failover !== false,
    ...(o.id ? { id: String(o.id) } : {}),
    clientUsers,
    ...listenerTls(o),
  };
}

/** The TLS listener the options ask for, if any. */
function listenerTls(o: Options): { tls?: ListenerTls } {
  const port = intOption(o, 'tls-port', 0, 65535);
  const str = (k: string): string | undefined => (typeof o[k] === 'string' && o[k] ? (o[k] as string) : undefined);
  const authClients = choiceOption(o, 'tls-auth-clients', ['yes', 'no'] as const) === 'yes';
  if (port === undefined) {
    const stray = ['tls-cert-file', 'tls-key-file', 'tls-ca-cert-file'].find((k) => str(k));
    if (stray) throw new UsageError(`--${stray} is for the TLS listener: give --tls-port too`);
    return {};
  }
  const certFile = str('tls-cert-file');
  const keyFile = str('tls-key-file');
  if (!certFile || !keyFile) throw new UsageError('--tls-port needs --tls-cert-file and --tls-key-file');
  const caFile = str('tls-ca-cert-file');
  if (authClients && !caFile) throw new UsageError('--tls-auth-clients yes needs --tls-ca-cert-file (the CA of the client certificates)');
  return { tls: { port, certFile, keyFile, ...(caFile ? { caFile } : {}), authClients } };
}

/** The passwords clients must give, from --client-auth-file and RINGSIDE_REQUIREPASS (null: none). */
export function readClientUsers(o: Options, env: NodeJS.ProcessEnv = process.env): ClientUsers | null {
  const file = typeof o['client-auth-file'] === 'string' && o['client-auth-file'] ? o['client-auth-file'] : undefined;
  try {
    return loadClientAuth(file, env, (m) => logger.warn('client-auth-file-readable', { message: m }));
  } catch (e) {
    if (e instanceof ClientAuthError) throw new UsageError(e.message);
    throw e;
  }
}

/** Loopback addresses (IPv4 127/8, IPv6 ::1, `localhost`): reachable from this host only. */
export function isLoopback(addr: string): boolean {
  const a = addr.trim().toLowerCase();
  return a === 'localhost' || a === '::1' || a === '0:0:0:0:0:0:0:1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || /^::ffff:127\./.test(a);
}

/** Stops the sidecar on SIGTERM/SIGINT (graceful drain, exit 0). */
export function stopOnSignals(stop: () => Promise<void>): { stopping: () => boolean } {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('signal', { signal: sig, action: 'draining and stopping' });
    stop().then(
      () => process.exit(0),
      (e) => {
        logger.error('stop-failed', { error: (e as Error).message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  return { stopping: () => stopping };
}

const SPEC: Record<string, OptionSpec> = {
  ...SERVE_OPTIONS,
  ...SERVE_ONLY_OPTIONS,
  'no-failover': { type: 'boolean', help: 'do not take part in fail-over' },
};

function readSettings(argv: string[]): { options: Options; help: boolean; cfg: SidecarConfig; serve: ServeSettings } {
  const { options, help } = parseOptions(argv, SPEC);
  if (options['no-failover']) options.failover = false;
  if (help) return { options, help, cfg: { seeds: [] }, serve: { logLevel: 'info', slowlogLogSlowerThan: 0, slowlogMaxLen: 0, drainMs: 0 } };
  return { options, help, serve: serveSettings(options), cfg: sidecarConfig(options) };
}

/**
 * SIGHUP: re-reads the settings (the config file, with flags and environment still first) and
 * applies them to the running sidecar. Returns what happened, for the log and for tests.
 */
export function reloadSettings(argv: string[], sidecar: Sidecar, current: ServeSettings, file: string | undefined): ServeSettings {
  if (!file) {
    logger.warn('config-file-reload-skipped', { reason: 'no config file was given (--config or RINGSIDE_CONFIG); nothing to reload' });
    return current;
  }
  let next: ReturnType<typeof readSettings>;
  try {
    next = readSettings(argv);
    const { drainMs, ...live } = next.serve;
    const result = sidecar.reconfigure({ ...next.cfg, ...live });
    const changed = Object.keys(result.applied);
    if (drainMs !== current.drainMs) {
      logger.info('reconfigured', { changes: { drainMs: { from: current.drainMs, to: drainMs } } });
      changed.push('drainMs');
    }
    logger.info('config-file-reloaded', { file, changed, ignored: Object.keys(result.ignored) });
    return next.serve;
  } catch (e) {
    logger.error('config-file-reload-failed', { file, error: (e as Error).message, action: 'keeping the running settings' });
    return current;
  }
}

/**
 * SIGHUP: reads the node credentials again (the file, then the environment). New connections use
 * them; connections already authenticated stay up. An unusable file keeps the running ones.
 */
export function reloadCredentials(argv: string[]): void {
  try {
    const { options } = parseOptions(argv, SPEC);
    useNodeTls(options);
    if (nodeTls.enabled) logger.info('node-tls-reloaded', { tls: nodeTls.describe(), effect: 'new node connections use these files; open ones stay' });
    const creds = readNodeCredentials(options, process.env, (m) => logger.warn('credentials-file-readable', { message: m }));
    if (nodeCredentials.set(creds)) logger.info('node-credentials-reloaded', { users: nodeCredentials.describe(), effect: 'new node connections use them; open ones stay' });
  } catch (e) {
    logger.error('node-credentials-reload-failed', { error: (e as Error).message, action: 'keeping the running credentials' });
  }
}

/** SIGHUP: the passwords asked of clients, read again; clients already authenticated stay so. */
export function reloadClientAuth(argv: string[], sidecar: Sidecar): void {
  try {
    const { options } = parseOptions(argv, SPEC);
    const users = readClientUsers(options);
    sidecar.clientAuth.set(users);
    logger.info('client-auth-reloaded', { users: sidecar.clientAuth.users(), effect: 'new AUTH commands check these; authenticated clients stay' });
  } catch (e) {
    logger.error('client-auth-reload-failed', { error: (e as Error).message, action: 'keeping the running passwords' });
  }
}

export async function run(argv: string[]): Promise<number> {
  const { options, help, cfg, serve } = readSettings(argv);
  if (help) {
    process.stdout.write(helpText('ringside serve --seeds host:port[,host:port...] [options]', summary, { ...SERVE_OPTIONS, ...SERVE_ONLY_OPTIONS }) + '\n');
    return 0;
  }
  setLogLevel(serve.logLevel);
  useNodeTls(options);
  if (nodeTls.enabled) logger.info('node-tls', { tls: nodeTls.describe() });
  nodeCredentials.set(readNodeCredentials(options, process.env, (m) => logger.warn('credentials-file-readable', { message: m })));
  if (nodeCredentials.get('control')) logger.info('node-credentials', { users: nodeCredentials.describe() });
  const file = typeof options.config === 'string' && options.config ? options.config : undefined;
  const sidecar = new Sidecar(cfg);
  sidecar.reconfigure({ logLevel: serve.logLevel, slowlogLogSlowerThan: serve.slowlogLogSlowerThan, slowlogMaxLen: serve.slowlogMaxLen }, { quiet: true });
  let settings = serve;
  // Installed before start(): without a SIGHUP handler Node exits on SIGHUP (systemd ExecReload).
  let started = false;
  let signals: { stopping: () => boolean } | null = null;
  process.on('SIGHUP', () => {
    if (!started || signals?.stopping()) {
      logger.warn('signal', { signal: 'SIGHUP', action: started ? 'ignored: stopping' : 'ignored: still starting' });
      return;
    }
    logger.info('signal', { signal: 'SIGHUP', action: file ? `reloading ${file}` : 'reload' });
    reloadCredentials(argv);
    reloadClientAuth(argv, sidecar);
    if (cfg.tls) {
      try {
        const next = sidecarConfig(parseOptions(argv, SPEC).options).tls ?? cfg.tls;
        sidecar.reloadTls(next);
        logger.info('tls-listener-reloaded', { cert: next.certFile, key: next.keyFile, ca: next.caFile, effect: 'new TLS connections use these files; open ones stay' });
      } catch (e) {
        logger.error('tls-listener-reload-failed', { error: (e as Error).message, action: 'keeping the running certificate' });
      }
    }
    settings = reloadSettings(argv, sidecar, settings, file);
  });
  await sidecar.start();
  started = true;
  const missing = missingNodeFlags();
  if (missing.length)
    logger.warn('node-flags-missing', {
      missing,
      effect: 'without --initial-old-space-size, full garbage collections every few dozen ms under large values or pipelines; without --max-semi-space-size, more memory per connection (src/cli/node-flags.ts)',
      fix: `run node ${NODE_FLAGS.join(' ')} bin/ringside.js, or bin/ringside.js itself (its #! line has them)`,
    });
  process.stdout.write(
    `ringside ${sidecar.options.id} listening on ${sidecar.address}${sidecar.tlsAddress ? ` and ${sidecar.tlsAddress} (TLS)` : ''}${cfg.unixsocket ? ` and ${cfg.unixsocket}` : ''}` +
      (sidecar.metricsUrl ? `; metrics ${sidecar.metricsUrl}/metrics, health ${sidecar.metricsUrl}/readyz` : '') +
      '\n',
  );
  signals = stopOnSignals(() => sidecar.stop(settings.drainMs));
  await new Promise(() => undefined);
  return 0;
}

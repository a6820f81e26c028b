/**
 * The sidecar: local listeners (TCP on loopback, optionally a Unix socket), the client sessions,
 * the shared node pool, the cluster view, and the HTTP port for
 * metrics and health. `stop()` is graceful: stop accepting, let every session finish what it has
 * in flight (up to a deadline), then close.
 */
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { ClusterView } from './cluster-view';
import { Pool } from './pool';
import { ClientSession } from './session';
import type { SidecarContext, SidecarOptions } from './context';
import { migrationPath } from './migration';
import { ScriptCache } from './script-cache';
import { Stats } from '../observe/stats';
import { SlowLog } from '../observe/slowlog';
import { NodeInfoFields, renderInfo } from '../observe/info';
import { startHttp, HttpServer } from '../observe/http';
import { createMetrics } from '../observe/metrics';
import { DEFAULT_LIMITS } from '../resp/request-parser';
import { majority } from '../cluster/config';
import { logger, setLogLevel } from '../observe/log';
import type { FailoverAgent } from '../failover/agent';
import { createControlPlane } from '../failover/control-plane';
import { adoptClient } from './io';
import type { ClusterViewOptions } from './cluster-view';
import type { PoolOptions } from './pool';
import { ListenError } from './errors';
import { ClientAuth, ClientUsers } from './client-auth';
import { nodeTls } from '../cluster/node-tls';
export { ListenError } from './errors';

const VERSION: string = require('../../../package.json').version;

export interface SidecarConfig extends Partial<SidecarOptions> {
  seeds: string[];
  checkMs?: number;
  leaseMs?: number;
  /** HTTP port for /metrics, /healthz, /readyz; undefined = none, 0 = any free port */
  metricsPort?: number;
  metricsBind?: string;
  /** whether this sidecar takes part in fail-over (reports, votes, elections) */
  failover?: boolean;
  /**
   * An optional TLS listener for apps that require TLS even on localhost (on `bind`, beside the
   * plain port): certificate and key, and with `caFile` + `authClients` client certificates
   * required. `reloadTls()` reads the files again (SIGHUP).
   */
  tls?: ListenerTls;
  /** passwords the sidecar asks of its clients (src/proxy/client-auth.ts); none: no AUTH needed */
  clientUsers?: ClientUsers | null;
  /** hook for the fail-over agent (src/failover/agent.ts) */
  onNodeDown?: (address: string, reason: string) => void;
}

/**
 * What `Sidecar.reconfigure` takes: any SidecarConfig key plus the settings that live outside
 * SidecarOptions. A key that is absent is left alone; `checkMs`/`leaseMs` present with the value
 * undefined (or null) drop the override and go back to the configuration's timing.
 */
export type ReconfigureSettings = Partial<Omit<SidecarConfig, 'checkMs' | 'leaseMs'>> & {
  checkMs?: number | null;
  leaseMs?: number | null;
  /** error, warn, info or debug */
  logLevel?: string;
  /** slowlog-log-slower-than, microseconds (negative: off) */
  slowlogLogSlowerThan?: number;
  /** slowlog-max-len */
  slowlogMaxLen?: number;
};

/** What a reconfigure did: settings changed (name → [from, to]) and settings that need a restart. */
export interface ReconfigureResult {
  applied: Record<string, [unknown, unknown]>;
  ignored: Record<string, [unknown, unknown]>;
}

/** Settings read once at start-up (listeners, identity, node pool shape): a restart applies them. */
const RESTART_ONLY = [
  'port', 'bind', 'unixsocket', 'unixsocketperm', 'seeds', 'id', 'metricsPort', 'metricsBind', 'failover',
  'poolPer', 'limits', 'maxInflight', 'outputHardLimit', 'pubsubOutputHardLimit', 'connectTimeoutMs', 'retryDelayMs',
] as const;

const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function defaultOptions(over: Partial<SidecarOptions> = {}): SidecarOptions {
  return {
    id: over.id ?? `rs-${randomBytes(4).toString('hex')}`,
    port: 6379,
    bind: '127.0.0.1',
    readFrom: 'master',
    maxInflight: 16_384,
    outputLimit: 64 * 1024 * 1024,
    outputHardLimit: 0,
    pubsubOutputHardLimit: 32 * 1024 * 1024,
    limits: { ...DEFAULT_LIMITS },
    nodeTimeoutMs: 5_000,
    connectTimeoutMs: 1_000,
    retryDelayMs: 250,
    poolPer: 1,
    maxClients: 10_000,
    ...over,
  };
}

export interface ListenerTls {
  port: number;
  certFile: string;
  keyFile: string;
  caFile?: string;
  authClients?: boolean;
}

/** The secure context options of the TLS listener (files read now; a ListenError names the one that fails). */
function listenerTlsOptions(t: ListenerTls): tls.SecureContextOptions {
  const read = (f: string, what: string): Buffer => {
    try {
      return fs.readFileSync(f);
    } catch (e) {
      throw new ListenError(`cannot read the TLS ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const opts: tls.SecureContextOptions = { cert: read(t.certFile, 'certificate file'), key: read(t.keyFile, 'key file'), ...(t.caFile ? { ca: read(t.caFile, 'CA certificate file') } : {}) };
  try {
    tls.createSecureContext(opts);
  } catch (e) {
    throw new ListenError(`the TLS listener's files (${t.certFile}, ${t.keyFile}${t.caFile ? `, ${t.caFile}` : ''}) are not usable: ${(e as Error).message}`);
  }
  return opts;
}

export class Sidecar implements SidecarContext {
  readonly options: SidecarOptions;
  readonly stats = new Stats();
  readonly slowlog = new SlowLog();
  readonly view: ClusterView;
  readonly pool: Pool;
  readonly migration = migrationPath;
  readonly sessions = new Set<ClientSession>();
  readonly scripts = new ScriptCache();
  /** passwords asked of clients (none by default); set from `clientUsers`, and live by the CLI on SIGHUP */
  readonly clientAuth = new ClientAuth();
  pausedUntil = 0;
  pauseMode: 'all' | 'write' = 'all';
  readonly #cfg: SidecarConfig;
  /** the live objects handed to the view and the pool, so reconfigure() can change their timing */
  readonly #viewOpts: ClusterViewOptions;
  readonly #poolOpts: PoolOptions;
  /** the level last set through reconfigure(); the log module's own default before that */
  #logLevel: string = ['error', 'warn', 'info', 'debug'].includes(process.env.RINGSIDE_LOG_LEVEL ?? '') ? process.env.RINGSIDE_LOG_LEVEL! : 'info';
  #servers: net.Server[] = [];
  #http: HttpServer | null = null;
  #nextId = 1;
  #stopping = false;
  #watchdog: NodeJS.Timeout | null = null;
  #leaseWasValid = false;
  /** the fail-over agent (reports, votes, elections), unless disabled */
  readonly agent: FailoverAgent | null = null;
  /** the address clients reach, as "host:port" (the real port when 0 was asked) */
  address = '';
  metricsUrl = '';

  constructor(cfg: SidecarConfig) {
    this.#cfg = cfg;
    this.options = defaultOptions(cfg);
    this.clientAuth.set(cfg.clientUsers ?? null);
    this.#viewOpts = {
      seeds: cfg.seeds,
      id: this.options.id,
      addr: `${this.options.bind}:${this.options.port}`,
      stats: this.stats,
      checkMs: cfg.checkMs,
      leaseMs: cfg.leaseMs,
    };
    const plane = createControlPlane({ view: this.#viewOpts, failover: cfg.failover !== false });
    this.view = plane.view;
    this.agent = plane.agent;
    this.#poolOpts = {
      per: this.options.poolPer,
      timeoutMs: this.options.nodeTimeoutMs,
      connectTimeoutMs: this.options.connectTimeoutMs,
      retryDelayMs: this.options.retryDelayMs,
      stats: this.stats,
      label: (addr) => this.#label(addr),
      onNodeDown: (addr, err) => {
        logger.warn('node-down', { node: addr, error: err.message });
        const r = this.view.routing;
        if (r && r.masters.includes(addr)) void this.view.requestReload(`lost connection to master ${addr}`);
        if (err.kind === 'refused' || err.kind === 'timeout') this.agent?.nodeError(addr, err.message);
        cfg.onNodeDown?.(addr, err.message);
      },
    };
    this.pool = new Pool(this.#poolOpts);
    this.view.onChange((r, previous) => {
      this.pool.retain(new Set(Object.values(r.config.nodes).flatMap((n) => [n.master, ...n.replicas])));
      if (r.config.durability === 'replica' || previous?.config.durability === 'replica') {
        // every replica the configuration lists holds an acknowledged write: whichever is promoted has it
        this.pool.setDurability(
          r.config.durability === 'replica' ? new Map(Object.values(r.config.nodes).map((n) => [n.master, Math.max(1, n.replicas.length)])) : null,
        );
        if (r.config.durability !== (previous?.config.durability ?? 'async')) logger.info('durability', { mode: r.config.durability });
      }
      // a switch of master began: nothing more to or from the old master
      const sw = r.config.switching;
      if (sw && previous?.config.switching?.from !== sw.from) {
        logger.warn('switching-fence', { node: sw.node, from: sw.from, to: sw.to });
        this.pool.fence(sw.from, `closed: node ${sw.node} is switching to a new master; retry shortly`);
      }
    });
  }

  #label(addr: string): string {
    const r = this.view.routing;
    if (r) for (const [name, n] of Object.entries(r.config.nodes)) {
      if (n.master === addr) return `node ${name} master (${addr})`;
      if (n.replicas.includes(addr)) return `node ${name} replica (${addr})`;
    }
    return `node ${addr}`;
  }

  info(sections: string[], fromNodes?: NodeInfoFields): string {
    const r = this.view.routing;
    const nodes = r
      ? Object.entries(r.config.nodes).flatMap(([name, n]) => [
          { address: n.master, shard: name, role: 'master' as const, up: !this.pool.isDown(n.master) },
          ...n.replicas.map((a) => ({ address: a, shard: name, role: 'replica' as const, up: !this.pool.isDown(a) })),
        ])
      : [];
    return renderInfo(this.stats, sections.length ? sections : 'default', {
      id: this.options.id,
      version: VERSION,
      port: this.options.port,
      readPolicy: this.options.readFrom,
      nodes,
      probing: this.agent ? this.agent.probing() : null,
      fromNodes,
      access: {
        nodeTls: nodeTls.enabled,
        controlUser: this.pool.credentials.get('control') ? this.pool.credentials.user('control') : null,
        dataUser: this.pool.credentials.get('data') ? this.pool.credentials.user('data') : null,
        clientAuth: this.clientAuth.enabled,
        tlsListener: this.tlsAddress !== '',
      },
    });
  }

  /** Ready: a configuration within its lease, and a majority of masters answering. */
  readiness(): { ready: boolean; reason: string } {
    const err = this.view.leaseError();
    if (err) return { ready: false, reason: err };
    const r = this.view.routing!;
    const down = this.view.unreachableMasters.filter((m) => r.masters.includes(m)).length;
    if (r.masters.length - down < majority(r.masters.length))
      return { ready: false, reason: `only ${r.masters.length - down} of ${r.masters.length} masters reachable` };
    return { ready: true, reason: `ok: epoch ${r.config.epoch}, lease valid` };
  }

  async start(): Promise<void> {
    const o = this.options;
    const tcp = await this.#listen({ host: o.bind, port: o.port }, `${o.bind}:${o.port}`);
    const a = tcp.address() as net.AddressInfo;
    this.address = `${o.bind}:${a.port}`;
    o.port = a.port;
    if (this.#cfg.tls) await this.#listenTls(this.#cfg.tls);
    if (o.unixsocket) {
      const path = o.unixsocket;
      if (fs.existsSync(path)) {
        const inUse = await new Promise<boolean>((res) => {
          const c = net.connect(path, () => (c.destroy(), res(true)));
          c.on('error', () => res(false));
        });
        if (inUse) throw new ListenError(`unix socket ${path} is in use by another process`);
        fs.unlinkSync(path);
      }
      await this.#listen({ path }, path);
      if (o.unixsocketperm !== undefined) fs.chmodSync(path, o.unixsocketperm);
    }
    this.view.setAddress(this.address);
    this.view.startInBackground();
    this.agent?.start();
    // Checked in the timers phase, which runs before the poll phase delivers socket data: after a
    // long pause (SIGSTOP) the lease is found expired, and every connection fenced, before any
    // reply that arrived meanwhile can be passed on.
    this.#watchdog = setInterval(() => {
      const valid = this.view.leaseError() === null;
      if (this.#leaseWasValid && !valid) this.pool.fenceAll('closed: the sidecar\'s configuration lease ran out; the command may or may not have run');
      this.#leaseWasValid = valid;
    }, 50);
    this.#watchdog.unref();
    if (this.#cfg.metricsPort !== undefined) {
      this.#http = await startHttp({
        bind: this.#cfg.metricsBind ?? '127.0.0.1',
        port: this.#cfg.metricsPort,
        stats: this.stats,
        readiness: () => this.readiness(),
        metrics: createMetrics(this.stats),
      });
      this.metricsUrl = this.#http.url;
    }
    logger.info('sidecar-started', { id: o.id, address: this.address, unixsocket: o.unixsocket, metrics: this.metricsUrl || undefined });
  }

  /** Resolves once a configuration has been loaded and confirmed (tests, demo). */
  async ready(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.view.leaseError() !== null) {
      if (Date.now() > until) throw new Error(`sidecar not ready after ${timeoutMs} ms: ${this.view.leaseError()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  #listen(where: net.ListenOptions, label: string): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      // The local address every connection accepted here has, when the listener is bound to one
      // address (the default, 127.0.0.1): one string for all sessions, instead of a getsockname
      // and a string per connection (RSS per idle connection, bench --memory).
      let laddr: string | undefined;
      const server = net.createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, (sock) => this.#accept(sock, laddr));
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(
          new ListenError(
            e.code === 'EADDRINUSE'
              ? `${label} is already in use (another Redis or sidecar?); choose another with --port`
              : e.code === 'EACCES'
                ? `not allowed to listen on ${label}`
                : `cannot listen on ${label}: ${e.message}`,
          ),
        );
      });
      server.listen({ ...where, backlog: 4096 }, () => {
        const a = server.address();
        if (typeof a === 'string') laddr = a;
        else if (a && a.address !== '0.0.0.0' && a.address !== '::') laddr = `${a.address}:${a.port}`;
        server.removeAllListeners('error');
        server.on('error', (e) => logger.error('listener-error', { error: e.message }));
        this.#servers.push(server);
        resolve(server);
      });
    });
  }

  #tlsServer: tls.Server | null = null;
  /** "host:port" of the TLS listener, when there is one */
  tlsAddress = '';

  #listenTls(t: ListenerTls): Promise<void> {
    const o = this.options;
    const server = tls.createServer(
      { ...listenerTlsOptions(t), requestCert: t.authClients === true, rejectUnauthorized: t.authClients === true, allowHalfOpen: true },
      (sock) => this.#acceptTls(sock),
    );
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new ListenError(e.code === 'EADDRINUSE' ? `${o.bind}:${t.port} (TLS) is already in use; choose another with --tls-port` : `cannot listen on ${o.bind}:${t.port} (TLS): ${e.message}`)),
      );
      server.listen({ host: o.bind, port: t.port, backlog: 4096 }, () => {
        const a = server.address() as net.AddressInfo;
        this.tlsAddress = `${o.bind}:${a.port}`;
        server.removeAllListeners('error');
        server.on('error', (e) => logger.error('listener-error', { error: e.message }));
        // a client that fails the handshake (no or a bad certificate) is logged, not a session
        server.on('tlsClientError', (e, sock) => logger.warn('tls-client-refused', { client: `${sock.remoteAddress}:${sock.remotePort}`, error: e.message }));
        this.#tlsServer = server;
        this.#servers.push(server);
        resolve();
      });
    });
  }

  /** Reads the TLS listener's certificate, key and CA again: new connections use them, open ones stay. */
  reloadTls(t: ListenerTls): void {
    if (!this.#tlsServer) throw new ListenError('no TLS listener to reload (--tls-port needs a restart)');
    this.#tlsServer.setSecureContext(listenerTlsOptions(t));
  }

  #acceptTls(sock: tls.TLSSocket): void {
    this.stats.connectionsReceived++;
    if (this.#stopping || this.sessions.size >= this.options.maxClients) {
      this.stats.rejectedConnections++;
      sock.end('-ERR max number of clients reached\r\n');
      return;
    }
    sock.setNoDelay(true);
    // TLS: the socket's own 'data' events (the shared-buffer read path is for plain sockets)
    const s = new ClientSession(sock, this, this.#nextId++, true, this.tlsAddress);
    this.sessions.add(s);
    this.stats.connectedClients = this.sessions.size;
  }

  #accept(raw: net.Socket, laddr: string | undefined): void {
    this.stats.connectionsReceived++;
    if (this.#stopping || this.sessions.size >= this.options.maxClients) {
      this.stats.rejectedConnections++;
      raw.resume(); // read (and drop) until the client closes, so the socket ends
      raw.end('-ERR max number of clients reached\r\n');
      return;
    }
    let s: ClientSession | null = null;
    // reads start on a later turn of the event loop, after `s` is set
    const sock = adoptClient(raw, (chunk) => s!.onChunk(chunk), true);
    sock.setNoDelay(true);
    s = new ClientSession(sock, this, this.#nextId++, false, laddr);
    this.sessions.add(s);
    this.stats.connectedClients = this.sessions.size;
  }

  sessionClosed(s: ClientSession): void {
    this.sessions.delete(s);
    this.stats.connectedClients = this.sessions.size;
  }

  /**
   * Applies the settings that can change while running, without touching a connection:
   * readFrom, logLevel, slowlogLogSlowerThan, slowlogMaxLen, outputLimit, maxClients,
   * nodeTimeoutMs (connections opened from now on; open ones keep theirs) and the checkMs/leaseMs
   * overrides (from the next check on). A restart-only setting (RESTART_ONLY) that differs from
   * the running one is logged as ignored with a warning. Every value is checked before any is
   * applied: a bad one throws and changes nothing. One log line per call that changes anything
   * (`quiet`: none, for the settings given at start-up).
   */
  reconfigure(next: ReconfigureSettings, how: { quiet?: boolean } = {}): ReconfigureResult {
    const o = this.options;
    const has = (k: keyof ReconfigureSettings): boolean => Object.prototype.hasOwnProperty.call(next, k) && (next[k] !== undefined || k === 'checkMs' || k === 'leaseMs');
    const bad = (msg: string): never => {
      throw new RangeError(`reconfigure: ${msg}`);
    };
    const int = (k: keyof ReconfigureSettings, min: number, max: number): void => {
      const v = next[k];
      if (has(k) && v !== undefined && v !== null && (!Number.isInteger(v) || (v as number) < min || (v as number) > max))
        bad(`${k} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
    };
    if (has('readFrom') && !['master', 'replica', 'any'].includes(next.readFrom as string)) bad(`readFrom must be master, replica or any, not ${JSON.stringify(next.readFrom)}`);
    if (has('logLevel') && !['error', 'warn', 'info', 'debug'].includes(next.logLevel as string)) bad(`logLevel must be error, warn, info or debug, not ${JSON.stringify(next.logLevel)}`);
    int('slowlogLogSlowerThan', -1, Number.MAX_SAFE_INTEGER);
    if (has('slowlogLogSlowerThan') && next.slowlogLogSlowerThan! < 0) next = { ...next, slowlogLogSlowerThan: -1 };
    int('slowlogMaxLen', 0, Number.MAX_SAFE_INTEGER);
    int('outputLimit', 1, Number.MAX_SAFE_INTEGER);
    int('maxClients', 1, Number.MAX_SAFE_INTEGER);
    int('nodeTimeoutMs', 1, Number.MAX_SAFE_INTEGER);
    int('checkMs', 1, Number.MAX_SAFE_INTEGER);
    int('leaseMs', 1, Number.MAX_SAFE_INTEGER);

    const applied: ReconfigureResult['applied'] = {};
    const ignored: ReconfigureResult['ignored'] = {};
    const change = <T>(k: string, from: T, to: T, set: (v: T) => void): void => {
      if (sameValue(from, to)) return;
      set(to);
      applied[k] = [from, to];
    };
    if (has('readFrom')) change('readFrom', o.readFrom, next.readFrom!, (v) => (o.readFrom = v));
    if (has('logLevel')) change('logLevel', this.#logLevel, next.logLevel!, (v) => (setLogLevel(v), (this.#logLevel = v)));
    if (has('slowlogLogSlowerThan')) change('slowlogLogSlowerThan', this.slowlog.threshold, next.slowlogLogSlowerThan!, (v) => (this.slowlog.threshold = v));
    if (has('slowlogMaxLen')) change('slowlogMaxLen', this.slowlog.maxLen, next.slowlogMaxLen!, (v) => (this.slowlog.maxLen = v));
    if (has('outputLimit')) change('outputLimit', o.outputLimit, next.outputLimit!, (v) => (o.outputLimit = v));
    if (has('maxClients')) change('maxClients', o.maxClients, next.maxClients!, (v) => (o.maxClients = v));
    if (has('nodeTimeoutMs')) change('nodeTimeoutMs', o.nodeTimeoutMs, next.nodeTimeoutMs!, (v) => ((o.nodeTimeoutMs = v), (this.#poolOpts.timeoutMs = v)));
    if (has('checkMs')) change('checkMs', this.#viewOpts.checkMs, next.checkMs ?? undefined, (v) => (this.#viewOpts.checkMs = v));
    if (has('leaseMs')) change('leaseMs', this.#viewOpts.leaseMs, next.leaseMs ?? undefined, (v) => (this.#viewOpts.leaseMs = v));

    const running: Record<string, unknown> = { ...o, seeds: this.#cfg.seeds, port: this.#cfg.port ?? 6379, metricsPort: this.#cfg.metricsPort, metricsBind: this.#cfg.metricsBind, failover: this.#cfg.failover !== false };
    for (const k of RESTART_ONLY) {
      const v = (next as Record<string, unknown>)[k];
      if (v === undefined) continue;
      if (k === 'id' && this.#cfg.id === undefined) continue; // a random id: nothing asked for
      const cur = running[k] ?? (k === 'metricsBind' ? '127.0.0.1' : undefined);
      if (!sameValue(cur, v)) ignored[k] = [cur, v];
    }
    if (how.quiet) return { applied, ignored };
    for (const [k, [from, to]] of Object.entries(ignored))
      logger.warn('reconfigure-ignored', { setting: k, running: from, requested: to, reason: 'takes effect only after a restart' });
    if (Object.keys(applied).length) {
      logger.info('reconfigured', { changes: Object.fromEntries(Object.entries(applied).map(([k, [from, to]]) => [k, { from: from ?? null, to: to ?? null }])) });
    }
    return { applied, ignored };
  }

  /** Graceful stop: stop accepting, drain in-flight commands up to `drainMs`, close everything. */
  async stop(drainMs = 5_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    // close() stops accepting at once; its callback would wait for every open connection to end
    // (an idle client: forever), so it is not awaited: the sessions are drained below instead
    for (const s of this.#servers) s.close();
    for (const s of this.sessions) s.drainAndClose();
    const until = Date.now() + drainMs;
    while (this.sessions.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sessions) s.socket.destroy();
    if (this.#watchdog) clearInterval(this.#watchdog);
    await this.agent?.stop();
    this.pool.close();
    this.view.stop();
    await this.#http?.close();
    if (this.options.unixsocket) fs.rmSync(this.options.unixsocket, { force: true });
    logger.info('sidecar-stopped', { id: this.options.id });
  }
}

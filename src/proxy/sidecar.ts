/**
 * The sidecar: local listeners (TCP on loopback, optionally a Unix socket), the client sessions,
 * the shared node pool, the cluster view, the modes for stateful commands, and the HTTP port for
 * metrics and health. `stop()` is graceful: stop accepting, let every session finish what it has
 * in flight (up to a deadline), then close.
 */
import net from 'node:net';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ClusterView } from './cluster-view';
import { Pool } from './pool';
import { ClientSession } from './session';
import type { Modes, SidecarContext, SidecarOptions } from './context';
import { migrationPath } from './migration';
import { createModes } from './modes';
import { ScriptCache } from './scripts';
import { Stats } from '../observe/stats';
import { SlowLog } from '../observe/slowlog';
import { renderInfo } from '../observe/info';
import { startHttp, HttpServer } from '../observe/http';
import { createMetrics } from '../observe/metrics';
import { DEFAULT_LIMITS } from '../resp/request-parser';
import { majority } from '../cluster/config';
import { logger } from '../observe/log';
import { FailoverAgent } from '../failover/agent';

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
  /** hook for the fail-over agent (src/failover/agent.ts) */
  onNodeDown?: (address: string, reason: string) => void;
}

export class ListenError extends Error {
  override name = 'ListenError';
}

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

export class Sidecar implements SidecarContext {
  readonly options: SidecarOptions;
  readonly stats = new Stats();
  readonly slowlog = new SlowLog();
  readonly view: ClusterView;
  readonly pool: Pool;
  readonly modes: Modes;
  readonly migration = migrationPath;
  readonly sessions = new Set<ClientSession>();
  readonly scripts = new ScriptCache();
  pausedUntil = 0;
  readonly #cfg: SidecarConfig;
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
    this.view = new ClusterView({
      seeds: cfg.seeds,
      id: this.options.id,
      addr: `${this.options.bind}:${this.options.port}`,
      stats: this.stats,
      checkMs: cfg.checkMs,
      leaseMs: cfg.leaseMs,
    });
    this.pool = new Pool({
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
    });
    this.view.onChange((r, previous) => {
      this.pool.retain(new Set(Object.values(r.config.nodes).flatMap((n) => [n.master, ...n.replicas])));
      // a switch of master began: nothing more to or from the old master
      const sw = r.config.switching;
      if (sw && previous?.config.switching?.from !== sw.from) {
        logger.warn('switching-fence', { node: sw.node, from: sw.from, to: sw.to });
        this.pool.fence(sw.from, `closed: node ${sw.node} is switching to a new master; retry shortly`);
      }
    });
    if (cfg.failover !== false) {
      this.agent = new FailoverAgent({
        id: this.options.id,
        addr: `${this.options.bind}:${this.options.port}`,
        stats: this.stats,
        getConfig: () => this.view.routing?.config ?? null,
        client: (a) => this.view.client(a),
      });
    }
    this.modes = createModes(this);
  }

  #label(addr: string): string {
    const r = this.view.routing;
    if (r) for (const [name, n] of Object.entries(r.config.nodes)) {
      if (n.master === addr) return `node ${name} master (${addr})`;
      if (n.replicas.includes(addr)) return `node ${name} replica (${addr})`;
    }
    return `node ${addr}`;
  }

  info(sections: string[]): string {
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
      const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => this.#accept(sock));
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
        server.removeAllListeners('error');
        server.on('error', (e) => logger.error('listener-error', { error: e.message }));
        this.#servers.push(server);
        resolve(server);
      });
    });
  }

  #accept(sock: net.Socket): void {
    this.stats.connectionsReceived++;
    if (this.#stopping || this.sessions.size >= this.options.maxClients) {
      this.stats.rejectedConnections++;
      sock.end('-ERR max number of clients reached\r\n');
      return;
    }
    sock.setNoDelay(true);
    const s = new ClientSession(sock, this, this.#nextId++);
    this.sessions.add(s);
    this.stats.connectedClients = this.sessions.size;
  }

  sessionClosed(s: ClientSession): void {
    this.sessions.delete(s);
    this.stats.connectedClients = this.sessions.size;
  }

  /** Graceful stop: stop accepting, drain in-flight commands up to `drainMs`, close everything. */
  async stop(drainMs = 5_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
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

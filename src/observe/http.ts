/**
 * The observation port: a small node:http server, loopback by default, separate from the Redis
 * port. GET /metrics (Prometheus text), /healthz (alive), /readyz (routing: 200 or 503 + reason).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMetrics, type Metrics } from './metrics';
import type { Stats } from './stats';
import { logger } from './log';
import { ObserveListenError, ObservePortInUseError, hostPort } from './errors';
export { ObserveListenError, ObservePortInUseError } from './errors';

export interface Readiness {
  ready: boolean;
  /** why not ready (served as the 503 body); may say why ready, too */
  reason: string;
}

export interface HttpOptions {
  /** address to listen on; default 127.0.0.1 */
  bind?: string;
  /** 0 picks a free port */
  port: number;
  stats: Stats;
  /** called on every GET /readyz */
  readiness: () => Readiness;
  /** reuse an existing createMetrics(stats) instead of making one */
  metrics?: Metrics;
}

export interface HttpServer {
  /** e.g. http://127.0.0.1:9121 (the actual port when 0 was asked) */
  url: string;
  /** Stops listening and drops open connections (keep-alive scrapers included). */
  close(): Promise<void>;
}


/** Readiness from the lease alone: ready while the configuration was confirmed on a majority within leaseMs. */
export function readinessFromStats(stats: Stats): () => Readiness {
  return () =>
    stats.leaseValid
      ? { ready: true, reason: `configuration epoch ${stats.epoch} within its lease` }
      : { ready: false, reason: stats.lastConfirmedAt > 0 ? 'configuration lease lapsed' : 'no configuration confirmed yet' };
}

const TEXT = 'text/plain; charset=utf-8';

function send(res: ServerResponse, status: number, body: string, type = TEXT, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...extra });
  res.end(body); // node:http drops the body of a HEAD response
}

export function startHttp(options: HttpOptions): Promise<HttpServer> {
  const bind = options.bind ?? '127.0.0.1';
  const metrics = options.metrics ?? createMetrics(options.stats);
  const { readiness } = options;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', TEXT, { Allow: 'GET, HEAD' });
    const path = (req.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/metrics':
        return send(res, 200, await metrics.render(), metrics.contentType);
      case '/healthz':
        return send(res, 200, 'ok\n');
      case '/readyz': {
        let r: Readiness;
        try {
          r = readiness();
        } catch (e) {
          r = { ready: false, reason: `readiness check failed: ${(e as Error).message}` };
        }
        return r.ready ? send(res, 200, `${r.reason || 'ready'}\n`) : send(res, 503, `${r.reason || 'not ready'}\n`);
      }
      default:
        return send(res, 404, 'not found (try /metrics, /healthz, /readyz)\n');
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      logger.error('observe_http_error', { path: req.url, error: e.message });
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });

  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(e.code === 'EADDRINUSE' ? new ObservePortInUseError(bind, options.port) : new ObserveListenError(bind, options.port, e));
    };
    server.once('error', onError);
    server.listen(options.port, bind, () => {
      server.off('error', onError);
      server.on('error', (e) => logger.error('observe_http_error', { error: e.message }));
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${hostPort(bind, port)}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((e) => (e ? fail(e) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}

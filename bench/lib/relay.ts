/**
 * The blind relay the bench measures beside the proxies: Node.js `stream.pipe` between each client
 * connection and a connection of its own to one of the masters (taken in turn), with no parsing,
 * no routing and no coalescing. It is the reference issue 5 names: what a Node.js process in
 * front of the same three masters reaches when it does nothing but move bytes. Its keys land on
 * whichever master the client's connection went to, so it is fit for redis-benchmark's figures
 * and for nothing else.
 *
 *   node dist/bench/lib/relay.js --port P --unix PATH --backends 127.0.0.1:A,127.0.0.1:B,...
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { parseArgs } from 'node:util';

export interface Backend {
  host: string;
  port: number;
}

export function parseBackends(list: string): Backend[] {
  const out = list
    .split(',')
    .filter(Boolean)
    .map((a) => {
      const i = a.lastIndexOf(':');
      const port = Number(a.slice(i + 1));
      if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`relay: bad backend address "${a}"`);
      return { host: a.slice(0, i), port };
    });
  if (!out.length) throw new Error('relay: --backends names no backend');
  return out;
}

/** A server that pipes every connection to the next backend in turn. */
export function relayServer(backends: Backend[]): net.Server {
  let next = 0;
  return net.createServer({ noDelay: true }, (client) => {
    const b = backends[next++ % backends.length]!;
    const node = net.connect({ host: b.host, port: b.port, noDelay: true });
    client.pipe(node);
    node.pipe(client);
    client.on('error', () => node.destroy());
    node.on('error', () => client.destroy());
    client.on('close', () => node.destroy());
    node.on('close', () => client.destroy());
  });
}

function main(): void {
  const { values } = parseArgs({ options: { port: { type: 'string' }, unix: { type: 'string' }, backends: { type: 'string' } } });
  const backends = parseBackends(values.backends ?? '');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port <= 0) throw new Error('relay: --port needs a port number');
  relayServer(backends).listen(port, '127.0.0.1');
  if (values.unix) {
    fs.rmSync(values.unix, { force: true });
    relayServer(backends).listen(values.unix);
  }
  process.on('SIGTERM', () => process.exit(0));
}

if (require.main === module) main();

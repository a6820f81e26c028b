/**
 * The bench's blind relay (bench/lib/relay.ts): bytes pass unchanged between each client and a
 * master of its own, connections go to the masters in turn, and a bad backend list is refused.
 */
import t from 'tap';
import Redis from 'ioredis';
import { AddressInfo } from 'node:net';
import { RedisProcess } from '../../src/embedded/redis-process';
import { parseBackends, relayServer } from '../../bench/lib/relay';

t.test('parseBackends reads host:port lists and refuses what is not one', async (t) => {
  t.same(parseBackends('127.0.0.1:7001,localhost:7002'), [
    { host: '127.0.0.1', port: 7001 },
    { host: 'localhost', port: 7002 },
  ]);
  t.throws(() => parseBackends(''), /names no backend/);
  t.throws(() => parseBackends('127.0.0.1'), /bad backend address "127.0.0.1"/);
  t.throws(() => parseBackends('127.0.0.1:0'), /bad backend address/);
  t.throws(() => parseBackends('127.0.0.1:70000'), /bad backend address/);
});

t.test('the relay pipes each connection to the next master in turn, byte for byte', async (t) => {
  const a = await RedisProcess.start();
  const b = await RedisProcess.start();
  t.teardown(() => Promise.all([a.stop({ removeDir: true }), b.stop({ removeDir: true })]));
  const server = relayServer([
    { host: '127.0.0.1', port: a.port },
    { host: '127.0.0.1', port: b.port },
  ]);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;

  const first = new Redis({ port, lazyConnect: true, enableReadyCheck: false });
  const second = new Redis({ port, lazyConnect: true, enableReadyCheck: false });
  t.teardown(() => {
    first.disconnect();
    second.disconnect();
  });
  await first.connect();
  t.equal(await first.set('k', 'first'), 'OK');
  await second.connect();
  t.equal(await second.set('k', 'second'), 'OK');
  const big = 'x'.repeat(1 << 20);
  t.equal(await first.set('big', big), 'OK');
  t.equal(await first.get('big'), big, 'a 1 MB value comes back whole');

  const direct = (port: number): Redis => new Redis({ port, lazyConnect: true });
  const da = direct(a.port);
  const db = direct(b.port);
  t.teardown(() => {
    da.disconnect();
    db.disconnect();
  });
  t.equal(await da.get('k'), 'first', 'the first connection went to the first master');
  t.equal(await db.get('k'), 'second', 'the second connection went to the second master');
});

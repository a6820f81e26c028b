/**
 * TLS to the nodes (issue 22): a cluster of redis-servers with TLS only (plain ports off, client
 * certificates required, replication and MIGRATE over TLS), certificates made with openssl. The
 * sidecar's data path, subscriber links and control plane, create, move-slots and a fail-over
 * after kill -9 all over TLS; a sidecar that does not trust the nodes' CA gets a clear error and
 * never votes.
 */
import t from 'tap';
import Redis from 'ioredis';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { setLogSink } from '../../src/observe/log';
import { startCluster as startPlain } from '../helpers/cluster';
import { startSidecar } from '../helpers/sidecar';
import { nodeTls } from '../../src/cluster/node-tls';
import { moveSlots } from '../../src/admin/move-slots';
import { slotOf } from '../../src/cluster/slot';
import { startCluster } from '../failover/servers';
import { makeCerts } from '../helpers/certs';
import { allAddresses, childSidecar, inProcessSidecar, keyOn, logEvents, roleOf, sleep, waitFor } from '../failover/load';

setLogSink(() => {});
const timing = { checkMs: 200, leaseMs: 600, downAfterMs: 500 };

const errorOf = async (p: Promise<unknown>): Promise<string> => p.then((v) => `no error (${JSON.stringify(v)})`, (e: Error) => e.message);

t.test('a TLS-only cluster: create, replication, data path, pub/sub, move-slots and fail-over over TLS', async (t) => {
  const certs = makeCerts(t);
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1, timing, tls: certs });
  t.teardown(() => nodeTls.set(null));
  const m0 = c.shards[0]!.master.address;
  t.same(await c.client(m0).config('GET', 'port'), ['port', '0'], 'the plain port is off');
  t.same(await c.client(m0).config('GET', 'tls-replication'), ['tls-replication', 'yes'], 'create turned on replication over TLS');
  t.match(await c.client(c.shards[0]!.replicas[0]!.address).info('replication'), /master_link_status:up/, 'replicas linked over TLS');
  // a plain client gets nowhere
  const [host, port] = m0.split(':');
  const plain = new Redis({ host, port: Number(port), maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, lazyConnect: true });
  plain.on('error', () => {});
  t.teardown(() => plain.disconnect());
  t.notMatch(await errorOf(plain.connect().then(() => plain.ping())), /^no error/, 'a plain-TCP client is refused');

  const sc = await inProcessSidecar(t, c, '1');
  const app = new Redis({ port: sc.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  t.teardown(() => app.disconnect());
  t.equal(await app.set('k', 'v'), 'OK');
  t.equal(await app.get('k'), 'v', 'the data path over TLS');
  t.equal(await app.dbsize(), 1);
  const sub = new Redis({ port: sc.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  t.teardown(() => sub.disconnect());
  const got = new Promise<string>((res) => sub.on('message', (_ch, msg) => res(msg)));
  await sub.subscribe('news');
  await app.publish('news', 'over tls');
  t.equal(await got, 'over tls', 'a subscriber link over TLS');

  const keys: string[] = [];
  for (let i = 0; keys.length < 10; i++) if (slotOf(`mv:${i}`) < 2) keys.push(`mv:${i}`);
  for (const k of keys) await app.set(k, k);
  const to = Object.keys(c.config.nodes).sort().at(-1)!;
  await moveSlots({ seeds: c.seeds.split(','), slots: [0, 1], to });
  t.equal(await c.client(c.config.nodes[to]!.master).exists(...keys), keys.length, 'move-slots: MIGRATE over TLS');
  await waitFor('routing by the new configuration', async () => (await app.get(keys[0]!)) === keys[0], 10_000, 50);

  const victim = c.shards[0]!;
  const key = keyOn(c.config, victim.master.address, 'fo');
  await app.set(key, 'before');
  await victim.master.kill('SIGKILL');
  await waitFor('a failover event', async () => (await logEvents(c, allAddresses(c).filter((a) => a !== victim.master.address), ['failover'])).length > 0, 30_000);
  t.equal((await roleOf(c.client(victim.replicas[0]!.address))).role, 'master', 'the replica was promoted over TLS');
  await waitFor('writes to resume', async () => (await app.set(key, 'after').then(() => true, () => false)), 20_000, 50);
  t.equal(await app.get(key), 'after', 'and read back');
});

t.test('a sidecar that does not trust the nodes\' CA: a clear error, still running, no vote', async (t) => {
  const certs = makeCerts(t);
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 0, timing, tls: certs });
  t.teardown(() => nodeTls.set(null));
  const sc = await childSidecar(
    t,
    c,
    'wrong-ca',
    ['--node-tls', '--node-tls-ca-cert-file', certs.otherCaFile, '--node-tls-cert-file', certs.certFile, '--node-tls-key-file', certs.keyFile],
    { waitToRoute: false },
  );
  await sleep(6 * timing.downAfterMs);
  t.match(sc.output!(), /no-seed-reachable/, 'it says it reaches no seed');
  t.match(sc.output!(), /TLS to node 127\.0\.0\.1:\d+ failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|.*certificate)/, 'because TLS failed, with the reason');
  t.equal(sc.child!.exitCode, null, 'still running');
  const names = Object.keys(c.config.nodes);
  for (const n of names) t.same(await c.client(c.config.nodes[names[0]!]!.master).hgetall(`__cluster__:votes:${n}`), {}, `no vote against node ${n}`);
  // and one that trusts it routes
  const ok = await childSidecar(t, c, 'right-ca', ['--node-tls', '--node-tls-ca-cert-file', certs.caFile, '--node-tls-cert-file', certs.certFile, '--node-tls-key-file', certs.keyFile]);
  const app = new Redis({ port: ok.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  t.teardown(() => app.disconnect());
  t.equal(await app.set('x', '1'), 'OK', 'the same cluster through a sidecar with the right CA');
});

t.test('the TLS listener for apps: redis-cli --tls and ioredis over TLS, client certificates when asked, a reload', async (t) => {
  const certs = makeCerts(t);
  const cluster = await startPlain(t, { masters: 1, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster, { tls: { port: 0, certFile: certs.certFile, keyFile: certs.keyFile, caFile: certs.caFile, authClients: true } });
  const port = Number(sc.tlsAddress.split(':')[1]);
  const tlsOpts = { ca: readFileSync(certs.caFile), cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) };
  const app = new Redis({ host: '127.0.0.1', port, tls: tlsOpts, maxRetriesPerRequest: 0 });
  t.teardown(() => app.disconnect());
  t.equal(await app.set('t', 'tls'), 'OK', 'ioredis over TLS with a client certificate');
  const big = 'x'.repeat(1 << 20);
  await app.set('big', big);
  t.equal((await app.get('big'))!.length, big.length, 'a 1 MB value both ways');
  const pipe = app.pipeline();
  for (let i = 0; i < 1000; i++) pipe.incr('n');
  t.equal((await pipe.exec())!.at(-1)![1], 1000, 'a pipeline of 1000 commands');
  const cli = await new Promise<string>((res) =>
    execFile('redis-cli', ['--tls', '--cacert', certs.caFile, '--cert', certs.certFile, '--key', certs.keyFile, '-h', '127.0.0.1', '-p', String(port), 'get', 't'], (_e, out, err) => res(out + err)),
  );
  t.equal(cli.trim(), 'tls', 'redis-cli --tls');
  const noCert = new Redis({ host: '127.0.0.1', port, tls: { ca: tlsOpts.ca }, maxRetriesPerRequest: 0, retryStrategy: () => null });
  noCert.on('error', () => {});
  t.teardown(() => noCert.disconnect());
  t.notOk(await noCert.get('t').then(() => true, () => false), 'without a client certificate: refused');
  sc.reloadTls({ port: 0, certFile: certs.certFile, keyFile: certs.keyFile, caFile: certs.caFile, authClients: true });
  t.equal(await app.get('t'), 'tls', 'a reload keeps open connections');
  const again = new Redis({ host: '127.0.0.1', port, tls: tlsOpts, maxRetriesPerRequest: 0 });
  t.teardown(() => again.disconnect());
  t.equal(await again.get('t'), 'tls', 'and new ones work');
  t.throws(() => sc.reloadTls({ port: 0, certFile: certs.keyFile, keyFile: certs.keyFile }), /not usable/, 'a bad file on reload is refused, the running one kept');
  t.equal(await app.get('t'), 'tls');
});

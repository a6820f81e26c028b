/**
 * The data path end to end: a cluster of 3 masters with 1 replica each (real redis-server
 * processes, created with the create code), one sidecar in front, ioredis (and node-redis) as
 * the applications. Keys are checked on the node that owns them, read back directly.
 */
import t from 'tap';
import Redis from 'ioredis';
import { createClient } from 'redis';
import { startCluster, directClient } from '../helpers/cluster';
import { CONFIG_KEY, VERSION_KEY } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Sidecar } from '../../src/proxy/sidecar';
import { commandCalls, keysPerMaster, ownerOf, sidecarClient, startSidecar } from './helpers';

let cluster: LocalCluster;
let sidecar: Sidecar;
let app: Redis;
/** direct connections to every master, by address */
const direct = new Map<string, Redis>();

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  sidecar = await startSidecar(t, cluster);
  app = sidecarClient(t, sidecar);
  for (const a of cluster.seeds) direct.set(a, directClient(t, a));
});

const masters = () => cluster.seeds;

t.test('single-key commands land on the master that owns the slot, and on no other node', async (t) => {
  const owners = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const k = `single:${i}`;
    const owner = ownerOf(cluster.config, k);
    owners.add(owner);
    t.equal(await app.set(k, `v${i}`), 'OK');
    t.equal(await app.get(k), `v${i}`, `${k} reads back through the sidecar`);
    for (const m of masters()) t.equal(await direct.get(m)!.get(k), m === owner ? `v${i}` : null, `${k} ${m === owner ? 'is on its owner' : 'is absent from'} ${m}`);
  }
  t.equal(owners.size, 3, 'the keys cover all three masters');
  // other types too
  await app.hset('single:h', 'f', 'x');
  await app.rpush('single:l', 'a', 'b');
  await app.sadd('single:s', 'm');
  t.same(await direct.get(ownerOf(cluster.config, 'single:h'))!.hgetall('single:h'), { f: 'x' });
  t.same(await direct.get(ownerOf(cluster.config, 'single:l'))!.lrange('single:l', 0, -1), ['a', 'b']);
  t.same(await direct.get(ownerOf(cluster.config, 'single:s'))!.smembers('single:s'), ['m']);
  t.equal(await app.incrby('single:n', 5), 5);
  t.equal(await direct.get(ownerOf(cluster.config, 'single:n'))!.get('single:n'), '5');
});

t.test('keys sharing a {tag} share a node, and same-slot multi-key commands run there', async (t) => {
  const keys = ['{user:7}:a', '{user:7}:b', '{user:7}:c'];
  const owner = ownerOf(cluster.config, 'user:7');
  for (const k of keys) t.equal(ownerOf(cluster.config, k), owner);
  await app.sadd(keys[0]!, 'x', 'y');
  await app.sadd(keys[1]!, 'y', 'z');
  t.equal(await app.sunionstore(keys[2]!, keys[0]!, keys[1]!), 3, 'SUNIONSTORE within a tag');
  t.same((await direct.get(owner)!.smembers(keys[2]!)).sort(), ['x', 'y', 'z'], 'the result is on the tag owner');
  t.equal(await app.rename(keys[2]!, '{user:7}:d'), 'OK');
  t.equal(await direct.get(owner)!.exists('{user:7}:d'), 1);
  // two keys in different slots for a command that needs one slot
  let other = 'x0';
  for (let i = 1; slotOf(other) === slotOf('user:7'); i++) other = `x${i}`;
  await t.rejects(app.rename('{user:7}:d', other), /CROSSSLOT/, 'RENAME across slots is refused');
  await t.rejects(app.sunionstore('{user:7}:e', keys[0]!, other), /CROSSSLOT/);
  t.equal(await app.exists('{user:7}:d'), 1, 'the refused command did nothing');
});

t.test('a pipeline of 1000 mixed commands over keys of all three masters gets its replies in order', async (t) => {
  const p = app.pipeline();
  const expected: unknown[] = [];
  const owners = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const k = `pipe:${i}`;
    owners.add(ownerOf(cluster.config, k));
    p.set(k, String(i));
    expected.push('OK');
    p.get(k);
    expected.push(String(i));
    p.incr(`pipe:n:${i % 7}`);
    expected.push(Math.floor(i / 7) + 1);
    p.lpush(`pipe:l:${i}`, 'a', String(i));
    expected.push(2);
    p.lrange(`pipe:l:${i}`, 0, -1);
    expected.push([String(i), 'a']);
  }
  t.equal(expected.length, 1000);
  t.equal(owners.size, 3);
  const res = (await p.exec())!;
  t.equal(res.length, 1000);
  const errors = res.filter(([e]) => e);
  t.equal(errors.length, 0, `no errors ${errors.slice(0, 3).map(([e]) => e?.message)}`);
  const got = res.map(([, v]) => v);
  let firstBad = -1;
  for (let i = 0; i < got.length; i++)
    if (JSON.stringify(got[i]) !== JSON.stringify(expected[i])) {
      firstBad = i;
      break;
    }
  t.equal(firstBad, -1, firstBad >= 0 ? `reply ${firstBad}: ${JSON.stringify(got[firstBad])} != ${JSON.stringify(expected[firstBad])}` : 'every reply in order');
});

t.test('cross-slot MSET and MGET round trip: values in the original order, each key on its owner', async (t) => {
  const per = keysPerMaster(cluster.config, 'x:', 4);
  // interleave the masters' keys so every node's keys are scattered through the argument list
  const keys: string[] = [];
  for (let i = 0; i < 4; i++) for (const l of per.values()) keys.push(l[i]!);
  const args: string[] = keys.flatMap((k, i) => [k, `val-${i}`]);
  t.equal(await app.mset(...args), 'OK');
  for (const [m, l] of per) for (const k of l) t.equal(await direct.get(m)!.get(k), `val-${keys.indexOf(k)}`, `${k} is on ${m}`);
  const withMissing = [keys[3]!, 'x:missing', keys[0]!, keys[11]!, keys[3]!, keys[7]!];
  t.same(await app.mget(...withMissing), ['val-3', null, 'val-0', 'val-11', 'val-3', 'val-7'], 'MGET: order kept, missing keys nil, repeats repeated');
  t.same(await app.mget(...keys), keys.map((_, i) => `val-${i}`));
  // binary values survive the split and merge
  const bin = Buffer.from([0, 13, 10, 0x24, 0x2a, 255]);
  await app.mset(keys[0]!, bin, keys[1]!, Buffer.alloc(0));
  const back = await app.mgetBuffer(keys[1]!, keys[0]!);
  t.ok(back[0]!.equals(Buffer.alloc(0)) && back[1]!.equals(bin), 'binary and empty values round trip');
  // a wrong-type key reads as nil in MGET, as in Redis
  await app.rpush('x:list', 'a');
  t.same(await app.mget(keys[2]!, 'x:list'), ['val-2', null]);
});

t.test('cross-slot DEL, UNLINK, EXISTS and TOUCH sum the counts of every node', async (t) => {
  const per = keysPerMaster(cluster.config, 'd:', 3);
  const keys = [...per.values()].flat();
  t.equal(keys.length, 9);
  await app.mset(...keys.flatMap((k) => [k, '1']));
  t.equal(await app.exists(...keys, 'd:none', keys[0]!), 10, 'EXISTS counts every existing key, repeats included');
  t.equal(await app.touch(...keys, 'd:none'), 9);
  t.equal(await app.del(keys[0]!, keys[3]!, keys[6]!, 'd:none'), 3);
  t.equal(await app.unlink(...keys), 6, 'UNLINK counts only what was left');
  t.equal(await app.exists(...keys), 0);
  for (const [m, l] of per) t.equal(await direct.get(m)!.exists(...l), 0, `nothing left on ${m}`);
});

t.test('MSETNX across slots is refused with CROSSSLOT; within a tag it works', async (t) => {
  let other = 'n0';
  for (let i = 1; slotOf(other) === slotOf('nx:a'); i++) other = `n${i}`;
  await t.rejects(app.msetnx('nx:a', '1', other, '2'), /^CROSSSLOT/);
  t.equal(await app.exists('nx:a', other), 0, 'nothing was written');
  t.equal(await app.msetnx('{nx}1', 'a', '{nx}2', 'b'), 1);
  t.equal(await app.msetnx('{nx}2', 'c', '{nx}3', 'd'), 0, 'not set when one exists');
  t.same(await direct.get(ownerOf(cluster.config, 'nx'))!.mget('{nx}1', '{nx}2', '{nx}3'), ['a', 'b', null]);
});

t.test('keys under __cluster__: are refused for every family, and the metadata on the nodes stays intact', async (t) => {
  const before = await Promise.all(masters().map((m) => direct.get(m)!.mget(CONFIG_KEY, VERSION_KEY)));
  t.ok(before.every(([c, v]) => c && v), 'every master holds the configuration');
  const refused = /__cluster__/;
  await t.rejects(app.get(CONFIG_KEY), refused, 'GET');
  await t.rejects(app.set(CONFIG_KEY, '{}'), refused, 'SET');
  await t.rejects(app.set(VERSION_KEY, 'x'), refused, 'SET version');
  await t.rejects(app.del(CONFIG_KEY), refused, 'DEL');
  await t.rejects(app.del('plain', CONFIG_KEY), refused, 'DEL with the metadata key second');
  await t.rejects(app.unlink(VERSION_KEY, 'other'), refused, 'UNLINK');
  await t.rejects(app.mget('a', CONFIG_KEY), refused, 'MGET');
  await t.rejects(app.mset('a', '1', CONFIG_KEY, '{}'), refused, 'MSET');
  await t.rejects(app.exists(CONFIG_KEY), refused, 'EXISTS');
  await t.rejects(app.exists('a', 'b', CONFIG_KEY), refused, 'EXISTS across slots');
  await t.rejects(app.touch(CONFIG_KEY), refused, 'TOUCH');
  await t.rejects(app.expire(CONFIG_KEY, 1), refused, 'EXPIRE');
  await t.rejects(app.rename('plain', CONFIG_KEY), refused, 'RENAME onto it');
  await t.rejects(app.call('COPY', CONFIG_KEY, 'stolen'), refused, 'COPY from it');
  await t.rejects(app.type('__cluster__:sidecars'), refused, 'TYPE of another metadata key');
  await t.rejects(app.msetnx(CONFIG_KEY, '{}'), refused, 'MSETNX');
  t.equal(await app.exists('a'), 0, 'the refused MSET wrote nothing');
  const after = await Promise.all(masters().map((m) => direct.get(m)!.mget(CONFIG_KEY, VERSION_KEY)));
  t.same(after, before, 'config and version unchanged on every master');
  t.equal(await app.ping(), 'PONG', 'the connection still serves');
});

t.test('the sidecar answers PING, ECHO, SELECT, HELLO, TIME and CONFIG GET itself', async (t) => {
  t.equal(await app.ping(), 'PONG');
  t.equal(await app.ping('hi'), 'hi');
  t.equal(await app.echo('a\r\nb'), 'a\r\nb');
  t.equal(await app.select(0), 'OK');
  await t.rejects(app.select(1), /ERR.*DB index is out of range/);
  await t.rejects(app.call('SELECT', 'x'), /not an integer/);
  const hello2 = (await app.call('HELLO', '2')) as unknown[];
  const h = Object.fromEntries(Array.from({ length: hello2.length / 2 }, (_, i) => [hello2[2 * i], hello2[2 * i + 1]]));
  t.equal(h.proto, 2, 'HELLO 2 answers proto 2');
  t.equal(h.server, 'redis');
  await t.rejects(app.call('HELLO', '4'), /^NOPROTO/, 'HELLO 4 gets NOPROTO so clients fall back');
  t.equal(await app.ping(), 'PONG', 'still RESP2 after HELLO 4 (RESP3 is covered in resp3.test.ts)');
  const [sec, usec] = (await app.time()) as unknown as [string, string];
  t.match(sec, /^\d+$/);
  t.match(usec, /^\d+$/);
  t.ok(Math.abs(Number(sec) - Date.now() / 1000) < 60, 'TIME is the wall clock');
  t.ok(Number(usec) < 1_000_000);
  t.same(await app.config('GET', 'save'), ['save', '']);
  t.same(await app.config('GET', 'appendonly'), ['appendonly', 'no']);
  const all = (await app.config('GET', '*')) as string[];
  t.ok(all.includes('databases'), 'CONFIG GET * lists the settings it knows');
});

t.test('CLIENT SETNAME, GETNAME, ID, INFO and LIST describe this connection', async (t) => {
  const c = sidecarClient(t, sidecar);
  t.equal(await c.client('GETNAME'), null);
  t.equal(await c.client('SETNAME', 'app-1'), 'OK');
  t.equal(await c.client('GETNAME'), 'app-1');
  await t.rejects(c.client('SETNAME', 'has space'), /cannot contain spaces/);
  const id = (await c.client('ID')) as number;
  t.ok(Number.isInteger(id) && id > 0);
  const info = (await c.client('INFO')) as string;
  t.match(info, new RegExp(`^id=${id} .*name=app-1 `));
  const list = (await c.client('LIST')) as string;
  t.match(list, new RegExp(`id=${id} .*name=app-1`), 'CLIENT LIST includes this client');
  t.ok(list.trim().split('\n').length >= 2, 'and the others');
  await t.rejects(c.call('CLIENT', 'NOSUCH'), /unknown subcommand 'NOSUCH'/);
});

t.test('COMMAND COUNT and INFO answer without touching the keyspace', async (t) => {
  const n = (await app.call('COMMAND', 'COUNT')) as number;
  t.ok(n > 150, `COMMAND COUNT ${n}`);
  const info = await app.info();
  t.match(info, /# Server/);
  t.match(info, /redis_version:/);
  const stats = await app.info('stats');
  t.match(stats, /total_commands_processed:\d+/);
});

t.test('unknown commands and bad arity get errors naming the command', async (t) => {
  await t.rejects(app.call('NOSUCHCMD', 'a', 'b'), /ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b'/);
  await t.rejects(app.call('GET'), /wrong number of arguments for 'get' command/);
  await t.rejects(app.call('GET', 'a', 'b'), /wrong number of arguments for 'get' command/);
  t.equal(await app.ping(), 'PONG');
});

t.test('refused admin commands get a clear error and the sidecar keeps serving', async (t) => {
  for (const cmd of [['SHUTDOWN'], ['SHUTDOWN', 'NOSAVE'], ['MONITOR'], ['DEBUG', 'SLEEP', '0'], ['REPLICAOF', 'NO', 'ONE'], ['BGSAVE'], ['CLUSTER', 'INFO'], ['MOVE', 'k', '1'], ['SWAPDB', '0', '1']]) {
    await t.rejects(app.call(cmd[0]!, ...cmd.slice(1)), new RegExp(`^ERR ringside: ${cmd[0]} `), cmd.join(' '));
  }
  for (const setting of ['dir', 'dbfilename', 'replicaof', 'masterauth', 'port', 'bind', 'requirepass', 'tls-port', 'cluster-enabled'])
    await t.rejects(app.config('SET', setting, 'x'), new RegExp(`^ERR ringside: CONFIG SET ${setting} is refused through the sidecar`), `CONFIG SET ${setting} refused by name`);
  t.equal(await app.set('after-admin', '1'), 'OK', 'the sidecar still routes');
  for (const m of masters()) t.equal(await direct.get(m)!.ping(), 'PONG', `${m} still up`);
});

t.test('QUIT answers OK and closes the connection; other clients are unaffected', async (t) => {
  const c = sidecarClient(t, sidecar);
  await c.ping();
  const closed = new Promise<void>((r) => c.once('end', () => r()));
  t.equal(await c.quit(), 'OK');
  await closed;
  t.equal(await app.ping(), 'PONG');
});

t.test('node-redis asked for RESP2 as a second client library: strings, cross-slot MSET/MGET/DEL', async (t) => {
  const c = createClient({ RESP: 2, socket: { host: '127.0.0.1', port: sidecar.options.port, reconnectStrategy: false } });
  c.on('error', () => undefined);
  await c.connect();
  t.teardown(() => c.destroy());
  const per = keysPerMaster(cluster.config, 'nr:', 1);
  const keys = [...per.values()].flat();
  await c.mSet(keys.map((k, i) => [k, `n${i}`] as [string, string]));
  t.same(await c.mGet(keys), ['n0', 'n1', 'n2']);
  t.equal(await c.get(keys[1]!), 'n1');
  t.equal(await c.del(keys), 3);
});

t.test('node-redis with its default options (it opens with HELLO 3) connects and works', async (t) => {
  // node-redis 6 defaults to RESP3 and fails its handshake on any HELLO 3 error, NOPROTO included
  const c = createClient({ socket: { host: '127.0.0.1', port: sidecar.options.port, reconnectStrategy: false } });
  c.on('error', () => undefined);
  t.teardown(() => c.destroy());
  let err: Error | null = null;
  await c.connect().catch((e: Error) => (err = e));
  t.equal(err, null, `connect: ${err ? (err as Error).message : 'ok'}`);
  if (!err) t.equal(await c.ping(), 'PONG');
});

t.test('with --read-from replica, reads go to the replica of the owning node and writes to its master', async (t) => {
  const rs = await startSidecar(t, cluster, { readFrom: 'replica' });
  const c = sidecarClient(t, rs);
  const per = keysPerMaster(cluster.config, 'rr:', 3);
  const keys = [...per.values()].flat();
  // write through the sidecar (master), wait for replication on every master
  for (const k of keys) t.equal(await c.set(k, `r-${k}`), 'OK');
  for (const m of masters()) await direct.get(m)!.call('WAIT', '1', '5000');
  const replicaOf = new Map(cluster.shards.map((s) => [s.master.address, s.replicas[0]!.address]));
  const replicaClient = new Map([...replicaOf].map(([m, r]) => [m, directClient(t, r)]));
  const calls = async (r: Redis) => commandCalls(await r.info('commandstats'));
  // (the masters' GET counts move with the sidecars' own version checks: the replicas' do not)
  const before = await Promise.all(masters().map((m) => calls(replicaClient.get(m)!)));
  for (const k of keys) t.equal(await c.get(k), `r-${k}`, `${k} read back`);
  const after = await Promise.all(masters().map((m) => calls(replicaClient.get(m)!)));
  masters().forEach((m, i) => {
    t.equal((after[i]!.get ?? 0) - (before[i]!.get ?? 0), per.get(m)!.length, `the replica of ${m} served its ${per.get(m)!.length} GETs`);
  });
  // a value only the replica holds (made writable for a moment) is what the replica policy reads
  const k0 = keys[0]!;
  const rc = replicaClient.get(ownerOf(cluster.config, k0))!;
  await rc.config('SET', 'replica-read-only', 'no');
  t.teardown(async () => {
    await rc.set(k0, `r-${k0}`).catch(() => undefined);
    await rc.config('SET', 'replica-read-only', 'yes').catch(() => undefined);
  });
  await rc.set(k0, 'replica-only');
  t.equal(await c.get(k0), 'replica-only', 'the replica-policy sidecar reads the replica');
  t.equal(await app.get(k0), `r-${k0}`, 'the master-policy sidecar reads the master');
  await rc.set(k0, `r-${k0}`);
  await rc.config('SET', 'replica-read-only', 'yes');
  // writes still go to the master (the replica would refuse them with READONLY)
  t.equal(await c.set(keys[0]!, 'w'), 'OK');
  t.equal(await direct.get(ownerOf(cluster.config, keys[0]!))!.get(keys[0]!), 'w');
  // a cross-node MGET reads from the replicas as well
  const mb = await calls(replicaClient.get(masters()[0]!)!);
  await direct.get(masters()[0]!)!.call('WAIT', '1', '5000');
  t.same(await c.mget(keys[0]!, keys[3]!, keys[6]!), ['w', `r-${keys[3]}`, `r-${keys[6]}`]);
  const ma = await calls(replicaClient.get(masters()[0]!)!);
  t.equal((ma.mget ?? 0) - (mb.mget ?? 0), 1, 'the MGET fragment for the first node went to its replica');
});

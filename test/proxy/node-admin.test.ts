/**
 * Node administration through the sidecar (docs/conformance.md, "Node administration"): CONFIG
 * SET of a node tunable reaches every node, masters and replicas; CONFIG GET answers with the
 * nodes' values and the sidecar's own; settings the cluster depends on are refused by name and
 * reach no node; CONFIG RESETSTAT resets every node's statistics. And a client that breaks the
 * protocol gets Redis's error and a closed connection, as from Redis.
 */
import t from 'tap';
import net from 'node:net';
import Redis from 'ioredis';
import { startCluster, directClient } from '../helpers/cluster';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import type { Sidecar } from '../../src/proxy/sidecar';
import { RawClient, keysPerMaster, sidecarClient, startSidecar } from './helpers';
import { encodeCommand } from '../../src/resp/request-parser';

let cluster: LocalCluster;
let sidecar: Sidecar;
let app: Redis;
const nodes: Redis[] = [];

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  sidecar = await startSidecar(t, cluster);
  app = sidecarClient(t, sidecar);
  for (const s of cluster.shards) for (const p of [s.master, ...s.replicas]) nodes.push(directClient(t, p.address));
});

const everyNode = async (name: string): Promise<string[]> => Promise.all(nodes.map(async (n) => ((await n.config('GET', name)) as string[])[1]!));

t.test('CONFIG SET of a node tunable reaches every master and replica, and CONFIG GET answers with it', async (t) => {
  t.equal(nodes.length, 6, 'three masters and three replicas');
  t.equal(await app.config('SET', 'hash-max-listpack-entries', '77', 'maxmemory-policy', 'allkeys-lru'), 'OK');
  t.same(await everyNode('hash-max-listpack-entries'), Array(6).fill('77'), 'every node has the new value');
  t.same(await everyNode('maxmemory-policy'), Array(6).fill('allkeys-lru'));
  t.same(await app.config('GET', 'hash-max-listpack-entries'), ['hash-max-listpack-entries', '77'], 'CONFIG GET: the nodes\' value');
  await app.config('SET', 'maxmemory-policy', 'noeviction');
});

t.test('CONFIG GET answers the sidecar\'s own settings for its port, client limit and slow log', async (t) => {
  t.same(await app.config('GET', 'port'), ['port', String(sidecar.options.port)]);
  t.same(await app.config('GET', 'databases'), ['databases', '1']);
  t.equal(await app.config('SET', 'slowlog-log-slower-than', '1234'), 'OK');
  t.same(await app.config('GET', 'slowlog-log-slower-than'), ['slowlog-log-slower-than', '1234'], 'the sidecar\'s slow log');
  t.equal(sidecar.slowlog.threshold, 1234);
  t.not(await everyNode('slowlog-log-slower-than').then((v) => v[0]), '1234', 'the nodes\' own slow log untouched');
  const all = (await app.config('GET', '*')) as string[];
  t.ok(all.includes('maxmemory') && all.includes('port'), 'CONFIG GET * lists the nodes\' settings and the sidecar\'s');
  t.equal(all.filter((x, i) => i % 2 === 0 && x === 'port').length, 1, 'port once');
});

t.test('settings the cluster depends on are refused by name and reach no node', async (t) => {
  const before = await everyNode('dir');
  for (const [name, value] of [['dir', '/tmp'], ['replicaof', 'no one'], ['masterauth', 'x'], ['requirepass', 'x'], ['port', '1'], ['tls-port', '1'], ['repl-backlog-size', '1mb']]) {
    await t.rejects(app.config('SET', name!, value!), new RegExp(`^ERR ringside: CONFIG SET ${name} is refused through the sidecar`), name!);
  }
  await t.rejects(app.config('SET', 'maxmemory', '100mb', 'dir', '/tmp'), /CONFIG SET dir is refused/, 'one refused setting refuses the whole call');
  t.same(await everyNode('dir'), before, 'no node moved its files');
  t.same(await everyNode('requirepass'), Array(6).fill(''), 'no node got a password');
  t.same(await everyNode('maxmemory'), Array(6).fill('0'), 'nor the setting beside the refused one');
  await t.rejects(app.config('REWRITE'), /CONFIG REWRITE is not supported/);
});

t.test('a value a node refuses comes back as the node\'s own error', async (t) => {
  await t.rejects(app.config('SET', 'maxmemory-policy', 'no-such-policy'), /CONFIG SET failed \(possibly related to argument 'maxmemory-policy'\)/);
});

t.test('CONFIG RESETSTAT resets every node\'s statistics', async (t) => {
  for (let i = 0; i < 20; i++) await app.set(`stat:${i}`, 'x');
  const calls = async (): Promise<number> => {
    let n = 0;
    for (const c of nodes.slice(0)) n += Number(/cmdstat_set:calls=(\d+)/.exec(await c.info('commandstats'))?.[1] ?? 0);
    return n;
  };
  t.ok((await calls()) >= 20, 'the SETs are counted on the nodes');
  t.equal(await app.config('RESETSTAT'), 'OK');
  t.equal(await calls(), 0, 'every node starts counting again');
});

t.test('a client that breaks the protocol gets Redis\'s error, then the connection closes while it keeps sending', async (t) => {
  for (const start of ['\x00', '*\x00', '$\x00']) {
    const sock = net.connect(sidecar.options.port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => (got += d.toString('latin1')));
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.on('error', () => undefined);
    await new Promise<void>((resolve) => sock.on('connect', () => resolve()));
    sock.write(start);
    // like Redis's own desync test: keep writing a line that never ends, until the write fails
    const chunk = Buffer.alloc(4096, 'A');
    let sent = 0;
    let gaveUp = false;
    const writer = setInterval(() => {
      if (sock.destroyed) return clearInterval(writer);
      if (sent > 32 * 1024 * 1024) {
        // never closed: stop, and end our side so the test ends (and fails below)
        gaveUp = true;
        clearInterval(writer);
        return void sock.end();
      }
      sock.write(chunk);
      sent += chunk.length;
    }, 1);
    await closed;
    clearInterval(writer);
    t.match(got, /^-ERR Protocol error/, `${JSON.stringify(start)}: the protocol error first`);
    t.notOk(gaveUp, `${JSON.stringify(start)}: the sidecar closed the connection (after ${sent} bytes sent)`);
  }
  t.equal(await app.ping(), 'PONG', 'other clients are served');
});

const resp = (...args: string[]): Buffer => encodeCommand(args);

t.test('CLIENT REPLY OFF drops the replies of the commands that follow, ON brings them back, SKIP drops one', async (t) => {
  const c = await RawClient.connect(t, sidecar.options.port);
  c.write(Buffer.concat([resp('CLIENT', 'REPLY', 'OFF'), resp('SET', 'reply:a', '1'), resp('GET', 'reply:a'), resp('CLIENT', 'REPLY', 'ON'), resp('GET', 'reply:a')]));
  t.same(await c.waitReplies(2), ['OK', '1'], 'only ON\'s OK and the last GET are answered');
  c.write(Buffer.concat([resp('CLIENT', 'REPLY', 'SKIP'), resp('INCR', 'reply:a'), resp('GET', 'reply:a')]));
  t.same((await c.waitReplies(3)).slice(2), ['2'], 'SKIP: neither SKIP nor the INCR answered; the GET sees the INCR ran');
  c.write(Buffer.concat([resp('CLIENT', 'REPLY', 'OFF'), resp('RESET'), resp('PING')]));
  t.same((await c.waitReplies(5)).slice(3), ['RESET', 'PONG'], 'RESET turns replies back on');
  await t.rejects(app.call('CLIENT', 'REPLY', 'MAYBE'), /syntax error/);
});

t.test('with CLIENT REPLY OFF a RESP3 subscriber still gets its confirmations and messages: they are pushes', async (t) => {
  const sock = net.connect(sidecar.options.port, '127.0.0.1');
  t.teardown(() => sock.destroy());
  let got = '';
  sock.on('data', (d) => (got += d.toString('latin1')));
  const until = async (re: RegExp): Promise<boolean> => {
    for (let i = 0; i < 200 && !re.test(got); i++) await new Promise((r) => setTimeout(r, 10));
    return re.test(got);
  };
  sock.write(Buffer.concat([resp('HELLO', '3'), resp('CLIENT', 'REPLY', 'OFF'), resp('SUBSCRIBE', 'reply:ch')]));
  t.ok(await until(/>3\r\n\$9\r\nsubscribe\r\n\$8\r\nreply:ch\r\n:1\r\n/), 'the confirmation, as a push');
  t.equal(await app.publish('reply:ch', 'hello'), 1);
  t.ok(await until(/>3\r\n\$7\r\nmessage\r\n\$8\r\nreply:ch\r\n\$5\r\nhello\r\n/), 'the message, as a push');
  t.notMatch(got, /\+OK/, 'no reply to CLIENT REPLY OFF');
});

t.test('with CLIENT REPLY OFF a RESP2 subscriber gets its confirmations too, as from Redis', async (t) => {
  const c = await RawClient.connect(t, sidecar.options.port);
  c.write(Buffer.concat([resp('CLIENT', 'REPLY', 'OFF'), resp('PSUBSCRIBE', 'reply2:*')]));
  t.same((await c.waitReplies(1))[0], ['psubscribe', 'reply2:*', 1]);
});

t.test('INFO carries what only the nodes know: blocked clients, changes since the last save, the Redis version', async (t) => {
  const version = ((await nodes[0]!.info('server')).match(/redis_version:(\S+)/) ?? [])[1];
  t.match(await app.info('server'), new RegExp(`redis_version:${version!.replace(/\./g, '\\.')}\\r\\n`), 'the nodes\' version');
  await app.set('info:changed', '1');
  t.match(await app.info('persistence'), /rdb_changes_since_last_save:[1-9]\d*\r\n/);
  t.match(await app.info('clients'), /blocked_clients:0\r\n/);
  const blocker = sidecarClient(t, sidecar);
  const popped = blocker.blpop('info:list', 0);
  let blocked = '';
  for (let i = 0; i < 200 && !/blocked_clients:1\r\n/.test(blocked); i++) {
    blocked = await app.info('clients');
    await new Promise((r) => setTimeout(r, 25));
  }
  t.match(blocked, /blocked_clients:1\r\n/, 'a BLPOP through the sidecar is counted');
  await app.rpush('info:list', 'x');
  t.same(await popped, ['info:list', 'x']);
  t.match(await app.info(), /# Clients\r\nconnected_clients:\d+\r\nblocked_clients:0\r\n/, 'INFO with no section too');
});

t.test('keyspace notifications from every master reach a subscriber through the sidecar, each once', async (t) => {
  t.equal(await app.config('SET', 'notify-keyspace-events', 'Ex'), 'OK');
  t.teardown(() => app.config('SET', 'notify-keyspace-events', '').then(
    () => undefined,
    () => undefined,
  ));
  t.same(await everyNode('notify-keyspace-events'), Array(6).fill('xE'), 'set on every node');
  const sub = sidecarClient(t, sidecar);
  const got: string[] = [];
  sub.on('pmessage', (_p: string, _ch: string, key: string) => got.push(key));
  t.equal(await sub.psubscribe('__keyevent@0__:expired'), 1);
  const plain = sidecarClient(t, sidecar);
  const seen: string[] = [];
  plain.on('message', (_ch: string, key: string) => seen.push(key));
  await plain.subscribe('__keyevent@0__:expired');
  const wide = sidecarClient(t, sidecar);
  const all: string[] = [];
  wide.on('pmessage', (_p: string, ch: string, key: string) => {
    if (ch === '__keyevent@0__:expired') all.push(key);
  });
  t.equal(await wide.psubscribe('*'), 1, 'a pattern that matches everything');
  const per = keysPerMaster(cluster.config, 'ksn:', 4);
  const keys = [...per.values()].flat();
  t.equal(per.size, 3, 'keys on three masters');
  for (const k of keys) await app.set(k, 'x', 'PX', 20);
  for (let i = 0; i < 400 && (got.length < keys.length || seen.length < keys.length); i++) await new Promise((r) => setTimeout(r, 25));
  t.same([...got].sort(), [...keys].sort(), 'PSUBSCRIBE: every expiry, once');
  t.same([...seen].sort(), [...keys].sort(), 'SUBSCRIBE: the same');
  for (let i = 0; i < 200 && all.length < keys.length; i++) await new Promise((r) => setTimeout(r, 25));
  t.same([...all].sort(), [...keys].sort(), 'PSUBSCRIBE *: every expiry too, once');
  t.equal(await app.publish('ksn:plain', 'm'), 1, 'a classic PUBLISH is received once by the * subscriber (counted at the hub only)');
  t.equal(await sub.punsubscribe('__keyevent@0__:expired'), 0, 'unsubscribed everywhere');
});

t.test('bad arguments get the node\'s own error text, word for word', async (t) => {
  const cases: string[][] = [
    ['PING', 'x', 'y', 'z'],
    ['EVAL', 'return 1', '-1'],
    ['EVAL', 'return 1', 'x'],
    ['EVAL', 'return 1', '3', 'k'],
    ['ZUNION', '0', 'k'],
    ['ZUNION', 'x', 'k'],
    ['ZUNION', '3', 'k'],
    ['ZINTERSTORE', 'd', '0', 'k'],
    ['ZINTERCARD', '0', 'k'],
    ['ZMPOP', '0', 'k', 'MIN'],
    ['SINTERCARD', '0', 'k'],
    ['SINTERCARD', '2', 'k'],
    ['LMPOP', '-1', 'k', 'LEFT'],
    ['SORT_RO', 'k', 'STORE', 'd'],
    ['FCALL', 'ctest', 'x'],
    ['FCALL', 'ctest', '-1', 'k'],
    ['FCALL', 'ctest', '10', 'k'],
    ['FUNCTION', 'bad_subcommand'],
  ];
  // a function on every master (FUNCTION LOAD through the sidecar), and on the node compared with
  await app.call('FUNCTION', 'LOAD', "#!lua name=conftest\nredis.register_function('ctest', function() return 1 end)");
  t.teardown(() => app.call('FUNCTION', 'DELETE', 'conftest').then(
    () => undefined,
    () => undefined,
  ));
  const errorOf = (c: Redis, args: string[]): Promise<string> =>
    c.call(args[0]!, ...args.slice(1)).then(
      (v) => `no error: ${JSON.stringify(v)}`,
      (e: Error) => e.message,
    );
  for (const args of cases) t.equal(await errorOf(app, args), await errorOf(nodes[0]!, args), args.join(' '));
  // (PFSELFTEST, also sent to a master now, is left out: it keeps a node busy for longer than the
  // tests' 300 ms down-after on a loaded machine, and the node is failed over; unit/hyperloglog runs it)
  for (const args of [['OBJECT', 'HELP'], ['XINFO', 'HELP'], ['XGROUP', 'HELP'], ['MEMORY', 'HELP'], ['FUNCTION', 'HELP'], ['SCRIPT', 'HELP']])
    t.same(await app.call(args[0]!, ...args.slice(1)), await nodes[0]!.call(args[0]!, ...args.slice(1)), `${args.join(' ')}: the node's help`);
});

t.test('CLIENT UNBLOCK unblocks a client of the sidecar blocked on a node, with TIMEOUT or ERROR', async (t) => {
  const waitBlocked = async (n: number): Promise<void> => {
    for (let i = 0; i < 200 && !new RegExp(`blocked_clients:${n}\\r\\n`).test(await app.info('clients')); i++) await new Promise((r) => setTimeout(r, 25));
  };
  const a = sidecarClient(t, sidecar);
  const id = String(await a.client('ID'));
  t.equal(await app.call('CLIENT', 'UNBLOCK', id), 0, 'not blocked: 0');
  const popped = a.blpop('unblock:list', 0);
  await waitBlocked(1);
  t.equal(await app.call('CLIENT', 'UNBLOCK', id), 1, 'blocked: unblocked');
  t.equal(await popped, null, 'TIMEOUT: the blocked command returns as if it had timed out');
  const again = a.blpop('unblock:list', 0).then(
    () => 'no error',
    (e: Error) => e.message,
  );
  await waitBlocked(1);
  t.equal(await app.call('CLIENT', 'UNBLOCK', id, 'ERROR'), 1);
  t.match(await again, /^UNBLOCKED/, 'ERROR: the node\'s UNBLOCKED error');
  await t.rejects(app.call('CLIENT', 'UNBLOCK', id, 'SOMETIMES'), /TIMEOUT or ERROR/);
});


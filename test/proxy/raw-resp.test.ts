/**
 * Raw sockets to the sidecar: inline commands, pipelines written byte by byte, malformed RESP
 * (an error reply, then the connection closes, after every earlier command was answered in
 * order), and the configured size limits. Another client keeps working throughout.
 */
import t from 'tap';
import { startCluster, directClient } from '../helpers/cluster';
import type { LocalCluster } from '../../src/embedded/local-cluster';
import { RawClient, keysPerMaster, ownerOf, resp, sidecarClient, startSidecar } from './helpers';
import Redis from 'ioredis';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sidecar } from '../../src/proxy/sidecar';

let cluster: LocalCluster;
let sidecar: Sidecar;
let other: Redis;
const limits = { maxBulkLen: 1024, maxArgs: 16, maxInline: 256 };

t.before(async () => {
  cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  sidecar = await startSidecar(t, cluster, { limits });
  other = sidecarClient(t, sidecar);
});

const port = () => sidecar.options.port;
const isErr = (r: unknown, re: RegExp) => r instanceof Error && re.test(r.message);

t.test('inline commands: telnet style, quotes and escapes, empty lines skipped', async (t) => {
  const c = await RawClient.connect(t, port());
  c.write('PING\r\n\r\n  \r\nSET inl "a b\\x41\\n"\r\nGET inl\nECHO \'x y\'\r\nEXISTS inl nosuch\r\n');
  const r = await c.waitReplies(5);
  t.same(r, ['PONG', 'OK', 'a bA\n', 'x y', 1]);
  t.equal(await directClient(t, ownerOf(cluster.config, 'inl')).get('inl'), 'a bA\n', 'the inline SET went to the owner');
  t.notOk(c.closed);
});

t.test('a pipeline written one byte at a time is answered in order', async (t) => {
  const per = keysPerMaster(cluster.config, 'bb:', 3);
  const keys = [...per.values()].flat();
  const cmds: Buffer[] = [];
  const expected: unknown[] = [];
  keys.forEach((k, i) => {
    cmds.push(resp('SET', k, `v${i}`));
    expected.push('OK');
  });
  cmds.push(resp('MGET', ...keys));
  expected.push(keys.map((_, i) => `v${i}`));
  keys.forEach((k, i) => {
    cmds.push(resp('GET', k));
    expected.push(`v${i}`);
    cmds.push(Buffer.from(`INCR bb:n\r\n`));
    expected.push(i + 1);
  });
  cmds.push(resp('DEL', ...keys));
  expected.push(keys.length);
  const bytes = Buffer.concat(cmds);
  const c = await RawClient.connect(t, port());
  c.socket.setNoDelay(true);
  for (let i = 0; i < bytes.length; i++) {
    c.write(bytes.subarray(i, i + 1));
    if (i % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  t.same(await c.waitReplies(expected.length), expected);
});

t.test('malformed RESP gets an error reply after every earlier command is answered, then the connection closes', async (t) => {
  const per = keysPerMaster(cluster.config, 'mf:', 20);
  const keys = [...per.values()].flat();
  const c = await RawClient.connect(t, port());
  const before = Buffer.concat(keys.map((k) => resp('SET', k, 'x')));
  // good commands (to every node), the malformed one, then a good one that must not run
  c.write(Buffer.concat([before, resp('GET', keys[0]!), Buffer.from('*2\r\n$3\r\nGET\r\n:12\r\n'), resp('SET', 'mf:after', '1')]));
  await c.waitClosed();
  const r = c.replies;
  t.equal(r.length, keys.length + 2, 'one reply per earlier command, plus the error, nothing more');
  t.ok(r.slice(0, keys.length).every((x) => x === 'OK'), 'the SETs, in order');
  t.equal(r[keys.length], 'x', 'the GET before it');
  t.ok(isErr(r[keys.length + 1], /^ERR Protocol error: expected '\$', got ':'/), String(r[keys.length + 1]));
  t.equal(await other.exists('mf:after'), 0, 'the command after it was never run');
  t.equal(await other.ping(), 'PONG', 'another client keeps working');
});

const BAD: Array<[string, Buffer, RegExp]> = [
  ['a bad multibulk length', Buffer.from('*abc\r\n'), /invalid multibulk length/],
  ['a bad bulk length', Buffer.from('*1\r\n$x\r\n'), /invalid bulk length/],
  ['a bulk not followed by CRLF', Buffer.from('*1\r\n$4\r\nPINGxx'), /bulk argument not followed by CRLF/],
  [`a bulk over maxBulkLen (${limits.maxBulkLen})`, resp('SET', 'big', Buffer.alloc(limits.maxBulkLen + 1, 0x61)), /invalid bulk length/],
  [`more arguments than maxArgs (${limits.maxArgs})`, resp('DEL', ...Array.from({ length: limits.maxArgs }, (_, i) => `k${i}`)), /invalid multibulk length/],
  [`an inline line over maxInline (${limits.maxInline})`, Buffer.from(`SET k ${'v'.repeat(limits.maxInline)}\r\n`), /too big inline request/],
  ['unbalanced quotes inline', Buffer.from('SET k "open\r\n'), /unbalanced quotes/],
];

t.test('malformed input and input over the limits: an error, the close, and the sidecar serves on', async (t) => {
  for (const [what, bytes, re] of BAD) {
    const c = await RawClient.connect(t, port());
    c.write(Buffer.concat([Buffer.from('PING\r\n'), bytes]));
    await c.waitClosed();
    t.equal(c.replies.length, 2, `${what}: PONG then one error`);
    t.equal(c.replies[0], 'PONG');
    t.ok(isErr(c.replies[1], re), `${what}: ${String(c.replies[1])}`);
    t.equal(await other.ping(), 'PONG', `${what}: others unaffected`);
  }
  t.notOk(await other.exists('big'), 'the oversized SET did not run');
});

t.test('a bulk exactly at maxBulkLen and a command with maxArgs arguments pass', async (t) => {
  const c = await RawClient.connect(t, port());
  c.write(resp('SET', '{lim}big', Buffer.alloc(limits.maxBulkLen, 0x62)));
  c.write(resp('DEL', ...Array.from({ length: limits.maxArgs - 1 }, (_, i) => `{lim}${i}`)));
  const r = await c.waitReplies(2);
  t.same(r, ['OK', 0]);
  t.equal((await other.strlen('{lim}big')), limits.maxBulkLen);
});

t.test('empty multibulk headers are skipped; QUIT in a pipeline ends it there, after the commands before it', async (t) => {
  const per = keysPerMaster(cluster.config, 'qb:', 2);
  const keys = [...per.values()].flat();
  const c = await RawClient.connect(t, port());
  c.write(Buffer.concat([Buffer.from('*0\r\n*-1\r\nPING\r\n'), ...keys.map((k) => resp('SET', k, 'q')), Buffer.from('QUIT\r\nSET quit:after 1\r\n')]));
  await c.waitClosed();
  t.same(c.replies, ['PONG', ...keys.map(() => 'OK'), 'OK']);
  t.equal(await other.exists('quit:after'), 0, 'nothing after QUIT runs');
});

t.test('random garbage from many clients never brings the sidecar down', async (t) => {
  let seed = 99;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const clients: RawClient[] = [];
  for (let i = 0; i < 40; i++) {
    const c = await RawClient.connect(t, port());
    const good = resp('SET', `g:${i}`, 'v');
    const junk = Buffer.alloc(1 + Math.floor(rand() * 300));
    for (let k = 0; k < junk.length; k++) junk[k] = Math.floor(rand() * 256);
    if (i % 3 === 0) junk[0] = 0x2a; // '*': a multibulk header of garbage
    c.write(Buffer.concat([good, junk]));
    clients.push(c);
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const c of clients) c.socket.destroy();
  t.equal(await other.ping(), 'PONG', 'still serving');
  let n = 0;
  for (let i = 0; i < 40; i += 10) n += await other.exists(...Array.from({ length: 10 }, (_, k) => `g:${i + k}`));
  t.equal(n, 40, 'every good command before the garbage ran');
});

t.test('with default limits, an 8 MB value round trips through a split pipeline', async (t) => {
  const big = await startSidecar(t, cluster);
  const c = sidecarClient(t, big);
  const v = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < v.length; i++) v[i] = (i * 7) & 0xff;
  const p = c.pipeline().set('big:1', v).get('ping:x').getBuffer('big:1').strlen('big:1');
  const res = (await p.exec())!;
  t.equal(res[0]![1], 'OK');
  t.ok((res[2]![1] as Buffer).equals(v), 'the value comes back byte for byte');
  t.equal(res[3]![1], v.length);
});

t.test('a client that half-closes after writing its pipeline still gets every reply', async (t) => {
  // like `printf 'SET a 1\r\nGET a\r\n' | nc -N host port`: the write side closes before the replies come back
  const per = keysPerMaster(cluster.config, 'hc:', 5);
  const keys = [...per.values()].flat();
  const c = new RawClient(port());
  t.teardown(() => c.socket.destroy());
  c.socket.on('connect', () => {
    c.socket.end(Buffer.concat([...keys.map((k) => resp('SET', k, 'h')), resp('MGET', ...keys.slice(0, 3)), Buffer.from('PING\r\n')]));
  });
  await c.waitClosed();
  t.equal(c.replies.length, keys.length + 2, `${c.replies.length} replies of ${keys.length + 2}`);
  t.same(c.replies.slice(keys.length), [['h', 'h', 'h'], 'PONG']);
  let n = 0;
  for (let i = 0; i < keys.length; i += 10) n += await other.exists(...keys.slice(i, i + 10));
  t.equal(n, keys.length, 'every SET ran');
});

t.test('a Unix socket listener with the asked permissions serves like the TCP one', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringside-sock-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'ringside.sock');
  await startSidecar(t, cluster, { unixsocket: sock, unixsocketperm: 0o700 });
  t.equal(fs.statSync(sock).mode & 0o777, 0o700, 'permissions as unixsocketperm');
  const c = new Redis({ path: sock, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => undefined);
  t.teardown(() => c.disconnect());
  t.equal(await c.set('unix:k', 'u'), 'OK');
  t.equal(await c.get('unix:k'), 'u');
  t.equal(await directClient(t, ownerOf(cluster.config, 'unix:k')).get('unix:k'), 'u');
});

t.test('a port already taken gives a clear error', async (t) => {
  const s = new Sidecar({ seeds: cluster.seeds, port: port() });
  await t.rejects(s.start(), /already in use.*--port/);
  await s.stop(0).catch(() => undefined);
  t.equal(await other.ping(), 'PONG', 'the sidecar holding the port is unaffected');
});

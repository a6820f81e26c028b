/**
 * Faults on the data path: a node killed mid-pipeline, a node that stops answering, a node that
 * sends bytes that are not RESP, and a client that does not read its replies. The affected
 * commands get an error naming the node; everything else keeps flowing.
 */
import t from 'tap';
import net from 'node:net';
import { startCluster, directClient } from '../helpers/cluster';
import { ClusterConfig, SlotTable } from '../../src/cluster/config';
import { controlClient, writeEverywhere } from '../../src/cluster/store';
import { NodeConnection, NodeError, Pending } from '../../src/proxy/node-connection';
import { RawClient, keysPerMaster, ownerOf, resp, sidecarClient, startSidecar } from './helpers';

const isErr = (r: unknown, re: RegExp) => r instanceof Error && re.test(r.message);

/** The shard name of the node at `address`. */
function nameOf(config: ClusterConfig, address: string): string {
  return Object.entries(config.nodes).find(([, n]) => n.master === address || n.replicas.includes(address))![0];
}

t.test('a master killed mid-pipeline: its commands get an error naming it, the others succeed, the sidecar serves on', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster, { nodeTimeoutMs: 5000 });
  const victim = cluster.shards[0]!.master;
  const name = nameOf(cluster.config, victim.address);
  const per = keysPerMaster(cluster.config, 'kill:', 30);
  const order: string[] = [];
  for (let i = 0; i < 30; i++) for (const l of per.values()) order.push(l[i]!);
  const c = await RawClient.connect(t, sidecar.options.port);
  // warm the node connections
  c.write(Buffer.concat(order.map((k) => resp('SET', k, 'before'))));
  await c.waitReplies(order.length);
  t.ok(c.replies.every((r) => r === 'OK'), 'every SET succeeded before the kill');
  // stop the victim so the next pipeline is in flight inside the sidecar, then kill it
  victim.pause();
  c.write(Buffer.concat(order.map((k) => resp('INCR', `{${k}}n`))));
  await new Promise((r) => setTimeout(r, 200));
  await victim.kill('SIGKILL');
  // after the kill: more commands, to every node
  c.write(Buffer.concat(order.map((k) => resp('GET', k))));
  const all = await c.waitReplies(order.length * 3, 20_000);
  const mid = all.slice(order.length, order.length * 2);
  const after = all.slice(order.length * 2);
  let victimErrors = 0;
  let othersOk = 0;
  order.forEach((k, i) => {
    const onVictim = ownerOf(cluster.config, k) === victim.address;
    if (onVictim) {
      if (isErr(mid[i], new RegExp(`node ${name} master \\(${victim.address}\\)`)) && isErr(after[i], new RegExp(`${victim.address}`))) victimErrors++;
      else t.fail(`${k}: ${String(mid[i])} / ${String(after[i])}`);
    } else if (mid[i] === 1 && after[i] === 'before') othersOk++;
    else t.fail(`${k} on a live node: ${String(mid[i])} / ${String(after[i])}`);
  });
  t.equal(victimErrors, 30, 'every command for the killed node failed with an error naming it');
  t.equal(othersOk, 60, 'every command for the live nodes succeeded, in order');
  t.match(String((mid.find((r) => r instanceof Error) as Error).message), /lost|may or may not have run/, 'the in-flight error says the command may have run');
  t.notOk(c.closed, 'the client connection stays open');
  const app = sidecarClient(t, sidecar);
  t.equal(await app.ping(), 'PONG', 'the sidecar serves on');
  const live = per.get(cluster.shards[1]!.master.address)![0]!;
  t.equal(await app.get(live), 'before');
  await t.rejects(app.get(per.get(victim.address)![0]!), new RegExp(`node ${name} master \\(${victim.address}\\)`), 'a new command for the dead node fails naming it');
  // a cross-node MGET with one dead fragment fails as a whole, naming the node
  await t.rejects(app.mget(per.get(victim.address)![1]!, live), new RegExp(victim.address));
});

t.test('a paused master with a short node timeout: its commands time out naming it, other clients flow meanwhile', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster, { nodeTimeoutMs: 1500, leaseMs: 30_000 });
  const victim = cluster.shards[1]!.master;
  const name = nameOf(cluster.config, victim.address);
  t.teardown(() => {
    if (victim.paused) victim.resume();
  });
  const per = keysPerMaster(cluster.config, 'pz:', 2);
  const victimKey = per.get(victim.address)![0]!;
  const liveKeys = [...per].filter(([m]) => m !== victim.address).flatMap(([, l]) => l);
  const a = sidecarClient(t, sidecar);
  const b = sidecarClient(t, sidecar);
  await a.set(victimKey, 'v');
  for (const k of liveKeys) await b.set(k, 'live');
  victim.pause();
  let aDone = false;
  const stuck = a
    .pipeline()
    .get(liveKeys[0]!)
    .get(victimKey)
    .get(liveKeys[1]!)
    .exec()
    .finally(() => (aDone = true));
  // while a's pipeline waits on the paused node, b's commands to the other nodes complete
  for (const k of liveKeys) t.equal(await b.get(k), 'live', `${k} served while ${victim.address} is paused`);
  t.notOk(aDone, "b's commands completed while a's pipeline was still waiting for the paused node");
  const res = (await stuck)!;
  t.same(res[0], [null, 'live'], 'the command before it, in order');
  t.ok(res[1]![0] && new RegExp(`node ${name} master \\(${victim.address}\\) did not answer within 1500 ms`).test(res[1]![0].message), String(res[1]![0]?.message));
  t.same(res[2], [null, 'live'], 'the command after it, in order');
  victim.resume();
  // once it answers again, a later command reaches it (after the retry delay)
  let value: string | null = null;
  for (let i = 0; i < 100 && value === null; i++) {
    value = await a.get(victimKey).catch(() => null);
    if (value === null) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(value, 'v', 'the node serves again through the sidecar after it resumes');
});

/** A fake data node: answers each command with the next entry of `script` (then repeats the last). */
async function fakeNode(t: { teardown(f: () => unknown): void }, script: Array<string | ((s: net.Socket) => void)>): Promise<{ address: string; connections: number }> {
  const state = { address: '', connections: 0 };
  const sockets = new Set<net.Socket>();
  let i = 0; // the script runs on across connections
  const server = net.createServer((sock) => {
    state.connections++;
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
    sock.on('data', (d: Buffer) => {
      // one answer per command: count the multibulk headers
      const n = (d.toString('latin1').match(/(^|\r\n)\*\d+\r\n/g) ?? []).length || 1;
      for (let k = 0; k < n; k++) {
        const step = script[Math.min(i++, script.length - 1)]!;
        if (typeof step === 'string') sock.write(step);
        else step(sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  state.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return state;
}

class Collect implements Pending {
  replies: string[] = [];
  errors: NodeError[] = [];
  onReply(buf: Buffer, s: number, e: number): void {
    this.replies.push(buf.toString('latin1', s, e));
  }
  onError(err: NodeError): void {
    this.errors.push(err);
  }
  get settled(): number {
    return this.replies.length + this.errors.length;
  }
}

async function until(what: string, f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('a node connection that gets a malformed reply fails what is in flight with an error naming the node', async (t) => {
  const fake = await fakeNode(t, ['+OK\r\n', '!garbage\r\n']);
  const downs: string[] = [];
  const conn = new NodeConnection(fake.address, { timeoutMs: 5000, connectTimeoutMs: 1000, retryDelayMs: 0, label: 'node z master (fake)', onDown: (_c, e) => downs.push(e.message) });
  t.teardown(() => conn.close());
  const ps = [new Collect(), new Collect(), new Collect()];
  const cmd = resp('GET', 'k');
  ps.forEach((p) => conn.send(cmd, 0, cmd.length, p));
  await until('all settled', () => ps.every((p) => p.settled === 1));
  t.same(ps[0]!.replies, ['+OK\r\n'], 'the reply before the garbage is delivered');
  for (const p of ps.slice(1)) {
    t.equal(p.errors.length, 1);
    t.match(p.errors[0]!.message, /^ERR ringside: node z master \(fake\) sent a malformed reply/, p.errors[0]!.message);
    t.equal(p.errors[0]!.kind, 'protocol');
  }
  t.equal(downs.length, 1, 'the node is reported down once');
});

t.test('a node that writes half a reply and closes: the command fails naming the node, and a reconnect works', async (t) => {
  const fake = await fakeNode(t, [
    (s) => {
      s.write('$10\r\nabc');
      setTimeout(() => s.destroy(), 50);
    },
    '+OK\r\n',
  ]);
  const conn = new NodeConnection(fake.address, { timeoutMs: 5000, connectTimeoutMs: 1000, retryDelayMs: 0, label: 'node y master (fake)' });
  t.teardown(() => conn.close());
  const p1 = new Collect();
  const cmd = resp('GET', 'k');
  conn.send(cmd, 0, cmd.length, p1);
  await until('p1 settled', () => p1.settled === 1);
  t.same(p1.replies, [], 'no partial frame is handed over');
  t.match(p1.errors[0]?.message ?? '', /connection to node y master \(fake\) lost/);
  const p2 = new Collect();
  conn.send(cmd, 0, cmd.length, p2);
  await until('p2 settled', () => p2.settled === 1);
  t.same(p2.replies, ['+OK\r\n'], 'the next command reconnects and gets a clean reply (the framer was reset)');
  t.equal(fake.connections, 2);
});

/** A cluster whose first node's replica is a fake node running `script`, and a replica-reading sidecar. */
async function clusterWithFakeReplica(t: tap.Test, script: string[]) {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const fake = await fakeNode(t, script);
  // point node X's replica at the fake node, in a newer configuration on every master
  const x = SlotTable.from(cluster.config).names[0]!;
  const next: ClusterConfig = {
    ...cluster.config,
    epoch: cluster.config.epoch + 1,
    nodes: { ...cluster.config.nodes, [x]: { master: cluster.config.nodes[x]!.master, replicas: [fake.address] } },
  };
  const clients = new Map(cluster.seeds.map((a) => [a, controlClient(a)]));
  t.teardown(() => clients.forEach((c) => c.disconnect()));
  const written = await writeEverywhere(clients, next);
  t.ok([...written.values()].every((w) => w === 'written'), 'the configuration is written');
  const sidecar = await startSidecar(t, cluster, { readFrom: 'replica' });
  const app = sidecarClient(t, sidecar);
  const per = keysPerMaster(next, 'fk:', 2);
  const xMaster = next.nodes[x]!.master;
  return {
    x,
    fake,
    app,
    xMaster,
    xKey: per.get(xMaster)![0]!,
    others: [...per].filter(([m]) => m !== xMaster).flatMap(([, l]) => l),
  };
}

t.test('commands written together are timed from that write: a node that answers the first and goes silent fails the rest with a timeout', async (t) => {
  const fake = await fakeNode(t, ['+OK\r\n', () => undefined]);
  const downs: string[] = [];
  const conn = new NodeConnection(fake.address, { timeoutMs: 300, connectTimeoutMs: 1000, retryDelayMs: 0, label: 'node s master (fake)', onDown: (_c, e) => downs.push(e.kind) });
  t.teardown(() => conn.close());
  const ps = [new Collect(), new Collect(), new Collect()];
  const cmd = resp('GET', 'k');
  ps.forEach((p) => conn.send(cmd, 0, cmd.length, p));
  await until('all settled', () => ps.every((p) => p.settled === 1));
  t.same(ps[0]!.replies, ['+OK\r\n'], 'the answered command gets its reply');
  for (const p of ps.slice(1)) {
    t.equal(p.errors[0]?.kind, 'timeout');
    t.match(p.errors[0]?.message ?? '', /^ERR ringside: node s master \(fake\) did not answer within 300 ms/);
  }
  t.same(downs, ['timeout'], 'the node is reported down once');
  t.equal(conn.inflight, 0);
});

t.test('a node that answers every command, one at a time, is not timed out however long the sequence runs', async (t) => {
  // each answer comes 50 ms after its command; 30 in a row take well over the 1000 ms timeout
  const fake = await fakeNode(t, [(s) => void setTimeout(() => s.write('+OK\r\n'), 50)]);
  const conn = new NodeConnection(fake.address, { timeoutMs: 1000, connectTimeoutMs: 1000, retryDelayMs: 0, label: 'node q master (fake)' });
  t.teardown(() => conn.close());
  const cmd = resp('GET', 'k');
  const started = Date.now();
  let ok = 0;
  for (let i = 0; i < 30; i++) {
    const p = new Collect();
    conn.send(cmd, 0, cmd.length, p);
    await until(`reply ${i}`, () => p.settled === 1);
    if (p.replies[0] === '+OK\r\n') ok++;
    else t.fail(`command ${i}: ${p.errors[0]?.message}`);
  }
  t.equal(ok, 30, 'every command answered');
  t.ok(Date.now() - started > 1000, 'the sequence outlasted the timeout (so the test means something)');
});

t.test('through the sidecar: a replica that speaks bad RESP gives errors naming it, and nothing else is affected', async (t) => {
  const { x, fake, app, xMaster, xKey, others } = await clusterWithFakeReplica(t, ['!garbage\r\n', '$-1\r\n']);
  t.equal(await app.set(xKey, 'w'), 'OK', 'writes for node X go to its master');
  t.equal(await directClient(t, xMaster).get(xKey), 'w');
  const res = (await app.pipeline().get(others[0]!).get(xKey).get(others[1]!).exec())!;
  t.same(res[0], [null, null]);
  const msg = res[1]![0]?.message ?? `no error: ${JSON.stringify(res[1])}`;
  t.match(msg, new RegExp(`node ${x} replica \\(${fake.address}\\) sent a malformed reply`), msg);
  t.same(res[2], [null, null], 'later commands still answered, in order');
  for (const k of others) t.equal(await app.set(k, 'ok'), 'OK');
  t.same(await app.mget(...others), others.map(() => 'ok'), 'the other nodes serve on');
  t.equal(await app.ping(), 'PONG', 'the sidecar serves on');
});

t.test('through the sidecar: a bulk reply not followed by CRLF is an error naming the node, not data for the app', async (t) => {
  const { x, fake, app, xKey } = await clusterWithFakeReplica(t, ['$3\r\nabcXY', '$-1\r\n']);
  const res = (await app.pipeline().get(xKey).exec())!;
  const msg = res[0]![0]?.message ?? `no error, the app got ${JSON.stringify(res[0]![1])}`;
  t.match(msg, new RegExp(`node ${x} replica \\(${fake.address}\\) sent a malformed reply`), msg);
});

t.test('a client that pipelines without reading is paused, not dropped, and gets every reply once it reads', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster, { outputLimit: 64 * 1024, maxInflight: 512 });
  const app = sidecarClient(t, sidecar);
  const value = 'x'.repeat(1000);
  const per = keysPerMaster(cluster.config, 'slow:', 4);
  const keys = [...per.values()].flat();
  await app.mset(...keys.flatMap((k) => [k, value]));
  const c = await RawClient.connect(t, sidecar.options.port);
  c.socket.pause(); // read nothing
  const N = 20_000;
  const parts: Buffer[] = [];
  for (let i = 0; i < N; i++) parts.push(resp('GET', keys[i % keys.length]!));
  c.write(Buffer.concat(parts));
  // the sidecar stops reading from this client once its output backs up
  const session = () => [...sidecar.sessions].find((s) => s.socket.remotePort === c.socket.localPort);
  await until('the sidecar pauses reading from the client', () => session()?.socket.isPaused() === true, 20_000);
  t.ok(session(), 'the client is still connected');
  // reading pauses after the chunk that crossed a limit: at most one read (64 KB) of commands more
  const perRead = Math.ceil(65536 / parts[0]!.length);
  t.ok(session()!.inflight <= 512 + perRead, `requests held for it stay bounded (${session()!.inflight} <= ${512 + perRead})`);
  t.equal(await app.ping(), 'PONG', 'other clients are served meanwhile');
  c.socket.resume();
  const replies = await c.waitReplies(N, 60_000);
  t.equal(replies.length, N, 'every reply arrives');
  t.ok(replies.every((r) => r === value), 'each one the value');
  t.notOk(c.closed);
});

t.test('clients that vanish with commands in flight do not disturb the replies other clients get', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sidecar = await startSidecar(t, cluster);
  const app = sidecarClient(t, sidecar);
  const per = keysPerMaster(cluster.config, 'van:', 5);
  const keys = [...per.values()].flat();
  await app.mset(...keys.flatMap((k) => [k, `val:${k}`]));
  let wrong = 0;
  for (let round = 0; round < 10; round++) {
    // a client fires a pipeline (some big replies) and disconnects at once
    const v = await RawClient.connect(t, sidecar.options.port);
    const parts: Buffer[] = [];
    for (let i = 0; i < 2000; i++) parts.push(resp(i % 10 === 0 ? 'MGET' : 'GET', ...(i % 10 === 0 ? keys : [keys[i % keys.length]!])));
    v.write(Buffer.concat(parts));
    setImmediate(() => v.socket.destroy());
    // meanwhile another client's pipeline must get exactly its own replies
    const p = app.pipeline();
    for (let i = 0; i < 300; i++) p.get(keys[(i * 7) % keys.length]!);
    const res = (await p.exec())!;
    res.forEach(([e, val], i) => {
      if (e || val !== `val:${keys[(i * 7) % keys.length]}`) wrong++;
    });
  }
  t.equal(wrong, 0, 'every reply to the surviving client is its own');
  t.equal(await app.ping(), 'PONG');
});

/**
 * ringside check (issue 24): a healthy cluster gives nothing; then each thing an interrupted or
 * hand-made change can leave is found and named, with what to do: keys on a master that does not
 * own their slot, a replica following another master, slots left migrating.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setLogSink } from '../../src/observe/log';
import { checkCluster } from '../../src/admin/check';
import { planMove } from '../../src/admin/move-slots';
import { writeEverywhere } from '../../src/cluster/store';
import { SlotTable } from '../../src/cluster/config';
import { slotOf } from '../../src/cluster/slot';
import { startCluster } from '../failover/servers';
import { BIN, ROOT } from '../failover/load';

setLogSink(() => {});
const run = promisify(execFile);

t.test('check finds stray keys, a replica on the wrong master and slots left migrating; a clean cluster gives nothing', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  const seeds = c.seeds.split(',');
  const clean = await run(process.execPath, [BIN, 'check', '--seeds', c.seeds], { cwd: ROOT });
  t.match(clean.stdout, /^epoch 1: nothing found \(\d+ keys scanned on 3 masters\)/, 'a clean cluster: nothing, exit 0');

  // a key written straight to a master that does not own its slot
  const table = SlotTable.from(c.config);
  let stray = '';
  for (let i = 0; !stray; i++) if (table.nodeOf(slotOf(`k${i}`)) === 'b') stray = `k${i}`;
  const a = c.shards[0]!;
  await c.client(a.master.address).set(stray, 'lost');
  await c.client(a.master.address).set('__cluster__:x', 'metadata is not stray');
  // a replica of node c made to follow node b's master
  const [bHost, bPort] = c.shards[1]!.master.address.split(':');
  const cReplica = c.shards[2]!.replicas[0]!.address;
  await c.client(cReplica).call('REPLICAOF', bHost!, bPort!);
  // slots 5-6 marked migrating to c, as a move-slots stopped after its first step leaves them
  const plan = planMove(c.config, [5, 6], 'c');
  await writeEverywhere(c.masters(), plan.marked!);

  const r = await checkCluster({ seeds });
  const kinds = new Set(r.findings.map((f) => f.kind));
  t.same([...kinds].filter((k) => k !== 'status').sort(), ['migrating', 'replication', 'stray-keys'], `the three problems are found: ${r.findings.map((f) => f.message).join(' | ')}`);
  // the misled replica may also hold an older copy of the configuration for a moment: status says so
  t.ok(r.findings.filter((f) => f.kind === 'status').every((f) => f.message.startsWith(`${cReplica} holds epoch`)), 'nothing else');
  t.match(r.findings.find((f) => f.kind === 'stray-keys'), { message: new RegExp(`master ${a.master.address} \\(node a\\) holds 1 key\\(s\\) of slot\\(s\\) ${slotOf(stray)}, which node b owns \\(e\\.g\\. "${stray}"\\)`) });
  t.match(r.findings.find((f) => f.kind === 'replication'), { message: new RegExp(`c: replica ${cReplica} follows ${bHost}:${bPort}, not its master`), fix: /^REPLICAOF / });
  t.match(r.findings.find((f) => f.kind === 'migrating'), { message: /slots 5-6 are marked as migrating from node a to node c/, fix: /ringside move-slots 5-6 --to c/ });
  const cli = await run(process.execPath, [BIN, 'check', '--seeds', c.seeds, '--no-keys'], { cwd: ROOT }).catch((e: { code: number; stdout: string }) => e);
  t.equal((cli as { code?: number }).code, 1, 'the CLI exits 1 on findings');
  t.match((cli as { stdout: string }).stdout, /\d finding\(s\)[\s\S]*\[migrating\][\s\S]*fix: ringside move-slots/, '--no-keys skips the scan, and each finding says what to do');
});

t.test('fix repairs what check finds: the replica, the unfinished move, stray keys; a conflict is left until --replace', async (t) => {
  const c = await startCluster(t, { masters: 3, replicasPerMaster: 1 });
  const table = SlotTable.from(c.config);
  const keyOf = (node: string, prefix: string, not: string[] = []): string => {
    for (let i = 0; ; i++) if (table.nodeOf(slotOf(`${prefix}${i}`)) === node && !not.includes(`${prefix}${i}`) && slotOf(`${prefix}${i}`) > 10) return `${prefix}${i}`;
  };
  const a = c.shards[0]!;
  const ma = c.client(a.master.address);
  const mb = c.client(c.shards[1]!.master.address);
  const stray = keyOf('b', 's');
  const conflict = keyOf('b', 's', [stray]);
  await ma.set(stray, 'moved');
  await ma.set(conflict, 'stray copy');
  await mb.set(conflict, 'owner copy');
  const [bHost, bPort] = c.shards[1]!.master.address.split(':');
  const cReplica = c.shards[2]!.replicas[0]!.address;
  await c.client(cReplica).call('REPLICAOF', bHost!, bPort!);
  let inMoving = '';
  for (let i = 0; !inMoving; i++) if (slotOf(`m${i}`) === 5) inMoving = `m${i}`;
  await ma.set(inMoving, 'in slot 5');
  await writeEverywhere(c.masters(), planMove(c.config, [5, 6], 'c').marked!);

  const first = await run(process.execPath, [BIN, 'fix', '--seeds', c.seeds], { cwd: ROOT }).catch((e: { code: number; stdout: string }) => e);
  const out = (first as { stdout: string }).stdout;
  t.equal((first as { code?: number }).code, 1, 'exit 1: a conflict is left');
  t.match(out, new RegExp(`${cReplica} \\(a replica of node c\\) now follows ${c.shards[2]!.master.address}`), 'the replica follows its master again');
  t.match(out, /slots 5-6 finished moving to node c/, 'the unfinished move is finished');
  t.match(out, /1 key\(s\) moved from .* \(node a\)/, 'the stray key moved to its owner');
  t.match(out, new RegExp(`left for you: "${conflict}" is on .* and on its owner node b: both kept`), 'the conflict is left, and said');
  t.equal(await mb.get(stray), 'moved', 'the stray key is on its owner');
  t.equal(await mb.get(conflict), 'owner copy', 'the owner\'s copy of the conflict is untouched');
  t.equal(await c.client(c.shards[2]!.master.address).get(inMoving), 'in slot 5', 'slot 5\'s key is on node c');

  const second = await run(process.execPath, [BIN, 'fix', '--seeds', c.seeds, '--replace'], { cwd: ROOT });
  t.match(second.stdout, /1 key\(s\) moved/, '--replace moves the conflicting key');
  t.equal(await mb.get(conflict), 'stray copy', 'over the owner\'s copy');
  const clean = await run(process.execPath, [BIN, 'check', '--seeds', c.seeds], { cwd: ROOT });
  t.match(clean.stdout, /nothing found/, 'check finds nothing afterwards');
});

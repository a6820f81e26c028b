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
  const kinds = r.findings.map((f) => f.kind).sort();
  t.same(kinds, ['migrating', 'replication', 'stray-keys'], `three findings: ${r.findings.map((f) => f.message).join(' | ')}`);
  t.match(r.findings.find((f) => f.kind === 'stray-keys'), { message: new RegExp(`master ${a.master.address} \\(node a\\) holds 1 key\\(s\\) of slot\\(s\\) ${slotOf(stray)}, which node b owns \\(e\\.g\\. "${stray}"\\)`) });
  t.match(r.findings.find((f) => f.kind === 'replication'), { message: new RegExp(`c: replica ${cReplica} follows ${bHost}:${bPort}, not its master`), fix: /^REPLICAOF / });
  t.match(r.findings.find((f) => f.kind === 'migrating'), { message: /slots 5-6 are marked as migrating from node a to node c/, fix: /ringside move-slots 5-6 --to c/ });
  const cli = await run(process.execPath, [BIN, 'check', '--seeds', c.seeds, '--no-keys'], { cwd: ROOT }).catch((e: { code: number; stdout: string }) => e);
  t.equal((cli as { code?: number }).code, 1, 'the CLI exits 1 on findings');
  t.match((cli as { stdout: string }).stdout, /2 finding\(s\)[\s\S]*\[migrating\][\s\S]*fix: ringside move-slots/, '--no-keys skips the scan, and each finding says what to do');
});

/**
 * Reads what the partition tests check afterwards, from inside a host's namespace: `node
 * ns-inspect.js <every node address, comma-separated> <file of keys, one JSON array>`. Prints one
 * JSON line: the newest configuration, where each key is found on its final masters, the
 * election events of the log, and each node's role.
 */
import { readFileSync } from 'node:fs';
import Redis from 'ioredis';
import { LOG_KEY, masters as mastersOf, splitAddress } from '../../src/cluster/config';
import { newest, readCopy } from '../../src/cluster/store';
import { parseLogEntry, readMerged, replication } from '../../src/failover/ops';

async function main(): Promise<void> {
  const [list, keysFile] = process.argv.slice(2);
  const addresses = list!.split(',');
  const clients = new Map(addresses.map((a) => [a, new Redis({ ...splitAddress(a), maxRetriesPerRequest: 1, lazyConnect: false, commandTimeout: 5000 })]));
  for (const c of clients.values()) c.on('error', () => {});
  const best = newest(await Promise.all(addresses.map((a) => readCopy(clients.get(a)!, a))));
  if (!best) throw new Error('no configuration on any node');
  const masters = mastersOf(best.config);
  const keys = JSON.parse(readFileSync(keysFile!, 'utf8')) as string[];
  const found: Record<string, Array<{ master: string; value: string }>> = {};
  for (const m of masters) {
    const c = clients.get(m)!;
    for (let i = 0; i < keys.length; i += 2000) {
      const chunk = keys.slice(i, i + 2000);
      (await c.mget(...chunk)).forEach((v, j) => {
        if (v !== null) (found[chunk[j]!] ??= []).push({ master: m, value: v });
      });
    }
  }
  const { entries } = await readMerged(new Map(masters.map((m) => [m, clients.get(m)!])), LOG_KEY, 1000, parseLogEntry, (e) => e.time, 2000);
  const events = entries.filter((e) => e.doc && ['failover', 'failover-rolled-back', 'demoted'].includes(e.event)).map((e) => e.doc);
  const roles: Record<string, string> = {};
  for (const [a, c] of clients) roles[a] = await replication(c, 3000).then((r) => r.role, (e: Error) => `error: ${e.message}`);
  for (const c of clients.values()) c.disconnect();
  process.stdout.write(JSON.stringify({ config: best.config, found, events, roles }) + '\n', () => process.exit(0));
}

void main().catch((e) => {
  process.stderr.write(`ns-inspect: ${(e as Error).stack}\n`);
  process.exit(1);
});

/**
 * A writer process for the partition tests, run inside a host's namespace beside its sidecar:
 * `node ns-writer.js <name> <sidecar port> <config JSON file> <writers> <pause ms> <history file>`. Writes unique
 * keys through the local sidecar (test/failover/load.ts's WriteLoad) until a line arrives on
 * stdin, then writes its whole history (JSON) to the history file and exits.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseConfig } from '../../src/cluster/config';
import { WriteLoad } from '../failover/load';

async function main(): Promise<void> {
  const [name, port, configFile, writers, pause, out] = process.argv.slice(2);
  const config = parseConfig(readFileSync(configFile!, 'utf8'));
  const load = new WriteLoad([{ name: name!, port: Number(port) }], config, { perSidecar: Number(writers ?? 2), pauseMs: Number(pause ?? 2), prefix: 'p', timeoutMs: 5000 });
  load.start();
  await new Promise<void>((r) => {
    process.stdin.once('data', () => r());
    process.stdin.once('end', () => r());
  });
  await load.stop();
  writeFileSync(out!, JSON.stringify(load.history));
  process.exit(0);
}

void main().catch((e) => {
  process.stderr.write(`ns-writer: ${(e as Error).stack}\n`);
  process.exit(1);
});

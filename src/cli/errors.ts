/**
 * `ringside errors --seeds ... [--count N] [--json]`: the failure reports sidecars pushed to
 * `__cluster__:errors`, merged across the masters, de-duplicated, newest first.
 */
import { openCluster } from '../failover/connect';
import { readErrors } from '../failover/ops';
import { OptionSpec, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';

export const summary = 'print the failure reports of the sidecars (newest first)';

const USAGE = 'ringside errors --seeds host:port[,...] [--count N] [--json]';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  count: { type: 'string', arg: 'N', default: '50', help: 'how many reports to print' },
  json: { type: 'boolean', help: 'print a JSON array instead of text' },
  'timeout-ms': { type: 'string', arg: 'ms', default: '2000', help: 'per-command timeout towards each server' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

export async function run(argv: string[]): Promise<number> {
  const parsed = parseNodeCommand(argv, SPEC, USAGE, summary);
  if (!parsed) return 0;
  const { options } = parsed;
  const seeds = seedsOption(listOption(options, 'seeds'));
  const count = intOption(options, 'count', 1, 100_000)!;
  const timeout = intOption(options, 'timeout-ms', 50, 600_000)!;
  const cluster = await openCluster(seeds, { timeoutMs: timeout });
  try {
    const { entries, unreachable } = await readErrors(cluster.masters(), count);
    for (const a of unreachable) process.stderr.write(`ringside errors: master ${a} could not be read\n`);
    if (options.json) {
      const out = entries.map((e) => ({ node: e.node, time: e.time, iso: new Date(e.time * 1000).toISOString(), sidecar: e.sidecar, raw: e.raw }));
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    } else if (entries.length === 0) process.stdout.write('no failure reports\n');
    else {
      const lines = entries.map((e) => `${new Date(e.time * 1000).toISOString().replace('.000Z', 'Z')}  node ${e.node.padEnd(6)} reported by ${e.sidecar || '?'}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  } finally {
    cluster.close();
  }
}

/**
 * `ringside log --seeds ... [--count N] [--json]`: the cluster's event log (`__cluster__:log`:
 * promotions, roll-backs, demotions, migrations, manual fail-overs), merged across the masters,
 * de-duplicated, newest first.
 */
import { openCluster } from '../failover/connect';
import { readLog } from '../failover/ops';
import { OptionSpec, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';

export const summary = 'print the cluster event log: fail-overs, demotions, migrations (newest first)';

const USAGE = 'ringside log --seeds host:port[,...] [--count N] [--json]';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  count: { type: 'string', arg: 'N', default: '50', help: 'how many events to print' },
  json: { type: 'boolean', help: 'print a JSON array instead of text' },
  'timeout-ms': { type: 'string', arg: 'ms', default: '2000', help: 'per-command timeout towards each server' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

function fields(doc: Record<string, unknown>): string {
  return Object.entries(doc)
    .filter(([k]) => k !== 'time' && k !== 'event')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseNodeCommand(argv, SPEC, USAGE, summary);
  if (!parsed) return 0;
  const { options } = parsed;
  const seeds = seedsOption(listOption(options, 'seeds'));
  const count = intOption(options, 'count', 1, 100_000)!;
  const timeout = intOption(options, 'timeout-ms', 50, 600_000)!;
  const cluster = await openCluster(seeds, { timeoutMs: timeout });
  try {
    const { entries, unreachable } = await readLog(cluster.masters(), count);
    for (const a of unreachable) process.stderr.write(`ringside log: master ${a} could not be read\n`);
    if (options.json) process.stdout.write(JSON.stringify(entries.map((e) => e.doc ?? { raw: e.raw }), null, 2) + '\n');
    else if (entries.length === 0) process.stdout.write('the log is empty\n');
    else {
      const lines = entries.map((e) => {
        const when = e.time ? new Date(e.time).toISOString() : '?'.padEnd(24);
        return `${when}  ${e.event.padEnd(20)} ${e.doc ? fields(e.doc) : e.raw}`;
      });
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  } finally {
    cluster.close();
  }
}

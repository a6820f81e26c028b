/**
 * `ringside status --seeds host:port,... [--json]`: the configuration, every server's state,
 * copies, migrations and live sidecars. Exit 0 when a configuration could be read, 1 otherwise.
 */
import { isAddress } from '../cluster/config';
import { clusterStatus, formatStatus } from '../admin/status';
import { OptionSpec, UsageError, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';

export const summary = 'show the configuration, every server, copies, migrations and live sidecars';

const USAGE = 'ringside status --seeds host:port[,host:port...] [--json]';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  json: { type: 'boolean', help: 'print one JSON object instead of text' },
  'timeout-ms': { type: 'string', arg: 'ms', default: '2000', help: 'per-command timeout towards each server' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

export function seedsOption(list: string[]): string[] {
  if (!list.length) throw new UsageError('--seeds is required: one or more host:port addresses of data nodes');
  for (const s of list) if (!isAddress(s)) throw new UsageError(`seed ${JSON.stringify(s)} is not a host:port address`);
  return list;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseNodeCommand(argv, SPEC, USAGE, summary);
  if (!parsed) return 0;
  const { options } = parsed;
  const seeds = seedsOption(listOption(options, 'seeds'));
  const timeout = intOption(options, 'timeout-ms', 50, 600_000)!;
  const status = await clusterStatus({ seeds, commandTimeoutMs: timeout, connectTimeoutMs: Math.min(timeout, 1000) });
  process.stdout.write((options.json ? JSON.stringify(status, null, 2) : formatStatus(status)) + '\n');
  return 0;
}

/**
 * `ringside set --check-ms/--lease-ms/--down-after-ms/--failover/--durability` (src/admin/set.ts;
 * docs/admin.md).
 */
import { OptionSpec, UsageError, choiceOption, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';
import { setCluster } from '../admin/set';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  'check-ms': { type: 'string', arg: 'ms', help: 'how often sidecars confirm the configuration version' },
  'lease-ms': { type: 'string', arg: 'ms', help: 'how long a confirmed configuration is trusted (a shorter one is rolled out in two steps, a lease apart)' },
  'down-after-ms': { type: 'string', arg: 'ms', help: 'how long a node must fail before a sidecar votes' },
  failover: { type: 'string', arg: 'auto|manual', help: 'who starts a fail-over' },
  durability: { type: 'string', arg: 'async|replica', help: 'when a write is acknowledged (docs/failover.md, "Durability")' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

export const summary = 'change a running cluster\'s timing, fail-over mode or durability';

export async function run(argv: string[]): Promise<number> {
  const usage = 'ringside set --seeds host:port[,...] [--check-ms MS] [--lease-ms MS] [--down-after-ms MS] [--failover auto|manual] [--durability async|replica]';
  const parsed = parseNodeCommand(argv, SPEC, usage, summary);
  if (!parsed) return 0;
  const { options } = parsed;
  const o = {
    seeds: seedsOption(listOption(options, 'seeds')),
    checkMs: intOption(options, 'check-ms', 10, 3_600_000),
    leaseMs: intOption(options, 'lease-ms', 10, 3_600_000),
    downAfterMs: intOption(options, 'down-after-ms', 10, 3_600_000),
    failover: options.failover === undefined ? undefined : choiceOption(options, 'failover', ['auto', 'manual'] as const),
    durability: options.durability === undefined ? undefined : choiceOption(options, 'durability', ['async', 'replica'] as const),
    onProgress: (line: string) => process.stdout.write(line + '\n'),
  };
  if ([o.checkMs, o.leaseMs, o.downAfterMs, o.failover, o.durability].every((v) => v === undefined)) throw new UsageError(`name at least one setting: ${usage}`);
  await setCluster(o);
  return 0;
}

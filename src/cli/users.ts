/**
 * `ringside users apply --seeds ... --auth-file F [--drop-other-passwords]`: the data user on
 * every server of a running cluster (src/admin/users.ts; docs/admin.md, "Credentials").
 */
import { OptionSpec, UsageError, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';
import { applyUsers } from '../admin/users';

export const summary = 'set up or update the data user on every server (two users; rotate its password)';

const USAGE = 'ringside users apply --seeds host:port[,...] --auth-file F [--drop-other-passwords]';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  'drop-other-passwords': { type: 'boolean', help: 'leave the configured data password as the user\'s only one (the last step of a rotation)' },
  'timeout-ms': { type: 'string', arg: 'ms', default: '2000', help: 'per-command timeout towards each server' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

export async function run(argv: string[]): Promise<number> {
  const parsed = parseNodeCommand(argv, SPEC, USAGE, summary);
  if (!parsed) return 0;
  const { options, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] !== 'apply') throw new UsageError('the one subcommand is `apply`: ringside users apply --seeds ... --auth-file F');
  await applyUsers({
    seeds: seedsOption(listOption(options, 'seeds')),
    dropOtherPasswords: options['drop-other-passwords'] === true,
    timeoutMs: intOption(options, 'timeout-ms', 50, 600_000),
    onProgress: (line) => process.stdout.write(line + '\n'),
  });
  return 0;
}

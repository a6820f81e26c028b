/**
 * `ringside add-replica NODE host:port` and `ringside remove-replica NODE host:port`
 * (src/admin/replicas.ts; docs/admin.md).
 */
import { OptionSpec, UsageError, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';
import { addReplica, removeReplica } from '../admin/replicas';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  force: { type: 'boolean', help: 'add-replica: take a server that holds keys (they are replaced by the master\'s)' },
  'link-timeout-ms': { type: 'string', arg: 'ms', default: '30000', help: 'add-replica: bound on the wait for the link and the catch-up' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

function command(name: 'add-replica' | 'remove-replica', summary: string) {
  return async (argv: string[]): Promise<number> => {
    const usage = `ringside ${name} NODE host:port --seeds host:port[,...]`;
    const parsed = parseNodeCommand(argv, SPEC, usage, summary);
    if (!parsed) return 0;
    const { options, positionals } = parsed;
    if (positionals.length !== 2) throw new UsageError(`name the node and the server: ${usage}`);
    const o = {
      seeds: seedsOption(listOption(options, 'seeds')),
      node: positionals[0]!,
      address: positionals[1]!,
      force: options.force === true,
      linkTimeoutMs: intOption(options, 'link-timeout-ms', 100, 3_600_000),
      onProgress: (line: string) => process.stdout.write(line + '\n'),
    };
    await (name === 'add-replica' ? addReplica(o) : removeReplica(o));
    return 0;
  };
}

export const add = { summary: 'add a replica to a node: checks the server, replicates, then adds it to the configuration', run: command('add-replica', 'add a replica to a node') };
export const remove = { summary: 'drop a replica from the configuration (the server is left running)', run: command('remove-replica', 'drop a replica from the configuration') };

/**
 * `ringside <command>`: each command is a module in src/cli/ exporting
 * `run(argv: string[]): Promise<number>` (the exit code) and `summary` (one line for the list).
 */
import { UsageError } from './args';

interface CommandModule {
  run(argv: string[]): Promise<number>;
  summary: string;
}

const COMMANDS: Record<string, () => CommandModule> = {
  serve: () => require('./serve') as CommandModule,
  demo: () => require('./demo') as CommandModule,
  create: () => require('./create') as CommandModule,
  status: () => require('./status') as CommandModule,
  'move-slots': () => require('./move-slots') as CommandModule,
  failover: () => require('./failover') as CommandModule,
  errors: () => require('./errors') as CommandModule,
  log: () => require('./log') as CommandModule,
  users: () => require('./users') as CommandModule,
  check: () => require('./check') as CommandModule,
  fix: () => (require('./check') as { fix: CommandModule }).fix,
  'add-replica': () => (require('./replicas') as { add: CommandModule }).add,
  'remove-replica': () => (require('./replicas') as { remove: CommandModule }).remove,
  'add-shard': () => (require('./shards') as { add: CommandModule }).add,
  'remove-shard': () => (require('./shards') as { remove: CommandModule }).remove,
  rebalance: () => (require('./shards') as { rebalanceCommand: CommandModule }).rebalanceCommand,
  set: () => require('./set') as CommandModule,
};

function usage(): string {
  const lines = ['usage: ringside <command> [options]', '', 'commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    let summary = '';
    try {
      summary = load().summary;
    } catch {
      summary = '(not available in this build)';
    }
    lines.push(`  ${name.padEnd(12)} ${summary}`);
  }
  lines.push('', 'Run `ringside <command> --help` for the options of one command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    process.exitCode = name ? 0 : 2;
    return;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(require('../../../package.json').version + '\n');
    return;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`ringside: unknown command "${name}"\n\n${usage()}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    process.exitCode = await load().run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ringside ${name}: ${e.message}\nRun \`ringside ${name} --help\` for the options.\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`ringside ${name}: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}

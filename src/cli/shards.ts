/**
 * `ringside add-shard`, `ringside remove-shard NODE` and `ringside rebalance`
 * (src/admin/shards.ts; docs/admin.md).
 */
import { OptionSpec, UsageError, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';
import { addShard, rebalance, removeShard } from '../admin/shards';
import { parseWeights } from '../admin/rebalance-plan';
import type { MoveProgress } from '../admin/move-slots';

const COMMON: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  json: { type: 'boolean', help: 'one JSON object per line instead of text (the default when stdout is not a terminal)' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

/** Lines for a person on a terminal, JSON lines otherwise (or with --json). */
function reporter(json: boolean): { line: (s: string) => void; move: (p: MoveProgress) => void } {
  return {
    line: (s) => process.stdout.write(json ? JSON.stringify({ time: new Date().toISOString(), message: s }) + '\n' : s + '\n'),
    move: (p) => {
      if (json) process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...p }) + '\n');
      else if (p.phase === 'moving') process.stdout.write(`  ${p.from} → ${p.to}: ${p.moved} key(s) so far (pass ${p.pass})\n`);
      else if (p.phase === 'waiting') process.stdout.write(`  waiting ${p.ms} ms (a lease) before moving keys\n`);
    },
  };
}
const wantsJson = (o: Record<string, unknown>): boolean => o.json === true || !process.stdout.isTTY;

export const add = {
  summary: 'add a shard (a master and its replicas) with no slots; rebalance then gives it its share',
  async run(argv: string[]): Promise<number> {
    const spec: Record<string, OptionSpec> = {
      ...COMMON,
      master: { type: 'string', arg: 'host:port', help: 'the new shard\'s master (an empty redis-server)' },
      replicas: { type: 'string', arg: 'host:port,...', help: 'its replicas' },
      force: { type: 'boolean', help: 'take replicas that hold keys (they are replaced by the master\'s)' },
      'link-timeout-ms': { type: 'string', arg: 'ms', default: '30000', help: 'bound on the wait for the replicas to catch up' },
    };
    const usage = 'ringside add-shard --master host:port [--replicas host:port,...] --seeds host:port[,...]';
    const parsed = parseNodeCommand(argv, spec, usage, add.summary);
    if (!parsed) return 0;
    const { options } = parsed;
    if (typeof options.master !== 'string') throw new UsageError(`--master is required: ${usage}`);
    const r = reporter(wantsJson(options));
    await addShard({
      seeds: seedsOption(listOption(options, 'seeds')),
      master: options.master,
      replicas: listOption(options, 'replicas'),
      force: options.force === true,
      linkTimeoutMs: intOption(options, 'link-timeout-ms', 100, 3_600_000),
      onProgress: r.line,
    });
    return 0;
  },
};

export const remove = {
  summary: 'move every slot of a shard to the others, then drop it (its servers are left running)',
  async run(argv: string[]): Promise<number> {
    const usage = 'ringside remove-shard NODE --seeds host:port[,...]';
    const parsed = parseNodeCommand(argv, COMMON, usage, remove.summary);
    if (!parsed) return 0;
    const { options, positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError(`name the node to remove: ${usage}`);
    const r = reporter(wantsJson(options));
    await removeShard({ seeds: seedsOption(listOption(options, 'seeds')), node: positionals[0]!, onProgress: r.line, onMove: r.move });
    return 0;
  },
};

export const rebalanceCommand = {
  summary: 'even out the slots over the shards (or by weights), moving the fewest',
  async run(argv: string[]): Promise<number> {
    const spec: Record<string, OptionSpec> = {
      ...COMMON,
      'dry-run': { type: 'boolean', help: 'print the plan, move nothing' },
      weights: { type: 'string', arg: 'a=2,b=1', help: 'shares by node (default 1 each; 0 empties a node)' },
      threshold: { type: 'string', arg: 'pct', default: '0', help: 'do nothing when every node is within this % of its share' },
    };
    const usage = 'ringside rebalance --seeds host:port[,...] [--dry-run] [--weights a=2,b=1] [--threshold PCT]';
    const parsed = parseNodeCommand(argv, spec, usage, rebalanceCommand.summary);
    if (!parsed) return 0;
    const { options } = parsed;
    const r = reporter(wantsJson(options));
    await rebalance({
      seeds: seedsOption(listOption(options, 'seeds')),
      weights: typeof options.weights === 'string' ? parseWeights(options.weights) : undefined,
      thresholdPct: intOption(options, 'threshold', 0, 100),
      dryRun: options['dry-run'] === true,
      onProgress: r.line,
      onMove: r.move,
    });
    return 0;
  },
};

/**
 * `ringside move-slots --seeds ... --slots 100-200,300 --to <node>`: marks the slots migrating,
 * waits out the lease, moves their keys with MIGRATE and gives the slots to the node.
 */
import { moveSlots, parseSlotList, formatSlotList, MoveProgress } from '../admin/move-slots';
import { SlotListError } from '../admin/errors';
import { seedsOption } from './status';
import { OptionSpec, UsageError, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';

export const summary = 'move slots (and their keys) to another node';

const USAGE = 'ringside move-slots --seeds host:port,... --slots 100-200[,300] --to <node>';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from' },
  slots: { type: 'string', arg: 'a-b,c', help: 'the slots to move (0..1023)' },
  to: { type: 'string', arg: 'node', help: 'name of the node that receives them (see ringside status)' },
  batch: { type: 'string', arg: 'keys', default: '100', help: 'keys per MIGRATE' },
  'migrate-timeout-ms': { type: 'string', arg: 'ms', default: '5000', help: 'timeout of each MIGRATE' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

function line(p: MoveProgress): string {
  switch (p.phase) {
    case 'marked':
      return `epoch ${p.epoch}: slots ${formatSlotList(p.slots)} marked migrating to ${p.to} (written on ${p.written} of ${p.masters} masters)`;
    case 'resumed':
      return `epoch ${p.epoch}: slots ${formatSlotList(p.slots)} already migrating to ${p.to}; resuming`;
    case 'waiting':
      return `waiting ${p.ms} ms (longer than the ${p.leaseMs} ms lease) so that every sidecar knows of the migration`;
    case 'moving':
      return `  ${p.from} -> ${p.to}: ${p.moved} keys moved${p.pass > 1 ? ` (pass ${p.pass})` : ''}`;
    case 'moved':
      return `${p.from} -> ${p.to}: done, ${p.moved} keys moved`;
    case 'done':
      return `epoch ${p.epoch}: slots ${formatSlotList(p.slots)} now belong to ${p.to}; ${p.moved} keys moved (written on ${p.written} of ${p.masters} masters)`;
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseNodeCommand(argv, SPEC, USAGE, summary);
  if (!parsed) return 0;
  const { options } = parsed;
  const seeds = seedsOption(listOption(options, 'seeds'));
  if (typeof options.slots !== 'string' || !options.slots) throw new UsageError('--slots is required, e.g. --slots 100-200,300');
  if (typeof options.to !== 'string' || !options.to) throw new UsageError('--to is required: the name of the receiving node');
  let slots: number[];
  try {
    slots = parseSlotList(options.slots);
  } catch (e) {
    if (e instanceof SlotListError) throw new UsageError(e.message);
    throw e;
  }
  await moveSlots({
    seeds,
    slots,
    to: options.to,
    batchSize: intOption(options, 'batch', 1, 100_000),
    migrateTimeoutMs: intOption(options, 'migrate-timeout-ms', 100, 3_600_000),
    onProgress: (p) => process.stdout.write(line(p) + '\n'),
  });
  return 0;
}

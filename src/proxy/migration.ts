/**
 * Commands for a slot that is migrating from node A to node B (docs/protocol.md, "Moving
 * slots"). The command runs on A inside a script that first checks its keys are there: all
 * there, it runs; none there, A answers `-MIGRATED <B>` and the session reissues it at B; some
 * there, a retry error (the keys are split between A and B for a moment). Commands that cannot
 * run in a script get the retry error too.
 */
import type { MigrationPath } from './context';
import * as text from './replies';
import { encodeCommand } from '../resp/request-parser';
import type { ParsedCommand } from '../resp/request-parser';
import { keyIndexes, subcommand } from '../commands/table';
import type { CommandSpec } from '../commands/table';

export const MIGRATION_SCRIPT = `
local n = 0
for i = 1, #KEYS do n = n + redis.call('EXISTS', KEYS[i]) end
if n == 0 then return redis.error_reply('MIGRATED ' .. ARGV[1]) end
if n < #KEYS then return redis.error_reply('${text.MIGRATING_SPLIT}') end
return redis.pcall(unpack(ARGV, 2))
`;

const NOT_IN_SCRIPTS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);

function keyArgs(spec: CommandSpec, cmd: ParsedCommand): number[] {
  const out: number[] = [];
  keyIndexes((spec.subcommands && subcommand(spec, cmd)) || spec, cmd, out);
  return out;
}

export const migrationPath: MigrationPath = {
  send(s, req, spec, cmd, r, mig) {
    if (NOT_IN_SCRIPTS.has(spec.name) || spec.blocking) {
      req.fail(text.migratingUnchecked(req.slot, spec.name));
      return;
    }
    const keys = keyArgs(spec, cmd).map((i) => cmd.arg(i));
    const args: Buffer[] = [];
    for (let i = 0; i < cmd.argc; i++) args.push(cmd.arg(i));
    const script = encodeCommand(['EVAL', MIGRATION_SCRIPT, String(keys.length), ...keys, mig.toAddress, ...args]);
    const from = r.config.nodes[mig.from]!.master;
    req.node = from;
    s.connFor(from).send(script, 0, script.length, req);
  },
};

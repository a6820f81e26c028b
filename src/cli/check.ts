/**
 * `ringside check --seeds ... [--json] [--no-keys]`: what an interrupted operation or a hand-made
 * change left (src/admin/check.ts). Exit code 0 when nothing is found, 1 otherwise.
 */
import { OptionSpec, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';
import { checkCluster } from '../admin/check';
import { fixCluster } from '../admin/fix';

export const summary = 'find what an interrupted operation left: slots left migrating, stray keys, replicas following the wrong master';

const USAGE = 'ringside check --seeds host:port[,...] [--json] [--no-keys]';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  json: { type: 'boolean', help: 'print one JSON object' },
  'no-keys': { type: 'boolean', help: 'skip the SCAN of every master for keys outside their slots' },
  'timeout-ms': { type: 'string', arg: 'ms', default: '5000', help: 'per-command timeout towards each server' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

export async function run(argv: string[]): Promise<number> {
  const parsed = parseNodeCommand(argv, SPEC, USAGE, summary);
  if (!parsed) return 0;
  const { options } = parsed;
  const timeout = intOption(options, 'timeout-ms', 50, 600_000)!;
  const r = await checkCluster({ seeds: seedsOption(listOption(options, 'seeds')), commandTimeoutMs: timeout, connectTimeoutMs: Math.min(timeout, 1000), keys: options['no-keys'] !== true });
  if (options.json) process.stdout.write(JSON.stringify({ epoch: r.status.epoch, findings: r.findings, scanned: r.scanned }, null, 2) + '\n');
  else if (r.findings.length === 0) {
    const keys = Object.values(r.scanned).reduce((a, b) => a + b, 0);
    process.stdout.write(`epoch ${r.status.epoch}: nothing found${Object.keys(r.scanned).length ? ` (${keys} keys scanned on ${Object.keys(r.scanned).length} masters)` : ''}\n`);
  } else {
    process.stdout.write(`epoch ${r.status.epoch}: ${r.findings.length} finding(s)\n`);
    for (const f of r.findings) process.stdout.write(`- [${f.kind}] ${f.message}\n${f.fix ? `    fix: ${f.fix}\n` : ''}`);
  }
  return r.findings.length ? 1 : 0;
}

/** `ringside fix --seeds ... [--replace]`: repairs what check finds, where that is safe (src/admin/fix.ts). */
export const fix = {
  summary: 'repair what check finds where it is safe: replicas on the wrong master, slots left migrating, stray keys',
  async run(argv: string[]): Promise<number> {
    const spec: Record<string, OptionSpec> = {
      ...AUTH_OPTIONS,
      seeds: SPEC.seeds!,
      replace: { type: 'boolean', help: 'a stray key overwrites its owner\'s copy (default: both kept and reported)' },
      config: SPEC.config!,
    };
    const parsed = parseNodeCommand(argv, spec, 'ringside fix --seeds host:port[,...] [--replace]', fix.summary);
    if (!parsed) return 0;
    const { options } = parsed;
    const r = await fixCluster({ seeds: seedsOption(listOption(options, 'seeds')), replace: options.replace === true, onProgress: (l) => process.stdout.write(l + '\n') });
    if (r.done.length === 0) process.stdout.write('nothing to repair\n');
    for (const c of r.conflicts) process.stdout.write(`left for you: ${c}\n`);
    for (const f of r.after.findings) process.stdout.write(`still found: [${f.kind}] ${f.message}\n`);
    return r.conflicts.length || r.after.findings.length ? 1 : 0;
  },
};

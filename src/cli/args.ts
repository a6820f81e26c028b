/**
 * Option parsing shared by every `ringside` subcommand: flags (node:util parseArgs), then
 * environment variables RINGSIDE_<FLAG> (upper snake case), then an optional JSON config file
 * (`--config FILE`, keys in camelCase or as the flag names), then defaults. An unknown flag or a
 * bad value is an operator's typo: a clear message and exit code 2, never a stack trace.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  default?: string | boolean;
  /** one line for --help */
  help: string;
  /** shown in --help as the value's name */
  arg?: string;
}

export type Options = Record<string, string | boolean | undefined>;

const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const envName = (flag: string): string => 'RINGSIDE_' + flag.replace(/-/g, '_').toUpperCase();

export function helpText(usage: string, summary: string, spec: Record<string, OptionSpec>): string {
  const lines = [`usage: ${usage}`, '', summary, '', 'options:'];
  for (const [flag, s] of Object.entries(spec)) {
    const left = `  ${s.short ? `-${s.short}, ` : ''}--${flag}${s.type === 'string' ? ` <${s.arg ?? 'value'}>` : ''}`;
    const def = s.default !== undefined && s.default !== false ? ` (default: ${s.default})` : '';
    lines.push(`${left.padEnd(34)} ${s.help}${def}  [env ${envName(flag)}]`);
  }
  lines.push(`  ${'-h, --help'.padEnd(32)} this help`);
  return lines.join('\n');
}

/**
 * Parses argv against spec. Returns the options and the positionals; `help` is true when asked.
 * A `config` option, when present in spec and set, names a JSON file whose keys fill options
 * not given as flags or environment variables.
 */
export function parseOptions(
  argv: string[],
  spec: Record<string, OptionSpec>,
  env: NodeJS.ProcessEnv = process.env,
): { options: Options; positionals: string[]; help: boolean } {
  const parseSpec: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [flag, s] of Object.entries(spec)) parseSpec[flag] = s.short ? { type: s.type, short: s.short } : { type: s.type };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: parseSpec, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!.replace(/\. To specify.*$/s, ''));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const options: Options = {};
  let file: Record<string, unknown> = {};
  const configPath = (values.config as string | undefined) ?? env[envName('config')];
  if (spec.config && configPath) {
    try {
      file = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`cannot read config file ${configPath}: ${(e as Error).message}`);
    }
    if (file === null || typeof file !== 'object' || Array.isArray(file)) throw new UsageError(`config file ${configPath} is not a JSON object`);
    const known = new Set(Object.keys(spec).flatMap((f) => [f, camel(f)]));
    for (const k of Object.keys(file)) if (!known.has(k)) throw new UsageError(`config file ${configPath}: unknown setting "${k}"`);
  }
  for (const [flag, s] of Object.entries(spec)) {
    let v: string | boolean | undefined = values[flag];
    if (v === undefined && env[envName(flag)] !== undefined) {
      const e = env[envName(flag)]!;
      v = s.type === 'boolean' ? !/^(0|false|no|off|)$/i.test(e) : e;
    }
    if (v === undefined) {
      const fv = file[camel(flag)] ?? file[flag];
      if (fv !== undefined) v = s.type === 'boolean' ? Boolean(fv) : String(fv);
    }
    if (v === undefined) v = s.default;
    options[flag] = v;
  }
  return { options, positionals: parsed.positionals, help: values.help === true };
}

export function intOption(options: Options, flag: string, min: number, max: number): number | undefined {
  const v = options[flag];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}

export function choiceOption<T extends string>(options: Options, flag: string, choices: readonly T[]): T {
  const v = options[flag];
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v))
    throw new UsageError(`--${flag} must be one of ${choices.join(', ')}, not ${JSON.stringify(v)}`);
  return v as T;
}

export function listOption(options: Options, flag: string): string[] {
  const v = options[flag];
  if (typeof v !== 'string' || v === '') return [];
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

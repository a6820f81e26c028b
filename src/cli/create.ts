/**
 * `ringside create --shard <master>[,<replica>...] --shard ...` (or `--masters a,b --replicas x,y`):
 * sets up replication and writes the initial configuration. See docs/admin.md.
 */
import { ClusterConfig, InitialShard, initialConfig, isAddress } from '../cluster/config';
import { ConfigError } from '../cluster/errors';
import { createCluster } from '../admin/create';
import { aclFileLine, controlUserAcl, dataUserAcl, nodeCredentials } from '../cluster/credentials';
import { OptionSpec, Options, UsageError, choiceOption, helpText, intOption, listOption, parseOptions } from './args';
import { AUTH_OPTIONS, useNodeCredentials } from './auth';

export const summary = 'make plain Redis servers a cluster: replication and the first configuration';

const USAGE = 'ringside create --shard <master>[,<replica>...] [--shard ...] | --masters a,b,c [--replicas x,y,z] [options]';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  shard: { type: 'string', arg: 'master[,replica...]', help: 'one node: its master then its replicas; repeat once per node' },
  masters: { type: 'string', arg: 'a,b,c', help: 'simple form: the masters, one node each' },
  replicas: { type: 'string', arg: 'x,y,z', help: 'simple form: replica i follows master i' },
  failover: { type: 'string', arg: 'auto|manual', default: 'auto', help: 'who starts a fail-over: the sidecars (auto) or an operator' },
  durability: { type: 'string', arg: 'async|replica', default: 'async', help: 'when a write is acknowledged: once its master ran it (async), or once every replica of that master also holds it (replica: no acknowledged write is lost in a fail-over; a shard with a replica down refuses writes). docs/failover.md' },
  'check-ms': { type: 'string', arg: 'ms', help: 'how often sidecars confirm the configuration version (default 1000)' },
  'lease-ms': { type: 'string', arg: 'ms', help: 'how long a confirmed configuration is trusted (default 1500)' },
  'down-after-ms': { type: 'string', arg: 'ms', help: 'how long a node must fail before a sidecar votes (default 3000)' },
  'link-timeout-ms': { type: 'string', arg: 'ms', default: '15000', help: 'bound on the wait for replication links' },
  force: { type: 'boolean', help: 'overwrite a configuration the servers already hold' },
  acl: { type: 'string', arg: 'setup|skip|print', default: 'setup', help: 'the data user (when its credentials differ from the control user\'s): set it up on every server, leave ACLs to you, or print the ACL lines and exit' },
  json: { type: 'boolean', help: 'print the configuration as JSON' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

/** Takes every `--shard X` / `--shard=X` out of argv (parseArgs keeps only the last one). */
function extractShards(argv: string[]): { shards: string[]; rest: string[] } {
  const shards: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--shard') {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('-')) throw new UsageError('--shard needs a value: <master>[,<replica>...]');
      shards.push(v);
      i++;
    } else if (a.startsWith('--shard=')) shards.push(a.slice('--shard='.length));
    else rest.push(a);
  }
  return { shards, rest };
}

function checkAddress(a: string, what: string): string {
  if (!isAddress(a)) throw new UsageError(`${what} ${JSON.stringify(a)} is not a host:port address`);
  return a;
}

export function shardsFrom(shardFlags: string[], options: Options): InitialShard[] {
  let flags = shardFlags;
  if (flags.length === 0 && typeof options.shard === 'string' && options.shard) flags = options.shard.split(/[;\s]+/).filter(Boolean);
  const masters = listOption(options, 'masters');
  const replicas = listOption(options, 'replicas');
  if (flags.length && (masters.length || replicas.length)) throw new UsageError('use either --shard or --masters/--replicas, not both');
  if (flags.length) {
    return flags.map((f) => {
      const [m, ...r] = f.split(',').map((s) => s.trim()).filter(Boolean);
      if (!m) throw new UsageError(`--shard ${JSON.stringify(f)} names no master`);
      return { master: checkAddress(m, 'master'), replicas: r.map((x) => checkAddress(x, 'replica')) };
    });
  }
  if (!masters.length) throw new UsageError(replicas.length ? '--replicas needs --masters' : 'name the servers with --shard or --masters');
  if (replicas.length > masters.length) throw new UsageError(`${replicas.length} replicas for ${masters.length} masters: replica i follows master i`);
  return masters.map((m, i) => ({
    master: checkAddress(m, 'master'),
    replicas: replicas[i] ? [checkAddress(replicas[i]!, 'replica')] : [],
  }));
}

export function describeConfig(c: ClusterConfig): string {
  const lines = [`cluster created: epoch ${c.epoch}, failover ${c.failover}, durability ${c.durability}, check ${c.timing.checkMs} ms, lease ${c.timing.leaseMs} ms, down after ${c.timing.downAfterMs} ms`];
  for (const name of Object.keys(c.nodes).sort()) {
    const n = c.nodes[name]!;
    const slots = c.slots.filter((r) => r[2] === name).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
    lines.push(`  ${name}  master ${n.master}  replicas ${n.replicas.join(', ') || '(none)'}  slots ${slots.join(',')}`);
  }
  return lines.join('\n');
}

/** The ACL file lines of the two users (passwords as SHA-256 hashes), for operators who keep ACLs themselves. */
export function aclLines(): string[] {
  const c = nodeCredentials.get('control');
  const d = nodeCredentials.get('data');
  if (!c || !d) throw new UsageError('--acl print needs the credentials of both users (--auth-file or RINGSIDE_CONTROL_* / RINGSIDE_DATA_*)');
  if (!c.user) throw new UsageError('--acl print needs a named control user (the default user is configured with requirepass)');
  if (!nodeCredentials.split) throw new UsageError('--acl print: the data role has the same credentials as the control role; give it a user of its own');
  return [
    '# ringside: the control user (metadata, fail-over, migrations, replication) and the data user (app traffic)',
    aclFileLine(c.user, controlUserAcl(c.password)),
    aclFileLine(d.user ?? 'default', dataUserAcl(d.password)),
  ];
}

export async function run(argv: string[]): Promise<number> {
  const { shards: shardFlags, rest } = extractShards(argv);
  const { options, help } = parseOptions(rest, SPEC);
  if (help) {
    process.stdout.write(helpText(USAGE, summary, SPEC) + '\n');
    return 0;
  }
  useNodeCredentials(options);
  const acl = choiceOption(options, 'acl', ['setup', 'skip', 'print'] as const);
  if (acl === 'print') {
    process.stdout.write(aclLines().join('\n') + '\n');
    return 0;
  }
  const shards = shardsFrom(shardFlags, options);
  const timing: Record<string, number> = {};
  for (const [flag, key] of [['check-ms', 'checkMs'], ['lease-ms', 'leaseMs'], ['down-after-ms', 'downAfterMs']] as const) {
    const v = intOption(options, flag, 10, 3_600_000);
    if (v !== undefined) timing[key] = v;
  }
  const failover = choiceOption(options, 'failover', ['auto', 'manual'] as const);
  const durability = choiceOption(options, 'durability', ['async', 'replica'] as const);
  try {
    initialConfig(shards, { failover, timing, durability }); // an operator's mistake (same address twice, lease <= check) is a usage error
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  const config = await createCluster({
    shards,
    failover,
    durability,
    timing,
    force: options.force === true,
    acl,
    linkTimeoutMs: intOption(options, 'link-timeout-ms', 100, 3_600_000),
    onProgress: options.json ? undefined : (line) => process.stdout.write(line + '\n'),
  });
  process.stdout.write((options.json ? JSON.stringify(config, null, 2) : describeConfig(config)) + '\n');
  return 0;
}

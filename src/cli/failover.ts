/**
 * `ringside failover <node> [--to <replica>] --seeds ... [--yes]`: the atomic switch of a node's
 * master on an operator's command, in either fail-over mode, with every step printed as it goes.
 * A `switching` hint left by a dead leader for that node is finished or rolled back instead.
 */
import { hostname, userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { isAddress } from '../cluster/config';
import { openCluster } from '../failover/connect';
import { SwitchProgress, SwitchResult, resumeSwitch, runSwitch } from '../failover/switch';
import { SwitchError } from '../failover/errors';
import { OptionSpec, UsageError, intOption, listOption } from './args';
import { AUTH_OPTIONS, parseNodeCommand } from './auth';
import { seedsOption } from './status';

export const summary = "switch a node's master to one of its replicas (the atomic switch, on demand)";

const USAGE = 'ringside failover <node> [--to <replica host:port>] --seeds host:port[,...] [--yes]';

const SPEC: Record<string, OptionSpec> = {
  ...AUTH_OPTIONS,
  seeds: { type: 'string', arg: 'host:port,...', help: 'data nodes to read the configuration from (any of them)' },
  to: { type: 'string', arg: 'host:port', help: 'the replica to promote (default: the one with the most replicated data)' },
  yes: { type: 'boolean', short: 'y', help: 'do not ask for confirmation' },
  'margin-ms': { type: 'string', arg: 'ms', help: 'added to leaseMs for the wait (default max(500, leaseMs / 10))' },
  'timeout-ms': { type: 'string', arg: 'ms', default: '2000', help: 'per-command timeout towards each server' },
  config: { type: 'string', arg: 'file', help: 'JSON file with these settings' },
};

function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return `cli:${user}@${hostname()}`;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseNodeCommand(argv, SPEC, USAGE, summary);
  if (!parsed) return 0;
  const { options, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('name exactly one node to fail over, e.g. `ringside failover a --seeds ...`');
  const node = positionals[0]!;
  const seeds = seedsOption(listOption(options, 'seeds'));
  const to = typeof options.to === 'string' && options.to !== '' ? options.to : undefined;
  if (to !== undefined && !isAddress(to)) throw new UsageError(`--to ${JSON.stringify(to)} is not a host:port address`);
  const marginMs = intOption(options, 'margin-ms', 0, 600_000);
  const timeout = intOption(options, 'timeout-ms', 50, 600_000)!;

  const cluster = await openCluster(seeds, { timeoutMs: timeout });
  try {
    const { config } = cluster;
    const spec = config.nodes[node];
    if (!spec) throw new UsageError(`no node ${JSON.stringify(node)}; the nodes are ${Object.keys(config.nodes).sort().join(', ')}`);
    if (to !== undefined && !spec.replicas.includes(to))
      throw new UsageError(`${to} is not a replica of node ${node} (its replicas: ${spec.replicas.join(', ') || 'none'})`);
    const resuming = config.switching?.node === node;
    const what = resuming
      ? `settle the switch of node ${node} to ${config.switching!.to} left by ${config.switching!.by}`
      : `switch node ${node} from ${spec.master} to ${to ?? 'its most up-to-date replica'}`;
    if (options.yes !== true) {
      if (!process.stdin.isTTY) throw new UsageError(`refusing to ${what} without --yes (stdin is not a terminal)`);
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question(`${what}? Writes to its slots pause for about ${config.timing.leaseMs} ms. [y/N] `);
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) {
        process.stdout.write('nothing done\n');
        return 1;
      }
    }
    const started = Date.now();
    const onProgress = (p: SwitchProgress): void => {
      process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(2).padStart(6)}s] ${p.step.padEnd(8)} ${p.message}\n`);
    };
    const common = {
      config,
      by: operator(),
      masters: cluster.masters(),
      clientFor: cluster.clientFor,
      onProgress,
      marginMs,
      callTimeoutMs: timeout,
      reason: 'manual',
    };
    process.stdout.write(`${resuming ? 'settling' : 'switching'} node ${node} (configuration epoch ${config.epoch}, mode ${config.failover})\n`);
    let res: SwitchResult;
    try {
      res = resuming ? await resumeSwitch({ ...common, minAgeMs: 0 }) : await runSwitch({ ...common, node, to });
    } catch (e) {
      if (e instanceof SwitchError) {
        process.stderr.write(`ringside failover: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    const verdict =
      res.outcome === 'switched'
        ? `node ${res.node} is now served by ${res.to} (was ${res.from}); configuration epoch ${res.epoch}`
        : res.outcome === 'rolled-back'
          ? `switch of node ${res.node} rolled back: it stays with ${res.from}; configuration epoch ${res.epoch}`
          : `nothing to do: node ${res.node} was settled meanwhile (epoch ${res.epoch})`;
    process.stdout.write(`done in ${((Date.now() - started) / 1000).toFixed(2)}s: ${verdict}\n`);
    return 0;
  } finally {
    cluster.close();
  }
}

/**
 * CONFIG through the sidecar. The policy (docs/conformance.md, "Node administration"):
 *
 * - CONFIG GET asks a master (every node of a cluster is configured alike: `CONFIG SET` goes to
 *   all of them) and answers with its values, except for the settings that are the sidecar's own
 *   (its port, bind address, client limit, slow log, one database, not a Redis Cluster node).
 * - CONFIG SET of a node tunable goes to every node, masters and replicas, and answers OK when
 *   all of them took it, else the first error. Settings that would break the cluster are refused
 *   by name: where a node keeps its files, replication, the network, and security. The sidecar's
 *   own slow-log settings are set here.
 * - CONFIG RESETSTAT resets every node's statistics and the sidecar's own.
 * - CONFIG REWRITE is refused: each node's file is its operator's.
 */
import type { ParsedCommand } from '../resp/request-parser';
import type { Session } from './context';
import { controlRequest } from './fanout';
import { arrayElements } from '../resp/reply-framer';
import * as enc from '../resp/encode';
import * as text from './replies';

/** Settings refused through the sidecar, exactly or by prefix (ending in '-'/'*'). */
const REFUSED_EXACT = new Set([
  // files
  'dir', 'dbfilename', 'appendfilename', 'appenddirname', 'logfile', 'pidfile', 'aclfile', 'unixsocket', 'unixsocketperm',
  // replication
  'replicaof', 'slaveof', 'masterauth', 'masteruser', 'replica-read-only', 'slave-read-only', 'replica-serve-stale-data',
  'slave-serve-stale-data', 'min-replicas-to-write', 'min-slaves-to-write', 'min-replicas-max-lag', 'min-slaves-max-lag',
  'replica-priority', 'slave-priority',
  // network
  'port', 'bind', 'bind-source-addr', 'protected-mode', 'tcp-backlog', 'daemonize', 'supervised',
  // security
  'requirepass', 'enable-protected-configs', 'enable-debug-command', 'enable-module-command', 'rename-command',
]);
const REFUSED_PREFIXES = ['tls-', 'cluster-', 'replica-announce', 'slave-announce', 'repl-', 'sentinel'];

export function refusedSetting(name: string): boolean {
  const n = name.toLowerCase();
  return REFUSED_EXACT.has(n) || REFUSED_PREFIXES.some((p) => n.startsWith(p));
}

/** The sidecar's own settings, as CONFIG GET answers them. */
const OWN: Record<string, (s: Session) => string> = {
  port: (s) => String(s.ctx.options.port),
  bind: (s) => s.ctx.options.bind,
  unixsocket: (s) => s.ctx.options.unixsocket ?? '',
  maxclients: (s) => String(s.ctx.options.maxClients),
  'proto-max-bulk-len': (s) => String(s.ctx.options.limits.maxBulkLen),
  'slowlog-log-slower-than': (s) => String(s.ctx.slowlog.threshold),
  'slowlog-max-len': (s) => String(s.ctx.slowlog.maxLen),
  databases: () => '1',
  'cluster-enabled': () => 'no',
  // the sidecar asks no password of its clients, and the nodes' secrets are not the apps' to read
  requirepass: () => '',
  masterauth: () => '',
};

/** Redis's glob, case-insensitive, as CONFIG GET matches parameter names. */
export function globMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const j = pattern.indexOf(']', i + 1);
      if (j === -1) re += '\\[';
      else {
        re += '[' + pattern.slice(i + 1, j).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
        i = j;
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
    else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(re + '$', 'i').test(name);
}

/** Every node's address: masters and replicas. */
function everyNode(s: Session): string[] | null {
  const r = s.ctx.view.routing;
  if (r === null) return null;
  const out = [...r.masterOf];
  for (const reps of r.replicasOf) out.push(...reps);
  return out;
}

/** Sends `bytes` to every node and merges their replies. */
function toEveryNode(s: Session, t0: number, bytes: Buffer, merge: (replies: Buffer[]) => Buffer): void {
  const nodes = everyNode(s);
  if (nodes === null) return s.refuse('config', text.NO_CONFIG);
  // CONFIG is node administration: the control user runs it
  controlRequest(s, 'config', t0, nodes.length, merge, (req, conn) => {
    req.nodes = [];
    nodes.forEach((addr, i) => {
      req.node = addr;
      req.nodes!.push(addr);
      conn(addr).send(bytes, 0, bytes.length, req.fragment(i));
    });
  });
}

export function configCommand(s: Session, cmd: ParsedCommand, t0: number): void {
  const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
  switch (sub) {
    case 'get':
      return configGet(s, cmd, t0);
    case 'set':
      return configSet(s, cmd, t0);
    case 'resetstat':
      if (cmd.argc !== 2) return s.refuse('config', text.wrongArity('config|resetstat'));
      s.ctx.stats.commands.clear();
      s.ctx.slowlog.reset();
      return toEveryNode(s, t0, cmd.toResp(), text.allOk);
    case 'rewrite':
      return s.refuse('config', text.notSupported('config rewrite'));
    case 'help':
      return toEveryNode(s, t0, cmd.toResp(), (replies) => replies[0]!);
  }
  return s.refuse('config', text.unknownSubcommand('config', cmd.argc > 1 ? cmd.argString(1) : ''));
}

function configGet(s: Session, cmd: ParsedCommand, t0: number): void {
  if (cmd.argc < 3) return s.refuse('config', text.wrongArity('config|get'));
  const patterns: string[] = [];
  for (let i = 2; i < cmd.argc; i++) patterns.push(cmd.argString(i));
  const r = s.ctx.view.routing;
  if (r === null) return s.refuse('config', text.NO_CONFIG);
  const master = r.masterOf[0]!;
  const bytes = cmd.toResp();
  const merge = ([rep]: Buffer[]): Buffer => {
    if (rep![0] === 0x2d) return rep!;
    const els = arrayElements(rep!) ?? [];
    const pairs: Array<[string, Buffer]> = [];
    for (let k = 0; k + 1 < els.length; k += 2) {
      const [ks, ke] = els[k]!;
      const name = bulkText(rep!, ks, ke);
      pairs.push([name, rep!.subarray(els[k + 1]![0], els[k + 1]![1])]);
    }
    const seen = new Set(pairs.map(([n]) => n));
    const out: Buffer[] = [];
    for (const [n, v] of pairs) out.push(enc.bulk(n), OWN[n] ? enc.bulk(OWN[n]!(s)) : v);
    // the sidecar's own settings that the node does not have (none today) or that matched only here
    for (const [n, f] of Object.entries(OWN)) if (!seen.has(n) && patterns.some((p) => globMatch(p, n))) out.push(enc.bulk(n), enc.bulk(f(s)));
    return s.proto === 3 ? enc.map(out) : enc.array(out);
  };
  controlRequest(s, 'config', t0, 1, merge, (req, conn) => {
    req.node = master;
    conn(master).send(bytes, 0, bytes.length, req.fragment(0));
  });
}

function bulkText(buf: Buffer, s: number, e: number): string {
  if (buf[s] !== 0x24 && buf[s] !== 0x2b) return '';
  const cr = buf.indexOf(13, s);
  return buf[s] === 0x2b ? buf.toString('latin1', s + 1, cr) : buf.toString('latin1', cr + 2, e - 2);
}

function configSet(s: Session, cmd: ParsedCommand, t0: number): void {
  if (cmd.argc < 4 || cmd.argc % 2 !== 0) return s.refuse('config', text.wrongArity('config|set'));
  const local: Array<() => void> = [];
  const forward: Buffer[] = [cmd.arg(0), cmd.arg(1)];
  for (let i = 2; i < cmd.argc; i += 2) {
    const name = cmd.argLower(i);
    if (refusedSetting(name)) return s.refuse('config', text.configSetRefused(cmd.argString(i)));
    if (name === 'slowlog-log-slower-than' || name === 'slowlog-max-len') {
      const v = Number(cmd.argString(i + 1));
      if (!Number.isInteger(v) || (name === 'slowlog-max-len' && v < 0)) return s.refuse('config', `ERR CONFIG SET failed (possibly related to argument '${name}') - argument couldn't be parsed into an integer`);
      local.push(name === 'slowlog-max-len' ? () => (s.ctx.slowlog.maxLen = v) : () => (s.ctx.slowlog.threshold = v));
      continue;
    }
    forward.push(cmd.arg(i), cmd.arg(i + 1));
  }
  local.forEach((f) => f());
  if (forward.length === 2) return s.reply('config', enc.OK);
  const parts: Buffer[] = [Buffer.from(`*${forward.length}\r\n`)];
  for (const a of forward) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  toEveryNode(s, t0, Buffer.concat(parts), text.allOk);
}

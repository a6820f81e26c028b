/**
 * The sidecar's own answer to INFO, in Redis's format: `# Section` headers, `key:value` lines,
 * CRLF line endings, a blank line between sections. Server/Clients/Stats keep Redis's field names
 * (so redis-cli, ioredis, node-redis and redis-benchmark read them); Ringside and Nodes are ours.
 */
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import type { Histogram, Stats } from './stats';

/** The Redis version the sidecar answers as: the command set it speaks is Redis 7.0's. */
export const REDIS_COMPAT_VERSION = '7.0.0';

export interface InfoNode {
  /** host:port */
  address: string;
  /** shard name in the configuration (e.g. "a") */
  shard?: string;
  role?: 'master' | 'replica';
  /** false when the sidecar currently considers the node down */
  up?: boolean;
}

/**
 * Fields the nodes know and the sidecar does not, summed over the masters (docs/observe.md):
 * INFO through the sidecar asks every master for them, so that clients and tools that wait on
 * them (blocked_clients, rdb_changes_since_last_save) see the cluster's figures.
 */
export interface NodeInfoFields {
  /** the lowest redis_version among the masters */
  redisVersion?: string;
  blockedClients?: number;
  rdbChangesSinceLastSave?: number;
  rdbLastSaveTime?: number;
  masterReplOffset?: number;
  /** the masters' allocator (the same build everywhere) */
  memAllocator?: string;
}

/** The fields of NodeInfoFields from several nodes' INFO texts (unreadable ones left out). */
export function nodeInfoFields(texts: string[]): NodeInfoFields {
  const out: NodeInfoFields = {};
  const sum = (k: keyof NodeInfoFields, v: string | undefined) => {
    if (v === undefined || !/^-?\d+$/.test(v)) return;
    (out[k] as number) = ((out[k] as number | undefined) ?? 0) + Number(v);
  };
  for (const t of texts) {
    const f = new Map<string, string>();
    for (const line of t.split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i > 0 && line[0] !== '#') f.set(line.slice(0, i), line.slice(i + 1));
    }
    const v = f.get('redis_version');
    if (v && (!out.redisVersion || compareVersions(v, out.redisVersion) < 0)) out.redisVersion = v;
    sum('blockedClients', f.get('blocked_clients'));
    sum('rdbChangesSinceLastSave', f.get('rdb_changes_since_last_save'));
    sum('masterReplOffset', f.get('master_repl_offset'));
    const alloc = f.get('mem_allocator');
    if (alloc) out.memAllocator = alloc;
    const last = f.get('rdb_last_save_time');
    if (last && /^\d+$/.test(last)) out.rdbLastSaveTime = Math.min(out.rdbLastSaveTime ?? Infinity, Number(last));
  }
  return out;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

export interface InfoExtra {
  /** what the masters said, when they were asked */
  fromNodes?: NodeInfoFields;
  /** the sidecar id (as in failure reports and votes) */
  id: string;
  /** Ringside's package version */
  version: string;
  /** the Redis port the sidecar listens on */
  port: number;
  /** how reads are routed, e.g. "master" or "any" */
  readPolicy: string;
  /** the configuration's nodes; nodes the Stats know but not listed here are shown after them */
  nodes?: InfoNode[];
  /** how the nodes are reached and who the sidecar asks for passwords: names only, never a secret */
  access?: { nodeTls: boolean; controlUser: string | null; dataUser: string | null; clientAuth: boolean; tlsListener: boolean };
  /** the nodes whose masters this sidecar probes (holds a seat of; docs/protocol.md, "Probers"); null without an agent */
  probing?: string[] | null;
}

const DEFAULT_SECTIONS = ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'cpu', 'cluster', 'ringside', 'nodes'];
const ALL_SECTIONS = [...DEFAULT_SECTIONS.slice(0, -2), 'commandstats', ...DEFAULT_SECTIONS.slice(-2)];

type Fields = Array<[string, string | number]>;

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '0');

function human(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${bytes}B` : `${v.toFixed(2)}${units[i]}`;
}

/** The sections asked for, in Redis's order, without repeats; unknown names are dropped. */
function resolve(sections: string[] | 'default' | 'all'): string[] {
  const asked = typeof sections === 'string' ? [sections] : sections.length === 0 ? ['default'] : sections;
  const want = new Set<string>();
  for (const raw of asked) {
    const s = raw.toLowerCase();
    if (s === 'default') DEFAULT_SECTIONS.forEach((x) => want.add(x));
    else if (s === 'all' || s === 'everything') ALL_SECTIONS.forEach((x) => want.add(x));
    else if (ALL_SECTIONS.includes(s)) want.add(s);
  }
  return ALL_SECTIONS.filter((s) => want.has(s));
}

function meanUsec(h: Histogram | undefined): number {
  return h && h.count > 0 ? (h.sum / h.count) * 1e6 : 0;
}

function section(name: string, stats: Stats, extra: InfoExtra): Fields {
  const now = Date.now();
  switch (name) {
    case 'server': {
      const uptime = Math.floor((now - stats.startedAt) / 1000);
      return [
        ['redis_version', extra.fromNodes?.redisVersion ?? REDIS_COMPAT_VERSION],
        ['ringside_version', extra.version],
        ['redis_mode', 'standalone'],
        ['os', `${os.type()} ${os.release()} ${os.arch()}`],
        ['arch_bits', process.arch.endsWith('64') ? 64 : 32],
        ['process_id', process.pid],
        ['run_id', createHash('sha1').update(`${extra.id}:${stats.startedAt}`).digest('hex')],
        ['sidecar_id', extra.id],
        ['tcp_port', extra.port],
        ['server_time_usec', now * 1000],
        ['uptime_in_seconds', uptime],
        ['uptime_in_days', Math.floor(uptime / 86400)],
        ['executable', process.argv[1] ?? process.execPath],
      ];
    }
    case 'clients':
      return [
        ['connected_clients', stats.connectedClients],
        ['blocked_clients', extra.fromNodes?.blockedClients ?? 0],
      ];
    case 'memory': {
      const m = process.memoryUsage();
      return [
        ['used_memory', m.heapUsed],
        ['used_memory_human', human(m.heapUsed)],
        ['used_memory_rss', m.rss],
        ['used_memory_rss_human', human(m.rss)],
        ...(extra.fromNodes?.memAllocator ? ([['mem_allocator', extra.fromNodes.memAllocator]] as Fields) : []),
      ];
    }
    case 'persistence':
      // The sidecar keeps no data; clients (ioredis) wait while loading is not 0.
      return [
        ['loading', 0],
        ['async_loading', 0],
        ['rdb_changes_since_last_save', extra.fromNodes?.rdbChangesSinceLastSave ?? 0],
        ['rdb_bgsave_in_progress', 0],
        ['rdb_last_save_time', extra.fromNodes?.rdbLastSaveTime ?? Math.floor(stats.startedAt / 1000)],
        ['aof_enabled', 0],
      ];
    case 'stats': {
      let calls = 0;
      let failed = 0;
      for (const s of stats.commands.values()) {
        calls += s.calls;
        failed += s.errors + s.refused;
      }
      return [
        ['total_connections_received', stats.connectionsReceived],
        ['total_commands_processed', calls],
        ['total_net_input_bytes', stats.bytesIn],
        ['total_net_output_bytes', stats.bytesOut],
        ['rejected_connections', stats.rejectedConnections],
        ['total_error_replies', failed],
      ];
    }
    case 'replication':
      // To the application the sidecar is one writable server.
      return [
        ['role', 'master'],
        ['connected_slaves', 0],
        ['master_repl_offset', extra.fromNodes?.masterReplOffset ?? 0],
      ];
    case 'cpu': {
      const c = process.cpuUsage();
      return [
        ['used_cpu_sys', fixed(c.system / 1e6, 6)],
        ['used_cpu_user', fixed(c.user / 1e6, 6)],
      ];
    }
    case 'cluster':
      // Applications must not try cluster mode against the sidecar: it does the routing.
      return [['cluster_enabled', 0]];
    case 'commandstats': {
      const out: Fields = [];
      for (const [cmd, s] of [...stats.commands].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (s.calls === 0) continue;
        const executed = Math.max(0, s.calls - s.refused);
        out.push([
          `cmdstat_${cmd}`,
          `calls=${executed},usec=${Math.round(s.usec)},usec_per_call=${fixed(executed > 0 ? s.usec / executed : 0, 2)},rejected_calls=${s.refused},failed_calls=${s.errors}`,
        ]);
      }
      return out;
    }
    case 'ringside':
      return [
        ['read_policy', extra.readPolicy],
        ...(extra.access
          ? ([
              ['node_tls', extra.access.nodeTls ? 'yes' : 'no'],
              ['node_control_user', extra.access.controlUser ?? '-'],
              ['node_data_user', extra.access.dataUser ?? '-'],
              ['client_auth', extra.access.clientAuth ? 'yes' : 'no'],
              ['tls_listener', extra.access.tlsListener ? 'yes' : 'no'],
            ] as Fields)
          : []),
        ['config_epoch', stats.epoch],
        ['config_version', stats.version],
        ['lease_valid', stats.leaseValid ? 1 : 0],
        ['seconds_since_confirmed', stats.lastConfirmedAt > 0 ? Math.max(0, Math.floor((now - stats.lastConfirmedAt) / 1000)) : -1],
        ['config_checks', stats.configChecks],
        ['config_check_failures', stats.configCheckFailures],
        ['config_reloads', stats.configReloads],
        ['config_repairs', stats.configRepairs],
        ['redirects', stats.redirects],
        ['lease_expiries', stats.leaseExpiries],
        ['error_reports_sent', stats.errorReportsSent],
        ...(extra.probing !== undefined ? ([['probing_nodes', extra.probing === null ? '-' : extra.probing.join(',') || 'none']] as Fields) : []),
        ['votes_cast', stats.votesCast],
        ['elections_led', stats.electionsLed],
        ['elections_completed', stats.electionsCompleted],
      ];
    case 'nodes': {
      const listed = extra.nodes ?? [];
      const seen = new Set(listed.map((n) => n.address));
      const others = [...new Set([...stats.nodeConnections.keys(), ...stats.nodeLatency.keys()])].filter((a) => !seen.has(a)).sort();
      const nodes: InfoNode[] = [...listed, ...others.map((address) => ({ address }))];
      return nodes.map((n, i) => {
        const h = stats.nodeLatency.get(n.address);
        const parts = [`addr=${n.address}`];
        if (n.shard !== undefined) parts.push(`shard=${n.shard}`);
        if (n.role !== undefined) parts.push(`role=${n.role}`);
        if (n.up !== undefined) parts.push(`up=${n.up ? 1 : 0}`);
        parts.push(
          `connections=${stats.nodeConnections.get(n.address) ?? 0}`,
          `commands=${h?.count ?? 0}`,
          `usec_per_call=${fixed(meanUsec(h), 2)}`,
          `bytes_out=${stats.nodeBytesOut.get(n.address) ?? 0}`,
        );
        return [`node${i}`, parts.join(',')] as [string, string];
      });
    }
    default:
      return [];
  }
}

const TITLES: Record<string, string> = {
  server: 'Server',
  clients: 'Clients',
  memory: 'Memory',
  persistence: 'Persistence',
  stats: 'Stats',
  replication: 'Replication',
  cpu: 'CPU',
  cluster: 'Cluster',
  commandstats: 'Commandstats',
  ringside: 'Ringside',
  nodes: 'Nodes',
};

/**
 * The INFO text for the sections asked (names case-insensitive; `[]` or 'default' for INFO with
 * no argument; 'all'/'everything' add Commandstats). Unknown sections give '' like Redis.
 */
export function renderInfo(stats: Stats, sections: string[] | 'default' | 'all', extra: InfoExtra): string {
  return resolve(sections)
    .map((name) => [`# ${TITLES[name]}`, ...section(name, stats, extra).map(([k, v]) => `${k}:${String(v).replace(/[\r\n]/g, ' ')}`)].join('\r\n') + '\r\n')
    .join('\r\n');
}

/**
 * The Prometheus view of a Stats object. Every ringside_* metric is a small collector that reads
 * Stats when scraped: the hot path only increments plain numbers and never calls prom-client.
 * The registry is private to this instance (not prom-client's global one) and also carries the
 * process default metrics (process_*, nodejs_*).
 */
import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { LATENCY_BUCKETS, type Histogram, type Stats } from './stats';

type MetricType = 'counter' | 'gauge' | 'histogram';
type Labels = Record<string, string>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}

/**
 * A prom-client compatible metric whose samples are computed at scrape time. The registry only
 * needs `name`, `help`, `type`, `aggregator`, `get()` and `reset()`.
 */
class StatsCollector {
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  #read: () => Sample[];
  constructor(name: string, help: string, type: MetricType, read: () => Sample[]) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#read = read;
  }
  async get(): Promise<{ name: string; help: string; type: MetricType; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#read() };
  }
  /** Stats is the source of truth; there is nothing to reset here. */
  reset(): void {}
}

const BUCKET_LABELS = [...LATENCY_BUCKETS.map((b) => String(b)), '+Inf'];

/** Cumulative `_bucket` lines, `_sum` and `_count` of one fixed-bucket histogram. */
function histogramSamples(name: string, labels: Labels, h: Histogram): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  for (let i = 0; i < BUCKET_LABELS.length; i++) {
    cumulative += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: BUCKET_LABELS[i]! }, value: cumulative });
  }
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: cumulative });
  return out;
}

function perKey(map: Map<string, number>, label: string): Sample[] {
  return [...map].map(([k, v]) => ({ labels: { [label]: k }, value: v }));
}

export interface Metrics {
  readonly registry: Registry;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<string>;
  /** The Content-Type to serve `render()` with. */
  readonly contentType: string;
}

export function createMetrics(stats: Stats): Metrics {
  const registry = new Registry();
  const add = (name: string, help: string, type: MetricType, read: () => Sample[]): void =>
    registry.registerMetric(new StatsCollector(name, help, type, read) as unknown as Metric);
  const scalar = (name: string, help: string, type: MetricType, read: () => number): void =>
    add(name, help, type, () => [{ labels: {}, value: read() }]);

  add('ringside_commands_total', 'Commands received from applications, by command name and outcome (ok, error: the node replied with an error, refused: the sidecar refused it).', 'counter', () => {
    const out: Sample[] = [];
    for (const [command, s] of stats.commands) {
      out.push({ labels: { command, outcome: 'ok' }, value: Math.max(0, s.calls - s.errors - s.refused) });
      out.push({ labels: { command, outcome: 'error' }, value: s.errors });
      out.push({ labels: { command, outcome: 'refused' }, value: s.refused });
    }
    return out;
  });
  add('ringside_command_duration_seconds', 'Time from a command\'s arrival to its reply, by command family.', 'histogram', () =>
    [...stats.familyLatency].flatMap(([family, h]) => histogramSamples('ringside_command_duration_seconds', { family }, h)),
  );
  add('ringside_node_command_duration_seconds', 'Time a data node took to answer the commands sent to it, by node address.', 'histogram', () =>
    [...stats.nodeLatency].flatMap(([node, h]) => histogramSamples('ringside_node_command_duration_seconds', { node }, h)),
  );

  scalar('ringside_connected_clients', 'Application connections currently open.', 'gauge', () => stats.connectedClients);
  scalar('ringside_connections_received_total', 'Application connections accepted since start.', 'counter', () => stats.connectionsReceived);
  scalar('ringside_rejected_connections_total', 'Application connections refused since start.', 'counter', () => stats.rejectedConnections);
  add('ringside_node_connections', 'Data connections currently open to each node.', 'gauge', () => perKey(stats.nodeConnections, 'node'));
  add('ringside_node_bytes_out_total', 'Bytes sent to each node.', 'counter', () => perKey(stats.nodeBytesOut, 'node'));
  scalar('ringside_bytes_in_total', 'Bytes received from applications.', 'counter', () => stats.bytesIn);
  scalar('ringside_bytes_out_total', 'Bytes sent to applications.', 'counter', () => stats.bytesOut);

  scalar('ringside_redirects_total', 'Commands reissued after -MIGRATED or a wrong-slot answer.', 'counter', () => stats.redirects);
  scalar('ringside_config_reloads_total', 'Cluster configurations loaded after a change.', 'counter', () => stats.configReloads);
  scalar('ringside_config_repairs_total', 'Older configuration copies rewritten on a node (read repair).', 'counter', () => stats.configRepairs);
  scalar('ringside_config_checks_total', 'Periodic configuration version checks.', 'counter', () => stats.configChecks);
  scalar('ringside_config_check_failures_total', 'Version checks that could not confirm on a majority of masters.', 'counter', () => stats.configCheckFailures);
  scalar('ringside_lease_valid', '1 while the cached configuration is within its lease, else 0.', 'gauge', () => (stats.leaseValid ? 1 : 0));
  scalar('ringside_lease_expiries_total', 'Times the lease lapsed and routing stopped.', 'counter', () => stats.leaseExpiries);
  scalar('ringside_seconds_since_config_confirmed', 'Seconds since the configuration version was last confirmed on a majority of masters (+Inf: never).', 'gauge', () =>
    stats.lastConfirmedAt > 0 ? Math.max(0, (Date.now() - stats.lastConfirmedAt) / 1000) : Infinity,
  );
  add('ringside_config_info', 'Always 1; the version label is the SHA1 of the cached configuration (empty before the first load).', 'gauge', () => [
    { labels: { version: stats.version }, value: 1 },
  ]);
  scalar('ringside_config_epoch', 'Epoch of the cached cluster configuration.', 'gauge', () => stats.epoch);

  scalar('ringside_error_reports_sent_total', 'Node failure reports pushed to other masters.', 'counter', () => stats.errorReportsSent);
  scalar('ringside_votes_total', 'Votes cast to fail over a node.', 'counter', () => stats.votesCast);
  scalar('ringside_elections_led_total', 'Elections this sidecar led.', 'counter', () => stats.electionsLed);
  scalar('ringside_elections_completed_total', 'Elections this sidecar led to the end (new master in place).', 'counter', () => stats.electionsCompleted);

  collectDefaultMetrics({ register: registry });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}

import t from 'tap';
import { Stats } from '../../src/observe/stats';
import { renderInfo, REDIS_COMPAT_VERSION, type InfoExtra } from '../../src/observe/info';

const extra: InfoExtra = {
  id: 'sidecar-1',
  version: '0.1.0',
  port: 6379,
  readPolicy: 'master',
  nodes: [
    { address: '10.0.0.1:6379', shard: 'a', role: 'master', up: true },
    { address: '10.0.0.2:6379', shard: 'a', role: 'replica', up: false },
  ],
};

/** Parses INFO text the strict way: CRLF lines, "# Title" headers, key:value lines, one blank line between sections. */
function parse(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  if (text === '') return sections;
  if (!text.endsWith('\r\n')) throw new Error('INFO text must end with CRLF');
  const lines = text.slice(0, -2).split('\r\n');
  let current: Map<string, string> | null = null;
  for (const line of lines) {
    if (line.includes('\n') || line.includes('\r')) throw new Error(`bare CR or LF in ${JSON.stringify(line)}`);
    if (line.startsWith('# ')) {
      current = new Map();
      sections.set(line.slice(2), current);
    } else if (line === '') {
      current = null;
    } else {
      if (!current) throw new Error(`line outside a section: ${JSON.stringify(line)}`);
      const i = line.indexOf(':');
      if (i <= 0) throw new Error(`not key:value: ${JSON.stringify(line)}`);
      current.set(line.slice(0, i), line.slice(i + 1));
    }
  }
  return sections;
}

/** "a=1,b=x" → { a: '1', b: 'x' } */
const fields = (v: string | undefined): Record<string, string> =>
  Object.fromEntries((v ?? '').split(',').map((kv) => kv.split('=', 2) as [string, string]));

function loaded(): Stats {
  const stats = new Stats();
  for (let i = 0; i < 3; i++) stats.recordCommand('get', 'ok', 100);
  stats.recordCommand('get', 'error', 50);
  stats.recordCommand('set', 'refused', 7);
  stats.recordCommand('set', 'refused', 3);
  stats.recordCommand('set', 'ok', 90);
  stats.connectedClients = 4;
  stats.connectionsReceived = 9;
  stats.bytesIn = 100;
  stats.bytesOut = 200;
  stats.rejectedConnections = 1;
  stats.epoch = 12;
  stats.version = 'deadbeef';
  stats.leaseValid = true;
  stats.lastConfirmedAt = Date.now() - 3000;
  stats.configChecks = 6;
  stats.configReloads = 2;
  stats.redirects = 5;
  stats.leaseExpiries = 1;
  stats.errorReportsSent = 3;
  stats.votesCast = 2;
  stats.electionsLed = 1;
  stats.nodeConnections.set('10.0.0.1:6379', 3);
  stats.nodeConnections.set('10.0.0.9:6379', 1); // known to stats, not in the configuration given
  stats.node('10.0.0.1:6379').observe(0.0002);
  stats.node('10.0.0.1:6379').observe(0.0004);
  return stats;
}

t.test('INFO with no section gives the default sections as CRLF key:value lines', async (t) => {
  const text = renderInfo(loaded(), [], extra);
  const info = parse(text);
  t.same([...info.keys()], ['Server', 'Clients', 'Memory', 'Persistence', 'Stats', 'Replication', 'CPU', 'Cluster', 'Ringside', 'Nodes']);
  t.same([...parse(renderInfo(loaded(), 'default', extra)).keys()], [...info.keys()], "'default' is the same as no argument");
  t.match(text, /\r\n\r\n# Clients\r\n/, 'a blank line between sections');

  const server = info.get('Server')!;
  t.equal(server.get('redis_version'), REDIS_COMPAT_VERSION);
  t.equal(REDIS_COMPAT_VERSION, '7.0.0');
  t.equal(server.get('redis_mode'), 'standalone');
  t.equal(server.get('process_id'), String(process.pid));
  t.equal(server.get('tcp_port'), '6379');
  t.equal(server.get('ringside_version'), '0.1.0');
  t.equal(server.get('sidecar_id'), 'sidecar-1');
  t.match(server.get('run_id'), /^[0-9a-f]{40}$/);
  t.match(server.get('os'), /\S/);
  t.match(server.get('uptime_in_seconds'), /^\d+$/);
  t.equal(info.get('Clients')!.get('connected_clients'), '4');
  t.equal(info.get('Persistence')!.get('loading'), '0', 'clients that wait for loading:0 proceed');
  t.equal(info.get('Cluster')!.get('cluster_enabled'), '0');
  t.equal(info.get('Replication')!.get('role'), 'master');

  const stats = info.get('Stats')!;
  t.equal(stats.get('total_connections_received'), '9');
  t.equal(stats.get('total_commands_processed'), '7');
  t.equal(stats.get('total_net_input_bytes'), '100');
  t.equal(stats.get('total_net_output_bytes'), '200');
  t.equal(stats.get('rejected_connections'), '1');
  t.equal(stats.get('total_error_replies'), '3');
  t.notOk(info.has('Commandstats'), 'commandstats only on request, as in Redis');
});

t.test('INFO commandstats shows calls, usec, usec_per_call, rejected_calls and failed_calls per command', async (t) => {
  const info = parse(renderInfo(loaded(), ['commandstats'], extra));
  t.same([...info.keys()], ['Commandstats']);
  const cs = info.get('Commandstats')!;
  t.same([...cs.keys()], ['cmdstat_get', 'cmdstat_set']);
  t.equal(cs.get('cmdstat_get'), 'calls=4,usec=350,usec_per_call=87.50,rejected_calls=0,failed_calls=1');
  // refused commands are Redis's rejected_calls: not counted in calls
  t.same(fields(cs.get('cmdstat_set')), { calls: '1', usec: '100', usec_per_call: '100.00', rejected_calls: '2', failed_calls: '0' });
});

t.test('INFO section names are case-insensitive, several may be asked, and unknown ones give nothing', async (t) => {
  const stats = loaded();
  t.same([...parse(renderInfo(stats, ['RINGSIDE', 'Clients'], extra)).keys()], ['Clients', 'Ringside'], 'in Redis order');
  t.same([...parse(renderInfo(stats, ['CommandStats'], extra)).keys()], ['Commandstats']);
  t.equal(renderInfo(stats, ['nosuchsection'], extra), '');
  t.same([...parse(renderInfo(stats, ['nosuchsection', 'clients'], extra)).keys()], ['Clients']);
  const all = [...parse(renderInfo(stats, 'all', extra)).keys()];
  t.ok(all.includes('Commandstats') && all.includes('Server') && all.includes('Nodes'), 'all includes commandstats');
  t.same([...parse(renderInfo(stats, ['everything'], extra)).keys()], all);
});

t.test('INFO ringside shows the configuration, lease and fail-over figures', async (t) => {
  const r = parse(renderInfo(loaded(), ['ringside'], extra)).get('Ringside')!;
  t.equal(r.get('config_epoch'), '12');
  t.equal(r.get('config_version'), 'deadbeef');
  t.equal(r.get('lease_valid'), '1');
  const since = Number(r.get('seconds_since_confirmed'));
  t.ok(since >= 3 && since < 3600, `seconds since confirmed about 3 (${since})`);
  t.equal(r.get('config_checks'), '6');
  t.equal(r.get('config_reloads'), '2');
  t.equal(r.get('redirects'), '5');
  t.equal(r.get('lease_expiries'), '1');
  t.equal(r.get('error_reports_sent'), '3');
  t.equal(r.get('votes_cast'), '2');
  t.equal(r.get('elections_led'), '1');
  t.equal(r.get('read_policy'), 'master');
  const fresh = parse(renderInfo(new Stats(), ['ringside'], extra)).get('Ringside')!;
  t.equal(fresh.get('seconds_since_confirmed'), '-1', 'never confirmed');
  t.equal(fresh.get('lease_valid'), '0');
});

t.test('INFO nodes lists each node with its connections and latency, configured ones first', async (t) => {
  const n = parse(renderInfo(loaded(), ['nodes'], extra)).get('Nodes')!;
  t.same([...n.keys()], ['node0', 'node1', 'node2']);
  t.same(fields(n.get('node0')), {
    addr: '10.0.0.1:6379', shard: 'a', role: 'master', up: '1', connections: '3', commands: '2', usec_per_call: '300.00', bytes_out: '0',
  });
  t.same(fields(n.get('node1')), {
    addr: '10.0.0.2:6379', shard: 'a', role: 'replica', up: '0', connections: '0', commands: '0', usec_per_call: '0.00', bytes_out: '0',
  });
  t.equal(fields(n.get('node2')).addr, '10.0.0.9:6379');
  t.equal(fields(n.get('node2')).connections, '1');
});

t.test('ioredis\'s ready check reads INFO as ready', async (t) => {
  // the same parsing ioredis does in _readyCheck: split on CRLF, then on the first colons
  const info: Record<string, string> = {};
  for (const line of renderInfo(loaded(), [], extra).split('\r\n')) {
    const [k, ...v] = line.split(':');
    if (v.join(':')) info[k!] = v.join(':');
  }
  t.equal(info.loading, '0');
  t.equal(info.redis_version, '7.0.0');
});

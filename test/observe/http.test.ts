import t from 'tap';
import { Stats } from '../../src/observe/stats';
import { startHttp, readinessFromStats, ObservePortInUseError, type Readiness } from '../../src/observe/http';

/** Sample lines (not comments) of a Prometheus text exposition, as "name{labels}" → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    out.set(m[1]!, m[2] === '+Inf' ? Infinity : m[2] === 'Nan' ? NaN : Number(m[2]));
  }
  return out;
}

function workload(stats: Stats): void {
  for (let i = 0; i < 3; i++) stats.recordCommand('get', 'ok', 150);
  stats.recordCommand('get', 'error', 300);
  stats.recordCommand('set', 'refused', 5);
  stats.recordCommand('set', 'refused', 5);
  stats.recordCommand('set', 'ok', 1000);
  const simple = stats.family('simple');
  simple.observe(0.0002);
  simple.observe(0.0002);
  simple.observe(0.003);
  simple.observe(20);
  stats.family('fanout').observe(0.0001); // on a bound: counted in le="0.0001"
  stats.node('10.0.0.1:6379').observe(0.0004);
  stats.node('10.0.0.2:6379').observe(0.06);
  stats.connectionsReceived = 7;
  stats.connectedClients = 2;
  stats.nodeConnections.set('10.0.0.1:6379', 3);
  stats.nodeConnections.set('10.0.0.2:6379', 1);
  stats.bytesIn = 1234;
  stats.bytesOut = 5678;
  stats.redirects = 4;
  stats.configReloads = 2;
  stats.configChecks = 11;
  stats.configCheckFailures = 1;
  stats.leaseValid = true;
  stats.leaseExpiries = 1;
  stats.lastConfirmedAt = Date.now() - 2500;
  stats.epoch = 12;
  stats.version = 'abc123';
  stats.errorReportsSent = 5;
  stats.votesCast = 3;
  stats.electionsLed = 1;
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

t.test('metrics scraped after a known workload show its exact counts and histogram buckets', async (t) => {
  const stats = new Stats();
  workload(stats);
  const http = await startHttp({ port: 0, stats, readiness: () => ({ ready: true, reason: '' }) });
  t.teardown(() => http.close());
  t.match(http.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const r = await get(`${http.url}/metrics`);
  t.equal(r.status, 200);
  t.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
  t.match(r.body, /^# TYPE ringside_commands_total counter$/m);
  t.match(r.body, /^# TYPE ringside_command_duration_seconds histogram$/m);
  t.match(r.body, /^# TYPE ringside_node_command_duration_seconds histogram$/m);
  t.match(r.body, /^# TYPE ringside_lease_valid gauge$/m);
  const s = samples(r.body);

  t.equal(s.get('ringside_commands_total{command="get",outcome="ok"}'), 3);
  t.equal(s.get('ringside_commands_total{command="get",outcome="error"}'), 1);
  t.equal(s.get('ringside_commands_total{command="get",outcome="refused"}'), 0);
  t.equal(s.get('ringside_commands_total{command="set",outcome="ok"}'), 1);
  t.equal(s.get('ringside_commands_total{command="set",outcome="refused"}'), 2);

  const fam = (le: string): number | undefined => s.get(`ringside_command_duration_seconds_bucket{family="simple",le="${le}"}`);
  t.equal(fam('0.0001'), 0);
  t.equal(fam('0.00025'), 2);
  t.equal(fam('0.0025'), 2);
  t.equal(fam('0.005'), 3);
  t.equal(fam('10'), 3);
  t.equal(fam('+Inf'), 4);
  t.equal(s.get('ringside_command_duration_seconds_count{family="simple"}'), 4);
  t.ok(Math.abs(s.get('ringside_command_duration_seconds_sum{family="simple"}')! - 20.0034) < 1e-9, 'sum of observations');
  t.equal(s.get('ringside_command_duration_seconds_bucket{family="fanout",le="0.0001"}'), 1);
  t.equal(s.get('ringside_command_duration_seconds_count{family="fanout"}'), 1);
  t.equal(s.get('ringside_node_command_duration_seconds_bucket{node="10.0.0.1:6379",le="0.00025"}'), 0);
  t.equal(s.get('ringside_node_command_duration_seconds_bucket{node="10.0.0.1:6379",le="0.0005"}'), 1);
  t.equal(s.get('ringside_node_command_duration_seconds_bucket{node="10.0.0.2:6379",le="0.05"}'), 0);
  t.equal(s.get('ringside_node_command_duration_seconds_bucket{node="10.0.0.2:6379",le="0.1"}'), 1);
  t.equal(s.get('ringside_node_command_duration_seconds_count{node="10.0.0.2:6379"}'), 1);
  // every bucket series is cumulative: never decreasing along le
  const les = [...s.keys()].filter((k) => k.startsWith('ringside_command_duration_seconds_bucket{family="simple"'));
  t.equal(les.length, 17, '16 bounds and +Inf');
  const counts = les.map((k) => s.get(k)!);
  t.same(counts, [...counts].sort((a, b) => a - b));

  t.equal(s.get('ringside_connected_clients'), 2);
  t.equal(s.get('ringside_connections_received_total'), 7);
  t.equal(s.get('ringside_node_connections{node="10.0.0.1:6379"}'), 3);
  t.equal(s.get('ringside_node_connections{node="10.0.0.2:6379"}'), 1);
  t.equal(s.get('ringside_bytes_in_total'), 1234);
  t.equal(s.get('ringside_bytes_out_total'), 5678);
  t.equal(s.get('ringside_redirects_total'), 4);
  t.equal(s.get('ringside_config_reloads_total'), 2);
  t.equal(s.get('ringside_config_checks_total'), 11);
  t.equal(s.get('ringside_config_check_failures_total'), 1);
  t.equal(s.get('ringside_lease_valid'), 1);
  t.equal(s.get('ringside_lease_expiries_total'), 1);
  const since = s.get('ringside_seconds_since_config_confirmed')!;
  t.ok(since >= 2.5 && since < 3600, `seconds since confirmed is about 2.5 (${since})`);
  t.equal(s.get('ringside_config_epoch'), 12);
  t.equal(s.get('ringside_config_info{version="abc123"}'), 1);
  t.equal(s.get('ringside_error_reports_sent_total'), 5);
  t.equal(s.get('ringside_votes_total'), 3);
  t.equal(s.get('ringside_elections_led_total'), 1);
  t.ok(s.has('process_cpu_user_seconds_total'), 'process default metrics');
  t.ok(s.has('nodejs_heap_size_total_bytes'), 'node.js default metrics');
});

t.test('metrics are read from Stats at each scrape, not when the registry was made', async (t) => {
  const stats = new Stats();
  const http = await startHttp({ port: 0, stats, readiness: () => ({ ready: true, reason: '' }) });
  t.teardown(() => http.close());
  let s = samples((await get(`${http.url}/metrics`)).body);
  t.equal(s.get('ringside_lease_valid'), 0);
  t.equal(s.get('ringside_seconds_since_config_confirmed'), Infinity, 'never confirmed');
  t.notOk(s.has('ringside_commands_total{command="get",outcome="ok"}'));

  stats.recordCommand('get', 'ok', 10);
  stats.recordCommand('get', 'ok', 10);
  stats.family('simple').observe(0.001);
  stats.leaseValid = true;
  s = samples((await get(`${http.url}/metrics`)).body);
  t.equal(s.get('ringside_commands_total{command="get",outcome="ok"}'), 2);
  t.equal(s.get('ringside_command_duration_seconds_bucket{family="simple",le="0.001"}'), 1);
  t.equal(s.get('ringside_lease_valid'), 1);
});

t.test('readyz answers 503 with the reason, then 200, then 503 as readiness changes', async (t) => {
  let state: Readiness = { ready: false, reason: 'no configuration confirmed yet' };
  const http = await startHttp({ port: 0, stats: new Stats(), readiness: () => state });
  t.teardown(() => http.close());
  let r = await get(`${http.url}/readyz`);
  t.equal(r.status, 503);
  t.equal(r.body.trim(), 'no configuration confirmed yet');
  state = { ready: true, reason: 'within lease' };
  r = await get(`${http.url}/readyz`);
  t.equal(r.status, 200);
  state = { ready: false, reason: 'configuration lease lapsed' };
  r = await get(`${http.url}/readyz`);
  t.equal(r.status, 503);
  t.equal(r.body.trim(), 'configuration lease lapsed');
});

t.test('readyz from the lease flips when the lease lapses and comes back', async (t) => {
  const stats = new Stats();
  const http = await startHttp({ port: 0, stats, readiness: readinessFromStats(stats) });
  t.teardown(() => http.close());
  t.equal((await get(`${http.url}/readyz`)).status, 503);
  stats.leaseValid = true;
  stats.lastConfirmedAt = Date.now();
  t.equal((await get(`${http.url}/readyz`)).status, 200);
  stats.leaseValid = false;
  const r = await get(`${http.url}/readyz`);
  t.equal(r.status, 503);
  t.equal(r.body.trim(), 'configuration lease lapsed');
});

t.test('a readiness callback that throws makes readyz 503, not a crash', async (t) => {
  const http = await startHttp({ port: 0, stats: new Stats(), readiness: () => { throw new Error('boom'); } });
  t.teardown(() => http.close());
  const r = await get(`${http.url}/readyz`);
  t.equal(r.status, 503);
  t.match(r.body, /boom/);
});

t.test('healthz is 200 ok whatever readiness says; unknown paths 404; other methods 405', async (t) => {
  const http = await startHttp({ port: 0, stats: new Stats(), readiness: () => ({ ready: false, reason: 'down' }) });
  t.teardown(() => http.close());
  const h = await get(`${http.url}/healthz`);
  t.equal(h.status, 200);
  t.equal(h.body, 'ok\n');
  t.equal((await get(`${http.url}/nope`)).status, 404);
  t.equal((await get(`${http.url}/metrics?x=1`)).status, 200, 'query strings are ignored');
  const post = await fetch(`${http.url}/metrics`, { method: 'POST', body: 'x' });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD');
  await post.text();
  const head = await get(`${http.url}/metrics`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '');
  t.equal((await get(`${http.url}/healthz`, { method: 'HEAD' })).status, 200);
});

t.test('a port already in use is refused with ObservePortInUseError', async (t) => {
  const first = await startHttp({ port: 0, stats: new Stats(), readiness: () => ({ ready: true, reason: '' }) });
  t.teardown(() => first.close());
  const port = Number(new URL(first.url).port);
  const err = await startHttp({ port, stats: new Stats(), readiness: () => ({ ready: true, reason: '' }) }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof ObservePortInUseError, 'named error class');
  t.equal((err as ObservePortInUseError).name, 'ObservePortInUseError');
  t.equal((err as ObservePortInUseError).port, port);
  t.match((err as Error).message, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
});

t.test('close stops the server even with a keep-alive connection open', async (t) => {
  const http = await startHttp({ port: 0, stats: new Stats(), readiness: () => ({ ready: true, reason: '' }) });
  t.equal((await get(`${http.url}/healthz`)).status, 200); // fetch keeps the connection alive
  await http.close();
  await t.rejects(fetch(`${http.url}/healthz`), 'nothing listens any more');
});

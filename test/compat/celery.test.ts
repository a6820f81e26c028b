/**
 * A real task framework through the sidecar (issue 21): Debian's Celery, with its Redis broker
 * and its Redis result backend, a worker and a client, against a 3-master cluster. The result
 * backend stores each result and publishes it in one MULTI (SETEX + PUBLISH): it worked only once
 * PUBLISH could be part of a transaction. The broker's own transactions need its keys in one slot:
 * the app gives them a {tag} (transport options), as an app must without placement rules.
 */
import t from 'tap';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setLogSink } from '../../src/observe/log';
import { tiedToParent } from '../../src/embedded/redis-process';
import { startCluster } from '../helpers/cluster';
import { startSidecar, until } from '../helpers/sidecar';

setLogSink(() => {});
const PY = '/usr/bin/python3';

const TASKS = `
import os
from celery import Celery
url = 'redis://127.0.0.1:%s/0' % os.environ['RS_PORT']
app = Celery('tasks', broker=url, backend=url)
app.conf.broker_transport_options = {
    'priority_steps': [0],
    'unacked_key': '{celery}unacked',
    'unacked_index_key': '{celery}unacked_index',
    'unacked_mutex_key': '{celery}unacked_mutex',
}
app.conf.worker_hijack_root_logger = False

@app.task
def add(x, y):
    return x + y
`;

const CLIENT = `
from tasks import add
results = [add.delay(i, 100).get(timeout=30) for i in range(10)]
print(' '.join(str(r) for r in results))
`;

t.test('Celery: a worker and a client through the sidecar run tasks and get their results', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicasPerMaster: 0 });
  const sc = await startSidecar(t, cluster);
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-celery-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'tasks.py'), TASKS);
  writeFileSync(path.join(dir, 'client.py'), CLIENT);
  const env = { ...process.env, RS_PORT: String(sc.options.port), PYTHONPATH: dir, PYTHONDONTWRITEBYTECODE: '1' };
  const [cmd, args] = tiedToParent(PY, ['-m', 'celery', '-A', 'tasks', 'worker', '--pool=solo', '--without-gossip', '--without-mingle', '-l', 'info']);
  const worker = spawn(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  worker.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  t.teardown(async () => {
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  await until('the worker to be ready', () => /ready\./.test(log) || worker.exitCode !== null, 30_000);
  t.equal(worker.exitCode, null, `the worker runs (log: ${log.slice(-500)})`);
  const out = await new Promise<string>((res) =>
    execFile(PY, ['client.py'], { cwd: dir, env, timeout: 90_000 }, (e, stdout, stderr) => res(e ? `failed: ${e.message}\n${stdout}${stderr}` : stdout)),
  );
  t.equal(out.trim(), Array.from({ length: 10 }, (_, i) => String(i + 100)).join(' '), 'ten tasks ran and their results came back');
  t.notMatch(log, /CROSSSLOT|cannot be part of a transaction/, 'the worker met no refusal');
  t.equal(sc.stats.commands.get('publish')?.refused ?? 0, 0, 'no PUBLISH refused');
});

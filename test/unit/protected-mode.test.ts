/**
 * Protected mode, as in Redis: the sidecar does not authenticate its clients, so listening on an
 * address other hosts can reach is refused at start-up with a message that says why and how to
 * proceed, unless the operator says `--protected-mode no`.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parseOptions } from '../../src/cli/args';
import { SERVE_OPTIONS, isLoopback, sidecarConfig } from '../../src/cli/serve';

const BIN = join(__dirname, '..', '..', '..', 'bin', 'ringside.js');
const config = (...argv: string[]) => sidecarConfig(parseOptions(['--seeds', '127.0.0.1:7000', ...argv], SERVE_OPTIONS, {}).options);

t.test('loopback addresses are recognised, and only they', async (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '::ffff:127.0.0.1', 'LOCALHOST']) t.ok(isLoopback(a), a);
  for (const a of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', '128.0.0.1', '127.0.0.1.example.org', 'example.org', '']) t.notOk(isLoopback(a), a);
});

t.test('a loopback --bind starts as before', async (t) => {
  t.equal(config().bind, '127.0.0.1', 'the default');
  t.equal(config('--bind', '::1').bind, '::1');
});

t.test('a non-loopback --bind is refused with a clear message, and --protected-mode no allows it', async (t) => {
  for (const bind of ['0.0.0.0', '::', '10.1.2.3']) {
    t.throws(() => config('--bind', bind), { name: 'UsageError', message: new RegExp(`^--bind ${bind.replace(/\./g, '\\.')} would let other hosts send commands .* --protected-mode no`) }, bind);
    t.equal(config('--bind', bind, '--protected-mode', 'no').bind, bind, `${bind} with --protected-mode no`);
  }
  t.throws(() => config('--protected-mode', 'off'), /protected-mode/, 'a typo in the value is an error, not a silent yes or no');
});

t.test('ringside serve on 0.0.0.0 exits at once with the message, before reaching any node', async (t) => {
  const res = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'serve', '--bind', '0.0.0.0', '--seeds', '127.0.0.1:1', '--metrics-port', 'off'], { timeout: 30_000 }, (err, _out, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
    );
  });
  t.not(res.code, 0, 'a non-zero exit');
  t.match(res.stderr, /protected mode/, res.stderr);
});

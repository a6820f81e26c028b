// The sidecar's node flags (src/cli/node-flags.ts) are set where node starts: bin/ringside.js's #!
// line, `npm run demo`, the systemd unit and the Dockerfile (their own tests check those two), the
// bench. `serve` says so in its log when they are missing.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { NODE_FLAGS, missingNodeFlags } from '../../src/cli/node-flags';

const ROOT = resolve(__dirname, '../../..');
const BIN = resolve(ROOT, 'bin/ringside.js');

t.test('missingNodeFlags names the flags the running node lacks, whatever their value or spelling', async (t) => {
  t.same(missingNodeFlags([]), NODE_FLAGS);
  t.same(missingNodeFlags([...NODE_FLAGS]), []);
  t.same(missingNodeFlags(['--initial-old-space-size=128', '--max-semi-space-size=16']), [], 'other values count as set (an operator chose them)');
  t.same(missingNodeFlags(['--initial_old_space_size=64', '--max_semi_space_size=8']), [], 'V8 takes underscores too');
  t.same(missingNodeFlags(['--max-old-space-size=64']), NODE_FLAGS, 'a different heap flag does not');
  t.same(missingNodeFlags(['--initial-old-space-size=64']), ['--max-semi-space-size=8'], 'one of two: the other is named');
});

t.test("bin/ringside.js's #! line and `npm run demo` pass NODE_FLAGS to node", async (t) => {
  const first = readFileSync(BIN, 'utf8').split('\n')[0];
  t.equal(first, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.equal(pkg.scripts.demo, `node ${NODE_FLAGS.join(' ')} bin/ringside.js demo`);
  const setup = readFileSync(resolve(ROOT, 'bench/lib/setup.ts'), 'utf8');
  // the --cpu-prof mode's node arguments (nodeArgs) come after them
  t.match(setup, /\.\.\.NODE_FLAGS, \.\.\.nodeArgs, RINGSIDE_BIN, 'serve'/, 'the bench starts the sidecar with them');
  t.match(setup, /\.\.\.NODE_FLAGS,\s+path\.join\(__dirname, 'relay\.js'\)/, 'and the blind relay it measures beside it');
});

/** Starts `serve` (no reachable seed: it listens and keeps retrying) and returns its output once it listens. */
function serveOutput(cmd: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, [...args, 'serve', '--port', '0', '--metrics-port', 'off', '--seeds', '127.0.0.1:1', '--no-failover'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`serve did not start:\n${out}`));
    }, 30_000);
    const read = (d: Buffer): void => {
      out += d.toString();
      if (/listening on/.test(out)) {
        // the warning, when there is one, is logged before the "listening" line
        clearTimeout(timer);
        child.kill('SIGKILL');
        done(out);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
  });
}

t.test('serve started through bin/ringside.js itself runs with the flags and does not warn', async (t) => {
  const out = await serveOutput(BIN, []);
  t.match(out, /listening on/);
  t.notMatch(out, /node-flags-missing/);
});

t.test('serve started as `node bin/ringside.js` without the flags warns, naming them and the fix', async (t) => {
  const out = await serveOutput(process.execPath, [BIN]);
  const line = out.split('\n').find((l) => l.includes('node-flags-missing'));
  t.ok(line, 'a node-flags-missing warning');
  const event = JSON.parse(line ?? '{}') as { level?: string; missing?: string[]; fix?: string };
  t.equal(event.level, 'warn');
  t.same(event.missing, NODE_FLAGS);
  for (const f of NODE_FLAGS) t.match(event.fix ?? '', f, `the fix names ${f}`);
});

t.test('serve started as `node <flags> bin/ringside.js` does not warn', async (t) => {
  const out = await serveOutput(process.execPath, [...NODE_FLAGS, BIN]);
  t.notMatch(out, /node-flags-missing/);
});

/**
 * The data-path, fault and reply-batching suites once more with Node's public I/O paths
 * (RINGSIDE_PLAIN_READ=1 RINGSIDE_PLAIN_WRITE=1): the fallback that src/proxy/io/ switches to
 * when Node's internals are not what it expects is proven by the same tests as the fast path.
 * Each suite runs in a child process of its own, since the switches are read when the I/O
 * modules load.
 */
import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const env = { ...process.env, RINGSIDE_PLAIN_READ: '1', RINGSIDE_PLAIN_WRITE: '1' };

t.test('with both switches on, the sidecar reads and writes through Node\'s public socket API', async (t) => {
  const io = JSON.stringify(path.join(__dirname, '../../src/proxy/io/fast-write.js'));
  const out = spawnSync(process.execPath, ['-e', `process.stdout.write(String(require(${io}).fastWriteAvailable))`], { env, encoding: 'utf8' });
  t.equal(out.stdout, 'false', 'the direct write path is off');
});

for (const file of ['data-path.test.js', 'faults.test.js', 'reply-batching.test.js']) {
  t.spawn(process.execPath, [path.join(__dirname, file)], { env }, `${file} with plain reads and writes`);
}

/**
 * The bench's reading of `node --cpu-prof` output (bench/lib/cpu-prof.ts): self time per function
 * over the measured window, as shares of the busy samples.
 */
import t from 'tap';
import { CpuProfile, frameName, profileTable, summarizeProfile } from '../../bench/lib/cpu-prof';

const frame = (functionName: string, url = '', lineNumber = 0): { functionName: string; url: string; lineNumber: number } => ({ functionName, url, lineNumber });

// samples every 100 µs from 1 000: ids 1 (idle), 2 (writeBuffer), 3 (compress), 4 (gc)
function profile(ids: number[]): CpuProfile {
  return {
    nodes: [
      { id: 1, callFrame: frame('(idle)') },
      { id: 2, callFrame: frame('writeBuffer', 'node:internal/stream_base_commons', 44) },
      { id: 3, callFrame: frame('compress', 'file:///srv/ringside/dist/src/cluster/sha1-compress.js', 9) },
      { id: 4, callFrame: frame('(garbage collector)') },
    ],
    startTime: 1000,
    endTime: 1000 + 100 * ids.length,
    samples: ids,
    timeDeltas: ids.map(() => 100),
  };
}

t.test('frameName keeps the file after dist/ for ours, the node: URL for Node\'s, and a 1-based line', async (t) => {
  t.equal(frameName(frame('compress', 'file:///x/dist/src/cluster/sha1-compress.js', 9)), 'compress  src/cluster/sha1-compress.js:10');
  t.equal(frameName(frame('writeBuffer', 'node:internal/stream_base_commons', 44)), 'writeBuffer  node:internal/stream_base_commons:45');
  t.equal(frameName(frame('(program)')), '(program)');
  t.equal(frameName(frame('', 'file:///a/b.js', 0)), '(anonymous)  /a/b.js:1');
});

t.test('shares are of the busy samples: idle ones are counted apart', async (t) => {
  const s = summarizeProfile(profile([1, 1, 2, 2, 2, 3, 4, 1]));
  t.equal(s.samples, 8);
  t.equal(s.idleShare, 3 / 8);
  t.same(
    s.top.map((x) => [x.frame, x.samples, x.share]),
    [
      ['writeBuffer  node:internal/stream_base_commons:45', 3, 3 / 5],
      ['(garbage collector)', 1, 1 / 5],
      ['compress  src/cluster/sha1-compress.js:10', 1, 1 / 5],
    ],
    'largest first, ties by name',
  );
  t.equal(s.windowed, false);
});

t.test('only the samples inside the window count; a window with none falls back to the whole profile', async (t) => {
  // stamps 1100, 1200, ..., 1800
  const p = profile([3, 3, 3, 2, 2, 2, 2, 1]);
  const s = summarizeProfile(p, 15, 1350, 1800);
  t.equal(s.windowed, true);
  t.equal(s.samples, 5, 'the samples stamped 1400 to 1800');
  t.same(s.top.map((x) => x.frame), ['writeBuffer  node:internal/stream_base_commons:45']);
  t.equal(s.top[0]!.share, 1);
  const none = summarizeProfile(p, 15, 5000, 6000);
  t.equal(none.windowed, false);
  t.equal(none.samples, 8);
});

t.test('top cuts the list and the table prints percentages with the frame quoted', async (t) => {
  const s = summarizeProfile(profile([2, 2, 3, 4]), 2);
  t.equal(s.top.length, 2);
  const text = profileTable(s);
  t.match(text, /\| 50\.0% \| 2 \| `writeBuffer  node:internal\/stream_base_commons:45` \|/);
  t.notMatch(text, /compress/, 'cut: the third frame is not listed');
});

import t from 'tap';
import Parser from 'redis-parser';
import { SlowLog, encodeSlowlogGet, SlowLogSettingError, DEFAULT_SLOWLOG_THRESHOLD_USEC, DEFAULT_SLOWLOG_MAX_LEN } from '../../src/observe/slowlog';

/** Every reply in the bytes, decoded by the redis-parser package (strings as Buffers). */
function decode(bytes: Buffer): unknown[] {
  const replies: unknown[] = [];
  const parser = new Parser({
    returnReply: (r: unknown) => replies.push(r),
    returnError: (e: Error) => replies.push(e),
    returnBuffers: true,
  });
  parser.execute(bytes);
  return replies;
}

t.test('commands under the threshold are not kept; at or over it they are', async (t) => {
  const log = new SlowLog(1000, 10);
  t.equal(log.maybeAdd(999, ['GET', 'k'], '127.0.0.1:5000', '10.0.0.1:6379'), false);
  t.equal(log.len(), 0);
  t.equal(log.maybeAdd(1000, ['GET', 'k'], '127.0.0.1:5000', '10.0.0.1:6379'), true);
  t.equal(log.maybeAdd(5000, ['SET', 'k', 'v'], { addr: '127.0.0.1:5001', name: 'worker' }, '10.0.0.3:6379'), true);
  t.equal(log.len(), 2);
  const [newest, older] = log.get();
  t.match(newest, { id: 1, usec: 5000, args: ['SET', 'k', 'v'], client: '127.0.0.1:5001', name: 'worker', node: '10.0.0.3:6379' });
  t.match(older, { id: 0, usec: 1000, args: ['GET', 'k'], client: '127.0.0.1:5000', name: '', node: '10.0.0.1:6379' });
});

t.test('a negative threshold turns the log off and zero keeps every command', async (t) => {
  const off = new SlowLog(-1, 10);
  t.equal(off.maybeAdd(10_000_000, ['GET', 'k'], 'c', 'n'), false);
  t.equal(off.len(), 0);
  const all = new SlowLog(0, 10);
  t.equal(all.maybeAdd(0, ['PING'], 'c', ''), true);
  t.equal(all.len(), 1);
});

t.test('the log keeps the newest max-len entries, ids keep growing after reset', async (t) => {
  const log = new SlowLog(0, 3);
  for (let i = 0; i < 5; i++) log.maybeAdd(i, ['GET', `k${i}`], 'c', 'n');
  t.equal(log.len(), 3);
  t.same(log.get().map((e) => e.id), [4, 3, 2]);
  t.same(log.get(2).map((e) => e.id), [4, 3]);
  t.same(log.get(-1).map((e) => e.id), [4, 3, 2]);
  t.same(log.get(0), []);
  log.maxLen = 1;
  t.same(log.get().map((e) => e.id), [4], 'lowering max-len drops the oldest');
  log.reset();
  t.equal(log.len(), 0);
  log.maybeAdd(1, ['GET', 'x'], 'c', 'n');
  t.equal(log.get()[0]!.id, 5);
});

t.test('defaults are Redis\'s and bad settings are refused with a named error', async (t) => {
  const log = new SlowLog();
  t.equal(log.threshold, DEFAULT_SLOWLOG_THRESHOLD_USEC);
  t.equal(log.maxLen, DEFAULT_SLOWLOG_MAX_LEN);
  t.equal(DEFAULT_SLOWLOG_THRESHOLD_USEC, 10000);
  t.equal(DEFAULT_SLOWLOG_MAX_LEN, 128);
  t.throws(() => new SlowLog(10, -1), SlowLogSettingError);
  t.throws(() => { log.threshold = 1.5; }, SlowLogSettingError);
});

t.test('long arguments and long commands are cut the way Redis cuts them', async (t) => {
  const log = new SlowLog(0, 10);
  const args = [Buffer.from('MSET'), ...Array.from({ length: 39 }, (_, i) => Buffer.from(`a${i}`))]; // 40 arguments
  log.maybeAdd(1, args, 'c', 'n');
  const e1 = log.get(1)[0]!;
  t.equal(e1.args.length, 32);
  t.equal(e1.args[0], 'MSET');
  t.equal(e1.args[30], 'a29');
  t.equal(e1.args[31], '... (9 more arguments)');
  log.maybeAdd(1, ['SET', 'k', 'x'.repeat(200)], 'c', 'n');
  t.equal(log.get(1)[0]!.args[2], `${'x'.repeat(128)}... (72 more bytes)`);
  log.maybeAdd(1, ['SET', 'k', 'y'.repeat(128)], 'c', 'n');
  t.equal(log.get(1)[0]!.args[2], 'y'.repeat(128), 'exactly 128 bytes is kept whole');
});

t.test('SLOWLOG GET bytes parse back into Redis\'s entry shape plus the node', async (t) => {
  const log = new SlowLog(100, 10);
  const before = Math.floor(Date.now() / 1000);
  log.maybeAdd(150, [Buffer.from('GET'), Buffer.from('user:1')], '127.0.0.1:50000', '10.0.0.1:6379');
  log.maybeAdd(250000, ['EVAL', 'return 1', '0'], { addr: '127.0.0.1:50001', name: 'jobs' }, '10.0.0.2:6379');
  const after = Math.floor(Date.now() / 1000);
  const replies = decode(encodeSlowlogGet(log.get()));
  t.equal(replies.length, 1, 'one complete reply, nothing left over');
  const reply = replies[0] as unknown[][];
  t.equal(reply.length, 2);
  const str = (b: unknown): string => (b as Buffer).toString();
  const [first, second] = reply as [unknown[], unknown[]];
  t.equal(first.length, 7);
  t.equal(first[0], 1);
  t.ok((first[1] as number) >= before && (first[1] as number) <= after, 'unix time of the entry');
  t.equal(first[2], 250000);
  t.same((first[3] as Buffer[]).map(str), ['EVAL', 'return 1', '0']);
  t.equal(str(first[4]), '127.0.0.1:50001');
  t.equal(str(first[5]), 'jobs');
  t.equal(str(first[6]), '10.0.0.2:6379', 'the node is the 7th element');
  t.equal(second[0], 0);
  t.equal(second[2], 150);
  t.same((second[3] as Buffer[]).map(str), ['GET', 'user:1']);
  t.equal(str(second[5]), '', 'no client name');
  t.equal(str(second[6]), '10.0.0.1:6379');
});

t.test('SLOWLOG GET of an empty log is an empty array, and multi-byte arguments keep their byte lengths', async (t) => {
  t.same(decode(encodeSlowlogGet([])), [[]]);
  const log = new SlowLog(0, 10);
  log.maybeAdd(1, ['SET', 'clé', 'ünïcödé'], 'c', '');
  const [reply] = decode(encodeSlowlogGet(log.get())) as [[unknown[]]];
  t.same((reply[0]![3] as Buffer[]).map((b) => b.toString()), ['SET', 'clé', 'ünïcödé']);
});

t.test('through wrap-around and max-len changes the log matches a newest-first list model', async (t) => {
  const log = new SlowLog(0, 5);
  let model: number[] = []; // ids, newest first
  let id = 0;
  let bad = 0;
  let steps = 0;
  // a fixed pseudo-random sequence of adds, GETs with counts, max-len changes and resets
  let x = 12345;
  const rnd = (n: number): number => ((x = (x * 1103515245 + 12345) & 0x7fffffff) % n);
  for (let i = 0; i < 3000; i++) {
    const op = rnd(20);
    if (op < 14) {
      log.maybeAdd(1, ['SET', `k${i}`], 'c', 'n');
      if (log.maxLen > 0) model.unshift(id);
      id++;
      model = model.slice(0, log.maxLen);
    } else if (op < 17) {
      const n = rnd(9);
      log.maxLen = n;
      model = model.slice(0, n);
    } else if (op < 18) {
      log.reset();
      model = [];
    }
    const count = rnd(12) - 2; // -2..9: negative means all
    const got = log.get(count).map((e) => e.id);
    const want = count < 0 ? model : model.slice(0, count);
    if (JSON.stringify(got) !== JSON.stringify(want) || log.len() !== model.length) bad++;
    steps++;
  }
  t.equal(steps, 3000);
  t.equal(bad, 0, 'every GET and LEN agreed with the model');
});

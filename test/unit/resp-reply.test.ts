/**
 * ReplyFramer over generated nested RESP2 replies fed in random and exhaustive chunk splits: the
 * frames it hands over must be the replies, byte for byte, with their type byte. Malformed replies
 * end in onError. arrayElements splits array replies into their elements' byte ranges.
 */
import t from 'tap';
import Parser from 'redis-parser';
import { ReplyFramer, arrayElements } from '../../src/resp/reply-framer';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (r: () => number, n: number) => Math.floor(r() * n);

/** One generated RESP2 reply, encoded. */
function genReply(r: () => number, depth = 0): Buffer {
  const kind = int(r, depth > 3 ? 6 : 9);
  switch (kind) {
    case 0:
      return Buffer.from(['+OK\r\n', '+PONG\r\n', '+\r\n', '+QUEUED\r\n'][int(r, 4)]!);
    case 1:
      return Buffer.from(['-ERR unknown command\r\n', '-WRONGTYPE Operation against a key\r\n', '-\r\n'][int(r, 3)]!);
    case 2:
      return Buffer.from(`:${[0, 1, -1, 42, -9007199254740991, int(r, 1e9)][int(r, 6)]}\r\n`);
    case 3: {
      // bulk with binary payload that contains CR, LF, '*' and '$'
      const len = int(r, 5) === 0 ? int(r, 100_000) : int(r, 30);
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) b[i] = [13, 10, 0x2a, 0x24, int(r, 256)][int(r, 5)]!;
      return Buffer.concat([Buffer.from(`$${len}\r\n`), b, Buffer.from('\r\n')]);
    }
    case 4:
      return Buffer.from('$0\r\n\r\n');
    case 5:
      return Buffer.from('$-1\r\n');
    case 6:
      return Buffer.from(int(r, 2) ? '*-1\r\n' : '*0\r\n');
    default: {
      const n = int(r, 6);
      const parts: Buffer[] = [Buffer.from(`*${n}\r\n`)];
      for (let i = 0; i < n; i++) parts.push(genReply(r, depth + 1));
      return Buffer.concat(parts);
    }
  }
}

interface Framed {
  frames: Buffer[];
  types: number[];
  errors: string[];
  threw: unknown;
}

function frame(chunks: Buffer[]): Framed {
  const o: Framed = { frames: [], types: [], errors: [], threw: null };
  const f = new ReplyFramer(
    (buf, s, e, type) => {
      o.frames.push(Buffer.from(buf.subarray(s, e)));
      o.types.push(type);
    },
    (m) => o.errors.push(m),
  );
  try {
    for (const c of chunks) f.push(c);
  } catch (e) {
    o.threw = e;
  }
  return o;
}

function randomSplit(r: () => number, buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const mode = int(r, 4);
    const len = mode === 0 ? 1 : mode === 1 ? 1 + int(r, 8) : mode === 2 ? 1 + int(r, 2000) : 1 + int(r, buf.length);
    out.push(buf.subarray(pos, Math.min(buf.length, pos + len)));
    pos += len;
  }
  return out;
}

const equalFrames = (a: Buffer[], b: Buffer[]) => a.length === b.length && a.every((x, i) => x.equals(b[i]!));

t.test('generated replies in random chunk splits are framed byte for byte', async (t) => {
  let bad = 0;
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const replies: Buffer[] = [];
    for (let i = 0, n = 1 + int(r, 12); i < n; i++) replies.push(genReply(r));
    const all = Buffer.concat(replies);
    // sanity: the reference decoder sees the same number of replies
    let count = 0;
    new Parser({ returnBuffers: true, returnReply: () => count++, returnError: () => count++, returnFatalError: (e: Error) => { throw e; } }).execute(all);
    if (count !== replies.length) t.fail(`seed ${seed}: generator produced ${count} replies for ${replies.length}`);
    const o = frame(randomSplit(r, all));
    if (o.threw || o.errors.length || !equalFrames(o.frames, replies) || !o.types.every((ty, i) => ty === replies[i]![0])) {
      bad++;
      if (bad <= 3) t.fail(`seed ${seed}: ${o.errors.join(';')} ${String(o.threw ?? '')} got ${o.frames.length} of ${replies.length}`);
    }
  }
  t.equal(bad, 0, '400 generated reply streams framed exactly');
});

t.test('small reply streams split at every point, and fed byte by byte, are framed exactly', async (t) => {
  let bad = 0;
  let cases = 0;
  for (let seed = 900; seed < 960; seed++) {
    const r = rng(seed);
    const replies: Buffer[] = [];
    while (replies.length < 4) {
      const x = genReply(r);
      if (x.length < 300) replies.push(x);
    }
    replies.push(Buffer.from('*2\r\n$3\r\nfoo\r\n*1\r\n:1\r\n'));
    const all = Buffer.concat(replies);
    for (let i = 0; i <= all.length; i++) {
      for (const j of [i, Math.min(all.length, i + 1), Math.min(all.length, i + 3)]) {
        cases++;
        const o = frame([all.subarray(0, i), all.subarray(i, j), all.subarray(j)]);
        if (o.threw || o.errors.length || !equalFrames(o.frames, replies)) {
          bad++;
          if (bad <= 3) t.fail(`seed ${seed} split ${i}/${j}: ${o.errors.join(';')}`);
        }
      }
    }
    const bytes: Buffer[] = [];
    for (let i = 0; i < all.length; i++) bytes.push(all.subarray(i, i + 1));
    t.ok(equalFrames(frame(bytes).frames, replies), `seed ${seed} byte by byte`);
  }
  t.equal(bad, 0, `${cases} three-chunk splits framed exactly`);
});

t.test('a reply is not handed over before its last byte arrives', async (t) => {
  const reply = Buffer.from('*3\r\n$3\r\nabc\r\n*-1\r\n:7\r\n');
  for (let i = 0; i < reply.length; i++) {
    const o = frame([reply.subarray(0, i)]);
    t.equal(o.frames.length, 0, `nothing after ${i} bytes`);
  }
  t.equal(frame([reply]).frames.length, 1);
});

t.test('frames that lie in one chunk are views of it, not copies', async (t) => {
  const chunk = Buffer.from('+OK\r\n:1\r\n');
  const seen: Buffer[] = [];
  new ReplyFramer((b) => seen.push(b), () => undefined).push(chunk);
  t.equal(seen.length, 2);
  t.ok(seen.every((b) => b === chunk), 'the chunk itself is passed with offsets');
});

t.test('after reset, a framer starts clean (as after a reconnect)', async (t) => {
  const frames: Buffer[] = [];
  const f = new ReplyFramer((b, s, e) => frames.push(Buffer.from(b.subarray(s, e))), () => undefined);
  f.push(Buffer.from('*2\r\n$3\r\nab'));
  t.ok(f.inProgress);
  f.reset();
  t.notOk(f.inProgress);
  f.push(Buffer.from('+OK\r\n'));
  t.same(frames.map(String), ['+OK\r\n']);
});

const MALFORMED: Array<[string, Buffer]> = [
  ['an unknown type byte', Buffer.from('!oops\r\n')],
  ['a byte that is no type in RESP2 or RESP3', Buffer.from('@1\r\n+a\r\n+b\r\n')],
  ['a bad bulk length', Buffer.from('$abc\r\n')],
  ['a bulk length below -1', Buffer.from('$-2\r\n')],
  ['a bad array length', Buffer.from('*x\r\n')],
  ['an array length below -1', Buffer.from('*-5\r\n')],
  ['a line ending in LF only', Buffer.from('+OK\n')],
  ['an empty bulk length', Buffer.from('$\r\n')],
  ['a bad element inside an array', Buffer.from('*2\r\n+ok\r\n?\r\n')],
  ['a bulk payload not followed by CRLF', Buffer.from('$3\r\nfooXY+OK\r\n')],
  ['a bulk inside an array not followed by CRLF', Buffer.from('*3\r\n$3\r\nfoo\r\n$2\r\nabX\r\n$1\r\na\r\n')],
  ['a signed bulk length inside an array', Buffer.from('*2\r\n$1\r\na\r\n$+3\r\nabc\r\n')],
  ['a bulk length cut by a letter inside an array', Buffer.from('*2\r\n$1\r\na\r\n$1x\r\nabc\r\n')],
  ['a bulk length followed by CR and no LF inside an array', Buffer.from('*2\r\n$1\r\na\r\n$1\rXa\r\n')],
  ['a many-digit bulk payload not followed by CRLF', Buffer.from('*2\r\n$1\r\na\r\n$12\r\n0123456789abXY\r\n')],
];

t.test('malformed replies end in exactly one onError, whatever the chunking', async (t) => {
  for (const [what, bad] of MALFORMED) {
    const input = Buffer.concat([Buffer.from(':1\r\n'), bad, Buffer.from('+after\r\n')]);
    const whole = frame([input]);
    t.equal(whole.threw, null, `${what}: no throw`);
    t.equal(whole.errors.length, 1, `${what}: one error (${whole.errors.join('; ')})`);
    t.same(whole.frames.map(String), [':1\r\n'], `${what}: the reply before it is framed, nothing after`);
    let differ = 0;
    for (let i = 0; i <= Math.min(input.length, 200); i++) {
      const o = frame([input.subarray(0, i), input.subarray(i)]);
      if (o.threw || o.errors.length !== 1 || o.frames.length !== 1) differ++;
    }
    t.equal(differ, 0, `${what}: the same at every split point`);
  }
});

t.test('an unterminated header line growing past 64 KB over many chunks is an error', async (t) => {
  const chunks: Buffer[] = [Buffer.from(':1\r\n+')];
  for (let i = 0; i < 70; i++) chunks.push(Buffer.alloc(1000, 0x61));
  const o = frame(chunks);
  t.equal(o.threw, null);
  t.equal(o.errors.length, 1, o.errors.join('; '));
  t.same(o.frames.map(String), [':1\r\n']);
});

t.test('arrayElements splits an array reply into its elements, nested arrays whole', async (t) => {
  const els = ['$3\r\nfoo\r\n', '$-1\r\n', ':12\r\n', '*2\r\n$1\r\na\r\n*0\r\n', '+s\r\n', '-ERR e\r\n', '*-1\r\n', '$0\r\n\r\n'];
  const reply = Buffer.from(`*${els.length}\r\n${els.join('')}`);
  const ranges = arrayElements(reply)!;
  t.same(ranges.map(([s, e]) => reply.toString('latin1', s, e)), els);
  // inside a larger buffer, with offsets
  const padded = Buffer.concat([Buffer.from('garbage'), reply, Buffer.from('tail')]);
  const r2 = arrayElements(padded, 7, 7 + reply.length)!;
  t.same(r2.map(([s, e]) => padded.toString('latin1', s, e)), els, 'ranges are absolute offsets in the buffer');
  t.same(arrayElements(Buffer.from('*0\r\n')), []);
  t.equal(arrayElements(Buffer.from('*-1\r\n')), null, 'a null array');
  t.equal(arrayElements(Buffer.from('-ERR x\r\n')), null, 'an error');
  t.equal(arrayElements(Buffer.from('$1\r\na\r\n')), null, 'a bulk');
  t.throws(() => arrayElements(Buffer.from('*3\r\n:1\r\n')), 'an incomplete array throws');
});

t.test('arrayElements agrees with redis-parser on generated arrays', async (t) => {
  let bad = 0;
  for (let seed = 3000; seed < 3200; seed++) {
    const r = rng(seed);
    const n = int(r, 8);
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) parts.push(genReply(r, 2));
    const reply = Buffer.concat([Buffer.from(`*${n}\r\n`), ...parts]);
    const ranges = arrayElements(reply);
    if (!ranges || ranges.length !== n || !ranges.every(([s, e], i) => reply.subarray(s, e).equals(parts[i]!))) bad++;
  }
  t.equal(bad, 0);
});

t.test('RESP3 replies are framed whole: maps, sets, pushes, attributes and the scalar types', async (t) => {
  const replies = [
    '%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*2\r\n_\r\n,1.5\r\n',
    '~2\r\n#t\r\n(12345678901234567890\r\n',
    '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n=7\r\ntxt:abc\r\n',
    '|1\r\n+key\r\n+val\r\n$3\r\nfoo\r\n',
    '!5\r\nERR x\r\n',
    '%0\r\n',
  ];
  const all = Buffer.from(replies.join(''), 'latin1');
  for (let split = 0; split <= all.length; split++) {
    const got: string[] = [];
    const f = new ReplyFramer((b, s, e) => got.push(b.toString('latin1', s, e)), (m) => got.push(`error: ${m}`));
    f.push(all.subarray(0, split));
    f.push(all.subarray(split));
    if (JSON.stringify(got) !== JSON.stringify(replies)) {
      t.same(got, replies, `split at ${split}`);
      return;
    }
  }
  t.pass('every split point frames the same six replies');
  t.same(arrayElements(Buffer.from('%1\r\n+k\r\n:2\r\n'))!.length, 2, 'a map flattens to its pairs');
});

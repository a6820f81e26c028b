/**
 * Differential tests of the request framing: RequestParser against `redis-parser` (the reference
 * decoder of RESP multibulk arrays) over generated pipelines fed in random and exhaustive chunk
 * splits; inline commands against what Redis's sdssplitargs makes of them; malformed input.
 */
import t from 'tap';
import Parser from 'redis-parser';
import net from 'node:net';
import { RedisProcess } from '../../src/embedded/redis-process';
import { DEFAULT_LIMITS, ParseLimits, RequestParser, encodeCommand, splitInline } from '../../src/resp/request-parser';

/** mulberry32: a small seeded generator, so a failure is reproducible from its seed. */
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

/** A generated argument: binary, empty, CR/LF-laden, digit-like, or large. */
function genArg(r: () => number): Buffer {
  const kind = int(r, 10);
  if (kind === 0) return Buffer.alloc(0);
  if (kind === 1) return Buffer.from('\r\n$3\r\n*1\r\n');
  if (kind === 2) {
    // large: up to 200 KB of random bytes
    const b = Buffer.alloc(1 + int(r, 200_000));
    for (let i = 0; i < b.length; i++) b[i] = (i * 131 + int(r, 4)) & 0xff;
    return b;
  }
  const b = Buffer.alloc(int(r, 40));
  for (let i = 0; i < b.length; i++) b[i] = int(r, 256);
  return b;
}

function genCommand(r: () => number, big = true): Buffer[] {
  const argc = 1 + int(r, 6);
  const args: Buffer[] = [];
  for (let i = 0; i < argc; i++) {
    let a = genArg(r);
    if (!big && a.length > 64) a = a.subarray(0, 64);
    args.push(a);
  }
  return args;
}

/** Independent encoder (not encodeCommand, which is under test too). */
function encode(args: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

/** What redis-parser (the reference) decodes from `input`. */
function reference(input: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  const p = new Parser({
    returnBuffers: true,
    returnReply: (reply: unknown) => {
      if (Array.isArray(reply) && reply.length > 0) out.push(reply as Buffer[]);
    },
    returnError: (e: Error) => {
      throw e;
    },
    returnFatalError: (e: Error) => {
      throw e;
    },
  });
  p.execute(input);
  return out;
}

interface Outcome {
  commands: Buffer[][];
  /** the raw bytes each command came in (multibulk only), from toResp() */
  raw: Buffer[];
  /** views kept during the callbacks, compared later: the parser must not reuse their memory */
  views: Buffer[][];
  errors: string[];
  commandsAfterError: number;
  threw: unknown;
}

/** Feeds `chunks` to a fresh RequestParser and records everything it reports. */
function run(chunks: Buffer[], limits: ParseLimits = DEFAULT_LIMITS): Outcome {
  const o: Outcome = { commands: [], raw: [], views: [], errors: [], commandsAfterError: 0, threw: null };
  const p = new RequestParser(
    (cmd) => {
      if (o.errors.length > 0) o.commandsAfterError++;
      const args: Buffer[] = [];
      const views: Buffer[] = [];
      for (let i = 0; i < cmd.argc; i++) {
        args.push(Buffer.from(cmd.arg(i)));
        views.push(cmd.arg(i));
      }
      o.commands.push(args);
      o.views.push(views);
      o.raw.push(Buffer.from(cmd.toResp()));
    },
    (msg) => o.errors.push(msg),
    limits,
  );
  try {
    for (const c of chunks) p.feed(c);
  } catch (e) {
    o.threw = e;
  }
  return o;
}

/** Splits `buf` at random points into 1..n chunks (sometimes single bytes). */
function randomSplit(r: () => number, buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const mode = int(r, 4);
    const len = mode === 0 ? 1 : mode === 1 ? 1 + int(r, 16) : mode === 2 ? 1 + int(r, 4096) : 1 + int(r, buf.length);
    out.push(buf.subarray(pos, Math.min(buf.length, pos + len)));
    pos += len;
  }
  return out;
}

const same = (a: Buffer[][], b: Buffer[][]) =>
  a.length === b.length && a.every((c, i) => c.length === b[i]!.length && c.every((x, j) => x.equals(b[i]![j]!)));

t.test('generated pipelines in random chunk splits decode to the same arguments as redis-parser', async (t) => {
  let mismatches = 0;
  let total = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const cmds: Buffer[][] = [];
    const n = 1 + int(r, 20);
    for (let i = 0; i < n; i++) cmds.push(genCommand(r));
    const bytes = Buffer.concat(cmds.map(encode));
    const ref = reference(bytes);
    const o = run(randomSplit(r, bytes));
    total++;
    if (o.threw || o.errors.length || !same(o.commands, ref) || !same(o.views, ref) || !o.raw.every((x, i) => x.equals(encode(ref[i]!)))) {
      mismatches++;
      if (mismatches <= 3) t.fail(`seed ${seed}: ${o.errors.join('; ')} ${String(o.threw ?? '')}`);
    }
  }
  t.equal(mismatches, 0, `all ${total} generated pipelines agree with redis-parser`);
});

t.test('small pipelines split at every point, and fed byte by byte, decode like redis-parser', async (t) => {
  let bad = 0;
  let cases = 0;
  for (let seed = 1000; seed < 1060; seed++) {
    const r = rng(seed);
    const cmds = [genCommand(r, false), genCommand(r, false), [Buffer.from('GET'), Buffer.from('')]];
    const bytes = Buffer.concat(cmds.map(encode));
    const ref = reference(bytes);
    t.equal(ref.length, 3);
    for (let i = 0; i <= bytes.length; i++) {
      cases++;
      const o = run([bytes.subarray(0, i), bytes.subarray(i)]);
      if (o.threw || o.errors.length || !same(o.commands, ref) || !same(o.views, ref)) {
        bad++;
        if (bad <= 3) t.fail(`seed ${seed} split at ${i}: ${JSON.stringify(o.errors)}`);
      }
    }
    const bytewise = [];
    for (let i = 0; i < bytes.length; i++) bytewise.push(bytes.subarray(i, i + 1));
    const o = run(bytewise);
    t.ok(same(o.commands, ref), `seed ${seed} byte by byte`);
  }
  t.equal(bad, 0, `${cases} two-chunk splits all agree`);
});

t.test('empty and null multibulk headers are skipped, as Redis does', async (t) => {
  const bytes = Buffer.concat([Buffer.from('*0\r\n*-1\r\n'), encode([Buffer.from('PING')])]);
  const o = run([bytes]);
  t.same(o.errors, []);
  t.same(o.commands.map((c) => c.map(String)), [['PING']]);
});

t.test('encodeCommand output decodes to its arguments in redis-parser', async (t) => {
  const r = rng(77);
  for (let i = 0; i < 200; i++) {
    const args = genCommand(r);
    const enc = encodeCommand(args);
    t.ok(enc.equals(encode(args)), `command ${i} encodes like the reference encoder`);
    const ref = reference(enc);
    if (!same(ref, [args])) t.fail(`command ${i} round trip`);
  }
  t.ok(encodeCommand(['SET', 'k', '\u00e9']).equals(Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\u00e9\r\n')), 'string args are UTF-8 bytes');
});

// ------------------------------------------------------------------------------------ inline

const INLINE: Array<[string, string[] | null]> = [
  ['PING', ['PING']],
  ['  SET   a   b  ', ['SET', 'a', 'b']],
  ['SET\tk\tv', ['SET', 'k', 'v']],
  ['SET k "hello world"', ['SET', 'k', 'hello world']],
  ['SET k "a\\nb\\r\\t\\b\\a"', ['SET', 'k', 'a\nb\r\t\b\x07']],
  ['SET k "\\x41\\x62\\xff\\x00"', ['SET', 'k', 'Ab\xff\x00']],
  ['SET k "\\xZZ"', ['SET', 'k', 'xZZ']],
  ['SET k "q\\"uote"', ['SET', 'k', 'q"uote']],
  ['SET k "back\\\\slash"', ['SET', 'k', 'back\\slash']],
  ["SET k 'single \"q\" \\' ok'", ['SET', 'k', 'single "q" \' ok']],
  ["SET k 'no \\n escape'", ['SET', 'k', 'no \\n escape']],
  ['SET k ""', ['SET', 'k', '']],
  ["SET k ''", ['SET', 'k', '']],
  ['SET k "unbalanced', null],
  ["SET k 'unbalanced", null],
  ['SET k "closed"x', null],
  ["SET k 'closed'x", null],
  ['', []],
  ['    ', []],
];

t.test('inline lines split like Redis sdssplitargs', async (t) => {
  for (const [line, expected] of INLINE) t.same(splitInline(line), expected, JSON.stringify(line));
});

/** Sends one inline line to a real redis-server; returns its arguments as Redis split them, or null when it refused the quotes. */
async function redisSplit(port: number, line: string): Promise<string[] | null> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const replies: unknown[] = [];
  const p = new Parser({
    returnBuffers: true,
    returnReply: (r: unknown) => replies.push(r),
    returnError: (e: Error) => replies.push(e),
  });
  sock.on('data', (d: Buffer) => p.execute(d));
  // RPUSH L <line> / LRANGE L 0 -1 / DEL L: the list holds exactly the arguments Redis parsed
  sock.write(Buffer.from(`RPUSH L ${line}\r\nLRANGE L 0 -1\r\nDEL L\r\n`, 'latin1'));
  await new Promise<void>((resolve) => {
    const check = () => (replies.length >= 3 ? resolve() : undefined);
    sock.on('data', check);
    sock.on('close', () => resolve());
  });
  sock.destroy();
  const first = replies[0];
  if (first instanceof Error) {
    if (/unbalanced quotes/.test(first.message)) return null;
    throw first;
  }
  return (replies[1] as Buffer[]).map((b) => b.toString('latin1'));
}

let server: RedisProcess | null = null;
async function realRedis(): Promise<RedisProcess> {
  if (!server) {
    server = await RedisProcess.start();
    t.teardown(() => server?.stop({ removeDir: true }));
  }
  return server;
}

t.test('generated inline lines split like a real redis-server splits them', async (t) => {
  const server = await realRedis();
  const alphabet = ['a', 'b', ' ', '\t', '"', "'", '\\', 'x', '4', 'f', 'n', '\xe9'];
  const r = rng(4242);
  let differ = 0;
  const examples: string[] = [];
  for (let i = 0; i < 400; i++) {
    let line = '';
    const len = 1 + int(r, 14);
    for (let k = 0; k < len; k++) line += alphabet[int(r, alphabet.length)];
    // at least one argument after RPUSH L, or Redis answers an arity error
    line = 'z ' + line;
    const ours = splitInline(line);
    const theirs = await redisSplit(server.port, line);
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      differ++;
      if (examples.length < 5) examples.push(`${JSON.stringify(line)}: ours ${JSON.stringify(ours)}, redis ${JSON.stringify(theirs)}`);
    }
  }
  t.equal(differ, 0, `splitInline agrees with redis-server on 400 generated lines${examples.length ? ': ' + examples.join(' | ') : ''}`);
});

t.test('a vertical tab or form feed inside an unquoted inline argument does not end it, as in redis-server', async (t) => {
  const server = await realRedis();
  for (const line of ['z a\vb', 'z a\fb', 'z ab\v', 'z \va']) {
    t.same(splitInline(line), await redisSplit(server.port, line), JSON.stringify(line));
  }
});

t.test('inline commands through the parser: CRLF or LF, empty lines skipped, escapes decoded to bytes', async (t) => {
  const input = Buffer.from('PING\r\n\r\n\nSET k "\\xff\\x00v"\nECHO \'a b\'\r\n  \r\nGET k\r\n', 'latin1');
  const expect = [['PING'], ['SET', 'k', '\xff\x00v'], ['ECHO', 'a b'], ['GET', 'k']];
  const whole = run([input]);
  t.same(whole.errors, []);
  t.same(whole.commands.map((c) => c.map((a) => a.toString('latin1'))), expect);
  t.ok(whole.raw[1]!.equals(encode([Buffer.from('SET'), Buffer.from('k'), Buffer.from([0xff, 0, 0x76])])), 'toResp of an inline command is its multibulk');
  let bad = 0;
  for (let i = 0; i <= input.length; i++) {
    const o = run([input.subarray(0, i), input.subarray(i)]);
    if (o.errors.length || JSON.stringify(o.commands.map((c) => c.map((a) => a.toString('latin1')))) !== JSON.stringify(expect)) bad++;
  }
  t.equal(bad, 0, 'every split point gives the same commands');
});

t.test('inline and multibulk commands mix in one pipeline', async (t) => {
  const input = Buffer.concat([Buffer.from('PING\r\n'), encode([Buffer.from('GET'), Buffer.from('a')]), Buffer.from('ECHO x\n')]);
  const o = run([input]);
  t.same(o.commands.map((c) => c.map(String)), [['PING'], ['GET', 'a'], ['ECHO', 'x']]);
});

// ------------------------------------------------------------------------------------ malformed

const small: ParseLimits = { maxBulkLen: 16, maxArgs: 4, maxInline: 64 };
const ok = encode([Buffer.from('PING')]);

// [what, bytes, error, limits, whether good bytes may follow in the same stream]
const MALFORMED: Array<[string, Buffer, RegExp, ParseLimits?, boolean?]> = [
  ['bad multibulk length', Buffer.from('*x2\r\n'), /invalid multibulk length/],
  ['multibulk length not followed by LF', Buffer.from('*2\rX$3\r\nGET\r\n'), /invalid multibulk length/],
  ["'$' expected, got ':'", Buffer.from('*2\r\n$3\r\nGET\r\n:12\r\n'), /expected '\$', got ':'/],
  ["'$' expected, got 'G'", Buffer.from('*1\r\nGET\r\n'), /expected '\$', got 'G'/],
  ['bad bulk length', Buffer.from('*1\r\n$x\r\nGET\r\n'), /invalid bulk length/],
  ['negative bulk length', Buffer.from('*1\r\n$-1\r\n'), /invalid bulk length/],
  ['bulk length line too long', Buffer.from('*1\r\n$' + '1'.repeat(40)), /invalid bulk length/],
  ['missing CRLF after bulk', Buffer.from('*1\r\n$3\r\nGETXX*1\r\n$4\r\nPING\r\n'), /bulk argument not followed by CRLF/],
  ['too big mbulk count string', Buffer.from('*' + '1'.repeat(100)), /too big mbulk count string/, small, false],
  ['too big inline request (no newline)', Buffer.from('GET ' + 'a'.repeat(100)), /too big inline request/, small],
  ['too big inline request (with newline)', Buffer.from('GET ' + 'a'.repeat(100) + '\r\n'), /too big inline request/, small],
  ['unbalanced quotes', Buffer.from('SET k "abc\r\n'), /unbalanced quotes/],
  ['more arguments than maxArgs', encode(['A', 'B', 'C', 'D', 'E'].map((s) => Buffer.from(s))), /invalid multibulk length/, small],
  ['bulk over maxBulkLen', encode([Buffer.from('SET'), Buffer.from('k'), Buffer.alloc(17, 0x61)]), /invalid bulk length/, small],
];

t.test('malformed input gives exactly one error, no command after it, and never throws', async (t) => {
  for (const [what, bad, re, limits, tail = true] of MALFORMED) {
    // a good command before, the bad bytes, then good commands after (same chunk and later chunks)
    // (an unterminated count line would take its CR from what follows: nothing follows then)
    const input = Buffer.concat(tail ? [ok, bad, ok] : [ok, bad]);
    const after = tail ? ok : Buffer.alloc(0);
    const o = run([input, after, after], limits);
    t.equal(o.threw, null, `${what}: no throw`);
    t.equal(o.errors.length, 1, `${what}: one error`);
    t.match(o.errors[0] ?? '', re, `${what}: ${o.errors[0]}`);
    t.match(o.errors[0] ?? '', /^Protocol error: /, `${what}: Redis's error text`);
    t.equal(o.commands.length, 1, `${what}: the command before it is delivered, none after`);
    t.equal(o.commandsAfterError, 0);
    // the same at every split point: same error, same command before it
    let bad2 = 0;
    for (let i = 0; i <= input.length; i++) {
      const s = run([input.subarray(0, i), input.subarray(i), after], limits);
      if (s.threw || s.errors.length !== 1 || s.errors[0] !== o.errors[0] || s.commands.length !== 1 || s.commandsAfterError) bad2++;
    }
    t.equal(bad2, 0, `${what}: same outcome at every split point`);
  }
});

t.test('limits at their exact bounds are accepted', async (t) => {
  const atLimit = encode([Buffer.from('SET'), Buffer.from('k'), Buffer.alloc(16, 0x61), Buffer.from('x')]);
  const o = run([atLimit], small);
  t.same(o.errors, []);
  t.equal(o.commands.length, 1, 'maxBulkLen bytes and maxArgs arguments pass');
  const line = Buffer.from('GET ' + 'a'.repeat(small.maxInline - 4) + '\n');
  const i = run([line], small);
  t.same(i.errors, [], 'an inline line of maxInline bytes passes');
  t.equal(i.commands.length, 1);
});

t.test('random garbage never throws and reports at most one error', async (t) => {
  let bad = 0;
  for (let seed = 5000; seed < 5400; seed++) {
    const r = rng(seed);
    // mostly-valid input with a few bytes flipped
    const bytes = Buffer.concat([genCommand(r, false), genCommand(r, false)].map(encode));
    for (let k = 0; k < 1 + int(r, 3); k++) bytes[int(r, bytes.length)] = int(r, 256);
    const o = run(randomSplit(r, bytes), small);
    if (o.threw || o.errors.length > 1 || o.commandsAfterError > 0) {
      bad++;
      if (bad < 3) t.fail(`seed ${seed}: ${String(o.threw)} ${JSON.stringify(o.errors)}`);
    }
  }
  t.equal(bad, 0);
});

/**
 * The command table: every command whose keys move with its arguments has a key finder (or is
 * refused), every keyless command is classified (never routed to an arbitrary node), and key
 * extraction agrees with a real redis-server's COMMAND GETKEYS.
 */
import t from 'tap';
import net from 'node:net';
import Redis from 'ioredis';
import rawTable from '@ioredis/commands/built/commands.json';
import { COMMANDS, HANDLING, KeyExtractionError, MOVABLE_KEYS, arityOk, keyIndexes, lookup, subcommand, CommandSpec } from '../../src/commands/table';
import { ParsedCommand, RequestParser, encodeCommand } from '../../src/resp/request-parser';
import { META_REFUSED, CROSSSLOT as crossSlot } from '../../src/proxy/replies';
import { slotOf as routeSlotOf } from '../../src/proxy/router';
import { slotOf } from '../../src/cluster/slot';
import { RedisProcess } from '../../src/embedded/redis-process';

interface Raw {
  arity: number;
  flags: string[];
  keyStart: number;
  keyStop: number;
  step: number;
  subcommands?: Record<string, Raw>;
}
const RAW = rawTable as unknown as Record<string, Raw>;

/** A standalone ParsedCommand holding `args` (the parser's own object is reused per callback). */
function parse(...args: Array<string | Buffer>): ParsedCommand {
  let out: ParsedCommand | null = null;
  new RequestParser(
    (c) => {
      const p = new ParsedCommand();
      p.buf = c.buf;
      p.start = c.start;
      p.end = c.end;
      p.argc = c.argc;
      p.ensure(c.argc);
      p.argStart.set(c.argStart.subarray(0, c.argc));
      p.argEnd.set(c.argEnd.subarray(0, c.argc));
      out = p;
    },
    (m) => {
      throw new Error(m);
    },
  ).feed(encodeCommand(args));
  return out!;
}

/** The keys `keyIndexes` finds, as strings (the subcommand's spec for container commands). */
function keysOf(...args: string[]): string[] {
  const cmd = parse(...args);
  let spec = lookup(cmd)!;
  if (spec.subcommands) spec = subcommand(spec, cmd) ?? spec;
  const out: number[] = [];
  keyIndexes(spec, cmd, out);
  return out.map((i) => cmd.argString(i));
}

/** The router's slotOf (pure: no session, no socket), which decides what is routed. */
const router = { slotOf: routeSlotOf };

t.test('every command flagged movablekeys has a key finder or is refused', async (t) => {
  const movable: string[] = [];
  for (const [name, raw] of Object.entries(RAW)) {
    if (raw.flags.includes('movablekeys')) {
      movable.push(name);
      const h = HANDLING[name];
      const refused = Array.isArray(h) && h[0] === 'refused';
      t.ok(MOVABLE_KEYS[name] !== undefined || refused, `${name} has a MOVABLE_KEYS entry or is refused`);
    }
    for (const [sub, rs] of Object.entries(raw.subcommands ?? {}))
      if (rs.flags.includes('movablekeys')) t.ok(MOVABLE_KEYS[`${name}|${sub}`] !== undefined, `${name} ${sub} has a key finder`);
  }
  t.ok(movable.length >= 20, `${movable.length} movable-keys commands checked`);
  for (const name of Object.keys(MOVABLE_KEYS)) t.ok(COMMANDS.get(name)?.movable, `MOVABLE_KEYS.${name} is a movable-keys command of the table`);
});

t.test('every keyless command has an explicit handling, so none is routed to an arbitrary node', async (t) => {
  let n = 0;
  for (const [name, raw] of Object.entries(RAW)) {
    const keyedSub = Object.values(raw.subcommands ?? {}).some((s) => s.keyStart > 0 || s.flags.includes('movablekeys'));
    if (raw.keyStart === 0 && !raw.flags.includes('movablekeys') && !keyedSub) {
      n++;
      t.ok(HANDLING[name] !== undefined, `${name} is keyless and has a HANDLING entry`);
      t.not(COMMANDS.get(name)!.handling, 'keyed', `${name} is not handled as keyed`);
    }
  }
  t.ok(n > 50, `${n} keyless commands`);
  for (const name of Object.keys(HANDLING)) t.ok(COMMANDS.has(name), `HANDLING.${name} is in the table`);
});

t.test('the keyless subcommands of keyed container commands are refused (HELP goes to any master), the keyed ones routed by their key', async (t) => {
  const s = router;
  for (const [name, spec] of COMMANDS) {
    if (spec.handling !== 'keyed' || !spec.subcommands) continue;
    for (const [sub, ss] of spec.subcommands) {
      const argc = Math.max(Math.abs(ss.arity), 3);
      const args = [name, sub, ...Array.from({ length: argc - 2 }, (_, i) => `arg${i}`)];
      const res = s.slotOf(spec, parse(...args));
      if (ss.keyStart > 0) t.equal(res, slotOf(args[ss.keyStart]!), `${name} ${sub} goes to the slot of its key`);
      else if (sub === 'help') t.equal(res, '', `${name} help names no key: any master answers it`);
      else t.match(res, /not supported through the sidecar/, `${name} ${sub} is refused`);
    }
  }
  t.match(s.slotOf(COMMANDS.get('object')!, parse('object', 'nosuch', 'k')), /not supported/, 'an unknown subcommand is refused');
});

t.test('key extraction: EVAL and FCALL numkeys', async (t) => {
  t.same(keysOf('EVAL', 'return 1', '2', 'a', 'b', 'argv1'), ['a', 'b']);
  t.same(keysOf('EVALSHA', 'abc', '0', 'argv1'), []);
  t.same(keysOf('FCALL_RO', 'f', '1', 'k', 'x'), ['k']);
  t.throws(() => keysOf('EVAL', 's', '3', 'a', 'b'), KeyExtractionError, 'numkeys beyond the arguments');
  t.throws(() => keysOf('EVAL', 's', '-1'), KeyExtractionError, 'negative numkeys');
  t.throws(() => keysOf('EVAL', 's', 'x'), KeyExtractionError, 'numkeys not a number');
});

t.test('key extraction: ZUNIONSTORE and friends take the destination and numkeys keys', async (t) => {
  t.same(keysOf('ZUNIONSTORE', 'dst', '2', 'a', 'b', 'WEIGHTS', '1', '2'), ['dst', 'a', 'b']);
  t.same(keysOf('ZINTERSTORE', 'dst', '1', 'a', 'AGGREGATE', 'MAX'), ['dst', 'a']);
  t.same(keysOf('ZDIFF', '2', 'a', 'b', 'WITHSCORES'), ['a', 'b']);
  t.same(keysOf('SINTERCARD', '2', 'a', 'b', 'LIMIT', '5'), ['a', 'b']);
  t.throws(() => keysOf('ZUNIONSTORE', 'dst', '5', 'a'), KeyExtractionError);
});

t.test('key extraction: XREAD and XREADGROUP take the keys after STREAMS', async (t) => {
  t.same(keysOf('XREAD', 'COUNT', '2', 'STREAMS', 's1', 's2', '0', '0'), ['s1', 's2']);
  t.same(keysOf('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 'streams', '>'), ['streams'], 'a stream named "streams"');
  t.throws(() => keysOf('XREAD', 'STREAMS', 's1', 's2', '0'), /Unbalanced/);
  t.throws(() => keysOf('XREAD', 'COUNT', '1'), KeyExtractionError, 'no STREAMS');
});

t.test('key extraction: SORT with STORE and BY', async (t) => {
  t.same(keysOf('SORT', 'list'), ['list']);
  t.same(keysOf('SORT', 'list', 'LIMIT', '0', '10', 'STORE', 'dst'), ['list', 'dst']);
  t.same(keysOf('SORT', 'list', 'BY', 'nosort', 'STORE', 'dst'), ['list', 'dst'], 'BY without * reads no key');
  t.same(keysOf('SORT', '{u}list', 'BY', '{u}w_*', 'GET', '#', 'GET', '{u}h_*->f'), ['{u}list'], 'patterns in the key slot');
  t.throws(() => keysOf('SORT', 'list', 'BY', 'weight_*'), /CROSSSLOT/, 'BY a pattern without a tag');
  t.throws(() => keysOf('SORT', '{u}list', 'GET', '{v}h_*'), /CROSSSLOT/, 'GET a pattern in another slot');
  t.same(keysOf('SORT_RO', 'list', 'ALPHA'), ['list']);
});

t.test('key extraction: GEORADIUS and GEORADIUSBYMEMBER with STORE and STOREDIST', async (t) => {
  t.same(keysOf('GEORADIUS', 'g', '15', '37', '200', 'km', 'STORE', 'dst'), ['g', 'dst']);
  t.same(keysOf('GEORADIUS', 'g', '15', '37', '200', 'km', 'WITHDIST'), ['g']);
  t.same(keysOf('GEORADIUSBYMEMBER', 'g', 'm', '200', 'km', 'STOREDIST', 'd2'), ['g', 'd2']);
});

t.test('key extraction: BLMPOP, LMPOP, BZMPOP', async (t) => {
  t.same(keysOf('BLMPOP', '0', '2', 'a', 'b', 'LEFT', 'COUNT', '3'), ['a', 'b']);
  t.same(keysOf('LMPOP', '1', 'a', 'RIGHT'), ['a']);
  t.same(keysOf('BZMPOP', '1.5', '1', 'z', 'MIN'), ['z']);
  t.throws(() => keysOf('BLMPOP', '0', '3', 'a', 'LEFT'), KeyExtractionError);
});

t.test('key extraction: fixed positions with steps and negative stops', async (t) => {
  t.same(keysOf('MSETNX', 'a', '1', 'b', '2'), ['a', 'b']);
  t.same(keysOf('BITOP', 'AND', 'dst', 'a', 'b'), ['dst', 'a', 'b']);
  t.same(keysOf('RPOPLPUSH', 'a', 'b'), ['a', 'b']);
  t.same(keysOf('GET', 'k'), ['k']);
  t.same(keysOf('OBJECT', 'ENCODING', 'k'), ['k']);
  t.same(keysOf('XINFO', 'STREAM', 's', 'FULL'), ['s']);
});

t.test('lookup ignores case; unknown commands are not in the table; arity follows Redis', async (t) => {
  t.equal(lookup(parse('gEt', 'k'))?.name, 'get');
  t.equal(lookup(parse('NOSUCHCMD')), undefined);
  const get = COMMANDS.get('get')!;
  t.ok(arityOk(get, 2));
  t.notOk(arityOk(get, 3));
  const mset = COMMANDS.get('mset')!;
  t.ok(arityOk(mset, 3) && arityOk(mset, 7));
  t.notOk(arityOk(mset, 2));
});

t.test('lookup finds every command in the table by its own name, in any case, and not by a name one byte off', async (t) => {
  let wrong = 0;
  for (const name of COMMANDS.keys()) {
    const mixed = [...name].map((ch, i) => (i % 2 ? ch.toUpperCase() : ch)).join('');
    for (const form of [name, name.toUpperCase(), mixed]) if (lookup(parse(form))?.name !== name) wrong++;
    // the last byte changed (where bucket neighbours most often differ), and the first
    for (const off of [`${name.slice(0, -1)}#`, `#${name.slice(1)}`]) {
      const found = lookup(parse(off));
      if (found !== undefined && found.name !== off) wrong++;
    }
  }
  t.equal(wrong, 0, `all ${COMMANDS.size} names`);
});

t.test('slotOf refuses metadata keys and keys in different slots, and finds the shared slot', async (t) => {
  const s = router;
  const spec = (n: string): CommandSpec => COMMANDS.get(n)!;
  t.equal(s.slotOf(spec('get'), parse('GET', '__cluster__:config')), META_REFUSED);
  t.equal(s.slotOf(spec('rename'), parse('RENAME', 'a', '__cluster__:version')), META_REFUSED, 'metadata as the second key');
  t.equal(s.slotOf(spec('eval'), parse('EVAL', 's', '1', '__cluster__:config')), META_REFUSED, 'metadata as a script key');
  t.equal(s.slotOf(spec('rename'), parse('RENAME', '{t}a', '{t}b')), slotOf('t'));
  const [a, b] = differentSlots();
  t.match(s.slotOf(spec('rename'), parse('RENAME', a, b)), new RegExp(`^${crossSlot} \\(`));
  t.equal(s.slotOf(spec('get'), parse('GET', '__cluster_x')), slotOf('__cluster_x'), 'a near miss is an ordinary key');
});

function differentSlots(): [string, string] {
  for (let i = 1; ; i++) if (slotOf(`k${i}`) !== slotOf('k0')) return ['k0', `k${i}`];
}

t.test('for every keyed command and argument count, key extraction stays inside the command or refuses', async (t) => {
  const s = router;
  let checked = 0;
  let bad = 0;
  for (const [name, spec] of COMMANDS) {
    if (spec.handling !== 'keyed' && spec.handling !== 'script' && spec.handling !== 'blocking') continue;
    const min = Math.abs(spec.arity);
    for (let argc = min; argc <= min + 4; argc++) {
      if (!arityOk(spec, argc)) continue;
      for (const filler of ['1', 'x', 'STORE', 'STREAMS']) {
        const cmd = parse(name, ...Array.from({ length: argc - 1 }, (_, i) => (i % 2 ? filler : `k${i}`)));
        checked++;
        try {
          const res = s.slotOf(spec, cmd);
          if (typeof res === 'number' && (res < 0 || res > 1023)) bad++;
          const eff = spec.subcommands ? subcommand(spec, cmd) : spec;
          if (eff && (eff.keyStart > 0 || eff.movable)) {
            const out: number[] = [];
            try {
              keyIndexes(eff, cmd, out);
            } catch (e) {
              if (!(e instanceof KeyExtractionError)) throw e;
            }
            if (out.some((i) => i < 1 || i >= argc)) {
              bad++;
              t.fail(`${name} argc ${argc}: key index out of range ${JSON.stringify(out)}`);
            }
          }
        } catch (e) {
          bad++;
          t.fail(`${name} argc ${argc}: threw ${(e as Error).message}`);
        }
      }
    }
  }
  t.equal(bad, 0, `${checked} generated commands`);
});

// ------------------------------------------------------------------ against redis-server

/** Command lines whose keys Redis 7.0 can tell (COMMAND GETKEYS). */
const CASES: string[][] = [
  ['EVAL', 'return 1', '2', 'a', 'b', 'c'],
  ['EVAL_RO', 'return 1', '1', 'a', 'b'],
  ['FCALL', 'f', '2', 'a', 'b', 'x'],
  ['ZUNIONSTORE', 'd', '2', 'a', 'b', 'WEIGHTS', '1', '2'],
  ['ZINTERSTORE', 'd', '3', 'a', 'b', 'c'],
  ['ZDIFFSTORE', 'd', '1', 'a'],
  ['ZUNION', '2', 'a', 'b'],
  ['ZINTER', '2', 'a', 'b', 'WITHSCORES'],
  ['ZDIFF', '1', 'a'],
  ['ZINTERCARD', '2', 'a', 'b', 'LIMIT', '1'],
  ['SINTERCARD', '3', 'a', 'b', 'c'],
  ['LMPOP', '2', 'a', 'b', 'LEFT'],
  ['ZMPOP', '1', 'a', 'MIN', 'COUNT', '2'],
  ['BLMPOP', '0', '2', 'a', 'b', 'RIGHT'],
  ['BZMPOP', '0', '1', 'a', 'MAX'],
  ['XREAD', 'COUNT', '1', 'STREAMS', 'a', 'b', '0', '0'],
  ['XREAD', 'BLOCK', '0', 'STREAMS', 'a', '$'],
  ['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '1', 'STREAMS', 'a', '>'],
  ['SORT', 'l', 'STORE', 'd'],
  ['SORT', 'l', 'LIMIT', '0', '1', 'ALPHA'],
  ['SORT', 'l', 'BY', 'nosort', 'STORE', 'd'],
  ['SORT_RO', 'l', 'ALPHA'],
  ['GEORADIUS', 'g', '1', '2', '3', 'km', 'STORE', 'd'],
  ['GEORADIUS', 'g', '1', '2', '3', 'km', 'STOREDIST', 'd'],
  ['GEORADIUS', 'g', '1', '2', '3', 'km', 'WITHCOORD'],
  ['GEORADIUSBYMEMBER', 'g', 'm', '3', 'km', 'STORE', 'd'],
  ['GEOSEARCHSTORE', 'd', 's', 'FROMMEMBER', 'm', 'BYRADIUS', '1', 'km'],
  ['MSETNX', 'a', '1', 'b', '2'],
  ['BITOP', 'OR', 'd', 'a', 'b'],
  ['LMOVE', 'a', 'b', 'LEFT', 'RIGHT'],
  ['BLMOVE', 'a', 'b', 'LEFT', 'RIGHT', '0'],
  ['SMOVE', 'a', 'b', 'm'],
  ['RENAME', 'a', 'b'],
  ['COPY', 'a', 'b'],
  ['PFMERGE', 'd', 'a', 'b'],
  ['SUNIONSTORE', 'd', 'a', 'b'],
  ['BLPOP', 'a', 'b', '0'],
  ['BZPOPMIN', 'a', 'b', '0'],
  ['LCS', 'a', 'b'],
  ['OBJECT', 'ENCODING', 'k'],
  ['MEMORY', 'USAGE', 'k'],
  ['XINFO', 'STREAM', 's'],
  ['XGROUP', 'CREATE', 's', 'g', '$'],
  ['SET', 'k', 'v', 'EX', '10'],
  ['GETEX', 'k', 'PERSIST'],
  ['HSET', 'h', 'f', 'v'],
];

t.test("key extraction agrees with redis-server's COMMAND GETKEYS", async (t) => {
  const server = await RedisProcess.start();
  t.teardown(() => server.stop({ removeDir: true }));
  const r = new Redis({ port: server.port, lazyConnect: true });
  await r.connect();
  t.teardown(() => r.disconnect());
  const lines = [...CASES];
  // plus every fixed-key command of the table at its minimum arity with generic arguments
  for (const [name, spec] of COMMANDS) {
    if (spec.movable || spec.subcommands || spec.keyStart <= 0) continue;
    const argc = Math.abs(spec.arity) + (spec.arity < 0 ? 1 : 0);
    lines.push([name, ...Array.from({ length: argc - 1 }, (_, i) => `a${i}`)]);
  }
  let compared = 0;
  for (const line of lines) {
    let theirs: string[];
    try {
      theirs = (await r.call('COMMAND', 'GETKEYS', ...line)) as string[];
    } catch {
      continue; // a command this redis-server does not know, or arguments it will not take
    }
    compared++;
    let ours: string[] | string;
    try {
      ours = keysOf(...line);
    } catch (e) {
      ours = (e as Error).message;
    }
    t.same(ours, theirs, line.join(' '));
  }
  t.ok(compared >= CASES.length, `${compared} command lines compared`);
});

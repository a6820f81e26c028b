import t from 'tap';
import { CheckInput, ReadBack, Write, checkHistory, summary } from './history';

/** Shards by the key's first letter: a… on A, b… on B. */
const ownerOf = (k: string): string => (k.startsWith('a') ? 'A' : 'B');
const shardOf = (k: string): string => (k.startsWith('a') ? 'a' : 'b');

let n = 0;
function w(key: string, sentAt: number, ackAt: number | null, outcome: Write['outcome'] = 'ok'): Write {
  return { key, value: `v-${key}-${n++}`, writer: 'w1', via: 'sc1', shard: shardOf(key), sentAt, ackAt, outcome };
}

/** Everything in `writes` read back on its owner, except the keys in `missing`. */
function readAll(writes: Write[], missing: string[] = []): ReadBack {
  const m: ReadBack = new Map();
  for (const x of writes) if (!missing.includes(x.key)) m.set(x.key, [{ master: ownerOf(x.key), value: x.value }]);
  return m;
}

const input = (writes: Write[], found: ReadBack, failure?: CheckInput['failure']): CheckInput => ({ writes, found, ownerOf, failure });

t.test('a clean history passes', async (t) => {
  const h = [w('a1', 1, 2), w('b1', 1, 2), w('a2', 3, 4), w('a3', 5, null, 'error'), w('b2', 5, null, 'pending')];
  const v = checkHistory(input(h, readAll(h, ['a3', 'b2'])));
  t.same(v.violations, []);
  t.equal(v.acked, 3);
  t.equal(v.errors, 1);
  t.equal(v.pending, 1);
  t.equal(v.lost.length, 0);
  t.match(summary(v), /5 writes: 3 acknowledged/);
});

t.test('a write that failed but ran anyway is counted, not a violation', async (t) => {
  const h = [w('a1', 1, null, 'error')];
  const v = checkHistory(input(h, readAll(h)));
  t.same(v.violations, []);
  t.equal(v.unackedPresent, 1);
});

t.test('duplicate keys or values are reported', async (t) => {
  const a = w('a1', 1, 2);
  const b = { ...w('a1', 3, 4) };
  const c = { ...w('b1', 3, 4), value: a.value };
  const v = checkHistory(input([a, b, c], readAll([a, c])));
  t.ok(v.violations.some((l) => l.startsWith('key written twice')));
  t.ok(v.violations.some((l) => l.startsWith('value written twice')));
});

t.test('a key on two masters, on the wrong master, or with another value is reported', async (t) => {
  const h = [w('a1', 1, 2), w('a2', 1, 2), w('b1', 1, 2)];
  const found = readAll(h);
  found.set('a1', [{ master: 'A', value: h[0]!.value }, { master: 'B', value: h[0]!.value }]);
  found.set('a2', [{ master: 'B', value: h[1]!.value }]);
  found.set('b1', [{ master: 'B', value: 'something else' }]);
  found.set('zz', [{ master: 'B', value: 'x' }]);
  const v = checkHistory(input(h, found));
  t.ok(v.violations.some((l) => l.startsWith('key on 2 masters')));
  t.ok(v.violations.some((l) => l.includes('which does not own its slot')));
  t.ok(v.violations.some((l) => l.includes('not the value written')));
  t.ok(v.violations.some((l) => l.startsWith('key read back that no writer wrote')));
});

t.test('lost acknowledged writes', async (t) => {
  const failure = { shard: 'a', at: 100, hintAt: 1000 };

  t.test('with no failure: a violation', async (t) => {
    const h = [w('a1', 1, 2)];
    const v = checkHistory(input(h, readAll(h, ['a1'])));
    t.equal(v.lost.length, 1);
    t.match(v.violations[0], /lost with no failure/);
  });

  t.test('in the failed shard, in its last instant: allowed and counted', async (t) => {
    const h = [w('a1', 10, 20), w('a2', 21, 30), w('a3', 95, 98), w('a4', 96, 99), w('b1', 150, 160)];
    const v = checkHistory(input(h, readAll(h, ['a3', 'a4']), failure));
    t.same(v.violations, []);
    t.equal(v.lost.length, 2);
    t.equal(v.lostWindowMs, -2);
  });

  t.test('outside the failed shard: a violation', async (t) => {
    const h = [w('b1', 95, 98)];
    const v = checkHistory(input(h, readAll(h, ['b1']), failure));
    t.match(v.violations[0], /outside the failed shard a/);
  });

  t.test('sent after the failure: a violation', async (t) => {
    const h = [w('a1', 101, 1200)];
    const v = checkHistory(input(h, readAll(h, ['a1']), failure));
    t.match(v.violations[0], /sent after the failure/);
  });

  t.test('acknowledged after the switching hint (a frozen old master answering late): a violation', async (t) => {
    const h = [w('a1', 99, 1500)];
    const v = checkHistory(input(h, readAll(h, ['a1']), failure));
    t.match(v.violations[0], /after the switching hint/);
  });

  t.test('not the last instant: an earlier write lost while a later one survived', async (t) => {
    const h = [w('a1', 10, 20), w('a2', 21, 30)];
    const v = checkHistory(input(h, readAll(h, ['a1']), failure));
    t.equal(v.violations.length, 1);
    t.match(v.violations[0], /before a later write that survived was even sent/);
  });

  t.test('overlapping writes of two clients: either may be the one lost', async (t) => {
    // a2 was sent before a1's acknowledgement: they ran in either order
    const h = [w('a1', 90, 95), w('a2', 92, 96)];
    t.same(checkHistory(input(h, readAll(h, ['a1']), failure)).violations, []);
    t.same(checkHistory(input(h, readAll(h, ['a2']), failure)).violations, []);
  });

  t.test('a write acknowledged after the failure by the new master must be there', async (t) => {
    const h = [w('a1', 1100, 1110)];
    const v = checkHistory(input(h, readAll(h, ['a1']), failure));
    t.match(v.violations[0], /sent after the failure/);
  });
});

t.test('the list of violations is bounded', async (t) => {
  const h = Array.from({ length: 50 }, (_, i) => w(`b${i}`, 1, 2));
  const v = checkHistory(input(h, readAll(h, h.map((x) => x.key))), 5);
  t.equal(v.violations.length, 6);
  t.match(v.violations[5], /and 45 more/);
});

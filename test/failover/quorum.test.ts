import t from 'tap';
import type Redis from 'ioredis';
import { onQuorum } from '../../src/failover/ops';

/** Stand-ins for clients: each answers `value` after `ms` (never when ms is null), or fails. */
type Plan = { ms: number | null; value?: string; fail?: boolean };
const clients = (plans: Record<string, Plan>): Map<string, Redis> =>
  new Map(Object.entries(plans).map(([a, p]) => [a, p as unknown as Redis]));
const run = (c: Redis): Promise<string> => {
  const p = c as unknown as Plan;
  return new Promise((resolve, reject) => {
    if (p.ms === null) return;
    setTimeout(() => (p.fail ? reject(new Error('refused')) : resolve(p.value ?? 'OK')), p.ms);
  });
};

t.test('returns once a majority answered and the grace passed, without the one that never answers', async (t) => {
  // (a 10-minute timeout: were it waited for, the test would time out)
  const res = await onQuorum(clients({ a: { ms: 5 }, b: { ms: 10 }, c: { ms: null } }), run, { need: 2, timeoutMs: 600_000, graceMs: 20 });
  t.same(res.get('a'), { ok: true, value: 'OK' });
  t.same(res.get('b'), { ok: true, value: 'OK' });
  t.same(res.get('c'), { ok: false, pending: true });
});

t.test('the grace lets a slightly slower master be counted', async (t) => {
  const res = await onQuorum(clients({ a: { ms: 1 }, b: { ms: 2 }, c: { ms: 15 } }), run, { need: 2, timeoutMs: 5000, graceMs: 200 });
  t.same(res.get('c'), { ok: true, value: 'OK' });
});

t.test('values that are not successes do not count towards the quorum', async (t) => {
  const res = await onQuorum(clients({ a: { ms: 1, value: 'no' }, b: { ms: 2 }, c: { ms: 30 } }), run, {
    need: 2,
    good: (v) => v === 'OK',
    timeoutMs: 5000,
    graceMs: 1,
  });
  t.same(res.get('c'), { ok: true, value: 'OK' }, 'waited for the third');
  t.same(res.get('a'), { ok: true, value: 'no' });
});

t.test('gives up as soon as the quorum cannot be reached', async (t) => {
  const res = await onQuorum(clients({ a: { ms: 1, fail: true }, b: { ms: 2, fail: true }, c: { ms: null } }), run, { need: 2, timeoutMs: 600_000 });
  t.match(res.get('a'), { ok: false, error: { message: 'refused' } });
  t.same(res.get('c'), { ok: false, pending: true });
});

t.test('without `need`, waits for every address up to the timeout', async (t) => {
  const res = await onQuorum(clients({ a: { ms: 1 }, b: { ms: 60 }, c: { ms: null } }), run, { timeoutMs: 300 });
  t.same(res.get('b'), { ok: true, value: 'OK' }, 'the slower one was waited for');
  t.same(res.get('c'), { ok: false, pending: true }, 'the silent one until the timeout');
  t.same((await onQuorum(clients({}), run, { timeoutMs: 100 })).size, 0, 'no clients: at once');
});

t.test('the answer is a snapshot: a late reply does not change it', async (t) => {
  const res = await onQuorum(clients({ a: { ms: 1 }, b: { ms: 1 }, c: { ms: 60 } }), run, { need: 2, timeoutMs: 5000, graceMs: 5 });
  await new Promise((r) => setTimeout(r, 100));
  t.same(res.get('c'), { ok: false, pending: true });
});

/**
 * Probe seats (src/failover/probers.ts), without sockets: what a reading says of each seat, who
 * the electorate is, and — over a simulated fleet of 1 to 2 000 sidecars claiming with SET NX on
 * three masters — that every seat is filled within a few rounds, no sidecar holds two seats of a
 * node or more than its fair share, a vacancy costs a handful of claims and not one per sidecar,
 * and a minority's reading decides nothing.
 */
import t from 'tap';
import { SeatReading, electorate, planClaims, seatKeys, tallySeats } from '../../src/failover/probers';
import { majority } from '../../src/cluster/config';

const NODES = ['a', 'b', 'c'];
const K = 5;

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const reading = (copies: Array<Array<string | null> | null>, sidecars = 0): SeatReading => ({
  at: 0,
  nodes: NODES,
  copies: new Map(copies.map((c, i) => [`m${i}`, c])),
  sidecars,
  answered: new Map(),
});
const empty = (): Array<string | null> => Array.from({ length: NODES.length * K }, () => null);

t.test('seat keys are node by node, seat by seat', async (t) => {
  t.same(seatKeys(['a', 'b'], 2), ['__cluster__:probe:a:0', '__cluster__:probe:a:1', '__cluster__:probe:b:0', '__cluster__:probe:b:1']);
});

t.test('a seat is held by the id a majority of the answering masters name, vacant when a majority name none', async (t) => {
  const x = empty();
  x[0] = 'sc1';
  const y = empty();
  y[0] = 'sc1';
  y[1] = 'sc2';
  const z = empty();
  z[1] = 'sc3';
  const tally = tallySeats(reading([x, y, z]), NODES, K);
  t.same(tally.get('a')![0], { kind: 'held', id: 'sc1' });
  t.same(tally.get('a')![1], { kind: 'unknown' }, 'sc2, sc3 and nobody: no majority');
  t.same(tally.get('a')![2], { kind: 'vacant' });
  t.same(electorate(reading([x, y, z]), NODES, 'a', K), new Set(['sc1', 'sc2', 'sc3']), 'the electorate is every id named anywhere');
  t.same(electorate(reading([x, y, z]), NODES, 'b', K), new Set());
});

t.test('a minority of answering masters decides nothing: no seat is vacant, none is claimed', async (t) => {
  const tally = tallySeats(reading([empty(), null, null]), NODES, K);
  for (const n of NODES) t.ok(tally.get(n)!.every((s) => s.kind === 'unknown'), n);
  t.same(planClaims({ id: 'x', nodes: NODES, tally, sidecars: 3, random: rng(1), seats: K }), []);
});

/** A fleet of `n` sidecars claiming for `rounds` rounds against three in-memory masters. */
function simulate(n: number, rounds: number, seed: number, start?: Array<Map<string, string>>) {
  const random = rng(seed);
  const masters = start ?? [new Map<string, string>(), new Map<string, string>(), new Map<string, string>()];
  const keys = seatKeys(NODES, K);
  let claims = 0;
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // every sidecar reads in the same round (the worst case), then claims
    const copies = masters.map((m) => keys.map((k) => m.get(k) ?? null));
    const tally = tallySeats(reading(copies, n), NODES, K);
    let round = 0;
    for (let i = 0; i < n; i++) {
      const id = `sc${i}`;
      for (const { node, seat } of planClaims({ id, nodes: NODES, tally, sidecars: n, random, seats: K })) {
        round++;
        const key = `__cluster__:probe:${node}:${seat}`;
        const took = masters.filter((m) => !m.has(key) && (m.set(key, id), true));
        if (took.length < majority(masters.length)) for (const m of took) if (m.get(key) === id) m.delete(key);
      }
    }
    claims += round;
    perRound.push(round);
  }
  const holders = new Map<string, string[]>();
  for (const n2 of NODES)
    holders.set(
      n2,
      Array.from({ length: K }, (_, i) => `__cluster__:probe:${n2}:${i}`)
        .map((k) => masters.filter((m) => m.has(k)).map((m) => m.get(k)!))
        .filter((v) => v.length >= 2 && v.every((x) => x === v[0]))
        .map((v) => v[0]!),
    );
  return { masters, holders, claims, perRound };
}

t.test('a fleet fills every seat within a few rounds, a node never has one sidecar twice, nobody exceeds a fair share', async (t) => {
  for (const n of [1, 2, 3, 5, 15, 100, 1000, 2000]) {
    for (const seed of [1, 2, 3]) {
      const { holders, perRound } = simulate(n, 12, seed * 7919 + n);
      const want = Math.min(K, n);
      const per = new Map<string, number>();
      for (const [node, hs] of holders) {
        t.equal(hs.length, want, `N=${n} seed ${seed}: node ${node} has ${want} probers`);
        t.equal(new Set(hs).size, hs.length, `N=${n}: no sidecar holds two seats of node ${node}`);
        for (const h of hs) per.set(h, (per.get(h) ?? 0) + 1);
      }
      const share = Math.min(NODES.length, Math.ceil((NODES.length * K) / n));
      t.ok([...per.values()].every((c) => c <= share), `N=${n}: at most ${share} seat(s) per sidecar`);
      if (n >= 100) t.ok(perRound[0]! <= 10 * NODES.length * K, `N=${n}: the first round has ${perRound[0]} claims, not one per sidecar`);
    }
  }
});

t.test('a vacancy among a thousand sidecars is filled by a handful of claims', async (t) => {
  const full = simulate(1000, 12, 42);
  // one prober leaves: its seat lapses on every master
  const gone = full.holders.get('b')![2]!;
  for (const m of full.masters) for (const [k, v] of [...m]) if (v === gone) m.delete(k);
  const again = simulate(1000, 6, 43, full.masters);
  t.equal(again.holders.get('b')!.length, K, 'the seat is taken again');
  t.ok(again.claims <= 40, `${again.claims} claims over six rounds for one vacancy`);
  t.notOk(again.holders.get('b')!.includes(gone), 'by another sidecar');
});

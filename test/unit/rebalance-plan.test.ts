/**
 * The rebalance plan (src/admin/rebalance-plan.ts), exhaustively over many layouts: the targets
 * add up to 1024 and follow the weights, every node ends on its target, the plan moves exactly
 * the least possible (Σ excess), no slot moves twice, a slot only leaves the node that owns it,
 * and a donor keeps its lowest slots.
 */
import t from 'tap';
import { ClusterConfig, compactSlots, initialConfig } from '../../src/cluster/config';
import { SLOT_COUNT } from '../../src/cluster/slot';
import { parseWeights, planRebalance, slotsByNode, targets } from '../../src/admin/rebalance-plan';
import { RebalanceError } from '../../src/admin/errors';

function layout(counts: number[], seed: number): ClusterConfig {
  const shards = counts.map((_, i) => ({ master: `10.0.0.${i + 1}:6379`, replicas: [] }));
  const base = initialConfig(shards);
  const names = Object.keys(base.nodes).sort();
  // interleave ownership in runs to make the ranges uneven
  const owner: string[] = [];
  let rnd = seed;
  const next = (): number => (rnd = (rnd * 1103515245 + 12345) % 2147483648);
  const left = [...counts];
  while (owner.length < SLOT_COUNT) {
    const candidates = names.map((_, i) => i).filter((i) => left[i]! > 0);
    const i = candidates[next() % candidates.length]!;
    const run = Math.min(left[i]!, 1 + (next() % 40));
    for (let k = 0; k < run; k++) owner.push(names[i]!);
    left[i]! -= run;
  }
  return { ...base, slots: compactSlots(owner.map((n, s) => [s, s, n] as [number, number, string])) };
}

function splits(n: number, seed: number): number[] {
  let rnd = seed;
  const next = (): number => (rnd = (rnd * 1103515245 + 12345) % 2147483648);
  const cuts = Array.from({ length: n - 1 }, () => next() % (SLOT_COUNT + 1)).sort((a, b) => a - b);
  const bounds = [0, ...cuts, SLOT_COUNT];
  return bounds.slice(1).map((b, i) => b - bounds[i]!);
}

t.test('every layout of 1 to 7 nodes, with and without weights, ends balanced by the least possible move', async (t) => {
  let cases = 0;
  for (let nodes = 1; nodes <= 7; nodes++)
    for (let seed = 1; seed <= 60; seed++) {
      const counts = splits(nodes, seed * 7919 + nodes);
      const config = layout(counts, seed);
      const names = Object.keys(config.nodes).sort();
      for (const weights of [undefined, Object.fromEntries(names.map((n, i) => [n, (i % 3) + 1])), Object.fromEntries(names.map((n, i) => [n, i === 0 && nodes > 1 ? 0 : 1]))]) {
        cases++;
        const plan = planRebalance(config, { weights });
        const tg = targets(names, weights ?? {});
        const label = JSON.stringify({ counts, weights });
        if (Object.values(tg).reduce((a, b) => a + b, 0) !== SLOT_COUNT) t.fail(`targets do not add up: ${label}`);
        const owner = new Map<number, string>();
        for (const [n, slots] of slotsByNode(config)) for (const s of slots) owner.set(s, n);
        const seen = new Set<number>();
        for (const m of plan.moves) {
          for (const s of m.slots) {
            if (seen.has(s)) t.fail(`slot ${s} moved twice: ${label}`);
            seen.add(s);
            if (owner.get(s) !== m.from) t.fail(`slot ${s} moved from ${m.from}, owned by ${owner.get(s)}: ${label}`);
            owner.set(s, m.to);
          }
          if (m.from === m.to) t.fail(`a move to itself: ${label}`);
        }
        const after: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
        for (const n of owner.values()) after[n]!++;
        for (const n of names) if (after[n] !== tg[n]) t.fail(`${n} ends with ${after[n]} slots, target ${tg[n]}: ${label}`);
        const least = names.reduce((a, n) => a + Math.max(0, plan.before[n]! - tg[n]!), 0);
        if (plan.moved !== least) t.fail(`moved ${plan.moved}, least possible ${least}: ${label}`);
        // a donor keeps its lowest slots
        for (const [n, slots] of slotsByNode(config)) {
          const kept = slots.filter((s) => owner.get(s) === n);
          if (kept.length && kept.some((s, i) => s !== slots[i])) t.fail(`${n} gave away a low slot and kept a higher one: ${label}`);
        }
        // weights are followed (within one slot of the exact share)
        const w = names.map((n) => weights?.[n] ?? 1);
        const total = w.reduce((a, b) => a + b, 0);
        names.forEach((n, i) => {
          if (Math.abs(tg[n]! - (SLOT_COUNT * w[i]!) / total) >= 1) t.fail(`target of ${n} is ${tg[n]}, share ${(SLOT_COUNT * w[i]!) / total}: ${label}`);
        });
      }
    }
  t.pass(`${cases} layouts checked`);
});

t.test('a threshold leaves a nearly even cluster alone; an even one needs nothing', async (t) => {
  const even = initialConfig([1, 2, 3].map((i) => ({ master: `10.0.0.${i}:6379`, replicas: [] })));
  t.same(planRebalance(even).moves, [], 'even: nothing to move');
  t.ok(planRebalance(even).balanced);
  const skew = layout([300, 350, 374], 3);
  t.ok(planRebalance(skew, { thresholdPct: 15 }).balanced, 'within 15%: balanced');
  t.notOk(planRebalance(skew, { thresholdPct: 5 }).balanced, 'not within 5%');
  t.equal(planRebalance(skew).moved, 342 - 300, 'exactly what the lightest lacks (its target is 342: the remainder goes to the first name)');
});

t.test('bad requests are refused with the reason', async (t) => {
  const c = initialConfig([1, 2].map((i) => ({ master: `10.0.0.${i}:6379`, replicas: [] })));
  t.throws(() => planRebalance(c, { weights: { z: 1 } }), RebalanceError, 'an unknown node');
  t.throws(() => planRebalance(c, { weights: { a: -1 } }), RebalanceError, 'a negative weight');
  t.throws(() => planRebalance(c, { weights: { a: 0, b: 0 } }), /every node has weight 0/);
  t.throws(() => planRebalance({ ...c, migrating: { '5': { from: 'a', to: 'b' } } }), /migrating/);
  t.same(parseWeights('a=2,b=1'), { a: 2, b: 1 });
  t.throws(() => parseWeights('a=two'), RebalanceError);
});

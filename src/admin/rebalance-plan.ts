/**
 * The rebalance plan (issue 24): which slots move from which node to which, so that every node
 * ends with its share of the 1024 slots (by weight), moving the fewest slots. Pure: no I/O.
 *
 *   target(n) = SLOT_COUNT × weight(n) / Σ weights, rounded so the targets add up to SLOT_COUNT
 *               (largest remainders first, ties by node name)
 *   donors    = nodes above their target give exactly the excess; receivers take exactly the
 *               shortfall; Σ excess = Σ shortfall is the least any plan can move
 *
 * A donor gives slots from the high end of its ranges, so what it keeps stays contiguous where
 * it was; receivers are filled in name order, each from the donors in name order. A node of
 * weight 0 gives all its slots (remove-shard drains a node this way).
 */
import type { ClusterConfig } from '../cluster/config';
import { SLOT_COUNT } from '../cluster/slot';
import { RebalanceError } from './errors';

export interface Move {
  from: string;
  to: string;
  /** ascending */
  slots: number[];
}

export interface RebalancePlan {
  /** slots per node now */
  before: Record<string, number>;
  /** slots per node wanted */
  target: Record<string, number>;
  moves: Move[];
  /** Σ of the moves' slots: the least that reaches the targets */
  moved: number;
  /** true when every node is within the threshold of its target (nothing to do) */
  balanced: boolean;
}

export interface RebalanceOptions {
  /** node → weight (default 1 each); a node left out gets 1; 0 drains a node */
  weights?: Record<string, number>;
  /** do nothing when every node is within this % of its target (default 0: exact) */
  thresholdPct?: number;
}

/** `a=2,b=1` → {a: 2, b: 1}. */
export function parseWeights(spec: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of spec.split(',').map((p) => p.trim())) {
    const m = /^([A-Za-z0-9_-]+)=(\d+(?:\.\d+)?)$/.exec(part);
    if (!m) throw new RebalanceError(`bad weight ${JSON.stringify(part)}: use node=number, e.g. a=2,b=1`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Slots owned by each node, ascending (nodes with none included). */
export function slotsByNode(config: ClusterConfig): Map<string, number[]> {
  const out = new Map<string, number[]>(Object.keys(config.nodes).sort().map((n) => [n, []]));
  const owner = new Array<string>(SLOT_COUNT);
  for (const [a, b, n] of config.slots) for (let s = a; s <= b; s++) owner[s] = n;
  owner.forEach((n, s) => out.get(n)!.push(s));
  return out;
}

/** Targets that add up to SLOT_COUNT (largest remainder). */
export function targets(names: string[], weights: Record<string, number>): Record<string, number> {
  const w = names.map((n) => weights[n] ?? 1);
  const total = w.reduce((a, b) => a + b, 0);
  if (total <= 0) throw new RebalanceError('every node has weight 0: the slots must go somewhere');
  const exact = w.map((x) => (SLOT_COUNT * x) / total);
  const out = exact.map(Math.floor);
  let left = SLOT_COUNT - out.reduce((a, b) => a + b, 0);
  const order = names.map((n, i) => ({ n, i, rest: exact[i]! - out[i]! })).sort((a, b) => b.rest - a.rest || (a.n < b.n ? -1 : 1));
  for (const o of order) {
    if (left === 0) break;
    if (w[o.i]! > 0) {
      out[o.i]!++;
      left--;
    }
  }
  return Object.fromEntries(names.map((n, i) => [n, out[i]!]));
}

export function planRebalance(config: ClusterConfig, o: RebalanceOptions = {}): RebalancePlan {
  const names = Object.keys(config.nodes).sort();
  const weights = o.weights ?? {};
  for (const [n, x] of Object.entries(weights)) {
    if (!(n in config.nodes)) throw new RebalanceError(`unknown node ${JSON.stringify(n)} in the weights; the nodes are ${names.join(', ')}`);
    if (!Number.isFinite(x) || x < 0) throw new RebalanceError(`the weight of ${n} must be a number ≥ 0`);
  }
  if (config.switching) throw new RebalanceError(`a fail-over of node ${config.switching.node} is under way; try again when it has ended`);
  const migrating = Object.keys(config.migrating);
  if (migrating.length) throw new RebalanceError(`${migrating.length} slot(s) are migrating (e.g. slot ${migrating[0]}): finish that move first (ringside move-slots, or ringside fix)`);
  const owned = slotsByNode(config);
  const target = targets(names, weights);
  const before = Object.fromEntries(names.map((n) => [n, owned.get(n)!.length]));
  const threshold = o.thresholdPct ?? 0;
  const off = (n: string): number => Math.abs(before[n]! - target[n]!);
  const within = names.every((n) => (target[n] === 0 ? before[n] === 0 : (100 * off(n)) / target[n]! <= threshold));
  if (within) return { before, target, moves: [], moved: 0, balanced: true };

  // what each donor gives: its highest slots
  const give = new Map<string, number[]>();
  for (const n of names) {
    const excess = before[n]! - target[n]!;
    if (excess > 0) give.set(n, owned.get(n)!.slice(-excess));
  }
  const moves: Move[] = [];
  for (const to of names) {
    let need = target[to]! - before[to]!;
    for (const [from, slots] of give) {
      if (need <= 0) break;
      if (slots.length === 0) continue;
      const take = slots.splice(0, Math.min(need, slots.length));
      need -= take.length;
      moves.push({ from, to, slots: take });
    }
  }
  const moved = moves.reduce((a, m) => a + m.slots.length, 0);
  return { before, target, moves, moved, balanced: false };
}

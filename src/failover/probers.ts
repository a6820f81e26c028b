/**
 * Probers (docs/protocol.md, "Probers"): which sidecars probe each master and vote on it. Pure:
 * what the seats on the masters say, and which seats a sidecar should try to take; the agent
 * (src/failover/agent.ts) does the reads and writes.
 *
 * Every node has PROBE_SEATS seats, `__cluster__:probe:<node>:<i>`, on every master: a sidecar id
 * with a TTL (seatTtlMs) that its holder renews every checkMs. The holders of a node's seats probe
 * its master every round and are its electorate: only their votes count, and a fail-over needs a
 * majority of them. The other sidecars neither probe nor vote; they keep their lease by the
 * version check alone. So a master's control-plane load is one small read per sidecar per checkMs,
 * plus a bounded amount from the probers, whatever the number of sidecars.
 *
 *   seat  (node a, 0)  (a, 1) … (a, 4)   (b, 0) …      on every master, each with its TTL
 *          sc-17        sc-03     —       sc-88
 *
 * A seat counts as held by an id when a majority of the masters that answered name it; vacant
 * when a majority of them name nobody. A sidecar claims a vacant seat with SET NX PX on every
 * master and keeps it only when a majority took it.
 */
import { PROBE_SEATS, probeSeatKey } from '../cluster/meta-keys';
import { majority } from '../cluster/config';

/** the version round reads the seats every this many rounds (at a phase of each sidecar's own) */
export const SEATS_EVERY = 5;

/** One read of the seats: per master, the values in `seatKeys` order, or null when it did not answer. */
export interface SeatReading {
  /** unix ms when the read was sent */
  at: number;
  /** the nodes (sorted) whose seats were read, in this order */
  nodes: string[];
  copies: Map<string, Array<string | null> | null>;
  /** sidecars checked in, as the masters last counted them (0: unknown) */
  sidecars: number;
  /** master → unix ms of the sending of the last read it answered (any version round, seats or not) */
  answered: Map<string, number>;
}

/** The seat keys of `nodes` (sorted), node by node: the order of every seat read. */
export function seatKeys(nodes: readonly string[], seats = PROBE_SEATS): string[] {
  const out: string[] = [];
  for (const n of nodes) for (let i = 0; i < seats; i++) out.push(probeSeatKey(n, i));
  return out;
}

/** A seat TTL outlives two missed renewals (one every checkMs). */
export const seatTtlMs = (checkMs: number): number => Math.max(300, 3 * checkMs);

export type SeatState = { kind: 'held'; id: string } | { kind: 'vacant' } | { kind: 'unknown' };

/**
 * What the answering masters say of each seat: held by the id a majority of them name, vacant
 * when a majority name nobody, unknown otherwise (or when fewer than a majority of all the
 * masters answered: a minority's view decides nothing).
 */
export function tallySeats(reading: SeatReading, nodes: readonly string[], seats = PROBE_SEATS): Map<string, SeatState[]> {
  const answered = [...reading.copies.values()].filter((c): c is Array<string | null> => c !== null);
  const total = reading.copies.size;
  const out = new Map<string, SeatState[]>();
  nodes.forEach((n, ni) => {
    const states: SeatState[] = [];
    for (let i = 0; i < seats; i++) {
      if (answered.length < majority(total)) {
        states.push({ kind: 'unknown' });
        continue;
      }
      const count = new Map<string | null, number>();
      for (const c of answered) {
        const v = c[ni * seats + i] ?? null;
        count.set(v, (count.get(v) ?? 0) + 1);
      }
      const need = majority(answered.length);
      let state: SeatState = { kind: 'unknown' };
      for (const [v, k] of count)
        if (k >= need) state = v === null ? { kind: 'vacant' } : { kind: 'held', id: v };
      states.push(state);
    }
    out.set(n, states);
  });
  return out;
}

/**
 * The electorate of a node: every id that any answering master names in one of its seats. Wider
 * than the majority rule on purpose: a prober whose seat is mid-renewal still counts, and the
 * fail-over's own majority (of these) is what keeps a minority from deciding.
 */
export function electorate(reading: SeatReading, nodes: readonly string[], node: string, seats = PROBE_SEATS): Set<string> {
  const ni = nodes.indexOf(node);
  const out = new Set<string>();
  if (ni < 0) return out;
  for (const c of reading.copies.values()) {
    if (!c) continue;
    for (let i = 0; i < seats; i++) {
      const v = c[ni * seats + i];
      if (v) out.add(v);
    }
  }
  return out;
}

export interface ClaimInput {
  id: string;
  nodes: readonly string[];
  tally: Map<string, SeatState[]>;
  /** sidecars checked in (0: unknown) */
  sidecars: number;
  /** [0, 1) */
  random: () => number;
  seats?: number;
}

/**
 * The seats this sidecar should try to take now: at most one per node, none of a node it already
 * holds a seat of, and no more than its fair share (all seats over all sidecars, rounded up).
 * Each is tried with a probability that makes about two claimants per vacancy per round across
 * all sidecars, so a vacancy among a thousand sidecars costs a handful of SET NX, not a thousand.
 */
export function planClaims(o: ClaimInput): Array<{ node: string; seat: number }> {
  const seats = o.seats ?? PROBE_SEATS;
  const held = new Set<string>();
  let vacancies = 0;
  const vacant = new Map<string, number[]>();
  for (const n of o.nodes) {
    const states = o.tally.get(n) ?? [];
    const v: number[] = [];
    states.forEach((s, i) => {
      if (s.kind === 'held' && s.id === o.id) held.add(n);
      if (s.kind === 'vacant') v.push(i);
    });
    vacant.set(n, v);
  }
  for (const [n, v] of vacant) if (!held.has(n)) vacancies += v.length;
  if (vacancies === 0) return [];
  const n = Math.max(1, o.sidecars);
  const fairShare = Math.ceil((o.nodes.length * seats) / n);
  let room = fairShare - held.size;
  if (room <= 0) return [];
  const p = Math.min(1, (2 * vacancies) / n);
  const out: Array<{ node: string; seat: number }> = [];
  // nodes in a random order, so that sidecars with room for one seat spread over the nodes
  const order = [...o.nodes].map((x) => [o.random(), x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
  for (const node of order) {
    if (room <= 0) break;
    const v = vacant.get(node)!;
    if (held.has(node) || v.length === 0) continue;
    if (o.random() >= p) continue;
    out.push({ node, seat: v[Math.floor(o.random() * v.length)]! });
    room--;
  }
  return out;
}

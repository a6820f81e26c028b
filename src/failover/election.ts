/**
 * The election state machine each sidecar runs for every master of the cluster (docs/failover.md,
 * "The state machine"). Pure: no I/O and no timers. The caller feeds it its own probe results and
 * what it read from the masters (votes, live sidecars), asks `decide()` what to do, carries the
 * actions out, and reports lock outcomes back. Time comes from the injected clock only, so every
 * rule can be tested with a fake one.
 */
import type { FailoverMode, Switching } from '../cluster/config';
import { majority } from '../cluster/config';

export interface ElectionTiming {
  downAfterMs: number;
  leaseMs: number;
  /** set while a lease is being shortened (config.ts, Timing): the waits use the longer one */
  leaseFloorMs?: number;
}

/** The lease every wait must cover: the lease, or the floor while one is being shortened. */
const waitedLease = (t: ElectionTiming): number => Math.max(t.leaseMs, t.leaseFloorMs ?? 0);

/** What the machine needs from the configuration. */
export interface ElectionConfig {
  failover: FailoverMode;
  timing: ElectionTiming;
  switching: Switching | null;
}

/** One watched master, as the caller sees it this round. */
export interface NodeView {
  node: string;
  /** the master's address in the configuration (a change resets the node's state) */
  address: string;
  /** votes read from the masters, merged: sidecar id → unix ms of the vote (the newest seen) */
  votes: Record<string, number> | Map<string, number>;
  /**
   * how many sidecars may vote on this node (its probers, src/failover/probers.ts); the votes
   * passed are theirs only. Default: world.liveSidecars
   */
  electorate?: number;
}

export interface World {
  config: ElectionConfig;
  mastersTotal: number;
  /** masters that answered this sidecar's own probe in the last round (the failed one included) */
  mastersReached: number;
  /** sidecars that checked in recently (`__cluster__:sidecars`); 0 when unknown */
  liveSidecars: number;
  nodes: NodeView[];
}

export type Action =
  /** push an error report for the node (already rate-limited) */
  | { kind: 'report'; node: string; address: string }
  /** record (or refresh, when `refresh`) this sidecar's vote for the node's replacement */
  | { kind: 'vote'; node: string; address: string; refresh: boolean }
  /**
   * record (or refresh) this sidecar's suspicion: the node has failed its probes for
   * `suspectAfterMs` (not yet `downAfterMs`). Suspicions let the lease wait start early; they
   * never promote anything by themselves
   */
  | { kind: 'suspect'; node: string; address: string; refresh: boolean }
  /** remove this sidecar's vote and suspicion: the node answers again, or this sidecar lost the majority */
  | { kind: 'withdraw-vote'; node: string; address: string }
  /**
   * take the election lock and run the switch; `resume` finishes or rolls back a stale `switching`;
   * `early`: led on a majority of suspicions, so the promotion must wait for a majority of votes
   * (`confirmation`), and the switch rolls back if they do not come
   */
  | { kind: 'try-lead'; node: string; address: string; resume: boolean; votes: number; needed: number; early?: boolean }
  /** no election for the node this round; `reason` says why (shown in status and tests) */
  | { kind: 'none'; node: string; address: string; reason: string };

export type NodePhase = 'up' | 'suspect' | 'down';

export interface NodeStatus {
  node: string;
  address: string;
  phase: NodePhase;
  /** unix ms of the first failed probe of the current unbroken run of failures; null when up */
  downSince: number | null;
  /** unix ms of this sidecar's last vote; null when it has no standing vote */
  votedAt: number | null;
  /** this sidecar is running (or has asked to run) an election for the node */
  leading: boolean;
  /** no try-lead before this unix ms */
  backoffUntil: number;
  /** lock attempts lost in a row (drives the backoff) */
  lockFailures: number;
}

export interface ElectionOptions {
  /** this sidecar's id: its own vote read back from the masters is not counted twice */
  id: string;
  now: () => number;
  /** [0, 1) for backoff jitter; Math.random by default */
  random?: () => number;
  /** least interval between two error reports for the same node (default 1000 ms) */
  reportIntervalMs?: number;
  /** suspicions and early leads (default true); false: votes only, the lease wait starts after them */
  earlyStart?: boolean;
}

/** Added to leaseMs for the switch's wait: clock rates within 10%, and 200 ms for the data path's watchdog and event-loop delay. */
export const leaseMarginMs = (t: ElectionTiming): number => Math.max(200, Math.ceil(waitedLease(t) / 10));
/** The agent's round while every master answers: a probe each, `downAfterMs / 4`, 50–500 ms. */
export const roundMs = (t: ElectionTiming): number => Math.max(50, Math.min(500, Math.floor(t.downAfterMs / 4)));
/** The round while a master fails its probes: faster, so suspicions and votes are counted soon. */
export const alertRoundMs = (t: ElectionTiming): number => Math.max(50, Math.min(250, Math.floor(t.downAfterMs / 10)));
/**
 * How long a node must fail before a sidecar suspects it: early enough that a lease wait started
 * then (two alert rounds later, once the suspicions are counted) is over about when the votes are
 * in (downAfterMs); never before half of downAfterMs.
 */
export const suspectAfterMs = (t: ElectionTiming): number =>
  Math.min(t.downAfterMs, Math.max(Math.floor(t.downAfterMs / 2), t.downAfterMs - (waitedLease(t) + leaseMarginMs(t)) - 2 * alertRoundMs(t)));
/** Field of a suspicion in the votes hash, beside the sidecar's vote (field: its id). */
export const suspicionField = (id: string): string => `${id}:suspect`;
const SUSPECT_SUFFIX = ':suspect';
/** Whether a votes-hash field is a suspicion (`<id>:suspect`) rather than a vote (`<id>`). */
export const isSuspicion = (field: string): boolean => field.endsWith(SUSPECT_SUFFIX);
/** The sidecar id behind a votes-hash field, vote or suspicion. */
export const voterOf = (field: string): string => (isSuspicion(field) ? field.slice(0, -SUSPECT_SUFFIX.length) : field);

/** Votes older than this are ignored: "a few downAfterMs". */
export const voteFreshMs = (t: ElectionTiming): number => 3 * t.downAfterMs;
/** A voter refreshes its vote this often while the node stays down. */
export const voteRefreshMs = (t: ElectionTiming): number => t.downAfterMs;
/** A `switching` hint older than this is left over by a dead leader: finish or roll it back. */
export const staleSwitchMs = (t: ElectionTiming): number => 2 * waitedLease(t) + 4 * t.downAfterMs;
/** TTL of the election lock; the leader refreshes it at a third of this. */
export const lockTtlMs = (t: ElectionTiming): number => Math.max(4000, 2 * waitedLease(t));
/** First backoff after a lost lock; doubles per further loss, capped, with jitter ×[0.5, 1.5). */
export const backoffBaseMs = (t: ElectionTiming): number => Math.max(200, Math.floor(t.downAfterMs / 2));
export const backoffCapMs = (t: ElectionTiming): number => Math.max(2000, 2 * waitedLease(t));

interface NodeState {
  address: string;
  downSince: number | null;
  lastProbeAt: number | null;
  lastProbeOk: boolean;
  votedAt: number | null;
  suspectedAt: number | null;
  lastReportAt: number | null;
  leading: boolean;
  backoffUntil: number;
  lockFailures: number;
  /** fresh votes and the majority needed, as last counted (kept while leading: an early lead waits on them) */
  votes: number;
  needed: number;
}

/** Where an early lead stands: promote once `votes >= needed`; give up when the node is `up` again. */
export interface Confirmation {
  phase: NodePhase;
  votes: number;
  needed: number;
}

/** How a try-lead ended, as the caller reports it. */
export type LeadOutcome =
  /** the switch (or resume) completed */
  | 'completed'
  /** the lock was held elsewhere, or not on a majority */
  | 'lock-lost'
  /** nothing to do after all (already switched, no switching left to resume) */
  | 'moot'
  /** the switch failed after the lock was taken */
  | 'failed'
  /** an early lead rolled back: the votes did not come (the node answered again) */
  | 'rolled-back';

export class Election {
  #id: string;
  #now: () => number;
  #timing: ElectionTiming | null = null;
  #random: () => number;
  #reportIntervalMs: number;
  #early: boolean;
  #nodes = new Map<string, NodeState>();

  constructor(opts: ElectionOptions) {
    this.#id = opts.id;
    this.#now = opts.now;
    this.#random = opts.random ?? Math.random;
    this.#reportIntervalMs = opts.reportIntervalMs ?? 1000;
    this.#early = opts.earlyStart ?? true;
  }

  #state(node: string, address: string): NodeState {
    let s = this.#nodes.get(node);
    if (!s || s.address !== address) {
      // New node, or its master changed (a switch happened): start afresh, but keep a vote
      // standing for the old address so that the caller withdraws it.
      const fresh: NodeState = {
        address,
        downSince: null,
        lastProbeAt: null,
        lastProbeOk: true,
        votedAt: null,
        suspectedAt: null,
        lastReportAt: null,
        leading: s?.leading ?? false,
        // a new master (after a switch) is not led against before a downAfterMs has passed: its
        // probes start on fresh connections while the whole fleet reloads, and its only replica
        // is often the old master, gone
        backoffUntil: s ? Math.max(s.backoffUntil, this.#now() + (this.#timing?.downAfterMs ?? 1000)) : 0,
        lockFailures: 0,
        votes: 0,
        needed: 1,
      };
      this.#nodes.set(node, fresh);
      s = fresh;
    }
    return s;
  }

  /**
   * This sidecar's own probe of `address` (the master of `node`) answered (`ok`) or not. `sentAt`
   * (default now) is when the probe went out: a node that failed to answer it has been
   * unresponsive since then, so an outage is timed from the first failed probe's sending.
   */
  probe(node: string, address: string, ok: boolean, sentAt?: number): void {
    const s = this.#state(node, address);
    const now = this.#now();
    if (ok) s.downSince = null;
    else if (s.downSince === null) s.downSince = Math.min(now, sentAt ?? now);
    s.lastProbeAt = now;
    s.lastProbeOk = ok;
  }

  /**
   * Whether an error report for `node` may go out now (one per reportIntervalMs per node); a
   * true answer counts as sending one. The data path's reports and the machine's share this limit.
   */
  mayReport(node: string, address: string): boolean {
    const s = this.#state(node, address);
    const now = this.#now();
    if (s.lastReportAt !== null && now - s.lastReportAt < this.#reportIntervalMs) return false;
    s.lastReportAt = now;
    return true;
  }

  /** The outcome of the try-lead the machine asked for. */
  leadResult(node: string, outcome: LeadOutcome): void {
    const s = this.#nodes.get(node);
    if (!s) return;
    s.leading = false;
    const now = this.#now();
    if (outcome === 'lock-lost' || outcome === 'failed' || outcome === 'rolled-back') {
      s.lockFailures++;
      const t = this.#timing;
      const base = t ? backoffBaseMs(t) : 500;
      const cap = t ? backoffCapMs(t) : 10_000;
      const delay = Math.min(cap, base * 2 ** (s.lockFailures - 1)) * (0.5 + this.#random());
      s.backoffUntil = now + Math.round(delay);
    } else {
      s.lockFailures = 0;
      // Give the new configuration time to reach everyone before anything else is decided.
      const t = this.#timing;
      s.backoffUntil = now + (t ? t.downAfterMs : 1000);
    }
  }

  /** For an early lead: the node's phase by this sidecar's probes and the votes last counted. */
  confirmation(node: string): Confirmation | null {
    const s = this.#nodes.get(node);
    if (!s) return null;
    return { phase: this.#phase(s, this.#now(), this.#timing), votes: s.votes, needed: s.needed };
  }

  /** Every watched node's state, for INFO and status. */
  status(): NodeStatus[] {
    const now = this.#now();
    const t = this.#timing;
    return [...this.#nodes].map(([node, s]) => ({
      node,
      address: s.address,
      phase: this.#phase(s, now, t),
      downSince: s.downSince,
      votedAt: s.votedAt,
      leading: s.leading,
      backoffUntil: s.backoffUntil,
      lockFailures: s.lockFailures,
    }));
  }

  #phase(s: NodeState, now: number, t: ElectionTiming | null): NodePhase {
    if (s.downSince === null) return 'up';
    if (t && now - s.downSince >= t.downAfterMs) return 'down';
    return 'suspect';
  }

  /**
   * What to do now, given this round's view. For each node of `world.nodes`: any of `report`,
   * `vote` / `withdraw-vote`, then exactly one of `try-lead` or `none` (with the reason there is
   * no election). Nodes no longer in the view are forgotten.
   */
  decide(world: World): Action[] {
    const now = this.#now();
    const t = world.config.timing;
    this.#timing = t;
    const out: Action[] = [];
    const seen = new Set<string>();
    const hasMajority = world.mastersReached >= majority(world.mastersTotal);
    const switching = world.config.switching;

    for (const view of world.nodes) {
      seen.add(view.node);
      const s = this.#state(view.node, view.address);
      const { node, address } = view;
      const acts: Action[] = [];
      const phase = this.#phase(s, now, t);
      // A probe result older than a downAfterMs says nothing about now.
      const probeFresh = s.lastProbeAt !== null && now - s.lastProbeAt <= t.downAfterMs;
      const none = (reason: string): void => {
        acts.push({ kind: 'none', node, address, reason });
      };
      const withdraw = (): void => {
        if (s.votedAt === null && s.suspectedAt === null) return;
        acts.push({ kind: 'withdraw-vote', node, address });
        s.votedAt = null;
        s.suspectedAt = null;
      };

      // Reports: a failed own probe is a failure the cluster should hear of.
      if (phase !== 'up' && probeFresh && !s.lastProbeOk && this.mayReport(node, address)) acts.push({ kind: 'report', node, address });

      if (!hasMajority) {
        // Probably our own network: never vote or lead, and take back a standing vote.
        withdraw();
        none('reaches only a minority of masters');
        out.push(...acts);
        continue;
      }

      const down = phase === 'down' && probeFresh;
      const suspecting = this.#early && !down && phase === 'suspect' && probeFresh && !s.lastProbeOk && now - s.downSince! >= suspectAfterMs(t);

      // Our own standing: a vote when down for downAfterMs without a break, a suspicion when
      // failing for suspectAfterMs, nothing otherwise. Kept up during a switch of the node (an
      // early lead waits for the votes while its hint is out).
      if (down) {
        if (s.votedAt === null || now - s.votedAt >= voteRefreshMs(t)) {
          acts.push({ kind: 'vote', node, address, refresh: s.votedAt !== null });
          s.votedAt = now;
        }
      } else if (suspecting) {
        if (s.suspectedAt === null || now - s.suspectedAt >= voteRefreshMs(t)) {
          acts.push({ kind: 'suspect', node, address, refresh: s.suspectedAt !== null });
          s.suspectedAt = now;
        }
      } else withdraw();

      // The votes and suspicions as they stand. Fresh: newer than voteFreshMs, not from the
      // future, and not older than our own view of this outage.
      const since = s.downSince === null ? now - voteFreshMs(t) : Math.max(now - voteFreshMs(t), s.downSince - t.downAfterMs);
      const voters = new Set<string>();
      const suspects = new Set<string>();
      const entries = view.votes instanceof Map ? [...view.votes] : Object.entries(view.votes);
      for (const [field, at] of entries) {
        if (at < since || at > now + t.downAfterMs) continue;
        if (isSuspicion(field)) suspects.add(voterOf(field));
        else voters.add(field);
      }
      if (down) voters.add(this.#id); // ours counts, read back yet or not
      if (suspecting) suspects.add(this.#id);
      for (const v of voters) suspects.add(v); // a vote is a suspicion too
      s.votes = voters.size;
      s.needed = majority(Math.max(view.electorate ?? world.liveSidecars, voters.size, 1));

      // Leftover switch of a dead leader: finish or roll back, in either mode, votes or not.
      if (switching && switching.node === node) {
        if (now - switching.since < staleSwitchMs(t)) none(`switch in progress by ${switching.by}`);
        else if (s.leading) none('leading');
        else if (now < s.backoffUntil) none('backing off');
        else {
          s.leading = true;
          acts.push({ kind: 'try-lead', node, address, resume: true, votes: 0, needed: 0 });
        }
        out.push(...acts);
        continue;
      }

      if (!down && !suspecting) {
        none(phase === 'up' ? 'reachable' : phase === 'suspect' ? `down for less than ${t.downAfterMs} ms` : 'no recent probe');
        out.push(...acts);
        continue;
      }
      // Down (or suspected early enough), and we reach a majority: lead when enough agree.
      const count = down ? s.votes : suspects.size;
      const needed = down ? s.needed : majority(Math.max(view.electorate ?? world.liveSidecars, suspects.size, 1));
      if (switching) none(`another switch in progress (${switching.node})`);
      else if (world.config.failover !== 'auto') none('manual fail-over mode');
      else if (s.leading) none('leading');
      else if (count < needed) none(down ? `${count} fresh vote(s) of ${needed} needed` : `suspected by ${count} of ${needed} needed to start early`);
      else if (now < s.backoffUntil) none('backing off');
      else {
        s.leading = true;
        acts.push({ kind: 'try-lead', node, address, resume: false, votes: count, needed, ...(down ? {} : { early: true }) });
      }
      out.push(...acts);
    }
    for (const node of [...this.#nodes.keys()]) if (!seen.has(node)) this.#nodes.delete(node);
    return out;
  }
}

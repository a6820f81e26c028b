/**
 * What each sidecar runs for fail-over (docs/failover.md): error reports from the data path; the
 * probe seats it holds (src/failover/probers.ts: a few sidecars per master probe it and vote on
 * it, the others only keep their lease); for the masters it probes, a loop that PINGs them, reads
 * the votes while one fails, feeds the election state machine (src/failover/election.ts) and
 * carries out its actions — votes, withdrawals, and the switch when it leads — and a slower pass
 * that demotes a configured replica of theirs found acting as a master.
 *
 *   every checkMs   seats: renew ours, claim a vacancy (rarely: ~2 claimants per vacancy fleet-wide)
 *   every round     per probed master: PING; while it fails, HGETALL votes + MGET seats on the others
 */
import type Redis from 'ioredis';
import {
  ClusterConfig,
  ERRORS_KEY,
  PROBE_SEATS,
  SIDECARS_KEY,
  demoteKey,
  majority,
  probeSeatKey,
  masters as mastersOf,
  votesKey,
} from '../cluster/config';
import { NodeCopy, isAuthFailure, newest, readCopy } from '../cluster/store';
import { logger } from '../observe/log';
import type { Stats } from '../observe/stats';
import { Action, Election, LeadOutcome, NodeStatus, alertRoundMs, isSuspicion, roundMs, suspicionField, voteFreshMs, voterOf } from './election';
import { appendLog, formatReport, onQuorum, pushEverywhere, replicaOf, replication, within } from './ops';
import { SwitchResult, resumeSwitch, runSwitch } from './switch';
import { LockNotTakenError, NotSwitchableError } from './errors';
import { SEATS_EVERY, SeatReading, electorate, planClaims, seatKeys, seatTtlMs, tallySeats } from './probers';

export interface FailoverAgentOptions {
  /** this sidecar's id (the one it checks in with on `__cluster__:sidecars`) */
  id: string;
  /** this sidecar's listen address (for logs) */
  addr: string;
  stats: Stats;
  now?: () => number;
  /** the sidecar's current configuration, or null before the first one */
  getConfig(): ClusterConfig | null;
  /** a shared control client per address */
  client(address: string): Redis;
  /**
   * Makes a connection of the agent's own for probing a master (default: probes share `client`).
   * A probe that fails closes it and the next probe dials afresh, so TCP's retransmission back-off
   * on a connection that lived through a cut cannot stretch a short outage past `downAfterMs`.
   */
  probeClient?(address: string, timeoutMs: number): Redis;
  /** loop period (default roundMs: downAfterMs / 4, 50–500 ms; alertRoundMs while a master fails) */
  intervalMs?: number;
  /** PING bound (default downAfterMs / 2, 50–1000 ms; the round's period for a master already failing) */
  probeTimeoutMs?: number;
  /** how often replicas are checked for a wrong role (default checkMs) */
  demoteEveryMs?: number;
  /** least interval between two error reports for one node (default 1000 ms) */
  reportIntervalMs?: number;
  /** jitter source for the backoff */
  random?: () => number;
  /** the switch this sidecar leads wrote a configuration (the hint, the final one, a roll-back): adopt it now */
  onConfigWritten?(): void;
  /**
   * The probe seats as the sidecar's version round last read them (ClusterView.seatReading): the
   * agent then reads none itself. Without it (tests) the agent reads them every checkMs.
   */
  seats?(): SeatReading | null;
  /** seats per node (default PROBE_SEATS) */
  seatsPerNode?: number;
  /** passed to runSwitch / resumeSwitch (tests shorten the margin) */
  switchOptions?: { marginMs?: number; catchUpMs?: number; callTimeoutMs?: number };
}

export interface AgentStatus {
  id: string;
  running: boolean;
  /** unix ms of the last completed round; 0 before the first */
  lastRoundAt: number;
  mastersTotal: number;
  mastersReached: number;
  /** sidecars checked in, as the masters last counted them */
  liveSidecars: number;
  /** the nodes whose masters this sidecar probes (it holds one of their seats) */
  probing: string[];
  nodes: Array<NodeStatus & { reason: string; votes: number }>;
  /** node being switched by this sidecar, if any */
  leading: string | null;
  lastElection: { node: string; outcome: string; at: number; detail: string } | null;
  reportsSent: number;
  votesCast: number;
  electionsLed: number;
  electionsCompleted: number;
  demotions: number;
}

/** deletes a key only when it holds the caller's value (the demotion lock) */
const RELEASE_IF_OURS = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/** renews a seat of ours, or takes it back where it lapsed; 0 where another sidecar holds it */
const RENEW_SEAT = "local v = redis.call('GET', KEYS[1]) if v == ARGV[1] or not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0";

export class FailoverAgent {
  readonly #o: FailoverAgentOptions;
  readonly #now: () => number;
  readonly #election: Election;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #round: Promise<void> | null = null;
  #leading = new Map<string, Promise<void>>();
  #lastRoundAt = 0;
  #lastDemoteAt = 0;
  #reached = 0;
  #total = 0;
  #live = 0;
  #reachable = new Set<string>();
  #reasons = new Map<string, string>();
  #votes = new Map<string, number>();
  #lastElection: AgentStatus['lastElection'] = null;
  #demotions = 0;
  #demoting: Promise<void> | null = null;
  /** node → the seat of it this sidecar holds */
  #mySeats = new Map<string, number>();
  #lastSeatAt = 0;
  /** master → unix ms it last answered any of our reads (seats, probes, votes) */
  #answeredAt = new Map<string, number>();
  /** error reports for nodes this sidecar does not probe: node → unix ms of the last */
  #farReports = new Map<string, number>();
  readonly #random: () => number;

  constructor(opts: FailoverAgentOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#election = new Election({ id: opts.id, now: this.#now, random: opts.random, reportIntervalMs: opts.reportIntervalMs });
  }

  /**
   * The data path saw `address` refuse a connection or time out. For a master: an error report on
   * every other reachable master (rate-limited per node). Never throws, never waits.
   */
  nodeError(address: string, reason: string): void {
    const config = this.#o.getConfig();
    if (!config) return;
    const node = Object.keys(config.nodes).find((n) => config.nodes[n]!.master === address);
    if (!node) return; // a replica: its failures elect nobody
    logger.debug('node-error', { node, address, reason });
    if (this.#mySeats.has(node)) {
      if (this.#election.mayReport(node, address)) void this.#report(config, node, address);
      return;
    }
    // not one of its probers: a report now and then (a fleet of sidecars must not flood the masters)
    const last = this.#farReports.get(node) ?? -Infinity;
    const every = 10 * (this.#o.reportIntervalMs ?? 1000);
    if (this.#now() - last < every) return;
    this.#farReports.set(node, this.#now());
    void this.#report(config, node, address);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Stops the loop; waits for the current round, a demotion pass and any switch this sidecar leads. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round;
    await this.#demoting;
    await Promise.all(this.#leading.values());
    for (const a of [...this.#probes.keys()]) this.#dropProber(a);
    await this.#releaseSeats();
  }

  /** On the way out: our seats go back at once, so that others take them without waiting the TTL. */
  async #releaseSeats(): Promise<void> {
    const config = this.#o.getConfig();
    if (!config || this.#mySeats.size === 0) return;
    const seats = [...this.#mySeats];
    this.#mySeats.clear();
    await Promise.all(
      mastersOf(config).map((m) =>
        within(
          Promise.all(seats.map(([node, i]) => this.#o.client(m).eval(RELEASE_IF_OURS, 1, probeSeatKey(node, i), this.#o.id))),
          500,
        ).catch(() => {}),
      ),
    );
  }

  /** The nodes whose masters this sidecar probes (holds a seat of), sorted. */
  probing(): string[] {
    return [...this.#mySeats.keys()].sort();
  }

  /** One round now (tests and the loop). */
  async round(): Promise<void> {
    if (this.#round) return this.#round;
    this.#round = this.#doRound().finally(() => (this.#round = null));
    return this.#round;
  }

  status(): AgentStatus {
    const s = this.#o.stats;
    return {
      id: this.#o.id,
      running: this.#running,
      lastRoundAt: this.#lastRoundAt,
      mastersTotal: this.#total,
      mastersReached: this.#reached,
      liveSidecars: this.#live,
      probing: this.probing(),
      nodes: this.#election.status().map((n) => ({ ...n, reason: this.#reasons.get(n.node) ?? '', votes: this.#votes.get(n.node) ?? 0 })),
      leading: [...this.#leading.keys()][0] ?? null,
      lastElection: this.#lastElection,
      reportsSent: s.errorReportsSent,
      votesCast: s.votesCast,
      electionsLed: s.electionsLed,
      electionsCompleted: s.electionsCompleted,
      demotions: this.#demotions,
    };
  }

  #interval(config: ClusterConfig | null): number {
    if (this.#o.intervalMs !== undefined) return this.#o.intervalMs;
    const t = config?.timing ?? { downAfterMs: 1000, leaseMs: 1500 };
    // faster while a master fails its probes: suspicions and votes are counted sooner
    return this.#election.status().some((n) => n.phase !== 'up') ? alertRoundMs(t) : roundMs(t);
  }

  /**
   * Rounds start at a fixed rate: a round that waited for a probe to time out (a stopped master)
   * does not push the next one back by as much.
   */
  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const started = this.#now();
      this.round()
        .catch((e) => logger.warn('failover-round-failed', { error: (e as Error).message }))
        .finally(() => this.#schedule(Math.max(0, this.#interval(this.#o.getConfig()) - (this.#now() - started))));
    }, ms);
    this.#timer.unref?.();
  }

  /** masters that refused this sidecar's credentials, with the message last logged */
  #authRefusedBy = new Map<string, string>();

  /** A probe refused for its credentials: logged once per change, never a vote (the node is up). */
  #authRefused(master: string, message: string): void {
    if (this.#authRefusedBy.get(master) !== message) {
      this.#authRefusedBy.set(master, message);
      logger.error('node-credentials-refused', { node: master, error: message, effect: 'this sidecar cannot probe or vote on this master until its credentials are fixed (SIGHUP reloads them)' });
    }
  }

  /** the agent's own probe connections (with `probeClient`), dropped after a failed probe */
  #probes = new Map<string, Redis>();

  #prober(address: string, timeoutMs: number): Redis {
    if (!this.#o.probeClient) return this.#o.client(address);
    let c = this.#probes.get(address);
    if (!c) this.#probes.set(address, (c = this.#o.probeClient(address, timeoutMs)));
    return c;
  }

  /** After a failed probe: the next one dials a new connection (no inherited TCP back-off). */
  #dropProber(address: string): void {
    const c = this.#probes.get(address);
    if (!c) return;
    this.#probes.delete(address);
    c.disconnect();
  }

  async #doRound(): Promise<void> {
    const config = this.#o.getConfig();
    if (!config) return;
    const t = config.timing;
    const now = this.#now();
    const nodes = Object.keys(config.nodes).sort();
    const masters = mastersOf(config);
    if (this.#lastSeatAt === 0 || now - this.#lastSeatAt >= t.checkMs) {
      this.#lastSeatAt = now;
      await this.#seatTick(config, nodes);
    }
    const probed = nodes.filter((n) => this.#mySeats.has(n));
    // A node that answered its last probe gets downAfterMs / 2 to answer this one (a busy node is
    // not a down one); a node already failing gets the round's own period, so that it does not
    // slow the rounds that count the suspicions and votes about it.
    const state = new Map(this.#election.status().map((n) => [n.node, n]));
    const patientMs = Math.max(50, Math.min(1000, Math.floor(t.downAfterMs / 2)));
    const failingNode = (n: string): boolean => {
      const st = state.get(n);
      return st !== undefined && st.address === config.nodes[n]!.master && st.phase !== 'up';
    };
    const probeFor = (n: string): number => this.#o.probeTimeoutMs ?? (failingNode(n) ? Math.min(patientMs, this.#interval(config)) : patientMs);
    // While a probed master fails (or its switch is under way, or we stand by a vote), the votes
    // and seats of its node are read from every other master each round.
    const alert = new Set(probed.filter((n) => failingNode(n) || state.get(n)?.votedAt != null || config.switching?.node === n));
    const touched = new Map<string, boolean>();
    const [probes, reads] = await Promise.all([
      Promise.all(probed.map((n) => this.#probe(config.nodes[n]!.master, patientMs, probeFor(n)))),
      Promise.all(
        [...alert].map(async (n) => {
          const keys = seatKeys([n], this.#seatsPerNode);
          const others = masters.filter((m) => m !== config.nodes[n]!.master);
          const got = await Promise.all(
            others.map(async (m) => {
              try {
                const res = await within(this.#o.client(m).pipeline().hgetall(votesKey(n)).mget(keys).exec(), probeFor(n), `votes ${m}`);
                if (!res || res.some(([e]) => e)) throw new Error('no reply');
                return { m, votes: res[0]![1] as Record<string, string>, seats: res[1]![1] as Array<string | null> };
              } catch {
                return { m, votes: null, seats: null };
              }
            }),
          );
          return { node: n, got };
        }),
      ),
    ]);
    probed.forEach((n, i) => {
      const r = probes[i]!;
      const m = config.nodes[n]!.master;
      this.#election.probe(n, m, r !== 'down', now);
      touched.set(m, r !== 'down');
    });
    for (const { got } of reads) for (const g of got) touched.set(g.m, (touched.get(g.m) ?? false) || g.votes !== null);
    for (const [m, ok] of touched) if (ok) this.#answeredAt.set(m, now);
    // Reached: this round's answers; for masters not asked this round, an answer within three checkMs (the version rounds).
    this.#reachable.clear();
    for (const m of masters) {
      const ok = touched.has(m) ? touched.get(m)! : (this.#answeredAt.get(m) ?? -Infinity) >= now - 3 * t.checkMs;
      if (ok) this.#reachable.add(m);
    }
    this.#total = masters.length;
    this.#reached = this.#reachable.size;

    const views = probed.map((n) => {
      const votes = new Map<string, number>();
      const voters = new Set<string>([this.#o.id]);
      const reading = this.#lastReading;
      if (reading) for (const id of electorate(reading, reading.nodes, n, this.#seatsPerNode)) voters.add(id);
      const read = reads.find((r) => r.node === n);
      if (read) {
        for (const g of read.got) for (const id of g.seats ?? []) if (id) voters.add(id);
        for (const g of read.got)
          for (const [field, at] of Object.entries(g.votes ?? {})) {
            const ms = Number(at);
            if (!voters.has(voterOf(field)) || !Number.isFinite(ms)) continue;
            if (ms > (votes.get(field) ?? -Infinity)) votes.set(field, ms);
          }
      }
      return { node: n, address: config.nodes[n]!.master, votes, electorate: voters.size };
    });
    const actions = this.#election.decide({ config, mastersTotal: masters.length, mastersReached: this.#reached, liveSidecars: 0, nodes: views });
    for (const v of views) this.#votes.set(v.node, [...v.votes].filter(([f, at]) => !isSuspicion(f) && at >= now - voteFreshMs(t)).length);
    for (const n of [...this.#votes.keys()]) if (!this.#mySeats.has(n)) this.#votes.delete(n);
    await Promise.all(actions.map((a) => this.#act(config, a)));
    this.#lastRoundAt = this.#now();

    // In the background: a replica that does not answer must not hold up the rounds.
    if (probed.length > 0 && now - this.#lastDemoteAt >= (this.#o.demoteEveryMs ?? t.checkMs) && !this.#demoting) {
      this.#lastDemoteAt = now;
      this.#demoting = this.#demoteStrays(config, probed)
        .catch((e) => logger.warn('failover-demote-pass-failed', { error: (e as Error).message }))
        .finally(() => (this.#demoting = null));
    }
  }

  get #seatsPerNode(): number {
    return this.#o.seatsPerNode ?? PROBE_SEATS;
  }

  /** One PING of a probed master on the agent's own connection: 'up', 'down' or 'auth' (refused our credentials: up). */
  async #probe(m: string, patientMs: number, probeMs: number): Promise<'up' | 'down' | 'auth'> {
    try {
      // the connection's own timeouts are the patient ones; `within` bounds a shorter probe
      const res = await within(this.#prober(m, patientMs).pipeline().ping().exec(), probeMs, `PING ${m}`);
      const err = res?.[0]?.[0] ?? null;
      // a node that refuses our credentials answered: it is up, and we know nothing more
      if (err && isAuthFailure(err)) {
        this.#authRefused(m, err.message);
        return 'auth';
      }
      // a node busy with a long script (or function) answers -BUSY: it is up, not a reason to vote
      if (!res || (err && !/^BUSY/.test(err.message))) {
        this.#dropProber(m);
        return 'down';
      }
      this.#authRefusedBy.delete(m);
      return 'up';
    } catch (e) {
      if (isAuthFailure(e)) {
        this.#authRefused(m, (e as Error).message);
        return 'auth';
      }
      this.#dropProber(m);
      return 'down';
    }
  }

  #lastReading: SeatReading | null = null;
  /** the reading the last claims were planned on */
  #plannedAt = 0;

  /**
   * Every checkMs: what the seats say (from the version round, or a read of our own), then our
   * seats renewed on every master — dropped where a majority no longer has them — and, when the
   * plan says so, a vacancy claimed with SET NX PX (kept when a majority took it).
   */
  async #seatTick(config: ClusterConfig, nodes: string[]): Promise<void> {
    const t = config.timing;
    const masters = mastersOf(config);
    const k = this.#seatsPerNode;
    const bound = this.#o.probeTimeoutMs ?? roundMs(t);
    let reading: SeatReading | null;
    if (this.#o.seats) {
      reading = this.#o.seats();
      // a reading of another configuration's nodes, or an old one, says nothing now
      if (reading && (reading.nodes.join('\n') !== nodes.join('\n') || this.#now() - reading.at > (SEATS_EVERY + 2) * t.checkMs)) reading = null;
    } else reading = await this.#readSeats(masters, nodes, bound);
    this.#lastReading = reading;
    if (!reading) return;
    for (const [m, at] of reading.answered) this.#answeredAt.set(m, Math.max(this.#answeredAt.get(m) ?? 0, at));
    if (reading.sidecars > 0) this.#live = reading.sidecars;
    const tally = tallySeats(reading, nodes, k);
    const need = majority(masters.length);
    const ttl = String(seatTtlMs(t.checkMs));
    const onAll = async (fn: (c: Redis) => Promise<unknown>): Promise<string[]> => {
      const ok: string[] = [];
      await Promise.all(
        masters.map(async (m) => {
          try {
            if ((await within(fn(this.#o.client(m)), bound)) !== null) ok.push(m);
          } catch {
            /* unreachable: the majority decides */
          }
        }),
      );
      return ok;
    };
    // ours: renewed, or given up when another holds it or a majority cannot be reached
    await Promise.all(
      [...this.#mySeats].map(async ([node, i]) => {
        const st = tally.get(node)?.[i];
        const taken = !config.nodes[node] || (st?.kind === 'held' && st.id !== this.#o.id);
        const renewed = taken ? [] : await onAll(async (c) => ((await c.eval(RENEW_SEAT, 1, probeSeatKey(node, i), this.#o.id, ttl)) === 1 ? 1 : null));
        if (renewed.length >= need) return;
        this.#mySeats.delete(node);
        logger.info('probe-seat-lost', { node, seat: i, renewedOn: renewed.length, why: taken ? 'another sidecar holds it' : 'not renewed on a majority of masters' });
        if (config.nodes[node]) await onAll((c) => c.eval(RELEASE_IF_OURS, 1, probeSeatKey(node, i), this.#o.id));
      }),
    );
    // more seats than a fair share (taken while few sidecars had checked in): one goes back per
    // tick, never while a master we probe fails — one host's death should not take many probers
    const share = Math.ceil((nodes.length * k) / Math.max(1, reading.sidecars));
    const calm = this.#election.status().every((n) => n.phase === 'up' && !n.leading) && !config.switching;
    if (reading.sidecars > 0 && this.#mySeats.size > share && calm) {
      const [node, i] = [...this.#mySeats][Math.floor(this.#random() * this.#mySeats.size)]!;
      this.#mySeats.delete(node);
      logger.info('probe-seat-given-back', { node, seat: i, held: this.#mySeats.size + 1, share });
      await onAll((c) => c.eval(RELEASE_IF_OURS, 1, probeSeatKey(node, i), this.#o.id));
      return;
    }
    // a vacancy, now and then: planned once per reading (a claim on a stale one would only fail)
    if (reading.at <= this.#plannedAt) return;
    this.#plannedAt = reading.at;
    const plan = planClaims({ id: this.#o.id, nodes, tally, sidecars: reading.sidecars, random: this.#random, seats: k });
    await Promise.all(
      plan.map(async ({ node, seat }) => {
        const key = probeSeatKey(node, seat);
        const took = await onAll(async (c) => ((await c.set(key, this.#o.id, 'PX', Number(ttl), 'NX')) === 'OK' ? 1 : null));
        if (took.length >= need) {
          this.#mySeats.set(node, seat);
          logger.info('probe-seat-taken', { node, seat, master: config.nodes[node]!.master });
        } else if (took.length > 0) await onAll((c) => c.eval(RELEASE_IF_OURS, 1, key, this.#o.id));
      }),
    );
  }

  /** Without a version round to lean on (tests): the seats and the sidecar count, read from every master. */
  async #readSeats(masters: string[], nodes: string[], bound: number): Promise<SeatReading> {
    const at = this.#now();
    const keys = seatKeys(nodes, this.#seatsPerNode);
    const copies = new Map<string, Array<string | null> | null>();
    let sidecars = 0;
    const answered = new Map<string, number>();
    await Promise.all(
      masters.map(async (m) => {
        try {
          const res = await within(this.#o.client(m).pipeline().mget(keys).zcard(SIDECARS_KEY).exec(), bound);
          if (!res || res[0]![0]) throw new Error('no reply');
          copies.set(m, res[0]![1] as Array<string | null>);
          answered.set(m, at);
          sidecars = Math.max(sidecars, Number(res[1]![1]) || 0);
        } catch {
          copies.set(m, null);
        }
      }),
    );
    return { at, nodes, copies, sidecars, answered };
  }

  /** Masters other than `except` that answered the last probe (all of them before the first round). */
  #others(config: ClusterConfig, except: string): Array<[string, Redis]> {
    return mastersOf(config)
      .filter((m) => m !== except && (this.#lastRoundAt === 0 || this.#reachable.has(m)))
      .map((m) => [m, this.#o.client(m)]);
  }

  async #report(config: ClusterConfig, node: string, address: string): Promise<void> {
    const entry = formatReport(node, Math.floor(this.#now() / 1000), this.#o.id);
    const done = await pushEverywhere(this.#others(config, address), ERRORS_KEY, entry, 1000);
    if (done.length > 0) this.#o.stats.errorReportsSent++;
    logger.info('node-error-reported', { node, address, masters: done.length });
  }

  async #act(config: ClusterConfig, a: Action): Promise<void> {
    const t = config.timing;
    switch (a.kind) {
      case 'none':
        this.#reasons.set(a.node, a.reason);
        return;
      case 'report':
        return this.#report(config, a.node, a.address);
      case 'vote': {
        const at = this.#now();
        const done = await this.#onOthers(config, a.address, (c) =>
          c.multi().hset(votesKey(a.node), this.#o.id, String(at)).pexpire(votesKey(a.node), voteFreshMs(t)).exec(),
        );
        if (!a.refresh) {
          this.#o.stats.votesCast++;
          logger.warn('failover-vote', { node: a.node, address: a.address, masters: done });
        }
        return;
      }
      case 'suspect': {
        const at = this.#now();
        const done = await this.#onOthers(config, a.address, (c) =>
          c.multi().hset(votesKey(a.node), suspicionField(this.#o.id), String(at)).pexpire(votesKey(a.node), voteFreshMs(t)).exec(),
        );
        if (!a.refresh) logger.info('failover-suspect', { node: a.node, address: a.address, masters: done });
        return;
      }
      case 'withdraw-vote': {
        const done = await this.#onOthers(config, null, (c) => c.hdel(votesKey(a.node), this.#o.id, suspicionField(this.#o.id)));
        logger.info('failover-vote-withdrawn', { node: a.node, address: a.address, masters: done });
        return;
      }
      case 'try-lead':
        this.#reasons.set(a.node, a.resume ? 'resuming a stale switch' : `leading: ${a.votes} of ${a.needed} votes`);
        if (!this.#leading.has(a.node))
          this.#leading.set(
            a.node,
            this.#lead(config, a).finally(() => this.#leading.delete(a.node)),
          );
        return;
    }
  }

  async #onOthers(config: ClusterConfig, except: string | null, fn: (c: Redis) => Promise<unknown>): Promise<number> {
    let done = 0;
    // bounded like a probe: a master that stopped answering since the last round must not hold up this one
    const bound = this.#o.probeTimeoutMs ?? roundMs(config.timing);
    await Promise.all(
      this.#others(config, except ?? '').map(async ([, c]) => {
        try {
          await within(fn(c), bound);
          done++;
        } catch {
          /* unreachable now: the vote's expiry and the other copies cover it */
        }
      }),
    );
    return done;
  }

  async #lead(config: ClusterConfig, a: Extract<Action, { kind: 'try-lead' }>): Promise<void> {
    const masters = new Map(mastersOf(config).map((m) => [m, this.#o.client(m)]));
    const common = {
      config,
      by: this.#o.id,
      masters,
      clientFor: (addr: string) => this.#o.client(addr),
      now: this.#now,
      ...this.#o.switchOptions,
      oldMasterAnswers: () => this.#election.confirmation(a.node)?.phase === 'up',
      onProgress: (p: { step: string; message: string }) => {
        if (p.step === 'config') this.#o.stats.electionsLed++;
        if (p.step === 'hint' || p.step === 'final' || p.step === 'rollback') this.#o.onConfigWritten?.();
        logger.info('failover-step', { node: a.node, step: p.step, message: p.message });
      },
    };
    let outcome: LeadOutcome;
    let detail: string;
    try {
      let res: SwitchResult;
      if (a.resume) res = await resumeSwitch(common);
      else if (a.early)
        res = await runSwitch({
          ...common,
          node: a.node,
          reason: `suspected by ${a.votes}/${a.needed}`,
          early: { abandon: () => this.#election.confirmation(a.node)?.phase === 'up', confirm: () => this.#confirmVotes(config, a.node) },
        });
      else res = await runSwitch({ ...common, node: a.node, reason: `votes ${a.votes}/${a.needed}` });
      outcome = res.outcome === 'moot' ? 'moot' : res.outcome === 'rolled-back' ? 'rolled-back' : 'completed';
      if (res.outcome !== 'moot') this.#o.stats.electionsCompleted++;
      detail = `${res.outcome}: ${res.node} ${res.from} → ${res.to} (epoch ${res.epoch})`;
      logger.warn('failover-done', { node: a.node, outcome: res.outcome, from: res.from, to: res.to, epoch: res.epoch });
    } catch (e) {
      outcome = e instanceof LockNotTakenError ? 'lock-lost' : e instanceof NotSwitchableError ? 'moot' : 'failed';
      detail = (e as Error).message;
      (outcome === 'failed' ? logger.error : logger.info)('failover-not-led', { node: a.node, outcome, error: detail });
    }
    this.#election.leadResult(a.node, outcome);
    this.#lastElection = { node: a.node, outcome, at: this.#now(), detail };
  }

  /**
   * An early lead (started on suspicions) after its lease wait: resolves with the reason it may
   * promote — a majority of fresh votes — or null to roll back: this sidecar's own probes reach
   * the node again, or the votes did not come within downAfterMs and two rounds.
   */
  async #confirmVotes(config: ClusterConfig, node: string): Promise<string | null> {
    const t = config.timing;
    const deadline = this.#now() + t.downAfterMs + 2 * this.#interval(config);
    for (;;) {
      const c = this.#election.confirmation(node);
      if (!c || c.phase === 'up') return null;
      if (c.votes >= c.needed) return `votes ${c.votes}/${c.needed}`;
      if (this.#now() > deadline) return null;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /**
   * A replica of the configuration that acts as a master (an old master back from the dead, or a
   * replica a dead leader promoted) is made to follow its configured master — after the newest
   * configuration on the masters has confirmed that it is indeed a replica.
   */
  async #demoteStrays(config: ClusterConfig, probed: string[]): Promise<void> {
    if (config.switching) return;
    const suspects: Array<{ node: string; address: string }> = [];
    await Promise.all(
      Object.entries(config.nodes).filter(([node]) => probed.includes(node)).flatMap(([node, spec]) =>
        spec.replicas.map(async (address) => {
          try {
            if ((await replication(this.#o.client(address), 1000)).role === 'master') suspects.push({ node, address });
          } catch {
            /* down: nothing to demote */
          }
        }),
      ),
    );
    if (suspects.length === 0) return;
    const all = mastersOf(config);
    // a majority read (every master answering, or a majority and a short grace for the rest)
    const res = await onQuorum(new Map(all.map((m) => [m, this.#o.client(m)])), (c, m) => readCopy(c, m), {
      need: majority(all.length),
      good: (c) => c.ok || c.reachable,
      timeoutMs: 2000,
    });
    const copies = [...res].map(([address, r]): NodeCopy => (r.ok ? r.value : { address, ok: false, reachable: false, reason: 'no answer' }));
    const best = newest(copies);
    const agreeing = copies.filter((c) => c.ok && best && c.config.epoch === best.config.epoch).length;
    if (!best || best.config.epoch < config.epoch || agreeing < majority(all.length) || best.config.switching) return;
    for (const { node, address } of suspects) {
      const spec = best.config.nodes[node];
      if (!spec || !spec.replicas.includes(address)) continue;
      try {
        // one demotion per returning master: the sidecars that found it race for a short lock on
        // the node's master; the others leave it (their next pass finds it a replica)
        const ttl = Math.max(2000, 2 * best.config.timing.checkMs);
        const took = await within(this.#o.client(spec.master).set(demoteKey(node), `${this.#o.id}:${address}`, 'PX', ttl, 'NX'), 1000, `SET NX ${demoteKey(node)}`);
        if (took !== 'OK') {
          logger.debug('failover-demote-left', { node, address, why: 'another sidecar is demoting it' });
          continue;
        }
        if ((await replication(this.#o.client(address), 1000)).role !== 'master') continue;
        await replicaOf(this.#o.client(address), spec.master, 2000);
        this.#demotions++;
        logger.warn('failover-demoted', { node, address, master: spec.master });
        await appendLog(
          mastersOf(best.config).map((m) => [m, this.#o.client(m)] as [string, Redis]),
          { time: this.#now(), event: 'demoted', node, address, master: spec.master, by: this.#o.id, epoch: best.config.epoch },
          1000,
        );
      } catch (e) {
        logger.warn('failover-demote-failed', { node, address, error: (e as Error).message });
        // let the next pass (of any sidecar) try again at once, rather than after the lock's TTL
        void within(this.#o.client(spec.master).eval(RELEASE_IF_OURS, 1, demoteKey(node), `${this.#o.id}:${address}`), 1000).catch(() => {});
      }
    }
  }
}

/**
 * What each sidecar runs for fail-over (docs/failover.md): error reports from the data path, a
 * loop that probes the masters, reads votes and live sidecars, feeds the election state machine
 * (src/failover/election.ts) and carries out its actions — votes, withdrawals, and the switch
 * when it leads — and a slower pass that demotes a configured replica found acting as a master.
 */
import type Redis from 'ioredis';
import {
  ClusterConfig,
  ERRORS_KEY,
  SIDECARS_KEY,
  demoteKey,
  majority,
  masters as mastersOf,
  votesKey,
} from '../cluster/config';
import { NodeCopy, isAuthFailure, newest, readCopy } from '../cluster/store';
import { logger } from '../observe/log';
import type { Stats } from '../observe/stats';
import { Action, Election, LeadOutcome, NodeStatus, alertRoundMs, roundMs, suspicionField, voteFreshMs } from './election';
import { appendLog, formatReport, onQuorum, pushEverywhere, replicaOf, replication, within } from './ops';
import { SwitchResult, resumeSwitch, runSwitch } from './switch';
import { LockNotTakenError, NotSwitchableError } from './errors';

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
  liveSidecars: number;
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

/** a probe the node answered by refusing our credentials: up, but nothing read */
const AUTH_REFUSED = Symbol('auth-refused');

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

  constructor(opts: FailoverAgentOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
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
    if (this.#election.mayReport(node, address)) void this.#report(config, node, address);
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
  #authRefused(master: string, message: string): typeof AUTH_REFUSED {
    if (this.#authRefusedBy.get(master) !== message) {
      this.#authRefusedBy.set(master, message);
      logger.error('node-credentials-refused', { node: master, error: message, effect: 'this sidecar cannot probe or vote on this master until its credentials are fixed (SIGHUP reloads them)' });
    }
    return AUTH_REFUSED;
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
    const masters = nodes.map((n) => config.nodes[n]!.master);
    // A node that answered its last probe gets downAfterMs / 2 to answer this one (a busy node is
    // not a down one); a node already failing gets the round's own period, so that it does not
    // slow the rounds that count the suspicions and votes about it.
    const failing = new Set(this.#election.status().filter((n) => n.phase !== 'up').map((n) => n.address));
    const patientMs = Math.max(50, Math.min(1000, Math.floor(t.downAfterMs / 2)));
    const probeFor = (m: string): number => this.#o.probeTimeoutMs ?? (failing.has(m) ? Math.min(patientMs, this.#interval(config)) : patientMs);

    // Own probes, and in the same round trip the votes and the live sidecars.
    const liveSince = now - 2 * t.leaseMs;
    const replies = await Promise.all(
      masters.map(async (m) => {
        try {
          const probeMs = probeFor(m);
          // the connection's own timeouts are the patient ones; `within` bounds a shorter probe
          const p = this.#prober(m, patientMs).pipeline().ping();
          for (const n of nodes) p.hgetall(votesKey(n));
          p.zrangebyscore(SIDECARS_KEY, liveSince, '+inf');
          const res = await within(p.exec(), probeMs, `PING ${m}`);
          // a node that refuses our credentials answered: it is up, and we know nothing more
          if (res && res[0]![0] && isAuthFailure(res[0]![0])) return this.#authRefused(m, res[0]![0].message);
          // a node busy with a long script (or function) answers -BUSY: it is up, not a reason to vote
          if (!res || (res[0]![0] && !/^BUSY/.test(res[0]![0].message))) {
            this.#dropProber(m);
            return null;
          }
          this.#authRefusedBy.delete(m);
          return res.map(([e, v]) => (e ? null : v));
        } catch (e) {
          if (isAuthFailure(e)) return this.#authRefused(m, (e as Error).message);
          this.#dropProber(m);
          return null;
        }
      }),
    );
    const votes = new Map<string, Map<string, number>>(nodes.map((n) => [n, new Map()]));
    const live = new Set<string>();
    this.#reachable.clear();
    replies.forEach((r, i) => {
      const node = nodes[i]!;
      this.#election.probe(node, masters[i]!, r !== null, now);
      if (!r || r === AUTH_REFUSED) return;
      this.#reachable.add(masters[i]!);
      nodes.forEach((n, j) => {
        const h = (r[1 + j] ?? {}) as Record<string, string>;
        const merged = votes.get(n)!;
        for (const [id, at] of Object.entries(h)) {
          const ms = Number(at);
          if (Number.isFinite(ms) && ms > (merged.get(id) ?? -Infinity)) merged.set(id, ms);
        }
      });
      for (const id of (r[1 + nodes.length] ?? []) as string[]) live.add(id);
    });
    this.#total = masters.length;
    this.#reached = this.#reachable.size;
    this.#live = live.size;

    const actions = this.#election.decide({
      config,
      mastersTotal: masters.length,
      mastersReached: this.#reached,
      liveSidecars: live.size,
      nodes: nodes.map((n) => ({ node: n, address: config.nodes[n]!.master, votes: votes.get(n)! })),
    });
    for (const n of nodes) this.#votes.set(n, [...votes.get(n)!.values()].filter((at) => at >= now - voteFreshMs(t)).length);
    await Promise.all(actions.map((a) => this.#act(config, a)));
    this.#lastRoundAt = this.#now();

    // In the background: a replica that does not answer must not hold up the rounds.
    if (now - this.#lastDemoteAt >= (this.#o.demoteEveryMs ?? t.checkMs) && !this.#demoting) {
      this.#lastDemoteAt = now;
      this.#demoting = this.#demoteStrays(config)
        .catch((e) => logger.warn('failover-demote-pass-failed', { error: (e as Error).message }))
        .finally(() => (this.#demoting = null));
    }
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
  async #demoteStrays(config: ClusterConfig): Promise<void> {
    if (config.switching) return;
    const suspects: Array<{ node: string; address: string }> = [];
    await Promise.all(
      Object.entries(config.nodes).flatMap(([node, spec]) =>
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

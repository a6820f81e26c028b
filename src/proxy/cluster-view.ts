/**
 * The sidecar's cached configuration and its lifecycle (docs/protocol.md, "The lease").
 *
 * - start-up: read the configuration from the seeds; no reachable seed is a clear log line and
 *   a retry, never an exit;
 * - every checkMs: one pipelined round to a majority of masters: GET of the version (every
 *   SEATS_EVERY-th round an MGET of it and the probe seats, src/failover/probers.ts) and a STRLEN
 *   of the copy; a majority of masters agreeing with our
 *   version renews the lease (from when the round was *sent*). Every CHECK_IN_EVERY-th round (at
 *   a phase of its own per sidecar) also checks the sidecar in and counts the sidecars: what a
 *   master serves per sidecar stays one small read per checkMs (docs/protocol.md, "What the
 *   control plane costs");
 * - a different version anywhere, a redirect, or a lost master connection: reload (concurrent
 *   triggers share one reload); of the good copies the highest epoch wins, and masters with an
 *   older or broken copy are repaired by compare-and-set;
 * - past the lease the data path refuses to route (leaseError), until a round confirms again;
 * - while `switching` is set, peek every switchingCheckMs: GET version from one master, in turn
 *   (a change shows on any; the full rounds go on every checkMs for the lease), so that a fleet
 *   picks up the final configuration soon without a storm of majority rounds.
 */
import type Redis from 'ioredis';
import {
  CAS_CONFIG_SCRIPT,
  REPAIR_CONFIG_SCRIPT,
  CONFIG_KEY,
  ClusterConfig,
  DEFAULT_TIMING,
  SIDECARS_KEY,
  VERSION_KEY,
  majority,
  masters as mastersOf,
} from '../cluster/config';
import { SIDECARS_INFO_KEY } from '../cluster/meta-keys';
import { CHECK_IN_EVERY, TRIM_SIDECARS_SCRIPT, checkInTrimMs } from '../cluster/check-in';
import { SEATS_EVERY, SeatReading, seatKeys } from '../failover/probers';
import { leaseRefusal } from './router';
import { Routing } from './routing';
import { controlClient, newest, readCopy, NodeCopy } from '../cluster/store';
import { Stats } from '../observe/stats';
import { logger } from '../observe/log';

/** how long the other masters may still answer a reload once a majority has (as the switch's quorum calls) */
const RELOAD_GRACE_MS = 30;



export interface ClusterViewOptions {
  seeds: string[];
  id: string;
  /** this sidecar's listen address, recorded at check-in */
  addr: string;
  stats: Stats;
  checkMs?: number;
  leaseMs?: number;
  switchingCheckMs?: number;
  now?: () => number;
}

export { Routing } from './routing';

export class ClusterView {
  readonly #opts: ClusterViewOptions;
  readonly #stats: Stats;
  readonly #now: () => number;
  #routing: Routing | null = null;
  #text = '';
  #textBytes = 0;
  #clients = new Map<string, Redis>();
  #confirmedAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #reloading: Promise<void> | null = null;
  #reloadAgain = false;
  #stopped = false;
  #listeners: Array<(r: Routing, previous: Routing | null) => void> = [];
  #lastCheckAt = 0;
  #unreachable = new Set<string>();
  #rounds = 0;
  /** this sidecar's check-in phase among the CHECK_IN_EVERY rounds */
  readonly #phase: number;
  /** the MGET of each round: the version, then the seats of the configuration's nodes */
  #checkKeys: { routing: Routing; nodes: string[]; keys: string[] } | null = null;
  #seatNodes: string[] = [];
  #seats = new Map<string, { at: number; values: Array<string | null> }>();
  #seatsAt = 0;
  #sidecars = 0;
  /** master → the sending time of the last round it answered */
  #answered = new Map<string, number>();

  constructor(opts: ClusterViewOptions) {
    this.#opts = opts;
    this.#stats = opts.stats;
    this.#now = opts.now ?? Date.now;
    let h = 0;
    for (let i = 0; i < opts.id.length; i++) h = (h * 31 + opts.id.charCodeAt(i)) >>> 0;
    this.#phase = h % CHECK_IN_EVERY;
  }

  /**
   * The probe seats as the last version round read them (null before one): what the fail-over
   * agent needs to know who probes each master, without a read of its own.
   */
  seatReading(): SeatReading | null {
    const r = this.#routing;
    if (!r || this.#seatsAt === 0) return null;
    // a master not asked lately (the rounds ask a majority) counts with its last answer while it is recent
    const copies = new Map<string, Array<string | null> | null>();
    for (const m of r.masters) {
      const c = this.#seats.get(m);
      copies.set(m, c && c.at >= this.#seatsAt - SEATS_EVERY * this.checkMs ? c.values : null);
    }
    return { at: this.#seatsAt, nodes: this.#seatNodes, copies, sidecars: this.#sidecars, answered: new Map(this.#answered) };
  }

  get routing(): Routing | null {
    return this.#routing;
  }
  get checkMs(): number {
    return this.#opts.checkMs ?? this.#routing?.config.timing.checkMs ?? DEFAULT_TIMING.checkMs;
  }
  get leaseMs(): number {
    return this.#opts.leaseMs ?? this.#routing?.config.timing.leaseMs ?? DEFAULT_TIMING.leaseMs;
  }
  get confirmedAt(): number {
    return this.#confirmedAt;
  }
  /** masters that did not answer the last round */
  get unreachableMasters(): string[] {
    return [...this.#unreachable];
  }

  /** The address recorded at check-in, once the listener knows its real port. */
  setAddress(addr: string): void {
    this.#opts.addr = addr;
  }

  /** Called with each new configuration adopted. */
  onChange(fn: (r: Routing, previous: Routing | null) => void): void {
    this.#listeners.push(fn);
  }

  /** Null while the configuration may be used for routing; otherwise the reason it may not. */
  leaseError(now = this.#now()): string | null {
    // the common case first, without a call: confirmed within the lease
    if (this.#confirmedAt !== 0 && now - this.#confirmedAt <= this.leaseMs && this.#routing !== null) return null;
    const err = leaseRefusal(this.#routing !== null, this.#confirmedAt, now, this.leaseMs);
    if (err !== null && this.#confirmedAt !== 0 && this.#stats.leaseValid) {
      this.#stats.leaseValid = false;
      this.#stats.leaseExpiries++;
      logger.warn('lease-expired', { confirmedAgoMs: now - this.#confirmedAt, leaseMs: this.leaseMs });
      this.#schedule(0);
    }
    return err;
  }

  /** Shared control-plane connection to a node (also used by the fail-over agent). */
  client(address: string): Redis {
    if (this.#stopped) {
      // after stop(): a closed client (its commands fail), never a new connection left open
      const closed = controlClient(address, { connectTimeoutMs: 100, commandTimeoutMs: 200 });
      closed.disconnect();
      return closed;
    }
    let c = this.#clients.get(address);
    if (!c) {
      c = controlClient(address, { connectTimeoutMs: Math.max(100, Math.min(1000, this.checkMs)), commandTimeoutMs: Math.max(200, Math.min(2000, this.checkMs)) });
      this.#clients.set(address, c);
    }
    return c;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    let delay = 200;
    while (!this.#stopped && !this.#routing) {
      const copies = await this.#loadFrom(this.#opts.seeds, 'start-up');
      if (this.#routing || this.#stopped) break;
      const why: Record<string, string> = {};
      for (const c of copies) if (!c.ok) why[c.address] = c.reason;
      logger.error('no-seed-reachable', {
        message: 'no seed answered with a usable cluster configuration; retrying',
        seeds: this.#opts.seeds,
        why,
        retryInMs: delay,
      });
      await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, 5000);
    }
    // first round right away: it checks the sidecar in (operators, elections) without waiting checkMs
    if (!this.#stopped) this.#schedule(0);
  }

  /** Starts without waiting for a configuration (the data path answers CLUSTERDOWN meanwhile). */
  startInBackground(): void {
    void this.start();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    for (const c of this.#clients.values()) c.disconnect();
    this.#clients.clear();
  }

  /** Reload now (a redirect, a READONLY master, a lost master). Concurrent calls share one. */
  requestReload(reason: string): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    logger.info('config-reload', { reason });
    this.#reloading = (async () => {
      do {
        this.#reloadAgain = false;
        await this.#loadFrom(this.#routing ? this.#routing.masters : this.#opts.seeds, reason);
      } while (this.#reloadAgain && !this.#stopped);
    })().finally(() => {
      this.#reloading = null;
    });
    return this.#reloading;
  }

  #switchingMs(): number {
    // short: the final configuration is picked up soon after it is written (a switch lasts seconds)
    return this.#opts.switchingCheckMs ?? Math.max(50, Math.min(300, Math.floor(this.checkMs / 10)));
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref();
  }

  /**
   * Rounds start at a fixed rate: the next is scheduled before this one is awaited, so a master
   * that answers slowly (or not at all) cannot stretch the gap between confirmations past the lease.
   */
  async #tick(): Promise<void> {
    const sw = this.#routing?.config.switching;
    const full = !sw || this.#now() - this.#lastCheckAt >= this.checkMs - this.#switchingMs() / 2;
    this.#schedule(sw ? this.#switchingMs() : this.checkMs);
    try {
      await (full ? this.check() : this.#peek());
    } catch (e) {
      logger.warn('config-check-failed', { error: (e as Error).message });
    }
  }

  #peeks = 0;

  /** During a switch: the version of one master, in turn; a difference starts a reload. */
  async #peek(): Promise<void> {
    const r = this.#routing;
    if (!r) return;
    const up = r.masters.filter((m) => !this.#unreachable.has(m));
    const list = up.length ? up : r.masters;
    const m = list[(this.#peeks++ + this.#phase) % list.length]!;
    try {
      const v = await this.client(m).get(VERSION_KEY);
      if (v !== r.version && this.#routing === r) void this.requestReload(`version differs on master ${m}`);
    } catch {
      /* the full rounds see to it */
    }
  }

  /**
   * One version round: the version (and, every SEATS_EVERY-th round, the probe seats) from a
   * majority of the masters, widened to all on a failure or a late answer; every CHECK_IN_EVERY-th
   * round goes to all and checks in. Renews the lease when a majority agree with our version;
   * reloads when any differs.
   */
  async check(): Promise<void> {
    const r = this.#routing;
    if (!r) {
      await this.#loadFrom(this.#opts.seeds, 'no configuration yet');
      return;
    }
    const sentAt = this.#now();
    this.#lastCheckAt = sentAt;
    this.#stats.configChecks++;
    const masters = r.masters;
    const need = majority(masters.length);
    // Check in on the first round and then every CHECK_IN_EVERY-th, at a phase of this sidecar's
    // own (so that a fleet's check-ins spread over the period). Entries of *other* sidecars are
    // trimmed too: by the cluster's timing, whatever our local overrides.
    const firstRound = this.#rounds++ === 0;
    const checkIn = firstRound || (this.#rounds + this.#phase) % CHECK_IN_EVERY === 0;
    // the seats ride along every SEATS_EVERY-th round (an MGET of 1 + 5 × nodes keys costs a few
    // µs more than a GET); the others read the version alone
    const withSeats = firstRound || (this.#rounds + this.#phase) % SEATS_EVERY === 0;
    const trimBefore = sentAt - checkInTrimMs(r.config.timing);
    const info = checkIn ? JSON.stringify({ id: this.#opts.id, addr: this.#opts.addr, version: r.version, epoch: r.config.epoch, time: sentAt }) : '';
    if (this.#checkKeys?.routing !== r) {
      const nodes = Object.keys(r.config.nodes).sort();
      this.#checkKeys = { routing: r, nodes, keys: [VERSION_KEY, ...seatKeys(nodes)] };
    }
    const keys = withSeats ? this.#checkKeys.keys : [VERSION_KEY];
    if (withSeats) {
      if (this.#seatNodes !== this.#checkKeys.nodes) this.#seats.clear();
      this.#seatNodes = this.#checkKeys.nodes;
      this.#seatsAt = sentAt;
    }
    // A majority of masters is asked (all of them on check-in rounds): those that answered last
    // time first, rotated per sidecar and round so that the fleet's reads spread evenly. Any
    // version but ours shows on a majority, as every configuration is written to one. Should one
    // of them fail, or not answer within a quarter of checkMs, the others are asked too.
    const order = masters.map((_, i) => masters[(i + this.#phase + this.#rounds) % masters.length]!);
    order.sort((x, y) => Number(this.#unreachable.has(x)) - Number(this.#unreachable.has(y)));
    const first = checkIn ? order : order.slice(0, need);
    let asked = 0;
    let agree = 0;
    let answered = 0;
    let settled = false;
    let widened = first.length === masters.length;
    await new Promise<void>((done) => {
      const finish = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(late);
        done();
      };
      const widen = (): void => {
        if (widened || settled) return;
        widened = true;
        for (const m of order.slice(first.length)) ask(m);
      };
      // (a round that asks every master already has nothing to widen to)
      const late = widened ? undefined : setTimeout(widen, Math.max(25, Math.floor(this.checkMs / 4)));
      late?.unref();
      const ask = (m: string): void => {
        asked++;
        const p = this.client(m)
          .pipeline()
          .mget(keys)
          // O(1): a copy deleted, truncated or overwritten under an intact version shows here
          .strlen(CONFIG_KEY);
        if (checkIn)
          p.zadd(SIDECARS_KEY, sentAt, this.#opts.id)
            .hset(SIDECARS_INFO_KEY, this.#opts.id, info)
            .eval(TRIM_SIDECARS_SCRIPT, 2, SIDECARS_KEY, SIDECARS_INFO_KEY, trimBefore)
            .zcard(SIDECARS_KEY);
        p.exec()
          .then((res) => {
            if (!res || res[0]![0]) throw res?.[0]![0] ?? new Error('no reply');
            this.#unreachable.delete(m);
            if (sentAt > (this.#answered.get(m) ?? 0)) this.#answered.set(m, sentAt);
            const values = res[0]![1] as Array<string | null>;
            if (withSeats) this.#seats.set(m, { at: sentAt, values: values.slice(1) });
            const count = res[5]?.[1];
            if (typeof count === 'number') this.#sidecars = count;
            const v = values[0] ?? null;
            const len = res[1]?.[1];
            if (v === r.version && typeof len === 'number' && len !== this.#textBytes) void this.requestReload(`the configuration on master ${m} does not match its version`).then(finish);
            else if (v === r.version) {
              if (++agree === need && this.#routing === r) {
                this.#confirm(sentAt);
                finish();
              }
            } else void this.requestReload(`version differs on master ${m}`).then(finish);
          })
          .catch(() => {
            this.#unreachable.add(m);
            if (withSeats) this.#seats.delete(m);
            widen();
          })
          .finally(() => {
            if (++answered === asked && widened) {
              if (agree < need && this.#routing === r) {
                this.#stats.configCheckFailures++;
                logger.warn('config-not-confirmed', { agree, need, unreachable: [...this.#unreachable] });
              }
              finish();
            }
          });
      };
      for (const m of first) ask(m);
    });
  }

  #confirm(at: number): void {
    if (at <= this.#confirmedAt) return;
    this.#confirmedAt = at;
    this.#stats.lastConfirmedAt = at;
    if (!this.#stats.leaseValid) {
      this.#stats.leaseValid = true;
      if (this.#routing) logger.info('lease-confirmed', { epoch: this.#routing.config.epoch, version: this.#routing.version });
    }
  }

  /** Reads every copy from `addresses` (+ the masters they name), adopts the newest, repairs. */
  async #loadFrom(addresses: string[], reason: string): Promise<NodeCopy[]> {
    const sentAt = this.#now();
    const seen = new Set<string>(addresses);
    // before any configuration (start-up: the seeds may be anything) every seed is waited for
    let copies = await this.#readMajority([...seen], this.#routing === null);
    let best = newest(copies);
    // the masters of the newest copy are the authority: read those we have not read yet
    if (best) {
      const more = mastersOf(best.config).filter((m) => !seen.has(m));
      if (more.length) {
        copies = copies.concat(await this.#readMajority(more));
        best = newest(copies);
      }
    }
    for (const c of copies) if (!c.ok && c.reachable) logger.warn('config-copy-ignored', { node: c.address, reason: c.reason });
    if (!best) {
      if (this.#routing) logger.warn('config-reload-found-nothing', { reason });
      return copies;
    }
    const cur = this.#routing;
    if (!cur || best.config.epoch > cur.config.epoch) {
      this.#adopt(best.config, best.text, best.version, reason);
    } else if (best.config.epoch === cur.config.epoch && best.version !== cur.version) {
      logger.warn('config-same-epoch-differs', { epoch: cur.config.epoch, ours: cur.version, theirs: best.version });
    }
    const r = this.#routing!;
    // read repair: masters of the adopted configuration holding an older or broken copy
    const masters = new Set(r.masters);
    let agree = 0;
    const stale: string[] = [];
    const broken: string[] = [];
    for (const m of masters) {
      const c = copies.find((x) => x.address === m);
      if (c && c.ok && c.version === r.version) agree++;
      else if (c && c.ok && c.config.epoch < r.config.epoch) stale.push(m);
      else if (c && !c.ok && c.reachable) broken.push(m);
    }
    // A broken copy (deleted, truncated, overwritten by anything) is rewritten from the adopted
    // one only when a majority of masters confirms it: then it is the cluster's configuration,
    // not merely the newest this sidecar found. A broken copy that claims a newer epoch is never
    // overwritten (a copy never goes back): that needs a person, and status says so.
    const confirmed = agree >= majority(masters.size);
    // Repair with the exact bytes adopted (not a re-serialization): a repaired copy must carry the
    // same version as the others, or every later round would see a difference and reload.
    const text = this.#text;
    await Promise.all([
      ...stale.map(async (m) => {
        try {
          if ((await this.client(m).eval(CAS_CONFIG_SCRIPT, 2, CONFIG_KEY, VERSION_KEY, text, String(r.config.epoch), r.version)) === 1) {
            this.#stats.configRepairs++;
            agree++;
            logger.info('config-repaired', { node: m, epoch: r.config.epoch });
          }
        } catch (e) {
          logger.warn('config-repair-failed', { node: m, error: (e as Error).message });
        }
      }),
      ...broken.map(async (m) => {
        const c = copies.find((x) => x.address === m) as Extract<NodeCopy, { ok: false }>;
        if (!confirmed) {
          logger.warn('config-repair-waiting', { node: m, epoch: r.config.epoch, copy: c.reason, agree, need: majority(masters.size), why: 'a broken copy is rewritten only from a configuration a majority of masters confirms' });
          return;
        }
        try {
          const done = await this.client(m).eval(REPAIR_CONFIG_SCRIPT, 2, CONFIG_KEY, VERSION_KEY, text, String(r.config.epoch), r.version);
          if (done === 1) {
            this.#stats.configRepairs++;
            agree++;
            logger.warn('config-repaired', { node: m, epoch: r.config.epoch, copy: c.reason });
          } else
            logger.error('config-repair-refused', {
              node: m,
              epoch: r.config.epoch,
              reason: `its unusable copy (${c.reason}) claims epoch ${r.config.epoch} or newer; a copy never goes back, so a person must look (ringside status shows it)`,
            });
        } catch (e) {
          logger.warn('config-repair-failed', { node: m, error: (e as Error).message });
        }
      }),
    ]);
    if (agree >= majority(masters.size) && this.#routing === r) this.#confirm(sentAt);
    return copies;
  }

  /**
   * Reads the copies of `addresses`, returning once a majority of them answered and the others had
   * a short grace (or all answered, or the call bound ran out): a cut-off or stopped master must
   * not hold up a reload, or the lease of every sidecar lapses while it waits (issue 23: a
   * cluster-wide CLUSTERDOWN during each election). A copy not in yet counts as unreachable this
   * time; the next round that sees its version differ reads it again.
   */
  async #readMajority(addresses: string[], all = false): Promise<NodeCopy[]> {
    const copies: Array<NodeCopy | null> = addresses.map(() => null);
    const need = all ? addresses.length : majority(addresses.length);
    await new Promise<void>((done) => {
      let answered = 0;
      let settled = 0;
      let grace: NodeJS.Timeout | null = null;
      const bound = setTimeout(finish, Math.max(200, Math.min(2000, this.checkMs)) + 100);
      function finish(): void {
        clearTimeout(bound);
        if (grace) clearTimeout(grace);
        done();
      }
      addresses.forEach((a, i) => {
        void readCopy(this.client(a), a).then((c) => {
          copies[i] = c;
          settled++;
          if (c.ok || c.reachable) answered++;
          if (settled === addresses.length) finish();
          else if (answered >= need && !grace) grace = setTimeout(finish, RELOAD_GRACE_MS);
        });
      });
    });
    return copies.map((c, i) => c ?? { address: addresses[i]!, ok: false, reachable: false, reason: 'no answer yet (the reload went on with a majority)' });
  }

  #adopt(config: ClusterConfig, text: string, version: string, reason: string): void {
    const previous = this.#routing;
    const r = new Routing(config, version);
    this.#routing = r;
    this.#text = text;
    this.#textBytes = Buffer.byteLength(text);
    this.#stats.configReloads++;
    this.#stats.epoch = config.epoch;
    this.#stats.version = version;
    // A local --lease-ms longer than the cluster's outlives the switches' and moves' wait: say so
    // (the tests use long local leases on purpose; docs/failover.md, "Known limits")
    if (this.#opts.leaseMs !== undefined && this.#opts.leaseMs > config.timing.leaseMs && previous?.config.timing.leaseMs !== config.timing.leaseMs)
      logger.warn('lease-override-longer', {
        localLeaseMs: this.#opts.leaseMs,
        clusterLeaseMs: config.timing.leaseMs,
        effect: 'switches and moves wait the cluster\'s lease, so this sidecar may route to an old master after a switch; drop --lease-ms or make it shorter',
      });
    logger.info('config-adopted', {
      epoch: config.epoch,
      version,
      reason,
      switching: config.switching,
      migrating: Object.keys(config.migrating).length,
    });
    // The lease carries over: a copy newer than the one last confirmed is at least as safe to
    // route on (a switch or a migration is written as a hint first, and its final form only after
    // the lease has run out everywhere). The repair round that follows renews it.
    if (config.switching && !previous?.config.switching) this.#schedule(this.#switchingMs());
    for (const fn of this.#listeners) fn(r, previous);
  }

  get text(): string {
    return this.#text;
  }
  get lastCheckAt(): number {
    return this.#lastCheckAt;
  }
}

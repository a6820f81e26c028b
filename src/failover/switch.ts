/**
 * The atomic switch of a node's master to one of its replicas (docs/failover.md, "The switch"):
 * lock on a majority of masters, the `switching` hint (epoch+1) on a majority, a wait longer
 * than the lease, fencing of the old master, promotion, the final configuration (epoch+2), the
 * event log, unlock. `resumeSwitch` finishes or rolls back what a dead leader left.
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import {
  ClusterConfig,
  Switching,
  Timing,
  leaseToWaitMs,
  majority,
  masters as masterAddresses,
  votesKey,
} from '../cluster/config';
import { NodeCopy, controlClient, newest, readCopy, writeCopy } from '../cluster/store';
import { logger } from '../observe/log';
import { leaseMarginMs, lockTtlMs, staleSwitchMs } from './election';
import { LogEvent, appendLog, onQuorum, refreshLock, releaseLock, replicaOf, replication, sleep, takeLock, within } from './ops';
import { LockLostError, LockNotTakenError, NoReplicaError, NotSwitchableError, SwitchError, SwitchWriteError } from './errors';

export type SwitchStepName =
  | 'lock'
  | 'config'
  | 'offsets'
  | 'chosen'
  | 'hint'
  | 'wait'
  | 'fence'
  | 'catch-up'
  | 'promote'
  | 'repoint'
  | 'final'
  | 'log'
  | 'unlock'
  | 'confirmed'
  | 'rollback';

export interface SwitchProgress {
  step: SwitchStepName;
  /** one human line */
  message: string;
  detail?: Record<string, unknown>;
}

interface Common {
  /** the configuration the caller acts on; the newest copy on the masters is re-read after the lock */
  config: ClusterConfig;
  /** who runs it: a sidecar id, or `cli:<user>@<host>` */
  by: string;
  /** control clients of the masters (address → client); clientFor fills any gap */
  masters: Map<string, Redis>;
  clientFor(address: string): Redis;
  onProgress?(p: SwitchProgress): void;
  now?: () => number;
  /** added to leaseMs for the wait (default leaseMarginMs: max(200, leaseMs / 10)) */
  marginMs?: number;
  /** bound on waiting for the chosen replica to catch up with a reachable old master (default 2000) */
  catchUpMs?: number;
  /** bound of each control call (default 2000) */
  callTimeoutMs?: number;
  /** why: 'manual', 'votes 3/5', ... (goes into the log event) */
  reason?: string;
  /**
   * Whether the caller's own probes reach the old master now (an agent knows; the CLI does not):
   * false skips the fence's wait for a master the probes already find gone (a cut or a crash).
   */
  oldMasterAnswers?: () => boolean;
}

export interface SwitchOptions extends Common {
  node: string;
  /** the replica to promote; default: the reachable replica with the highest replication offset */
  to?: string;
  /**
   * An early lead (on suspicions, before the votes). `abandon` is asked during the lease wait:
   * true (the old master answers again) rolls the hint back at once. `confirm` is asked after
   * the wait: it resolves with the reason to promote (a majority of votes), or null to roll back.
   */
  early?: { abandon(): boolean; confirm(): Promise<string | null> };
}

export interface ResumeOptions extends Common {
  /** resume only a `switching` at least this old (default staleSwitchMs(timing)); 0 to force */
  minAgeMs?: number;
}

export interface SwitchResult {
  outcome: 'switched' | 'rolled-back' | 'moot';
  node: string;
  from: string;
  to: string;
  /** epoch of the configuration written last */
  epoch: number;
  event: LogEvent | null;
}

interface Ctx {
  o: Common;
  now: () => number;
  t: Timing;
  token: string;
  node: string;
  /** all masters of the configuration the lock was taken on */
  clients: Map<string, Redis>;
  timeout: number;
  progress(step: SwitchStepName, message: string, detail?: Record<string, unknown>): void;
  /** the background refresh of the lock (runs from the lock to the unlock) */
  keeper: NodeJS.Timeout | null;
  /** set when a background refresh found the lock held on less than a majority */
  lockLost: LockLostError | null;
}

const defaultMargin = (t: Timing): number => leaseMarginMs(t);

function masterClients(o: Common, config: ClusterConfig): Map<string, Redis> {
  const m = new Map<string, Redis>();
  for (const a of masterAddresses(config)) m.set(a, o.masters.get(a) ?? o.clientFor(a));
  return m;
}

function makeCtx(o: Common, node: string): Ctx {
  const now = o.now ?? Date.now;
  return {
    o,
    now,
    t: o.config.timing,
    token: `${o.by}:${randomUUID()}`,
    node,
    clients: masterClients(o, o.config),
    timeout: o.callTimeoutMs ?? 2000,
    progress: (step, message, detail) => o.onProgress?.({ step, message, detail }),
    keeper: null,
    lockLost: null,
  };
}

async function lock(ctx: Ctx): Promise<void> {
  const need = majority(ctx.clients.size);
  const tally = await takeLock(ctx.clients, ctx.node, ctx.token, lockTtlMs(ctx.t), ctx.timeout, need);
  ctx.progress('lock', `election lock for ${ctx.node} held on ${tally.held.length} of ${ctx.clients.size} masters (${need} needed)`, {
    held: tally.held,
    refused: tally.refused,
    failed: tally.failed,
    needed: need,
  });
  if (tally.held.length < need) {
    await releaseLock(ctx.clients, ctx.node, ctx.token, ctx.timeout, need);
    throw new LockNotTakenError(
      `election lock for node ${ctx.node} held on ${tally.held.length} of ${ctx.clients.size} masters, ${need} needed` +
        (tally.refused.length ? ` (another leader holds it on ${tally.refused.join(', ')})` : ''),
    );
  }
  startKeeper(ctx);
}

/**
 * Refreshes the lock every third of its TTL from the lock to the unlock, whatever step the
 * switch is in (a step that waits on a dead or stopped master must not let the lock expire). A
 * refresh that finds the lock ours on less than a majority marks it lost; the switch checks that
 * mark between steps, and checks the lock synchronously once more before it promotes.
 */
function startKeeper(ctx: Ctx): void {
  const need = majority(ctx.clients.size);
  const every = Math.max(50, Math.floor(lockTtlMs(ctx.t) / 3));
  let busy = false;
  ctx.keeper = setInterval(() => {
    if (busy || ctx.lockLost) return;
    busy = true;
    refreshLock(ctx.clients, ctx.node, ctx.token, lockTtlMs(ctx.t), Math.min(ctx.timeout, every), need)
      .then((tally) => {
        if (tally.held.length < need && ctx.keeper)
          ctx.lockLost = new LockLostError(`election lock for node ${ctx.node} still ours on ${tally.held.length} masters only, ${need} needed: stopping`);
      })
      .catch(() => {})
      .finally(() => (busy = false));
  }, every);
  ctx.keeper.unref?.();
}

function stopKeeper(ctx: Ctx): void {
  if (ctx.keeper) clearInterval(ctx.keeper);
  ctx.keeper = null;
}

/** Throws when the background refresh found the lock lost. */
function checkKeeper(ctx: Ctx): void {
  if (ctx.lockLost) throw ctx.lockLost;
}

async function unlock(ctx: Ctx, extra: Map<string, Redis> = new Map()): Promise<void> {
  stopKeeper(ctx);
  const all = new Map([...ctx.clients, ...extra]);
  const tally = await releaseLock(all, ctx.node, ctx.token, ctx.timeout, majority(ctx.clients.size)).catch(() => null);
  ctx.progress('unlock', `election lock released on ${tally?.held.length ?? 0} masters`);
}

/** Checks (and extends) the lock; `skip` leaves out a master paused for writes, where a script would block. */
async function ensureLock(ctx: Ctx, skip?: string): Promise<void> {
  checkKeeper(ctx);
  const need = majority(ctx.clients.size);
  const clients = new Map([...ctx.clients].filter(([a]) => a !== skip));
  const tally = await refreshLock(clients, ctx.node, ctx.token, lockTtlMs(ctx.t), ctx.timeout, need);
  if (tally.held.length < need)
    throw new LockLostError(`election lock for node ${ctx.node} still ours on ${tally.held.length} masters only, ${need} needed: stopping`);
}

/**
 * Reads the configuration copies of `clients`, returning once a majority answered (a majority
 * read meets every configuration a majority took) and the others had a short grace.
 */
async function readMajority(ctx: Ctx, clients: Map<string, Redis>): Promise<NodeCopy[]> {
  const res = await onQuorum(clients, (c, a) => readCopy(c, a), {
    need: majority(clients.size),
    good: (c) => c.ok || c.reachable,
    timeoutMs: ctx.timeout,
  });
  return [...res].map(([address, r]): NodeCopy =>
    r.ok ? r.value : { address, ok: false, reachable: false, reason: 'error' in r ? r.error.message : 'no answer yet' },
  );
}

type WriteOutcome = 'written' | 'current' | Error;

/** Compare-and-set write on `clients`; returns once `need` took it (written, or also current). */
async function writeQuorum(ctx: Ctx, clients: Map<string, Redis>, config: ClusterConfig, countCurrent: boolean): Promise<Map<string, WriteOutcome>> {
  const res = await onQuorum(clients, (c) => writeCopy(c, config), {
    need: majority(clients.size),
    good: (written) => written || countCurrent,
    timeoutMs: ctx.timeout,
  });
  return new Map(
    [...res].map(([a, r]): [string, WriteOutcome] => [
      a,
      r.ok ? (r.value ? 'written' : 'current') : 'error' in r ? r.error : new Error('no answer yet'),
    ]),
  );
}

/** The newest good configuration on the masters (or the given one when it is newer). */
async function freshConfig(ctx: Ctx, given: ClusterConfig): Promise<ClusterConfig> {
  checkKeeper(ctx);
  const copies = await readMajority(ctx, ctx.clients);
  const best = newest(copies);
  const config = best && best.config.epoch > given.epoch ? best.config : given;
  ctx.progress('config', `configuration epoch ${config.epoch}`, { epoch: config.epoch });
  return config;
}

/** Writes `config` with compare-and-set on `clients`; throws unless a majority took it. */
async function writeMajority(ctx: Ctx, clients: Map<string, Redis>, config: ClusterConfig, step: SwitchStepName, what: string): Promise<void> {
  checkKeeper(ctx);
  const res = await writeQuorum(ctx, clients, config, false);
  const written = [...res].filter(([, r]) => r === 'written').map(([a]) => a);
  const need = majority(clients.size);
  ctx.progress(step, `${what}: epoch ${config.epoch} written on ${written.length} of ${clients.size} masters (${need} needed)`, {
    epoch: config.epoch,
    written,
    outcome: Object.fromEntries([...res].map(([a, r]) => [a, r instanceof Error ? r.message : r])),
  });
  if (written.length < need)
    throw new SwitchWriteError(`${what}: epoch ${config.epoch} written on ${written.length} of ${clients.size} masters, ${need} needed`);
}

/** Waits longer than the lease, keeping the lock alive; true when `abandon` said to stop early. */
async function waitLease(ctx: Ctx, abandon?: () => boolean): Promise<boolean> {
  const margin = ctx.o.marginMs ?? defaultMargin(ctx.t);
  const lease = leaseToWaitMs(ctx.t);
  const total = lease + margin;
  const until = ctx.now() + total;
  ctx.progress('wait', `waiting ${total} ms (lease ${lease} ms + ${margin} ms) so that every sidecar sees the hint or stops routing`, {
    ms: total,
  });
  // The keeper refreshes the lock meanwhile; the wait ends on time, not a refresh later.
  for (;;) {
    checkKeeper(ctx);
    if (abandon?.()) return true;
    const left = until - ctx.now();
    if (left <= 0) return false;
    await sleep(Math.min(50, left));
  }
}

interface Candidate {
  address: string;
  offset: number | null;
  role?: string;
  error?: string;
}

async function offsets(ctx: Ctx, replicas: string[]): Promise<Candidate[]> {
  const ask = (address: string): Promise<Candidate> =>
    replication(ctx.o.clientFor(address), ctx.timeout).then(
      (r) => ({ address, offset: r.role === 'slave' ? r.offset : null, role: r.role }),
      (e: Error) => ({ address, offset: null, error: e.message }),
    );
  const first = await Promise.all(replicas.map(ask));
  // every replica silent (a busy host, a slow moment): ask once more while the lock is ours,
  // rather than give the election up and have another leader start over
  if (first.length === 0 || first.some((c) => c.offset !== null || c.role !== undefined)) return first;
  return Promise.all(replicas.map(ask));
}

/**
 * Runs the whole switch of `node`'s master. Throws a SwitchError subclass when it cannot lead
 * or cannot finish; a failure after the hint leaves a `switching` that resumeSwitch settles.
 */
export async function runSwitch(o: SwitchOptions): Promise<SwitchResult> {
  const ctx = makeCtx(o, o.node);
  const given = o.config.nodes[o.node];
  if (!given) throw new NotSwitchableError(`no node named ${JSON.stringify(o.node)} in the configuration`);
  if (o.to !== undefined && !given.replicas.includes(o.to))
    throw new NoReplicaError(`${o.to} is not a replica of node ${o.node} (replicas: ${given.replicas.join(', ') || 'none'})`);
  const from = given.master;
  await lock(ctx);
  try {
    const config = await freshConfig(ctx, o.config);
    const spec = config.nodes[o.node];
    if (!spec || spec.master !== from)
      throw new NotSwitchableError(`node ${o.node} is no longer served by ${from} (now ${spec?.master ?? 'gone'}): nothing to do`);
    if (config.switching)
      throw new NotSwitchableError(
        `a switch of node ${config.switching.node} to ${config.switching.to} is under way (by ${config.switching.by} since ${new Date(config.switching.since).toISOString()})`,
      );
    const cands = await offsets(ctx, o.to ? [o.to] : spec.replicas);
    ctx.progress(
      'offsets',
      'replication offsets: ' + cands.map((c) => `${c.address}=${c.offset ?? c.error ?? c.role}`).join(', '),
      { replicas: cands },
    );
    const usable = cands.filter((c) => c.offset !== null).sort((a, b) => b.offset! - a.offset!);
    if (usable.length === 0)
      throw new NoReplicaError(
        `no replica of node ${o.node} can be promoted: ${cands.map((c) => `${c.address} ${c.error ?? `is ${c.role}`}`).join('; ') || 'none configured'}`,
      );
    const to = usable[0]!.address;
    ctx.progress('chosen', `promoting ${to} (offset ${usable[0]!.offset})${o.to ? ' as asked' : ''}`, { to, offset: usable[0]!.offset });
    const switching: Switching = { node: o.node, from, to, since: ctx.now(), by: o.by, ...(o.early ? { early: true as const } : {}) };
    const hinted: ClusterConfig = { ...config, epoch: config.epoch + 1, switching };
    await writeMajority(ctx, ctx.clients, hinted, 'hint', `switching hint for ${o.node}: ${from} → ${to}`);
    if (o.early) {
      // Started on suspicions: the lease wait overlaps the rest of the detection. Promote only on
      // a majority of votes (the lock stays refreshed meanwhile); the old master answering again,
      // during the wait or after, rolls the hint back (nothing was done to any server yet).
      const gaveUp = await waitLease(ctx, o.early.abandon);
      const why = gaveUp ? null : await o.early.confirm();
      checkKeeper(ctx);
      if (why === null) return await rollback(ctx, hinted, `${from} was suspected but not voted down (it answers again)`, false);
      ctx.progress('confirmed', `confirmed: ${why}`);
      o.reason = `${o.reason ?? ''}, then ${why}`.replace(/^, then /, '');
    } else await waitLease(ctx);
    return await finish(ctx, hinted, false);
  } finally {
    await unlock(ctx, new Map([...(o.config.nodes[o.node]?.replicas ?? [])].map((a) => [a, o.clientFor(a)])));
  }
}

/**
 * The second half of a switch, from a configuration holding the hint that a majority has seen
 * for longer than the lease: fence the old master, promote, re-point, write the final
 * configuration, log, clear the votes.
 */
async function finish(ctx: Ctx, hinted: ClusterConfig, resumed: boolean): Promise<SwitchResult> {
  const sw = hinted.switching!;
  const { from, to, node } = sw;
  const spec = hinted.nodes[node]!;
  const started = sw.since;
  const shared = ctx.o.clientFor(from);
  // The old master gets a connection of its own for the fence: on a shared connection the PAUSE,
  // the REPLICAOF and the UNPAUSE would queue behind commands that the pause blocks (another
  // user's writes, such as a sidecar's check-in), and a stopped master would run them out of order.
  let oldMaster: Redis | null = null;
  const fenceClient = (): Redis => (oldMaster ??= controlClient(from, { connectTimeoutMs: 500, commandTimeoutMs: ctx.timeout }));
  const newMaster = ctx.o.clientFor(to);

  checkKeeper(ctx);
  // Fence: the old master, if it answers, takes no more writes from here on. A connection that
  // is down (a dead master) is not waited for; a stopped master is given a short bound: either
  // way the lease has fenced it already, and the agents demote it when it returns.
  let paused = false;
  try {
    if (shared.status === 'reconnecting' || shared.status === 'end' || shared.status === 'close')
      throw new Error(`not connected (${shared.status})`);
    if (ctx.o.oldMasterAnswers?.() === false) throw new Error('its probes fail');
    const bound = Math.max(100, Math.min(1000, Math.floor(ctx.t.downAfterMs / 2)));
    const pause = fenceClient().call('CLIENT', 'PAUSE', String(lockTtlMs(ctx.t)), 'WRITE');
    try {
      await within(pause, bound, 'CLIENT PAUSE');
    } catch (e) {
      // A stopped master runs the PAUSE when it is continued: undo it right behind (same
      // connection, so in order), or it would hold the demotion and run the writes queued
      // meanwhile only once it is a replica.
      // (Timed out by `within` or by the client's own command timeout alike.)
      fenceClient().call('CLIENT', 'UNPAUSE').then(
        () => logger.info('failover-fence-undone', { node: ctx.node, address: from }),
        (e2) => logger.debug('failover-fence-undo-pending', { node: ctx.node, address: from, error: (e2 as Error).message }),
      );
      throw e;
    }
    paused = true;
    ctx.progress('fence', `old master ${from} paused for writes`);
  } catch (e) {
    ctx.progress('fence', `old master ${from} does not answer (${(e as Error).message}): fenced by the lease, and demoted when it returns`);
  }
  let caughtUp: boolean | null = null;
  try {
    if (paused) {
      // With the old master alive (a manual switch, a partition), let the replica take all it has.
      const bound = Math.min(ctx.o.catchUpMs ?? 2000, Math.floor(lockTtlMs(ctx.t) / 3));
      const deadline = ctx.now() + bound;
      caughtUp = false;
      for (;;) {
        const [m, r] = await Promise.all([replication(fenceClient(), 1000), replication(newMaster, 1000)]);
        if (m.role !== 'master' || r.role !== 'slave') {
          caughtUp = null; // nothing to compare: not a replica of the old master (any more)
          break;
        }
        if (r.offset >= m.offset) {
          caughtUp = true;
          ctx.progress('catch-up', `${to} has the old master's data (offset ${r.offset} of ${m.offset})`);
          break;
        }
        if (ctx.now() > deadline) {
          ctx.progress('catch-up', `${to} still behind (offset ${r.offset} of ${m.offset}) after ${bound} ms: promoting anyway`);
          break;
        }
        await sleep(20);
      }
    }
  } catch (e) {
    ctx.progress('catch-up', `could not compare offsets: ${(e as Error).message}`);
  }

  try {
    await ensureLock(ctx, from);
    const before = await replication(newMaster, ctx.timeout);
    if (before.role === 'master') ctx.progress('promote', `${to} is already a master`);
    else {
      await replicaOf(newMaster, null, ctx.timeout);
      ctx.progress('promote', `REPLICAOF NO ONE on ${to}`);
    }
    const others = spec.replicas.filter((a) => a !== to);
    await Promise.all(
      others.map(async (a) => {
        try {
          await replicaOf(ctx.o.clientFor(a), to, ctx.timeout);
          ctx.progress('repoint', `${a} now replicates from ${to}`);
        } catch (e) {
          ctx.progress('repoint', `${a} not re-pointed (${(e as Error).message}): the agents demote it when it answers`);
        }
      }),
    );
    if (paused) {
      try {
        await replicaOf(fenceClient(), to, ctx.timeout);
        ctx.progress('repoint', `old master ${from} now replicates from ${to}`);
      } catch (e) {
        ctx.progress('repoint', `old master ${from} not re-pointed (${(e as Error).message})`);
      }
    }
  } finally {
    if (paused) await within(fenceClient().call('CLIENT', 'UNPAUSE'), 1000, 'CLIENT UNPAUSE').catch(() => {});
    // closed a little later, so that commands still queued for a stopped master are delivered
    if (oldMaster) {
      const c: Redis = oldMaster;
      setTimeout(() => c.disconnect(), 2 * lockTtlMs(ctx.t)).unref?.();
    }
  }

  const final: ClusterConfig = {
    ...hinted,
    epoch: hinted.epoch + 1,
    nodes: { ...hinted.nodes, [node]: { master: to, replicas: [...spec.replicas.filter((a) => a !== to), from] } },
    switching: null,
  };
  const newClients = masterClients(ctx.o, final);
  await writeMajority(ctx, newClients, final, 'final', `final configuration: ${node} served by ${to}`);
  const event: LogEvent = {
    time: ctx.now(),
    event: 'failover',
    node,
    from,
    to,
    epoch: final.epoch,
    by: ctx.o.by,
    reason: ctx.o.reason ?? null,
    resumed,
    caughtUp,
    durationMs: ctx.now() - started,
  };
  await afterward(ctx, newClients, event);
  return { outcome: 'switched', node, from, to, epoch: final.epoch, event };
}

async function afterward(ctx: Ctx, clients: Map<string, Redis>, event: LogEvent): Promise<void> {
  const logged = await appendLog(clients, event, ctx.timeout);
  ctx.progress('log', `event logged on ${logged.length} of ${clients.size} masters`, { event });
  await Promise.all([...clients.values()].map((c) => within(c.del(votesKey(ctx.node)), ctx.timeout).catch(() => {})));
  // The lock copies live on the new masters too (a promoted replica kept its master's copy).
  ctx.clients = new Map([...ctx.clients, ...clients]);
}

/**
 * Settles a `switching` hint left by a leader that died (or gave up) midway: finishes the switch
 * when the named replica is already master or can still be promoted, otherwise rolls back to the
 * old master with a new epoch. Only a hint older than `minAgeMs` is touched.
 */
export async function resumeSwitch(o: ResumeOptions): Promise<SwitchResult> {
  const sw0 = o.config.switching;
  if (!sw0) throw new NotSwitchableError('the configuration holds no switch to resume');
  const ctx = makeCtx(o, sw0.node);
  const minAge = o.minAgeMs ?? staleSwitchMs(o.config.timing);
  const age = ctx.now() - sw0.since;
  if (age < minAge)
    throw new NotSwitchableError(
      `the switch of node ${sw0.node} to ${sw0.to} by ${sw0.by} started ${age} ms ago; it is left to its leader until it is ${minAge} ms old`,
    );
  await lock(ctx);
  try {
    const config = await freshConfig(ctx, o.config);
    const sw = config.switching;
    if (!sw || sw.node !== sw0.node || sw.to !== sw0.to || sw.since !== sw0.since) {
      const spec = config.nodes[sw0.node];
      ctx.progress('config', `the switch was settled meanwhile (epoch ${config.epoch}): nothing to do`);
      return { outcome: 'moot', node: sw0.node, from: sw0.from, to: spec?.master ?? sw0.to, epoch: config.epoch, event: null };
    }
    let role: string;
    try {
      role = (await replication(o.clientFor(sw.to), ctx.timeout)).role;
    } catch (e) {
      role = `unreachable (${(e as Error).message})`;
    }
    ctx.progress('offsets', `${sw.to} is ${role}`);
    if (role === 'master') {
      // Promoted already, so the lease wait was over; only the rest remains.
      return await finish(ctx, config, true);
    }
    if (role === 'slave' && sw.early) {
      // An early lead whose leader is gone: the votes it waited for were never confirmed. If the
      // old master answers as a master, nothing was decided: roll back (the votes start anew).
      let old: string;
      try {
        old = (await replication(o.clientFor(sw.from), ctx.timeout)).role;
      } catch (e) {
        old = `unreachable (${(e as Error).message})`;
      }
      ctx.progress('offsets', `old master ${sw.from} is ${old}`);
      if (old === 'master') return await rollback(ctx, config, `an early switch whose leader is gone, and ${sw.from} answers as master`);
    }
    if (role === 'slave') {
      // Make sure a majority holds the hint, then wait a whole lease from now: when the first
      // leader's majority write completed is not known.
      await writeHintAgain(ctx, config);
      await waitLease(ctx);
      return await finish(ctx, config, true);
    }
    return await rollback(ctx, config, `${sw.to} is ${role}`);
  } finally {
    const sw = o.config.switching!;
    await unlock(ctx, new Map([sw.to, ...(o.config.nodes[sw.node]?.replicas ?? [])].map((a) => [a, o.clientFor(a)])));
  }
}

async function writeHintAgain(ctx: Ctx, config: ClusterConfig): Promise<void> {
  checkKeeper(ctx);
  const res = await writeQuorum(ctx, ctx.clients, config, true);
  const holding = [...res].filter(([, r]) => r === 'written' || r === 'current').map(([a]) => a);
  const need = majority(ctx.clients.size);
  ctx.progress('hint', `switching hint (epoch ${config.epoch}) held by ${holding.length} of ${ctx.clients.size} masters (${need} needed)`);
  if (holding.length < need) throw new SwitchWriteError(`the switching hint is on ${holding.length} masters only, ${need} needed`);
}

async function rollback(ctx: Ctx, config: ClusterConfig, why: string, touchedOldMaster = true): Promise<SwitchResult> {
  const sw = config.switching!;
  // Undo a fence the dead leader may have left on the old master (on a connection of its own:
  // see finish()). Not after an early lead of our own that never got past its wait: nothing was
  // done to any server, and by now the old master may rightly be something else.
  if (touchedOldMaster) {
    const old = controlClient(sw.from, { connectTimeoutMs: 500, commandTimeoutMs: ctx.timeout });
    try {
      await within(old.call('CLIENT', 'UNPAUSE'), 1000);
      const r = await replication(old, ctx.timeout);
      if (r.role === 'slave') await replicaOf(old, null, ctx.timeout);
    } catch {
      /* the old master does not answer: the next election deals with it */
    } finally {
      old.disconnect();
    }
  }
  const back: ClusterConfig = { ...config, epoch: config.epoch + 1, switching: null };
  await writeMajority(ctx, ctx.clients, back, 'rollback', `rolled back (${why}): ${sw.node} stays with ${sw.from}`);
  const event: LogEvent = {
    time: ctx.now(),
    event: 'failover-rolled-back',
    node: sw.node,
    from: sw.from,
    to: sw.to,
    epoch: back.epoch,
    by: ctx.o.by,
    why,
    leader: sw.by,
  };
  await afterward(ctx, ctx.clients, event);
  return { outcome: 'rolled-back', node: sw.node, from: sw.from, to: sw.to, epoch: back.epoch, event };
}

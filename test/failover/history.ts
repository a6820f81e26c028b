/**
 * The write-history checker of the fail-over tests (issue 6, "What it must show"). Pure: it
 * takes the history the writers recorded and what was read back from the final masters, and says
 * what went wrong.
 *
 * The rules, for a history of unique writes (every key and every value written once):
 *
 * 1. **Unique**: no key and no value appears twice in the history.
 * 2. **Placement**: a key read back is on exactly one final master, the one that owns its slot,
 *    with the value written (also for writes whose outcome the client does not know: an error
 *    reply or no reply may or may not have run, but if it ran it must be in the right place).
 * 3. **Lost acknowledged writes** (acknowledged, not read back) are allowed only in the shard
 *    that failed, for writes sent before the failure, and acknowledged before the switching hint
 *    was written: a lost write acknowledged after the hint was acknowledged by the old master
 *    after the hint (the new master loses nothing), which the protocol forbids.
 * 4. **Only the last instant**: asynchronous replication keeps the old master's order, so what a
 *    replica misses is a suffix of what the old master executed. A lost write L and a write P
 *    that is present, both in the failed shard and P acknowledged before the failure (so
 *    executed by the old master), cannot have L acknowledged before P was sent: L ran before P,
 *    and P reached the replica, so L did too.
 */

export type Outcome = 'ok' | 'error' | 'pending';

export interface Write {
  key: string;
  value: string;
  /** the client that wrote it */
  writer: string;
  /** the sidecar it was sent through */
  via: string;
  /** the node (shard) owning the key's slot */
  shard: string;
  /** unix ms (fractional) when the command was sent, and when its reply came */
  sentAt: number;
  ackAt: number | null;
  outcome: Outcome;
  /** error reply or failure, for outcome 'error' */
  error?: string;
}

/** Where a key was found at the end: the final masters holding it, with their value. */
export type ReadBack = Map<string, Array<{ master: string; value: string }>>;

export interface Failure {
  /** the shard whose master failed */
  shard: string;
  /** unix ms of the kill (or SIGSTOP) */
  at: number;
  /** unix ms the switching hint was written (the switch's `since`); null when no switch happened */
  hintAt: number | null;
  /**
   * A partition rather than a crash (test/partition): the cut-off master may go on acknowledging
   * what a sidecar on its side still sends under its lease, so a lost write is allowed (in the
   * default durability) when acknowledged at most this long after `at` — the bound docs/failover.md
   * states. Replaces the sent-before-the-failure and acknowledged-before-the-hint rules.
   */
  lossBoundMs?: number;
}

export interface CheckInput {
  writes: Write[];
  found: ReadBack;
  /** the final master owning a key's slot */
  ownerOf(key: string): string;
  failure?: Failure;
}

export interface Verdict {
  writes: number;
  acked: number;
  errors: number;
  pending: number;
  /** writes without an acknowledgement that were found anyway (they ran) */
  unackedPresent: number;
  /** acknowledged writes not read back */
  lost: Write[];
  /** of `lost`, the earliest acknowledgement relative to the failure (ms, negative = before) */
  lostWindowMs: number | null;
  /** broken rules, one line each (empty: the history is fine) */
  violations: string[];
}

const fmt = (w: Write): string =>
  `${w.key}=${w.value} (${w.writer} via ${w.via}, shard ${w.shard}, sent ${w.sentAt.toFixed(1)}, ack ${w.ackAt?.toFixed(1) ?? '-'})`;

export function checkHistory(input: CheckInput, maxLines = 20): Verdict {
  const { writes, found, failure } = input;
  const violations: string[] = [];
  const add = (line: string): void => {
    violations.push(line);
  };

  // 1. unique
  const keys = new Set<string>();
  const values = new Set<string>();
  for (const w of writes) {
    if (keys.has(w.key)) add(`key written twice: ${fmt(w)}`);
    if (values.has(w.value)) add(`value written twice: ${fmt(w)}`);
    keys.add(w.key);
    values.add(w.value);
  }

  // 2. placement
  let unackedPresent = 0;
  const present = new Set<string>();
  for (const w of writes) {
    const where = found.get(w.key) ?? [];
    if (where.length === 0) continue;
    present.add(w.key);
    if (w.outcome !== 'ok') unackedPresent++;
    if (where.length > 1) add(`key on ${where.length} masters (${where.map((x) => x.master).join(', ')}): ${fmt(w)}`);
    const owner = input.ownerOf(w.key);
    for (const x of where) {
      if (x.master !== owner) add(`key on ${x.master}, which does not own its slot (${owner} does): ${fmt(w)}`);
      if (x.value !== w.value) add(`key holds ${JSON.stringify(x.value)} on ${x.master}, not the value written: ${fmt(w)}`);
    }
  }
  for (const k of found.keys()) if (!keys.has(k)) add(`key read back that no writer wrote: ${k}`);

  // 3. lost acknowledged writes
  const acked = writes.filter((w) => w.outcome === 'ok');
  const lost = acked.filter((w) => !present.has(w.key));
  for (const l of lost) {
    if (!failure) add(`acknowledged write lost with no failure: ${fmt(l)}`);
    else if (l.shard !== failure.shard) add(`acknowledged write lost outside the failed shard ${failure.shard}: ${fmt(l)}`);
    else if (failure.lossBoundMs !== undefined) {
      if (l.ackAt! > failure.at + failure.lossBoundMs) add(`lost, and acknowledged more than ${failure.lossBoundMs} ms after the cut: ${fmt(l)}`);
    } else if (l.sentAt >= failure.at) add(`acknowledged write sent after the failure is lost: ${fmt(l)}`);
    else if (failure.hintAt !== null && l.ackAt! > failure.hintAt + 1)
      add(`acknowledged by the old master after the switching hint (${failure.hintAt}) and lost: ${fmt(l)}`);
  }

  // 4. only a suffix of the old master's history may be lost
  if (failure && lost.length) {
    const oldOnes = acked.filter((w) => w.shard === failure.shard && w.ackAt! < failure.at && present.has(w.key));
    // the latest `sentAt` of a present write acknowledged before the failure
    let latest: Write | null = null;
    for (const p of oldOnes) if (!latest || p.sentAt > latest.sentAt) latest = p;
    if (latest)
      for (const l of lost)
        if (l.shard === failure.shard && l.ackAt! < latest.sentAt)
          add(`lost write acknowledged before a later write that survived was even sent: lost ${fmt(l)}; survived ${fmt(latest)}`);
  }

  let lostWindowMs: number | null = null;
  if (failure && lost.length) lostWindowMs = Math.min(...lost.map((l) => l.ackAt! - failure.at));

  if (violations.length > maxLines) {
    const n = violations.length - maxLines;
    violations.splice(maxLines, n, `... and ${n} more`);
  }
  return {
    writes: writes.length,
    acked: acked.length,
    errors: writes.filter((w) => w.outcome === 'error').length,
    pending: writes.filter((w) => w.outcome === 'pending').length,
    unackedPresent,
    lost,
    lostWindowMs,
    violations,
  };
}

/** One line for t.comment. */
export function summary(v: Verdict): string {
  return (
    `${v.writes} writes: ${v.acked} acknowledged, ${v.errors} errors, ${v.pending} without reply, ` +
    `${v.unackedPresent} unacknowledged found anyway; lost acknowledged: ${v.lost.length}` +
    (v.lostWindowMs !== null ? ` (earliest acknowledged ${v.lostWindowMs.toFixed(1)} ms from the failure)` : '') +
    `; violations: ${v.violations.length}`
  );
}

/**
 * The sidecar's own figures, kept as plain numbers so the hot path pays an increment, not a label
 * lookup. INFO, SLOWLOG and the Prometheus endpoint all read from here (src/observe/metrics.ts).
 */

/** Upper bounds (seconds) of the latency buckets; the last bucket is +Inf. */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A fixed-bucket histogram: `counts[i]` counts observations <= LATENCY_BUCKETS[i], the last slot the rest. */
export class Histogram {
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

export type Outcome = 'ok' | 'error' | 'refused';

/**
 * One command name's figures. `calls` counts every command received under that name whatever its
 * outcome, so ok = calls - errors - refused (Stats.recordCommand keeps that invariant).
 */
export interface CommandStat {
  calls: number;
  errors: number; // node replied with an error
  refused: number; // the sidecar refused it (bad input, cross-slot, lease, node down)
  usec: number; // total microseconds from arrival to reply
}

export class Stats {
  readonly startedAt = Date.now();
  /** per command name (lower case) */
  readonly commands = new Map<string, CommandStat>();
  /** per family: simple, split, local, fanout, transaction, blocking, pubsub, script */
  readonly familyLatency = new Map<string, Histogram>();
  /** per node address */
  readonly nodeLatency = new Map<string, Histogram>();

  connectionsReceived = 0;
  connectedClients = 0;
  rejectedConnections = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** node address → open data connections */
  readonly nodeConnections = new Map<string, number>();
  readonly nodeBytesOut = new Map<string, number>();

  // configuration lifecycle (issue 4)
  configChecks = 0;
  configCheckFailures = 0;
  configReloads = 0;
  configRepairs = 0;
  redirects = 0;
  leaseExpiries = 0;
  /** unix ms of the last confirmation of the version on a majority of masters; 0 = never */
  lastConfirmedAt = 0;
  leaseValid = false;
  epoch = 0;
  version = '';

  // fail-over (issue 6)
  errorReportsSent = 0;
  votesCast = 0;
  electionsLed = 0;
  electionsCompleted = 0;

  // the last name and family looked up: a run of one command (a pipeline, a benchmark) then
  // costs a string comparison per reply instead of a map lookup
  #lastName = '';
  #lastStat: CommandStat | null = null;
  #lastFamily = '';
  #lastFamilyHist: Histogram | null = null;

  command(name: string): CommandStat {
    if (name === this.#lastName && this.#lastStat !== null) return this.#lastStat;
    let s = this.commands.get(name);
    if (!s) this.commands.set(name, (s = { calls: 0, errors: 0, refused: 0, usec: 0 }));
    this.#lastName = name;
    this.#lastStat = s;
    return s;
  }
  /** Counts one command from an application: its name (lower case), outcome and time to reply. */
  recordCommand(name: string, outcome: Outcome, usec: number): void {
    const s = this.command(name);
    s.calls++;
    if (outcome === 'error') s.errors++;
    else if (outcome === 'refused') s.refused++;
    s.usec += usec;
  }
  family(name: string): Histogram {
    if (name === this.#lastFamily && this.#lastFamilyHist !== null) return this.#lastFamilyHist;
    let h = this.familyLatency.get(name);
    if (!h) this.familyLatency.set(name, (h = new Histogram()));
    this.#lastFamily = name;
    this.#lastFamilyHist = h;
    return h;
  }
  node(address: string): Histogram {
    let h = this.nodeLatency.get(address);
    if (!h) this.nodeLatency.set(address, (h = new Histogram()));
    return h;
  }
}

/** A slow-log entry, as Redis's SLOWLOG GET shows it, plus the node the command went to. */
export interface SlowEntry {
  id: number;
  time: number; // unix seconds
  usec: number;
  args: string[];
  client: string;
  name: string;
  node: string;
}

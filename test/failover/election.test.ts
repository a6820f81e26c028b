import t from 'tap';
import type { Switching } from '../../src/cluster/config';
import {
  Action,
  Election,
  ElectionConfig,
  World,
  backoffBaseMs,
  backoffCapMs,
  staleSwitchMs,
  suspectAfterMs,
  suspicionField,
  voteFreshMs,
  voteRefreshMs,
} from '../../src/failover/election';

const timing = { downAfterMs: 3000, leaseMs: 15000 };
const A = '10.0.0.1:6379';

class Clock {
  ms = 1_700_000_000_000;
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

type WorldOver = Omit<Partial<World>, 'config'> & { votes?: Record<string, number>; config?: Partial<ElectionConfig> };

interface Setup {
  clock: Clock;
  e: Election;
  world(over?: WorldOver): World;
}

/** Votes only (earlyStart false) unless asked: the rules of voting and leading on votes. */
function setup(opts: { random?: () => number; id?: string; early?: boolean } = {}): Setup {
  const clock = new Clock();
  const e = new Election({ id: opts.id ?? 'me', now: clock.now, random: opts.random ?? (() => 0.5), earlyStart: opts.early ?? false });
  return {
    clock,
    e,
    world: (over = {}) => ({
      config: { failover: 'auto', timing, switching: null, ...over.config },
      mastersTotal: over.mastersTotal ?? 3,
      mastersReached: over.mastersReached ?? 2,
      liveSidecars: over.liveSidecars ?? 3,
      nodes: over.nodes ?? [{ node: 'a', address: A, votes: over.votes ?? {} }],
    }),
  };
}

const kinds = (acts: Action[]): string[] => acts.map((a) => a.kind);
const reasonOf = (acts: Action[]): string => (acts.find((a) => a.kind === 'none') as { reason: string } | undefined)?.reason ?? '';

/** Feeds a failed probe every `step` ms for `ms`, deciding each time; returns every action. */
function downFor(s: Setup, ms: number, step = 500, world: WorldOver = {}): Action[] {
  const out: Action[] = [];
  for (let elapsed = 0; elapsed <= ms; elapsed += step) {
    s.e.probe('a', A, false);
    out.push(...s.e.decide(s.world(world)));
    if (elapsed + step <= ms) s.clock.advance(step);
  }
  return out;
}

function upFor(s: Setup, ms: number, step = 500, world: WorldOver = {}): Action[] {
  const out: Action[] = [];
  for (let elapsed = 0; elapsed <= ms; elapsed += step) {
    s.e.probe('a', A, true);
    out.push(...s.e.decide(s.world(world)));
    if (elapsed + step <= ms) s.clock.advance(step);
  }
  return out;
}

t.test('a reachable node calls for nothing', async (t) => {
  const s = setup();
  s.e.probe('a', A, true);
  const acts = s.e.decide(s.world());
  t.same(kinds(acts), ['none']);
  t.equal(reasonOf(acts), 'reachable');
  t.equal(s.e.status()[0]!.phase, 'up');
});

t.test('a node down for less than downAfterMs is reported but gets no vote', async (t) => {
  const s = setup();
  const acts = downFor(s, timing.downAfterMs - 1, 1);
  t.notOk(kinds(acts).includes('vote'));
  t.notOk(kinds(acts).includes('try-lead'));
  t.equal(acts.filter((a) => a.kind === 'report').length, 3, 'one report per second, not one per probe');
  t.equal(s.e.status()[0]!.phase, 'suspect');
});

t.test('a node down for downAfterMs without a break gets a vote, refreshed every downAfterMs', async (t) => {
  const s = setup();
  s.e.probe('a', A, false);
  t.notOk(kinds(s.e.decide(s.world())).includes('vote'));
  s.clock.advance(timing.downAfterMs - 1);
  s.e.probe('a', A, false);
  t.notOk(kinds(s.e.decide(s.world())).includes('vote'), 'not a millisecond early');
  s.clock.advance(1);
  s.e.probe('a', A, false);
  const first = s.e.decide(s.world({ liveSidecars: 5 }));
  t.same(first.find((a) => a.kind === 'vote'), { kind: 'vote', node: 'a', address: A, refresh: false });
  t.equal(s.e.status()[0]!.phase, 'down');
  t.equal(s.e.status()[0]!.votedAt, s.clock.ms);
  s.clock.advance(voteRefreshMs(timing) - 1);
  s.e.probe('a', A, false);
  t.notOk(kinds(s.e.decide(s.world({ liveSidecars: 5 }))).includes('vote'), 'no refresh before voteRefreshMs');
  s.clock.advance(1);
  s.e.probe('a', A, false);
  t.same(
    s.e.decide(s.world({ liveSidecars: 5 })).find((a) => a.kind === 'vote'),
    { kind: 'vote', node: 'a', address: A, refresh: true },
  );
});

t.test('one failed command is not a failure: only own probes count, and a stale probe says nothing', async (t) => {
  const s = setup();
  s.e.probe('a', A, false);
  s.clock.advance(timing.downAfterMs + 1); // no probe in between
  const acts = s.e.decide(s.world());
  t.notOk(kinds(acts).includes('vote'), 'the last probe is older than downAfterMs');
  t.equal(reasonOf(acts), 'no recent probe');
});

t.test('a recovery resets the down timer: a node must be down for downAfterMs without a break', async (t) => {
  const s = setup();
  let acts = downFor(s, timing.downAfterMs - 500);
  acts = acts.concat(upFor(s, 0));
  s.clock.advance(500);
  acts = acts.concat(downFor(s, timing.downAfterMs - 500));
  t.notOk(kinds(acts).includes('vote'), 'two outages shorter than downAfterMs never add up to a vote');
  s.clock.advance(500);
  acts = downFor(s, 0);
  t.ok(kinds(acts).includes('vote'), 'but one outage of downAfterMs does');
});

t.test('a vote is withdrawn when the node answers again', async (t) => {
  const s = setup();
  downFor(s, timing.downAfterMs);
  t.not(s.e.status()[0]!.votedAt, null);
  s.clock.advance(500);
  const acts = upFor(s, 0);
  t.same(kinds(acts), ['withdraw-vote', 'none']);
  t.equal(s.e.status()[0]!.votedAt, null);
  t.same(kinds(upFor(s, 1000)), ['none', 'none', 'none'], 'withdrawn once only');
});

t.test('a sidecar reaching only a minority of masters never votes nor leads, and takes its vote back', async (t) => {
  const s = setup();
  const votes = { x: 0, y: 0, z: 0 };
  const fresh = () => Object.fromEntries(Object.keys(votes).map((k) => [k, s.clock.ms]));
  let acts = downFor(s, timing.downAfterMs * 3, 500, { mastersReached: 1, liveSidecars: 3, votes: fresh() });
  t.notOk(kinds(acts).includes('vote'));
  t.notOk(kinds(acts).includes('try-lead'));
  t.ok(acts.some((a) => a.kind === 'none' && a.reason === 'reaches only a minority of masters'));
  // vote with the majority, then lose it
  s.clock.advance(500);
  acts = downFor(s, 0, 500, { mastersReached: 2, liveSidecars: 10 });
  t.ok(kinds(acts).includes('vote'));
  s.clock.advance(500);
  acts = downFor(s, 0, 500, { mastersReached: 1, liveSidecars: 10 });
  t.ok(kinds(acts).includes('withdraw-vote'));
  // 5 masters: 3 needed
  const s5 = setup();
  t.notOk(kinds(downFor(s5, timing.downAfterMs, 500, { mastersTotal: 5, mastersReached: 2 })).includes('vote'));
  t.ok(kinds(downFor(s5, 0, 500, { mastersTotal: 5, mastersReached: 3 })).includes('vote'));
});

t.test('the lead is taken only on fresh votes from a majority of live sidecars', async (t) => {
  const s = setup();
  downFor(s, timing.downAfterMs - 500, 500, { liveSidecars: 5 });
  s.clock.advance(500);
  const now = s.clock.ms;
  const attempt = (votes: Record<string, number>, live = 5) => {
    const probe = setup();
    downFor(probe, timing.downAfterMs, 500, { liveSidecars: 100 }); // vote, but too few to lead
    return probe.e.decide(probe.world({ liveSidecars: live, votes: Object.fromEntries(Object.entries(votes).map(([k, d]) => [k, probe.clock.ms - d])) }));
  };
  t.ok(kinds(attempt({ x: 0, y: 0 })).includes('try-lead'), 'two others + self = 3 of 5');
  const lead = attempt({ x: 0, y: 0 }).find((a) => a.kind === 'try-lead');
  t.match(lead, { kind: 'try-lead', resume: false, votes: 3, needed: 3 });
  t.notOk(kinds(attempt({ x: 0 })).includes('try-lead'), 'one other + self = 2 of 5');
  t.match(reasonOf(attempt({ x: 0 })), /2 fresh vote\(s\) of 3 needed/);
  t.notOk(kinds(attempt({ x: 0, me: 0 })).includes('try-lead'), 'its own vote read back is not counted twice');
  t.notOk(kinds(attempt({ x: 0, y: voteFreshMs(timing) + 1 })).includes('try-lead'), 'a vote older than voteFreshMs is ignored');
  t.ok(kinds(attempt({ x: 0, y: timing.downAfterMs * 2 })).includes('try-lead'), 'a vote within voteFreshMs and this outage counts');
  t.notOk(kinds(attempt({ x: 0, y: -timing.downAfterMs - 1 })).includes('try-lead'), 'a vote from the far future is ignored');
  t.notOk(kinds(attempt({ x: 0, y: 0 }, 7)).includes('try-lead'), '3 of 7 is not a majority');
  t.ok(kinds(attempt({ x: 0, y: 0, z: 0 }, 7)).includes('try-lead'), '4 of 7 is');
  t.ok(kinds(attempt({ x: 0, y: 0, z: 0 }, 0)).includes('try-lead'), 'unknown live count: the voters themselves are the population');
  t.notOk(kinds(attempt({}, 2)).includes('try-lead'), 'alone among two is not a majority');
  t.ok(kinds(attempt({}, 1)).includes('try-lead'), 'a lone sidecar leads on its own vote');
  t.ok(now > 0);
});

t.test('votes from before this outage do not count', async (t) => {
  const s = setup();
  downFor(s, timing.downAfterMs); // downSince = start
  const start = s.clock.ms - timing.downAfterMs;
  const acts = s.e.decide(s.world({ liveSidecars: 3, votes: { x: start - timing.downAfterMs - 1 } }));
  t.notOk(kinds(acts).includes('try-lead'), 'x voted before this outage began (less one downAfterMs)');
  const ok = s.e.decide(s.world({ liveSidecars: 3, votes: { x: start - timing.downAfterMs } }));
  t.ok(kinds(ok).includes('try-lead'));
});

t.test('manual mode: reports and votes, but never a lead', async (t) => {
  const s = setup();
  const acts = downFor(s, timing.downAfterMs * 4, 500, { liveSidecars: 1, config: { failover: 'manual' } });
  t.ok(kinds(acts).includes('report'));
  t.ok(kinds(acts).includes('vote'));
  t.notOk(kinds(acts).includes('try-lead'));
  t.ok(acts.some((a) => a.kind === 'none' && a.reason === 'manual fail-over mode'));
});

t.test('only one try-lead at a time, then a backoff with jitter that grows after each lost lock', async (t) => {
  for (const [random, factor] of [
    [0, 0.5],
    [0.5, 1],
    [0.999, 1.499],
  ] as const) {
    const s = setup({ random: () => random });
    const lone = { liveSidecars: 1 };
    const acts = downFor(s, timing.downAfterMs, 500, lone);
    t.equal(acts.filter((a) => a.kind === 'try-lead').length, 1);
    s.clock.advance(500);
    t.notOk(kinds(downFor(s, 0, 500, lone)).includes('try-lead'), 'not while leading');
    let expected = backoffBaseMs(timing);
    for (let loss = 1; loss <= 8; loss++) {
      s.e.leadResult('a', 'lock-lost');
      const wait = Math.round(Math.min(backoffCapMs(timing), expected) * (0.5 + random));
      t.equal(s.e.status()[0]!.backoffUntil - s.clock.ms, wait, `loss ${loss}, random ${random}: ${wait} ms`);
      t.ok(wait >= Math.min(backoffCapMs(timing), expected) * factor - 1);
      s.clock.advance(wait - 1);
      const before = downFor(s, 0, 500, lone);
      t.notOk(kinds(before).includes('try-lead'));
      t.equal(reasonOf(before), 'backing off');
      s.clock.advance(1);
      t.ok(kinds(downFor(s, 0, 500, lone)).includes('try-lead'), 'retries once the backoff is over');
      expected *= 2;
    }
    t.ok(s.e.status()[0]!.backoffUntil - s.clock.ms <= backoffCapMs(timing) * 1.5, 'capped');
  }
});

t.test('after a completed election the new master starts afresh', async (t) => {
  const s = setup();
  downFor(s, timing.downAfterMs, 500, { liveSidecars: 1 });
  s.e.leadResult('a', 'completed');
  const B = '10.0.0.2:6379';
  s.clock.advance(timing.downAfterMs);
  // the configuration now names B; one failed probe of B is not an outage
  s.e.probe('a', B, false);
  const acts = s.e.decide(s.world({ nodes: [{ node: 'a', address: B, votes: { x: s.clock.ms } }], liveSidecars: 1 }));
  t.notOk(kinds(acts).includes('vote'));
  t.notOk(kinds(acts).includes('try-lead'));
  t.equal(s.e.status()[0]!.address, B);
});

t.test('a switch in progress: no new election, votes kept up (an early lead waits on them); a stale one is resumed, in either mode', async (t) => {
  const sw = (since: number, node = 'a'): Switching => ({ node, from: A, to: '10.0.0.2:6379', since, by: 'x' });
  const s = setup();
  downFor(s, timing.downAfterMs, 500, { liveSidecars: 100 });
  t.not(s.e.status()[0]!.votedAt, null);
  s.e.probe('a', A, false);
  let acts = s.e.decide(s.world({ liveSidecars: 1, config: { switching: sw(s.clock.ms - 10) } }));
  t.same(kinds(acts), ['none'], 'the vote stands (no withdrawal), no election');
  t.match(reasonOf(acts), /switch in progress by x/);
  s.e.probe('a', A, true);
  acts = s.e.decide(s.world({ liveSidecars: 1, config: { switching: sw(s.clock.ms - 10) } }));
  t.same(kinds(acts), ['withdraw-vote', 'none'], 'the node answers again: the vote is withdrawn');
  acts = s.e.decide(s.world({ liveSidecars: 1, config: { switching: sw(s.clock.ms - staleSwitchMs(timing) + 1) } }));
  t.notOk(kinds(acts).includes('try-lead'));
  for (const failover of ['auto', 'manual'] as const) {
    const m = setup();
    m.e.probe('a', A, true);
    acts = m.e.decide(m.world({ config: { failover, switching: sw(m.clock.ms - staleSwitchMs(timing)) } }));
    t.match(acts.find((a) => a.kind === 'try-lead'), { resume: true, node: 'a' }, `${failover}: a stale switch is resumed`);
    acts = m.e.decide(m.world({ config: { failover, switching: sw(m.clock.ms - staleSwitchMs(timing)) } }));
    t.notOk(kinds(acts).includes('try-lead'), 'once');
    const minority = setup();
    acts = minority.e.decide(minority.world({ mastersReached: 1, config: { failover, switching: sw(0) } }));
    t.notOk(kinds(acts).includes('try-lead'), 'never from a minority');
  }
  // another node switching: vote, but no second election
  const o = setup();
  acts = downFor(o, timing.downAfterMs, 500, { liveSidecars: 1, config: { switching: sw(0, 'b') } });
  t.ok(kinds(acts).includes('vote'));
  t.notOk(kinds(acts).includes('try-lead'));
  t.ok(acts.some((a) => a.kind === 'none' && /another switch in progress \(b\)/.test(a.reason)));
});

t.test('an intermittent node — up a few seconds, down a few seconds — never causes a vote or an election', async (t) => {
  for (const [up, down] of [
    [2000, 2000],
    [1000, 2500],
    [3000, 2999],
    [500, 2900],
  ] as const) {
    const s = setup();
    const acts: Action[] = [];
    // ten minutes of flapping, with every other sidecar claiming fresh votes all along
    const others = () => ({ x: s.clock.ms, y: s.clock.ms, z: s.clock.ms });
    for (let cycle = 0; cycle < 600_000 / (up + down); cycle++) {
      for (let e = 0; e < up; e += 100) {
        s.e.probe('a', A, true);
        acts.push(...s.e.decide(s.world({ liveSidecars: 4, votes: others() })));
        s.clock.advance(100);
      }
      for (let e = 0; e < down; e += 100) {
        s.e.probe('a', A, false);
        acts.push(...s.e.decide(s.world({ liveSidecars: 4, votes: others() })));
        s.clock.advance(100);
      }
    }
    t.equal(acts.filter((a) => a.kind === 'vote').length, 0, `up ${up} / down ${down}: no vote`);
    t.equal(acts.filter((a) => a.kind === 'try-lead').length, 0, `up ${up} / down ${down}: no election`);
    t.ok(acts.filter((a) => a.kind === 'report').length > 0, 'the outages are still reported');
  }
});

t.test('an intermittent node with outages longer than downAfterMs: votes come and go, and never linger', async (t) => {
  const s = setup();
  let votes = 0;
  let withdrawals = 0;
  for (let cycle = 0; cycle < 20; cycle++) {
    for (const a of upFor(s, 2000, 100, { liveSidecars: 100 })) if (a.kind === 'withdraw-vote') withdrawals++;
    s.clock.advance(100);
    for (const a of downFor(s, 3500, 100, { liveSidecars: 100 })) if (a.kind === 'vote') votes++;
    s.clock.advance(100);
    t.ok(s.e.status()[0]!.votedAt !== null);
  }
  t.equal(votes, 20, 'one vote per outage');
  t.equal(withdrawals, 19, 'withdrawn at each recovery');
});

t.test('every combination of reach, mode, outage, votes and switching obeys the rules', async (t) => {
  const outages = [0, 1, timing.downAfterMs - 1, timing.downAfterMs, timing.downAfterMs * 5];
  const switchings = ['none', 'this-fresh', 'this-stale', 'other'] as const;
  let cases = 0;
  for (const total of [1, 3, 5])
    for (let reached = 0; reached <= total; reached++)
      for (const failover of ['auto', 'manual'] as const)
        for (const outage of [null, ...outages])
          for (let others = 0; others <= 4; others++)
            for (const live of [0, 1, 3, 5, 9])
              for (const sw of switchings) {
                cases++;
                const s = setup();
                if (outage === null) s.e.probe('a', A, true);
                else {
                  s.e.probe('a', A, false);
                  s.clock.advance(outage);
                  s.e.probe('a', A, false);
                }
                const votes: Record<string, number> = {};
                for (let i = 0; i < others; i++) votes[`o${i}`] = s.clock.ms - 100;
                const switching: Switching | null =
                  sw === 'none'
                    ? null
                    : {
                        node: sw === 'other' ? 'b' : 'a',
                        from: A,
                        to: '10.0.0.9:1',
                        since: sw === 'this-stale' ? s.clock.ms - staleSwitchMs(timing) : s.clock.ms - 1,
                        by: 'x',
                      };
                const acts = s.e.decide(
                  s.world({ mastersTotal: total, mastersReached: reached, liveSidecars: live, votes, config: { failover, switching } }),
                );
                const has = (k: string) => acts.some((a) => a.kind === k);
                const lead = acts.find((a) => a.kind === 'try-lead') as Extract<Action, { kind: 'try-lead' }> | undefined;
                const majority = reached >= Math.floor(total / 2) + 1;
                const down = outage !== null && outage >= timing.downAfterMs;
                const shouldVote = majority && down;
                const population = Math.max(live, others + 1, 1);
                const shouldLead = shouldVote && failover === 'auto' && sw === 'none' && others + 1 >= Math.floor(population / 2) + 1;
                const shouldResume = majority && sw === 'this-stale';
                const label = JSON.stringify({ total, reached, failover, outage, others, live, sw });
                if (has('vote') !== shouldVote) t.fail(`vote ${has('vote')} for ${label}`);
                if (!!lead !== (shouldLead || shouldResume)) t.fail(`try-lead ${!!lead} for ${label}`);
                if (lead && lead.resume !== shouldResume) t.fail(`resume ${lead.resume} for ${label}`);
                if (has('report') !== (outage !== null)) t.fail(`report ${has('report')} for ${label}`);
                if (acts.length === 0) t.fail(`no action for ${label}`);
              }
  t.pass(`${cases} cases checked`);
});

t.test('early start: a suspicion after suspectAfterMs, an early lead on a majority of suspicions, never a vote before downAfterMs', async (t) => {
  const pre = suspectAfterMs(timing);
  t.equal(pre, timing.downAfterMs / 2, 'with a lease longer than downAfterMs, suspicion comes at half of it');
  t.equal(suspectAfterMs({ downAfterMs: 5000, leaseMs: 1500 }), 5000 - 1500 - 200 - 2 * 250, 'otherwise early enough for the lease wait, started two alert rounds later, to end about when the votes are in');
  const s = setup({ early: true });
  const acts = downFor(s, pre - 500, 500);
  t.notOk(kinds(acts).includes('suspect'), 'not before suspectAfterMs');
  s.clock.advance(500);
  s.e.probe('a', A, false);
  let now = s.e.decide(s.world({ liveSidecars: 3 }));
  t.ok(kinds(now).includes('suspect'), 'a suspicion at suspectAfterMs');
  t.notOk(kinds(now).includes('vote'), 'no vote');
  t.notOk(kinds(now).includes('try-lead'), 'alone (1 of 3 live): no lead');
  t.match(reasonOf(now), /suspected by 1 of 2 needed to start early/);
  s.e.probe('a', A, false);
  now = s.e.decide(s.world({ liveSidecars: 3, votes: { [suspicionField('o1')]: s.clock.ms - 10 } }));
  const lead = now.find((a) => a.kind === 'try-lead') as Extract<Action, { kind: 'try-lead' }> | undefined;
  t.match(lead, { early: true, resume: false, votes: 2, needed: 2 }, 'two suspicions of three live sidecars: an early lead');
  t.same(s.e.confirmation('a'), { phase: 'suspect', votes: 0, needed: 2 }, 'its confirmation: no votes yet');
  // the outage goes on: votes come, and the leader's confirmation sees them
  s.clock.advance(timing.downAfterMs - pre);
  s.e.probe('a', A, false);
  now = s.e.decide(s.world({ liveSidecars: 3, votes: { o1: s.clock.ms - 5 }, config: { switching: { node: 'a', from: A, to: 'x:1', since: s.clock.ms - 100, by: 'me', early: true } } }));
  t.ok(kinds(now).includes('vote'), 'a vote at downAfterMs, while its own hint is out');
  t.same(s.e.confirmation('a'), { phase: 'down', votes: 2, needed: 2 }, 'a majority of votes: the early lead may promote');
  // the node answers: the confirmation says so, the vote and suspicion are withdrawn
  s.e.probe('a', A, true);
  now = s.e.decide(s.world({ liveSidecars: 3 }));
  t.ok(kinds(now).includes('withdraw-vote'));
  t.equal(s.e.confirmation('a')!.phase, 'up', 'up: an early lead rolls back');
  s.e.leadResult('a', 'rolled-back');
  t.ok(s.e.status()[0]!.backoffUntil > s.clock.ms, 'a rolled-back early lead backs off');
});

t.test('early start obeys the same limits: a minority, manual mode, another switch, or votes only', async (t) => {
  const pre = suspectAfterMs(timing);
  const suspected = (over: WorldOver, opts: { early?: boolean } = { early: true }): Action[] => {
    const s = setup(opts);
    s.e.probe('a', A, false);
    s.clock.advance(pre);
    s.e.probe('a', A, false);
    return s.e.decide(s.world({ liveSidecars: 1, ...over }));
  };
  t.ok(kinds(suspected({})).includes('try-lead'), 'the control: suspected by a majority (1 of 1 live), an early lead');
  const minority = suspected({ mastersReached: 1 });
  t.notOk(kinds(minority).includes('suspect') || kinds(minority).includes('try-lead'), 'from a minority: neither');
  const manual = suspected({ config: { failover: 'manual' } });
  t.ok(kinds(manual).includes('suspect') && !kinds(manual).includes('try-lead'), 'manual mode: a suspicion, no lead');
  const other = suspected({ config: { switching: { node: 'b', from: 'y:1', to: 'z:1', since: 0, by: 'x' } } });
  t.notOk(kinds(other).includes('try-lead'), 'another switch under way: no lead');
  const off = suspected({}, { early: false });
  t.notOk(kinds(off).includes('suspect') || kinds(off).includes('try-lead'), 'earlyStart false: votes only');
  // suspicions older than this outage do not count
  const s = setup({ early: true });
  s.e.probe('a', A, false);
  s.clock.advance(pre);
  s.e.probe('a', A, false);
  const acts = s.e.decide(s.world({ liveSidecars: 3, votes: { [suspicionField('o1')]: s.clock.ms - pre - timing.downAfterMs - 1 } }));
  t.notOk(kinds(acts).includes('try-lead'), 'a suspicion from before this outage does not count');
});

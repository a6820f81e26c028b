/**
 * Sidecar check-ins (docs/protocol.md, "Check-ins"): every CHECK_IN_EVERY-th version round a
 * sidecar records itself in `__cluster__:sidecars` (score: the time) and `__cluster__:sidecars:info`
 * (its JSON) on the masters, and trims entries nobody renewed. `ringside status` lists the live
 * ones; the fail-over agent counts them to pace its seat claims (src/failover/probers.ts).
 */
import type { Timing } from './config';

/** a sidecar checks in (and counts the sidecars) every this many version rounds */
export const CHECK_IN_EVERY = 20;

/** how often a sidecar following the cluster's timing checks in */
export const checkInPeriodMs = (t: Pick<Timing, 'checkMs'>): number => CHECK_IN_EVERY * t.checkMs;

/** a sidecar seen within this is live (status): two check-in periods and a lease, at least three leases */
export const checkInLiveMs = (t: Pick<Timing, 'checkMs' | 'leaseMs'>): number => Math.max(3 * t.leaseMs, 2 * checkInPeriodMs(t) + t.leaseMs);

/** entries older than this are trimmed: never one status still counts live */
export const checkInTrimMs = (t: Pick<Timing, 'checkMs' | 'leaseMs'>): number => Math.max(3 * t.leaseMs, 3 * checkInPeriodMs(t));

/**
 * Check-in trim (KEYS: sidecars zset, sidecars info hash; ARGV: oldest score kept). Removes the
 * stale ids from both, so the info hash does not keep every sidecar that ever ran.
 */
export const TRIM_SIDECARS_SCRIPT = `
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for i = 1, #old, 500 do
  local batch = {}
  for j = i, math.min(i + 499, #old) do batch[#batch + 1] = old[j] end
  redis.call('ZREM', KEYS[1], unpack(batch))
  redis.call('HDEL', KEYS[2], unpack(batch))
end
return #old
`;

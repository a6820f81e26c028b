/** The errors of fail-over: the switch, elections and the calls they make (src/failover). */

export { NoConfigurationError } from '../cluster/errors';

/** A call that did not answer within its bound. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

export class SwitchError extends Error {
  override name = 'SwitchError';
}

/** Another leader holds the election lock (or too few masters answered). */
export class LockNotTakenError extends SwitchError {
  override name = 'LockNotTakenError';
}

/** The lock was lost during the switch (it expired, or another leader took over). */
export class LockLostError extends SwitchError {
  override name = 'LockLostError';
}

/** The configuration no longer calls for this switch: already switched, or another one is under way. */
export class NotSwitchableError extends SwitchError {
  override name = 'NotSwitchableError';
}

/** No replica of the node can be promoted (none configured, none reachable, or `to` is not one). */
export class NoReplicaError extends SwitchError {
  override name = 'NoReplicaError';
}

/** A configuration could not be written to a majority of masters. */
export class SwitchWriteError extends SwitchError {
  override name = 'SwitchWriteError';
}

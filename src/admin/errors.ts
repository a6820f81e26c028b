/** The errors of the admin commands (src/admin): each says what an operator must change. */

export { ConfigWriteError, NoConfigurationError, NoSeedReachableError } from '../cluster/errors';

/** Some address does not answer PING. */
export class UnreachableNodeError extends Error {
  override name = 'UnreachableNodeError';
}

/** A server already holds a cluster configuration and `force` was not given. */
export class AlreadyCreatedError extends Error {
  override name = 'AlreadyCreatedError';
}

/** A replica's link to its master did not come up in time. */
export class ReplicationTimeoutError extends Error {
  override name = 'ReplicationTimeoutError';
}

/** The request cannot be carried out on this configuration (unknown node, slot owned already, ...). */
export class MoveSlotsError extends Error {
  override name = 'MoveSlotsError';
}

/** A slot list such as "100-200,300" is malformed or out of 0..1023. */
export class SlotListError extends Error {
  override name = 'SlotListError';
}

/** Another writer changed the configuration while this move ran. */
export class ConcurrentChangeError extends Error {
  override name = 'ConcurrentChangeError';
}

/** MIGRATE failed, e.g. because keys of the slots already exist on the target. */
export class MigrateError extends Error {
  override name = 'MigrateError';
}

/** `ringside users apply` could not set the data user up on every server. */
export class UsersError extends Error {
  override name = 'UsersError';
}

/** add-replica / remove-replica: a request the cluster cannot take (unknown node, a member already, a server with keys). */
export class ReplicaChangeError extends Error {
  override name = 'ReplicaChangeError';
}

/** `ringside fix` will not run now (a fail-over is under way). */
export class FixRefusedError extends Error {
  override name = 'FixRefusedError';
}

/** rebalance / remove-shard: a plan that cannot be made (unknown node, bad weight, a move already under way). */
export class RebalanceError extends Error {
  override name = 'RebalanceError';
}

/** add-shard / remove-shard: a request the cluster cannot take (a server in use, the last shard, a server with keys). */
export class ShardChangeError extends Error {
  override name = 'ShardChangeError';
}

/** `ringside set`: a change the cluster cannot take now or at all (a fail-over under way, a lease not longer than checkMs). */
export class SetRefusedError extends Error {
  override name = 'SetRefusedError';
}

/** The errors of the data path (src/proxy); the texts clients get are in replies.ts. */

/** A node could not be reached, or stopped answering; `message` is the reply the app gets. */
export class NodeError extends Error {
  override name = 'NodeError';
  readonly address: string;
  /** `auth`: the node refused the credentials (it is up: never a reason to vote it down) */
  readonly kind: 'refused' | 'timeout' | 'lost' | 'protocol' | 'closed' | 'auth';
  constructor(address: string, kind: NodeError['kind'], message: string) {
    super(message);
    this.address = address;
    this.kind = kind;
  }
}

/** The sidecar cannot listen where it was told to. */
export class ListenError extends Error {
  override name = 'ListenError';
}

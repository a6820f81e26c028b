/** The errors of the data path (src/proxy); the texts clients get are in replies.ts. */

/** A node could not be reached, or stopped answering; `message` is the reply the app gets. */
export class NodeError extends Error {
  override name = 'NodeError';
  readonly address: string;
  readonly kind: 'refused' | 'timeout' | 'lost' | 'protocol' | 'closed';
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

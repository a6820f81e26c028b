/**
 * Node's internal `stream_wrap` binding, which the write path (./fast-write) and the read path
 * (./fast-read) use to skip the stream machinery. Each checks the members it needs and falls back
 * to Node's public path when they are not there; `switchedOff` names the environment variable
 * that turns that path off (set to 1).
 */
export interface StreamWrapBinding {
  WriteWrap: unknown;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/** The binding's members as this Node has them (any may be missing), or null if it has none. */
export function streamWrapBinding(switchedOff: string): Partial<StreamWrapBinding> | null {
  if (process.env[switchedOff] === '1') return null;
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    return b.streamBaseState instanceof Int32Array ? b : null;
  } catch {
    return null; // not available in this Node
  }
}

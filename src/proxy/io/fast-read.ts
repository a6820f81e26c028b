/**
 * Reading sockets without the stream machinery.
 *
 * By default every read allocates a 64 KB buffer, wraps what was read in a new Buffer and
 * passes it through Readable.push and a 'data' event. With `onread` (net.Socket's option), Node
 * reads into one buffer we supply and calls us directly: measured with redis-benchmark -P 1 in
 * front of a stand-in server, that is about 1.5 µs of CPU less per read, which at one read per
 * request is a fifth of the sidecar's cost per request (bench/results/profile.md).
 *
 * All sockets share one read buffer: a callback runs to completion before the next read, and
 * copies out the bytes it read (`Buffer.allocUnsafe`, from Node's pool for small reads), because
 * the parser and the reply framer keep views of their input until the next write flush.
 *
 * Accepted client sockets cannot be given `onread` through net.Server, so `adoptClient` moves the
 * accepted handle (the server is created with pauseOnConnect, so nothing was read yet) into a new
 * net.Socket that has it. Should a Node version lack what that needs, the accepted socket is used
 * as it is, with 'data' events: slower, the same behaviour.
 *
 * Even with `onread`, each read goes through Node's `onStreamRead` (the handle's `onread`), which
 * reads half a dozen symbol-keyed properties of the socket, refreshes its idle timer and checks
 * `destroyed` through a getter before it calls us: about 500 instructions a read, a thirtieth of
 * what a request costs at -P 1. `readDirect` gives the handle an `onread` of ours that takes
 * a read's byte count from the stream binding's shared state and calls the callback itself, and
 * leaves everything else (end of stream, errors, zero-byte reads) to Node's `onStreamRead`. What
 * it skips does nothing for these sockets: they never have an idle timeout (`socket.setTimeout`
 * is not used on them), and a destroyed socket's handle is closed, its `onread` replaced by Node,
 * before another read can arrive.
 */
import net from 'node:net';
import { enterRead, leaveRead, clockNow } from './clock';
import { streamWrapBinding } from './stream-binding';

const READ_SIZE = 64 * 1024;
const shared = Buffer.allocUnsafeSlow(READ_SIZE);
// the read bytes of a longer read are copied out through a plain view of `shared`: shared.copy()
// would make that view itself, asking V8 for `shared.buffer` (a call into C++) on every read
const sharedAB = shared.buffer;
const sharedOffset = shared.byteOffset;
// `Buffer` is a getter on the global object (as is `performance`): looked up once, not per read
const allocUnsafe = Buffer.allocUnsafe;

export type ChunkHandler = (chunk: Buffer) => void;

const stream = streamWrapBinding('RINGSIDE_PLAIN_READ');
// without the read count's place in the shared state, reads go through Node's onStreamRead
const streamState = stream && typeof stream.kReadBytesOrError === 'number' ? stream : null;
const readState = streamState ? streamState.streamBaseState! : new Int32Array(1);
const kNread = streamState ? streamState.kReadBytesOrError! : 0;

interface ReadHandle {
  onread: (this: ReadHandle, arrayBuffer: unknown) => unknown;
  /** the `onread` option's callback, called by `directOnRead` */
  ringsideRead?: (n: number) => boolean;
}

/** Node's own `onread` for stream handles (onStreamRead), taken from the first handle adopted. */
let nodeOnRead: ReadHandle['onread'] | null = null;

function directOnRead(this: ReadHandle, arrayBuffer: unknown): unknown {
  const n = readState[kNread]!;
  if (n > 0) {
    this.ringsideRead!(n);
    return undefined;
  }
  return nodeOnRead!.call(this, arrayBuffer);
}

/**
 * Has `socket`'s reads, made with the `onread` option `opts`, call `opts.callback` straight from
 * the handle. Leaves the socket as it is when its handle's `onread` is not Node's usual one or
 * the stream binding is not there. Returns whether it took. `opts` is one made by `onread` below,
 * whose callback never returns false: Node's "stop reading" answer to a false is not kept here
 * (pausing goes through `socket.pause()`, which stops the handle reading, and works as before).
 */
export function readDirect(socket: net.Socket, opts: net.OnReadOpts): boolean {
  const h = (socket as unknown as { _handle: ReadHandle | null })._handle;
  if (streamState === null || h === null || typeof h.onread !== 'function') return false;
  if (nodeOnRead === null) {
    if (h.onread.name !== 'onStreamRead') return false;
    nodeOnRead = h.onread;
  } else if (h.onread !== nodeOnRead) return false;
  h.ringsideRead = opts.callback as (n: number) => boolean;
  h.onread = directOnRead;
  return true;
}

/**
 * The `onread` option for net.connect / new net.Socket: `onChunk` gets a copy it may keep. The
 * clock is read once per read, as it arrives: what `onChunk` completes takes that time
 * (src/proxy/clock.ts).
 */
export function onread(onChunk: ChunkHandler): net.OnReadOpts {
  return {
    buffer: shared,
    callback: (n: number): boolean => {
      const chunk = allocUnsafe(n);
      // a command or a reply at a time is a few dozen bytes: a loop is cheaper than a view and set()
      if (n <= 64) for (let i = 0; i < n; i++) chunk[i] = shared[i]!;
      else chunk.set(new Uint8Array(sharedAB, sharedOffset, n));
      const prev = enterRead(clockNow());
      try {
        onChunk(chunk);
      } finally {
        leaveRead(prev);
      }
      return true;
    },
  };
}

interface SocketInternals {
  _handle: { useUserBuffer?: unknown; readStop?: unknown } | null;
  _server?: net.Server | null;
  server?: net.Server | null;
}

/** Whether this Node can move an accepted handle into a socket with `onread`. */
let adoptable: boolean | null = null;

/**
 * Returns the socket to use for an accepted connection: a new socket on the same handle that
 * reads through `onread`, or `raw` itself with a 'data' listener when that cannot be done.
 * `raw` comes from a server created with `pauseOnConnect: true`; the returned socket is reading.
 */
export function adoptClient(raw: net.Socket, onChunk: ChunkHandler, allowHalfOpen: boolean): net.Socket {
  const r = raw as unknown as SocketInternals;
  const handle = r._handle;
  if (adoptable !== false && handle && typeof handle.useUserBuffer === 'function') {
    try {
      const opts = onread(onChunk);
      const s = new net.Socket({ handle, allowHalfOpen, readable: true, writable: true, onread: opts } as net.SocketConstructorOpts);
      const si = s as unknown as SocketInternals;
      adoptable = true;
      readDirect(s, opts);
      // the server counts its connections through the socket's _server: hand that over
      si._server = si.server = r._server ?? null;
      r._server = r.server = null;
      r._handle = null;
      return s;
    } catch {
      // the constructor refused the handle before taking it: keep the plain socket
      adoptable = false;
    }
  }
  raw.on('data', onChunk);
  raw.resume();
  return raw;
}

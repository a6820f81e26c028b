/**
 * Writing sockets without the stream machinery.
 *
 * `socket.write` goes through Writable (state, a callback, a deferred after-write tick), then
 * `_writeGeneric`, which allocates a write request object for every write, before the bytes reach
 * the handle, which first tries a plain write(2). On loopback that write almost always completes
 * at once, so nearly all of that machinery is bookkeeping for a write that was never pending.
 *
 * `SocketWriter.write` hands the bytes to the handle itself when the socket has nothing queued
 * in its Writable: the handle writes what the kernel takes and queues the rest in libuv, in
 * order, behind anything already queued. One request object is reused while writes complete at
 * once; when a write is left pending, that object stays with it (it keeps the buffer alive until
 * libuv is done) and a new one is made. Bytes left pending are counted (`pending`), and
 * `onDrain` runs when they are all written, as 'drain' does for `socket.write`.
 *
 * Anything else goes through `socket.write` as before: the socket still connecting, its Writable
 * holding data, a Node without the stream binding. Mixing the two keeps the order, because both
 * end in the same libuv write queue, and libuv writes nothing at once while that queue is not
 * empty. `socket.end()` shuts down after every queued write (uv_shutdown waits for them), and
 * `socket.destroy()` cancels them, as it does writes made through `socket.write`.
 */
import net from 'node:net';
import os from 'node:os';
import util from 'node:util';
import { streamWrapBinding } from './stream-binding';

interface WriteReq {
  handle: unknown;
  oncomplete: (this: WriteReq, status: number) => void;
  bytes: number;
  buffer: Uint8Array | null;
  writer: SocketWriter | null;
}

interface WriteBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

interface StreamHandle {
  writeBuffer(req: WriteReq, buf: Uint8Array): number;
}

interface SocketInternals {
  _handle: StreamHandle | null;
  connecting: boolean;
  destroyed: boolean;
  writableLength: number;
  writableEnded: boolean;
}

function loadBinding(): WriteBinding | null {
  const b = streamWrapBinding('RINGSIDE_PLAIN_WRITE');
  // without what it needs, socket.write it is
  return b && typeof b.WriteWrap === 'function' && typeof b.kLastWriteWasAsync === 'number' ? (b as unknown as WriteBinding) : null;
}

const binding = loadBinding();
const ECANCELED = -os.constants.errno.ECANCELED;

/** Whether writes bypass socket.write in this process. */
export const fastWriteAvailable = binding !== null;

let spare: WriteReq | null = null;

/**
 * The key under which net.Socket keeps its handle, the one its `_handle` getter reads. That getter
 * is one function for every socket in the process, so the load inside it has seen every kind of
 * socket and is megamorphic: callgrind put it at ~225 instructions a write at GET -P1 (~300 a
 * request with what it took along). Read with this key at `write`'s own load, it sees only the
 * sockets the sidecar writes to. Found at start-up and checked to be what `_handle` reads; when
 * it is not (another Node), `_handle` it is.
 */
function findHandleKey(): symbol | null {
  try {
    const probe = new net.Socket();
    const slots = probe as unknown as Record<symbol, unknown>;
    const key = Object.getOwnPropertySymbols(probe).find((k) => k.description === 'kHandle');
    if (key === undefined) return null;
    const marker = {};
    slots[key] = marker;
    const same = (probe as unknown as SocketInternals)._handle === marker;
    slots[key] = null;
    return same ? key : null;
  } catch {
    return null;
  }
}

const handleKey = findHandleKey();

/** `socket._handle`, through `handleKey` when there is one (exported for the tests). */
export function handleOf(s: SocketInternals): StreamHandle | null {
  return handleKey !== null ? ((s as unknown as Record<symbol, StreamHandle | null>)[handleKey] ?? null) : s._handle;
}

/** Whether `write` reads the handle through its key (for the tests). */
export const handleKeyFound = handleKey !== null;

/** The error a failed write destroys the socket with, shaped as Node's own (code, errno, syscall). */
function writeError(status: number): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(status);
  const e: NodeJS.ErrnoException = new Error(`write ${code}`);
  e.errno = status;
  e.code = code;
  e.syscall = 'write';
  return e;
}

function onComplete(this: WriteReq, status: number): void {
  const w = this.writer;
  this.writer = null;
  this.buffer = null;
  this.handle = null;
  if (w) w.completed(this.bytes, status);
}

export class SocketWriter {
  readonly #socket: net.Socket;
  readonly #onDrain: (() => void) | null;
  #inflight = 0;

  constructor(socket: net.Socket, onDrain: (() => void) | null = null) {
    this.#socket = socket;
    this.#onDrain = onDrain;
    if (onDrain) socket.on('drain', () => this.#maybeDrained());
  }

  /** Bytes accepted but not yet written to the kernel. */
  get pending(): number {
    return this.#inflight + this.#socket.writableLength;
  }

  write(buf: Uint8Array): void {
    const s = this.#socket as unknown as SocketInternals;
    const h = handleOf(s);
    if (binding === null || h === null || s.connecting || s.destroyed || s.writableEnded || s.writableLength !== 0) {
      this.#socket.write(buf);
      return;
    }
    const req = spare ?? new binding.WriteWrap();
    spare = null;
    req.handle = h;
    req.oncomplete = onComplete;
    req.bytes = buf.length;
    req.buffer = null;
    req.writer = null;
    const err = h.writeBuffer(req, buf);
    if (err !== 0) {
      // not reused: the handle may have attached it to a write it then gave up
      this.#socket.destroy(writeError(err));
      return;
    }
    if (binding.streamBaseState[binding.kLastWriteWasAsync]) {
      // left pending in libuv: the request keeps the buffer alive until it completes
      req.buffer = buf;
      req.writer = this;
      this.#inflight += buf.length;
    } else {
      req.handle = null;
      spare = req;
    }
  }

  /** @internal called when a pending write completes (or is cancelled by a close) */
  completed(bytes: number, status: number): void {
    this.#inflight -= bytes;
    if (this.#socket.destroyed) return; // cancelled by destroy(), or after an error already reported
    if (status < 0 && status !== ECANCELED) {
      this.#socket.destroy(writeError(status));
      return;
    }
    this.#maybeDrained();
  }

  #maybeDrained(): void {
    if (this.#onDrain && this.#inflight === 0 && this.#socket.writableLength === 0) this.#onDrain();
  }
}

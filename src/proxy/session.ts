/**
 * One local client connection.
 *
 *   socket ─▶ RequestParser ─▶ dispatch ─▶ Request ─▶ (node connection FIFO, or answered here)
 *                                              │
 *   socket ◀── OutList ◀── in-order drain ◀── queue (FIFO of this client's requests)
 *
 * Requests enter `queue` in arrival order; a reply is written only when every request before it
 * has been written, so a pipeline that spans several nodes gets its replies in order, and a read's
 * replies wait in `OutList` until the whole read is answered (#holdReplies), so that they leave in
 * one write. When more
 * than `maxInflight` requests wait, or the socket's write buffer is over `outputLimit`, reading
 * from the client pauses until it drains: nothing is dropped. The `mode` handles the states a
 * client can enter (transaction, pub/sub). Where a command goes is not decided here: dispatch
 * (src/proxy/dispatch.ts) hands it to its family, which routes with src/proxy/router.ts and
 * sees this class only through the `Session` interface (src/proxy/context.ts).
 */
import net from 'node:net';
import { Fifo } from './fifo';
import { OutList } from './out-list';
import { Flushable, markDirty } from './flush';
import { SocketWriter, readTime } from './io';
import { ParsedCommand, RequestParser } from '../resp/request-parser';
import { DeferredRequest, LocalRequest, Request, SimpleRequest } from './requests';
import type { Family } from './requests';
import { CommandSpec, lookup } from '../commands/table';
import * as enc from '../resp/encode';
import { NOAUTH } from './replies';
import type { PubSubLike, Session, SessionMode, SidecarContext, TransactionLike } from './context';
import type { NodeConnection } from './node-connection';
import { dispatchCommand } from './dispatch';
import { logger } from '../observe/log';

/** CLIENT REPLY: whether a command's replies are written (Off and SkipThis: dropped) */
const enum Quiet {
  On = 0,
  SkipNext = 1,
  Off = 2,
  SkipThis = 3,
}

/** replies held for the rest of their read (#holdReplies) go out anyway past this many bytes */
const HOLD_BYTES = 64 * 1024;

/** what a client may run before it has authenticated (Redis's no-auth commands) */
const NO_AUTH = new Set(['auth', 'hello', 'quit', 'reset']);

export class ClientSession implements Flushable, Session {
  dirty = false;
  readonly id: number;
  readonly ctx: SidecarContext;
  readonly socket: net.Socket;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt = Date.now();
  name = '';
  authed: boolean;
  user = 'default';
  /** the protocol the client chose with HELLO: 2, or 3 (replies forwarded from RESP3 connections) */
  proto: 2 | 3 = 2;
  lastCommand = '';
  lastActive = Date.now();
  /** wall clock and monotonic time at which the chunk being dispatched arrived */
  now = Date.now();
  t0 = 0;
  closed = false;
  mode: SessionMode | null = null;
  /** channels, patterns and shard channels subscribed (for CLIENT LIST) */
  subs = { channels: 0, patterns: 0, shard: 0 };
  /** the master this client last wrote to (WAIT) */
  lastWriteAddress = '';
  tx: TransactionLike | null = null;
  subscriptions: PubSubLike | null = null;
  /** the client's own connections for blocking commands, by address */
  #dedicated: Map<string, NodeConnection> | null = null;
  readonly #parser: RequestParser;
  readonly #queue = new Fifo<Request>();
  readonly #out = new OutList();
  readonly #writer: SocketWriter;
  #paused = false;
  #closeAfterFlush = false;
  #draining = false;
  #quiet = Quiet.On;
  /** our side is ended (#end): what the client still sends is dropped */
  #ended = false;
  /** the client broke the protocol: like Redis, the connection is closed, not only ended */
  #protocolFailed = false;
  // Replies go out once per read of the client's: a reply waits in #out while later requests of
  // the same read are still being answered by nodes (see #holdReplies). Requests are counted as
  // they leave the queue; a read's end is that count plus the queue's length after its commands.
  /** requests answered and moved to #out since the connection began */
  #drained = 0;
  /** where the oldest read whose replies are not all in #out ends (its end as #drained will count it); 0: none */
  #readEnd = 0;
  /** the same for later reads, oldest first (a client that sends again before it has every reply) */
  #laterReadEnds: number[] | null = null;
  /** set while a read's commands are dispatched: replies made meanwhile wait for the read's end */
  #feeding = false;

  /**
   * `laddr`: the local address when the listener knows it for every connection it accepts;
   * otherwise the socket is asked.
   */
  constructor(socket: net.Socket, ctx: SidecarContext, id: number, listen = true, laddr?: string) {
    this.socket = socket;
    this.ctx = ctx;
    this.authed = !ctx.clientAuth.enabled;
    this.id = id;
    this.addr = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : `unix:${id}`;
    this.laddr = laddr ?? (socket.localAddress ? `${socket.localAddress}:${socket.localPort}` : ctx.options.unixsocket ?? '');
    this.#parser = new RequestParser(
      (cmd) => this.#dispatch(cmd),
      (msg) => this.#protocolError(msg),
      ctx.options.limits,
    );
    // `listen`: the socket reports its chunks to onChunk itself (the sidecar's accepted sockets
    // read through a shared buffer: src/proxy/fast-read.ts)
    if (listen) socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    this.#writer = new SocketWriter(socket, () => this.#checkPressure());
    // A client that half-closes (`printf ... | nc -N`) still gets every reply, then the close.
    // One that is blocked, subscribed or in a transaction is gone, as Redis sees it: close now,
    // which releases its node connections (a blocked command is unblocked on the node).
    socket.on('end', () => {
      if (this.mode !== null || this.#hasBlocked()) socket.destroy();
      else this.drainAndClose();
    });
    socket.on('error', () => this.#onClose());
    socket.on('close', () => this.#onClose());
  }

  /** Bytes from the client (a chunk the session may keep). */
  onChunk(chunk: Buffer): void {
    if (this.#ended) return this.#afterEnd();
    this.ctx.stats.bytesIn += chunk.length;
    // the chunk's commands arrived together and are routed right now: one arrival time for all
    // (the read's, src/proxy/clock.ts; a fresh reading when the socket reads through 'data')
    this.now = this.lastActive = Date.now();
    this.t0 = readTime();
    // nothing pending: the count starts again, so it stays a small integer on a connection that lives for days
    if (this.#readEnd === 0 && this.#queue.length === 0) this.#drained = 0;
    this.#feeding = true;
    try {
      this.#parser.feed(chunk);
    } finally {
      this.#feeding = false;
    }
    if (this.#queue.length !== 0) {
      const end = this.#drained + this.#queue.length;
      if (this.#readEnd === 0) this.#readEnd = end;
      else if (end > (this.#laterReadEnds?.at(-1) ?? this.#readEnd)) (this.#laterReadEnds ??= []).push(end);
    }
    if (!this.#out.empty && !this.#holdReplies()) markDirty(this);
    this.#checkPressure();
  }

  /**
   * Whether the replies in #out wait for more: they do while the oldest read that has requests
   * still unanswered is not done, the next request is a plain command waiting for one node's
   * reply (a SimpleRequest that is not a blocking command: a blocking command, WAIT, a command
   * split or fanned out over several nodes and a local answer never hold replies back), and fewer
   * than HOLD_BYTES wait. A pipeline spanning several nodes then gets one write for its read
   * instead of one for each node's turn, and the client one read. A reply waits at most as long
   * as the slowest request of its own read: until its node answers or the request fails (the
   * node connection's timeout). Replies are never held for a later read.
   */
  #holdReplies(): boolean {
    while (this.#readEnd !== 0 && this.#drained >= this.#readEnd) {
      const later = this.#laterReadEnds;
      this.#readEnd = later !== null && later.length !== 0 ? later.shift()! : 0;
    }
    if (this.#readEnd === 0 || this.#out.bytes >= HOLD_BYTES) return false;
    const head = this.#queue.peek();
    return head instanceof SimpleRequest && head.family !== 'blocking';
  }

  get inflight(): number {
    return this.#queue.length;
  }
  get queuedBytes(): number {
    return this.#parser.buffered;
  }
  get outputBytes(): number {
    return this.#out.bytes + this.#writer.pending;
  }

  // ---------------------------------------------------------------- ordering and output

  /** Adds a request at the tail of this client's FIFO. */
  enqueue(req: Request): void {
    // CLIENT REPLY OFF/SKIP drop replies, not pub/sub's (confirmations are sent as pushes, in RESP2 too)
    if (this.#quiet >= Quiet.Off && req.family !== 'pubsub') req.silent = true;
    this.#queue.push(req);
  }

  completed(req: Request): void {
    if (req !== this.#queue.peek()) return;
    const stats = this.ctx.stats;
    const slowlog = this.ctx.slowlog;
    const now = readTime();
    let r: Request | undefined;
    while ((r = this.#queue.peek()) !== undefined && r.done) {
      this.#queue.shift();
      this.#drained++;
      if (!this.closed && !r.silent) this.#out.add(r.rbuf!, r.rs, r.re);
      const sec = now > r.t0 ? (now - r.t0) / 1000 : 0;
      const usec = sec * 1e6;
      stats.recordCommand(r.name, r.refused ? 'refused' : r.isError ? 'error' : 'ok', usec);
      stats.family(r.family).observe(sec);
      if (r.nodes !== null) for (const n of r.nodes) stats.node(n).observe(sec);
      else if (r.nodeLatency !== null) r.nodeLatency.observe(sec);
      else if (r.node) stats.node(r.node).observe(sec);
      if (slowlog.threshold >= 0 && usec >= slowlog.threshold) slowlog.maybeAdd(usec, this.#argsOf(r), { addr: this.addr, name: this.name }, r.node);
    }
    if (r !== undefined && r.deferred) (r as DeferredRequest).start();
    if (!this.#out.empty && !this.#feeding && !this.#holdReplies()) markDirty(this);
    if (this.#paused) this.#checkPressure();
    if (this.#draining && this.#queue.length === 0) this.#maybeEnd();
  }

  /** Writes a reply now (pub/sub pushes): after whatever is queued, in order. */
  push(buf: Buffer): void {
    if (this.closed) return;
    if (this.#queue.length === 0) {
      this.#out.addBuffer(buf);
      markDirty(this);
    } else {
      const req = new LocalRequest(this, 'push', 'pubsub', readTime());
      this.#queue.push(req);
      req.completeWith(buf);
    }
  }

  #argsOf(r: Request): string[] {
    if (r instanceof SimpleRequest) {
      try {
        const out: string[] = [];
        const p = new RequestParser((c) => {
          for (let i = 0; i < c.argc && i < 32; i++) out.push(c.argString(i));
        }, () => undefined);
        p.feed(r.cbuf.subarray(r.cs, r.ce));
        return out;
      } catch {
        /* fall through */
      }
    }
    return [r.name];
  }

  flush(): void {
    if (this.#out.empty || this.closed) return;
    const n = this.#out.bytes;
    this.ctx.stats.bytesOut += n;
    this.#writer.write(this.#out.take());
    const pending = this.#writer.pending;
    if (pending > this.ctx.options.outputLimit) {
      if (this.ctx.options.outputHardLimit > 0 && pending > this.ctx.options.outputHardLimit) {
        logger.warn('client-output-limit', { client: this.addr, id: this.id, bytes: pending });
        this.socket.destroy();
        return;
      }
      this.#checkPressure();
    }
    if (this.#closeAfterFlush && this.#queue.length === 0) this.#end();
  }

  #checkPressure(): void {
    if (this.closed) return;
    const over = this.#queue.length > this.ctx.options.maxInflight || this.#writer.pending > this.ctx.options.outputLimit;
    if (over && !this.#paused) {
      this.#paused = true;
      this.socket.pause();
    } else if (!over && this.#paused && this.#queue.length <= this.ctx.options.maxInflight / 2 && !this.#closeAfterFlush) {
      this.#paused = false;
      this.socket.resume();
    }
  }

  /**
   * The client's bytes cannot be parsed: the error is answered, and the connection closed once it
   * is written, as Redis does (CLIENT_CLOSE_AFTER_REPLY): what the client sends after the error
   * is never read as commands, and a client that keeps sending gets a reset (#afterEnd), so it
   * sees the connection close instead of writing into it forever.
   */
  #protocolError(msg: string): void {
    this.reply('protocol', enc.error(`ERR ${msg}`), true);
    this.#closeAfterFlush = true;
    this.#protocolFailed = true;
    this.socket.pause();
  }

  /** Bytes after our side ended: dropped; after a protocol error, the connection is reset. */
  #afterEnd(): void {
    if (this.#protocolFailed) this.socket.destroy();
  }

  #onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.#out.clear();
    this.mode?.close();
    this.mode = null;
    this.tx?.close();
    this.subscriptions?.close();
    if (this.#dedicated !== null) {
      for (const c of this.#dedicated.values()) c.close('closed: the client went away');
      this.#dedicated.clear();
    }
    this.ctx.sessionClosed(this);
  }

  abort(): void {
    this.#parser.stopped = true;
    this.#out.clear();
    this.socket.destroy();
  }

  /** Stop reading; end the connection once every request has been answered (graceful stop). */
  drainAndClose(): void {
    this.#draining = true;
    this.#parser.stopped = true;
    this.socket.pause();
    this.#maybeEnd();
  }

  /**
   * Ends our side once the last reply is written. Reading resumes (what arrives is dropped: the
   * parser has stopped) so the client's own close is seen and the socket is released; a paused
   * socket reading through onread would never see it. Closing with unread input instead would
   * make the kernel send a reset, which can discard replies the client has not read yet.
   */
  #end(): void {
    this.#ended = true;
    this.socket.end();
    this.socket.resume();
  }

  #maybeEnd(): void {
    if (this.#queue.length === 0) {
      this.#closeAfterFlush = true;
      if (this.#out.empty) this.#end();
      else markDirty(this);
    }
  }

  /** Queues an answer the sidecar makes itself. */
  reply(name: string, buf: Buffer, refused = false, family: Family = 'local'): void {
    const req = new LocalRequest(this, name, family, readTime());
    req.refused = refused;
    if (this.#quiet >= Quiet.Off) req.silent = true;
    this.#queue.push(req);
    req.completeWith(buf);
  }

  refuse(name: string, message: string): void {
    this.reply(name, enc.error(message), true);
  }

  quit(): void {
    this.reply('quit', enc.OK);
    this.#closeAfterFlush = true;
    this.#parser.stopped = true;
    this.socket.pause();
    if (this.#queue.length === 0) markDirty(this);
  }

  #hasBlocked(): boolean {
    if (this.#dedicated !== null) for (const c of this.#dedicated.values()) if (c.inflight > 0) return true;
    return false;
  }

  /**
   * CLIENT PAUSE: commands it covers wait (in order, with everything the client sends after
   * them) until the pause ends or CLIENT UNPAUSE. The sidecar's own commands (CLIENT, PING,
   * INFO, ...) are not held, so UNPAUSE gets through; WRITE mode holds writes, scripts and
   * PUBLISH, as Redis does.
   */
  #held: Buffer[] | null = null;
  #pausable(spec: CommandSpec | undefined): boolean {
    if (spec === undefined || spec.handling === 'local') return false;
    if (this.ctx.pauseMode === 'all') return true;
    return spec.write || spec.handling === 'script' || spec.name === 'publish' || spec.name === 'spublish' || spec.name === 'wait';
  }
  #hold(cmd: ParsedCommand): void {
    if (this.#held === null) {
      this.#held = [];
      // nothing more is read from a held client: what it sends waits in the kernel, not here
      this.socket.pause();
      const retry = setInterval(() => {
        if (this.closed) return clearInterval(retry);
        if (this.ctx.pausedUntil > Date.now()) return;
        clearInterval(retry);
        const held = this.#held!;
        this.#held = null;
        this.now = Date.now();
        this.t0 = readTime();
        const replay = new RequestParser((c) => this.#dispatch(c), () => undefined, this.ctx.options.limits);
        for (const b of held) replay.feed(b);
        if (this.#held === null && !this.#paused && !this.#closeAfterFlush) this.socket.resume();
        this.#checkPressure();
      }, 20);
      retry.unref();
    }
    // a view of the client's chunk (never reused) or, for an inline command, a fresh buffer
    this.#held.push(cmd.toResp());
  }

  /** RESET: leave transactions and pub/sub; the next use starts afresh. */
  resetModes(): void {
    this.mode = null;
    this.#quiet = Quiet.On;
    this.tx?.resetState();
    this.tx = null;
    this.subscriptions?.close();
    this.subscriptions = null;
    this.subs = { channels: 0, patterns: 0, shard: 0 };
  }

  /** The connection for commands to `addr`: the pinned one while WATCH holds it, else shared. */
  connFor(addr: string): NodeConnection {
    const tx = this.tx;
    if (tx !== null && tx.conn !== null && tx.conn.address === addr) return tx.conn;
    return this.ctx.pool.get(addr, this.id, this.proto);
  }

  /** The null reply in the client's protocol. */
  get nullReply(): Buffer {
    return this.proto === 3 ? enc.NULL3 : enc.NULL_BULK;
  }

  /** The client's own connections that wait on a blocking command now. */
  blockedConnections(): NodeConnection[] {
    const out: NodeConnection[] = [];
    if (this.#dedicated !== null) for (const c of this.#dedicated.values()) if (c.inflight > 0) out.push(c);
    return out;
  }

  /** The client's own connection to `addr` for blocking commands. */
  dedicatedFor(addr: string): NodeConnection {
    const all = (this.#dedicated ??= new Map());
    let c = all.get(addr);
    if (!c || c.state === 'closed' || c.state === 'down') {
      c = this.ctx.pool.dedicated(addr, this.proto);
      all.set(addr, c);
    }
    return c;
  }

  /** Starts a deferred request that has reached the head of the queue. */
  startDeferred(): void {
    const head = this.#queue.peek();
    if (head !== undefined && head.deferred) (head as DeferredRequest).start();
  }

  // ---------------------------------------------------------------- dispatch

  #dispatch(cmd: ParsedCommand): void {
    const t0 = this.t0;
    const spec = lookup(cmd);
    // as in Redis: an unknown command is named as such first; a known one waits for AUTH
    if (!this.authed && spec !== undefined && !NO_AUTH.has(spec.name)) return this.refuse(spec.name, NOAUTH);
    if (this.#held !== null || (this.ctx.pausedUntil > this.now && this.#pausable(spec))) return this.#hold(cmd);
    if (this.#quiet === Quiet.SkipNext) return this.#dispatchSkipped(cmd, spec, t0);
    if (this.mode && this.mode.dispatch(cmd, spec, t0)) return;
    this.dispatchNormal(cmd, spec, t0);
  }

  /** The command after CLIENT REPLY SKIP: run, its replies dropped. */
  #dispatchSkipped(cmd: ParsedCommand, spec: CommandSpec | undefined, t0: number): void {
    this.#quiet = Quiet.SkipThis;
    try {
      if (!(this.mode && this.mode.dispatch(cmd, spec, t0))) this.dispatchNormal(cmd, spec, t0);
    } finally {
      if (this.#quiet === Quiet.SkipThis) this.#quiet = Quiet.On;
    }
  }

  /** CLIENT REPLY ON / OFF / SKIP: whether the replies of this client's commands are written. */
  replyMode(mode: 'on' | 'off' | 'skip'): void {
    if (mode === 'on') {
      this.#quiet = Quiet.On;
      this.reply('client', enc.OK);
    } else if (mode === 'off') this.#quiet = Quiet.Off;
    else if (this.#quiet !== Quiet.Off) this.#quiet = Quiet.SkipNext;
  }

  dispatchNormal(cmd: ParsedCommand, spec: CommandSpec | undefined, t0: number): void {
    dispatchCommand(this, cmd, spec, t0);
  }
}

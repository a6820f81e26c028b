/**
 * One pipelined connection to a data node, shared by many client sessions.
 *
 *   sessions ──send(bytes, pending)──▶ out (OutList) ──flush once per loop turn──▶ node socket
 *                                      pending FIFO  ◀──ReplyFramer: one reply per entry── node socket
 *
 * Replies come back in the order the commands were written, so the FIFO head always owns the
 * next reply. Commands are timed per write, not per command: each flush records when it wrote
 * and how many replies the connection will have received once its last command is answered, so
 * the clock is read once per write (many commands at a time when pipelined) instead of once per
 * command. When the socket fails or the oldest unanswered write outlives `timeoutMs`, every entry in
 * the FIFO gets a NodeError naming the node (a command already written may or may not have run),
 * the connection is marked down, and commands sent while it is down fail at once until the retry
 * delay has passed; then the next command reconnects.
 */
import net from 'node:net';
import tls from 'node:tls';
import { isTlsError, nodeTls } from '../cluster/node-tls';
import { Fifo } from './fifo';
import { OutList } from './out-list';
import { Flushable, markDirty } from './flush';
import { ReplyFramer } from '../resp/reply-framer';
import { splitAddress } from '../cluster/config';
import type { Histogram } from '../observe/stats';
import { SocketWriter, onread, readDirect } from './io';
import * as text from './replies';
import { NodeError } from './errors';
import { Durability, Pending, WaitGroup, isWriteCommand } from './durability';
export { NodeError } from './errors';

export type { Pending } from './durability';

export interface NodeConnectionOptions {
  /** a command unanswered this long fails the connection; 0 = never (dedicated blocking links) */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** after a failure, commands fail fast for this long before a reconnect is tried */
  retryDelayMs: number;
  /** label used in errors, e.g. "node a (127.0.0.1:7001)" */
  label?: string;
  onDown?: (conn: NodeConnection, err: NodeError) => void;
  onUp?: (conn: NodeConnection) => void;
  onBytesOut?: (n: number) => void;
  /** where the latency of commands answered on this connection is counted (per node) */
  latency?: Histogram;
  /**
   * Made at every connect (credentials may have changed since the last): bytes written to the
   * node first (AUTH, HELLO 3), and how many replies they get. Those replies are not passed on;
   * an error among them fails the connection with `handshakeError(reply)` as its message.
   */
  handshake?: () => { bytes: Buffer; replies: number } | null;
  handshakeError?: (nodeMessage: string) => string;
}

type State = 'idle' | 'connecting' | 'ready' | 'down' | 'closed';

export class NodeConnection implements Flushable {
  readonly address: string;
  dirty = false;
  #opts: NodeConnectionOptions;
  #socket: net.Socket | null = null;
  #writer: { write(buf: Uint8Array): void } | null = null;
  #state: State = 'idle';
  #pending = new Fifo<Pending>();
  /** per unanswered write: when it was made, and the reply count (`#answered`) that completes it */
  #writtenAt = new Fifo<number>();
  #writtenUpTo = new Fifo<number>();
  /** replies received (and handed to a pending entry) since the connection was last reset */
  #answered = 0;
  #out = new OutList();
  #framer: ReplyFramer;
  #retryAt = 0;
  #lastError: NodeError | null = null;
  #timer: NodeJS.Timeout | null = null;
  #swallow = 0;
  #durable: Durability | null = null;
  /** the writes queued since the last flush, awaiting their WAIT */
  #group: WaitGroup | null = null;

  constructor(address: string, opts: NodeConnectionOptions) {
    this.address = address;
    this.#opts = opts;
    this.#framer = new ReplyFramer(
      (buf, s, e, type) => this.#reply(buf, s, e, type),
      (msg) => this.#fail('protocol', text.nodeMalformed(this.label, msg)),
    );
  }

  /** the per-node latency histogram, when the pool gave one */
  get latency(): Histogram | null {
    return this.#opts.latency ?? null;
  }

  get label(): string {
    return this.#opts.label ?? `node ${this.address}`;
  }
  get state(): State {
    return this.#state;
  }
  /** the local port of the live socket (how the node's CLIENT LIST names this connection), or 0 */
  get localPort(): number {
    return this.#socket?.localPort ?? 0;
  }
  get inflight(): number {
    return this.#pending.length;
  }
  get lastError(): NodeError | null {
    return this.#lastError;
  }
  /** true while commands sent now fail at once */
  get failingFast(): boolean {
    return this.#state === 'down' && Date.now() < this.#retryAt;
  }

  /**
   * Durable mode (durability.ts): the replies of writes are held until a WAIT that follows them
   * in the same flush confirms a replica. null (the default): nothing is held.
   */
  setDurability(d: Durability | null): void {
    this.#durable = d;
  }

  /** Queues `buf[start, end)` (one or more whole commands) and the entry awaiting its reply. */
  send(buf: Buffer, start: number, end: number, p: Pending): void {
    this.#enqueue(buf, start, end, p, 1);
  }

  /** Queues several commands whose replies are all handled by `p` (one onReply per reply). */
  sendMany(buf: Buffer, p: Pending, replies: number): void {
    this.#enqueue(buf, 0, buf.length, p, replies);
  }

  #enqueue(buf: Buffer, start: number, end: number, p: Pending, replies: number): void {
    if (this.#state !== 'ready') {
      if (this.#state === 'closed') {
        p.onError(new NodeError(this.address, 'closed', text.nodeConnectionLost(this.label, 'was closed')));
        return;
      }
      if (this.#state === 'down' && Date.now() < this.#retryAt) {
        p.onError(this.#lastError!);
        return;
      }
      if (this.#state !== 'connecting') this.#connect();
    }
    if (this.#durable !== null && isWriteCommand(buf, start, end)) {
      const g = (this.#group ??= new WaitGroup(this.#durable, this.label));
      for (let i = 0; i < replies; i++) this.#pending.push(g.hold(p));
    } else for (let i = 0; i < replies; i++) this.#pending.push(p);
    this.#out.add(buf, start, end);
    if (this.#state === 'ready') markDirty(this);
  }

  flush(): void {
    if (this.#state !== 'ready' || this.#out.empty || !this.#socket) return;
    const g = this.#group;
    if (g !== null) {
      // one WAIT per flushed batch that holds a write, right behind it
      this.#group = null;
      const w = g.bytes();
      this.#out.add(w, 0, w.length);
      this.#pending.push(g);
    }
    const n = this.#out.bytes;
    if (this.#opts.timeoutMs > 0) {
      this.#writtenAt.push(Date.now());
      this.#writtenUpTo.push(this.#answered + this.#pending.length);
    }
    this.#writer!.write(this.#out.take());
    this.#opts.onBytesOut?.(n);
  }

  #connect(): void {
    this.#state = 'connecting';
    const { host, port } = splitAddress(this.address);
    let sock: net.Socket;
    const useTls = nodeTls.enabled;
    if (useTls) {
      // TLS: Node's own stream path for reads and writes (the handle-level shortcuts are for plain sockets)
      sock = tls.connect(nodeTls.connectOptions(host, port));
      sock.setNoDelay(true);
      sock.on('data', (chunk: Buffer) => this.#framer.push(chunk));
      this.#writer = { write: (b) => void sock.write(b) };
    } else {
      const readOpts = onread((chunk) => this.#framer.push(chunk));
      sock = net.connect({ host, port, noDelay: true, onread: readOpts });
      readDirect(sock, readOpts);
      this.#writer = new SocketWriter(sock);
    }
    this.#socket = sock;
    this.#framer.reset();
    const connectTimer = setTimeout(() => {
      if (this.#socket === sock && this.#state === 'connecting')
        this.#fail('timeout', text.nodeConnectTimeout(this.label, this.#opts.connectTimeoutMs));
    }, this.#opts.connectTimeoutMs);
    sock.once(useTls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      if (this.#socket !== sock) return;
      sock.setKeepAlive(true, 10_000);
      const hs = this.#opts.handshake?.();
      if (hs && hs.replies > 0) {
        // commands wait until the node has accepted the handshake: none may run as another user.
        // Its reply is a command's reply: it gets a command's time (a busy node is not a down one)
        this.#swallow = hs.replies;
        const ms = this.#opts.timeoutMs > 0 ? this.#opts.timeoutMs : Math.max(5000, this.#opts.connectTimeoutMs);
        this.#connectTimer = setTimeout(() => {
          if (this.#socket === sock && this.#state === 'connecting') this.#fail('timeout', text.nodeTimeout(this.label, ms));
        }, ms);
        sock.write(hs.bytes);
        return;
      }
      this.#ready();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (this.#socket !== sock) return;
      const refused = this.#state === 'connecting';
      // TLS refusing the peer is a setting to fix, not a node that is down: never a reason to vote
      if (isTlsError(err)) return this.#fail('auth', text.nodeTlsFailed(this.label, `${err.code ?? ''} ${err.message}`.trim()));
      this.#fail(
        refused ? 'refused' : 'lost',
        refused ? text.nodeUnreachable(this.label, err.code ?? err.message) : text.nodeLost(this.label, err.code ?? err.message),
      );
    });
    sock.on('close', () => {
      clearTimeout(connectTimer);
      if (this.#socket !== sock) return;
      this.#fail(
        this.#state === 'connecting' ? 'refused' : 'lost',
        this.#state === 'connecting' ? text.nodeUnreachable(this.label, 'connection closed') : text.nodeLost(this.label, ''),
      );
    });
    if (this.#opts.timeoutMs > 0 && !this.#timer) {
      this.#timer = setInterval(() => this.#checkTimeout(), Math.max(50, Math.min(1000, this.#opts.timeoutMs / 4)));
      this.#timer.unref();
    }
  }

  #connectTimer: NodeJS.Timeout | null = null;

  /** Connected (and the handshake accepted): what was queued meanwhile goes out. */
  #ready(): void {
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    this.#state = 'ready';
    this.#opts.onUp?.(this);
    this.flush();
  }

  #checkTimeout(): void {
    const t = this.#writtenAt.peek();
    if (t !== undefined && this.#state === 'ready' && Date.now() - t > this.#opts.timeoutMs)
      this.#fail('timeout', text.nodeTimeout(this.label, this.#opts.timeoutMs));
  }

  #reply(buf: Buffer, s: number, e: number, type: number): void {
    if (this.#swallow > 0) {
      this.#swallow--;
      if (type === 0x2d) {
        const msg = buf.toString('utf8', s + 1, e - 2);
        this.#swallow = 0;
        this.#fail('auth', this.#opts.handshakeError?.(msg) ?? text.nodeMalformed(this.label, msg));
      } else if (this.#swallow === 0 && this.#state === 'connecting') this.#ready();
      return;
    }
    const p = this.#pending.shift();
    if (p === undefined) return;
    const answered = ++this.#answered;
    // the oldest write is answered with its last command's reply
    if (this.#writtenUpTo.peek() === answered) {
      this.#writtenUpTo.shift();
      this.#writtenAt.shift();
    }
    p.onReply(buf, s, e, type);
  }

  #fail(kind: NodeError['kind'], message: string): void {
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    const err = new NodeError(this.address, kind, message);
    const sock = this.#socket;
    this.#socket = null;
    if (sock) sock.destroy();
    this.#lastError = err;
    this.#state = this.#state === 'closed' ? 'closed' : 'down';
    this.#retryAt = Date.now() + this.#opts.retryDelayMs;
    this.#out.clear();
    this.#group = null;
    this.#writtenAt.drain();
    this.#writtenUpTo.drain();
    this.#answered = 0;
    const failed = this.#pending.drain();
    this.#framer.reset();
    for (const p of failed) p.onError(err);
    if (this.#state === 'down') this.#opts.onDown?.(this, err);
  }

  /** Fails what is in flight and refuses further commands. */
  close(reason = 'closed'): void {
    if (this.#state === 'closed') return;
    const wasLive = this.#socket !== null;
    this.#state = 'closed';
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (wasLive || this.#pending.length > 0) this.#fail('closed', text.nodeConnectionLost(this.label, reason));
  }

  /** Closes once every command in flight has been answered. */
  closeWhenIdle(): void {
    if (this.#pending.length === 0 && this.#out.empty) this.close();
    else {
      const t = setInterval(() => {
        if (this.#pending.length === 0 || this.#state !== 'ready') {
          clearInterval(t);
          this.close();
        }
      }, 50);
      t.unref();
    }
  }
}

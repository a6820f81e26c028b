/**
 * MULTI/EXEC/DISCARD/WATCH/UNWATCH.
 *
 * WATCH pins the client to the master of its keys' slot on a dedicated connection (the watch
 * lives on a node connection); while pinned, every command of the client for that node goes
 * over it, so a read between WATCH and MULTI runs after the WATCH. MULTI is answered here and the
 * commands that follow are checked (known, arity, one slot for all keys) and queued here with
 * +QUEUED; a command for another slot is answered with CROSSSLOT and makes EXEC fail with
 * EXECABORT, as Redis does for a bad command in a transaction. EXEC writes MULTI, the queued
 * commands and EXEC in one piece to the node (the pinned connection, or the shared one when
 * nothing is watched: nothing can come between them on that stream) and forwards EXEC's reply.
 *
 * PUBLISH and SPUBLISH in a transaction (issue 21: a task framework stores a result and publishes
 * it in one MULTI) are queued here, not on the node: a message belongs on the hub or on its
 * channel's shard, not on the transaction's node. Once EXEC has succeeded, each is sent in the
 * order given (to the same places as outside a transaction), and its receiver count is put into
 * EXEC's reply at its place; when EXEC fails (WATCH, an error, EXECABORT) none is sent. So, as with
 * one Redis, a subscriber sees a message after the transaction's writes, once, and the client sees
 * each publish's count.
 */
import type { ParsedCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import { arityOk } from '../commands/table';
import type { Session, TransactionLike } from './context';
import type { NodeConnection, NodeError } from './node-connection';
import { Request } from './requests';
import { MIGRATING, nodeFor, refusalFor, anyMaster, slotOf } from './router';
import { masterOrRefuse, routingOrRefuse } from './keyed';
import * as text from './replies';
import * as enc from '../resp/encode';
import { arrayElements } from '../resp/reply-framer';
import { slotOfBytes } from '../cluster/slot';

const MULTI = Buffer.from('*1\r\n$5\r\nMULTI\r\n');
const EXEC = Buffer.from('*1\r\n$4\r\nEXEC\r\n');
const UNWATCH = Buffer.from('*1\r\n$7\r\nUNWATCH\r\n');

/** EXEC's reply is the last of n+2 replies (MULTI, each queued command, EXEC). */
class ExecRequest extends Request {
  #left: number;
  constructor(s: Session, t0: number, replies: number) {
    super(s, 'exec', 'transaction', t0);
    this.#left = replies;
  }
  onReply(buf: Buffer, start: number, end: number): void {
    if (--this.#left === 0) this.complete(buf, start, end);
  }
  override onError(err: NodeError): void {
    this.#left = -1;
    this.fail(text.execAbortedBy(err.message));
  }
}

/** A PUBLISH or SPUBLISH queued in MULTI: where its count goes in EXEC's reply. */
interface QueuedPublish {
  /** its place among the transaction's commands */
  at: number;
  name: 'publish' | 'spublish';
  raw: Buffer;
  channel: Buffer;
}

/** EXEC with publishes: the node's EXEC reply, then the publishes, then one merged reply. */
class ExecPublishRequest extends Request {
  #left: number;
  readonly #then: (exec: Buffer | null) => void;
  constructor(s: Session, t0: number, replies: number, then: (exec: Buffer | null) => void) {
    super(s, 'exec', 'transaction', t0);
    this.#left = replies;
    this.#then = then;
  }
  onReply(buf: Buffer, start: number, end: number): void {
    // a copy: the framer's buffer is not ours to keep while the publishes go out
    if (--this.#left === 0) this.#then(Buffer.from(buf.subarray(start, end)));
  }
  override onError(err: NodeError): void {
    if (this.#left < 0) return;
    this.#left = -1;
    this.fail(text.execAbortedBy(err.message));
    this.#then(null);
  }
}

/** A command forwarded on the pinned connection (WATCH, reads while watching). */
class PinnedRequest extends Request {
  onReply(buf: Buffer, start: number, end: number): void {
    this.complete(buf, start, end);
  }
}

export class TransactionState implements TransactionLike {
  readonly #s: Session;
  /** dedicated connection holding the WATCH, if any */
  conn: NodeConnection | null = null;
  slot = -1;
  inMulti = false;
  #queued: Buffer[] = [];
  #publishes: QueuedPublish[] = [];
  /** transactions whose publishes are not all answered yet; later publishes of the client wait for them */
  #publishing = 0;
  #chain: Promise<void> = Promise.resolve();
  #aborted = false;
  #connLost = false;

  constructor(s: Session) {
    this.#s = s;
  }

  get queuedCount(): number {
    return this.inMulti ? this.#queued.length + this.#publishes.length : -1;
  }

  /** true while a transaction's publishes are going out: the client's later PUBLISH waits (src/proxy/pubsub.ts) */
  get publishesPending(): boolean {
    return this.#publishing > 0;
  }

  get pinnedAddress(): string | null {
    return this.conn ? this.conn.address : null;
  }

  dispatch(cmd: ParsedCommand, spec: CommandSpec | undefined, t0: number): boolean {
    const s = this.#s;
    if (!this.inMulti) return false; // WATCH state: normal dispatch, pinned routing
    const name = spec?.name;
    if (name === 'exec') {
      this.#exec(t0);
      return true;
    }
    if (name === 'discard') {
      this.#reset();
      s.reply('discard', enc.OK, false, 'transaction');
      return true;
    }
    if (name === 'multi') {
      s.refuse('multi', text.MULTI_NESTED);
      return true;
    }
    if (name === 'watch') {
      s.refuse('watch', text.WATCH_IN_MULTI);
      return true;
    }
    if (name === 'quit' || name === 'reset') return false;
    if (!spec) {
      this.#aborted = true;
      return false; // normal dispatch answers "unknown command"
    }
    if (!arityOk(spec, cmd.argc)) {
      this.#aborted = true;
      return false;
    }
    const h = spec.handling;
    if (spec.name === 'publish' || spec.name === 'spublish') {
      this.#publishes.push({ at: this.#queued.length + this.#publishes.length, name: spec.name, raw: Buffer.from(cmd.toResp()), channel: Buffer.from(cmd.arg(1)) });
      s.reply(spec.name, enc.QUEUED, false, 'transaction');
      return true;
    }
    if (h === 'fanout' || h === 'pubsub' || h === 'refused' || h === 'transaction' || spec.name === 'wait' || (h === 'script' && (spec.name === 'script' || spec.name === 'function'))) {
      this.#aborted = true;
      s.refuse(spec.name, text.notInTransaction(spec.name));
      return true;
    }
    const slot = slotOf(spec, cmd);
    if (typeof slot === 'string' && slot !== '') {
      this.#aborted = true;
      s.refuse(spec.name, slot);
      return true;
    }
    if (typeof slot === 'number') {
      if (this.slot === -1) this.slot = slot;
      else if (slot !== this.slot) {
        this.#aborted = true;
        s.refuse(spec.name, text.CROSSSLOT_TX);
        return true;
      }
    }
    this.#queued.push(Buffer.from(cmd.toResp()));
    s.reply(spec.name, enc.QUEUED, false, 'transaction');
    return true;
  }

  /** WATCH outside MULTI. */
  watch(cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
    const s = this.#s;
    const slot = slotOf(spec, cmd);
    if (typeof slot === 'string') return s.refuse('watch', slot || text.wrongArity('watch'));
    if (this.slot !== -1 && slot !== this.slot) return s.refuse('watch', text.CROSSSLOT_WATCH);
    const r = routingOrRefuse(s, 'watch');
    if (!r) return;
    const addr = masterOrRefuse(s, 'watch', r, slot);
    if (addr === null) return;
    if (!this.conn) {
      this.conn = s.ctx.pool.dedicated(addr, s.proto);
      this.#connLost = false;
    }
    this.slot = slot;
    const req = new PinnedRequest(s, 'watch', 'transaction', t0);
    req.node = addr;
    s.enqueue(req);
    const raw = cmd.toResp();
    const conn = this.conn;
    conn.send(raw, 0, raw.length, {
      onReply: (b, st, e) => req.onReply(b, st, e),
      onError: (err) => {
        if (this.conn === conn) this.#connLost = true;
        req.onError(err);
      },
    });
    s.mode = this;
  }

  multi(): void {
    this.inMulti = true;
    this.#queued = [];
    this.#publishes = [];
    this.#aborted = false;
    this.#s.mode = this;
    this.#s.reply('multi', enc.OK, false, 'transaction');
  }

  unwatch(t0: number): void {
    const s = this.#s;
    if (this.conn) {
      const conn = this.conn;
      const req = new PinnedRequest(s, 'unwatch', 'transaction', t0);
      s.enqueue(req);
      conn.send(UNWATCH, 0, UNWATCH.length, req);
      this.#release();
      return;
    }
    s.reply('unwatch', enc.OK, false, 'transaction');
  }

  #exec(t0: number): void {
    const s = this.#s;
    const queued = this.#queued;
    const publishes = this.#publishes;
    const aborted = this.#aborted;
    const pinned = this.conn;
    const lost = this.#connLost || (pinned !== null && (pinned.state === 'down' || pinned.state === 'closed'));
    const slot = this.slot;
    this.inMulti = false;
    this.#queued = [];
    this.#publishes = [];
    this.#aborted = false;
    if (aborted) {
      this.#reset();
      return s.refuse('exec', text.EXECABORT_PREVIOUS);
    }
    if (lost) {
      this.#reset();
      return s.refuse('exec', text.EXECABORT_WATCH_LOST);
    }
    const r = routingOrRefuse(s, 'exec');
    if (!r) return this.#reset();
    let addr: string;
    if (slot >= 0) {
      const node = nodeFor(r, slot, false);
      if (node < 0) {
        this.#reset();
        return s.refuse('exec', node === MIGRATING ? text.execAbortMigrating(slot) : text.execAbortedBy(refusalFor(r, node, slot)));
      }
      addr = r.masterOf[node]!;
    } else addr = pinned?.address ?? anyMaster(r, s.id, s.ctx.pool.isDown);
    if (pinned && pinned.address !== addr) {
      this.#reset();
      return s.refuse('exec', text.EXECABORT_WATCH_MOVED);
    }
    const bytes = Buffer.concat([MULTI, ...queued, EXEC]);
    let req: Request;
    if (publishes.length) {
      // the place in the client's order of publishes is taken now, when EXEC is sent: a later
      // transaction's EXEC may be answered first (by another node), and its messages must wait
      let execReplied!: (exec: Buffer | null) => void;
      const replied = new Promise<Buffer | null>((res) => (execReplied = res));
      this.#publishing++;
      req = new ExecPublishRequest(s, t0, queued.length + 2, execReplied);
      const mine = req;
      this.#chain = this.#chain.then(() => replied.then((exec) => new Promise<void>((done) => this.#publishNow(mine, exec, publishes, done))));
    } else req = new ExecRequest(s, t0, queued.length + 2);
    req.node = addr;
    s.enqueue(req);
    const conn = pinned ?? s.connFor(addr);
    conn.sendMany(bytes, req, queued.length + 2);
    this.#release();
  }

  /**
   * EXEC succeeded (an array): the publishes go out in order and their counts are spliced into the
   * reply; otherwise (nil after a WATCH, an error) the reply stands and nothing is published.
   */
  /**
   * EXEC succeeded (an array): the publishes go out in order and their counts are spliced into the
   * reply; otherwise (nil after a WATCH, an error) the reply stands and nothing is published.
   */
  #publishNow(req: Request, exec: Buffer | null, publishes: QueuedPublish[], finished: () => void): void {
    const complete = (buf: Buffer | null): void => {
      this.#publishing--;
      if (buf !== null) req.completeWith(buf);
      finished();
    };
    if (exec === null) return complete(null); // EXEC failed on its connection: answered already
    const els = exec[0] === 0x2a && exec[1] !== 0x2d ? arrayElements(exec) : null;
    if (els === null) return complete(exec);
    const s = this.#s;
    const r = s.ctx.view.routing;
    const counts: Buffer[] = new Array(publishes.length);
    let left = publishes.length;
    const done = (): void => {
      if (--left > 0) return;
      const parts: Buffer[] = [Buffer.from(`*${els.length + publishes.length}\r\n`)];
      let k = 0;
      for (let i = 0, p = 0; i < els.length + publishes.length; i++) {
        if (p < publishes.length && publishes[p]!.at === i) parts.push(counts[p++]!);
        else {
          const [a, b] = els[k++]!;
          parts.push(exec.subarray(a, b));
        }
      }
      complete(Buffer.concat(parts));
    };
    publishes.forEach((pub, i) => {
      // the same places as outside a transaction (src/proxy/pubsub.ts): the hub, or the channel's shard
      const node = r === null ? -1 : pub.name === 'publish' ? 0 : r.table.owner[slotOfBytes(pub.channel)]!;
      if (r === null || node < 0 || node === r.switchingIndex) {
        counts[i] = enc.error(r === null ? text.NO_CONFIG : text.switching(r.table.names[node]!));
        return done();
      }
      s.connFor(r.masterOf[node]!).send(pub.raw, 0, pub.raw.length, {
        onReply: (buf, a, b) => {
          counts[i] = Buffer.from(buf.subarray(a, b));
          done();
        },
        onError: (err) => {
          counts[i] = enc.error(err.message);
          done();
        },
      });
    });
  }

  #release(): void {
    const conn = this.conn;
    this.conn = null;
    this.slot = -1;
    this.#connLost = false;
    if (conn) conn.closeWhenIdle();
    if (!this.inMulti && this.#s.mode === this) this.#s.mode = null;
  }

  #reset(): void {
    this.inMulti = false;
    this.#queued = [];
    this.#publishes = [];
    this.#aborted = false;
    this.#release();
  }

  /** The client went away: drop everything, close the pinned connection now. */
  close(): void {
    const conn = this.conn;
    this.#reset();
    conn?.close('closed: the client went away');
  }

  /** RESET: leave MULTI and WATCH; what is in flight on the pinned connection is answered first. */
  resetState(): void {
    this.#reset();
  }
}

/** The client's transaction state, made on first use. */
function txOf(s: Session): TransactionState {
  return (s.tx ??= new TransactionState(s)) as TransactionState;
}

export function transaction(s: Session, cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
  const tx = txOf(s);
  switch (spec.name) {
    case 'multi':
      return tx.multi();
    case 'exec':
      return s.refuse('exec', text.EXEC_WITHOUT_MULTI);
    case 'discard':
      return s.refuse('discard', text.DISCARD_WITHOUT_MULTI);
    case 'watch':
      return tx.watch(cmd, spec, t0);
    case 'unwatch':
      return tx.unwatch(t0);
  }
}

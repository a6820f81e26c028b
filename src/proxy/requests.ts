/**
 * One request class per command family (after Envoy's command splitter). Every request
 * completes exactly once, with the reply bytes the client gets; the session writes completed
 * requests in arrival order.
 *
 *   LocalRequest   answered by the sidecar
 *   SimpleRequest  one node; the node's reply forwarded unchanged (redirects handled)
 *   SplitRequest   MGET / MSET / DEL-like across slots: one fragment per node, merged
 *   FanoutRequest  every master (KEYS, DBSIZE, SCRIPT LOAD, ...), merged by a function
 *   DeferredRequest started only when it reaches the head of the client's queue (WAIT)
 *
 * `commandRequest` makes the SimpleRequest for a parsed command, whatever its form (inline or RESP).
 */
import type { NodeConnection, NodeError, Pending } from './node-connection';
import type { ParsedCommand } from '../resp/request-parser';
import { arrayElements } from '../resp/reply-framer';
import * as enc from '../resp/encode';
import type { Histogram } from '../observe/stats';
import { allOk, mergeFailed, sumIntegers } from './replies';

/** The command families, each with its own latency histogram (stats, metrics). */
export type Family = 'simple' | 'split' | 'local' | 'fanout' | 'transaction' | 'blocking' | 'pubsub' | 'script';

export interface RequestOwner {
  completed(req: Request): void;
}

export abstract class Request implements Pending {
  readonly owner: RequestOwner;
  /** lower-case command name, for stats */
  readonly name: string;
  readonly family: Family;
  readonly t0: number;
  /** started only at the head of the queue (DeferredRequest) */
  readonly deferred: boolean = false;
  /** its reply is not written (CLIENT REPLY OFF / SKIP) */
  silent = false;
  done = false;
  rbuf: Buffer | null = null;
  rs = 0;
  re = 0;
  /** node address it went to (slow log, per-node latency) */
  node = '';
  /** that node's latency histogram, when the connection carries one (saves a lookup by address) */
  nodeLatency: Histogram | null = null;
  /** every node a split or fanned-out request went to (per-node latency), when more than one */
  nodes: string[] | null = null;
  /** true when the reply is an error the sidecar produced (refused), for stats */
  refused = false;
  constructor(owner: RequestOwner, name: string, family: Family, t0: number) {
    this.owner = owner;
    this.name = name;
    this.family = family;
    this.t0 = t0;
  }
  complete(buf: Buffer, start: number, end: number): void {
    if (this.done) return;
    this.rbuf = buf;
    this.rs = start;
    this.re = end;
    this.done = true;
    this.owner.completed(this);
  }
  completeWith(buf: Buffer): void {
    this.complete(buf, 0, buf.length);
  }
  fail(message: string): void {
    this.refused = true;
    this.completeWith(enc.error(message));
  }
  abstract onReply(buf: Buffer, start: number, end: number, type: number): void;
  onError(err: NodeError): void {
    this.fail(err.message);
  }
  /** true when the reply is an error reply */
  get isError(): boolean {
    return this.rbuf !== null && this.rbuf[this.rs] === 0x2d;
  }
}

export class LocalRequest extends Request {
  onReply(): void {
    /* never sent to a node */
  }
}

export const enum Redirect {
  None = 0,
  Migrated = 1,
  WrongSlot = 2,
  ReadOnly = 3,
}

const MIGRATED = Buffer.from('-MIGRATED ');
const WRONG_SLOT = Buffer.from('-ERR wrong hash slot');
const READONLY = Buffer.from('-READONLY');

function startsWith(buf: Buffer, s: number, e: number, p: Buffer): boolean {
  return e - s >= p.length && buf.compare(p, 0, p.length, s, s + p.length) === 0;
}

/** Classifies an error reply that tells the sidecar its configuration is stale. */
export function redirectOf(buf: Buffer, s: number, e: number): Redirect {
  if (startsWith(buf, s, e, MIGRATED)) return Redirect.Migrated;
  if (startsWith(buf, s, e, WRONG_SLOT)) return Redirect.WrongSlot;
  if (startsWith(buf, s, e, READONLY)) return Redirect.ReadOnly;
  return Redirect.None;
}

/** What a SimpleRequest asks of the session when a node says the configuration is stale. */
export interface RedirectHandler {
  redirect(req: SimpleRequest, kind: Redirect, target: string | null): void;
}

/*
 * SimpleRequest is the request of nearly every command, made once per command routed, so it is
 * a base class of its own whose prototype is linked to Request's: it inherits Request's methods
 * (and `instanceof Request` holds) but is constructed without a super() call. TurboFan (Node 20)
 * does not inline a derived class's super() call, so `new SimpleRequest` went through the generic
 * construct stub: ~400 instructions a request by callgrind, 4.5% of the sidecar's at -P 16. It
 * declares and sets Request's fields itself, to the same initial values; a test compares the two.
 */
export interface SimpleRequest extends Pick<Request, 'complete' | 'completeWith' | 'fail' | 'onError' | 'isError'> {}
export class SimpleRequest implements Pending {
  // Request's fields (see there)
  readonly owner: RequestOwner;
  readonly name: string;
  readonly family: Family;
  readonly t0: number;
  readonly deferred = false;
  silent = false;
  done = false;
  rbuf: Buffer | null = null;
  rs = 0;
  re = 0;
  node = '';
  nodeLatency: Histogram | null = null;
  nodes: string[] | null = null;
  refused = false;
  // its own
  readonly handler: RedirectHandler;
  /** the command's RESP bytes, kept for a reissue */
  readonly cbuf: Buffer;
  readonly cs: number;
  readonly ce: number;
  readonly slot: number;
  redirects = 0;
  constructor(owner: RequestOwner, handler: RedirectHandler, name: string, family: Family, t0: number, cbuf: Buffer, cs: number, ce: number, slot: number) {
    this.owner = owner;
    this.name = name;
    this.family = family;
    this.t0 = t0;
    this.handler = handler;
    this.cbuf = cbuf;
    this.cs = cs;
    this.ce = ce;
    this.slot = slot;
  }
  onReply(buf: Buffer, start: number, end: number, type: number): void {
    if (type === 0x2d) {
      const r = redirectOf(buf, start, end);
      if (r !== Redirect.None) {
        const target = r === Redirect.Migrated ? buf.toString('latin1', start + MIGRATED.length, end - 2).trim() : null;
        this.handler.redirect(this, r, target);
        return;
      }
    }
    this.complete(buf, start, end);
  }
  sendTo(conn: NodeConnection): void {
    this.node = conn.address;
    this.nodeLatency = conn.latency;
    conn.send(this.cbuf, this.cs, this.ce, this);
  }
}
Object.setPrototypeOf(SimpleRequest.prototype, Request.prototype);

/** The request for a command sent to one node as it came (an inline command is re-encoded as RESP). */
export function commandRequest(owner: RequestOwner, handler: RedirectHandler, name: string, family: Family, t0: number, cmd: ParsedCommand, slot: number): SimpleRequest {
  if (!cmd.inline) return new SimpleRequest(owner, handler, name, family, t0, cmd.buf, cmd.start, cmd.end, slot);
  const raw = cmd.toResp();
  return new SimpleRequest(owner, handler, name, family, t0, raw, 0, raw.length, slot);
}

/** One part of a split or fan-out request. */
class Fragment implements Pending {
  readonly parent: MergingRequest;
  readonly index: number;
  constructor(parent: MergingRequest, index: number) {
    this.parent = parent;
    this.index = index;
  }
  onReply(buf: Buffer, start: number, end: number): void {
    this.parent.fragmentReply(this.index, buf.subarray(start, end));
  }
  onError(err: NodeError): void {
    this.parent.fragmentReply(this.index, enc.error(err.message));
  }
}

/** A request answered by merging the replies of several fragments. */
export abstract class MergingRequest extends Request {
  readonly replies: (Buffer | null)[];
  #waiting: number;
  constructor(owner: RequestOwner, name: string, family: Family, t0: number, fragments: number) {
    super(owner, name, family, t0);
    this.replies = new Array(fragments).fill(null);
    this.#waiting = fragments;
  }
  onReply(): void {
    /* replies arrive through fragments */
  }
  fragment(i: number): Pending {
    return new Fragment(this, i);
  }
  fragmentReply(i: number, reply: Buffer): void {
    if (this.replies[i] !== null) return;
    this.replies[i] = reply;
    if (--this.#waiting === 0) {
      try {
        this.completeWith(this.merge(this.replies as Buffer[]));
      } catch (e) {
        this.fail(mergeFailed((e as Error).message));
      }
    }
  }
  abstract merge(replies: Buffer[]): Buffer;
}

/** MGET across nodes: fragment i holds the original positions `positions[i]`. */
export class MgetRequest extends MergingRequest {
  readonly positions: number[][];
  readonly total: number;
  constructor(owner: RequestOwner, t0: number, positions: number[][], total: number) {
    super(owner, 'mget', 'split', t0, positions.length);
    this.positions = positions;
    this.total = total;
  }
  merge(replies: Buffer[]): Buffer {
    const err = replies.find((r) => r[0] === 0x2d);
    if (err) return err;
    const parts: Buffer[] = new Array(this.total + 1);
    parts[0] = Buffer.from(`*${this.total}\r\n`);
    replies.forEach((r, i) => {
      const els = arrayElements(r);
      const pos = this.positions[i]!;
      if (!els || els.length !== pos.length) throw new Error('MGET fragment reply has the wrong length');
      for (let k = 0; k < pos.length; k++) parts[pos[k]! + 1] = r.subarray(els[k]![0], els[k]![1]);
    });
    return Buffer.concat(parts);
  }
}

/** DEL, UNLINK, EXISTS, TOUCH across nodes: the integer replies summed. */
export class SumRequest extends MergingRequest {
  merge(replies: Buffer[]): Buffer {
    return sumIntegers(replies);
  }
}

/** MSET across nodes: +OK when every fragment said so. */
export class AllOkRequest extends MergingRequest {
  merge(replies: Buffer[]): Buffer {
    return allOk(replies);
  }
}

/** Fan-out to every master with a merge function of the raw replies. */
export class FanoutRequest extends MergingRequest {
  readonly #merge: (replies: Buffer[]) => Buffer;
  constructor(owner: RequestOwner, name: string, t0: number, fragments: number, merge: (replies: Buffer[]) => Buffer) {
    super(owner, name, 'fanout', t0, fragments);
    this.#merge = merge;
  }
  merge(replies: Buffer[]): Buffer {
    return this.#merge(replies);
  }
}

/** WAIT: started only when every earlier request of the client has been answered. */
export class DeferredRequest extends Request {
  override readonly deferred = true;
  readonly #start: (req: DeferredRequest) => void;
  started = false;
  #left = 0;
  constructor(owner: RequestOwner, name: string, t0: number, start: (req: DeferredRequest) => void, family: Family = 'blocking') {
    super(owner, name, family, t0);
    this.#start = start;
  }
  start(): void {
    if (this.started) return;
    this.started = true;
    this.#start(this);
  }
  expect(n: number): void {
    this.#left = n;
  }
  onReply(buf: Buffer, start: number, end: number): void {
    if (--this.#left <= 0) this.complete(buf, start, end);
  }
}

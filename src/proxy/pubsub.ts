/**
 * Pub/sub through the sidecar (layout and reasons: docs/pubsub.md).
 *
 * Classic channels and patterns live on one node, the hub: the master of the first node of the
 * configuration (node names in order). PUBLISH, SUBSCRIBE and PSUBSCRIBE go there, so a
 * publisher's messages reach a subscriber exactly once and in the order they were published, on
 * every channel, as with one Redis. Sharded channels live on the master that owns their slot (the
 * name hashed like a key): SPUBLISH and SSUBSCRIBE go there and scale with the cluster. A subscribing client gets
 * its own subscriber connection per master it needs (the counts Redis reports stay per client);
 * messages are forwarded as the node's bytes. Subscribe confirmations are answered once the node
 * has confirmed, with the client's own counts, in the order the client asked; a subscribed client
 * may only run (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT and RESET, with Redis's errors.
 *
 * Keyspace notifications (`__keyspace@<db>__:*`, `__keyevent@<db>__:*`) are made by the master
 * that holds the key, not published to the hub: channels and patterns with those prefixes are
 * subscribed on every master (marked EVERY_MASTER), so a subscriber sees every event of the
 * cluster, each once (replicas, which repeat their master's events, are not subscribed).
 */
import net from 'node:net';
import tls from 'node:tls';
import { nodeTls } from '../cluster/node-tls';
import type { ParsedCommand } from '../resp/request-parser';
import { encodeCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import type { PubSubLike, Session } from './context';
import { ReplyFramer, arrayElements } from '../resp/reply-framer';
import { DeferredRequest, LocalRequest, Request } from './requests';
import { toEveryMaster } from './fanout';
import { routingOrRefuse, sendRaw } from './keyed';
import * as text from './replies';
import type { Routing } from './routing';
import { slotOfBytes } from '../cluster/slot';
import { splitAddress } from '../cluster/config';
import * as enc from '../resp/encode';
import { logger } from '../observe/log';
import { Credential, authCommand, authFailure } from '../cluster/credentials';

type Kind = 'subscribe' | 'psubscribe' | 'ssubscribe';

/** One subscriber connection to a node, owned by one client session. */
class SubscriberLink {
  readonly address: string;
  #socket: net.Socket;
  #framer: ReplyFramer;
  #waiters = new Map<string, Array<() => void>>();
  /** Releases every request still waiting for a confirmation (the link is going away). */
  #release(): void {
    const all = [...this.#waiters.values()].flat();
    this.#waiters.clear();
    for (const w of all) w();
  }
  #ready = false;
  #backlog: Buffer[] = [];
  closed = false;
  /** replies still due to the handshake (AUTH, HELLO 3): nothing else is written before they come */
  #handshaking = 0;
  constructor(
    address: string,
    proto: 2 | 3,
    onMessage: (kind: string, name: string, frame: Buffer) => void,
    onLost: (link: SubscriberLink, why: string) => void,
    auth: { credential: Credential | undefined; failure: (nodeMessage: string) => string } = { credential: undefined, failure: (m) => m },
  ) {
    this.address = address;
    // RESP3 clients get RESP3 pushes: the link speaks RESP3 to the node (its HELLO reply, a map, is ignored)
    const hello = auth.credential ? authCommand(auth.credential, proto) : proto === 3 ? Buffer.from('*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n') : null;
    const { host, port } = splitAddress(address);
    const useTls = nodeTls.enabled;
    this.#socket = useTls ? tls.connect(nodeTls.connectOptions(host, port)).setNoDelay(true) : net.connect({ host, port, noDelay: true });
    this.#framer = new ReplyFramer(
      (buf, s, e) => {
        const frame = buf.subarray(s, e);
        if (this.#handshaking > 0) {
          this.#handshaking--;
          if (frame[0] === 0x2d) return this.#lost(onLost, auth.failure(frame.toString('utf8', 1, frame.length - 2)));
          if (this.#handshaking === 0) this.#flushBacklog();
          return;
        }
        const els = arrayElements(frame);
        if (!els || els.length < 2) return;
        const kind = frame.toString('latin1', frame.indexOf(10, els[0]![0]) + 1, els[0]![1] - 2);
        const nb = frame.indexOf(10, els[1]![0]) + 1;
        const name = frame[els[1]![0]] === 0x24 && frame[els[1]![0] + 1] !== 0x2d ? frame.toString('latin1', nb, els[1]![1] - 2) : '';
        const w = this.#waiters.get(`${kind}\0${name}`);
        if (w && w.length) {
          w.shift()!();
          return;
        }
        onMessage(kind, name, frame);
      },
      (msg) => this.#lost(onLost, `malformed reply: ${msg}`),
    );
    this.#socket.on(useTls ? 'secureConnect' : 'connect', () => {
      if (hello) {
        this.#handshaking = 1;
        this.#socket.write(hello);
      } else this.#flushBacklog();
    });
    this.#socket.on('data', (c: Buffer) => this.#framer.push(c));
    this.#socket.on('error', (e) => this.#lost(onLost, e.message));
    this.#socket.on('close', () => this.#lost(onLost, 'connection closed'));
  }
  #flushBacklog(): void {
    this.#ready = true;
    for (const b of this.#backlog) this.#socket.write(b);
    this.#backlog = [];
  }
  #lost(onLost: (l: SubscriberLink, why: string) => void, why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.#socket.destroy();
    this.#release();
    onLost(this, why);
  }
  /** Sends a (P|S)SUBSCRIBE for one name; `confirmed` runs on the node's confirmation. */
  subscribe(kind: Kind, name: Buffer, confirmed: () => void): void {
    const key = `${kind}\0${name.toString('latin1')}`;
    let w = this.#waiters.get(key);
    if (!w) this.#waiters.set(key, (w = []));
    w.push(confirmed);
    this.#write(encodeCommand([kind.toUpperCase(), name]));
  }
  unsubscribe(kind: Kind, name: Buffer): void {
    const verb = kind === 'subscribe' ? 'unsubscribe' : kind === 'psubscribe' ? 'punsubscribe' : 'sunsubscribe';
    const key = `${verb}\0${name.toString('latin1')}`;
    let w = this.#waiters.get(key);
    if (!w) this.#waiters.set(key, (w = []));
    w.push(() => undefined);
    this.#write(encodeCommand([verb.toUpperCase(), name]));
  }
  #write(b: Buffer): void {
    if (this.closed) return;
    if (this.#ready) this.#socket.write(b);
    else this.#backlog.push(b);
  }
  close(): void {
    this.closed = true;
    this.#socket.destroy();
    this.#release();
  }
}

/** SUBSCRIBE and friends: completes when every node confirmation for it has arrived. */
class SubscribeRequest extends Request {
  #left = 0;
  #frames: Buffer[] = [];
  constructor(s: Session, name: string, t0: number) {
    super(s, name, 'pubsub', t0);
  }
  addFrame(frame: Buffer, confirmations: number): (() => void) {
    this.#frames.push(frame);
    this.#left += confirmations;
    return () => this.#confirmed();
  }
  #confirmed(): void {
    if (--this.#left === 0) this.completeWith(Buffer.concat(this.#frames));
  }
  /** after all frames are added: complete now if nothing is awaited */
  seal(): void {
    if (this.#left === 0) this.completeWith(Buffer.concat(this.#frames));
  }
  onReply(): void {
    /* confirmations arrive through the links */
  }
}

/** A subscribe/unsubscribe confirmation: an array in RESP2, a push in RESP3. */
function frame3(kind: string, name: Buffer | null, count: number, proto: 2 | 3): Buffer {
  const head = proto === 3 ? `>3\r\n$${kind.length}\r\n${kind}\r\n` : `*3\r\n$${kind.length}\r\n${kind}\r\n`;
  return Buffer.concat([Buffer.from(head), name === null ? (proto === 3 ? enc.NULL3 : enc.NULL_BULK) : enc.bulk(name), enc.integer(count)]);
}

const ALLOWED = new Set(['subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe', 'ssubscribe', 'sunsubscribe', 'ping', 'quit', 'reset']);

export class PubSubState implements PubSubLike {
  readonly #s: Session;
  /** channel (latin1) → master address it is subscribed on */
  readonly channels = new Map<string, string>();
  /** pattern (latin1) → the hub address it is subscribed on */
  readonly patterns = new Map<string, string>();
  readonly shard = new Map<string, string>();
  readonly #links = new Map<string, SubscriberLink>();
  /** for names subscribed on every master: kind + name → the masters they are subscribed on */
  readonly #spread = new Map<string, Set<string>>();
  #closed = false;

  constructor(s: Session) {
    this.#s = s;
  }

  get count(): number {
    return this.channels.size + this.patterns.size;
  }
  get active(): boolean {
    return this.channels.size + this.patterns.size + this.shard.size > 0;
  }

  dispatch(cmd: ParsedCommand, spec: CommandSpec | undefined, t0: number): boolean {
    const s = this.#s;
    if (!this.active) return false;
    const name = spec?.name ?? cmd.argLower(0);
    // RESP3 clients may run any command while subscribed; only the subscription commands are ours
    if (s.proto === 3) {
      if (!ALLOWED.has(name) || name === 'ping' || name === 'quit' || name === 'reset') return false;
      this.handle(cmd, name, t0);
      return true;
    }
    if (!ALLOWED.has(name)) {
      s.refuse(name, text.notInSubscribeContext(name));
      return true;
    }
    if (name === 'ping') {
      s.reply('ping', Buffer.concat([Buffer.from('*2\r\n$4\r\npong\r\n'), enc.bulk(cmd.argc > 1 ? cmd.arg(1) : Buffer.alloc(0))]));
      return true;
    }
    if (name === 'quit' || name === 'reset') return false;
    this.handle(cmd, name, t0);
    return true;
  }

  #link(addr: string): SubscriberLink {
    let l = this.#links.get(addr);
    if (!l || l.closed) {
      l = new SubscriberLink(
        addr,
        this.#s.proto,
        (kind, name, frame) => this.#message(kind, name, frame),
        (link, why) => this.#lost(link, why),
        {
          credential: this.#s.ctx.pool.credentials.get('data'),
          failure: (m) => authFailure(`node ${addr}`, 'data', this.#s.ctx.pool.credentials.user('data'), m),
        },
      );
      this.#links.set(addr, l);
    }
    return l;
  }

  #message(kind: string, name: string, frame: Buffer): void {
    if (this.#closed) return;
    if (kind === 'message' && this.channels.has(name)) this.#s.push(frame);
    else if (kind === 'pmessage' && this.patterns.has(name)) this.#s.push(frame);
    else if (kind === 'smessage' && this.shard.has(name)) this.#s.push(frame);
  }

  /** A subscriber connection died: subscribe again where the channels now live. */
  #lost(link: SubscriberLink, why: string): void {
    if (this.#closed || this.#links.get(link.address) !== link) return;
    this.#links.delete(link.address);
    logger.warn('subscriber-link-lost', { node: link.address, client: this.#s.id, why });
    const retry = () => {
      if (this.#closed) return;
      const r = this.#s.ctx.view.routing;
      if (!r) return void setTimeout(retry, 250).unref();
      for (const [ch, addr] of this.channels) if (addr === link.address) this.#resub('subscribe', ch, this.channels);
      for (const [p, addr] of this.patterns) if (addr === link.address) this.#resub('psubscribe', p, this.patterns);
      for (const [key, on] of this.#spread) {
        if (!on.delete(link.address)) continue;
        // subscribe again on every master that has none now (the one that came back, or its successor)
        for (const m of r.masterOf) if (!on.has(m)) this.#spreadTo(key, m, () => undefined);
      }
      for (const [ch, addr] of this.shard) if (addr === link.address) this.#resub('ssubscribe', ch, this.shard);
    };
    setTimeout(retry, 250).unref();
  }

  #resub(kind: Kind, ch: string, map: Map<string, string>): void {
    const r = this.#s.ctx.view.routing;
    const addr = kind === 'ssubscribe' ? this.#ownerOf(Buffer.from(ch, 'latin1')) : r ? hubOf(r) : null;
    if (!addr) return;
    map.set(ch, addr);
    this.#link(addr).subscribe(kind, Buffer.from(ch, 'latin1'), () => undefined);
  }

  /** Subscribes `key` (kind + name, as #spread keys it) on master `addr`. */
  #spreadTo(key: string, addr: string, done: () => void): void {
    const kind: Kind = key[0] === 'p' ? 'psubscribe' : 'subscribe';
    this.#spread.get(key)!.add(addr);
    this.#link(addr).subscribe(kind, Buffer.from(key.slice(1), 'latin1'), done);
  }

  /** Subscribes a keyspace-notification channel or pattern on every master, confirmed once all have. */
  #subscribeEverywhere(kind: Kind, name: Buffer, r: Routing, req: SubscribeRequest, frame: Buffer, map: Map<string, string>): void {
    const key = name.toString('latin1');
    map.set(key, EVERY_MASTER);
    const spreadKey = (kind === 'psubscribe' ? 'p' : 'c') + key;
    this.#spread.set(spreadKey, new Set());
    const done = req.addFrame(frame, r.masterOf.length);
    for (const m of r.masterOf) this.#spreadTo(spreadKey, m, done);
  }

  #unsubscribeEverywhere(kind: Kind, name: Buffer): void {
    const spreadKey = (kind === 'psubscribe' ? 'p' : 'c') + name.toString('latin1');
    for (const a of this.#spread.get(spreadKey) ?? []) this.#links.get(a)?.unsubscribe(kind, name);
    this.#spread.delete(spreadKey);
  }

  #ownerOf(name: Buffer): string | null {
    const r = this.#s.ctx.view.routing;
    if (!r || this.#s.ctx.view.leaseError()) return null;
    return r.masterOf[r.table.owner[slotOfBytes(name)]!]!;
  }

  handle(cmd: ParsedCommand, name: string, t0: number): void {
    const s = this.#s;
    switch (name) {
      case 'subscribe':
      case 'ssubscribe': {
        const map = name === 'subscribe' ? this.channels : this.shard;
        const r = routingOrRefuse(s, name);
        if (!r) return;
        const hub = hubOf(r);
        const req = new SubscribeRequest(s, name, t0);
        s.enqueue(req);
        for (let i = 1; i < cmd.argc; i++) {
          const ch = cmd.arg(i);
          const key = ch.toString('latin1');
          if (map.has(key)) {
            req.addFrame(frame3(name, ch, name === 'subscribe' ? this.count : this.shard.size, s.proto), 0);
            continue;
          }
          if (name === 'subscribe' && isKeyspaceChannel(ch)) {
            this.#subscribeEverywhere('subscribe', ch, r, req, frame3(name, ch, this.count + 1, s.proto), map);
            continue;
          }
          const addr = name === 'subscribe' ? hub : r.masterOf[r.table.owner[slotOfBytes(ch)]!]!;
          map.set(key, addr);
          const done = req.addFrame(frame3(name, ch, name === 'subscribe' ? this.count : this.shard.size, s.proto), 1);
          this.#link(addr).subscribe(name, ch, done);
        }
        req.seal();
        this.#enter();
        return;
      }
      case 'psubscribe': {
        const r = routingOrRefuse(s, name);
        if (!r) return;
        const req = new SubscribeRequest(s, name, t0);
        s.enqueue(req);
        for (let i = 1; i < cmd.argc; i++) {
          const p = cmd.arg(i);
          const key = p.toString('latin1');
          if (this.patterns.has(key)) {
            req.addFrame(frame3(name, p, this.count, s.proto), 0);
            continue;
          }
          if (isKeyspaceChannel(p) || mayMatchKeyspace(p)) {
            this.#subscribeEverywhere('psubscribe', p, r, req, frame3(name, p, this.count + 1, s.proto), this.patterns);
            continue;
          }
          const hub = hubOf(r);
          this.patterns.set(key, hub);
          const done = req.addFrame(frame3(name, p, this.count, s.proto), 1);
          this.#link(hub).subscribe('psubscribe', p, done);
        }
        req.seal();
        this.#enter();
        return;
      }
      case 'unsubscribe':
      case 'sunsubscribe':
      case 'punsubscribe': {
        const kind: Kind = name === 'unsubscribe' ? 'subscribe' : name === 'sunsubscribe' ? 'ssubscribe' : 'psubscribe';
        const names: Buffer[] = [];
        if (cmd.argc > 1) for (let i = 1; i < cmd.argc; i++) names.push(cmd.arg(i));
        else {
          const all = kind === 'subscribe' ? [...this.channels.keys()] : kind === 'ssubscribe' ? [...this.shard.keys()] : [...this.patterns.keys()];
          for (const n of all) names.push(Buffer.from(n, 'latin1'));
        }
        const frames: Buffer[] = [];
        if (names.length === 0) frames.push(frame3(name, null, kind === 'ssubscribe' ? this.shard.size : this.count, s.proto));
        for (const n of names) {
          const key = n.toString('latin1');
          const map = kind === 'subscribe' ? this.channels : kind === 'psubscribe' ? this.patterns : this.shard;
          const addr = map.get(key);
          if (addr !== undefined) {
            map.delete(key);
            if (addr === EVERY_MASTER) this.#unsubscribeEverywhere(kind, n);
            else this.#links.get(addr)?.unsubscribe(kind, n);
          }
          frames.push(frame3(name, n, kind === 'ssubscribe' ? this.shard.size : this.count, s.proto));
        }
        const req = new LocalRequest(s, name, 'pubsub', t0);
        s.enqueue(req);
        req.completeWith(Buffer.concat(frames));
        this.#leaveIfIdle();
        return;
      }
    }
  }

  #enter(): void {
    const s = this.#s;
    s.subs = { channels: this.channels.size, patterns: this.patterns.size, shard: this.shard.size };
    if (s.mode !== this && this.active) s.mode = this;
  }

  #leaveIfIdle(): void {
    const s = this.#s;
    s.subs = { channels: this.channels.size, patterns: this.patterns.size, shard: this.shard.size };
    if (!this.active) {
      for (const l of this.#links.values()) l.close();
      this.#links.clear();
      if (s.mode === this) s.mode = null;
    }
  }

  close(): void {
    this.#closed = true;
    this.channels.clear();
    this.patterns.clear();
    this.shard.clear();
    this.#spread.clear();
    for (const l of this.#links.values()) l.close();
    this.#links.clear();
  }
}

/** Where a keyspace-notification subscription lives: every master (PubSubState's maps). */
const EVERY_MASTER = '*';
const KEYSPACE = Buffer.from('__keyspace@');
const KEYEVENT = Buffer.from('__keyevent@');

/** Whether a channel or pattern names keyspace notifications, which every master makes. */
export function isKeyspaceChannel(name: Buffer): boolean {
  return name.length > 11 && name[0] === 0x5f && (name.subarray(0, 11).equals(KEYSPACE) || name.subarray(0, 11).equals(KEYEVENT));
}

/**
 * Whether a pattern may match keyspace-notification channels (`*`, `__key*`, ...): such a pattern
 * is subscribed on every master too. Classic messages are published on the hub only, so the
 * pattern still sees each of them once.
 */
export function mayMatchKeyspace(pattern: Buffer): boolean {
  for (const prefix of [KEYSPACE, KEYEVENT]) {
    let i = 0;
    for (; i < pattern.length && i < prefix.length; i++) {
      const c = pattern[i]!;
      if (c === 0x2a /* * */ || c === 0x3f /* ? */ || c === 0x5b /* [ */ || c === 0x5c /* \ */) return true;
      if (c !== prefix[i]) break;
    }
    if (i === prefix.length) return true;
  }
  return false;
}

/** The node classic pub/sub lives on: the master of the first node (names in order). */
export function hubOf(r: { masterOf: string[] }): string {
  return r.masterOf[0]!;
}

function mergeUnique(replies: Buffer[]): Buffer {
  for (const r of replies) if (r[0] === 0x2d) return r;
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const r of replies)
    for (const [a, b] of arrayElements(r) ?? []) {
      const k = r.toString('latin1', a, b);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(r.subarray(a, b));
      }
    }
  return Buffer.concat([Buffer.from(`*${out.length}\r\n`), ...out]);
}

/** NUMSUB-style replies [ch, n, ch, n, ...]: counts summed per channel. */
function mergeNumsub(replies: Buffer[]): Buffer {
  for (const r of replies) if (r[0] === 0x2d) return r;
  const names: Buffer[] = [];
  const counts: number[] = [];
  replies.forEach((r, ri) => {
    const els = arrayElements(r) ?? [];
    for (let i = 0; i + 1 < els.length; i += 2) {
      const k = i / 2;
      if (ri === 0) names.push(r.subarray(els[i]![0], els[i]![1]));
      counts[k] = (counts[k] ?? 0) + Number(r.toString('latin1', els[i + 1]![0] + 1, els[i + 1]![1] - 2));
    }
  });
  const parts: Buffer[] = [Buffer.from(`*${names.length * 2}\r\n`)];
  names.forEach((n, k) => parts.push(n, enc.integer(counts[k]!)));
  return Buffer.concat(parts);
}

export function pubsub(s: Session, cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
  const name = spec.name;
  switch (name) {
    case 'publish':
    case 'spublish': {
      const ch = cmd.arg(1);
      const r = routingOrRefuse(s, name);
      if (!r) return;
      // PUBLISH goes to the hub (the first node's master: docs/pubsub.md), SPUBLISH to the channel's owner
      const slot = slotOfBytes(ch);
      const node = name === 'publish' ? 0 : r.table.owner[slot]!;
      if (node === r.switchingIndex) return s.refuse(name, text.switching(r.table.names[node]!));
      if (s.tx !== null && s.tx.publishesPending) {
        // a transaction's messages are still going out: this one follows them, in the client's order
        const raw = Buffer.from(cmd.toResp());
        const addr = r.masterOf[node]!;
        const req = new DeferredRequest(s, name, t0, (self) => {
          self.node = addr;
          self.expect(1);
          s.connFor(addr).send(raw, 0, raw.length, self);
        }, 'pubsub');
        s.enqueue(req);
        s.startDeferred();
        return;
      }
      return sendRaw(s, name, 'pubsub', t0, cmd, r.masterOf[node]!);
    }
    case 'subscribe':
    case 'psubscribe':
    case 'ssubscribe':
    case 'unsubscribe':
    case 'punsubscribe':
    case 'sunsubscribe':
      return ((s.subscriptions ??= new PubSubState(s)) as PubSubState).handle(cmd, name, t0);
    case 'pubsub': {
      const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
      const bytes = cmd.toResp();
      if (sub === 'channels' || sub === 'numsub' || sub === 'numpat') {
        const r = routingOrRefuse(s, 'pubsub');
        if (!r) return;
        return sendRaw(s, 'pubsub', 'pubsub', t0, cmd, hubOf(r));
      }
      if (sub === 'shardchannels') return toEveryMaster(s, 'pubsub', t0, () => bytes, mergeUnique);
      if (sub === 'shardnumsub') return toEveryMaster(s, 'pubsub', t0, () => bytes, mergeNumsub);
      return s.refuse('pubsub', text.unknownSubcommand('pubsub', cmd.argc > 1 ? cmd.argString(1) : ''));
    }
  }
  s.refuse(name, text.notSupported(name));
}

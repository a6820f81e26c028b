/**
 * Scripts and functions. EVAL/EVALSHA/FCALL (and _RO) route by their declared keys, which must
 * share a slot; with no keys they go to any master. SCRIPT LOAD/EXISTS/FLUSH/KILL and
 * FUNCTION LOAD/DELETE/FLUSH/RESTORE/KILL go to every master, merged; FUNCTION LIST/DUMP/STATS
 * read one master. The sidecar remembers every script body it has seen (EVAL, SCRIPT LOAD), so an
 * EVALSHA that a node no longer knows (it restarted) is answered by sending the body.
 */
import { createHash } from 'node:crypto';
import type { ParsedCommand } from '../resp/request-parser';
import { RequestParser, encodeCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import type { ClientSession } from './session';
import type { NodeConnection } from './node-connection';
import { SimpleRequest, RequestOwner, RedirectHandler } from './requests';
import { toEveryMaster } from './fanout';
import { arrayElements } from '../resp/reply-framer';
import { toAnyMaster } from './local';
import * as enc from '../resp/encode';

const MAX_SCRIPTS = 10_000;
const NOSCRIPT = Buffer.from('-NOSCRIPT');
const META_IN_SCRIPT = 'ERR ringside: scripts may not name keys under __cluster__: (the cluster\'s metadata)';

/** sha1 → body of every script this sidecar has seen, oldest first. */
export class ScriptCache {
  readonly #bodies = new Map<string, Buffer>();
  remember(body: Buffer): string {
    const sha = createHash('sha1').update(body).digest('hex');
    if (!this.#bodies.has(sha)) {
      this.#bodies.set(sha, Buffer.from(body));
      if (this.#bodies.size > MAX_SCRIPTS) this.#bodies.delete(this.#bodies.keys().next().value!);
    }
    return sha;
  }
  get(sha: string): Buffer | undefined {
    return this.#bodies.get(sha.toLowerCase());
  }
  clear(): void {
    this.#bodies.clear();
  }
}

/** EVALSHA that falls back to EVAL with the remembered body on -NOSCRIPT. */
class EvalshaRequest extends SimpleRequest {
  readonly body: Buffer;
  #conn: NodeConnection | null = null;
  #retried = false;
  constructor(owner: RequestOwner, handler: RedirectHandler, name: string, t0: number, raw: Buffer, slot: number, body: Buffer) {
    super(owner, handler, name, 'script', t0, raw, 0, raw.length, slot);
    this.body = body;
  }
  override sendTo(conn: NodeConnection): void {
    this.#conn = conn;
    super.sendTo(conn);
  }
  override onReply(buf: Buffer, start: number, end: number, type: number): void {
    if (type === 0x2d && !this.#retried && this.#conn && buf.compare(NOSCRIPT, 0, NOSCRIPT.length, start, start + NOSCRIPT.length) === 0) {
      this.#retried = true;
      const args: Buffer[] = [];
      new RequestParser((c) => {
        for (let i = 0; i < c.argc; i++) args.push(c.arg(i));
      }, () => undefined).feed(this.cbuf.subarray(this.cs, this.ce));
      args[0] = Buffer.from(this.name === 'evalsha_ro' ? 'EVAL_RO' : 'EVAL');
      args[1] = this.body;
      const bytes = encodeCommand(args);
      this.#conn.send(bytes, 0, bytes.length, this);
      return;
    }
    super.onReply(buf, start, end, type);
  }
}

function firstError(replies: Buffer[]): Buffer | null {
  for (const r of replies) if (r[0] === 0x2d) return r;
  return null;
}

export function script(s: ClientSession, cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
  const name = spec.name;
  const cache = s.ctx.scripts;
  if (name === 'script') return scriptCommand(s, cmd, t0);
  if (name === 'function') return functionCommand(s, cmd, t0);
  // EVAL, EVALSHA, FCALL and their _RO forms
  if (name === 'eval' || name === 'eval_ro') {
    const body = cmd.arg(1);
    if (body.includes('__cluster__')) return s.refuse(name, META_IN_SCRIPT);
    cache.remember(body);
  }
  const slot = s.slotOf(spec, cmd);
  if (typeof slot === 'string' && slot !== '') return s.refuse(name, slot);
  if (slot === '') {
    // no keys: any master
    if (name === 'evalsha' || name === 'evalsha_ro') {
      const body = cache.get(cmd.argString(1));
      if (body) return sendEvalsha(s, cmd, name, t0, -1, body);
    }
    return toAnyMaster(s, cmd, name, t0);
  }
  if (name === 'evalsha' || name === 'evalsha_ro') {
    const body = cache.get(cmd.argString(1));
    if (body) return sendEvalsha(s, cmd, name, t0, slot as number, body);
  }
  s.routeKeyed(spec, cmd, t0, 'script');
}

function sendEvalsha(s: ClientSession, cmd: ParsedCommand, name: string, t0: number, slot: number, body: Buffer): void {
  const r = s.routingOrRefuse(name);
  if (!r) return;
  let addr: string;
  if (slot >= 0) {
    const node = r.table.owner[slot]!;
    const hold = s.holdReason(r, node);
    if (hold) return s.refuse(name, hold);
    if (r.migrating.has(slot)) return s.refuse(name, `TRYAGAIN ringside: slot ${slot} is migrating; retry shortly`);
    addr = r.masterOf[node]!;
  } else addr = r.masters[s.id % r.masters.length]!;
  const raw = cmd.toResp();
  const req = new EvalshaRequest(s, s, name, t0, raw, slot, body);
  s.enqueue(req);
  req.sendTo(s.connFor(addr));
}

function scriptCommand(s: ClientSession, cmd: ParsedCommand, t0: number): void {
  const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
  const cache = s.ctx.scripts;
  const bytes = cmd.toResp();
  switch (sub) {
    case 'load': {
      if (cmd.argc !== 3) return s.refuse('script', "ERR wrong number of arguments for 'script|load' command");
      if (cmd.arg(2).includes('__cluster__')) return s.refuse('script', META_IN_SCRIPT);
      cache.remember(cmd.arg(2));
      return toEveryMaster(s, 'script', t0, () => bytes, (replies) => firstError(replies) ?? replies[0]!);
    }
    case 'exists': {
      const shas: string[] = [];
      for (let i = 2; i < cmd.argc; i++) shas.push(cmd.argString(i));
      return toEveryMaster(s, 'script', t0, () => bytes, (replies) => {
        const err = firstError(replies);
        if (err) return err;
        const all = replies.map((r) => (arrayElements(r) ?? []).map(([a, b]) => r.toString('latin1', a, b) === ':1\r\n'));
        return enc.array(shas.map((sha, i) => enc.integer(cache.get(sha) || all.every((x) => x[i]) ? 1 : 0)));
      });
    }
    case 'flush':
      cache.clear();
      return toEveryMaster(s, 'script', t0, () => bytes, (replies) => firstError(replies) ?? enc.OK);
    case 'kill':
      return toEveryMaster(s, 'script', t0, () => bytes, (replies) => replies.find((r) => r[0] === 0x2b) ?? replies[0]!);
  }
  return s.refuse('script', `ERR ringside: SCRIPT ${sub.toUpperCase()} is not supported through the sidecar`);
}

function functionCommand(s: ClientSession, cmd: ParsedCommand, t0: number): void {
  const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
  const bytes = cmd.toResp();
  switch (sub) {
    case 'load':
    case 'restore':
      for (let i = 2; i < cmd.argc; i++) if (cmd.arg(i).includes('__cluster__')) return s.refuse('function', META_IN_SCRIPT);
      return toEveryMaster(s, 'function', t0, () => bytes, (replies) => firstError(replies) ?? replies[0]!);
    case 'delete':
    case 'flush':
      return toEveryMaster(s, 'function', t0, () => bytes, (replies) => firstError(replies) ?? enc.OK);
    case 'kill':
      return toEveryMaster(s, 'function', t0, () => bytes, (replies) => replies.find((r) => r[0] === 0x2b) ?? replies[0]!);
    case 'list':
    case 'dump':
    case 'stats':
      return toAnyMaster(s, cmd, 'function', t0);
  }
  return s.refuse('function', `ERR ringside: FUNCTION ${sub.toUpperCase()} is not supported through the sidecar`);
}

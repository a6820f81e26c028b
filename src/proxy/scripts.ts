/**
 * Scripts and functions. EVAL/EVALSHA/FCALL (and _RO) route by their declared keys, which must
 * share a slot; with no keys they go to any master. SCRIPT LOAD/EXISTS/FLUSH/KILL and
 * FUNCTION LOAD/DELETE/FLUSH/RESTORE/KILL go to every master, merged; FUNCTION LIST/DUMP/STATS
 * read one master. The sidecar remembers every script body it has seen (EVAL, SCRIPT LOAD), so an
 * EVALSHA that a node no longer knows (it restarted) is answered by sending the body.
 */
import type { ParsedCommand } from '../resp/request-parser';
import { RequestParser, encodeCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import type { Session } from './context';
import type { NodeConnection } from './node-connection';
import { LocalRequest, SimpleRequest, RequestOwner, RedirectHandler } from './requests';
import { toEveryMaster } from './fanout';
import { arrayElements } from '../resp/reply-framer';
import { namesMeta } from '../cluster/meta-keys';
import { masterOrRefuse, redirector, routeKeyed, routingOrRefuse, toAnyMaster } from './keyed';
import { anyMaster, slotOf } from './router';
import * as text from './replies';
import * as enc from '../resp/encode';

const NOSCRIPT = Buffer.from('-NOSCRIPT');
const KNOWN_FUNCTION_SUBCOMMANDS = new Set(['load', 'delete', 'flush', 'kill', 'list', 'dump', 'restore', 'stats', 'help']);

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

export function script(s: Session, cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
  const name = spec.name;
  const cache = s.ctx.scripts;
  if (name === 'script') return scriptCommand(s, cmd, t0);
  if (name === 'function') return functionCommand(s, cmd, t0);
  // EVAL, EVALSHA, FCALL and their _RO forms
  if (name === 'eval' || name === 'eval_ro') {
    const body = cmd.arg(1);
    if (namesMeta(body)) return s.refuse(name, text.META_IN_SCRIPT);
    cache.remember(body);
  }
  const slot = slotOf(spec, cmd);
  if (typeof slot === 'string' && slot !== '') return s.refuse(name, slot);
  if (slot === '') {
    // no keys: any master
    if (name === 'evalsha' || name === 'evalsha_ro') {
      const body = cache.get(cmd.argString(1));
      if (body) return sendEvalsha(s, cmd, name, t0, -1, body);
    }
    return toAnyMaster(s, cmd, name, 'script', t0);
  }
  if (name === 'evalsha' || name === 'evalsha_ro') {
    const body = cache.get(cmd.argString(1));
    if (body) return sendEvalsha(s, cmd, name, t0, slot as number, body);
  }
  routeKeyed(s, spec, cmd, t0, 'script');
}

function sendEvalsha(s: Session, cmd: ParsedCommand, name: string, t0: number, slot: number, body: Buffer): void {
  const r = routingOrRefuse(s, name);
  if (!r) return;
  let addr: string | null;
  if (slot >= 0) {
    addr = masterOrRefuse(s, name, r, slot);
    if (addr === null) return;
  } else addr = anyMaster(r, s.id, s.ctx.pool.isDown);
  const raw = cmd.toResp();
  const req = new EvalshaRequest(s, redirector, name, t0, raw, slot, body);
  s.enqueue(req);
  req.sendTo(s.connFor(addr));
}

/**
 * SCRIPT KILL / FUNCTION KILL on every master, over the control connection: the busy script may
 * be running for a client whose shared connection this client's commands also use, and a node
 * reads nothing more from that connection until the script ends. OK when a node killed one,
 * else the node's NOTBUSY.
 */
function killEverywhere(s: Session, name: 'script' | 'function', t0: number): void {
  const r = s.ctx.view.routing;
  if (r === null) return s.refuse(name, text.NO_CONFIG);
  const req = new LocalRequest(s, name, 'script', t0);
  s.enqueue(req);
  void Promise.all(
    r.masterOf.map((m) =>
      s.ctx.view
        .client(m)
        .call(name.toUpperCase(), 'KILL')
        .then(
          () => null,
          (e: Error) => e.message,
        ),
    ),
  ).then((errors) => req.completeWith(errors.some((e) => e === null) ? enc.OK : enc.error(errors.find((e) => !/^NOTBUSY/.test(e!)) ?? errors[0]!)));
}

function scriptCommand(s: Session, cmd: ParsedCommand, t0: number): void {
  const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
  const cache = s.ctx.scripts;
  const bytes = cmd.toResp();
  switch (sub) {
    case 'load': {
      if (cmd.argc !== 3) return s.refuse('script', text.wrongArity('script|load'));
      if (namesMeta(cmd.arg(2))) return s.refuse('script', text.META_IN_SCRIPT);
      cache.remember(cmd.arg(2));
      return toEveryMaster(s, 'script', t0, () => bytes, text.firstErrorOrFirst);
    }
    case 'exists': {
      const shas: string[] = [];
      for (let i = 2; i < cmd.argc; i++) shas.push(cmd.argString(i));
      return toEveryMaster(s, 'script', t0, () => bytes, (replies) => {
        const err = text.firstError(replies);
        if (err) return err;
        const all = replies.map((r) => (arrayElements(r) ?? []).map(([a, b]) => r.toString('latin1', a, b) === ':1\r\n'));
        return enc.array(shas.map((sha, i) => enc.integer(cache.get(sha) || all.every((x) => x[i]) ? 1 : 0)));
      });
    }
    case 'flush':
      cache.clear();
      return toEveryMaster(s, 'script', t0, () => bytes, text.allOk);
    case 'kill':
      return killEverywhere(s, 'script', t0);
    case 'help':
      return toAnyMaster(s, cmd, 'script', 'script', t0);
  }
  return s.refuse('script', text.notSupported(`script ${sub}`));
}

function functionCommand(s: Session, cmd: ParsedCommand, t0: number): void {
  const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
  const bytes = cmd.toResp();
  switch (sub) {
    case 'load':
    case 'restore':
      for (let i = 2; i < cmd.argc; i++) if (namesMeta(cmd.arg(i))) return s.refuse('function', text.META_IN_SCRIPT);
      return toEveryMaster(s, 'function', t0, () => bytes, text.firstErrorOrFirst);
    case 'delete':
    case 'flush':
      return toEveryMaster(s, 'function', t0, () => bytes, text.allOk);
    case 'kill':
      return killEverywhere(s, 'function', t0);
    case 'list':
    case 'dump':
    case 'stats':
    case 'help':
      return toAnyMaster(s, cmd, 'function', 'script', t0);
  }
  // Redis's own text for a subcommand it does not have; a real one the sidecar does not route
  if (!KNOWN_FUNCTION_SUBCOMMANDS.has(sub)) return s.refuse('function', text.unknownSubcommand('function', cmd.argc > 1 ? cmd.argString(1) : ''));
  return s.refuse('function', text.notSupported(`function ${sub}`));
}

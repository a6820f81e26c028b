/**
 * The keyed families — a command sent to the one node that owns its keys (GET, SET, LPUSH, ...),
 * and MGET/MSET/DEL-like commands split over several — and the route-and-refuse steps every
 * family shares:
 *
 *   lease (routingOrRefuse) ─▶ slot (router.slotOf) ─▶ node (router.nodeFor) ─▶ address ─▶ send
 *
 * Each step that cannot go on answers the client with the refusal from src/proxy/replies.ts.
 * A node that says the configuration is stale (MIGRATED, wrong slot, READONLY) reaches
 * `redirector`, which reloads and sends the command where it now belongs.
 */
import type { ParsedCommand } from '../resp/request-parser';
import { encodeCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import type { Routing } from './routing';
import type { Session } from './context';
import { AllOkRequest, Family, MgetRequest, Redirect, RedirectHandler, SimpleRequest, SumRequest, commandRequest } from './requests';
import { MIGRATING, addressFor, anyMaster, nodeFor, refusalFor, slotOf, splitByNode } from './router';
import * as text from './replies';

const MAX_REDIRECTS = 3;

/** The routing to use now, or null after answering the refusal (no configuration, lease lapsed). */
export function routingOrRefuse(s: Session, name: string): Routing | null {
  const view = s.ctx.view;
  const err = view.leaseError(s.now);
  if (err !== null) {
    s.refuse(name, err);
    return null;
  }
  return view.routing;
}

/**
 * The master for a command on `slot` that cannot take the migration path (blocking commands,
 * WATCH, EVALSHA with its body), or null after answering why not.
 */
export function masterOrRefuse(s: Session, name: string, r: Routing, slot: number, waiting = ''): string | null {
  const node = nodeFor(r, slot, false);
  if (node < 0) {
    s.refuse(name, refusalFor(r, node, slot, waiting));
    return null;
  }
  return r.masterOf[node]!;
}

/** The keyed family: the command goes to the node owning its slot, unchanged. */
export function routeKeyed(s: Session, spec: CommandSpec, cmd: ParsedCommand, t0: number, family: Family): void {
  const slot = slotOf(spec, cmd);
  if (typeof slot === 'string') {
    if (slot === '' && spec.subcommands) return toAnyMaster(s, cmd, spec.name, family, t0);
    return s.refuse(spec.name, slot || text.noKey(spec.name));
  }
  const r = routingOrRefuse(s, spec.name);
  if (r === null) return;
  const node = nodeFor(r, slot, true);
  if (node < 0) return s.refuse(spec.name, refusalFor(r, node, slot));
  const req = commandRequest(s, redirector, spec.name, family, t0, cmd, slot);
  s.enqueue(req);
  if (r.migrating.size !== 0) {
    const mig = r.migrating.get(slot);
    if (mig) return s.ctx.migration.send(s, req, spec, cmd, r, mig);
  }
  let addr: string;
  if (spec.write) s.lastWriteAddress = addr = r.masterOf[node]!;
  else addr = spec.readonly ? addressFor(r, node, true, s.ctx.options.readFrom, s.id, s.ctx.pool.isDown) : r.masterOf[node]!;
  req.sendTo(s.connFor(addr));
}

/** Sends the command as it came to `addr` (the caller routed it). */
export function sendRaw(s: Session, name: string, family: Family, t0: number, cmd: ParsedCommand, addr: string): void {
  const req = commandRequest(s, redirector, name, family, t0, cmd, -1);
  s.enqueue(req);
  req.sendTo(s.connFor(addr));
}

/**
 * A keyless command any master can answer (COMMAND, FUNCTION LIST, EVAL with no keys): to one
 * master, chosen by the client's id among those up. It needs a configuration, not the lease:
 * no key's owner is decided by it.
 */
export function toAnyMaster(s: Session, cmd: ParsedCommand, name: string, family: Family, t0: number): void {
  const r = s.ctx.view.routing;
  if (r === null) return s.refuse(name, text.NO_CONFIG);
  sendRaw(s, name, family, t0, cmd, anyMaster(r, s.id, s.ctx.pool.isDown));
}

/** MGET, MSET, DEL, UNLINK, EXISTS, TOUCH: split per node and merged; in one slot, keyed. */
export function routeSplit(s: Session, spec: CommandSpec, cmd: ParsedCommand, t0: number): void {
  const name = spec.name;
  const step = spec.handling === 'split-mset' ? 2 : 1;
  if (step === 2 && (cmd.argc - 1) % 2 !== 0) return s.refuse(name, text.wrongArity(name));
  const r = routingOrRefuse(s, name);
  if (r === null) return;
  const plan = splitByNode(r, cmd, step);
  if (typeof plan === 'string') return s.refuse(name, plan);
  if (plan.oneSlot) return routeKeyed(s, spec, cmd, t0, 'simple');
  const read = spec.readonly && !spec.write;
  const opts = s.ctx.options;
  const isDown = s.ctx.pool.isDown;
  const nodes = plan.nodes;
  if (nodes.length === 1) {
    // every key on one node: the command as it came
    const req = commandRequest(s, redirector, name, 'split', t0, cmd, plan.firstSlot);
    s.enqueue(req);
    const addr = addressFor(r, nodes[0]!, read, opts.readFrom, s.id, isDown);
    if (spec.write) s.lastWriteAddress = addr;
    req.sendTo(s.connFor(addr));
    return;
  }
  let req: MgetRequest | SumRequest | AllOkRequest;
  if (spec.handling === 'split-mget') req = new MgetRequest(s, t0, plan.groups.map((g) => g.map((i) => i - 1)), cmd.argc - 1);
  else if (spec.handling === 'split-sum') req = new SumRequest(s, name, 'split', t0, nodes.length);
  else req = new AllOkRequest(s, name, 'split', t0, nodes.length);
  s.enqueue(req);
  req.nodes = [];
  const nameBuf = cmd.arg(0);
  for (let k = 0; k < nodes.length; k++) {
    const args: Buffer[] = [nameBuf];
    for (const i of plan.groups[k]!) {
      args.push(cmd.arg(i));
      if (step === 2) args.push(cmd.arg(i + 1));
    }
    const bytes = encodeCommand(args);
    const addr = addressFor(r, nodes[k]!, read, opts.readFrom, s.id, isDown);
    req.node = addr;
    req.nodes.push(addr);
    if (spec.write) s.lastWriteAddress = addr;
    s.connFor(addr).send(bytes, 0, bytes.length, req.fragment(k));
  }
}

/** A node said the configuration is stale: reload, and send the command where it belongs. */
export const redirector: RedirectHandler = {
  redirect(req: SimpleRequest, kind: Redirect, target: string | null): void {
    const s = req.owner as Session;
    const ctx = s.ctx;
    ctx.stats.redirects++;
    if (++req.redirects > MAX_REDIRECTS) return req.fail(text.redirectedTooOften(req.name, MAX_REDIRECTS));
    const reason = kind === Redirect.Migrated ? 'MIGRATED' : kind === Redirect.WrongSlot ? 'wrong hash slot' : 'READONLY master';
    const r = ctx.view.routing;
    if (kind === Redirect.Migrated && target && r) {
      // expected while our configuration already says the slot is moving there: no reload
      if (r.migrating.get(req.slot)?.toAddress !== target) void ctx.view.requestReload(`${reason} from ${req.node}`);
      if (r.masters.includes(target)) {
        req.sendTo(s.connFor(target));
        return;
      }
    }
    void ctx.view.requestReload(`${reason} from ${req.node}`).then(() => reroute(s, req));
  },
};

function reroute(s: Session, req: SimpleRequest): void {
  const view = s.ctx.view;
  const err = view.leaseError();
  if (err) return req.fail(err);
  const r = view.routing!;
  // a keyless command (EVAL with no keys, COMMAND) goes to a master again
  if (req.slot < 0) return req.sendTo(s.connFor(anyMaster(r, s.id, s.ctx.pool.isDown)));
  // the command's arguments are gone, so it cannot be wrapped in the migration script
  const node = nodeFor(r, req.slot, false);
  if (node === MIGRATING) return req.fail(text.migrating(req.slot));
  if (node < 0) return req.fail(refusalFor(r, node, req.slot));
  req.sendTo(s.connFor(r.masterOf[node]!));
}

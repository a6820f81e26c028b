/**
 * Commands that may block (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN/MAX, BZMPOP,
 * XREAD/XREADGROUP with BLOCK, WAIT) run on a connection of their own to the node, so a client
 * blocked for minutes stalls no one else. The connection is the client's (reused for its next
 * blocking command on that node) and closed when the client goes away, which unblocks it on the
 * node. The node's own timeout applies; the sidecar adds none.
 *
 * WAIT counts replicas that acknowledged the client's earlier writes. Those went over the shared
 * connection, so WAIT waits until they are answered, then writes a fence on the client's own
 * connection to that master and waits for replicas to acknowledge it: replication is in order,
 * so a replica that has the fence has the writes.
 */
import type { ParsedCommand } from '../resp/request-parser';
import { encodeCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import type { ClientSession } from './session';
import { Request, SimpleRequest } from './requests';
import { WAIT_FENCE_KEY } from './fanout';

/** WAIT: started only when every earlier request of the client has been answered. */
export class DeferredRequest extends Request {
  readonly #start: (req: DeferredRequest) => void;
  started = false;
  #left = 0;
  constructor(s: ClientSession, name: string, t0: number, start: (req: DeferredRequest) => void) {
    super(s, name, 'blocking', t0);
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

export function blocking(s: ClientSession, cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
  const name = spec.name;
  if (name === 'wait') {
    const raw = Buffer.from(cmd.toResp());
    const req = new DeferredRequest(s, 'wait', t0, (self) => {
      const r = s.ctx.view.routing;
      const lerr = s.ctx.view.leaseError();
      if (!r || lerr) return self.fail(lerr ?? 'CLUSTERDOWN ringside: no configuration');
      const addr = s.lastWriteAddress && r.masters.includes(s.lastWriteAddress) ? s.lastWriteAddress : r.masters[s.id % r.masters.length]!;
      const conn = s.dedicatedFor(addr);
      self.node = addr;
      const fence = encodeCommand(['SET', WAIT_FENCE_KEY, String(s.id)]);
      const bytes = Buffer.concat([fence, raw]);
      self.expect(2);
      conn.sendMany(bytes, self, 2);
    });
    s.enqueue(req);
    s.startDeferred();
    return;
  }
  const slot = s.slotOf(spec, cmd);
  if (typeof slot === 'string') return s.refuse(name, slot || `ERR ringside: ${name.toUpperCase()} has no key to route by`);
  const r = s.routingOrRefuse(name);
  if (!r) return;
  const node = r.table.owner[slot]!;
  const hold = s.holdReason(r, node);
  if (hold) return s.refuse(name, hold);
  if (r.migrating.has(slot)) return s.refuse(name, `TRYAGAIN ringside: slot ${slot} is migrating; blocking commands wait until it has moved`);
  const addr = r.masterOf[node]!;
  const raw = cmd.toResp();
  const req = new SimpleRequest(s, s, name, 'blocking', t0, raw, 0, raw.length, slot);
  s.enqueue(req);
  if (spec.write) s.lastWriteAddress = addr;
  req.sendTo(s.dedicatedFor(addr));
}

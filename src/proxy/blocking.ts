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
import type { Session } from './context';
import { DeferredRequest, commandRequest } from './requests';
import { WAIT_FENCE_KEY } from '../cluster/meta-keys';
import { masterOrRefuse, redirector, routingOrRefuse } from './keyed';
import { slotOf } from './router';
import * as text from './replies';

export function blocking(s: Session, cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
  const name = spec.name;
  if (name === 'wait') {
    const raw = Buffer.from(cmd.toResp());
    const req = new DeferredRequest(s, 'wait', t0, (self) => {
      const r = s.ctx.view.routing;
      const lerr = s.ctx.view.leaseError();
      if (!r || lerr) return self.fail(lerr ?? text.NO_CONFIG);
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
  const slot = slotOf(spec, cmd);
  if (typeof slot === 'string') return s.refuse(name, slot || text.noKey(name));
  const r = routingOrRefuse(s, name);
  if (!r) return;
  const addr = masterOrRefuse(s, name, r, slot, 'blocking commands');
  if (addr === null) return;
  const req = commandRequest(s, redirector, name, 'blocking', t0, cmd, slot);
  s.enqueue(req);
  if (spec.write) s.lastWriteAddress = addr;
  req.sendTo(s.dedicatedFor(addr));
}

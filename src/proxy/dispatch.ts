/**
 * From a parsed command to its family (after Envoy's command splitter): the command table's
 * `handling` names the family, whose handler routes, sends and refuses for itself. The session
 * calls `dispatchCommand` for every command no mode (MULTI, SUBSCRIBE, ...) took.
 *
 *   keyed        src/proxy/keyed.ts        one node, by the keys' slot
 *   split-*      src/proxy/keyed.ts        MGET/MSET/DEL-like, split per node and merged
 *   local        src/proxy/local.ts        answered by the sidecar
 *   fanout       src/proxy/fanout.ts       every master, merged (KEYS, SCAN, DBSIZE, FLUSHALL)
 *   script       src/proxy/scripts.ts      EVAL/FCALL by their keys; SCRIPT/FUNCTION everywhere
 *   transaction  src/proxy/transaction.ts  MULTI/EXEC/WATCH
 *   blocking     src/proxy/blocking.ts     a connection of the client's own (BLPOP, WAIT)
 *   pubsub       src/proxy/pubsub.ts       channels across sidecars
 *   refused      here                      with the table's reason
 */
import type { ParsedCommand } from '../resp/request-parser';
import { CommandSpec, arityOk, hasBlockOption } from '../commands/table';
import type { Session } from './context';
import { routeKeyed, routeSplit } from './keyed';
import { localCommand } from './local';
import { fanout } from './fanout';
import { script } from './scripts';
import { transaction } from './transaction';
import { blocking } from './blocking';
import { pubsub } from './pubsub';
import * as text from './replies';
import { logger } from '../observe/log';

/** `POST` and `Host:`, in any case: the first words of an HTTP request. */
function isCrossProtocol(name: string): boolean {
  return name.length <= 5 && (name.toLowerCase() === 'post' || name.toLowerCase() === 'host:');
}

export function dispatchCommand(s: Session, cmd: ParsedCommand, spec: CommandSpec | undefined, t0: number): void {
  if (spec === undefined) {
    const name = cmd.argString(0);
    if (isCrossProtocol(name)) {
      // an HTTP request: a web page in a browser on this host may be sending it (cross-protocol
      // scripting); Redis logs it and closes the connection without a reply, and so do we
      logger.warn('cross-protocol-request', { client: s.addr, command: name.slice(0, 8) });
      return s.abort();
    }
    s.lastCommand = name.toLowerCase();
    const args: string[] = [];
    for (let i = 1; i < cmd.argc && i < 4; i++) args.push(cmd.argString(i));
    // counted under one name: a client must not grow the stats (and metric labels) at will
    return s.refuse('unknown', text.unknownCommand(name, args));
  }
  s.lastCommand = spec.name;
  if (!arityOk(spec, cmd.argc)) return s.refuse(spec.name, text.wrongArity(spec.name));
  switch (spec.handling) {
    case 'keyed':
      if ((spec.name === 'xread' || spec.name === 'xreadgroup') && hasBlockOption(cmd)) return blocking(s, cmd, spec, t0);
      return routeKeyed(s, spec, cmd, t0, 'simple');
    case 'split-mget':
    case 'split-mset':
    case 'split-sum':
      return routeSplit(s, spec, cmd, t0);
    case 'local':
      return localCommand(s, spec, cmd, t0);
    case 'fanout':
      return fanout(s, cmd, spec, t0);
    case 'script':
      return script(s, cmd, spec, t0);
    case 'transaction':
      return transaction(s, cmd, spec, t0);
    case 'blocking':
      return blocking(s, cmd, spec, t0);
    case 'pubsub':
      return pubsub(s, cmd, spec, t0);
    case 'refused':
      return s.refuse(spec.name, spec.reason ? text.refusedByTable(spec.name, spec.reason) : text.notSupported(spec.name));
  }
}

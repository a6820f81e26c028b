/**
 * Commands the sidecar answers itself: PING, ECHO, QUIT, SELECT, HELLO, AUTH, CLIENT, COMMAND,
 * INFO, CONFIG, TIME, READONLY/READWRITE, RESET, SLOWLOG, LOLWUT.
 */
import type { ParsedCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import type { Session } from './context';
import { toAnyMaster } from './keyed';
import { controlRequest, fanout } from './fanout';
import { configCommand } from './config-command';
import * as text from './replies';
import { FanoutRequest, LocalRequest } from './requests';
import { encodeCommand } from '../resp/request-parser';
import { nodeInfoFields } from '../observe/info';
import { encodeSlowlogGet } from '../observe/slowlog';
import * as enc from '../resp/encode';
import { performance } from 'node:perf_hooks';

const VERSION: string = require('../../../package.json').version;

export function clientInfoLine(s: Session): string {
  const now = Date.now();
  const queued = s.tx === null ? -1 : s.tx.queuedCount;
  let flags = s.subs.channels + s.subs.patterns + s.subs.shard > 0 ? 'P' : '';
  if (queued !== -1) flags += 'x';
  if (s.blockedConnections().length !== 0) flags += 'b';
  if (flags === '') flags = 'N';
  return (
    `id=${s.id} addr=${s.addr} laddr=${s.laddr} fd=-1 name=${s.name} age=${Math.floor((now - s.createdAt) / 1000)} ` +
    `idle=${Math.floor((now - s.lastActive) / 1000)} flags=${flags} db=0 sub=${s.subs.channels} psub=${s.subs.patterns} ` +
    `ssub=${s.subs.shard} multi=${queued} qbuf=${s.queuedBytes} qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=${s.inflight} ` +
    `omem=${s.outputBytes} tot-mem=0 events=r cmd=${s.lastCommand} user=${s.user} redir=-1 resp=${s.proto}\n`
  );
}

/** Sections that carry fields only the nodes know (NodeInfoFields). */
const NODE_SECTIONS = new Set(['server', 'clients', 'memory', 'persistence', 'replication', 'default', 'all', 'everything']);
const NODE_INFO = encodeCommand(['INFO', 'server', 'clients', 'memory', 'persistence', 'replication']);

/**
 * INFO: the sidecar's own text, with the fields only the nodes know (blocked clients, changes
 * since the last save, the replication offset, the Redis version) from every master. Without a
 * configuration, or where a master does not answer, what it has.
 */
function infoWithNodes(s: Session, sections: string[], t0: number): void {
  const r = s.ctx.view.routing;
  if (r === null || (sections.length > 0 && !sections.some((x) => NODE_SECTIONS.has(x)))) return s.reply('info', enc.bulk(s.ctx.info(sections)));
  const merge = (replies: Buffer[]): Buffer => {
    const texts: string[] = [];
    for (const rep of replies) {
      if (rep[0] !== 0x24 && rep[0] !== 0x3d) continue;
      const cr = rep.indexOf(13);
      texts.push(rep.toString('latin1', cr + 2 + (rep[0] === 0x3d ? 4 : 0), rep.length - 2));
    }
    return enc.bulk(s.ctx.info(sections, nodeInfoFields(texts)));
  };
  // INFO is node administration: the control user asks
  controlRequest(s, 'info', t0, r.masterOf.length, merge, (req, conn) => {
    req.nodes = [];
    r.masterOf.forEach((addr, i) => {
      req.node = addr;
      req.nodes!.push(addr);
      conn(addr).send(NODE_INFO, 0, NODE_INFO.length, req.fragment(i));
    });
  });
}

export function localCommand(s: Session, spec: CommandSpec, cmd: ParsedCommand, t0: number): void {
  const name = spec.name;
  switch (name) {
    case 'ping':
      if (cmd.argc > 2) return s.refuse(name, text.wrongArity(name));
      return s.reply(name, cmd.argc > 1 ? enc.bulk(cmd.arg(1)) : enc.PONG);
    case 'echo':
      return s.reply(name, enc.bulk(cmd.arg(1)));
    case 'quit':
      return s.quit();
    case 'select': {
      const db = cmd.argInt(1);
      if (Number.isNaN(db)) return s.refuse(name, text.NOT_INTEGER);
      if (db !== 0) return s.refuse(name, text.DB_OUT_OF_RANGE);
      return s.reply(name, enc.OK);
    }
    case 'auth': {
      if (cmd.argc < 2 || cmd.argc > 3) return s.refuse(name, text.SYNTAX);
      const auth = s.ctx.clientAuth;
      if (!auth.enabled) {
        // no password asked: as a Redis whose default user has none
        if (cmd.argc === 2) return s.refuse(name, text.AUTH_NO_PASSWORD);
        if (cmd.argIs(1, 'default')) return s.reply(name, enc.OK);
        return s.refuse(name, text.WRONGPASS);
      }
      const user = cmd.argc === 3 ? cmd.argString(1) : 'default';
      if (!auth.check(user, cmd.arg(cmd.argc - 1))) return s.refuse(name, text.WRONGPASS);
      s.authed = true;
      s.user = user;
      return s.reply(name, enc.OK);
    }
    case 'hello': {
      let i = 1;
      if (cmd.argc > 1) {
        const v = cmd.argInt(1);
        if (Number.isNaN(v)) return s.refuse(name, text.PROTO_NOT_INTEGER);
        if (v !== 2 && v !== 3) return s.refuse(name, text.NOPROTO);
        i = 2;
      }
      let authAs: string | null = null;
      let setName: string | null = null;
      for (; i < cmd.argc; i++) {
        if (cmd.argIs(i, 'auth') && i + 2 < cmd.argc) {
          const user = cmd.argString(i + 1);
          if (s.ctx.clientAuth.enabled ? !s.ctx.clientAuth.check(user, cmd.arg(i + 2)) : user !== 'default') return s.refuse(name, text.WRONGPASS);
          authAs = user;
          i += 2;
        } else if (cmd.argIs(i, 'setname') && i + 1 < cmd.argc) {
          const n = cmd.argString(++i);
          if (/[\s]/.test(n)) return s.refuse(name, text.BAD_CLIENT_NAME);
          setName = n;
        } else return s.refuse(name, text.helloSyntax(cmd.argString(i)));
      }
      if (authAs === null && !s.authed) return s.refuse(name, text.HELLO_NOAUTH);
      if (authAs !== null) {
        s.authed = true;
        s.user = authAs;
      }
      if (setName !== null) s.name = setName;
      if (cmd.argc > 1) s.proto = cmd.argInt(1) as 2 | 3;
      const fields = ['server', 'redis', 'version', '7.0.0', 'proto', s.proto, 'id', s.id, 'mode', 'standalone', 'role', 'master', 'modules', []];
      return s.reply(name, s.proto === 3 ? enc.map(fields.map(enc.value)) : enc.value(fields));
    }
    case 'readonly':
    case 'readwrite':
      return s.reply(name, enc.OK);
    case 'time': {
      const us = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
      return s.reply(name, enc.value([String(us / 1_000_000n), String(us % 1_000_000n)]));
    }
    case 'lolwut':
      return s.reply(name, enc.bulk(`Ringside ver. ${VERSION}: a Redis smart-router sidecar.\n`));
    case 'info': {
      const sections: string[] = [];
      for (let i = 1; i < cmd.argc; i++) sections.push(cmd.argString(i).toLowerCase());
      if (sections.includes('keyspace')) return fanout(s, cmd, spec, t0);
      return infoWithNodes(s, sections, t0);
    }
    case 'command':
    case 'pfselftest':
      return toAnyMaster(s, cmd, name, 'local', t0);
    case 'config':
      return configCommand(s, cmd, t0);
    case 'client':
      return clientCommand(s, cmd, t0);
    case 'slowlog':
      return slowlogCommand(s, cmd);
    case 'reset':
      s.resetModes();
      s.name = '';
      // as in Redis: back to the default user, which has to authenticate again when passwords are asked
      s.user = 'default';
      s.authed = !s.ctx.clientAuth.enabled;
      return s.reply(name, enc.simple('RESET'));
  }
  return s.refuse(name, text.notSupported(name));
}

function clientCommand(s: Session, cmd: ParsedCommand, t0: number): void {
  const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
  switch (sub) {
    case 'id':
      return s.reply('client', enc.integer(s.id));
    case 'getname':
      return s.reply('client', s.name ? enc.bulk(s.name) : s.nullReply);
    case 'setname': {
      if (cmd.argc !== 3) return s.refuse('client', text.wrongArity('client|setname'));
      const n = cmd.argString(2);
      if (/[^\x21-\x7e]/.test(n)) return s.refuse('client', text.BAD_CLIENT_NAME);
      s.name = n;
      return s.reply('client', enc.OK);
    }
    case 'setinfo':
    case 'no-evict':
    case 'no-touch':
      return s.reply('client', enc.OK);
    case 'info':
      return s.reply('client', enc.bulk(clientInfoLine(s)));
    case 'list': {
      let ids: Set<number> | null = null;
      for (let i = 2; i < cmd.argc; i++) {
        if (cmd.argIs(i, 'id')) {
          ids = new Set();
          for (let j = i + 1; j < cmd.argc; j++) ids.add(cmd.argInt(j));
          break;
        }
        if (cmd.argIs(i, 'type')) {
          i++;
          continue;
        }
      }
      let text = '';
      for (const o of s.ctx.sessions) if (!ids || ids.has(o.id)) text += clientInfoLine(o);
      return s.reply('client', enc.bulk(text));
    }
    case 'kill':
      return clientKill(s, cmd);
    case 'unblock':
      return clientUnblock(s, cmd, t0);
    case 'pause': {
      const ms = cmd.argInt(2);
      if (Number.isNaN(ms) || ms < 0) return s.refuse('client', text.TIMEOUT_NOT_INTEGER);
      let mode: 'all' | 'write' = 'all';
      if (cmd.argc > 3) {
        if (cmd.argIs(3, 'write')) mode = 'write';
        else if (!cmd.argIs(3, 'all')) return s.refuse('client', text.SYNTAX);
      }
      s.ctx.pausedUntil = Date.now() + ms;
      s.ctx.pauseMode = mode;
      return s.reply('client', enc.OK);
    }
    case 'unpause':
      s.ctx.pausedUntil = 0;
      return s.reply('client', enc.OK);
    case 'reply': {
      const mode = cmd.argc === 3 ? cmd.argLower(2) : '';
      if (mode !== 'on' && mode !== 'off' && mode !== 'skip') return s.refuse('client', cmd.argc === 3 ? text.SYNTAX : text.wrongArity('client|reply'));
      return s.replyMode(mode);
    }
    case 'tracking':
    case 'caching':
    case 'getredir':
    case 'trackinginfo':
      return s.refuse('client', text.notSupported(`client ${sub}`));
  }
  return s.refuse('client', text.unknownSubcommand('client', cmd.argc > 1 ? cmd.argString(1) : ''));
}

/**
 * CLIENT UNBLOCK id [TIMEOUT|ERROR]: the sidecar's client `id` waits on a node over a connection
 * of its own; the node knows that connection by its address, so CLIENT LIST there finds its id
 * and CLIENT UNBLOCK there unblocks it. Answers 1 when a blocked command was unblocked, else 0.
 */
function clientUnblock(s: Session, cmd: ParsedCommand, t0: number): void {
  if (cmd.argc < 3 || cmd.argc > 4) return s.refuse('client', text.wrongArity('client|unblock'));
  const id = cmd.argInt(2);
  if (!Number.isInteger(id)) return s.refuse('client', text.NOT_INTEGER);
  let mode = 'TIMEOUT';
  if (cmd.argc === 4) {
    if (cmd.argIs(3, 'error')) mode = 'ERROR';
    else if (!cmd.argIs(3, 'timeout')) return s.refuse('client', 'ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR');
  }
  let target: Session | undefined;
  for (const o of s.ctx.sessions) if (o.id === id) target = o;
  const conns = target?.blockedConnections() ?? [];
  const req = new LocalRequest(s, 'client', 'local', t0);
  s.enqueue(req);
  if (conns.length === 0) return req.completeWith(enc.integer(0));
  void Promise.all(
    conns.map(async (c) => {
      const node = s.ctx.view.client(c.address);
      const list = String(await node.call('CLIENT', 'LIST', 'TYPE', 'normal'));
      const m = new RegExp(`^id=(\\d+) addr=\\S+:${c.localPort} `, 'm').exec(list);
      if (!m) return 0;
      return Number(await node.call('CLIENT', 'UNBLOCK', m[1]!, mode));
    }),
  ).then(
    (n) => req.completeWith(enc.integer(n.some((x) => x === 1) ? 1 : 0)),
    (e: Error) => req.fail(`ERR ringside: CLIENT UNBLOCK: ${e.message}`),
  );
}

/** CLIENT KILL addr | CLIENT KILL [ID id] [ADDR addr] [LADDR addr] [SKIPME yes/no]: the sidecar's own clients. */
function clientKill(s: Session, cmd: ParsedCommand): void {
  const targets = [...s.ctx.sessions];
  if (cmd.argc === 3) {
    const addr = cmd.argString(2);
    const t = targets.find((o) => o.addr === addr);
    if (!t) return s.refuse('client', text.NO_SUCH_CLIENT);
    if (t === s) s.quit();
    else t.socket.destroy();
    if (t !== s) s.reply('client', enc.OK);
    return;
  }
  let id: number | null = null;
  let addr: string | null = null;
  let laddr: string | null = null;
  let skipme = true;
  for (let i = 2; i + 1 < cmd.argc; i += 2) {
    const f = cmd.argLower(i);
    const v = cmd.argString(i + 1);
    if (f === 'id') id = Number(v);
    else if (f === 'addr') addr = v;
    else if (f === 'laddr') laddr = v;
    else if (f === 'skipme') skipme = v.toLowerCase() !== 'no';
    else if (f === 'type' || f === 'user' || f === 'maxage') continue;
    else return s.refuse('client', text.SYNTAX);
  }
  let n = 0;
  for (const o of targets) {
    if (id !== null && o.id !== id) continue;
    if (addr !== null && o.addr !== addr) continue;
    if (laddr !== null && o.laddr !== laddr) continue;
    if (o === s && skipme) continue;
    n++;
    if (o !== s) o.socket.destroy();
  }
  s.reply('client', enc.integer(n));
  if (!skipme && targets.includes(s) && (id === null || id === s.id)) s.quit();
}

function slowlogCommand(s: Session, cmd: ParsedCommand): void {
  const sub = cmd.argc > 1 ? cmd.argLower(1) : '';
  if (sub === 'get') {
    const n = cmd.argc > 2 ? cmd.argInt(2) : 10;
    if (Number.isNaN(n)) return s.refuse('slowlog', text.OUT_OF_RANGE_POSITIVE);
    return s.reply('slowlog', encodeSlowlogGet(s.ctx.slowlog.get(n)));
  }
  if (sub === 'len') return s.reply('slowlog', enc.integer(s.ctx.slowlog.len()));
  if (sub === 'reset') {
    s.ctx.slowlog.reset();
    return s.reply('slowlog', enc.OK);
  }
  return s.refuse('slowlog', text.unknownSubcommand('slowlog', cmd.argc > 1 ? cmd.argString(1) : ''));
}

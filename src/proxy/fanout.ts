/**
 * Keyspace-wide commands, sent to every master and merged: KEYS, SCAN (a cursor that names the
 * node it is on), DBSIZE, RANDOMKEY, FLUSHALL/FLUSHDB (ASYNC too), INFO keyspace. The cluster's
 * metadata (`__cluster__:*`) never shows in a result, and a flush keeps it (one script per node:
 * save the metadata, flush, restore — atomic on that node).
 */
import type { ParsedCommand } from '../resp/request-parser';
import { encodeCommand } from '../resp/request-parser';
import type { CommandSpec } from '../commands/table';
import type { Session } from './context';
import { DeferredRequest, FanoutRequest, Request } from './requests';
import type { NodeConnection } from './node-connection';
import { arrayElements } from '../resp/reply-framer';
import { isMetaKey, metaKeysFor } from '../cluster/meta-keys';
import type { Routing } from './routing';
import { routingOrRefuse } from './keyed';
import { everyMasterRefusal } from './router';
import * as text from './replies';
import * as enc from '../resp/encode';

/** Every metadata key a node may hold for this configuration. */
const metaKeys = (r: Routing): string[] => metaKeysFor(r.table.names);

const DBSIZE_SCRIPT = `local n = redis.call('DBSIZE') for _, k in ipairs(KEYS) do n = n - redis.call('EXISTS', k) end return n`;
// a few random draws; when they all hit metadata (a node with few user keys), a SCAN finds one
const RANDOMKEY_SCRIPT = `
for i = 1, 16 do
  local k = redis.call('RANDOMKEY')
  if not k then return false end
  if string.sub(k, 1, 12) ~= '__cluster__:' then return k end
end
local cursor = '0'
repeat
  local r = redis.call('SCAN', cursor, 'COUNT', 100)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    if string.sub(k, 1, 12) ~= '__cluster__:' then return k end
  end
until cursor == '0'
return false`;
const FLUSH_SCRIPT = `
local keys = redis.call('KEYS', '__cluster__:*')
local saved = {}
for i, k in ipairs(keys) do saved[i] = { redis.call('DUMP', k), redis.call('PTTL', k) } end
if ARGV[2] ~= '' then redis.call(ARGV[1], ARGV[2]) else redis.call(ARGV[1]) end
for i, k in ipairs(keys) do
  local ttl = saved[i][2]
  if ttl < 0 then ttl = 0 end
  redis.call('RESTORE', k, ttl, saved[i][1], 'REPLACE')
end
return redis.status_reply('OK')`;
const KEYSPACE_SCRIPT = `
local info = redis.call('INFO', 'keyspace')
local meta, metaExp = 0, 0
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    meta = meta + 1
    if redis.call('PTTL', k) > 0 then metaExp = metaExp + 1 end
  end
end
return { info, meta, metaExp }`;

/** [start, end) of the content of a bulk string element at [s, e). */
function bulkContent(buf: Buffer, s: number, e: number): [number, number] | null {
  if (buf[s] !== 0x24) return null;
  const cr = buf.indexOf(13, s);
  if (buf[s + 1] === 0x2d) return null; // $-1
  return [cr + 2, e - 2];
}

/**
 * A merged request whose commands must run as the control user (they read or keep the metadata,
 * or are node administration the data user may not run: docs/protocol.md, "Credentials and the
 * two users"). When the two roles share credentials it goes out now on the client's shared
 * connections. Otherwise it goes on control connections, which must not overtake the client's
 * earlier commands on its data connections: it starts once every earlier request is answered.
 */
export function controlRequest(
  s: Session,
  name: string,
  t0: number,
  fragments: number,
  merge: (replies: Buffer[]) => Buffer,
  send: (req: FanoutRequest, conn: (addr: string) => NodeConnection) => void,
): void {
  const pool = s.ctx.pool;
  if (!pool.credentials.split) {
    const req = new FanoutRequest(s, name, t0, fragments, merge);
    s.enqueue(req);
    send(req, (addr) => s.connFor(addr));
    return;
  }
  const outer = new DeferredRequest(
    s,
    name,
    t0,
    (self) => {
      const owner = {
        completed: (inner: Request): void => {
          self.node = inner.node;
          self.nodes = inner.nodes;
          self.refused = inner.refused;
          self.complete(inner.rbuf!, inner.rs, inner.re);
        },
      };
      send(new FanoutRequest(owner, name, t0, fragments, merge), (addr) => pool.control(addr, s.id, s.proto));
    },
    'fanout',
  );
  s.enqueue(outer);
  s.startDeferred();
}

/**
 * Sends `commandFor(i)` to master i (node order) and merges. `asControl`: the commands need the
 * control user (see controlRequest).
 */
export function toEveryMaster(
  s: Session,
  name: string,
  t0: number,
  commandFor: (i: number, r: Routing) => Buffer,
  merge: (replies: Buffer[], r: Routing) => Buffer,
  asControl = false,
): void {
  const r = routingOrRefuse(s, name);
  if (!r) return;
  const refusal = everyMasterRefusal(r);
  if (refusal !== null) return s.refuse(name, refusal);
  const send = (req: FanoutRequest, conn: (addr: string) => NodeConnection): void => {
    r.masterOf.forEach((addr, i) => {
      const bytes = commandFor(i, r);
      req.node = addr;
      conn(addr).send(bytes, 0, bytes.length, req.fragment(i));
    });
  };
  if (asControl) return controlRequest(s, name, t0, r.masterOf.length, (replies) => merge(replies, r), send);
  const req = new FanoutRequest(s, name, t0, r.masterOf.length, (replies) => merge(replies, r));
  s.enqueue(req);
  send(req, (addr) => s.connFor(addr));
}

function mergeKeys(replies: Buffer[]): Buffer {
  const err = text.firstError(replies);
  if (err) return err;
  const parts: Buffer[] = [];
  for (const rep of replies) {
    for (const [s, e] of arrayElements(rep) ?? []) {
      const c = bulkContent(rep, s, e);
      if (c && isMetaKey(rep, c[0], c[1])) continue;
      parts.push(rep.subarray(s, e));
    }
  }
  return Buffer.concat([Buffer.from(`*${parts.length}\r\n`), ...parts]);
}

/**
 * SCAN's cursor names the node: cursor = nodeCursor × masters + node index (node order), so a
 * full iteration walks node 0 to the end, then node 1, and so on: every key once when nothing
 * changes. Numbers are kept as BigInt: node cursors are unsigned 64-bit.
 */
export function encodeScanCursor(nodeCursor: bigint, node: number, masters: number): bigint {
  return nodeCursor * BigInt(masters) + BigInt(node);
}
export function decodeScanCursor(cursor: bigint, masters: number): { node: number; nodeCursor: bigint } {
  const m = BigInt(masters);
  return { node: Number(cursor % m), nodeCursor: cursor / m };
}

function scan(s: Session, cmd: ParsedCommand, t0: number): void {
  const r = routingOrRefuse(s, 'scan');
  if (!r) return;
  let cursor: bigint;
  try {
    const text = cmd.argString(1);
    if (!/^\d+$/.test(text)) throw new Error();
    cursor = BigInt(text);
  } catch {
    return s.refuse('scan', text.INVALID_CURSOR);
  }
  const n = r.masterOf.length;
  const { node, nodeCursor } = decodeScanCursor(cursor, n);
  if (node === r.switchingIndex) return s.refuse('scan', text.switching(r.table.names[node]!));
  const args: Array<Buffer | string> = ['SCAN', nodeCursor.toString()];
  for (let i = 2; i < cmd.argc; i++) args.push(cmd.arg(i));
  const bytes = encodeCommand(args);
  const addr = r.masterOf[node]!;
  const merge = ([rep]: Buffer[]): Buffer => {
    if (rep![0] === 0x2d) return rep!;
    const top = arrayElements(rep!);
    if (!top || top.length !== 2) throw new Error('unexpected SCAN reply');
    const [cs, ce] = bulkContent(rep!, top[0]![0], top[0]![1])!;
    const next = BigInt(rep!.toString('latin1', cs, ce));
    const outCursor = next !== 0n ? encodeScanCursor(next, node, n) : node + 1 < n ? encodeScanCursor(0n, node + 1, n) : 0n;
    const keys: Buffer[] = [];
    const inner = rep!.subarray(top[1]![0], top[1]![1]);
    for (const [ks, ke] of arrayElements(inner) ?? []) {
      const c = bulkContent(inner, ks, ke);
      if (c && isMetaKey(inner, c[0], c[1])) continue;
      keys.push(inner.subarray(ks, ke));
    }
    return Buffer.concat([Buffer.from('*2\r\n'), enc.bulk(outCursor.toString()), Buffer.from(`*${keys.length}\r\n`), ...keys]);
  };
  controlRequest(s, 'scan', t0, 1, merge, (req, conn) => {
    req.node = addr;
    conn(addr).send(bytes, 0, bytes.length, req.fragment(0));
  });
}

function infoKeyspace(replies: Buffer[]): Buffer {
  const err = text.firstError(replies);
  if (err) return err;
  let keys = 0;
  let expires = 0;
  for (const rep of replies) {
    const els = arrayElements(rep)!;
    const [is, ie] = bulkContent(rep, els[0]![0], els[0]![1])!;
    const text = rep.toString('utf8', is, ie);
    const meta = Number(rep.toString('latin1', els[1]![0] + 1, els[1]![1] - 2));
    const metaExp = Number(rep.toString('latin1', els[2]![0] + 1, els[2]![1] - 2));
    const m = /db0:keys=(\d+),expires=(\d+)/.exec(text);
    if (m) {
      keys += Number(m[1]) - meta;
      expires += Number(m[2]) - metaExp;
    }
  }
  const body = `# Keyspace\r\n${keys > 0 ? `db0:keys=${keys},expires=${Math.max(0, expires)},avg_ttl=0\r\n` : ''}`;
  return enc.bulk(body);
}

export function fanout(s: Session, cmd: ParsedCommand, spec: CommandSpec, t0: number): void {
  const name = spec.name;
  switch (name) {
    case 'keys': {
      const bytes = cmd.toResp();
      return toEveryMaster(s, name, t0, () => bytes, mergeKeys, true);
    }
    case 'scan':
      return scan(s, cmd, t0);
    case 'dbsize':
      return toEveryMaster(s, name, t0, (_i, r) => encodeCommand(['EVAL', DBSIZE_SCRIPT, String(metaKeys(r).length), ...metaKeys(r)]), text.sumIntegers, true);
    case 'randomkey': {
      const bytes = encodeCommand(['EVAL', RANDOMKEY_SCRIPT, '0']);
      return toEveryMaster(s, name, t0, () => bytes, (replies) => {
        const err = text.firstError(replies);
        if (err) return err;
        const found = replies.filter((r) => !(r[0] === 0x24 && r[1] === 0x2d) && r[0] !== 0x5f);
        return found.length ? found[Math.floor(Math.random() * found.length)]! : s.nullReply;
      }, true);
    }
    case 'flushall':
    case 'flushdb': {
      let mode = '';
      if (cmd.argc > 2) return s.refuse(name, text.SYNTAX);
      if (cmd.argc === 2) {
        if (cmd.argIs(1, 'async')) mode = 'ASYNC';
        else if (cmd.argIs(1, 'sync')) mode = 'SYNC';
        else return s.refuse(name, text.SYNTAX);
      }
      const bytes = encodeCommand(['EVAL', FLUSH_SCRIPT, '0', name.toUpperCase(), mode]);
      return toEveryMaster(s, name, t0, () => bytes, text.allOk, true);
    }
    case 'info':
      return toEveryMaster(s, 'info', t0, (_i, r) => encodeCommand(['EVAL', KEYSPACE_SCRIPT, String(metaKeys(r).length), ...metaKeys(r)]), infoKeyspace, true);
  }
  s.refuse(name, text.notSupported(name));
}

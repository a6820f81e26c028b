/**
 * The router (src/proxy/router.ts) without a socket or a redis-server: where every family's
 * commands go, and what each is told when they cannot go anywhere. Configurations are built as
 * documents, as the nodes would hold them.
 */
import t from 'tap';
import { COMMANDS, CommandSpec } from '../../src/commands/table';
import { ParsedCommand, RequestParser, encodeCommand } from '../../src/resp/request-parser';
import { ClusterConfig, initialConfig, validateConfig } from '../../src/cluster/config';
import { slotOf as keySlot } from '../../src/cluster/slot';
import { Routing } from '../../src/proxy/routing';
import {
  MIGRATING,
  SWITCHING,
  addressFor,
  anyMaster,
  everyMasterRefusal,
  leaseRefusal,
  nodeFor,
  refusalFor,
  slotOf,
  splitByNode,
} from '../../src/proxy/router';
import * as text from '../../src/proxy/replies';

function parse(...args: string[]): ParsedCommand {
  let out: ParsedCommand | null = null;
  new RequestParser((c) => (out = c), (m) => {
    throw new Error(m);
  }).feed(encodeCommand(args));
  return out!;
}
const spec = (name: string): CommandSpec => COMMANDS.get(name)!;

/** three shards a, b, c; each master with one replica */
function config(over: Partial<ClusterConfig> = {}): ClusterConfig {
  const base = initialConfig([
    { master: '10.0.0.1:6379', replicas: ['10.0.0.2:6379'] },
    { master: '10.0.0.3:6379', replicas: ['10.0.0.4:6379'] },
    { master: '10.0.0.5:6379', replicas: ['10.0.0.6:6379'] },
  ]);
  return validateConfig({ ...base, ...over });
}
const routing = (over: Partial<ClusterConfig> = {}): Routing => new Routing(config(over), 'v');
const none = (): boolean => false;

/** a key whose slot is owned by `node` (index), and which is not in `not` */
function keyOn(r: Routing, node: number, not: Set<number> = new Set()): string {
  for (let i = 0; ; i++) {
    const k = `key:${i}`;
    if (r.table.owner[keySlot(k)] === node && !not.has(keySlot(k))) return k;
  }
}

t.test('a single-key command goes to the slot of its key, and a {tag} decides the slot', async (t) => {
  t.equal(slotOf(spec('get'), parse('GET', 'user:1')), keySlot('user:1'));
  t.equal(slotOf(spec('set'), parse('SET', '{user:1}:cart', 'x')), keySlot('user:1'));
  t.equal(slotOf(spec('rename'), parse('RENAME', '{t}a', '{t}b')), keySlot('t'), 'two keys with one tag share a slot');
});

t.test('a command naming a metadata key is refused, in any key position', async (t) => {
  t.equal(slotOf(spec('get'), parse('GET', '__cluster__:config')), text.META_REFUSED);
  t.equal(slotOf(spec('rename'), parse('RENAME', 'a', '__cluster__:version')), text.META_REFUSED);
  t.equal(slotOf(spec('eval'), parse('EVAL', 'return 1', '1', '__cluster__:config')), text.META_REFUSED);
  t.equal(slotOf(spec('get'), parse('GET', '__cluster_x')), keySlot('__cluster_x'), 'a near miss is an ordinary key');
});

t.test('keys in different slots are refused with CROSSSLOT; a keyless command has no slot', async (t) => {
  let b = 'k1';
  for (let i = 1; keySlot(b) === keySlot('k0'); i++) b = `k${i}`;
  t.equal(slotOf(spec('rename'), parse('RENAME', 'k0', b)), `${text.CROSSSLOT} (k0 in slot ${keySlot('k0')}, ${b} in slot ${keySlot(b)}); keys that must meet need one {tag}`);
  const many = slotOf(spec('del'), parse('DEL', 'a\r\nb', 'k0', b, 'x', 'y', 'z')) as string;
  t.match(many, /^CROSSSLOT Keys in request don't hash to the same slot \(a\?\?b in slot \d+, k0 in slot \d+, .*, 2 more\)/, 'control bytes hidden, at most four keys named');
  t.equal(slotOf(spec('eval'), parse('EVAL', 'return 1', '0')), '', 'EVAL with no keys');
  t.match(slotOf(spec('object'), parse('OBJECT', 'nosuch', 'k')), /not supported through the sidecar/, 'an unknown subcommand');
  t.match(slotOf(spec('eval'), parse('EVAL', 'return 1', '5', 'k')), /keys/i, 'more keys declared than given');
});

t.test('a slot goes to the node that owns it', async (t) => {
  const r = routing();
  for (let slot = 0; slot < 1024; slot += 37) t.equal(nodeFor(r, slot, true), r.table.owner[slot], `slot ${slot}`);
  t.equal(r.masterOf[nodeFor(r, 0, true)], '10.0.0.1:6379', 'slot 0 is on the first shard');
  t.equal(r.masterOf[nodeFor(r, 1023, true)], '10.0.0.5:6379', 'slot 1023 is on the last shard');
});

t.test('while a node is switching to a new master, its slots are refused with TRYAGAIN and the others route', async (t) => {
  const r = routing({ switching: { node: 'b', to: '10.0.0.4:6379', from: '10.0.0.3:6379', since: 1, by: 'x' } });
  const onB = keySlot(keyOn(r, 1));
  const onA = keySlot(keyOn(r, 0));
  t.equal(nodeFor(r, onB, true), SWITCHING);
  t.equal(nodeFor(r, onB, false), SWITCHING);
  t.equal(refusalFor(r, SWITCHING, onB), text.switching('b'));
  t.match(refusalFor(r, SWITCHING, onB), /^TRYAGAIN ringside: node b is switching/);
  t.equal(nodeFor(r, onA, true), 0, 'another node is not held');
  t.equal(everyMasterRefusal(r), text.switching('b'), 'a command for every master waits');
  t.equal(everyMasterRefusal(routing()), null);
});

t.test('a migrating slot takes the migration path where the command can, and is refused where it cannot', async (t) => {
  const r = routing({ migrating: { '5': { from: 'a', to: 'b' } } });
  t.equal(nodeFor(r, 5, true), 0, 'keyed commands go to the old owner (through the migration script)');
  t.equal(r.migrating.get(5)?.toAddress, '10.0.0.3:6379');
  t.equal(nodeFor(r, 5, false), MIGRATING, 'blocking commands, WATCH, EXEC and reissues cannot');
  t.equal(refusalFor(r, MIGRATING, 5), 'TRYAGAIN ringside: slot 5 is migrating; retry shortly');
  t.equal(refusalFor(r, MIGRATING, 5, 'blocking commands'), 'TRYAGAIN ringside: slot 5 is migrating; blocking commands wait until it has moved');
  t.equal(nodeFor(r, 6, false), 0, 'the slot next to it is not held');
});

t.test('writes go to the master; reads follow --read-from, spread by client id, passing over copies that are down', async (t) => {
  const r = routing();
  const m = '10.0.0.1:6379';
  const rep = '10.0.0.2:6379';
  t.equal(addressFor(r, 0, false, 'replica', 7, none), m, 'a write goes to the master whatever the policy');
  t.equal(addressFor(r, 0, true, 'master', 7, none), m, 'read-from master');
  t.equal(addressFor(r, 0, true, 'replica', 7, none), rep, 'read-from replica');
  t.equal(addressFor(r, 0, true, 'replica', 7, (a) => a === rep), m, 'with the replica down, the master');
  const any = new Set([0, 1, 2, 3].map((id) => addressFor(r, 0, true, 'any', id, none)));
  t.same([...any].sort(), [m, rep], 'read-from any uses the master and the replica');
  t.equal(addressFor(r, 0, true, 'any', 1, (a) => a === m), rep, 'read-from any passes over a master that is down');
  t.equal(addressFor(r, 0, true, 'any', 1, () => true), m, 'everything down: the master (its error is the answer)');
});

t.test('a keyless command goes to a master that is up, the same one for one client', async (t) => {
  const r = routing();
  t.equal(anyMaster(r, 4, none), anyMaster(r, 4, none));
  t.not(anyMaster(r, 0, (a) => a === '10.0.0.1:6379'), '10.0.0.1:6379');
  t.ok(r.masters.includes(anyMaster(r, 2, () => true)), 'all down: still a master');
});

t.test('a multi-key command is split by node, keeping each node\'s keys in their order', async (t) => {
  const r = routing();
  const [a1, a2, b1, c1] = [keyOn(r, 0), keyOn(r, 0, new Set([keySlot(keyOn(r, 0))])), keyOn(r, 1), keyOn(r, 2)];
  const plan = splitByNode(r, parse('MGET', a1, b1, a2, c1), 1);
  if (typeof plan === 'string') return t.fail(plan);
  t.equal(plan.oneSlot, false);
  t.same(plan.nodes, [0, 1, 2], 'nodes in order of their first key');
  t.same(plan.groups, [[1, 3], [2], [4]], 'argument indexes per node');
  const mset = splitByNode(r, parse('MSET', a1, 'x', b1, 'y'), 2);
  if (typeof mset === 'string') return t.fail(mset);
  t.same(mset.groups, [[1], [3]], 'MSET: the key of each pair');
  const one = splitByNode(r, parse('MGET', '{t}a', '{t}b'), 1);
  t.ok(typeof one !== 'string' && one.oneSlot, 'one slot: sent as it came');
});

t.test('a split refuses metadata keys, a switching node, and a migrating slot among others', async (t) => {
  const r = routing();
  t.equal(splitByNode(r, parse('MGET', 'a', '__cluster__:config'), 1), text.META_REFUSED);
  const sw = routing({ switching: { node: 'c', to: '10.0.0.6:6379', from: '10.0.0.5:6379', since: 1, by: 'x' } });
  t.equal(splitByNode(sw, parse('DEL', keyOn(sw, 0), keyOn(sw, 2)), 1), text.switching('c'));
  const k0 = keyOn(r, 0);
  const k1 = keyOn(r, 1);
  const mig = routing({ migrating: { [String(keySlot(k1))]: { from: 'b', to: 'a' } } });
  t.match(splitByNode(mig, parse('MGET', k0, k1), 1), /^TRYAGAIN ringside: slot \d+ is migrating; multi-key commands across slots wait/);
  t.match(splitByNode(mig, parse('MGET', k1, k0), 1), /is migrating; multi-key commands across slots wait/, 'the migrating key first, too');
  const alone = splitByNode(mig, parse('MGET', k1, k1), 1);
  t.ok(typeof alone !== 'string' && alone.oneSlot, 'all keys in the migrating slot: routed like one key');
});

t.test('the lease: no routing before a configuration is confirmed, nor after the lease since the last confirmation', async (t) => {
  t.equal(leaseRefusal(false, 0, 1000, 1500), text.NO_CONFIG);
  t.equal(leaseRefusal(true, 0, 1000, 1500), text.NOT_CONFIRMED);
  t.equal(leaseRefusal(true, 1000, 2500, 1500), null, 'exactly the lease: still valid');
  t.equal(leaseRefusal(true, 1000, 2501, 1500), text.leaseLapsed(1501, 1500));
  t.match(leaseRefusal(true, 1000, 9000, 1500)!, /^CLUSTERDOWN ringside: configuration not confirmed by a majority of masters for 8000 ms \(lease 1500 ms\)/);
});

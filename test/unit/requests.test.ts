/**
 * SimpleRequest is not declared as a subclass of Request (its prototype is linked to Request's,
 * so that its construction is inlined; src/proxy/requests.ts): these tests hold it to what a
 * subclass would be.
 */
import t from 'tap';
import { NodeError } from '../../src/proxy/node-connection';
import { LocalRequest, Request, RequestOwner, SimpleRequest, RedirectHandler } from '../../src/proxy/requests';

class Owner implements RequestOwner {
  done: Request[] = [];
  completed(req: Request): void {
    this.done.push(req);
  }
}

const noRedirects: RedirectHandler = {
  redirect: () => {
    throw new Error('no redirect expected');
  },
};

function simple(owner: RequestOwner): SimpleRequest {
  const cmd = Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n');
  return new SimpleRequest(owner, noRedirects, 'get', 'simple', 12.5, cmd, 0, cmd.length, 7);
}

t.test('a SimpleRequest starts with every field a Request starts with, and the same values', async (t) => {
  const owner = new Owner();
  const base = new LocalRequest(owner, 'get', 'simple', 12.5) as unknown as Record<string, unknown>;
  const req = simple(owner) as unknown as Record<string, unknown>;
  const fields = Object.keys(base);
  t.ok(fields.length >= 12, `a Request has its fields as own properties (${fields.join(', ')})`);
  for (const f of fields) {
    t.ok(Object.prototype.hasOwnProperty.call(req, f), `has ${f}`);
    t.same(req[f], base[f], `${f} starts as a Request's does`);
  }
});

t.test('a SimpleRequest is a Request: instanceof, and the methods it inherits', async (t) => {
  const owner = new Owner();
  const req = simple(owner);
  t.ok(req instanceof Request, 'instanceof Request');
  t.ok(req instanceof SimpleRequest);
  for (const m of ['complete', 'completeWith', 'fail', 'onError'] as const) t.equal(req[m], Request.prototype[m], `inherits ${m}`);
  const reply = Buffer.from('$1\r\nv\r\n');
  req.onReply(reply, 0, reply.length, 0x24);
  t.equal(owner.done.length, 1, 'a reply completes it, once');
  t.equal(req.done, true);
  t.equal(req.rbuf, reply);
  t.equal(req.isError, false, 'the isError getter is inherited');
  req.fail('ERR late');
  t.equal(owner.done.length, 1, 'a completed request does not complete again');
  const failed = simple(owner);
  failed.onError(new NodeError('127.0.0.1:1', 'lost', 'ERR node down'));
  t.equal(owner.done.length, 2);
  t.equal(failed.isError, true);
  t.equal(failed.refused, true, 'an error from the node side is counted as refused, as for any Request');
  t.equal(failed.rbuf!.toString(), '-ERR node down\r\n');
});

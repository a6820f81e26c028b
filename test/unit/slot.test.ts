import t from 'tap';
import { createHash } from 'node:crypto';
import { slotOf, slotOfBytes, hashedRange, SLOT_COUNT } from '../../src/cluster/slot';

// Reference: the first 10 bits of SHA1, computed with a different API than the code under test.
function reference(key: Buffer): number {
  let h = key;
  const o = key.indexOf(0x7b);
  if (o !== -1) {
    const c = key.indexOf(0x7d, o + 1);
    if (c !== -1 && c > o + 1) h = key.subarray(o + 1, c);
  }
  const d = createHash('sha1').update(h).digest();
  return (d.readUInt16BE(0) >>> 6) & 1023;
}

t.test('slot of a key is the first ten bits of its SHA1', async (t) => {
  // sha1("foo") = 0beec7b5...: 0x0bee >> 6 = 47
  t.equal(slotOf('foo'), 47);
  // sha1("bar") = 62cdb702...: 0x62cd >> 6 = 395
  t.equal(slotOf('bar'), 395);
  t.equal(SLOT_COUNT, 1024);
});

t.test('keys sharing a {tag} share a slot, and the tag alone is hashed', async (t) => {
  t.equal(slotOf('{user:1}:cart'), slotOf('{user:1}:profile'));
  t.equal(slotOf('{user:1}:cart'), slotOf('user:1'));
  t.equal(slotOf('x{a}y{b}'), slotOf('a'), 'only the first tag counts');
  t.equal(slotOf('a{b}{c}'), slotOf('b'));
});

t.test('an empty or unclosed tag hashes the whole key', async (t) => {
  t.equal(slotOf('{}x'), reference(Buffer.from('{}x')));
  t.not(slotOf('{}x'), slotOf('x'));
  t.same(hashedRange(Buffer.from('{}x')), [0, 3]);
  t.same(hashedRange(Buffer.from('a{bc')), [0, 4]);
  t.same(hashedRange(Buffer.from('a}b{c}')), [4, 5]);
  t.same(hashedRange(Buffer.from('{{a}}')), [1, 3], 'first { then the first } after it');
});

t.test('slot of a view into a larger buffer equals the slot of the copied key', async (t) => {
  const buf = Buffer.from('*2\r\n$3\r\nGET\r\n$9\r\n{tag}rest\r\n');
  const start = buf.indexOf('{tag}');
  t.equal(slotOfBytes(buf, start, start + 9), slotOf('{tag}rest'));
  t.equal(slotOfBytes(buf, start, start + 9), slotOf('tag'));
});

t.test('slot agrees with the reference over many generated keys, binary ones included', async (t) => {
  let bad = 0;
  for (let i = 0; i < 20000; i++) {
    const len = i % 40;
    const k = Buffer.alloc(len);
    for (let j = 0; j < len; j++) k[j] = (i * 31 + j * 17 + (i >> 3)) & 0xff;
    if (i % 7 === 0 && len > 4) {
      k[1] = 0x7b;
      k[len - 2] = 0x7d;
    }
    const s = slotOfBytes(k);
    if (s !== reference(k) || s < 0 || s >= 1024) bad++;
  }
  t.equal(bad, 0);
});

t.test('tags are found inside the key only, whatever braces surround it in the buffer', async (t) => {
  // every key of up to 7 bytes over { } a b, as a view between a { and a } that are not the key's
  const alphabet = [0x7b, 0x7d, 0x61, 0x62];
  let bad = 0;
  let n = 0;
  for (let len = 0; len <= 7; len++) {
    for (let code = 0; code < 4 ** len; code++) {
      const k = Buffer.alloc(len);
      for (let j = 0, c = code; j < len; j++, c >>= 2) k[j] = alphabet[c & 3]!;
      const framed = Buffer.concat([Buffer.from('x{y'), k, Buffer.from('}z')]);
      if (slotOfBytes(framed, 3, 3 + len) !== reference(k)) bad++;
      const [hs, he] = hashedRange(k);
      if (slotOfBytes(k) !== reference(k.subarray(hs, he))) bad++;
      n++;
    }
  }
  t.equal(n, 21845);
  t.equal(bad, 0);
});

t.test('keys of every length up to and past the inline SHA1 limit agree with node:crypto', async (t) => {
  let bad = 0;
  for (let len = 0; len <= 400; len++) {
    const k = Buffer.alloc(len, 0x61 + (len % 26));
    if (len > 3) k[len >> 1] = 0x7a;
    if (slotOfBytes(k) !== reference(k)) bad++;
  }
  t.equal(bad, 0);
});

t.test('slots are spread over the whole range', async (t) => {
  const seen = new Set<number>();
  for (let i = 0; i < 20000; i++) seen.add(slotOf(`key:${i}`));
  t.equal(seen.size, 1024);
});

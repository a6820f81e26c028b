// deploy/README.md documents every file under deploy/.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const deploy = resolve(__dirname, '../../../deploy');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}

t.test('README.md names every deploy file', async (t) => {
  const readme = readFileSync(join(deploy, 'README.md'), 'utf8');
  const all = files(deploy).map((f) => relative(deploy, f)).filter((f) => f !== 'README.md');
  t.ok(all.length >= 10, `${all.length} files`);
  for (const f of all) t.ok(readme.includes(f), f);
});

/**
 * No module under src/ imports another in a cycle (scripts/check-cycles.js; `import type`
 * counts too). The check itself is shown to fail on a tree that has one.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.join(__dirname, '../../..');
const check = (dir: string) => spawnSync(process.execPath, [path.join(root, 'scripts/check-cycles.js'), dir], { encoding: 'utf8' });

t.test('src/ has no import cycle', async (t) => {
  const r = check(path.join(root, 'src'));
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.match(r.stdout, /import cycles: none/);
});

t.test('the check names the files of a cycle, type-only imports included', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringside-cycles-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b';\nexport const a = b;\n");
  fs.writeFileSync(path.join(dir, 'b.ts'), "import type { C } from './c';\nexport const b = 1 as unknown as C;\n");
  fs.writeFileSync(path.join(dir, 'c.ts'), "import { a } from './a';\nexport type C = typeof a;\n");
  fs.writeFileSync(path.join(dir, 'd.ts'), "import { a } from './a';\nexport const d = a;\n");
  const r = check(dir);
  t.equal(r.status, 1);
  t.match(r.stdout, /import cycle among 3 files: a\.ts, b\.ts, c\.ts/);
});

// deploy/docker: no docker engine runs here, so the Dockerfile is checked statically — linted
// by dockerfile-utils (the Dockerfile language service's validator), then its stages and
// final image read for what the deploy contract asks — and its HEALTHCHECK command is run for
// real against a stand-in /healthz server.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { validate } from 'dockerfile-utils';
import { NODE_FLAGS } from '../../src/cli/node-flags';

const repo = resolve(__dirname, '../../..');
const dockerfile = readFileSync(join(repo, 'deploy/docker/Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(repo, 'deploy/docker/Dockerfile.dockerignore'), 'utf8');

interface Instruction {
  op: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (cur === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    cur += line;
    const m = /^(\S+)\s*(.*)$/.exec(cur)!;
    out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    cur = '';
  }
  return out;
}

/** Stages: the instructions from each FROM to the next. */
function stages(ins: Instruction[]): { from: string; name?: string; body: Instruction[] }[] {
  const out: { from: string; name?: string; body: Instruction[] }[] = [];
  for (const i of ins) {
    if (i.op === 'FROM') {
      const [from, as, name] = i.args.split(/\s+/);
      out.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] });
    } else if (out.length > 0) out[out.length - 1].body.push(i);
  }
  return out;
}

/** Is a context path excluded by .dockerignore rules (last matching rule wins)? */
function ignored(path: string, rules: string): boolean {
  let excluded = false;
  for (const raw of rules.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pat = (negate ? line.slice(1) : line).replace(/\/$/, '');
    const re = new RegExp(
      '^' + pat.split('**/').map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')).join('(?:.*/)?') + '(?:/.*)?$',
    );
    if (re.test(path)) excluded = !negate;
  }
  return excluded;
}

const all = instructions(dockerfile);
const argDefaults = Object.fromEntries(
  all.filter((i) => i.op === 'ARG' && i.args.includes('=')).map((i) => i.args.split('=', 2) as [string, string]),
);
const expand = (s: string): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => argDefaults[a ?? b] ?? '');

t.test('the Dockerfile lints clean (dockerfile-utils)', async (t) => {
  t.same(validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`), []);
  // The linter does fail on a broken file.
  const broken = dockerfile.replace(/^USER .*$/m, 'USER').replace(/^COPY bin/m, 'COPPY bin').replace(/^(ENTRYPOINT .*)$/m, '$1\nENTRYPOINT ["node"]');
  t.ok(validate(broken).length >= 2, `a broken copy is reported (${validate(broken).map((d) => d.message).join('; ')})`);
});

t.test('multi-stage build: dev deps to build, production deps at run time, small node base', async (t) => {
  const st = stages(all);
  t.ok(st.length >= 2, `${st.length} stages`);
  for (const s of st) t.match(expand(s.from), /^node:20(-[\w.]+)?-(slim|alpine)/, `base ${s.from} = ${expand(s.from)}`);
  const run = (s: (typeof st)[number]): string => s.body.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
  const build = st.find((s) => /npm run build/.test(run(s)));
  t.ok(build, 'a stage runs npm run build');
  t.match(run(build!), /npm ci(?![^\n]*--omit=dev)/, 'the build stage installs dev dependencies');
  const final = st[st.length - 1];
  const copies = final.body.filter((i) => i.op === 'COPY').map((i) => i.args);
  const fromStage = (name: string | undefined): (typeof st)[number] | undefined => st.find((s) => s.name === name);
  const nm = copies.find((c) => /node_modules/.test(c));
  t.ok(nm, 'final stage copies node_modules');
  const nmStage = fromStage(/--from=(\S+)/.exec(nm ?? '')?.[1]);
  t.match(nmStage ? run(nmStage) : '', /npm ci [^\n]*--omit=dev/, 'those node_modules are production-only');
  t.ok(copies.some((c) => new RegExp(`--from=${build!.name}\\s+\\S*dist/src\\s`).test(c)), 'final stage copies the compiled dist/src');
  t.ok(copies.some((c) => /^bin\s/.test(c)), 'final stage copies bin/');
  t.notOk(copies.some((c) => /^src\s/.test(c)), 'no TypeScript sources in the final image');
  // bin/ringside.js loads ../dist/src/cli/main.js, which tsc makes from src/cli/main.ts.
  t.match(readFileSync(join(repo, 'bin/ringside.js'), 'utf8'), /\.\.\/dist\/src\/cli\/main\.js/);
  t.ok(existsSync(join(repo, 'src/cli/main.ts')), 'src/cli/main.ts exists');
});

t.test('runtime image: non-root user, entrypoint, command, health check', async (t) => {
  const final = stages(all).at(-1)!.body;
  const last = (op: string): string | undefined => final.filter((i) => i.op === op).at(-1)?.args;
  const user = last('USER');
  t.ok(user, 'USER set');
  t.notOk(/^(root|0)(:|$)/.test(user ?? 'root'), `USER ${user} is not root`);
  t.match(user ?? '', /^\d+(:\d+)?$/, 'numeric USER (Kubernetes runAsNonRoot can check it)');
  t.same(JSON.parse(last('ENTRYPOINT') ?? 'null'), ['node', ...NODE_FLAGS, 'bin/ringside.js'], 'node runs with NODE_FLAGS');
  t.same(JSON.parse(last('CMD') ?? 'null'), ['serve']);
  t.equal(last('STOPSIGNAL'), 'SIGTERM');
  const hc = last('HEALTHCHECK') ?? '';
  t.match(hc, /\/healthz/);
  t.match(hc, /9379/);
  t.notMatch(hc, /curl|wget/, 'no curl/wget needed');
});

t.test('the build context (repo root) keeps what the Dockerfile copies, drops the rest', async (t) => {
  const sources = [...new Set(all
    .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
    .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1)))];
  t.ok(sources.length > 0);
  for (const s of sources) {
    const p = s.replace(/\/$/, '');
    t.ok(existsSync(join(repo, p)), `${p} exists in the repo`);
    t.notOk(ignored(p, dockerignore), `${p} is sent in the context`);
  }
  for (const p of ['node_modules', 'dist', '.git', 'test', 'deploy', 'src/x/node_modules']) t.ok(ignored(p, dockerignore), `${p} is not sent`);
});

/** Run the image's HEALTHCHECK command (JSON exec form) with the given metrics port. */
function runHealthcheck(port: number): Promise<number> {
  const hc = stages(all).at(-1)!.body.filter((i) => i.op === 'HEALTHCHECK').at(-1)!.args;
  const argv = JSON.parse(hc.slice(hc.indexOf('CMD') + 3).trim()) as string[];
  if (argv[0] !== 'node') throw new Error(`HEALTHCHECK runs ${argv[0]}, not node`);
  return new Promise((res) => {
    // env(1) without NODE_OPTIONS: keep tap's loader hooks out of the child.
    execFile('env', ['-u', 'NODE_OPTIONS', `RINGSIDE_METRICS_PORT=${port}`, process.execPath, ...argv.slice(1)], { timeout: 20000 }, (err) =>
      res(err ? (typeof err.code === 'number' ? err.code : -1) : 0),
    );
  });
}

t.test('the HEALTHCHECK command passes on 200 from /healthz and fails otherwise', async (t) => {
  let status = 200;
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.statusCode = req.url === '/healthz' ? status : 404;
    res.end('ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  t.equal(await runHealthcheck(port), 0, 'healthy: exit 0');
  status = 503;
  t.equal(await runHealthcheck(port), 1, 'unhealthy: exit 1');
  await new Promise<void>((r) => server.close(() => r()));
  t.equal(await runHealthcheck(port), 1, 'nothing listening: exit 1');
  t.same(paths, ['/healthz', '/healthz']);
});

// deploy/k8s: every manifest document validates against the Kubernetes schemas (the JSON
// schemas generated from the Kubernetes OpenAPI spec that the kubernetes-models package
// bundles, checked with ajv, offline), has no unknown fields (the same package's TypeScript
// types, with tsc's excess-property check), and the pieces fit together: probes on the
// metrics port paths, the app pointed at the sidecar on loopback, the create Job's shards
// naming the StatefulSet's pods. deploy/compose/compose.yaml is parsed and its services'
// references to each other checked. Broken copies (in memory) must fail each check.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';

const repo = resolve(__dirname, '../../..');
const k8sDir = join(repo, 'deploy/k8s');

type Obj = Record<string, any>;
interface Doc {
  file: string;
  index: number;
  body: Obj;
}

/** Kinds the manifests may use: the schema-validating model and the TypeScript type for each. */
const KINDS: Record<string, { model: new (data: any) => { validate(): void }; module: string; type: string }> = {
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service', type: 'IService' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'apps/v1/StatefulSet': { model: StatefulSet, module: 'kubernetes-models/apps/v1/StatefulSet', type: 'IStatefulSet' },
  'batch/v1/Job': { model: Job, module: 'kubernetes-models/batch/v1/Job', type: 'IJob' },
};
const kindKey = (d: Obj): string => `${d.apiVersion}/${d.kind}`;

function loadManifests(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    parseAllDocuments(readFileSync(join(k8sDir, file), 'utf8')).forEach((d, index) => {
      if (d.errors.length > 0) throw new Error(`${file} document ${index}: ${d.errors.map((e) => e.message).join('; ')}`);
      const body = d.toJS() as Obj | null;
      if (body !== null) docs.push({ file, index, body });
    });
  }
  return docs;
}

/** Schema problems of one document ([] when valid). */
function schemaProblems(body: Obj): string[] {
  const k = KINDS[kindKey(body)];
  if (!k) return [`no schema for ${kindKey(body)}`];
  try {
    new k.model(structuredClone(body)).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (existsSync(join(dir, cmd))) return join(dir, cmd);
  return undefined;
}

/**
 * Unknown-field check: the documents as object literals typed with kubernetes-models'
 * interfaces, compiled with tsc; returns tsc's diagnostics ('' when clean).
 */
function unknownFieldProblems(docs: Obj[], dir: string): string {
  const imports = new Set<string>();
  const consts: string[] = [];
  docs.forEach((d, i) => {
    const k = KINDS[kindKey(d)];
    if (!k) throw new Error(`no type for ${kindKey(d)}`);
    imports.add(`import type { ${k.type} } from '${k.module}';`);
    consts.push(`export const doc${i}: ${k.type} = ${JSON.stringify(d, null, 2)};`);
  });
  writeFileSync(join(dir, 'manifests.ts'), [...imports, ...consts].join('\n') + '\n');
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', types: [], skipLibCheck: true }, files: ['manifests.ts'] }),
  );
  // Through env(1) without NODE_OPTIONS: tap's process-info hook re-adds its loader to child
  // processes' NODE_OPTIONS, and that loader breaks tsc's ES module entry point.
  const tsc = join(repo, 'node_modules/typescript/bin/tsc');
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, tsc, '-p', dir], { encoding: 'utf8' });
  return r.status === 0 ? '' : `${r.stdout}${r.stderr}`.trim() || `tsc exit ${r.status}`;
}

function typesDir(t: { teardown: (fn: () => void) => unknown }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringside-k8s-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

// ---- how the manifests must fit together -------------------------------------------------

const find = (docs: Obj[], kind: string, name?: string): Obj | undefined =>
  docs.find((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));

/** Problems with the sidecar Deployment and the ConfigMap it reads ([] when right). */
function sidecarProblems(docs: Obj[]): string[] {
  const p: string[] = [];
  const dep = find(docs, 'Deployment');
  if (!dep) return ['no Deployment'];
  const pod = dep.spec?.template?.spec ?? {};
  const all: Obj[] = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
  const ringside = all.find((c) => c.name === 'ringside');
  if (!ringside) return ['no ringside container'];
  const native = (pod.initContainers ?? []).includes(ringside);
  if (native && ringside.restartPolicy !== 'Always') p.push('ringside as an init container must be a sidecar (restartPolicy: Always)');
  if (ringside.args?.[0] !== 'serve') p.push('ringside container does not run serve');

  // Settings: from a ConfigMap that exists in the manifests, plus the container's own env.
  const cmName = (ringside.envFrom ?? []).map((e: Obj) => e.configMapRef?.name).find(Boolean);
  const cm = cmName && find(docs, 'ConfigMap', cmName);
  if (!cm) p.push(`envFrom ConfigMap ${cmName} not among the manifests`);
  const env: Record<string, string> = { ...(cm?.data ?? {}) };
  for (const e of ringside.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  if (!env.RINGSIDE_SEEDS) p.push('RINGSIDE_SEEDS not set from the ConfigMap');
  const metricsPort = Number(env.RINGSIDE_METRICS_PORT ?? 9379);
  const redisPort = Number(env.RINGSIDE_PORT ?? 6379);
  if (!['0.0.0.0', '::'].includes(env.RINGSIDE_METRICS_BIND ?? '127.0.0.1')) p.push('metrics port must listen beyond loopback for kubelet probes');
  if (!['127.0.0.1', 'localhost', undefined].includes(env.RINGSIDE_BIND)) p.push(`sidecar Redis port bound to ${env.RINGSIDE_BIND}, not loopback`);

  const portNumber = (port: unknown): number | undefined =>
    typeof port === 'number' ? port : (ringside.ports ?? []).find((x: Obj) => x.name === port)?.containerPort;
  const probe = (name: string, path: string): void => {
    const g = ringside[name]?.httpGet;
    if (!g) return void p.push(`${name} is not an httpGet probe`);
    if (g.path !== path) p.push(`${name} path ${g.path}, want ${path}`);
    if (portNumber(g.port) !== metricsPort) p.push(`${name} port ${g.port} is not the metrics port ${metricsPort}`);
  };
  probe('readinessProbe', '/readyz');
  probe('livenessProbe', '/healthz');

  const sc = { ...(pod.securityContext ?? {}), ...(ringside.securityContext ?? {}) };
  if (sc.runAsNonRoot !== true) p.push('ringside not runAsNonRoot');
  if (sc.runAsUser === 0) p.push('ringside runs as uid 0');
  if (ringside.securityContext?.readOnlyRootFilesystem !== true) p.push('ringside root filesystem not read-only');
  if (ringside.securityContext?.allowPrivilegeEscalation !== false) p.push('ringside allows privilege escalation');
  if (!ringside.resources?.requests?.cpu || !ringside.resources?.requests?.memory) p.push('ringside without resource requests');

  // The app: every other container, pointed at the sidecar on loopback.
  const apps = (pod.containers ?? []).filter((c: Obj) => c !== ringside);
  if (apps.length === 0) p.push('no app container');
  for (const app of apps) {
    const e: Record<string, string> = Object.fromEntries((app.env ?? []).map((x: Obj) => [x.name, x.value]));
    if (!['127.0.0.1', 'localhost'].includes(e.REDIS_HOST)) p.push(`app ${app.name}: REDIS_HOST=${e.REDIS_HOST}, not loopback`);
    if (Number(e.REDIS_PORT) !== redisPort) p.push(`app ${app.name}: REDIS_PORT=${e.REDIS_PORT}, sidecar listens on ${redisPort}`);
    if (e.REDIS_URL !== undefined && !new RegExp(`^redis://(127\\.0\\.0\\.1|localhost):${redisPort}/?$`).test(e.REDIS_URL)) p.push(`app ${app.name}: REDIS_URL=${e.REDIS_URL}`);
  }
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  if (grace < 30) p.push(`terminationGracePeriodSeconds ${grace} too short for the drain`);
  return p;
}

/** Problems with the data-node StatefulSet, the create Job and the seeds ([] when right). */
function clusterProblems(docs: Obj[]): string[] {
  const p: string[] = [];
  const sts = find(docs, 'StatefulSet');
  if (!sts) return ['no StatefulSet'];
  const svc = find(docs, 'Service', sts.spec.serviceName);
  if (!svc) return [`StatefulSet serviceName ${sts.spec.serviceName} has no Service`];
  if (svc.spec.clusterIP !== 'None') p.push('data-node Service is not headless');
  if (svc.spec.publishNotReadyAddresses !== true) p.push('data-node Service does not publish not-ready addresses');
  const labels = sts.spec.template.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(svc.spec.selector ?? {})) if (labels[k] !== v) p.push(`Service selector ${k}=${v} does not match the pods`);
  for (const [k, v] of Object.entries(sts.spec.selector?.matchLabels ?? {})) if (labels[k] !== v) p.push(`StatefulSet selector ${k}=${v} does not match its pods`);
  const port = (svc.spec.ports ?? []).find((x: Obj) => x.name === 'redis')?.port;
  const replicas = sts.spec.replicas;
  const pods = Array.from({ length: replicas }, (_, i) => `${sts.metadata.name}-${i}.${svc.metadata.name}:${port}`);

  const job = find(docs, 'Job');
  if (!job) return [...p, 'no create Job'];
  const c = job.spec.template.spec.containers[0];
  const args: string[] = c.args ?? [];
  if (args[0] !== 'create') p.push('Job does not run create');
  const shards = args.flatMap((a, i) => (a === '--shard' ? [args[i + 1]] : []));
  if (shards.length !== 3) p.push(`${shards.length} shards, want 3`);
  const named = shards.flatMap((s) => s.split(','));
  for (const s of shards) if (s.split(',').length !== 2) p.push(`shard ${s} is not master,replica`);
  for (const n of named) if (!pods.includes(n)) p.push(`shard member ${n} is not a StatefulSet pod (${pods.join(' ')})`);
  if (new Set(named).size !== named.length || named.length !== replicas) p.push(`shards do not use each of the ${replicas} pods once`);

  const dep = find(docs, 'Deployment');
  const all: Obj[] = [...(dep?.spec.template.spec.initContainers ?? []), ...(dep?.spec.template.spec.containers ?? [])];
  const ringside = all.find((x) => x.name === 'ringside');
  if (ringside && ringside.image !== c.image) p.push(`Job image ${c.image} differs from the sidecar's ${ringside.image}`);
  const seeds: string = find(docs, 'ConfigMap')?.data?.RINGSIDE_SEEDS ?? '';
  for (const s of seeds.split(',').filter(Boolean)) if (!pods.includes(s)) p.push(`seed ${s} is not a data node`);
  return p;
}

// ---- compose -----------------------------------------------------------------------------

/** Problems with compose.yaml's services and their references ([] when right). */
function composeProblems(compose: Obj): string[] {
  const p: string[] = [];
  const services: Obj = compose.services ?? {};
  const names = Object.keys(services);
  const nodes = names.filter((n) => /^redis-\d+$/.test(n));
  if (nodes.length !== 6) p.push(`${nodes.length} data nodes, want 6`);
  for (const n of nodes) {
    if (!/^redis:7(\b|$)/.test(services[n].image ?? '')) p.push(`${n} image ${services[n].image}, want redis:7`);
    if (!services[n].healthcheck) p.push(`${n} has no healthcheck (create waits for it)`);
  }
  for (const [name, s] of Object.entries(services)) {
    for (const dep of Object.keys(s.depends_on ?? {})) if (!names.includes(dep)) p.push(`${name} depends on unknown service ${dep}`);
    const nm = s.network_mode as string | undefined;
    if (nm?.startsWith('service:') && !names.includes(nm.slice('service:'.length))) p.push(`${name} network_mode ${nm}: no such service`);
  }
  const create = services.create;
  if (!create) return [...p, 'no create service'];
  const cmd: string[] = create.command ?? [];
  if (cmd[0] !== 'create') p.push('create service does not run create');
  const shards = cmd.flatMap((a, i) => (a === '--shard' ? [cmd[i + 1]] : []));
  const members = shards.flatMap((s) => s.split(','));
  if (shards.length !== 3 || members.length !== 6 || new Set(members).size !== 6) p.push(`shards ${shards.join(' ')}: want 3 of master,replica over 6 nodes`);
  for (const m of members) {
    const [host, port] = m.split(':');
    if (!nodes.includes(host) || port !== '6379') p.push(`shard member ${m} is not a data node service`);
  }
  for (const n of nodes) if (create.depends_on?.[n]?.condition !== 'service_healthy') p.push(`create does not wait for ${n} to be healthy`);

  const rs = services.ringside;
  if (!rs) return [...p, 'no ringside service'];
  if (rs.depends_on?.create?.condition !== 'service_completed_successfully') p.push('ringside does not wait for create to complete');
  const env: Obj = rs.environment ?? {};
  for (const s of String(env.RINGSIDE_SEEDS ?? '').split(',')) if (!members.includes(s)) p.push(`seed ${s} is not a data node`);
  if (rs.image !== create.image) p.push('ringside and create use different images');
  const build = rs.build ?? create.build;
  if (!build || !existsSync(join(repo, 'deploy/compose', build.context, build.dockerfile))) p.push('build context + dockerfile do not name deploy/docker/Dockerfile');
  const metrics = String(env.RINGSIDE_METRICS_PORT ?? 9379);
  if (!(rs.ports ?? []).some((x: string) => String(x).endsWith(`:${metrics}`))) p.push('metrics port not published');

  const app = services.app;
  if (!app) return [...p, 'no app service'];
  if (app.network_mode !== 'service:ringside') p.push(`app network_mode ${app.network_mode}, want service:ringside`);
  if (!/-h (127\.0\.0\.1|localhost) -p 6379\b/.test(JSON.stringify(app.command ?? ''))) p.push('app does not talk to 127.0.0.1:6379');
  return p;
}

// ---- tests -------------------------------------------------------------------------------

const manifests = loadManifests();
const bodies = manifests.map((d) => d.body);

t.test('deploy/k8s has the expected files and kinds', async (t) => {
  const files = new Set(manifests.map((d) => d.file));
  for (const f of ['configmap.yaml', 'create-job.yaml', 'redis-statefulset.yaml', 'sidecar-deployment.yaml']) t.ok(files.has(f), f);
  t.same([...new Set(bodies.map(kindKey))].sort(), ['apps/v1/Deployment', 'apps/v1/StatefulSet', 'batch/v1/Job', 'v1/ConfigMap', 'v1/Service']);
});

t.test('every manifest document validates against the Kubernetes schema', async (t) => {
  for (const d of manifests) t.same(schemaProblems(d.body), [], `${d.file}#${d.index} ${d.body.kind}/${d.body.metadata?.name}`);
});

t.test('no manifest has unknown fields (kubernetes-models types, tsc excess-property check)', async (t) => {
  t.equal(unknownFieldProblems(bodies, typesDir(t)), '', 'tsc accepts every document');
});

t.test('the manifests fit together', async (t) => {
  t.same(sidecarProblems(bodies), [], 'sidecar Deployment + ConfigMap');
  t.same(clusterProblems(bodies), [], 'StatefulSet + headless Service + create Job + seeds');
});

t.test('broken manifests fail (the checks can fail)', async (t) => {
  const dep = find(bodies, 'Deployment')!;
  const mutate = (f: (d: Obj) => void): Obj => {
    const d = structuredClone(dep);
    f(d);
    return d;
  };
  const pod = (d: Obj): Obj => d.spec.template.spec;
  const ringside = (d: Obj): Obj => [...(pod(d).initContainers ?? []), ...pod(d).containers].find((c: Obj) => c.name === 'ringside');

  t.not(schemaProblems(mutate((d) => (d.spec.replicas = 'two'))).length, 0, 'replicas as a string fails the schema');
  t.not(schemaProblems(mutate((d) => delete pod(d).containers[0].name)).length, 0, 'container without a name fails the schema');
  t.not(schemaProblems(mutate((d) => (ringside(d).readinessProbe.httpGet.port = { port: 9379 }))).length, 0, 'probe port as an object fails');
  t.not(schemaProblems(mutate((d) => delete d.spec.selector)).length, 0, 'Deployment without a selector fails');
  t.not(schemaProblems({ ...dep, apiVersion: 'apps/v1beta9' }).length, 0, 'an apiVersion without a schema fails');

  const typo = mutate((d) => {
    const r = ringside(d);
    r.readinesProbe = r.readinessProbe;
    delete r.readinessProbe;
  });
  t.equal(schemaProblems(typo).length, 0, '(the schema alone lets an unknown field through)');
  t.match(unknownFieldProblems([typo], typesDir(t)), /readinesProbe/, 'the unknown-field check catches a misspelt field');

  const others = bodies.filter((b) => b !== dep);
  t.match(sidecarProblems([...others, mutate((d) => (ringside(d).readinessProbe.httpGet.path = '/ready'))]), [/readinessProbe path/], 'a readiness probe on the wrong path is reported');
  t.match(sidecarProblems([...others, mutate((d) => (ringside(d).livenessProbe.httpGet.port = 6379))]), [/livenessProbe port/], 'a liveness probe on the Redis port is reported');
  t.match(sidecarProblems([...others, mutate((d) => (pod(d).containers[0].env[0].value = 'redis-0.redis-nodes'))]), [/REDIS_HOST/], 'an app pointed away from loopback is reported');
  t.match(sidecarProblems([...others, mutate((d) => (ringside(d).envFrom[0].configMapRef.name = 'nope'))]), [/ConfigMap nope/], 'envFrom naming a missing ConfigMap is reported');

  const job = structuredClone(find(bodies, 'Job')!);
  job.spec.template.spec.containers[0].args[2] = 'redis-0.redis-nodes:6379,redis-6.redis-nodes:6379';
  t.match(clusterProblems([...bodies.filter((b) => b.kind !== 'Job'), job]), [/redis-6.*not a StatefulSet pod/], 'a shard naming a pod that does not exist is reported');
});

const composeFile = join(repo, 'deploy/compose/compose.yaml');
const composeText = readFileSync(composeFile, 'utf8');

t.test('compose.yaml services reference each other correctly', async (t) => {
  const compose = parseYaml(composeText, { merge: true }) as Obj;
  t.same(composeProblems(compose), []);
  t.equal(compose.services.ringside.stop_grace_period, '30s', 'stop grace period leaves time for the drain');

  const broken = parseYaml(composeText, { merge: true }) as Obj;
  broken.services.app.network_mode = 'service:sidecar';
  broken.services.create.command[2] = 'redis-0:6379,redis-9:6379';
  delete broken.services['redis-5'];
  const p = composeProblems(broken);
  t.match(p, [/6 data nodes|5 data nodes/], 'a missing node is reported');
  t.ok(p.some((x) => /network_mode service:sidecar/.test(x)), 'a wrong network_mode is reported');
  t.ok(p.some((x) => /redis-9/.test(x)), 'a shard naming no service is reported');
});

// docker-compose v1 (Debian's package) checks a file against its Compose schema; it predates
// the top-level `name:` key, which is left out of the copy it checks. Skipped when absent.
const dockerCompose = which('docker-compose');
t.test('docker-compose config accepts compose.yaml', { skip: !dockerCompose && 'docker-compose not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringside-compose-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Relative paths (build.context ../..) resolve against --project-directory.
  const copy = join(dir, 'compose.yaml');
  writeFileSync(copy, composeText.replace(/^name: .*\n/m, ''));
  const r = spawnSync(dockerCompose!, ['-f', copy, '--project-directory', join(repo, 'deploy/compose'), 'config', '-q'], {
    cwd: dir,
    encoding: 'utf8',
  });
  t.equal(r.status, 0, `docker-compose config: ${r.stderr.trim()}`);
});

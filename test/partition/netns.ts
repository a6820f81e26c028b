/**
 * Real network partitions for the tests (issue 23): hosts as Linux network namespaces on a bridge
 * of their own, with redis-servers, `ringside serve` sidecars and writers running inside them.
 *
 *   namespace <p>-br:  bridge <p>br ── <p>b1 ── veth ── <p>h1 (namespace <p>-h1, 10.77.0.1/24)
 *                                   ── <p>b2 ── veth ── <p>h2 (namespace <p>-h2, 10.77.0.2/24)
 *                                   ── ...
 *
 * Every address lives inside a namespace this harness made (the test's own network, nothing in
 * the machine's namespace, nothing routed off the machine). A cut disables a host's bridge port
 * (`ip link set <p>bN down`: the host's sockets stay open and TCP retransmits, as across a real
 * partition); `block` drops traffic between chosen hosts (nftables in the host's namespace, for
 * asymmetric cuts); `loss` drops a share of a host's packets at random (nftables `numgen`, as
 * `tc netem` is not in every kernel).
 *
 * Teardown, even when the test fails or dies: every process started here is SIGKILLed with the
 * test process (PR_SET_PDEATHSIG, see tiedToParent) and killed at teardown; the namespaces are
 * deleted at teardown, on process exit, and by the next run (`sweep`, by the pid in their name).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tiedToParent } from '../../src/embedded/redis-process';
import type { Teardown } from '../helpers/cluster';

const PREFIX = 'rsp';
export const SUBNET = '10.77.0';

/** Why namespaces cannot be made here, or null when they can. */
export function unavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root)';
  for (const [cmd, args] of [['ip', ['-V']], ['nft', ['--version']], ['redis-server', ['--version']]] as const) {
    const r = spawnSync(cmd, args, { stdio: 'ignore' });
    if (r.error || r.status !== 0) return `${cmd} is not installed (scripts/ensure-redis.sh --test installs iproute2 and nftables)`;
  }
  const name = `${PREFIX}probe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns add failed: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', name]);
  return null;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Deletes namespaces left by runs whose process is gone. */
export function sweep(): void {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = new RegExp(`^(${PREFIX}(\\d+)-\\S+)`).exec(line);
    if (m && Number(m[2]) !== process.pid && !alive(Number(m[2]))) spawnSync('ip', ['netns', 'del', m[1]!]);
  }
}

export interface Proc {
  child: ChildProcess;
  /** stdout and stderr so far (the last 200 kB) */
  output(): string;
  exited: Promise<void>;
}

export class Host {
  constructor(
    readonly net: Net,
    readonly index: number,
    readonly ns: string,
    readonly ip: string,
    /** the bridge-side end of this host's link */
    readonly port: string,
  ) {}

  /** Starts `command args` inside this host's namespace, killed with the test. */
  spawn(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
    const [cmd, argv] = tiedToParent('ip', ['netns', 'exec', this.ns, command, ...args]);
    const child = spawn(cmd, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const add = (d: Buffer): void => {
      out += d.toString();
      if (out.length > 400_000) out = out.slice(-200_000);
    };
    child.stdout!.on('data', add);
    child.stderr!.on('data', add);
    child.stdin!.on('error', () => {});
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    this.net.track(child, exited);
    return { child, output: () => out, exited };
  }

  /** Runs a command in this namespace to its end; throws on failure. */
  run(command: string, args: string[], timeoutMs = 60_000): string {
    const r = spawnSync('ip', ['netns', 'exec', this.ns, command, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 << 20 });
    if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} in ${this.ns} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || r.error?.message || '').slice(-2000)}`);
    return r.stdout;
  }

  /** Runs a command in this namespace without blocking the event loop; resolves with its stdout. */
  runAsync(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`${command} ${args.slice(0, 3).join(' ')} in ${this.ns} failed (${code ?? signal}): ${err || out.slice(-2000)}`));
      });
    });
  }

  /** A redis-server on this host's address. */
  async redis(port: number, extra: string[] = []): Promise<Proc> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ringside-ns-redis-'));
    this.net.dirs.push(dir);
    const p = this.spawn('redis-server', [
      '--port', String(port), '--bind', this.ip, '--protected-mode', 'no', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...extra,
    ]);
    for (let i = 0; ; i++) {
      try {
        if (this.run('redis-cli', ['-h', this.ip, '-p', String(port), 'PING'], 2000).trim() === 'PONG') return p;
      } catch {
        /* not yet */
      }
      if (p.child.exitCode !== null || i > 100) throw new Error(`redis-server ${this.ip}:${port} did not start: ${p.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Cuts this host off the bridge (its sockets stay open; packets go nowhere). */
  cut(): void {
    sh('ip', ['-n', this.net.bridgeNs, 'link', 'set', this.port, 'down']);
  }
  heal(): void {
    sh('ip', ['-n', this.net.bridgeNs, 'link', 'set', this.port, 'up']);
  }

  /** Drops every packet between this host and `others` (in both directions, from this side). */
  block(others: Host[]): void {
    const set = others.map((h) => h.ip).join(', ');
    this.#nft(`add table inet rsblock
add chain inet rsblock in { type filter hook input priority 0; }
add chain inet rsblock out { type filter hook output priority 0; }
add rule inet rsblock in ip saddr { ${set} } drop
add rule inet rsblock out ip daddr { ${set} } drop`);
  }
  unblock(): void {
    this.#nft('delete table inet rsblock');
  }

  /** Drops `percent` % of the packets this host sends and receives on its link, at random. */
  loss(percent: number): void {
    this.#nft(`add table inet rsloss
add chain inet rsloss in { type filter hook input priority 0; }
add chain inet rsloss out { type filter hook output priority 0; }
add rule inet rsloss in iifname "${this.net.prefix}h${this.index}" numgen random mod 100 < ${percent} drop
add rule inet rsloss out oifname "${this.net.prefix}h${this.index}" numgen random mod 100 < ${percent} drop`);
  }
  noLoss(): void {
    this.#nft('delete table inet rsloss');
  }

  #nft(script: string): void {
    const r = spawnSync('ip', ['netns', 'exec', this.ns, 'nft', '-f', '-'], { input: script + '\n', encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`nft in ${this.ns} failed: ${(r.stderr || '').trim()}`);
  }
}

export class Net {
  readonly prefix: string;
  readonly bridgeNs: string;
  readonly hosts: Host[] = [];
  readonly dirs: string[] = [];
  readonly #procs: Array<{ child: ChildProcess; exited: Promise<void> }> = [];
  #namespaces: string[] = [];
  #gone = false;

  private constructor() {
    this.prefix = `${PREFIX}${process.pid}`;
    this.bridgeNs = `${this.prefix}-br`;
  }

  /** `count` hosts on one bridge, torn down when `t` ends. */
  static create(t: Teardown, count: number): Net {
    sweep();
    const net = new Net();
    const onExit = (): void => net.destroy();
    process.once('exit', onExit);
    t.teardown(async () => {
      process.removeListener('exit', onExit);
      await net.stop();
    });
    try {
      net.#build(count);
    } catch (e) {
      net.destroy();
      throw e;
    }
    return net;
  }

  #build(count: number): void {
    const p = this.prefix;
    const br = this.bridgeNs;
    sh('ip', ['netns', 'add', br]);
    this.#namespaces.push(br);
    sh('ip', ['-n', br, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', br, 'link', 'add', `${p}br`, 'type', 'bridge']);
    sh('ip', ['-n', br, 'link', 'set', `${p}br`, 'up']);
    for (let i = 1; i <= count; i++) {
      const ns = `${p}-h${i}`;
      sh('ip', ['netns', 'add', ns]);
      this.#namespaces.push(ns);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // the veth pair is made inside the host's namespace, and one end moved to the bridge's
      sh('ip', ['-n', ns, 'link', 'add', `${p}h${i}`, 'type', 'veth', 'peer', 'name', `${p}b${i}`]);
      sh('ip', ['-n', ns, 'link', 'set', `${p}b${i}`, 'netns', br]);
      sh('ip', ['-n', br, 'link', 'set', `${p}b${i}`, 'master', `${p}br`]);
      sh('ip', ['-n', br, 'link', 'set', `${p}b${i}`, 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${SUBNET}.${i}/24`, 'dev', `${p}h${i}`]);
      sh('ip', ['-n', ns, 'link', 'set', `${p}h${i}`, 'up']);
      this.hosts.push(new Host(this, i, ns, `${SUBNET}.${i}`, `${p}b${i}`));
    }
  }

  track(child: ChildProcess, exited: Promise<void>): void {
    this.#procs.push({ child, exited });
  }

  /** Kills every process, deletes the namespaces and the servers' directories. */
  async stop(): Promise<void> {
    for (const { child } of this.#procs) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.race([Promise.all(this.#procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000))]);
    this.destroy();
  }

  /** Synchronous teardown (also on process exit). */
  destroy(): void {
    if (this.#gone) return;
    this.#gone = true;
    for (const { child } of this.#procs) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const ns of this.#namespaces) spawnSync('ip', ['netns', 'del', ns]);
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

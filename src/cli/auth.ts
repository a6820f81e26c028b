/**
 * How every `ringside` command that talks to data nodes reaches them: TLS (`--node-tls` and its
 * files, src/cluster/node-tls.ts) and the credentials: `--auth-file`
 * (RINGSIDE_AUTH_FILE, or `authFile` in a config file) and the RINGSIDE_*_USER/_PASSWORD
 * environment variables (src/cluster/credentials.ts). Passwords are never flags: a command line
 * is visible to every user of the host.
 */
import { OptionSpec, Options, UsageError, helpText, parseOptions } from './args';
import { CredentialsError, NodeCredentials, loadCredentials, nodeCredentials } from '../cluster/credentials';
import { NodeTlsFiles, TlsConfigError, nodeTls } from '../cluster/node-tls';

export const AUTH_OPTIONS: Record<string, OptionSpec> = {
  'auth-file': {
    type: 'string',
    arg: 'file',
    help: 'JSON file with the node credentials, {"control": {"user", "password"}, "data": {...}} or one {"user", "password"}; or set RINGSIDE_NODE_USER/RINGSIDE_NODE_PASSWORD (docs/admin.md)',
  },
  'node-tls': { type: 'boolean', help: 'connect to the nodes with TLS (their tls-port)' },
  'node-tls-ca-cert-file': { type: 'string', arg: 'file', help: "CA certificates (PEM) the nodes' certificates must chain to (default: the system's)" },
  'node-tls-cert-file': { type: 'string', arg: 'file', help: 'client certificate (PEM) for nodes that require one (tls-auth-clients)' },
  'node-tls-key-file': { type: 'string', arg: 'file', help: 'its private key (PEM)' },
  'node-tls-server-name': { type: 'string', arg: 'name', help: "the name the nodes' certificates carry (default: each node's host)" },
  'node-tls-insecure': { type: 'boolean', help: "do not verify the nodes' certificates (encrypted, not authenticated: tests only)" },
};

/** The TLS files the options name, or null for plain TCP (a usage error when unusable). */
export function readNodeTls(options: Options): NodeTlsFiles | null {
  const str = (k: string): string | undefined => (typeof options[k] === 'string' && options[k] ? (options[k] as string) : undefined);
  const named = ['node-tls-ca-cert-file', 'node-tls-cert-file', 'node-tls-key-file', 'node-tls-server-name'].filter((k) => str(k));
  if (options['node-tls'] !== true) {
    if (named.length || options['node-tls-insecure'] === true) throw new UsageError(`--${named[0] ?? 'node-tls-insecure'} needs --node-tls`);
    return null;
  }
  return {
    ...(str('node-tls-ca-cert-file') ? { caFile: str('node-tls-ca-cert-file') } : {}),
    ...(str('node-tls-cert-file') ? { certFile: str('node-tls-cert-file') } : {}),
    ...(str('node-tls-key-file') ? { keyFile: str('node-tls-key-file') } : {}),
    ...(str('node-tls-server-name') ? { serverName: str('node-tls-server-name') } : {}),
    ...(options['node-tls-insecure'] === true ? { insecure: true } : {}),
  };
}

/** Applies the TLS setting the options name (a usage error when a file is unusable). */
export function useNodeTls(options: Options): void {
  try {
    nodeTls.set(readNodeTls(options));
  } catch (e) {
    if (e instanceof TlsConfigError) throw new UsageError(e.message);
    throw e;
  }
}

/** Reads the credentials the options and environment name (a usage error when unusable). */
export function readNodeCredentials(options: Options, env: NodeJS.ProcessEnv = process.env, warn?: (msg: string) => void): NodeCredentials {
  const file = typeof options['auth-file'] === 'string' && options['auth-file'] ? options['auth-file'] : undefined;
  try {
    return loadCredentials(file, env, warn);
  } catch (e) {
    if (e instanceof CredentialsError) throw new UsageError(e.message);
    throw e;
  }
}

/** Reads the credentials and makes them the process's. */
export function useNodeCredentials(options: Options, warn: (msg: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): NodeCredentials {
  useNodeTls(options);
  const creds = readNodeCredentials(options, process.env, warn);
  nodeCredentials.set(creds);
  return creds;
}

/**
 * The start of every command that talks to the nodes: its options parsed, `--help` printed (then
 * null: exit 0), and the TLS setting and credentials they name applied.
 */
export function parseNodeCommand(argv: string[], spec: Record<string, OptionSpec>, usage: string, summary: string): { options: Options; positionals: string[] } | null {
  const { options, positionals, help } = parseOptions(argv, spec);
  if (help) {
    process.stdout.write(helpText(usage, summary, spec) + '\n');
    return null;
  }
  useNodeCredentials(options);
  return { options, positionals };
}

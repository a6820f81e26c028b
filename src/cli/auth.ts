/**
 * The node credentials for every `ringside` command that talks to data nodes: `--auth-file`
 * (RINGSIDE_AUTH_FILE, or `authFile` in a config file) and the RINGSIDE_*_USER/_PASSWORD
 * environment variables (src/cluster/credentials.ts). Passwords are never flags: a command line
 * is visible to every user of the host.
 */
import { OptionSpec, Options, UsageError } from './args';
import { CredentialsError, NodeCredentials, loadCredentials, nodeCredentials } from '../cluster/credentials';

export const AUTH_OPTIONS: Record<string, OptionSpec> = {
  'auth-file': {
    type: 'string',
    arg: 'file',
    help: 'JSON file with the node credentials, {"control": {"user", "password"}, "data": {...}} or one {"user", "password"}; or set RINGSIDE_NODE_USER/RINGSIDE_NODE_PASSWORD (docs/admin.md)',
  },
};

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
  const creds = readNodeCredentials(options, process.env, warn);
  nodeCredentials.set(creds);
  return creds;
}

/**
 * TLS to the data nodes (docs/protocol.md, "TLS"): every connection Ringside makes to a node —
 * the data path, subscriber links, the control plane, the admin CLI — goes through `tls.connect`
 * with one secure context (CA, client certificate and key), the server name to verify, and
 * verification on unless `insecure`. Like the credentials, it is one process-wide setting read at
 * every (re)connect: SIGHUP loads the files again, new connections use them, open ones stay.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';

export interface NodeTlsFiles {
  /** CA certificates (PEM) the nodes' certificates must chain to (default: Node's bundled roots) */
  caFile?: string;
  /** client certificate and key (PEM), for nodes with `tls-auth-clients yes` (Redis's default) */
  certFile?: string;
  keyFile?: string;
  /** the name the nodes' certificates must carry (default: the host of each address) */
  serverName?: string;
  /** no verification of the nodes' certificates: encrypted but not authenticated (tests only) */
  insecure?: boolean;
}

/** A TLS file is unusable; the message names the file, never a key's contents. */
export class TlsConfigError extends Error {
  override name = 'TlsConfigError';
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new TlsConfigError(`cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Builds the secure context for the files (throws TlsConfigError). */
export function secureContextFor(files: NodeTlsFiles): tls.SecureContext {
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) throw new TlsConfigError('a client certificate needs its key, and a key its certificate');
  const ca = files.caFile ? readPem(files.caFile, 'CA certificate file') : undefined;
  const cert = files.certFile ? readPem(files.certFile, 'certificate file') : undefined;
  const key = files.keyFile ? readPem(files.keyFile, 'key file') : undefined;
  try {
    return tls.createSecureContext({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
  } catch (e) {
    // OpenSSL's message names the problem (bad PEM, key does not match), not the bytes
    throw new TlsConfigError(`the TLS files (${[files.caFile, files.certFile, files.keyFile].filter(Boolean).join(', ')}) are not usable: ${(e as Error).message}`);
  }
}

export class NodeTls {
  #files: NodeTlsFiles | null = null;
  #context: tls.SecureContext | null = null;

  /** TLS on with these files (read now), or off (null). Throws TlsConfigError and keeps the old setting. */
  set(files: NodeTlsFiles | null): void {
    const context = files ? secureContextFor(files) : null;
    this.#files = files ? { ...files } : null;
    this.#context = context;
  }

  get enabled(): boolean {
    return this.#context !== null;
  }

  /** What can be shown: the files and the mode, no contents. */
  describe(): Record<string, unknown> | null {
    return this.#files ? { ...this.#files, insecure: this.#files.insecure === true } : null;
  }

  /** `tls.connect` options for one node (host, port, the secure context, the name to verify). */
  connectOptions(host: string, port: number): tls.ConnectionOptions {
    const f = this.#files!;
    const servername = f.serverName ?? (isIP(host) ? undefined : host);
    return {
      host,
      port,
      secureContext: this.#context!,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: f.insecure !== true,
      // with a configured server name, the certificate is checked against it rather than the address
      ...(f.serverName ? { checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(f.serverName!, cert) } : {}),
    };
  }

  /** ioredis's `tls` option (merged into its tls.connect options), or undefined when off. */
  ioredisOptions(): tls.ConnectionOptions | undefined {
    if (!this.enabled) return undefined;
    const { host: _h, port: _p, ...rest } = this.connectOptions('', 0);
    void _h;
    void _p;
    if (this.#files!.serverName) rest.servername = this.#files!.serverName;
    return rest;
  }
}

/** The process's TLS setting towards the nodes. */
export const nodeTls = new NodeTls();

/** Whether a socket error is TLS refusing the peer (a certificate, a handshake), not the node being down. */
export function isTlsError(e: unknown): boolean {
  const code = String((e as NodeJS.ErrnoException | null)?.code ?? '');
  const msg = String((e as Error | null)?.message ?? '');
  return /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_OSSL|HOSTNAME|ALTNAME/.test(code) || /ssl3_|tls_|certificate|handshake|wrong version number/i.test(msg);
}

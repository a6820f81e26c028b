/**
 * Test certificates made with the openssl CLI: a CA, and one certificate for 127.0.0.1 and
 * localhost signed by it (used by the nodes as server and client alike), plus a second CA that
 * signed nothing we use (a sidecar trusting only it must refuse the nodes). EC P-256 keys: quick
 * to make. Removed when the test ends.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Teardown } from './cluster';

export interface TestCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** a CA that signed none of the above */
  otherCaFile: string;
}

export function makeCerts(t: Teardown): TestCerts {
  const dir = mkdtempSync(path.join(tmpdir(), 'ringside-certs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = (n: string): string => path.join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe', cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=ringside test CA');
  ssl('req', '-x509', ...ec, '-keyout', f('other-ca.key'), '-out', f('other-ca.crt'), '-days', '2', '-subj', '/CN=another CA');
  ssl('req', ...ec, '-keyout', f('node.key'), '-out', f('node.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', f('node.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('node.crt'), '-days', '2', '-extfile', f('ext.cnf'));
  return { dir, caFile: f('ca.crt'), certFile: f('node.crt'), keyFile: f('node.key'), otherCaFile: f('other-ca.crt') };
}

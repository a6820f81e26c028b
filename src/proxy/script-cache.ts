/**
 * The body of every script this sidecar has seen (EVAL, SCRIPT LOAD), by SHA1, so that an EVALSHA
 * a node no longer knows (it restarted) can be answered by sending the body (src/proxy/scripts.ts).
 */
import { createHash } from 'node:crypto';

const MAX_SCRIPTS = 10_000;

/** sha1 → body of every script this sidecar has seen, oldest first. */
export class ScriptCache {
  readonly #bodies = new Map<string, Buffer>();
  remember(body: Buffer): string {
    const sha = createHash('sha1').update(body).digest('hex');
    if (!this.#bodies.has(sha)) {
      this.#bodies.set(sha, Buffer.from(body));
      if (this.#bodies.size > MAX_SCRIPTS) this.#bodies.delete(this.#bodies.keys().next().value!);
    }
    return sha;
  }
  get(sha: string): Buffer | undefined {
    return this.#bodies.get(sha.toLowerCase());
  }
  clear(): void {
    this.#bodies.clear();
  }
}


/**
 * Durable mode (`durability: "replica"` in the cluster configuration, docs/failover.md): a write
 * is acknowledged to the app only once a replica of its master holds it.
 *
 *   sessions ──write──▶ node connection: the write's reply is held (a Hold in the FIFO)
 *            ──flush──▶ [cmd][cmd][write]…[WAIT 1 ms]   one WAIT per flushed batch that holds a write
 *   WAIT answers n ≥ 1: every held reply of the batch goes on, unchanged, in order
 *   WAIT answers 0 (or an error): each held write gets -NOREPLICAS (it ran on the master, but no
 *   replica confirmed it: the app must treat it as unknown, not as done)
 *
 * Reads and error replies are never held. WAIT runs on the node after the batch's commands, on the
 * same connection, so the replicas it counts hold them all.
 */
import { COMMANDS } from '../commands/table';
import type { NodeError } from './errors';
import * as text from './replies';

export interface Durability {
  /** replicas that must confirm (WAIT's numreplicas) */
  replicas: number;
  /** WAIT's timeout: shorter than the connection's command timeout */
  waitMs: number;
}

/** What awaits a command's reply on a node connection (node-connection.ts re-exports it). */
export interface Pending {
  onReply(buf: Buffer, start: number, end: number, type: number): void;
  onError(err: NodeError): void;
}

/** Commands whose reply is held: writes, and whatever may write (transactions, scripts). */
const WRITES = new Set<string>(['multi', 'exec', 'eval', 'evalsha', 'fcall']);
for (const [name, spec] of COMMANDS) if (spec.write) WRITES.add(name);

/** Whether the first command in RESP bytes [start, end) is a write (no string made for short names). */
export function isWriteCommand(buf: Buffer, start: number, end: number): boolean {
  if (buf[start] !== 0x2a) return false; // inline commands are re-encoded as RESP before they are sent
  let i = start + 1;
  while (i < end && buf[i] !== 0x0d) i++;
  i += 2;
  if (buf[i] !== 0x24) return false;
  let len = 0;
  for (i++; i < end && buf[i] !== 0x0d; i++) len = len * 10 + (buf[i]! - 0x30);
  i += 2;
  if (len <= 0 || len > 32 || i + len > end) return false;
  return WRITES.has(buf.toString('latin1', i, i + len).toLowerCase());
}

/** One held reply. */
class Hold implements Pending {
  reply: Buffer | null = null;
  type = 0;
  constructor(readonly p: Pending) {}
  onReply(buf: Buffer, start: number, end: number, type: number): void {
    // an error reply wrote nothing (or is a redirect the request handles): nothing to confirm
    if (type === 0x2d) return this.p.onReply(buf, start, end, type);
    this.reply = Buffer.from(buf.subarray(start, end)); // the read buffer is reused
    this.type = type;
  }
  onError(err: NodeError): void {
    this.p.onError(err);
  }
}

/** The writes of one flushed batch and the WAIT that follows them. */
export class WaitGroup implements Pending {
  readonly #holds: Hold[] = [];
  readonly #d: Durability;
  readonly #label: string;
  constructor(d: Durability, label: string) {
    this.#d = d;
    this.#label = label;
  }
  hold(p: Pending): Pending {
    const h = new Hold(p);
    this.#holds.push(h);
    return h;
  }
  /** `WAIT <replicas> <ms>` */
  bytes(): Buffer {
    const n = String(this.#d.replicas);
    const ms = String(this.#d.waitMs);
    return Buffer.from(`*3\r\n$4\r\nWAIT\r\n$${n.length}\r\n${n}\r\n$${ms.length}\r\n${ms}\r\n`);
  }
  onReply(buf: Buffer, start: number, end: number, type: number): void {
    let got = -1;
    if (type === 0x3a) got = Number(buf.toString('latin1', start + 1, end - 2));
    const ok = got >= this.#d.replicas;
    let refusal: Buffer | null = null;
    for (const h of this.#holds) {
      if (h.reply === null) continue;
      if (ok) h.p.onReply(h.reply, 0, h.reply.length, h.type);
      else {
        refusal ??= Buffer.from(
          `-${text.noReplicas(this.#label, this.#d.replicas, this.#d.waitMs, type === 0x2d ? buf.toString('utf8', start + 1, end - 2) : `${Math.max(0, got)} confirmed`)}\r\n`,
        );
        h.p.onReply(refusal, 0, refusal.length, 0x2d);
      }
    }
  }
  onError(err: NodeError): void {
    for (const h of this.#holds) if (h.reply !== null) h.p.onError(err);
  }
}

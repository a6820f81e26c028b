/**
 * A minimal RESP2 client for the fail-over bench: one-shot commands and a reply reader. Kept out
 * of the sidecar's own code on purpose, so that the bench measures the sidecar from the outside.
 */
import * as net from 'node:net';
import { Endpoint } from './procs';

export type Reply = string | number | null | Error | Reply[];

export function encode(args: string[]): Buffer {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(s);
}

/** Parses one reply at `buf[pos]`; returns it and the next position, or null when incomplete. */
export function parseReply(buf: Buffer, pos = 0): { reply: Reply; next: number } | null {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString('utf8', pos + 1, eol);
  switch (type) {
    case '+':
      return { reply: line, next: eol + 2 };
    case '-':
      return { reply: new Error(line), next: eol + 2 };
    case ':':
      return { reply: Number(line), next: eol + 2 };
    case '$': {
      const n = Number(line);
      if (n < 0) return { reply: null, next: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return null;
      return { reply: buf.toString('utf8', eol + 2, eol + 2 + n), next: eol + 2 + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { reply: null, next: eol + 2 };
      const out: Reply[] = [];
      let p = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p);
        if (!r) return null;
        out.push(r.reply);
        p = r.next;
      }
      return { reply: out, next: p };
    }
    default:
      throw new Error(`bad RESP type byte ${JSON.stringify(type)}`);
  }
}

export function connect(e: Endpoint): net.Socket {
  return 'path' in e ? net.connect(e.path) : net.connect(e.port, e.host ?? '127.0.0.1');
}

/** One command over a fresh connection. Rejects on connection errors and timeouts; resolves error replies as Error values. */
export function command(e: Endpoint, args: string[], timeoutMs = 2000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = connect(e);
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`timeout: ${args[0]}`));
    }, timeoutMs);
    s.on('connect', () => s.write(encode(args)));
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const r = parseReply(buf);
      if (r) {
        clearTimeout(t);
        s.destroy();
        resolve(r.reply);
      }
    });
    s.on('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    s.on('close', () => {
      clearTimeout(t);
      reject(new Error('connection closed'));
    });
  });
}

/**
 * A persistent connection that sends one command at a time. `send` rejects on a connection error,
 * a close or a timeout (the connection is then unusable); error replies resolve as Error values.
 */
export class Conn {
  private sock: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private dead: Error | null = null;
  readonly ready: Promise<void>;

  constructor(e: Endpoint, connectTimeoutMs = 2000) {
    this.sock = connect(e);
    this.sock.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.fail(new Error('connect timeout'));
        reject(new Error('connect timeout'));
      }, connectTimeoutMs);
      this.sock.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      this.sock.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
    this.ready.catch(() => {});
    this.sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      const w = this.waiting;
      if (!w) return;
      let r: ReturnType<typeof parseReply>;
      try {
        r = parseReply(this.buf);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (!r) return;
      this.buf = this.buf.subarray(r.next);
      this.waiting = null;
      clearTimeout(w.timer);
      w.resolve(r.reply);
    });
    this.sock.on('error', (err) => this.fail(err));
    this.sock.on('close', () => this.fail(new Error('connection closed')));
  }

  private fail(err: Error): void {
    if (!this.dead) this.dead = err;
    this.sock.destroy();
    const w = this.waiting;
    this.waiting = null;
    if (w) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  get broken(): boolean {
    return this.dead !== null;
  }

  send(args: string[], timeoutMs: number): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
      this.waiting = { resolve, reject, timer };
      this.sock.write(encode(args));
    });
  }

  close(): void {
    this.fail(new Error('closed'));
  }
}

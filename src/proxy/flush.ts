/**
 * Writes are coalesced per turn of the event loop: whatever marks itself dirty while the poll
 * phase delivers socket data (client commands, node replies) is flushed once, in the check phase
 * that follows (setImmediate), so many commands from many clients leave in one write per socket.
 */
export interface Flushable {
  dirty: boolean;
  flush(): void;
}

let queue: Flushable[] = [];
let scheduled = false;

function run(): void {
  scheduled = false;
  const q = queue;
  queue = [];
  for (let i = 0; i < q.length; i++) {
    const f = q[i]!;
    f.dirty = false;
    try {
      f.flush();
    } catch {
      /* a socket that died mid-flush reports through its own error handler */
    }
  }
}

export function markDirty(f: Flushable): void {
  if (f.dirty) return;
  f.dirty = true;
  queue.push(f);
  if (!scheduled) {
    scheduled = true;
    setImmediate(run);
  }
}

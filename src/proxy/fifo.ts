/**
 * A FIFO on a ring buffer whose capacity doubles as needed and never shrinks below its initial
 * size, so a queue that empties after every request (the common case without pipelining) neither
 * reallocates nor resets an array length (a slow path in V8) on each use.
 */
export class Fifo<T> {
  #items: (T | undefined)[];
  #mask: number;
  #head = 0;
  #len = 0;

  constructor(capacity = 8) {
    let c = 4;
    while (c < capacity) c *= 2;
    this.#items = new Array<T | undefined>(c).fill(undefined);
    this.#mask = c - 1;
  }

  get length(): number {
    return this.#len;
  }
  push(x: T): void {
    if (this.#len > this.#mask) this.#grow();
    this.#items[(this.#head + this.#len) & this.#mask] = x;
    this.#len++;
  }
  peek(): T | undefined {
    return this.#len === 0 ? undefined : this.#items[this.#head];
  }
  shift(): T | undefined {
    if (this.#len === 0) return undefined;
    const x = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#len--;
    return x;
  }
  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    while (this.#len > 0) out.push(this.shift() as T);
    this.#head = 0;
    return out;
  }
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#len; i++) yield this.#items[(this.#head + i) & this.#mask] as T;
  }
  #grow(): void {
    const old = this.#items;
    const n = old.length;
    const next = new Array<T | undefined>(n * 2).fill(undefined);
    for (let i = 0; i < this.#len; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#items = next;
    this.#mask = n * 2 - 1;
    this.#head = 0;
  }
}

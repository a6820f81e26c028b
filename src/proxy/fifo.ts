/** the ring of every Fifo that has not had an item yet: never written (#grow replaces it first) */
const UNUSED: never[] = [];

/**
 * A FIFO on a ring buffer whose capacity doubles as needed and never shrinks below its initial
 * size, so a queue that empties after every request (the common case without pipelining) neither
 * reallocates nor resets an array length (a slow path in V8) on each use. The ring is made on
 * the first push: an idle client connection holds none (bench --memory).
 */
export class Fifo<T> {
  #items: (T | undefined)[] = UNUSED;
  /** capacity - 1; -1 while the ring is not made, so the first push grows it */
  #mask = -1;
  #head = 0;
  #len = 0;
  readonly #initial: number;

  constructor(capacity = 8) {
    let c = 4;
    while (c < capacity) c *= 2;
    this.#initial = c;
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
    const size = old.length === 0 ? this.#initial : old.length * 2;
    const next = new Array<T | undefined>(size).fill(undefined);
    for (let i = 0; i < this.#len; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#items = next;
    this.#mask = size - 1;
    this.#head = 0;
  }
}

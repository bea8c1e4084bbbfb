/** A FIFO async mutex: requests touching one model's history run one at a time within a process. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** Requests queued or running. */
  get pending(): number {
    return this.waiting;
  }

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.waiting++;
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    try {
      await previous;
      return await fn();
    } finally {
      this.waiting--;
      release();
    }
  }
}

/**
 * Messages pushed by callbacks (socket events, thread messages) and awaited one at a time by an
 * async generator: the bridge between event-style I/O and `for await`.
 */
export class Inbox<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  /** The next item; undefined if `timeoutMs` passes or `signal` aborts before one arrives. */
  async next(timeoutMs = Number.POSITIVE_INFINITY, signal?: AbortSignal): Promise<T | undefined> {
    if (this.items.length === 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        const timer = Number.isFinite(timeoutMs) ? setTimeout(done, timeoutMs) : undefined;
        this.wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
    }
    return this.items.shift();
  }
}

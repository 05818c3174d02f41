/** Sends one encoded frame; `onAck` runs once the receiver acknowledged it (or gave up waiting). */
export type SendFrame = (bytes: Uint8Array, onAck: () => void) => void;

/** Unacknowledged frames in flight per receiver: newer frames wait in the queue (newest wins) beyond this. */
const SEND_WINDOW = 2;

/**
 * Frames on their way to one receiver (a player or a spectator): a bounded queue, newest wins, and
 * at most SEND_WINDOW unacknowledged frames in flight. When the network or the client falls
 * behind, the oldest queued frames are dropped rather than delivered late; control messages never
 * go through here, so they are never dropped.
 */
export class FrameChannel {
  private readonly queue: Uint8Array[] = [];
  private inFlight = 0;
  private open = true;
  /** Frames dropped because newer ones replaced them. */
  dropped = 0;

  constructor(
    private readonly send: SendFrame,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be an integer ≥ 1');
  }

  /** Frames waiting to be sent. */
  get queued(): number {
    return this.queue.length;
  }

  push(bytes: Uint8Array): void {
    if (!this.open) return;
    this.queue.push(bytes);
    while (this.queue.length > this.capacity) {
      this.queue.shift();
      this.dropped++;
    }
    this.pump();
  }

  /** Stops sending; queued frames are discarded. Idempotent. */
  close(): void {
    this.open = false;
    this.queue.length = 0;
  }

  private pump(): void {
    while (this.open && this.inFlight < SEND_WINDOW && this.queue.length > 0) {
      const bytes = this.queue.shift()!;
      this.inFlight++;
      this.send(bytes, () => {
        this.inFlight--;
        this.pump();
      });
    }
  }
}

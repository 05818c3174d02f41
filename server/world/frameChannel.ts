/** Sends one encoded frame; `onAck(true)` once the receiver acknowledged it, `onAck(false)` when it gave up waiting. */
export type SendFrame = (bytes: Uint8Array, onAck: (acknowledged: boolean) => void) => void;

/** Gives up on a receiver that acknowledges nothing for `unresponsiveMs` while frames wait. */
export interface Watchdog {
  readonly unresponsiveMs: number;
  readonly onUnresponsive: () => void;
}

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
  private lastAckMs = performance.now();
  /** Frames dropped because newer ones replaced them. */
  dropped = 0;

  constructor(
    private readonly send: SendFrame,
    readonly capacity: number,
    private readonly watchdog?: Watchdog,
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
    this.checkResponsive();
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
      this.send(bytes, (acknowledged) => {
        this.inFlight--;
        if (acknowledged) this.lastAckMs = performance.now();
        this.pump();
        this.checkResponsive();
      });
    }
  }

  /** A receiver whose window has been full with nothing acknowledged for too long is given up on, once. */
  private checkResponsive(): void {
    const w = this.watchdog;
    if (!w || !this.open || this.inFlight + this.queue.length === 0) return;
    if (performance.now() - this.lastAckMs <= w.unresponsiveMs) return;
    this.close();
    w.onUnresponsive();
  }
}

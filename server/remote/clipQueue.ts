import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { SpatiaError } from '../../shared/errors.ts';
import { CLIP_QUEUE, type ClipJobData } from '../../shared/protocol/worker.ts';

/** How old the worker count a clip is checked against may be (a worker that died is noticed within it). */
const WORKER_COUNT_MAX_AGE_MS = 1000;

/**
 * The node's end of the clip queue (BullMQ on the cluster's Redis): every node puts its clips on
 * one queue, and workers on any machine take them (`npm run worker -- --queue URL`), as many at
 * once as their `--concurrency`. A job holds only a ticket and the node's address: the worker
 * claims the ticket on the node's worker endpoint and the conditioning and frames stream over that
 * connection, never through Redis. The node retries a failed clip itself with a new ticket; BullMQ
 * detects jobs whose worker died (their lock runs out) and clears them.
 */
export class ClipQueue {
  private counted = { at: Number.NEGATIVE_INFINITY, workers: 0 };

  private constructor(
    private readonly queue: Queue<ClipJobData>,
    private readonly log: Logger,
  ) {}

  static async open(url: string, log: Logger): Promise<ClipQueue> {
    const queue = new Queue<ClipJobData>(CLIP_QUEUE, {
      connection: { url, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 },
      defaultJobOptions: {
        // The node retries with a new ticket; a job's own retry would only be claimed too late.
        attempts: 1,
        removeOnComplete: true,
        removeOnFail: { count: 1000 },
      },
    });
    queue.on('error', (e: Error) => log.warn({ err: e.message }, 'clip queue connection error'));
    try {
      await queue.waitUntilReady();
    } catch (e) {
      await queue.close().catch(() => {});
      throw new SpatiaError(
        'CLUSTER',
        `cannot reach the clip queue's Redis at ${url}: ${(e as Error).message}`,
      );
    }
    return new ClipQueue(queue, log);
  }

  /** Puts a clip's ticket on the queue. */
  async enqueue(job: ClipJobData): Promise<void> {
    await this.queue.add('clip', job, { jobId: job.ticket });
  }

  /** Takes a ticket nobody claimed off the queue (a worker that claims it later is told no). */
  async withdraw(ticket: string): Promise<void> {
    try {
      await this.queue.remove(ticket);
    } catch (e) {
      // Active or gone: its claim is refused on the node anyway.
      this.log.debug({ err: (e as Error).message, ticket }, 'clip ticket not withdrawn');
    }
  }

  /**
   * Workers connected to the queue (BullMQ names their Redis connections), as of at most
   * WORKER_COUNT_MAX_AGE_MS ago: every clip asks, and the answer costs Redis a CLIENT LIST.
   */
  async workerCount(): Promise<number> {
    const now = performance.now();
    if (now - this.counted.at > WORKER_COUNT_MAX_AGE_MS)
      this.counted = { at: now, workers: (await this.queue.getWorkers()).length };
    return this.counted.workers;
  }

  /** Clip jobs waiting for a worker (metrics). */
  waiting(): Promise<number> {
    return this.queue.getWaitingCount();
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

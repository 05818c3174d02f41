import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { SpatiaError } from '../../../shared/errors.ts';
import type { SqlValue, StoreDb } from '../storeDb.ts';
import {
  ANSWERED,
  READ_CONNECT_TIMEOUT_MS,
  READ_STATEMENT_TIMEOUT_MS,
  type ReaderData,
  type ReaderReply,
  type ReaderRequest,
} from './readProtocol.ts';
import { numbered } from './sqlText.ts';

/** How long a read (or opening the store) may take before it fails with STORE. */
const READ_TIMEOUT_MS = READ_CONNECT_TIMEOUT_MS + READ_STATEMENT_TIMEOUT_MS + 1_000;
const OPEN_TIMEOUT_MS = 30_000;
/**
 * After a read found PostgreSQL unreachable, reads fail at once for this long: a partition would
 * otherwise cost the event loop a connect timeout on every read.
 */
const UNREACHABLE_BACKOFF_MS = 5_000;

/** A failed read, and whether it failed for want of the server (not for the data). */
class ReadFailure extends Error {
  constructor(
    message: string,
    readonly unreachable: boolean,
  ) {
    super(message);
  }
}

/**
 * The world store's read side on PostgreSQL, synchronous like SQLite's: each query is posted to a
 * thread that holds the connection (`postgresReader.ts`), and the calling thread blocks
 * (`Atomics.wait`) until the answer is there, so the store's callers (loading a world, bringing
 * chunks back near a player, a keyframe image for retrieval) read the same way on both databases.
 * A read costs the event loop one round trip to the server; opening the store creates or checks
 * its schema.
 */
export class PostgresDb implements StoreDb {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal: Int32Array;
  private seq = 0;
  private failure: string | undefined;
  private closed = false;
  /** performance.now() until which reads fail at once (the server was unreachable). */
  private unreachableUntil = 0;
  private unreachableReason = '';

  constructor(
    url: string,
    /** The store's name in messages (no password). */
    private readonly name: string,
    opts: { readonly readonly: boolean },
  ) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    const shared = new SharedArrayBuffer(4);
    this.signal = new Int32Array(shared);
    const data: ReaderData = { kind: 'spatia-postgres-reader', url, name, port: channel.port2, shared };
    this.worker = new Worker(new URL('./threadEntry.mjs', import.meta.url), {
      workerData: { ...data, module: new URL('./postgresReader.ts', import.meta.url).href },
      transferList: [channel.port2],
    });
    this.worker.on('error', (e) => {
      this.failure = `the PostgreSQL read thread failed: ${e.message}`;
    });
    this.worker.unref();
    try {
      this.ask({ open: { readonly: opts.readonly } }, OPEN_TIMEOUT_MS);
    } catch (e) {
      this.close();
      throw new SpatiaError('STORE', `cannot open the world store ${name}: ${(e as Error).message}`);
    }
  }

  /** Posts a request and blocks until its answer; throws its error. */
  private ask(
    request:
      | { open: { readonly: boolean } }
      | { sql: string; params: SqlValue[]; rowMode: 'object' | 'array' },
    timeoutMs: number,
  ): unknown[] {
    if (this.closed) throw new Error('the store is closed');
    if (this.failure) throw new Error(this.failure);
    const id = ++this.seq;
    this.port.postMessage({ id, ...request } as ReaderRequest);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = Atomics.load(this.signal, ANSWERED);
      const m = receiveMessageOnPort(this.port);
      if (m) {
        const reply = m.message as ReaderReply;
        if (reply.id !== id) continue; // the late answer of a read that timed out
        if (reply.error !== undefined) throw new ReadFailure(reply.error, reply.unreachable === true);
        return reply.rows ?? [];
      }
      // The thread's 'error' event cannot arrive while this thread waits: a stopped thread is seen here.
      if (this.worker.threadId === -1) throw new Error(this.failure ?? 'the PostgreSQL read thread stopped');
      const left = deadline - performance.now();
      if (left <= 0)
        throw new ReadFailure(`PostgreSQL did not answer within ${(timeoutMs / 1000).toFixed(0)} s`, true);
      Atomics.wait(this.signal, ANSWERED, seen, Math.min(left, 100));
    }
  }

  private query(sql: string, params: SqlValue[], rowMode: 'object' | 'array'): unknown[] {
    if (performance.now() < this.unreachableUntil)
      throw new SpatiaError(
        'STORE_UNAVAILABLE',
        `the world store ${this.name} does not answer (${this.unreachableReason}): try again shortly`,
      );
    try {
      return this.ask({ sql: numbered(sql), params, rowMode }, READ_TIMEOUT_MS);
    } catch (e) {
      const message = (e as Error).message;
      if (e instanceof ReadFailure && e.unreachable) {
        this.unreachableUntil = performance.now() + UNREACHABLE_BACKOFF_MS;
        this.unreachableReason = message;
        throw new SpatiaError(
          'STORE_UNAVAILABLE',
          `reading the world store ${this.name} failed: ${message}; it is asked again in ${UNREACHABLE_BACKOFF_MS / 1000} s`,
        );
      }
      throw new SpatiaError('STORE', `reading the world store ${this.name} failed: ${message}`);
    }
  }

  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    return this.query(sql, params, 'object')[0] as T | undefined;
  }

  all<T>(sql: string, ...params: SqlValue[]): T[] {
    return this.query(sql, params, 'object') as T[];
  }

  value(sql: string, ...params: SqlValue[]): unknown {
    return (this.query(sql, params, 'array')[0] as unknown[] | undefined)?.[0];
  }

  /** All rows at once: the read thread hands a result over whole. */
  iterate<T>(sql: string, ...params: SqlValue[]): Iterable<T> {
    return this.all<T>(sql, ...params);
  }

  sizeBytes(): number {
    return Number(this.value('SELECT pg_database_size(current_database())'));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure) this.port.postMessage({ id: ++this.seq, close: true } satisfies ReaderRequest);
    this.port.close();
    // The thread ends its pool on `close`; terminating it also ends a thread stuck on a dead server.
    setTimeout(() => void this.worker.terminate(), 1000).unref();
  }
}

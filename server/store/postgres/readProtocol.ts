import type { MessagePort } from 'node:worker_threads';

/**
 * How the main thread (`postgresDb.ts`) and the PostgreSQL store's read thread
 * (`postgresReader.ts`) talk: the thread answers one request at a time, posting each answer and
 * then bumping the shared signal the main thread waits on.
 */
export interface ReaderData {
  readonly kind: 'spatia-postgres-reader';
  readonly url: string;
  /** How the store is named in messages (the URL without its password). */
  readonly name: string;
  readonly port: MessagePort;
  readonly shared: SharedArrayBuffer;
}

export type ReaderRequest =
  | { readonly id: number; readonly open: { readonly readonly: boolean } }
  | {
      readonly id: number;
      readonly sql: string;
      readonly params: unknown[];
      readonly rowMode: 'object' | 'array';
    }
  | { readonly id: number; readonly close: true };

export type ReaderReply = {
  readonly id: number;
  readonly rows?: unknown[];
  readonly error?: string;
  /** The server could not be reached or cut the read short (not an answer about the data). */
  readonly unreachable?: boolean;
};

/** Signal slot (Int32): bumped after every answer. */
export const ANSWERED = 0;

/**
 * Reads block the event loop, so they are bounded tightly: a connection that does not open in
 * 2 s (PostgreSQL unreachable) or a statement that runs 5 s fails the read with STORE_UNAVAILABLE.
 */
export const READ_CONNECT_TIMEOUT_MS = 2_000;
export const READ_STATEMENT_TIMEOUT_MS = 5_000;

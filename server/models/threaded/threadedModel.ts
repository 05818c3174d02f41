import { Worker } from 'node:worker_threads';
import { SpatiaError, type SpatiaErrorCode } from '../../../shared/errors.ts';
import { Inbox } from '../../util/inbox.ts';
import { createLocalModel, type LocalModelSettings } from '../localModels.ts';
import type { ClipRequest, GeneratedFrame, WorldModel, WorldModelInfo } from '../worldModel.ts';
import { sharedRequest } from './shareRequest.ts';

interface Thread {
  readonly worker: Worker;
  busy: number;
  readonly handlers: Map<number, (msg: ThreadMessage) => void>;
}
type ThreadMessage = { id: number; frame?: GeneratedFrame; done?: boolean; error?: string; code?: string };

/**
 * A stateless model run in `threads` worker threads: clips go to the least busy thread, so several
 * players' generation runs on several cores while the main thread keeps the memory, the sockets
 * and the encoding. Only for models whose whole input is the request (all of Spatia's are).
 */
export class ThreadedModel implements WorldModel {
  private readonly threads: Thread[] = [];
  private readonly info: WorldModelInfo;
  private nextId = 1;

  constructor(name: string, settings: Omit<LocalModelSettings, 'scene'>, threads: number) {
    if (!Number.isInteger(threads) || threads < 1 || threads > 64)
      throw new SpatiaError('INVALID_ARGUMENT', `threads must be 1..64, got ${threads}`);
    const local = createLocalModel(name, settings);
    this.info = { ...local.describe(), device: `${local.describe().device} × ${threads} threads` };
    void local.dispose();
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./workerEntry.mjs', import.meta.url), {
        workerData: { name, settings },
      });
      const thread: Thread = { worker, busy: 0, handlers: new Map() };
      worker.on('message', (msg: ThreadMessage) => thread.handlers.get(msg.id)?.(msg));
      worker.on('error', (e) => {
        for (const h of thread.handlers.values()) h({ id: -1, error: `model thread failed: ${e.message}` });
      });
      worker.unref();
      this.threads.push(thread);
    }
  }

  describe(): WorldModelInfo {
    return this.info;
  }

  async *generate(req: ClipRequest): AsyncGenerator<GeneratedFrame> {
    const thread = [...this.threads].sort((a, b) => a.busy - b.busy)[0]!;
    const id = this.nextId++;
    const inbox = new Inbox<ThreadMessage>();
    thread.handlers.set(id, (m) => inbox.push(m));
    thread.busy++;
    const { signal, ...request } = req;
    const onAbort = (): void => thread.worker.postMessage({ id, cancel: true });
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      thread.worker.postMessage({ id, request: sharedRequest(request) });
      for (;;) {
        const m = (await inbox.next())!;
        if (m.error !== undefined)
          throw new SpatiaError((m.code as SpatiaErrorCode) ?? 'INVALID_ARGUMENT', m.error);
        if (m.done) return;
        if (m.frame) yield m.frame;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      thread.busy--;
      thread.handlers.delete(id);
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

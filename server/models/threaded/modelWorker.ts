import { parentPort, workerData } from 'node:worker_threads';
import { createLocalModel } from '../localModels.ts';
import type { ClipRequest, GeneratedFrame } from '../worldModel.ts';
import { sharedFrame } from './shareRequest.ts';

/**
 * One model instance in a worker thread (see threadedModel.ts). Messages in: `{id, request}` and
 * `{id, cancel: true}`; out: `{id, frame}`, `{id, done: true}`, `{id, error}`.
 */
const model = createLocalModel(workerData.name as string, workerData.settings ?? {});
const running = new Map<number, AbortController>();
const port = parentPort!;

port.on('message', async (msg: { id: number; request?: ClipRequest; cancel?: boolean }) => {
  if (msg.cancel) {
    running.get(msg.id)?.abort();
    return;
  }
  const abort = new AbortController();
  running.set(msg.id, abort);
  try {
    for await (const f of model.generate({ ...msg.request!, signal: abort.signal })) {
      const frame: GeneratedFrame = sharedFrame(f);
      port.postMessage({ id: msg.id, frame });
    }
    port.postMessage({ id: msg.id, done: true });
  } catch (e) {
    port.postMessage({ id: msg.id, error: (e as Error).message, code: (e as { code?: string }).code });
  } finally {
    running.delete(msg.id);
  }
});

import { Worker } from 'node:worker_threads';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { SpatiaError } from '../../shared/errors.ts';
import type { MemoryView } from '../memory/renderView.ts';
import type { SpatialMemory } from '../memory/spatialMemory.ts';
import { GridPublisher, type SharedViewResult, viewFromShared } from '../memory/viewShare.ts';
import type { ViewRenderer } from './director.ts';

interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, (msg: Reply) => void>;
  alive: boolean;
}
type Reply = { id: number; views?: SharedViewResult[]; error?: string };

/** Per world memory: an id the threads know its mirror by, and one publisher per thread. */
interface Published {
  readonly id: number;
  readonly publishers: GridPublisher[];
}

/**
 * Renders a clip's memory views in worker threads that read the memory's chunk records in place
 * (SharedArrayBuffers, see server/memory/viewShare.ts): the clip's distinct poses are split into
 * threads + 1 shares and the calling thread draws the last share itself meanwhile. Views are the
 * same bytes as `memory.render` gives (a test pins it). A thread that fails is dropped and its
 * views are drawn here.
 */
export class ViewThreads implements ViewRenderer {
  private readonly threads: Thread[] = [];
  private readonly published = new WeakMap<SpatialMemory, Published>();
  private readonly forget = new FinalizationRegistry<number>((grid) => {
    for (const t of this.threads) if (t.alive) t.worker.postMessage({ forget: grid });
  });
  private nextId = 1;
  /** Views drawn by the threads so far (not counting those drawn here). */
  threadViews = 0;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 1 || threads > 64)
      throw new SpatiaError('INVALID_ARGUMENT', `view threads must be 1..64, got ${threads}`);
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./viewWorkerEntry.mjs', import.meta.url));
      const thread: Thread = { worker, pending: new Map(), alive: true };
      worker.on('message', (msg: Reply) => thread.pending.get(msg.id)?.(msg));
      worker.on('error', (e) => {
        thread.alive = false;
        for (const h of thread.pending.values()) h({ id: -1, error: `view thread failed: ${e.message}` });
      });
      worker.unref();
      this.threads.push(thread);
    }
  }

  async render(memory: SpatialMemory, poses: readonly Pose[], k: Intrinsics): Promise<MemoryView[]> {
    // A still camera repeats its pose through a clip: draw each distinct pose once.
    const distinct: Pose[] = [];
    const slot = new Map<string, number>();
    const index = poses.map((p) => {
      const key = `${p.rotation.join()}|${p.position.join()}`;
      let i = slot.get(key);
      if (i === undefined) {
        i = distinct.push(p) - 1;
        slot.set(key, i);
      }
      return i;
    });
    const live = this.threads.filter((t) => t.alive);
    const pub = this.publish(memory);
    const shares = live.length + 1;
    const per = Math.ceil(distinct.length / shares);
    const asked = live.map((t, s) => {
      const batch = distinct.slice(s * per, (s + 1) * per);
      return batch.length === 0
        ? Promise.resolve([])
        : this.ask(t, pub, this.threads.indexOf(t), memory, batch, k);
    });
    const own = distinct.slice(live.length * per).map((p) => memory.render(p, k));
    const views = [...(await Promise.all(asked)).flat(), ...own];
    return index.map((i) => views[i]!);
  }

  private publish(memory: SpatialMemory): Published {
    let pub = this.published.get(memory);
    if (!pub) {
      pub = { id: this.nextId++, publishers: this.threads.map(() => new GridPublisher(memory.grid)) };
      this.published.set(memory, pub);
      this.forget.register(memory, pub.id);
    }
    return pub;
  }

  private async ask(
    thread: Thread,
    pub: Published,
    t: number,
    memory: SpatialMemory,
    poses: Pose[],
    k: Intrinsics,
  ): Promise<MemoryView[]> {
    const publisher = pub.publishers[t]!;
    const sync = publisher.sync();
    const id = this.nextId++;
    // Referenced only while it owes a reply: an idle pool must not keep the process alive.
    if (thread.pending.size === 0) thread.worker.ref();
    const reply = await new Promise<Reply>((resolve) => {
      thread.pending.set(id, resolve);
      thread.worker.postMessage({ id, grid: pub.id, sync, poses, k });
    });
    thread.pending.delete(id);
    if (thread.pending.size === 0) thread.worker.unref();
    if (reply.views) {
      this.threadViews += reply.views.length;
      return reply.views.map((v) => viewFromShared(v, publisher, k));
    }
    // The thread failed (or refused): draw here. Its mirror may have missed this sync, so start over.
    pub.publishers[t] = new GridPublisher(memory.grid);
    return poses.map((p) => memory.render(p, k));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

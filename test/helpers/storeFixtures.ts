import { expect } from 'vitest';
import { encodeChunk } from '../../server/memory/snapshot.ts';
import type { SpatialMemory } from '../../server/memory/spatialMemory.ts';
import type { WorldMeta, WorldStore } from '../../server/store/worldStore.ts';
import { BinaryWriter } from '../../shared/codec/binaryWriter.ts';
import { SpatiaError } from '../../shared/errors.ts';

/** Starts recording a session of world `worldId` from `memory` (a 256×144 procedural player). */
export function startRecording(store: WorldStore, memory: SpatialMemory, worldId = 'w'): string {
  return store.sessions.start({
    worldId,
    player: 'p',
    model: 'procedural',
    width: 256,
    height: 144,
    fps: 30,
    prompt: 'p',
    startMemory: memory,
  });
}

/** A world row for store tests: 5 cm voxels, made now. */
export const testWorld = (id = 'w'): WorldMeta => ({
  id,
  prompt: 'p',
  seed: 1,
  voxelSizeM: 0.05,
  createdAt: new Date().toISOString(),
});

/** The STORE error `f` throws (fails the test when it throws nothing or something else). */
export function storeError(f: () => unknown): SpatiaError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SpatiaError);
    expect((e as SpatiaError).code).toBe('STORE');
    return e as SpatiaError;
  }
  throw new Error('expected a STORE error');
}

/** Every chunk's bytes by key (what a reload must give back), in key order. */
export function chunkBytes(m: SpatialMemory): [number, string][] {
  return [...m.grid.chunks()]
    .filter((c) => c.count > 0)
    .map((c): [number, string] => {
      const w = new BinaryWriter();
      encodeChunk(w, c);
      return [c.key, Buffer.from(w.finish()).toString('base64')];
    })
    .sort((a, b) => a[0] - b[0]);
}

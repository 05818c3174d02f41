import type { SpatialMemory } from '../../server/memory/spatialMemory.ts';
import type { WorldStore } from '../../server/store/worldStore.ts';

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

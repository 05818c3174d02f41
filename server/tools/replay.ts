import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import type { Mat3, Pose } from '../../shared/camera/pose.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { SpatialMemory } from '../memory/spatialMemory.ts';
import { loadModel } from '../models/registry.ts';
import { WorldStore } from '../store/worldStore.ts';
import { frameChecksum, playClip, seedFromScene } from '../world/clipLoop.ts';
import { Director } from '../world/director.ts';
import { EditLog, erasedAtStart } from '../world/editLog.ts';
import { defaultWorldSeed } from '../world/world.ts';
import { runTool, sceneArg, sessionArg, storeArg } from './cli.ts';

const USAGE = `usage: npm run replay -- SESSION [--store FILE.sqlite|postgres://…]

Regenerates a recorded session from its log (the memory it started from, then every clip's
poses, seed, world time and prompt through a fresh director and model) and checks each frame
against the recording (CRC-32 of the generated RGB). Exit code 0 when every frame matches.
Sessions that shared their world with other players diverge where those players changed it.`;

runTool(USAGE, async () => {
  const { values, positionals } = parseArgs({
    options: {
      store: { type: 'string', default: 'data/spatia.sqlite' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const store = new WorldStore(storeArg(values.store), { readonly: true });
  const { id, session } = sessionArg(store, positionals);
  const memory = SpatialMemory.load(session.startSnapshot);
  const model = await loadModel(session.model, { width: session.width, height: session.height });
  // The world's seed places what the model invents (ClipRequest.worldSeed): the world's row has it
  // (a world whose row is gone had the default of its id).
  const worldSeed = store.getWorld(session.worldId)?.seed ?? defaultWorldSeed(session.worldId);
  const director = new Director(memory, model, { prompt: session.prompt, worldSeed });
  // The world's erased regions at the start, then every edit where the recording put it.
  const edits = new EditLog(memory.grid, erasedAtStart(session.erased ?? []));
  if (session.seededFrom) {
    const s = session.seededFrom;
    const pose: Pose = { rotation: s.rotation as unknown as Mat3, position: s.position as unknown as Vec3 };
    seedFromScene(director, sceneArg(s.scene), pose, s.timeS);
  }
  const recorded = [...store.sessions.frames(id)];
  const bar = new SingleBar({
    format: 'replay [{bar}] {value}/{total} frames | {matched} match',
    hideCursor: true,
  });
  bar.start(recorded.length, 0, { matched: 0 });
  let i = 0;
  let matched = 0;
  let firstMismatch = -1;
  for (const clip of store.sessions.clips(id)) {
    for (const e of clip.edits ?? []) {
      if (e.action === 'apply' && e.op) edits.apply(e.op, { id: e.authorId, name: e.author }, new Date());
      else if (e.action === 'undo') edits.undo(e.authorId);
      else if (e.action === 'redo') edits.redo(e.authorId);
    }
    const poses: Pose[] = clip.rotations.map((r, j) => ({
      rotation: r as unknown as Mat3,
      position: clip.positions[j] as unknown as Vec3,
    }));
    for await (const f of playClip(director, {
      poses,
      seed: clip.seed,
      timeS: clip.timeS,
      prompt: clip.prompt,
    })) {
      if (recorded[i]?.rgbCrc === frameChecksum(f)) matched++;
      else if (firstMismatch < 0) firstMismatch = i;
      i++;
      bar.update(i, { matched });
    }
  }
  bar.stop();
  await model.dispose();
  store.close();
  process.stdout.write(
    `replayed ${i} frames of session ${id}: ${matched}/${recorded.length} match the recording\n`,
  );
  if (matched !== recorded.length || i !== recorded.length) {
    process.stderr.write(`first mismatch at frame ${firstMismatch}\n`);
    process.exit(1);
  }
});

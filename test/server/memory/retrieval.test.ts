import { describe, expect, it } from 'vitest';
import { SpatialMemory } from '../../../server/memory/spatialMemory.ts';
import { exactIoU, sketchIoU, viewSignature, visibleVoxelSet } from '../../../server/memory/visibility.ts';
import { renderScene } from '../../../server/scene/rayCaster.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import { type Pose, poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { sceneNamed } from '../../helpers/groundTruth.ts';

const k = intrinsicsFromFov(256, 144, 75);

/** The courtyard seen from its centre-ish in 8 headings, plus a far corner; memory holds it all. */
function courtyardMemory(): { memory: SpatialMemory; poses: Pose[] } {
  const scene = sceneNamed('courtyard');
  const memory = SpatialMemory.create(0.05);
  const poses: Pose[] = [];
  for (let i = 0; i < 8; i++) poses.push(poseFromYawPitch([0, 1.7, 6], (i * Math.PI) / 4, -0.1));
  poses.push(poseFromYawPitch([-8, 1.7, -8], Math.PI * 0.75, -0.1));
  for (const pose of poses) memory.fuse(renderScene(scene, pose, k), pose, k);
  for (const pose of poses) memory.addKeyframe(undefined, pose, k);
  return { memory, poses };
}

describe('reference retrieval by 3D overlap', () => {
  it('a view that sees none of the memory has an empty signature and retrieves nothing', () => {
    const { memory } = courtyardMemory();
    // Straight up into the sky: no voxel in view (this once looped forever).
    const up = poseFromYawPitch([0, 1.7, 6], 0, Math.PI / 2 - 0.01);
    const sig = viewSignature(memory.render(up, k));
    expect(sig.sketch.length).toBe(0);
    expect(sig.voxelCount).toBe(0);
    expect(memory.retrieve(up, k, { k: 7, minIoU: 0 })).toEqual([]);
  });
  it('returns the keyframes that overlap the view, best first, and not the unrelated ones', () => {
    const { memory, poses } = courtyardMemory();
    // Looking almost like keyframe 0 (yaw 0): it must come first; the opposite heading (keyframe 4) must not appear.
    const target = poseFromYawPitch([0.3, 1.7, 5.8], 0.1, -0.1);
    const hits = memory.retrieve(target, k, { k: 7, minIoU: 0.1 });
    expect(hits[0]!.keyframe.id).toBe(0);
    expect(hits.map((h) => h.keyframe.id)).not.toContain(4);
    for (let i = 1; i < hits.length; i++) expect(hits[i]!.iou).toBeLessThanOrEqual(hits[i - 1]!.iou);
    expect(hits.every((h) => h.iou >= 0.1)).toBe(true);
    // Each keyframe's own pose retrieves itself with IoU 1.
    for (let i = 0; i < poses.length; i++) {
      const self = memory.retrieve(poses[i]!, k, { k: 1 });
      expect(self[0]!.keyframe.id).toBe(i);
      expect(self[0]!.iou).toBe(1);
    }
  });

  it('evicted keyframes leave retrieval, the rest retrieve exactly as before; only persisted ones leave', () => {
    const { memory, poses } = courtyardMemory();
    const target = poseFromYawPitch([0.3, 1.7, 5.8], 0.1, -0.1);
    const all = memory.retrieve(target, k, { k: 9, minIoU: 0 });
    const corner = (kf: { pose: Pose }): boolean => kf.pose.position[0] < -4;
    expect(memory.keyframes.evict(corner)).toEqual([]); // none persisted yet
    for (const kf of memory.keyframes.all()) memory.keyframes.markPersisted(kf.id);
    expect(memory.keyframes.evict(corner)).toEqual([8]);
    expect(memory.keyframes.has(8)).toBe(false);
    expect(memory.keyframes.size).toBe(poses.length - 1);
    const kept = memory.retrieve(target, k, { k: 9, minIoU: 0 });
    expect(kept).toEqual(all.filter((h) => h.keyframe.id !== 8));
    // Ids stay unique: the next keyframe does not take the evicted one's id.
    expect(memory.addKeyframe(undefined, poses[0]!, k).id).toBe(9);
    expect(() => memory.keyframes.add({ ...memory.keyframes.all()[0]!, id: 3 })).toThrow(/already/);
    // An evicted keyframe's image leaves RAM with it.
    const withImage = memory.addKeyframe(renderScene(sceneNamed('courtyard'), poses[1]!, k), poses[1]!, k);
    memory.keyframes.markPersisted(withImage.id);
    expect(memory.keyframes.imageBytes).toBeGreaterThan(0);
    expect(memory.keyframes.evict((kf) => kf.id === withImage.id)).toEqual([withImage.id]);
    expect(memory.keyframes.imageBytes).toBe(0);
    expect(withImage.image).toBeUndefined();
  });

  it('respects K and ε: K = 0 gives nothing, a high ε drops weak overlaps', () => {
    const { memory } = courtyardMemory();
    const target = poseFromYawPitch([0, 1.7, 6], 0.3, -0.1);
    expect(memory.retrieve(target, k, { k: 0 })).toEqual([]);
    expect(memory.retrieve(target, k, { k: 2 }).length).toBeLessThanOrEqual(2);
    const strict = memory.retrieve(target, k, { k: 7, minIoU: 0.5 });
    expect(strict.every((h) => h.iou >= 0.5)).toBe(true);
    expect(strict.length).toBeLessThan(memory.retrieve(target, k, { k: 7, minIoU: 0.01 }).length);
    expect(() => memory.retrieve(target, k, { k: -1 })).toThrow(/K must be/);
    expect(() => memory.retrieve(target, k, { minIoU: Number.NaN })).toThrow(/ε/);
  });

  it('estimates IoU from sketches within 0.1 of the exact IoU of the visible voxel sets', () => {
    const { memory, poses } = courtyardMemory();
    const views = poses.slice(0, 4).map((p) => memory.render(p, k));
    const extra = memory.render(poseFromYawPitch([0.5, 1.7, 6.2], 0.2, -0.1), k);
    for (const v of views) {
      const exact = exactIoU(visibleVoxelSet(extra), visibleVoxelSet(v));
      const est = sketchIoU(viewSignature(extra).sketch, viewSignature(v).sketch);
      expect(Math.abs(est - exact)).toBeLessThan(0.1);
    }
  });
});

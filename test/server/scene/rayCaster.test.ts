import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUNDLED_SCENES, loadBundledScene, loadSceneFile } from '../../../server/scene/loadScene.ts';
import { countGhostPoints, entityPosition, renderScene } from '../../../server/scene/rayCaster.ts';
import { parseScene } from '../../../server/scene/sceneFormat.ts';
import { intrinsicsFromFov } from '../../../shared/camera/intrinsics.ts';
import { poseFromYawPitch } from '../../../shared/camera/pose.ts';
import { SpatiaError } from '../../../shared/errors.ts';

const k = intrinsicsFromFov(96, 64, 70);

describe('scene format', () => {
  it('loads every bundled scene (room, courtyard, a scene with moving entities)', () => {
    for (const name of BUNDLED_SCENES) expect(loadBundledScene(name).objects.length).toBeGreaterThan(5);
    expect(loadBundledScene('hall-dynamic').entities.length).toBeGreaterThanOrEqual(2);
  });

  it('rejects unknown materials, bad shapes and broken files with the path in the message', () => {
    const base = {
      name: 's',
      materials: { m: { texture: 'solid', color: [1, 2, 3] } },
      spawn: { position: [0, 0, 0] },
    };
    expect(() =>
      parseScene({ ...base, objects: [{ type: 'sphere', center: [0, 0, 0], radius: 1, material: 'nope' }] }),
    ).toThrow(/unknown material "nope"/);
    expect(() =>
      parseScene({ ...base, objects: [{ type: 'sphere', center: [0, 0, 0], radius: -1, material: 'm' }] }),
    ).toThrow(/objects\.0\.radius/);
    expect(() => parseScene({ ...base, objects: [{ type: 'torus', material: 'm' }] })).toThrow(SpatiaError);
    const dir = mkdtempSync(join(tmpdir(), 'spatia-scene-'));
    writeFileSync(join(dir, 'bad.json'), '{"name": ');
    expect(() => loadSceneFile(join(dir, 'bad.json'))).toThrow(/not valid JSON/);
    expect(() => loadSceneFile(join(dir, 'missing.json'))).toThrow(/cannot read scene file/);
  });
});

describe('ground-truth ray caster', () => {
  it('returns metric camera-z depth: looking straight down at the floor from 1.6 m', () => {
    const scene = loadBundledScene('room');
    const pose = poseFromYawPitch([-1.5, 1.6, 0.5], 0, -Math.PI / 2);
    const f = renderScene(scene, pose, k);
    const centre = Math.round(k.cy) * k.width + Math.round(k.cx);
    expect(f.depth[centre]).toBeCloseTo(1.6, 4);
    // Camera z (not ray length) is constant over a plane parallel to the image plane.
    expect(f.depth[0]).toBeCloseTo(1.6, 4);
  });

  it('gives sky no depth and is deterministic', () => {
    const scene = loadBundledScene('courtyard');
    const up = poseFromYawPitch([0, 1.7, 8], 0, 1.2);
    const a = renderScene(scene, up, k);
    expect(a.depth[0]).toBe(0);
    expect(renderScene(scene, up, k).rgb).toEqual(a.rgb);
  });

  it('marks moving entities in the dynamic mask and moves them over time', () => {
    const scene = loadBundledScene('hall-dynamic');
    const pose = poseFromYawPitch([0, 1.6, 4], 0, -0.15);
    const count = (m: Uint8Array) => m.reduce((s, x) => s + x, 0);
    const t0 = renderScene(scene, pose, k, { timeS: 0 });
    const t3 = renderScene(scene, pose, k, { timeS: 3 });
    expect(count(t0.dynamicMask)).toBeGreaterThan(10);
    expect(t3.dynamicMask).not.toEqual(t0.dynamicMask);
    const still = renderScene(scene, pose, k, { includeEntities: false });
    expect(count(still.dynamicMask)).toBe(0);
    const cart = scene.entities[0]!;
    expect(entityPosition(cart, 0)).not.toEqual(entityPosition(cart, 1));
  });
});

describe('ghost points', () => {
  // The hall's walker returns along z = −2 straight through the pillars at x = ±3.
  const times = Array.from({ length: 400 }, (_v, i) => i * 0.1);
  it('counts a point inside a moving thing but not one on a static surface its path crosses', () => {
    const hall = loadBundledScene('hall-dynamic');
    expect(countGhostPoints(hall, [[-1, 1, -2]], times, 0.02)).toBe(1);
    expect(countGhostPoints(hall, [[3.35, 1, -2]], times, 0.02)).toBe(0);
    expect(countGhostPoints(hall, [[-1, 1, 3]], times, 0.02)).toBe(0);
  });
});

import type { SceneShape } from '../../scene/sceneFormat.ts';
import type { PropKind } from './style.ts';

/**
 * The shapes of one invented prop, standing on the floor: every part either touches the floor or
 * rests on a part that does (a crown on its trunk, a roof on its walls, a lamp on its pole). Pure;
 * the random draws come from `r` in a fixed order, so a seed gives the same prop.
 * Material names: `material` for crates, pillars and balls; the rest name their own (trunk, crown,
 * houseWall, roof, door, window, fence, pole, lampHead, rock), which inventWorld registers.
 */

export function propShapes(
  kind: PropKind | 'tree',
  x: number,
  floorY: number,
  z: number,
  size: number,
  material: string,
  r: () => number,
): SceneShape[] {
  switch (kind) {
    case 'tree': {
      // A trunk standing on the floor and a crown resting on it.
      const trunkH = 1.4 + r() * 1.6;
      const crownR = 0.7 + r() * 0.7;
      return [
        {
          type: 'cylinder',
          base: [x, floorY, z],
          radius: 0.1 + r() * 0.1,
          height: trunkH,
          material: 'trunk',
        },
        { type: 'sphere', center: [x, floorY + trunkH + crownR * 0.6, z], radius: crownR, material: 'crown' },
      ];
    }
    case 'crate': {
      const height = 0.4 + r() * 1.6;
      return [
        {
          type: 'box',
          center: [x, floorY + height / 2, z],
          size: [size, height, size * (0.6 + r() * 0.8)],
          rotationYDeg: r() * 90,
          material,
        },
      ];
    }
    case 'pillar':
      return [
        { type: 'cylinder', base: [x, floorY, z], radius: size / 2, height: 0.5 + r() * 2.5, material },
      ];
    case 'ball':
      return [{ type: 'sphere', center: [x, floorY + size / 2, z], radius: size / 2, material }];
    case 'rock': {
      // Mostly buried: a boulder's visible cap.
      const radius = size * 0.6;
      return [
        { type: 'sphere', center: [x, floorY + radius * (0.2 + r() * 0.3), z], radius, material: 'rock' },
      ];
    }
    case 'lamp': {
      const height = 2.6 + r() * 0.8;
      return [
        { type: 'cylinder', base: [x, floorY, z], radius: 0.05, height, material: 'pole' },
        { type: 'sphere', center: [x, floorY + height + 0.1, z], radius: 0.17, material: 'lampHead' },
      ];
    }
    case 'fence': {
      // A panel of pickets (the stripes) as tall as a fence, at any angle.
      return [
        {
          type: 'box',
          center: [x, floorY + 0.5, z],
          size: [2.4, 1, 0.06],
          rotationYDeg: r() * 180,
          material: 'fence',
        },
      ];
    }
    case 'house':
      return house(x, floorY, z, r);
  }
}

/**
 * A small house: walls, a roof resting on them, a door on the front face from the floor up, and a
 * window either side of it, all turned by one yaw.
 */
function house(x: number, floorY: number, z: number, r: () => number): SceneShape[] {
  const w = 2.4 + r() * 0.8;
  const d = 2.4 + r() * 0.8;
  const h = 2.5 + r() * 0.8;
  const yawDeg = r() * 90;
  const yaw = (yawDeg * Math.PI) / 180;
  const c = Math.cos(yaw);
  const s = Math.sin(yaw);
  // A point in the house's frame (local x along the front, local z out of it) to world x, z; the
  // inverse of the ray caster's box rotation.
  const at = (lx: number, y: number, lz: number): [number, number, number] => [
    x + c * lx + s * lz,
    y,
    z - s * lx + c * lz,
  ];
  const face = d / 2 + 0.02;
  return [
    {
      type: 'box',
      center: at(0, floorY + h / 2, 0),
      size: [w, h, d],
      rotationYDeg: yawDeg,
      material: 'houseWall',
    },
    {
      type: 'box',
      center: at(0, floorY + h + 0.12, 0),
      size: [w + 0.3, 0.25, d + 0.3],
      rotationYDeg: yawDeg,
      material: 'roof',
    },
    {
      type: 'box',
      center: at(0, floorY + 0.95, face),
      size: [0.9, 1.9, 0.06],
      rotationYDeg: yawDeg,
      material: 'door',
    },
    {
      type: 'box',
      center: at(-w * 0.32, floorY + 1.55, face),
      size: [0.55, 0.6, 0.06],
      rotationYDeg: yawDeg,
      material: 'window',
    },
    {
      type: 'box',
      center: at(w * 0.32, floorY + 1.55, face),
      size: [0.55, 0.6, 0.06],
      rotationYDeg: yawDeg,
      material: 'window',
    },
  ];
}

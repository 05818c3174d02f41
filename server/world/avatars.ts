import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { fnv1a } from '../../shared/math/random.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { drawText } from '../io/font.ts';
import { renderScene } from '../scene/rayCaster.ts';
import type { Scene, SceneShape } from '../scene/sceneFormat.ts';

/** Another player as seen in a view: where their eyes are and what to call them. */
export interface Avatar {
  readonly name: string;
  /** Eye position, world metres. */
  readonly eye: Vec3;
  readonly color: readonly [number, number, number];
}

const HEAD_RADIUS_M = 0.17;
const BODY_RADIUS_M = 0.24;
const BODY_TOP_BELOW_EYE_M = 0.25;
const BODY_HEIGHT_M = 1.3;
const NEAR_AVATAR_M = 0.6;

/** A stable, saturated colour per player id. */
export function avatarColor(id: string): [number, number, number] {
  const hue = (fnv1a(id) % 360) / 60;
  const x = 1 - Math.abs((hue % 2) - 1);
  const [r, g, b] =
    hue < 1
      ? [1, x, 0]
      : hue < 2
        ? [x, 1, 0]
        : hue < 3
          ? [0, 1, x]
          : hue < 4
            ? [0, x, 1]
            : hue < 5
              ? [x, 0, 1]
              : [1, 0, x];
  return [Math.round(60 + 180 * r), Math.round(60 + 180 * g), Math.round(60 + 180 * b)];
}

/**
 * Draws other players into a generated frame (in place): a head and body per avatar, depth-tested
 * against the frame's depth so walls and furniture hide them, and the name above a visible head.
 * Avatars are drawn after the memory update, so they never enter the memory.
 */
export function compositeAvatars(
  rgb: Uint8Array,
  depth: Float32Array | undefined,
  pose: Pose,
  k: Intrinsics,
  avatars: readonly Avatar[],
): void {
  // An avatar the camera stands in (players sharing a spawn) would fill the view: leave it out.
  avatars = avatars.filter(
    (a) => Math.hypot(a.eye[0] - pose.position[0], a.eye[2] - pose.position[2]) > NEAR_AVATAR_M,
  );
  if (avatars.length === 0) return;
  const objects: SceneShape[] = [];
  const materials: Scene['materials'] = {};
  avatars.forEach((a, i) => {
    materials[`a${i}`] = { texture: 'solid', color: [...a.color], color2: [...a.color], scale: 1 };
    objects.push({ type: 'sphere', center: [...a.eye], radius: HEAD_RADIUS_M, material: `a${i}` });
    objects.push({
      type: 'cylinder',
      base: [a.eye[0], a.eye[1] - BODY_TOP_BELOW_EYE_M - BODY_HEIGHT_M, a.eye[2]],
      radius: BODY_RADIUS_M,
      height: BODY_HEIGHT_M,
      material: `a${i}`,
    });
  });
  const scene: Scene = {
    name: 'avatars',
    description: '',
    sky: { zenith: [0, 0, 0], horizon: [0, 0, 0] },
    light: { direction: [0.4, 1, 0.3], ambient: 0.55, diffuse: 0.5 },
    materials,
    objects,
    entities: [],
    spawn: { position: [0, 0, 0], yawDeg: 0, pitchDeg: 0 },
    viewpoints: [],
  };
  const drawn = renderScene(scene, pose, k, { sky: false });
  const n = k.width * k.height;
  for (let p = 0; p < n; p++) {
    const z = drawn.depth[p]!;
    if (!(z > 0)) continue;
    if (depth && depth[p]! > 0 && depth[p]! < z) continue; // hidden behind the world
    rgb[p * 3] = drawn.rgb[p * 3]!;
    rgb[p * 3 + 1] = drawn.rgb[p * 3 + 1]!;
    rgb[p * 3 + 2] = drawn.rgb[p * 3 + 2]!;
  }
  // Names above heads that are in front of the camera and not hidden.
  const r = pose.rotation;
  for (const a of avatars) {
    const d = [a.eye[0] - pose.position[0], a.eye[1] + 0.3 - pose.position[1], a.eye[2] - pose.position[2]];
    const cz = r[2] * d[0]! + r[5] * d[1]! + r[8] * d[2]!;
    if (cz < 0.3 || cz > 30) continue;
    const cx = r[0] * d[0]! + r[3] * d[1]! + r[6] * d[2]!;
    const cy = r[1] * d[0]! + r[4] * d[1]! + r[7] * d[2]!;
    const u = (k.fx * cx) / cz + k.cx;
    const v = (k.fy * cy) / cz + k.cy;
    const head = Math.round((k.fy * (cy + 0.3)) / cz + k.cy) * k.width + Math.round(u);
    if (head >= 0 && head < n && depth && depth[head]! > 0 && depth[head]! < cz - 0.5) continue;
    const scale = cz < 4 ? 2 : 1;
    drawText(
      rgb,
      k.width,
      k.height,
      u - (a.name.length * 6 * scale) / 2,
      v - 7 * scale,
      a.name,
      a.color,
      scale,
    );
  }
}

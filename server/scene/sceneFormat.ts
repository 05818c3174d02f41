import { z } from 'zod';
import { SpatiaError } from '../../shared/errors.ts';

const vec3 = z.tuple([z.number(), z.number(), z.number()]);
const rgb = z.tuple([z.number().min(0).max(255), z.number().min(0).max(255), z.number().min(0).max(255)]);

const TEXTURE_KINDS = ['solid', 'checker', 'stripes', 'noise', 'brick', 'wood', 'tiles'] as const;

const material = z.strictObject({
  texture: z.enum(TEXTURE_KINDS),
  color: rgb,
  color2: rgb.optional(),
  /** Pattern repeats per metre. */
  scale: z.number().positive().max(1000).default(1),
});

const shapeFields = {
  material: z.string().min(1),
};
const box = z.strictObject({
  type: z.literal('box'),
  center: vec3,
  size: vec3.refine((s) => s.every((x) => x > 0), 'box size must be positive'),
  rotationYDeg: z.number().default(0),
  ...shapeFields,
});
const sphere = z.strictObject({
  type: z.literal('sphere'),
  center: vec3,
  radius: z.number().positive(),
  ...shapeFields,
});
const cylinder = z.strictObject({
  type: z.literal('cylinder'),
  /** Centre of the bottom cap; the axis is world +y. */
  base: vec3,
  radius: z.number().positive(),
  height: z.number().positive(),
  ...shapeFields,
});
const plane = z.strictObject({
  type: z.literal('plane'),
  point: vec3,
  normal: vec3.refine((n) => Math.hypot(...n) > 0, 'plane normal must be non-zero'),
  ...shapeFields,
});
const shape = z.discriminatedUnion('type', [box, sphere, cylinder, plane]);
const movingShape = z.discriminatedUnion('type', [box, sphere, cylinder]);

const entity = z.strictObject({
  name: z.string().min(1),
  /** Shape around the path's origin; its coordinates are relative to the current path position. */
  shape: movingShape,
  path: z.strictObject({
    points: z.array(vec3).min(2),
    speedMps: z.number().positive(),
    loop: z.boolean().default(true),
    startOffsetS: z.number().default(0),
  }),
});

const sceneSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  sky: z
    .strictObject({ zenith: rgb, horizon: rgb })
    .default({ zenith: [90, 140, 210], horizon: [200, 220, 240] }),
  light: z
    .strictObject({ direction: vec3, ambient: z.number().min(0).max(2), diffuse: z.number().min(0).max(2) })
    .default({ direction: [0.4, 1, 0.3], ambient: 0.45, diffuse: 0.6 }),
  materials: z.record(z.string(), material),
  objects: z.array(shape).max(10_000),
  entities: z.array(entity).max(256).default([]),
  spawn: z.strictObject({ position: vec3, yawDeg: z.number().default(0), pitchDeg: z.number().default(0) }),
  /** Poses (eye, target) that tests and the eval use; the first is the closed-loop start. */
  viewpoints: z.array(z.strictObject({ eye: vec3, target: vec3 })).default([]),
});

export type Scene = z.infer<typeof sceneSchema>;
export type SceneShape = z.infer<typeof shape>;
export type SceneMaterial = z.infer<typeof material>;
export type SceneEntity = z.infer<typeof entity>;

/** Validates an untrusted JSON value as a scene; errors name the offending path. */
export function parseScene(json: unknown): Scene {
  const r = sceneSchema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new SpatiaError('SCENE_FORMAT', `invalid scene: ${issues.join('; ')}`);
  }
  const scene = r.data;
  const used = [...scene.objects.map((o) => o.material), ...scene.entities.map((e) => e.shape.material)];
  for (const m of used) {
    if (!(m in scene.materials))
      throw new SpatiaError('SCENE_FORMAT', `invalid scene: unknown material "${m}"`);
  }
  return scene;
}

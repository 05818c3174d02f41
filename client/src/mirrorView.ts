import { Buffer, VertexBuffer } from '@babylonjs/core/Buffers/buffer';
import { BoundingInfo } from '@babylonjs/core/Culling/boundingInfo';
import { Effect } from '@babylonjs/core/Materials/effect';
import { ShaderMaterial } from '@babylonjs/core/Materials/shaderMaterial';
import { Matrix, Vector3 } from '@babylonjs/core/Maths/math.vector';
import { Mesh } from '@babylonjs/core/Meshes/mesh';
import { SubMesh } from '@babylonjs/core/Meshes/subMesh';
import type { Scene } from '@babylonjs/core/scene';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import { MIRROR_POINT_BYTES, MIRROR_POSITION_STEPS } from '../../shared/protocol/mirrorCodec.ts';
import { DISPLAY_CAMERA_UNIFORMS, PROJECT_GLSL, setDisplayCamera } from './displayCamera.ts';
import type { HeldChunk, MirrorChange } from './mirrorCache.ts';

/**
 * The memory mirror drawn every display frame, as square points sized by their cell and distance
 * (like the server's splats). Chunks are grouped into regions of 4³ chunks, one GPU
 * buffer and one draw call per region: one draw per chunk (~1 400 in a courtyard walk) cost ~90 ms
 * a frame in Chromium's software WebGL, mostly per-draw overhead. A region's buffer is rebuilt when
 * one of its chunks changes, disposed when its last chunk leaves, and culled against the display
 * frustum. Per-region data rides in the mesh's world matrix (origin, position step, voxel size), so
 * every region shares one material.
 */
/** Default region: 4³ chunks (2.56 m at 2 cm voxels). */
const REGION_BITS = 2;
/** Bytes per point on the GPU: x, y, z, chunk slot in the region, r, g, b, level. */
const GPU_POINT_BYTES = 8;
/** Regions rebuilt per display frame at most (the rest wait, still drawn as they were). */
const REBUILDS_PER_FRAME = 24;

const vertexShader = (regionChunks: number): string => `
precision highp float;
attribute vec4 mirrorPos;    // x, y, z in the chunk (steps), chunk slot in the region
attribute vec4 mirrorColor;  // r, g, b, level / 255
uniform mat4 world;  // [3].xyz region origin, [0][0] metres per position step, [1][1] voxel edge
${PROJECT_GLSL}
varying vec3 vColor;
void main(void) {
  float slot = mirrorPos.w;
  vec3 chunk = vec3(mod(slot, ${regionChunks}.0), mod(floor(slot / ${regionChunks}.0), ${regionChunks}.0), floor(slot / ${regionChunks * regionChunks}.0));
  vec3 p = world[3].xyz + (chunk * ${MIRROR_POSITION_STEPS}.0 + mirrorPos.xyz + 0.5) * world[0][0];
  gl_Position = project(p);
  float cell = world[1][1] * exp2(floor(mirrorColor.a * 255.0 + 0.5));
  float depth = max(cameraDepth(p), 0.05);
  // A splat a little larger than its cell closes the gaps between neighbouring means.
  gl_PointSize = clamp(1.5 * cell * intr.x / depth, 1.0, 64.0);
  vColor = mirrorColor.rgb;
}`;
const FRAGMENT = `
precision highp float;
varying vec3 vColor;
void main(void) {
  gl_FragColor = vec4(vColor, 1.0);
}`;

interface Region {
  readonly id: string;
  readonly rx: number;
  readonly ry: number;
  readonly rz: number;
  readonly chunks: Map<string, HeldChunk>;
  dirty: boolean;
  drawn?: { mesh: Mesh; buffer: Buffer; count: number };
  center?: Vector3;
  radius: number;
}

export class MirrorView {
  private readonly material: ShaderMaterial;
  private readonly regions = new Map<string, Region>();
  private readonly dirty = new Set<Region>();
  private readonly regionChunks: number;
  /** Regions and points drawn by the last `prepare`d frame (after culling). */
  visibleRegions = 0;
  visiblePoints = 0;

  /** `regionBits`: a region is 2^regionBits chunks per edge (0: a draw per chunk; the bench compares). */
  constructor(
    private readonly scene: Scene,
    private readonly group: number,
    private readonly regionBits = REGION_BITS,
  ) {
    if (!(Number.isInteger(regionBits) && regionBits >= 0 && regionBits <= 2))
      throw new RangeError('regionBits must be 0, 1 or 2 (a region is at most 64 chunks: one byte of slot)');
    this.regionChunks = 1 << regionBits;
    const name = `mirror${this.regionChunks}`;
    Effect.ShadersStore[`${name}VertexShader`] = vertexShader(this.regionChunks);
    Effect.ShadersStore[`${name}FragmentShader`] = FRAGMENT;
    this.material = new ShaderMaterial(
      'mirror',
      scene,
      { vertex: name, fragment: name },
      { attributes: ['mirrorPos', 'mirrorColor'], uniforms: ['world', ...DISPLAY_CAMERA_UNIFORMS] },
    );
    this.material.pointsCloud = true;
    this.material.backFaceCulling = false;
  }

  /** Regions with a GPU buffer. */
  get regionCount(): number {
    let n = 0;
    for (const r of this.regions.values()) if (r.drawn) n++;
    return n;
  }

  /** Takes what a batch (or an eviction) changed; the regions it touched are rebuilt before they are next drawn. */
  update(change: MirrorChange): void {
    for (const c of change.removed) this.regionOf(c).chunks.delete(c.id);
    for (const c of change.added) this.regionOf(c).chunks.set(c.id, c);
    for (const c of [...change.removed, ...change.added]) {
      const r = this.regionOf(c);
      r.dirty = true;
      this.dirty.add(r);
    }
  }

  private regionOf(c: HeldChunk): Region {
    const rx = c.cx >> this.regionBits;
    const ry = c.cy >> this.regionBits;
    const rz = c.cz >> this.regionBits;
    const id = `${rx},${ry},${rz}`;
    let r = this.regions.get(id);
    if (!r) {
      r = { id, rx, ry, rz, chunks: new Map(), dirty: false, radius: 0 };
      this.regions.set(id, r);
    }
    return r;
  }

  /** Rebuilds a region's buffer from its chunks (or disposes it when none is left). */
  private rebuild(r: Region): void {
    r.dirty = false;
    if (r.drawn) {
      r.drawn.mesh.dispose();
      r.drawn.buffer.dispose();
      r.drawn = undefined;
    }
    let count = 0;
    for (const c of r.chunks.values()) count += c.count;
    if (count === 0) {
      this.regions.delete(r.id);
      return;
    }
    const first = r.chunks.values().next().value!;
    const sizeM = first.sizeM;
    const data = new Uint8Array(count * GPU_POINT_BYTES);
    let o = 0;
    for (const c of r.chunks.values()) {
      const n = this.regionChunks;
      const slot = (c.cx & (n - 1)) + n * ((c.cy & (n - 1)) + n * (c.cz & (n - 1)));
      const p = c.points;
      for (let i = 0; i < p.length; i += MIRROR_POINT_BYTES, o += GPU_POINT_BYTES) {
        data[o] = p[i]!;
        data[o + 1] = p[i + 1]!;
        data[o + 2] = p[i + 2]!;
        data[o + 3] = slot;
        data[o + 4] = p[i + 3]!;
        data[o + 5] = p[i + 4]!;
        data[o + 6] = p[i + 5]!;
        data[o + 7] = c.level;
      }
    }
    const engine = this.scene.getEngine();
    const buffer = new Buffer(engine, data, false, GPU_POINT_BYTES, false, false, true);
    const mesh = new Mesh(`mirror ${r.id}`, this.scene);
    mesh.isUnIndexed = true;
    const attribute = (kind: string, offset: number, normalized: boolean): VertexBuffer =>
      new VertexBuffer(engine, buffer, kind, {
        updatable: false,
        stride: GPU_POINT_BYTES,
        offset,
        size: 4,
        type: VertexBuffer.UNSIGNED_BYTE,
        normalized,
        useBytes: true,
      });
    mesh.setVerticesBuffer(attribute('mirrorPos', 0, false), true, count);
    mesh.setVerticesBuffer(attribute('mirrorColor', 4, true), true, count);
    const edge = sizeM * this.regionChunks;
    const origin = new Vector3(r.rx * edge, r.ry * edge, r.rz * edge);
    mesh.setBoundingInfo(new BoundingInfo(origin, origin.add(new Vector3(edge, edge, edge))));
    mesh.subMeshes = [];
    new SubMesh(0, 0, count, 0, 0, mesh);
    const m = Matrix.Identity();
    m.setRowFromFloats(3, origin.x, origin.y, origin.z, 1);
    m.setRowFromFloats(0, sizeM / MIRROR_POSITION_STEPS, 0, 0, 0);
    m.setRowFromFloats(1, 0, first.cellM / 2 ** first.level, 0, 0);
    mesh.freezeWorldMatrix(m);
    mesh.material = this.material;
    mesh.alwaysSelectAsActiveMesh = true;
    mesh.isPickable = false;
    mesh.renderingGroupId = this.group;
    r.drawn = { mesh, buffer, count };
    r.center = origin.add(new Vector3(edge / 2, edge / 2, edge / 2));
    r.radius = (edge * Math.sqrt(3)) / 2;
  }

  /** Rebuilds changed regions (a bounded number per frame), sets the display camera and culls regions outside its frustum. */
  prepare(pose: Pose, k: Intrinsics): void {
    let rebuilds = 0;
    for (const r of this.dirty) {
      if (rebuilds++ >= REBUILDS_PER_FRAME) break;
      this.dirty.delete(r);
      this.rebuild(r);
    }
    setDisplayCamera(this.material, pose, k);
    const rot = pose.rotation;
    const p = pose.position;
    // Side planes of the frustum through the camera centre: inward normals in the camera, turned into the world.
    const planes: [number, number, number][] = [];
    for (const [nx, ny, nz] of [
      [k.fx, 0, k.cx + 0.5],
      [-k.fx, 0, k.width - 0.5 - k.cx],
      [0, k.fy, k.cy + 0.5],
      [0, -k.fy, k.height - 0.5 - k.cy],
    ] as const) {
      const l = Math.hypot(nx, ny, nz);
      planes.push([
        (rot[0] * nx + rot[1] * ny + rot[2] * nz) / l,
        (rot[3] * nx + rot[4] * ny + rot[5] * nz) / l,
        (rot[6] * nx + rot[7] * ny + rot[8] * nz) / l,
      ]);
    }
    let regions = 0;
    let points = 0;
    for (const r of this.regions.values()) {
      if (!r.drawn || !r.center) continue;
      const vx = r.center.x - p[0];
      const vy = r.center.y - p[1];
      const vz = r.center.z - p[2];
      let visible = vx * rot[2] + vy * rot[5] + vz * rot[8] > -r.radius;
      for (let i = 0; visible && i < 4; i++) {
        const n = planes[i]!;
        visible = vx * n[0] + vy * n[1] + vz * n[2] > -r.radius;
      }
      r.drawn.mesh.isVisible = visible;
      if (visible) {
        regions++;
        points += r.drawn.count;
      }
    }
    this.visibleRegions = regions;
    this.visiblePoints = points;
  }
}

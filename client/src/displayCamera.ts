import type { ShaderMaterial } from '@babylonjs/core/Materials/shaderMaterial';
import { Vector2, Vector3, Vector4 } from '@babylonjs/core/Maths/math.vector';
import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';

/** The uniforms every layer's shader projects with (set by `setDisplayCamera`). */
export const DISPLAY_CAMERA_UNIFORMS = ['camPos', 'r0', 'r1', 'r2', 'intr', 'size'];

/**
 * GLSL shared by the layers: `project(world)` gives the clip position of a world point seen by the
 * display camera (OpenCV pinhole, the conventions of shared/camera/pose.ts), or a point behind the
 * far plane when it lies behind the camera; `cameraDepth(world)` its z in the camera.
 */
export const PROJECT_GLSL = `
uniform vec3 camPos;
uniform vec3 r0;
uniform vec3 r1;
uniform vec3 r2;
uniform vec4 intr;   // fx, fy, cx, cy of the display camera
uniform vec2 size;   // width, height of the display camera
const float NEAR = 0.05;
const float FAR = 2000.0;
float cameraDepth(vec3 p) {
  return dot(r2, p - camPos);
}
vec4 project(vec3 p) {
  vec3 d = p - camPos;
  vec3 c = vec3(dot(r0, d), dot(r1, d), dot(r2, d));
  float w = max(c.z, 1e-4);
  float x = ((intr.x * c.x / w + intr.z) + 0.5) / size.x * 2.0 - 1.0;
  float y = 1.0 - ((intr.y * c.y / w + intr.w) + 0.5) / size.y * 2.0;
  float z = (c.z - NEAR) / (FAR - NEAR) * 2.0 - 1.0;
  return c.z > NEAR ? vec4(x * w, y * w, z * w, w) : vec4(0.0, 0.0, -2.0, 1.0);
}`;

/** Sets the display camera (a pose, and pinhole intrinsics in canvas pixels) on a layer's material. */
export function setDisplayCamera(m: ShaderMaterial, pose: Pose, k: Intrinsics): void {
  const r = pose.rotation;
  // World → camera rows are the columns of the camera-to-world rotation.
  m.setVector3('r0', new Vector3(r[0], r[3], r[6]));
  m.setVector3('r1', new Vector3(r[1], r[4], r[7]));
  m.setVector3('r2', new Vector3(r[2], r[5], r[8]));
  m.setVector3('camPos', new Vector3(pose.position[0], pose.position[1], pose.position[2]));
  m.setVector4('intr', new Vector4(k.fx, k.fy, k.cx, k.cy));
  m.setVector2('size', new Vector2(k.width, k.height));
}

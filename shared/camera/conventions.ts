/**
 * The coordinate conventions of Spatia, written down once (BRIEF §3).
 *
 * - World: right-handed, +y up, metres.
 * - Camera: OpenCV axes: +x right, +y down, +z forward (the optical axis).
 * - Pose: camera-to-world. A camera point Xc maps to the world as Xw = R·Xc + t, so the
 *   columns of R are the camera's right, down and forward axes in world coordinates and t is
 *   the camera centre.
 * - Intrinsics: fx, fy, cx, cy in pixels; the centre of pixel (col, row) is at (u, v) = (col, row)
 *   (OpenCV), so an image of width W has its principal point at cx = (W - 1) / 2 when centred.
 * - Depth: metric z in the camera frame (distance along the optical axis, not along the ray);
 *   0 means "no surface" (sky, out of range, or not covered).
 * - Images: row-major, top-left origin; RGB is 3 bytes per pixel, depth is Float32 metres.
 * - Yaw/pitch (the camera controller): yaw 0 looks along world -z, positive yaw turns right
 *   (towards +x); positive pitch looks up.
 *
 * Babylon.js is left-handed (+z forward, +y up); the client converts at exactly one boundary.
 */
export const WORLD_UP = [0, 1, 0] as const;

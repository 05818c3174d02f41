/** Stable error codes; every error that crosses a boundary carries one. */
export type SpatiaErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_POSE'
  | 'INVALID_INTRINSICS'
  | 'BUFFER_SIZE'
  | 'INVALID_VOXEL_SIZE'
  | 'PLY_FORMAT'
  | 'SNAPSHOT_FORMAT'
  | 'SCENE_FORMAT'
  | 'TRAJECTORY_FORMAT'
  | 'CAPACITY'
  | 'CANCELLED'
  | 'UNKNOWN_MODEL'
  | 'STORE'
  /** The store's server does not answer for now (PostgreSQL away): try again later; nothing is damaged. */
  | 'STORE_UNAVAILABLE'
  | 'WORKER_UNAVAILABLE'
  | 'CLUSTER'
  | 'MODEL_FILE';

/** An error with a machine-readable code and a message a person can act on. */
export class SpatiaError extends Error {
  constructor(
    readonly code: SpatiaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SpatiaError';
  }
}

/** Throws `SpatiaError(code, message)` when `condition` is false. */
export function check(condition: boolean, code: SpatiaErrorCode, message: string): asserts condition {
  if (!condition) throw new SpatiaError(code, message);
}

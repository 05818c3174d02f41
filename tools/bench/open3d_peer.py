#!/usr/bin/env python3
"""Open3D 0.16 peer for `npm run bench`: times the same operations on the same data, one thread.

Input: a folder written by test/bench/run.ts with meta.json and raw little-endian arrays.
Output: one JSON object on stdout with milliseconds per operation and the peer's footprint.
"""
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import open3d as o3d  # noqa: E402


def timed(fn, repeats):
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return samples[len(samples) // 2]


def main(folder):
    meta = json.load(open(os.path.join(folder, "meta.json")))
    W, H = meta["width"], meta["height"]
    fx, fy, cx, cy = meta["fx"], meta["fy"], meta["cx"], meta["cy"]
    out = {"open3d": o3d.__version__}

    # --- fuse one RGB-D frame ---
    rgb = np.fromfile(os.path.join(folder, "frame_rgb.u8"), dtype=np.uint8).reshape(H, W, 3)
    depth = np.fromfile(os.path.join(folder, "frame_depth.f32"), dtype=np.float32).reshape(H, W)
    extr = np.array(meta["frame_world_to_camera"], dtype=np.float64).reshape(4, 4)
    vs = float(meta["voxel_size"])
    max_depth = float(meta["max_depth"])
    K = o3d.camera.PinholeCameraIntrinsic(W, H, fx, fy, cx, cy)
    rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
        o3d.geometry.Image(np.ascontiguousarray(rgb)), o3d.geometry.Image(np.ascontiguousarray(depth)),
        depth_scale=1.0, depth_trunc=max_depth, convert_rgb_to_intensity=False)

    def downsample():
        pc = o3d.geometry.PointCloud.create_from_rgbd_image(rgbd, K, extr)
        return pc.voxel_down_sample(vs)

    out["fuse_downsample_ms"] = timed(downsample, 10)

    dev = o3d.core.Device("CPU:0")
    vbg = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"),
        attr_dtypes=(o3d.core.float32, o3d.core.float32, o3d.core.float32),
        attr_channels=((1), (1), (3)), voxel_size=vs, block_resolution=8, block_count=200000, device=dev)
    dt = o3d.t.geometry.Image(o3d.core.Tensor(depth))
    ct = o3d.t.geometry.Image(o3d.core.Tensor(rgb.astype(np.float32)))
    Kt = o3d.core.Tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], o3d.core.float64)
    Et = o3d.core.Tensor(extr, o3d.core.float64)

    def integrate():
        blocks = vbg.compute_unique_block_coordinates(dt, Kt, Et, 1.0, max_depth)
        vbg.integrate(blocks, dt, ct, Kt, Et, 1.0, max_depth)

    out["fuse_vbg_ms"] = timed(integrate, 5)

    # --- render N points to an RGB + depth view ---
    pts = np.fromfile(os.path.join(folder, "cloud_xyz.f32"), dtype=np.float32).reshape(-1, 3)
    cols = np.fromfile(os.path.join(folder, "cloud_rgb.u8"), dtype=np.uint8).reshape(-1, 3)
    pcd = o3d.t.geometry.PointCloud(dev)
    pcd.point.positions = o3d.core.Tensor(pts)
    pcd.point.colors = o3d.core.Tensor(cols.astype(np.float32) / 255.0)
    view_extr = o3d.core.Tensor(np.array(meta["view_world_to_camera"], dtype=np.float64).reshape(4, 4))
    result = {}

    def project():
        result["img"] = pcd.project_to_rgbd_image(W, H, Kt, view_extr, depth_scale=1.0, depth_max=max_depth * 10)

    out["render_ms"] = timed(project, 5)
    color = np.asarray(result["img"].color.as_tensor().numpy())
    color = np.clip(np.round(color * 255.0), 0, 255).astype(np.uint8).reshape(H, W, 3)
    color.tofile(os.path.join(folder, "open3d_view_rgb.u8"))

    # --- erase a box from the same cloud (crop, keeping what lies outside) ---
    if "erase_box" in meta:
        lo, hi = meta["erase_box"][:3], meta["erase_box"][3:]
        box = o3d.t.geometry.AxisAlignedBoundingBox(
            o3d.core.Tensor(lo, o3d.core.float32), o3d.core.Tensor(hi, o3d.core.float32)
        )

        def erase():
            result["kept"] = pcd.crop(box, invert=True)

        out["erase_ms"] = timed(erase, 5)
        out["erase_removed"] = int(len(pts) - result["kept"].point.positions.shape[0])

    # --- footprint of the same cloud in Open3D (legacy PointCloud: float64 xyz + rgb) ---
    legacy = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
    legacy.colors = o3d.utility.Vector3dVector(cols.astype(np.float64) / 255.0)
    nbytes = np.asarray(legacy.points).nbytes + np.asarray(legacy.colors).nbytes
    out["bytes_per_point"] = nbytes / len(pts)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Open3D 0.16 on real RGB-D data for `npm run bench` (realdata rows), one thread.

Fuses the training frames into a TSDF (VoxelBlockGrid integrate) and ray-casts each held-out pose,
for each voxel size: the peer the spatial memory is measured against on captured data.

Input: a folder written by test/bench/realDataBench.ts: meta.json (camera, voxel sizes, frame
lists, world-to-camera matrices) and frame_N_rgb.u8 / frame_N_depth.f32 raw arrays.
Output: one JSON line {voxel: {fuse_ms, render_ms}} on stdout; tsdf_V_N_{rgb.u8,depth.f32} files.
"""
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import open3d as o3d  # noqa: E402


def main(folder):
    meta = json.load(open(os.path.join(folder, "meta.json")))
    W, H = meta["width"], meta["height"]
    K = o3d.core.Tensor([[meta["fx"], 0, meta["cx"]], [0, meta["fy"], meta["cy"]], [0, 0, 1]], o3d.core.float64)
    depth_max = float(meta["depth_max"])
    dev = o3d.core.Device("CPU:0")

    def frame(i):
        rgb = np.fromfile(os.path.join(folder, f"frame_{i}_rgb.u8"), dtype=np.uint8).reshape(H, W, 3)
        depth = np.fromfile(os.path.join(folder, f"frame_{i}_depth.f32"), dtype=np.float32).reshape(H, W)
        return (o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(depth))),
                o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(rgb.astype(np.float32) / 255.0))))

    def extrinsic(i):
        return o3d.core.Tensor(np.array(meta["world_to_camera"][str(i)], dtype=np.float64).reshape(4, 4))

    frames = {i: frame(i) for i in meta["train"] + meta["test"]}
    out = {"open3d": o3d.__version__}
    for vs in meta["voxel_sizes"]:
        vbg = o3d.t.geometry.VoxelBlockGrid(
            attr_names=("tsdf", "weight", "color"),
            attr_dtypes=(o3d.core.float32, o3d.core.float32, o3d.core.float32),
            attr_channels=((1), (1), (3)), voxel_size=vs, block_resolution=8, block_count=100000, device=dev)
        t = time.perf_counter()
        for i in meta["train"]:
            d, c = frames[i]
            E = extrinsic(i)
            blocks = vbg.compute_unique_block_coordinates(d, K, E, 1.0, depth_max)
            vbg.integrate(blocks, d, c, K, E, 1.0, depth_max)
        fuse_ms = (time.perf_counter() - t) * 1000
        render_ms = 0.0
        for i in meta["test"]:
            E = extrinsic(i)
            t = time.perf_counter()
            result = vbg.ray_cast(block_coords=vbg.hashmap().key_tensor(), intrinsic=K, extrinsic=E, width=W,
                                  height=H, render_attributes=["depth", "color"], depth_scale=1.0, depth_min=0.1,
                                  depth_max=depth_max, weight_threshold=1.0, range_map_down_factor=8)
            render_ms += (time.perf_counter() - t) * 1000
            depth = result["depth"].numpy().reshape(H, W).astype(np.float32)
            color = np.clip(np.round(result["color"].numpy().reshape(H, W, 3) * 255.0), 0, 255).astype(np.uint8)
            depth.tofile(os.path.join(folder, f"tsdf_{vs}_{i}_depth.f32"))
            color.tofile(os.path.join(folder, f"tsdf_{vs}_{i}_rgb.u8"))
        out[str(vs)] = {"fuse_ms": fuse_ms, "render_ms": render_ms}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

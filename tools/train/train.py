#!/usr/bin/env python3
"""Trains Spatia's tiny reference ONNX world model (docs/onnx-model.md) on CPU.

The model is a flow-matching denoiser: given x_t = (1 - t)·noise + t·x1 (x1 = target RGB + depth
in [-1, 1]), the time t and the conditioning built by server/models/onnx/conditioning.ts, it
predicts the velocity x1 - noise. The TypeScript sampler integrates it with Euler steps.

Data: out/train/samples.u8 from `npx tsx tools/train/makeDataset.ts` (the project's own worlds).
Run with Debian's torch:  /usr/bin/python3 tools/train/train.py --out assets/models/spatia-tiny.onnx
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn


class TinyDenoiser(nn.Module):
    """A small U-Net: 128×72 → 64×36 → 32×18 and back, skip connections, ~40k parameters."""

    def __init__(self, cond_channels: int, c: int = 16):
        super().__init__()
        cin = 4 + 1 + cond_channels  # x_t, t, conditioning
        act = nn.SiLU()
        self.e1 = nn.Sequential(nn.Conv2d(cin, c, 3, padding=1), act)
        self.e2 = nn.Sequential(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), act, nn.Conv2d(2 * c, 2 * c, 3, padding=1), act)
        self.e3 = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), act, nn.Conv2d(2 * c, 2 * c, 3, padding=1), act)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.u2 = nn.Sequential(nn.Conv2d(4 * c, 2 * c, 3, padding=1), act)
        self.u1 = nn.Sequential(nn.Conv2d(3 * c, c, 3, padding=1), act, nn.Conv2d(c, 4, 3, padding=1))

    def forward(self, x_t, t, cond):
        tt = t.view(-1, 1, 1, 1).expand(-1, 1, x_t.shape[2], x_t.shape[3])
        h1 = self.e1(torch.cat([x_t, tt, cond], 1))
        h2 = self.e2(h1)
        h3 = self.e3(h2)
        u2 = self.u2(torch.cat([self.up(h3), h2], 1))
        return self.u1(torch.cat([self.up(u2), h1], 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="out/train")
    ap.add_argument("--out", default="assets/models/spatia-tiny.onnx")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=12.0, help="stop after this much training time")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(os.cpu_count() or 1)

    meta = json.load(open(os.path.join(args.data, "meta.json")))
    n, w, h, cc = meta["samples"], meta["width"], meta["height"], meta["condChannels"]
    raw = np.fromfile(os.path.join(args.data, "samples.u8"), dtype=np.uint8).reshape(n, cc + 4, h, w)
    data = torch.from_numpy(raw)
    held = max(16, n // 20)
    train, val = data[:-held], data[-held:]
    print(f"{n} samples {w}x{h}, {cc} conditioning channels; {len(train)} train / {len(val)} validation", flush=True)

    model = TinyDenoiser(cc)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)

    def split(batch):
        x = batch.float() / 255.0
        return x[:, :cc], x[:, cc:] * 2 - 1  # conditioning in [0, 1], target in [-1, 1]

    def loss_of(batch):
        cond, x1 = split(batch)
        noise = torch.randn_like(x1)
        t = torch.rand(x1.shape[0])
        xt = (1 - t.view(-1, 1, 1, 1)) * noise + t.view(-1, 1, 1, 1) * x1
        return ((model(xt, t, cond) - (x1 - noise)) ** 2).mean()

    start = time.time()
    step = 0
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(train), (args.batch,))
        loss = loss_of(train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            with torch.no_grad():
                torch.manual_seed(1)
                vl = loss_of(val[:32]).item()
            print(f"step {step} loss {loss.item():.4f} val {vl:.4f} {time.time() - start:.0f}s", flush=True)
        if time.time() - start > args.minutes * 60:
            break

    # Validation PSNR of 3-step Euler sampling against the targets (RGB), the number the notes quote.
    model.eval()
    with torch.no_grad():
        cond, x1 = split(val[:64])
        torch.manual_seed(2)
        x = torch.randn_like(x1)
        for i in range(3):
            t = torch.full((x.shape[0],), i / 3)
            x = x + model(x, t, cond) / 3
        mse = (((x[:, :3].clamp(-1, 1) - x1[:, :3]) / 2) ** 2).mean().item()
        psnr = 10 * np.log10(1 / mse)
    print(f"validation PSNR (3 Euler steps) {psnr:.2f} dB", flush=True)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    dummy = (torch.zeros(1, 4, h, w), torch.zeros(1), torch.zeros(1, cc, h, w))
    torch.onnx.export(
        model, dummy, args.out, input_names=["x_t", "t", "cond"], output_names=["velocity"],
        dynamic_axes={"x_t": {0: "batch"}, "t": {0: "batch"}, "cond": {0: "batch"}, "velocity": {0: "batch"}},
        opset_version=13,
    )
    card = {
        "name": "spatia-tiny",
        "contract": "docs/onnx-model.md",
        "width": w, "height": h, "condChannels": cc, "maxDepthM": meta["maxDepthM"],
        "parameters": params, "trainingSteps": step, "trainingSeconds": round(time.time() - start),
        "trainingSamples": len(train), "validationPsnrDb3Steps": round(float(psnr), 2),
        "torch": torch.__version__, "sampler": {"steps": 3, "method": "euler"},
        # Its depth for pixels it invents is noise (docs/onnx-model.md): only kept pixels keep depth.
        "inventedDepth": False,
    }
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(card, f, indent=2)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, {params} parameters)", flush=True)


if __name__ == "__main__":
    main()

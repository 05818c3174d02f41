#!/usr/bin/env python3
"""Trains the client's hole filler (onnxruntime-web, wasm): given an RGB frame with unknown pixels
(mask = 1) it fills them. The client extends each server frame by a border it has never seen and
fills it, so turning between server frames shows plausible edges instead of black.

Data: the target frames of out/train (tools/train/makeDataset.ts). Masks: a border ring of random
width plus random rectangles. Run: /usr/bin/python3 tools/train/train_holefill.py
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn


class HoleFiller(nn.Module):
    def __init__(self, c: int = 16):
        super().__init__()
        act = nn.SiLU()
        self.net = nn.Sequential(
            nn.Conv2d(4, c, 3, padding=1), act,
            nn.Conv2d(c, c, 3, padding=2, dilation=2), act,
            nn.Conv2d(c, c, 3, padding=4, dilation=4), act,
            nn.Conv2d(c, c, 3, padding=8, dilation=8), act,
            nn.Conv2d(c, 3, 3, padding=1),
        )

    def forward(self, image):
        rgb, mask = image[:, :3], image[:, 3:4]
        pred = torch.sigmoid(self.net(image))
        return rgb * (1 - mask) + pred * mask


def masks(b, h, w, g):
    m = torch.zeros(b, 1, h, w)
    for i in range(b):
        r = int(torch.randint(4, 20, (1,), generator=g))
        m[i, :, :r, :] = 1
        m[i, :, h - r:, :] = 1
        m[i, :, :, :r] = 1
        m[i, :, :, w - r:] = 1
        for _ in range(int(torch.randint(0, 4, (1,), generator=g))):
            y, x = int(torch.randint(0, h - 8, (1,), generator=g)), int(torch.randint(0, w - 8, (1,), generator=g))
            m[i, :, y:y + int(torch.randint(3, 16, (1,), generator=g)), x:x + int(torch.randint(3, 24, (1,), generator=g))] = 1
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="out/train")
    ap.add_argument("--out", default="assets/models/hole-filler.onnx")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--minutes", type=float, default=4)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    meta = json.load(open(os.path.join(args.data, "meta.json")))
    n, w, h, cc = meta["samples"], meta["width"], meta["height"], meta["condChannels"]
    raw = np.fromfile(os.path.join(args.data, "samples.u8"), dtype=np.uint8).reshape(n, cc + 4, h, w)
    rgb = torch.from_numpy(np.ascontiguousarray(raw[:, cc:cc + 3]))
    held = max(16, n // 20)
    train, val = rgb[:-held], rgb[-held:]
    model = HoleFiller()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    start = time.time()
    step = 0
    for step in range(1, args.steps + 1):
        x = train[torch.randint(0, len(train), (16,))].float() / 255
        m = masks(16, h, w, g)
        out = model(torch.cat([x * (1 - m), m], 1))
        loss = ((out - x).abs() * (0.1 + m)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.4f} {time.time() - start:.0f}s", flush=True)
        if time.time() - start > args.minutes * 60:
            break
    model.eval()
    with torch.no_grad():
        x = val[:64].float() / 255
        m = masks(len(x), h, w, torch.Generator().manual_seed(3))
        out = model(torch.cat([x * (1 - m), m], 1))
        mse = (((out - x) ** 2) * m).sum() / (m.sum() * 3)
        mean_fill = (x * (1 - m)).sum((2, 3), keepdim=True) / (1 - m).sum((2, 3), keepdim=True)
        base = (((mean_fill - x) ** 2) * m).sum() / (m.sum() * 3)
    psnr = float(10 * np.log10(1 / mse.item()))
    psnr_base = float(10 * np.log10(1 / base.item()))
    print(f"validation PSNR on filled pixels {psnr:.2f} dB (mean-colour fill {psnr_base:.2f} dB)", flush=True)
    torch.onnx.export(
        model, (torch.zeros(1, 4, h, w),), args.out, input_names=["image"], output_names=["filled"],
        dynamic_axes={"image": {2: "height", 3: "width"}, "filled": {2: "height", 3: "width"}}, opset_version=13,
    )
    card = {
        "name": "hole-filler", "input": "image [1, 4, H, W]: RGB in [0, 1] with unknown pixels zeroed, then the mask (1 = unknown)",
        "output": "filled [1, 3, H, W] in [0, 1]; known pixels pass through",
        "parameters": sum(p.numel() for p in model.parameters()), "trainingSteps": step,
        "trainingSeconds": round(time.time() - start), "validationPsnrFilledDb": round(psnr, 2),
        "validationPsnrMeanFillDb": round(psnr_base, 2), "torch": torch.__version__,
    }
    json.dump(card, open(os.path.splitext(args.out)[0] + ".json", "w"), indent=2)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", flush=True)


if __name__ == "__main__":
    main()

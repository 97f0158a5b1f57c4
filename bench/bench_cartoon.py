"""Throughput of the `cartoon` generator (img/s at 224x224) on CPU, and on CUDA when present.

The reference is the release's way of running it: one image per call, fp32 (cartoonize.py feeds one
image per `sess.run`). TensorFlow is not installed here, so that loop is measured with our torch
port (batch 1, fp32) in the same process; the published figure for the original is also printed
(ImageNet-Cartoon: 50,000 images in under 48 minutes on one P100, i.e. >= 17.4 img/s at ImageNet
sizes capped at 720, not 224x224). Random weights: speed does not depend on their values.

    python bench/bench_cartoon.py [--size 224] [--images 32] [--batch 256] [--cpu-only]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from shift_hub.shifts.cartoon import random_cartoonizer

PUBLISHED_IMG_S = 50_000 / (48 * 60)  # P100, TF 1.12, batch 1, ImageNet val sizes
GOAL_H100_IMG_S = 1000


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def throughput(runner, images: list[np.ndarray], device: str, per_image: bool) -> float:
    runner(images[:2], None)  # warm-up (allocator, cuDNN algorithm choice)
    _sync(device)
    start = time.perf_counter()
    if per_image:
        for image in images:
            runner([image], None)
    else:
        runner(images, None)
    _sync(device)
    return len(images) / (time.perf_counter() - start)


def bench(device: str, size: int, n: int, batch: int) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    ours = random_cartoonizer(device=device, batch_pixels=batch * size * size)  # fp16 on CUDA
    ref = random_cartoonizer(device=device, batch_pixels=size * size)
    if device.startswith("cuda"):  # the reference runs in fp32, as TF did
        ref.model.float()
        ref.dtype = torch.float32
    ours_s = throughput(ours, images, device, per_image=False)
    ref_s = throughput(ref, images, device, per_image=True)
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"[{name}] {n} images {size}x{size}")
    print(f"  ours (batched {'fp16' if device.startswith('cuda') else 'fp32'}, up to {batch}/batch): {ours_s:9.1f} img/s")
    print(f"  reference loop (batch 1, fp32, same port):  {ref_s:9.1f} img/s   ratio ours/ref {ours_s / ref_s:5.2f}x")
    print(f"  published original (P100, TF1, batch 1):    {PUBLISHED_IMG_S:9.1f} img/s   ratio ours/published "
          f"{ours_s / PUBLISHED_IMG_S:5.2f}x")
    if device.startswith("cuda"):
        print(f"  goal on one H100: {GOAL_H100_IMG_S} img/s -> {'met' if ours_s >= GOAL_H100_IMG_S else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=16, help="images on CPU (GPU uses 64x as many)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    bench("cpu", args.size, args.images, args.batch)
    if torch.cuda.is_available() and not args.cpu_only:
        bench("cuda", args.size, args.images * 64, args.batch)
    else:
        print("no CUDA device: GPU throughput not measured")


if __name__ == "__main__":
    main()

"""Speed of the `drawing` shift against the pencil-drawing port imagenet-shift used, in one process.

For each image size it times `shift_hub.shifts.drawing.pencil_drawing` (best of N runs) and our
literal re-run of the port (`bench/pencil_reference.py`: convolve2d, spdiags + CG, one run), on one
thread each, prints both, the ratio, the largest per-pixel difference of their uint8 outputs, and
the figures the port's authors' setup took (2.1 s at 535x426, 4.9 s at 768x576, one core).

    .venv/bin/python bench/bench_drawing.py [--runs 5] [--sizes 535x426,768x576]
    .venv/bin/python bench/bench_drawing.py --samples   # the check on every `samples` photo, full size

Pattern I is read from ../shared/fixtures/drawing-patterns when present, else both sides use the
synthetic texture.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the reference figures

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pencil_reference import reference_pencil_drawing  # noqa: E402

from shift_hub.shifts import drawing  # noqa: E402

PUBLISHED_SECONDS = {(535, 426): 2.1, (768, 576): 4.9}  # the port, one core (issue 5)
PATTERN_I = ROOT.parent / "shared" / "fixtures" / "drawing-patterns" / "drawing-pattern-I.jpg"


def sample_image(width: int, height: int) -> np.ndarray:
    from skimage import data

    return cv2.resize(data.chelsea(), (width, height), interpolation=cv2.INTER_AREA if width < 451 else cv2.INTER_CUBIC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="224x224,535x426,768x576")
    parser.add_argument("--samples", action="store_true", help="compare on the embedded sample photos instead")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    pattern_path = str(PATTERN_I) if PATTERN_I.is_file() else None
    texture = drawing.load_pattern(pattern_path)
    print(f"pattern: {pattern_path or 'synthetic'}; threads: 1 (OpenCV, BLAS)")
    if args.samples:
        return compare_samples(pattern_path, texture)
    print(f"{'size':>9} {'ours s':>8} {'port s':>8} {'ratio':>6} {'published s':>11} {'vs published':>12} "
          f"{'max|diff|':>9} {'px differ':>9}")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        img = sample_image(w, h)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            ours = drawing.pencil_drawing(img, None, pattern=pattern_path)
            times.append(time.perf_counter() - t0)
        ours_s = min(times)
        t0 = time.perf_counter()
        ref = reference_pencil_drawing(img, None, pattern=texture)
        ref_s = time.perf_counter() - t0
        diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
        published = PUBLISHED_SECONDS.get((w, h))
        vs_pub = f"{published / ours_s:11.1f}x" if published else f"{'-':>12}"
        print(f"{size:>9} {ours_s:8.3f} {ref_s:8.3f} {ref_s / ours_s:5.1f}x {published or '-':>11} {vs_pub} "
              f"{int(diff.max()):9d} {float((diff > 0).mean()):9.2e}")


def compare_samples(pattern_path: str | None, texture: np.ndarray) -> None:
    """Ours against the literal port on each photo of the `samples` source, decoded as the engine does."""
    from shift_hub.imaging import decode
    from shift_hub.sources import open_source

    source = open_source("samples")
    print(f"{'image':>17} {'size':>9} {'ours s':>7} {'port s':>7} {'max|diff|':>9} {'px differ':>9}")
    for example in source.examples():
        img, _ = decode(source.read(example), example.image_id)
        t0 = time.perf_counter()
        ours = drawing.pencil_drawing(img, None, pattern=pattern_path)
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = reference_pencil_drawing(img, None, pattern=texture)
        ref_s = time.perf_counter() - t0
        diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
        print(f"{example.image_id:>17} {img.shape[1]}x{img.shape[0]:<5} {ours_s:7.3f} {ref_s:7.3f} "
              f"{int(diff.max()):9d} {float((diff > 0).mean()):9.2e}")


if __name__ == "__main__":
    main()

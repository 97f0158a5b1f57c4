"""ImageNet-C-bar speed: ours vs the original (corrupt.py restated pixel by pixel, bench/imagenet_c_bar_reference.py),
per corruption (all five levels), on one CPU core, side by side in one run.

Both sides run in this process on the same 224x224 real photos (resize 256 / centre crop 224), each timed in
process CPU seconds with OpenMP/BLAS/OpenCV pinned to one thread: the original draws its parameters from a seeded
RandomState and computes every pixel in Python, as corrupt.py does; ours draws from the per-image generator, as a
run does. With --repeat N the two take turns N times and each keeps its best time per corruption. Untimed, ours is
also fed the original's very draws and compared with its output value by value (the `same` column).

    python bench/bench_corruptions_bar.py [--images 2] [--repeat 1] [--only NAME ...]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shift_hub import registry  # noqa: E402
from shift_hub.imaging import apply_geometry  # noqa: E402
from shift_hub.rng import generator  # noqa: E402
from shift_hub.shifts import imagenet_c_bar  # noqa: E402


def _reference():
    path = REPO / "bench" / "imagenet_c_bar_reference.py"
    spec = importlib.util.spec_from_file_location("imagenet_c_bar_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = _reference()


def sample_images(count: int) -> list[np.ndarray]:
    import skimage.data

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket()]
    return [apply_geometry(np.asarray(p)[..., :3], registry.STANDARD) for p in photos[:count]]


def _levels(name: str) -> tuple[float, ...]:
    return registry.IMAGENET_C_BAR_CORRUPTIONS[name][2]


def time_ours(name: str, images: list[np.ndarray]) -> float:
    fn = getattr(imagenet_c_bar, name)
    fn(images[0], generator(0, f"{name}_1", "warm"), _levels(name)[0])  # warm-up (imports, caches)
    start = time.process_time()
    for i, image in enumerate(images):
        for severity, level in enumerate(_levels(name), start=1):
            fn(image, generator(0, f"{name}_{severity}", str(i)), level)
    return time.process_time() - start


def time_original(name: str, images: list[np.ndarray]) -> tuple[float, int, int]:
    """CPU seconds of the original's sample + transform, and (values equal, values) of ours fed its draws."""
    seconds, same, total = 0.0, 0, 0
    for i, image in enumerate(images):
        for severity, level in enumerate(_levels(name), start=1):
            state = REF.OriginalDraws(1000 * i + severity)
            start = time.process_time()
            params = REF.sample(name, state, level, 224)
            expected = REF.transform(name, image, params, 224)
            seconds += time.process_time() - start
            replay = REF.Replay(REF.original_draws(name, state.draws, params))
            out = getattr(imagenet_c_bar, name)(image, replay, level)
            same += int((out == expected).sum())
            total += out.size
    return seconds, same, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2, help="photos (1-4); the original takes ~1 min per photo")
    parser.add_argument("--repeat", type=int, default=1, help="each side's best of N turns")
    parser.add_argument("--only", nargs="*", default=None, help="corruptions to run (default: all ten)")
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)
    images = sample_images(args.images)
    names = args.only or list(registry.IMAGENET_C_BAR_CORRUPTIONS)
    ours, original, agreement = {}, {}, {}
    for _ in range(args.repeat):
        for name in names:
            seconds, same, total = time_original(name, images)
            original[name] = min(seconds, original.get(name, seconds))
            agreement[name] = (same, total)
            turn = time_ours(name, images)
            ours[name] = min(turn, ours.get(name, turn))
    n = len(images)
    print(f"ImageNet-C-bar, {n} image(s) of 224x224, 5 levels each, one core, best of {args.repeat} turn(s) each side")
    print(f"original: corrupt.py restated pixel by pixel (bench/imagenet_c_bar_reference.py, numpy {np.__version__}); "
          "ours: shift_hub.shifts.imagenet_c_bar")
    print(f"{'corruption':28s} {'ours s':>9s} {'orig s':>9s} {'ratio':>9s} {'ours ms/img':>12s}  same (fed its draws)")
    for name in names:
        o, r = ours[name], original[name]
        same, total = agreement[name]
        print(f"{name:28s} {o:9.4f} {r:9.3f} {r / o:8.0f}x {1000 * o / (5 * n):12.1f}  {same}/{total}"
              + ("   SLOWER" if r < o else ""))
    o, r = sum(ours.values()), sum(original.values())
    label = f"total ({len(names)} x 5)"
    print(f"{label:28s} {o:9.3f} {r:9.1f} {r / o:8.0f}x   per image: ours {o / n:.3f} s, original {r / n:.1f} s")


if __name__ == "__main__":
    main()

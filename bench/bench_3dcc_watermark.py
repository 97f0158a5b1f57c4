"""Speed of 3DCC's image-space corruptions and of ImageNet-W: ours against their originals, one CPU core.

Both sides run in this one process on the same 224x224 crops (real photos under resize 256 / centre crop 224),
one thread each (OpenMP/BLAS/OpenCV/torch), timed in process CPU seconds; with --repeat N they take turns N
times and each keeps its best, so both see the same spells of load. The originals are
bench/reference_3dcc_watermark.py (create_non3d.py and imagenet-w restated step by step: PIL image in, PIL
image out, the global np.random stream) and, when the `watermark` extra is installed, imagenet-w's own
AddWatermark on a tensor, as ImageNet-W's evaluation calls it. 3DCC rows cover all five severities.

    python bench/bench_3dcc_watermark.py [--images 4] [--repeat 3]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import reference_3dcc_watermark as reference  # noqa: E402

from shift_hub import registry  # noqa: E402
from shift_hub.imaging import apply_geometry  # noqa: E402
from shift_hub.rng import generator  # noqa: E402
from shift_hub.shifts import corruptions_3dcc, watermark  # noqa: E402

cv2.setNumThreads(1)
SEVERITIES = corruptions_3dcc.SEVERITIES


def sample_images(count: int) -> list[np.ndarray]:
    import skimage.data

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket(),
              skimage.data.cat()]
    return [apply_geometry(np.asarray(p)[..., :3], registry.STANDARD) for p in photos[:count]]


def best_seconds(run, repeat: int) -> float:
    run()  # warm-up: caches, the font, the text layer
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def corruption_runs(name: str, images: list[np.ndarray]) -> dict:
    ours_fn, ref_fn = getattr(corruptions_3dcc, name), getattr(reference, name)
    pils = [Image.fromarray(i) for i in images]

    def ours():
        for k, image in enumerate(images):
            for s in SEVERITIES:
                ours_fn(image, generator(0, f"{name}_{s}", str(k)), s)

    def original():
        for pil in pils:
            for s in SEVERITIES:
                ref_fn(pil, severity=s)

    return {"ours": ours, "original": original, "calls": len(images) * len(SEVERITIES)}


def watermark_runs(images: list[np.ndarray]) -> dict | None:
    try:
        font = str(watermark.font_path())
    except FileNotFoundError as exc:
        print(f"watermark: skipped ({exc})")
        return None
    pils = [Image.fromarray(i) for i in images]
    restated = reference.Watermark(font, 224)
    runs = {"ours": lambda: [watermark.watermark(i, None) for i in images],
            "original": lambda: [restated(p) for p in pils], "calls": len(images)}
    try:
        import torch
        from imagenet_w import AddWatermark
        from torchvision.transforms.functional import to_tensor

        torch.set_num_threads(1)
        tensors, add = [to_tensor(p) for p in pils], AddWatermark(224)
        runs["imagenet-w"] = lambda: [add(t) for t in tensors]
    except ImportError:
        pass
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="photos (1-5)")
    parser.add_argument("--repeat", type=int, default=3, help="turns each side takes; the best is kept")
    args = parser.parse_args()
    images = sample_images(args.images)
    table = {name: corruption_runs(name, images) for name in registry.IMAGENET_3DCC_2D_CORRUPTIONS}
    marks = watermark_runs(images)
    if marks:
        table["watermark"] = marks
    best = {name: {side: float("inf") for side in runs if side != "calls"} for name, runs in table.items()}
    for _ in range(args.repeat):  # the sides take turns, so both see the same load
        for name, runs in table.items():
            for side in best[name]:
                best[name][side] = min(best[name][side], best_seconds(runs[side], 1))
    print(f"{len(images)} images of 224x224, one core, best of {args.repeat} turns (ms per call)")
    print(f"{'shift':<12}{'ours':>10}{'original':>10}{'ratio':>8}   other")
    for name, times in best.items():
        calls = table[name]["calls"]
        ours, original = 1000 * times["ours"] / calls, 1000 * times["original"] / calls
        other = "".join(f"   {side} {1000 * t / calls:.3f} ms ({1000 * t / calls / ours:.1f}x)"
                        for side, t in times.items() if side not in ("ours", "original"))
        print(f"{name:<12}{ours:>10.3f}{original:>10.3f}{original / ours:>7.1f}x{other}")


if __name__ == "__main__":
    main()

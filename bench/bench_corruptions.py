"""ImageNet-C speed: ours vs imagecorruptions 1.1.2, per corruption (all five severities), on one CPU core.

Both run in this one invocation on the same 224x224 images (real photos under resize 256 / centre crop 224):
ours in this process, the reference in its old-stack venv (built by make_imagenet_c_reference.py) through
a subprocess that times itself. Each side gets one untimed warm-up pass per corruption. Both are pinned to
one thread (OpenMP/BLAS/OpenCV) and timed in process CPU seconds, which other load on a shared machine
disturbs less than wall time. With --repeat N the two sides take turns N times and each keeps its best time
per corruption, so both see the same spells of load.

    python bench/bench_corruptions.py [--images 4] [--venv /tmp/icref] [--repeat 1]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shift_hub import registry  # noqa: E402
from shift_hub.imaging import apply_geometry  # noqa: E402
from shift_hub.rng import generator  # noqa: E402
from shift_hub.shifts import corruptions  # noqa: E402

cv2.setNumThreads(1)


def sample_images(count: int) -> list[np.ndarray]:
    import skimage.data

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket(),
              skimage.data.cat()]
    return [apply_geometry(np.asarray(p)[..., :3], registry.STANDARD) for p in photos[:count]]


def time_ours(images: list[np.ndarray], repeat: int) -> dict[str, float]:
    seconds = {}
    for name in registry.IMAGENET_C_CORRUPTIONS:
        fn = getattr(corruptions, name)
        for severity in corruptions.SEVERITIES:  # warm-up
            fn(images[0], generator(0, f"{name}_{severity}", "warm"), severity)
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            for i, image in enumerate(images):
                for severity in corruptions.SEVERITIES:
                    fn(image, generator(0, f"{name}_{severity}", str(i)), severity)
            best = min(best, time.process_time() - start)
        seconds[name] = best
    return seconds


def time_reference(images: list[np.ndarray], venv: Path) -> dict:
    py = venv / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"no reference venv at {venv}: run bench/make_imagenet_c_reference.py first")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, image in enumerate(images):
            paths.append(str(Path(tmp) / f"{i}.png"))
            Image.fromarray(image).save(paths[-1])
        out = Path(tmp) / "times.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        subprocess.run([str(py), str(REPO / "bench" / "imagenet_c_reference.py"), "time", *paths, str(out)],
                       check=True, env=env)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/icref"))
    parser.add_argument("--repeat", type=int, default=1, help="each side's best of N turns")
    args = parser.parse_args()
    images = sample_images(args.images)
    ref, ours = None, {}
    for _ in range(args.repeat):
        turn = time_reference(images, args.venv)
        if ref is None:
            ref = turn
        ref["seconds"] = {k: min(v, turn["seconds"][k]) for k, v in ref["seconds"].items()}
        ours = {k: min(v, ours.get(k, v)) for k, v in time_ours(images, 1).items()}
    n = len(images)
    print(f"ImageNet-C, {n} images of 224x224, 5 severities each, one core, best of {args.repeat} turn(s) each side")
    print(f"reference: imagecorruptions {ref['versions'].get('imagecorruptions')} (numpy {ref['versions']['numpy']}, "
          f"scikit-image {ref['versions']['scikit-image']}); ours: shift_hub.shifts.corruptions")
    print(f"{'corruption':20s} {'ours s':>9s} {'ref s':>9s} {'ratio':>8s}")
    totals = {"imagenet_c": [0.0, 0.0], "imagenet_c_extra": [0.0, 0.0]}
    for name, (group, *_rest) in registry.IMAGENET_C_CORRUPTIONS.items():
        o, r = ours[name], ref["seconds"][name]
        totals[group][0] += o
        totals[group][1] += r
        print(f"{name:20s} {o:9.4f} {r:9.4f} {r / o:7.2f}x" + ("   SLOWER" if r < o else ""))
    o15, r15 = totals["imagenet_c"]
    o19, r19 = o15 + totals["imagenet_c_extra"][0], r15 + totals["imagenet_c_extra"][1]
    print(f"{'total (15 x 5)':20s} {o15:9.3f} {r15:9.3f} {r15 / o15:7.1f}x   "
          f"per image: ours {o15 / n:.3f} s, ref {r15 / n:.3f} s")
    print(f"{'total (19 x 5)':20s} {o19:9.3f} {r19:9.3f} {r19 / o19:7.1f}x   "
          f"per image: ours {o19 / n:.3f} s, ref {r19 / n:.3f} s")


if __name__ == "__main__":
    main()

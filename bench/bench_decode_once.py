"""Decode once, write many (issue 23): ImageNet-C's 19x5 configs end to end, three ways, on one core each,
side by side in this one invocation, over the same ImageNet-shaped devkit (bench/make_synthetic_imagenet.py,
with its tail of large photos):

  original  make_imagenet_c.py's loop: per config, every image opened with PIL, Resize 256, CenterCrop 224,
            corrupted with imagecorruptions 1.1.2, saved as JPEG 85 (in the old-stack venv that
            bench/make_imagenet_c_reference.py builds, timed inside that process)
  today     shift_hub's engine with one config per job group: each config decodes and resizes every image
            again (the engine before issue 23; its bytes are the same: tests/test_pinned_bytes.py)
  ours      shift_hub's engine as it runs: each image decoded and resized once for all 95 configs

and prints each one's wall seconds, the ratios (goals: ours >= 1.5x today, >= 6x the original) and ours'
per-image breakdown: decode, geometry, shift, encode, write, start-up and card. With --repeat N the three
take turns N times and each keeps its best time, so all see the same spells of load.

    .venv/bin/python bench/bench_decode_once.py [--n 15] [--venv /tmp/icref] [--repeat 1] [--work DIR]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CONFIGS = ["imagenet_c", "imagenet_c_extra"]


def devkit(work: Path, n: int) -> Path:
    from make_synthetic_imagenet import make_synthetic_imagenet

    root = work / f"devkit_{n}"
    if not (root / "val").is_dir() or len(list((root / "val").glob("*.JPEG"))) != n:
        shutil.rmtree(root, ignore_errors=True)
        make_synthetic_imagenet(n, root, seed=0, workers=os.cpu_count() or 1)
    return root


def run_ours(root: Path, out: Path, grouped: bool) -> dict:
    """One generate() over the devkit, card included; returns its wall time and stage sums."""
    from shift_hub import generate, planning
    from shift_hub.hub.cards import write_card
    from shift_hub.jobs import STAGES

    shutil.rmtree(out, ignore_errors=True)
    saved = planning.GROUP_BUFFER_BYTES
    planning.GROUP_BUFFER_BYTES = saved if grouped else 0  # 0: every config alone in its group, as before
    try:
        started = time.perf_counter()
        reports = generate.generate(CONFIGS, f"devkit:{root}", out, num_proc=1, progress=False, card=False)
        made = time.perf_counter()
        write_card(out)
        ended = time.perf_counter()
    finally:
        planning.GROUP_BUFFER_BYTES = saved
    stages = {s: sum(r.stages.get(s, 0.0) for r in reports.values()) for s in STAGES}
    work = sum(r.seconds for r in reports.values())
    return {"wall": ended - started, "stages": stages, "startup": (made - started) - work, "card": ended - made,
            "written": sum(r.written for r in reports.values())}


def run_original(root: Path, venv: Path, out: Path) -> dict:
    py = venv / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"{py} missing: build the reference venv with `python bench/make_imagenet_c_reference.py`")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    report = out / "timing.json"
    inputs = sorted(str(p) for p in (root / "val").glob("*.JPEG"))
    subprocess.run([str(py), str(REPO / "bench" / "imagenet_c_reference.py"), "pipeline", str(out / "images"),
                    str(report), *inputs], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=15, help="source images (default 15)")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/icref"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "shift_hub_bench_decode_once")
    parser.add_argument("--no-original", action="store_true", help="skip the imagecorruptions side")
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(1)
    root = devkit(args.work, args.n)
    from PIL import Image

    sizes = [Image.open(p).size for p in sorted((root / "val").glob("*.JPEG"))]
    large = sum(1 for w, h in sizes if max(w, h) > 1000)
    print(f"{args.n} images ({large} larger than 1000 px on the long side, largest {max(sizes, key=lambda s: s[0] * s[1])}),"
          f" 95 configs (19 corruptions x 5 severities), one core each")
    best: dict = defaultdict(lambda: None)
    for _ in range(args.repeat):
        runs = {"today": run_ours(root, args.work / "today", grouped=False),
                "ours": run_ours(root, args.work / "ours", grouped=True)}
        if not args.no_original:
            runs["original"] = run_original(root, args.venv, args.work / "original")
        for name, result in runs.items():
            if best[name] is None or result["wall"] < best[name]["wall"]:
                best[name] = result
    assert best["ours"]["written"] == best["today"]["written"]
    print(f"\n{'pipeline':<10} {'wall s':>8} {'s / image':>10} {'ms / image / config':>20}")
    for name in ("original", "today", "ours"):
        if best[name] is not None:
            wall = best[name]["wall"]
            print(f"{name:<10} {wall:8.1f} {wall / args.n:10.3f} {1000 * wall / args.n / 95:20.2f}")
    today, ours = best["today"]["wall"], best["ours"]["wall"]
    print(f"\nours vs today:    {today / ours:5.2f}x faster end to end (goal >= 1.5x)")
    if best["original"] is not None:
        print(f"ours vs original: {best['original']['wall'] / ours:5.2f}x faster end to end (goal >= 6x)")
    print("\nper source image (ms), all 95 configs:")
    print(f"{'stage':<10} {'today':>9} {'ours':>9}")
    for stage in [*best["ours"]["stages"], "startup", "card"]:
        t = best["today"]["stages"].get(stage, best["today"].get(stage, 0.0))
        o = best["ours"]["stages"].get(stage, best["ours"].get(stage, 0.0))
        print(f"{stage:<10} {1000 * t / args.n:9.1f} {1000 * o / args.n:9.1f}")


if __name__ == "__main__":
    main()

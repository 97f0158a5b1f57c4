"""Time of the bootstrap intervals for 50,000 images x 100 configs (1,000 resamples) on one core.

Goal (issue "Numbers the field can compare"): under 30 s. Prints our time and the ratio to the goal.
Usage: python bench/bench_intervals.py [--images 50000] [--configs 100] [--resamples 1000]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from shift_hub.evaluation.metrics import summarize  # noqa: E402

GOAL_S = 30.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--configs", type=int, default=100)
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    rng = np.random.default_rng(0)
    names = ["clean"] + [f"gaussian_noise_{1 + k % 5}" if k < 5 else f"bench_config_{k}" for k in range(args.configs - 1)]
    ids = [f"ILSVRC2012_val_{i:08d}" for i in range(args.images)]
    rows = [{"config": c, "image_id": i, "scorable": True, "correct": bool(h), "correct5": True, "confidence": 0.5,
             "label_space": "imagenet-1k", "targets": [1], "severity": 0}
            for c in names for i, h in zip(ids, rng.random(args.images) < 0.7)]
    started = time.perf_counter()
    summarize(rows, names, bootstrap=0)
    plain = time.perf_counter() - started
    started = time.perf_counter()
    summarize(rows, names, bootstrap=args.resamples)
    total = time.perf_counter() - started
    print(f"{args.images} images x {args.configs} configs, {args.resamples} resamples, one core: "
          f"summarize {plain:.1f} s, with intervals {total:.1f} s, intervals alone {total - plain:.1f} s "
          f"(goal {GOAL_S:.0f} s: {GOAL_S / max(total - plain, 1e-9):.2f}x under it)")


if __name__ == "__main__":
    main()

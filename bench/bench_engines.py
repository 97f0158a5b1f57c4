"""Engines side by side on one job: the process pool (the reference), Ray on 2 local CPUs, and 2 job-array
slices (`--shard 1/2`, `--shard 2/2`) run in parallel. Prints each wall time and its ratio to the pool.

Goals (issue 14): Ray within 1.15x of the pool on one machine (its overhead is what a cluster pays for
retries), job-array slices within 1.05x. Every run writes the same bytes; the script checks that too.

    python bench/bench_engines.py --images 40 --configs imagenet_c
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def digests(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.glob("*/*.parquet"))}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "shift_hub.cli", "generate", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40, help="images from --source (default 40)")
    parser.add_argument("--source", default="samples", help="samples, devkit:ROOT (bench/make_synthetic_imagenet.py)")
    parser.add_argument("--configs", nargs="+", default=["imagenet_c"])
    parser.add_argument("--shard-size", type=int, default=10)
    parser.add_argument("--cpus", type=int, default=2, help="pool workers and job-array slices (Ray uses every core)")
    args = parser.parse_args()

    common = [*args.configs, "--source", args.source, "--limit", str(args.images), "--shard-size",
              str(args.shard_size), "--quiet"]
    times: dict[str, float] = {}
    outs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="bench_engines_") as tmp:
        tmp = Path(tmp)
        for name, extra in (("pool", ["--num-proc", str(args.cpus)]), ("ray", ["--engine", "ray"])):
            outs[name] = tmp / name / "data"
            start = time.perf_counter()
            subprocess.run(cli(*common, "--out", str(outs[name]), *extra), check=True)
            times[name] = time.perf_counter() - start
            print(f"{name:>10}: {times[name]:7.1f} s", flush=True)
        outs["slices"] = tmp / "slices" / "data"
        start = time.perf_counter()
        procs = [subprocess.Popen(cli(*common, "--out", str(outs["slices"]), "--shard", f"{i}/{args.cpus}"))
                 for i in range(1, args.cpus + 1)]
        if any(p.wait() for p in procs):
            raise SystemExit("a job-array slice failed")
        times["slices"] = time.perf_counter() - start
        print(f"{'slices':>10}: {times['slices']:7.1f} s", flush=True)
        files = digests(outs["pool"])
        same = files == digests(outs["ray"]) == digests(outs["slices"])
    print(f"\n{len(files)} shards; same bytes from every engine: {same}")
    for name, goal in (("ray", 1.15), ("slices", 1.05)):
        ratio = times[name] / times["pool"]
        print(f"{name} / pool = {ratio:.2f}x (goal <= {goal}x){'' if ratio <= goal else '  MISSED'}")


if __name__ == "__main__":
    main()

"""ImageNet scale on one machine: one representative job at two sizes, measured, with a 50,000-image projection.

For each N it makes (once, cached under --work) a synthetic ImageNet-shaped devkit of N images
(bench/make_synthetic_imagenet.py), then runs the job with `--num-proc` = cores and prints, per config family:
ms per image per core, bytes per image, and the scaling ratio (per-image cost at N2 / at N1, goal <= 1.10);
and for the whole run: peak RSS per worker (sampled every 0.2 s, goal <= 1 GB), the resume check over the
finished run (goal <= 2 % of its generation time), card time, `load_dataset` time for every config, evaluate
img/s (embedded EfficientNet-Lite0 on CPU), and the projected wall time of the same job on 50,000 images with
16 cores.

    .venv/bin/python bench/bench_scale.py --n 200 2000
    .venv/bin/python bench/bench_scale.py --n 40 80 --configs imagenet_c drawing     # a quick look
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

JOB = ["imagenet_c", "drawing", "toon_handdrawn", "toon_ius", "cartoon_classic", "blur_bg", "color_bg_red", "seg_img"]


class PeakRss:
    """Samples the RSS of every child process (the pool workers) and of this process while a block runs."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.me, self.interval = psutil.Process(), interval
        self.worker_peak = self.main_peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.main_peak = max(self.main_peak, self.me.memory_info().rss)
                for child in self.me.children(recursive=True):
                    try:
                        self.worker_peak = max(self.worker_peak, child.memory_info().rss)
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def family(config: str) -> str:
    from shift_hub.registry import get

    spec = get(config)  # ImageNet-C configs by corruption (its five severities together)
    return spec.name[: -len(f"_{spec.severity}")] if spec.severity else spec.name


def run_once(n: int, configs: list[str], work: Path, num_proc: int) -> dict:
    import datasets

    from make_synthetic_imagenet import make_synthetic_imagenet
    from shift_hub.generate import generate
    from shift_hub.hub.cards import write_card
    from shift_hub.registry import expand

    devkit = work / f"devkit_{n}"
    if not (devkit / "data").is_dir():
        start = time.perf_counter()
        make_synthetic_imagenet(n, devkit, seed=0, workers=num_proc)
        print(f"  made a synthetic devkit of {n} images in {time.perf_counter() - start:.0f} s", flush=True)
    out = Path(tempfile.mkdtemp(prefix=f"scale_{n}_", dir=work)) / "data"
    names = expand(configs)
    common = dict(source=f"devkit:{devkit}", out=out, num_proc=num_proc, progress=False, shard_size=1000)
    with PeakRss() as rss:
        start = time.perf_counter()
        reports = generate(names, card=False, **common)
        generation = time.perf_counter() - start
    start = time.perf_counter()
    generate(names, card=False, **common)  # everything present: only the plan and the footers are read
    resume = time.perf_counter() - start
    start = time.perf_counter()
    write_card(out)
    card = time.perf_counter() - start
    start = time.perf_counter()
    cache = work / f"hf_cache_{n}"
    for name in names:
        datasets.load_dataset(str(out), name, split="validation", cache_dir=str(cache))
    load = time.perf_counter() - start
    import shift_hub

    start = time.perf_counter()
    evaluated = shift_hub.evaluate("efficientnet_lite0", str(out), ["clean"] if "clean" in names else names[:1],
                                   num_workers=max(1, num_proc - 1))
    eval_rate = len(evaluated.rows) / (time.perf_counter() - start)
    per_family: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "images": 0, "bytes": 0, "configs": 0})
    for name, report in reports.items():
        f = per_family[family(name)]
        f["seconds"] += report.seconds
        f["images"] += report.written
        f["bytes"] += sum(p.stat().st_size for p in (out / name).glob("*.parquet"))
        f["configs"] += 1
    return {"n": n, "generation": generation, "resume": resume, "card": card, "load": load, "eval_rate": eval_rate,
            "worker_peak": rss.worker_peak, "main_peak": rss.main_peak, "families": dict(per_family),
            "core_seconds": sum(r.seconds for r in reports.values()), "sources": n, "num_proc": num_proc}


def report(small: dict, big: dict, cores_goal: int = 16, images_goal: int = 50_000) -> None:
    print(f"\n| shift | configs | ms/img/core (N={small['n']}) | ms/img/core (N={big['n']}) | scaling | KB/img |")
    print("|---|---:|---:|---:|---:|---:|")
    projected = 0.0
    for fam, b in big["families"].items():
        s = small["families"].get(fam)
        ms_big = 1000 * b["seconds"] / max(1, b["images"])
        ms_small = 1000 * s["seconds"] / max(1, s["images"]) if s else float("nan")
        ratio = ms_big / ms_small if s else float("nan")
        projected += b["seconds"] / big["n"] * images_goal / cores_goal
        flag = "" if ratio <= 1.10 else "  (over 1.10)"
        print(f"| {fam} | {b['configs']} | {ms_small:.1f} | {ms_big:.1f} | {ratio:.2f}{flag} | "
              f"{b['bytes'] / max(1, b['images']) / 1000:.1f} |")
    for run in (small, big):
        print(f"\nN={run['n']}: generation {run['generation']:.0f} s ({run['core_seconds']:.0f} core-s), resume check "
              f"{run['resume']:.2f} s ({100 * run['resume'] / run['generation']:.2f} % of generation, goal <= 2 %), "
              f"card {run['card']:.1f} s, load_dataset of every config {run['load']:.1f} s, evaluate "
              f"{run['eval_rate']:.1f} img/s, peak RSS per worker {run['worker_peak'] / 2**30:.2f} GB (goal <= 1 GB), "
              f"main {run['main_peak'] / 2**30:.2f} GB")
    whole = big["generation"] * big["num_proc"] / big["n"] * images_goal / cores_goal
    outside = big["generation"] * big["num_proc"] - big["core_seconds"]
    print(f"\nprojected: the same job on {images_goal:,} images with {cores_goal} cores: {projected / 3600:.1f} h of "
          f"shards, {whole / 3600:.1f} h for the whole run (core-seconds per image at N={big['n']}, perfect scaling "
          f"over cores; the difference, {outside / big['n']:.2f} core-s per image here, is outside the shards: "
          f"GrabCut masks for the XImageNet-12 configs, planning, idle cores at the end)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", nargs=2, type=int, default=[200, 2000], metavar=("N1", "N2"))
    parser.add_argument("--configs", nargs="+", default=JOB)
    parser.add_argument("--num-proc", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "shift_hub_bench_scale"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in args.n:
        print(f"N={n}: {', '.join(args.configs)} with {args.num_proc} processes", flush=True)
        runs.append(run_once(n, args.configs, work, args.num_proc))
    report(*runs)


if __name__ == "__main__":
    main()

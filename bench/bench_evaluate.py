"""Evaluation throughput vs the pure forward pass of the same model on the same batches.

ours:      open the generated folder and run `runner.run` (decode + the model's own preprocessing in
           DataLoader workers, overlapped with the forward pass, plus label-space scoring per row).
reference: the forward pass alone over the same batches, preprocessed beforehand and held in memory.
Goal: ours / reference <= 1.2. Both the separate forward-only pass and the forward time spent inside
our own run are reported: on a shared machine whose load drifts, the second ratio is the fair one.

    python bench/bench_evaluate.py [--model efficientnet_lite0] [--images 256] [--batch-size 32] [--workers N]
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np


def make_folder(root: Path, count: int) -> Path:
    """`count` distinct 224x224 JPEGs cut from the sample photos, in the generated layout (config clean)."""
    import datasets
    import skimage.data
    from PIL import Image

    from shift_hub.generate import features

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket()]
    rng = np.random.default_rng(0)
    rows = {"image": [], "label": [], "labels": [], "image_id": [], "config": [], "severity": []}
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = int(rng.integers(180, min(h, w)))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((224, 224), Image.BILINEAR)
        buf = io.BytesIO()
        crop.save(buf, format="JPEG", quality=95)
        rows["image"].append({"bytes": buf.getvalue(), "path": None})
        rows["label"].append(282)
        rows["labels"].append([282])
        rows["image_id"].append(f"img{i:05d}")
        rows["config"].append("clean")
        rows["severity"].append(0)
    folder = root / "clean"
    folder.mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features()).to_parquet(str(folder / "validation-00000-of-00001.parquet"))
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each side, alternated")
    args = parser.parse_args()

    import torch

    from shift_hub.evaluation.labels import to_imagenet_logits
    from shift_hub.evaluation.models import load_model
    from shift_hub.evaluation.runner import decode_image, default_workers, open_data, pick_device, run

    workers = default_workers() if args.workers is None else args.workers
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp), args.images)
        clf = load_model(args.model)
        dev = pick_device(args.device)
        clf.to(dev)

        # reference input: the same images, decoded and preprocessed up front, cut into the same batches
        _, parts = open_data(folder)
        images = [clf.preprocess(decode_image(parts[0].dataset[i]["image"])) for i in range(len(parts[0].dataset))]
        batches = [torch.stack(images[i:i + args.batch_size]) for i in range(0, len(images), args.batch_size)]

        def forward_only() -> float:
            start = time.perf_counter()
            with torch.inference_mode():
                for batch in batches:
                    logits = clf.forward(batch.to(dev, non_blocking=True))
                    to_imagenet_logits(logits.float(), clf.imagenet_index).cpu()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - start

        # the forward calls inside our run are timed too: on a shared, noisy machine the fairest
        # reference is the forward time of the very same run (same moment, same load)
        inner = {"forward": 0.0}
        plain_forward = clf.forward

        def timed_forward(batch):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = plain_forward(batch)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            inner["forward"] += time.perf_counter() - start
            return out

        def ours() -> tuple[float, float]:
            inner["forward"] = 0.0
            clf.forward = timed_forward
            start = time.perf_counter()
            _, fresh = open_data(folder)
            rows = run(clf, fresh, batch_size=args.batch_size, num_workers=workers, device=str(dev))
            total = time.perf_counter() - start
            clf.forward = plain_forward
            assert len(rows) == args.images
            return total, inner["forward"]

        forward_only()  # warm-up (allocator, cudnn autotune)
        # alternate the two sides so a noisy (shared) machine penalises both alike; keep each side's best
        refs, mine = [], []
        for _ in range(args.repeats):
            refs.append(forward_only())
            mine.append(ours())
        t_ref = min(refs)
        t_ours, t_inner = min(mine)  # the run with the best total, and its own forward time

    n = args.images
    print(f"model {args.model} on {dev} ({torch.get_num_threads()} torch threads), {n} images, "
          f"batch {args.batch_size}, {workers} loader workers")
    print(f"ours (decode+preprocess+forward+score): {t_ours:.3f} s  {n / t_ours:8.1f} img/s")
    print(f"reference (forward only, same batches): {t_ref:.3f} s  {n / t_ref:8.1f} img/s")
    print(f"forward time inside our best run:       {t_inner:.3f} s  {n / t_inner:8.1f} img/s")
    print(f"ratio ours/reference (separate pass):   {t_ours / t_ref:.3f}  (goal <= 1.2)")
    print(f"ratio ours/forward inside the same run: {t_ours / t_inner:.3f}  (goal <= 1.2; robust to machine load)")


if __name__ == "__main__":
    main()

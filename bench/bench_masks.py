"""GrabCut mask time and quality at several working sizes vs. full size, on the embedded sample photos.

Masks from boxes run GrabCut on a copy whose longer side is at most `MaskOptions.grabcut_max_side` and
scale the mask back. This prints, per photo and working size, the seconds taken and the IoU with the mask
GrabCut makes at full size (the reference; "seed IoU" is the full-size mask made with another seed for
GrabCut's colour models, i.e. how much GrabCut varies by itself). The default working size was chosen
from this table. The boxes were drawn by hand around each photo's object. Then each photo is stretched
to 2048x2048 (of the order of ImageNet's largest photos) and timed at the default working size, and with
`--full-upscaled` also at full size (minutes per photo; `--photos` limits which).

    python bench/bench_masks.py [--sizes 256 320 400 512 640] [--full-upscaled --photos motorcycle_left]
"""
import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shift_hub import masks  # noqa: E402
from shift_hub.imaging import decode  # noqa: E402
from shift_hub.sources import Example, Samples  # noqa: E402

# (xmin, ymin, xmax, ymax) drawn by hand around the object of each sample photo, in its own pixels
BOXES = {
    "camera": (0, 58, 384, 511),  # the man and the tripod
    "chelsea": (0, 0, 390, 299),  # the cat's face
    "china": (56, 24, 336, 408),  # the pagoda
    "coffee": (15, 8, 592, 383),  # cup and saucer
    "grace_hopper": (30, 15, 502, 599),  # the person
    "motorcycle_left": (83, 102, 639, 454),
    "motorcycle_right": (83, 102, 639, 454),
    "rocket": (280, 72, 336, 392),
}


def photos() -> list[tuple[str, np.ndarray]]:
    source = Samples()
    return [(e.image_id, decode(source.read(e), e.image_id)[0]) for e in source.examples() if e.image_id in BOXES]


def timed_mask(image_id: str, image: np.ndarray, box, max_side: int) -> tuple[np.ndarray, float]:
    """The mask and seconds at working size `max_side` (0: full size)."""
    example = Example(image_id, (0,), image_id, (box,))
    options = masks.MaskOptions(grabcut_max_side=max_side)
    t = time.perf_counter()
    mask = masks.compute_mask(example, image, options)
    return mask, time.perf_counter() - t


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 320, 400, 512, 640])
    parser.add_argument("--upscale", type=int, default=2048, help="also time each photo stretched to this square")
    parser.add_argument("--full-upscaled", action="store_true",
                        help="also run full-size GrabCut on the upscaled photos (slow)")
    parser.add_argument("--photos", nargs="+", default=sorted(BOXES), help="photos to upscale")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    default = masks.MaskOptions().working_side()
    print(f"GrabCut ({masks.MaskOptions().grabcut_iterations} iterations), 1 OpenCV thread; "
          f"default working size: {default or 'full'}; reference: the same GrabCut at full size")
    data = photos()
    header = f"{'photo':18s} {'size':>9s} {'full s':>7s} {'seed IoU':>8s}"
    header += "".join(f" {f'{s}px s':>8s} {'IoU':>6s}" for s in args.sizes)
    print(header)
    totals = {s: [0.0, []] for s in args.sizes}
    full_total, seed_ious = 0.0, []
    for image_id, image in data:
        box = BOXES[image_id]
        reference, full_s = timed_mask(image_id, image, box, 0)
        full_total += full_s
        # GrabCut's own spread: the full-size mask with another seed for its colour models
        spread = iou(masks.grabcut(image, (box,), masks.MaskOptions().grabcut_iterations, seed=12345), reference)
        seed_ious.append(spread)
        row = f"{image_id:18s} {image.shape[1]:>4d}x{image.shape[0]:<4d} {full_s:7.2f} {spread:8.3f}"
        for s in args.sizes:
            mask, secs = timed_mask(image_id, image, box, s)
            totals[s][0] += secs
            totals[s][1].append(iou(mask, reference))
            row += f" {secs:8.2f} {totals[s][1][-1]:6.3f}"
        print(row)
    row = f"{'total / min IoU':18s} {'':9s} {full_total:7.2f} {min(seed_ious):8.3f}"
    for s in args.sizes:
        row += f" {totals[s][0]:8.2f} {min(totals[s][1]):6.3f}"
    print(row)
    print(f"full size with another seed: mean IoU {np.mean(seed_ious):.3f} (GrabCut's own spread)")
    print("speed-up vs full size: " + ", ".join(f"{s}px {full_total / totals[s][0]:.1f}x (mean IoU "
                                                 f"{np.mean(totals[s][1]):.3f})" for s in args.sizes))

    if args.upscale:
        n = args.upscale
        print(f"\nphotos stretched to {n}x{n} (box scaled alike), default working size {default or 'full'}:")
        for image_id, image in data:
            if image_id not in args.photos:
                continue
            h, w = image.shape[:2]
            big = cv2.resize(image, (n, n), interpolation=cv2.INTER_CUBIC)
            x0, y0, x1, y1 = BOXES[image_id]
            box = (x0 * n // w, y0 * n // h, x1 * n // w, y1 * n // h)
            mask, secs = timed_mask(image_id, big, box, default or 0)
            line = f"{image_id:18s} default {secs:6.2f} s"
            if args.full_upscaled:
                reference, full_s = timed_mask(image_id, big, box, 0)
                line += f"   full size {full_s:7.2f} s   ratio {full_s / secs:6.1f}x   IoU {iou(mask, reference):.3f}"
            print(line)


if __name__ == "__main__":
    main()

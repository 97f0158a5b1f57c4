"""A deterministic ImageNet-shaped validation devkit of N images, for running shift_hub at ImageNet scale.

Real ILSVRC-2012 val cannot ship; this writes the same layout (what `devkit:DIR` reads) from the sample
photos embedded in scikit-image, scikit-learn and matplotlib, so every source path runs at any N:

    DIR/val/ILSVRC2012_val_XXXXXXXX.JPEG                        N images
    DIR/data/meta_clsloc.mat                                      synsets: ILSVRC2015_CLSLOC_ID -> WNID (all 1000)
    DIR/data/ILSVRC2015_clsloc_validation_ground_truth.txt      one CLS-LOC ID per image
    DIR/data/ILSVRC2015_clsloc_validation_blacklist.txt         about 3.5% of the images, as the real one
    DIR/bbox_val/ILSVRC2012_val_XXXXXXXX.xml                      one PASCAL VOC box per image (GrabCut, XImageNet-12)

Each image is a crop of one sample photo around its object (box known per photo), scaled to a size
from an approximation of ImageNet val's mix (mostly 500x375, 375x500, 500x333; a 5% tail of large photos
up to 4000 px on the long side), spread evenly over the image numbers (see size_position), maybe mirrored,
colour-jittered, now and then grey or CMYK, saved as JPEG at quality 75-95. The box follows the crop.
Image i depends only on (seed, i): any worker count, any order, same bytes. The CLS-LOC IDs are a fixed
permutation of the WNIDs (not the real devkit's order), so the ID -> WNID step is exercised; the labels
are the photos' own (tabby, espresso, ...).

    .venv/bin/python bench/make_synthetic_imagenet.py --n 50000 --out /data/synthetic_imagenet --workers 8
    .venv/bin/shift-hub generate clean blur_bg --source devkit:/data/synthetic_imagenet --limit 20 --out X
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# (width, height, share): an approximation of ILSVRC-2012 val's sizes; "other" and "large" draw a size
SIZE_MIX = (
    (500, 375, 0.40), (375, 500, 0.13), (500, 333, 0.12), (333, 500, 0.04), (500, 334, 0.03),
    (500, 500, 0.03), (500, 400, 0.03), (400, 500, 0.02), (500, 332, 0.02),
    ("other", None, 0.13),  # long side 500, the other side 200..499
    ("large", None, 0.05),  # long side 800..4000, aspect 4:3 or 3:2, either orientation
)
GREY_SHARE, CMYK_SHARE = 0.01, 0.001  # val holds a few of each; decode must convert them
BLACKLIST_SHARE = 0.035  # 1762 of 50000 in the real blacklist
CLSLOC_SEED = 2015  # the permutation CLS-LOC ID -> WNID; any fixed value
GOLDEN = (5 ** 0.5 - 1) / 2  # the Weyl step of size_position

# The object in each sample photo, as fractions (x0, y0, x1, y1) of its width and height, by eye.
OBJECT_BOXES = {
    "chelsea": (0.04, 0.0, 0.96, 1.0),
    "coffee": (0.12, 0.02, 0.80, 0.97),
    "rocket": (0.44, 0.28, 0.56, 0.97),
    "motorcycle_left": (0.14, 0.18, 0.93, 0.88),
    "motorcycle_right": (0.08, 0.16, 0.85, 0.92),
    "camera": (0.0, 0.12, 0.80, 1.0),
    "china": (0.12, 0.05, 0.55, 0.95),
    "grace_hopper": (0.08, 0.05, 1.0, 1.0),
}


@dataclass(frozen=True)
class Made:
    """What image `number` is: file stem, WNID, (width, height), box (xmin, ymin, xmax, ymax), mode."""

    number: int
    stem: str
    wnid: str
    size: tuple[int, int]
    box: tuple[int, int, int, int]
    mode: str


@lru_cache(maxsize=1)
def _photos() -> tuple[tuple[str, str, np.ndarray], ...]:
    """(image id, primary WNID, RGB pixels) of every sample photo, read once per process."""
    from shift_hub import classes
    from shift_hub.sources import Samples

    out = []
    for example in Samples().examples():
        with Image.open(example.locator) as img:
            out.append((example.image_id, classes.wnids()[example.label], np.asarray(img.convert("RGB"))))
    return tuple(out)


def size_position(number: int, seed: int = 0) -> float:
    """Where image `number` falls in SIZE_MIX, in [0, 1): a golden-ratio (Weyl) sequence rather than independent
    draws, so that every prefix of N images holds each size class, and the large tail's sizes, in their shares
    to within about log(N)/N. Independent draws would give 10 +- 3 large photos in 200, and since a large photo costs
    up to 60x a 500 px one, per-image cost at two N would differ by chance alone."""
    offset = float(np.random.default_rng([seed, 1]).random())
    return (offset + number * GOLDEN) % 1.0


def _draw_size(position: float, rng: np.random.Generator) -> tuple[int, int]:
    shares = np.array([row[2] for row in SIZE_MIX], dtype=float)
    edges = np.cumsum(shares / shares.sum())
    k = min(int(np.searchsorted(edges, position, side="right")), len(SIZE_MIX) - 1)
    w, h, _ = SIZE_MIX[k]
    within = (position - (edges[k - 1] if k else 0.0)) / (edges[k] - (edges[k - 1] if k else 0.0))
    within = min(max(within, 0.0), 1.0 - 1e-12)  # where in its class: spreads the drawn sizes evenly too
    if w == "other":
        short = 200 + int(within * 300)
        return (500, short) if rng.random() < 0.75 else (short, 500)
    if w == "large":
        long = 800 + int(within * 3201)
        short = round(long * (3 / 4 if rng.random() < 0.6 else 2 / 3))
        return (long, short) if rng.random() < 0.75 else (short, long)
    return int(w), int(h)


def _crop_around(rng, photo_size, box, aspect) -> tuple[float, float, float, float]:
    """A window of the given aspect inside the photo, 75-100% of the largest such, placed so that it holds
    as much of the object box as it can (all of it when it fits)."""
    pw, ph = photo_size
    cw = min(pw, ph * aspect) * rng.uniform(0.75, 1.0)
    ch = cw / aspect
    bx0, by0, bx1, by1 = box

    def place(size, lo, hi, limit):
        # the range of window starts that contain [lo, hi]; if the box is larger, centre on it
        first, last = max(0.0, hi - size), min(lo, limit - size)
        if first > last:
            return min(max((lo + hi - size) / 2, 0.0), limit - size)
        return rng.uniform(first, last)

    x0, y0 = place(cw, bx0, bx1, pw), place(ch, by0, by1, ph)
    return x0, y0, cw, ch


def make_image(number: int, seed: int = 0) -> tuple[bytes, Made]:
    """JPEG bytes and description of validation image `number` (1-based); a pure function of (seed, number)."""
    rng = np.random.default_rng([seed, number])
    photos = _photos()
    image_id, wnid, rgb = photos[int(rng.integers(len(photos)))]
    ph, pw = rgb.shape[:2]
    fx0, fy0, fx1, fy1 = OBJECT_BOXES[image_id]
    box = (fx0 * pw, fy0 * ph, fx1 * pw, fy1 * ph)
    width, height = _draw_size(size_position(number, seed), rng)
    x0, y0, cw, ch = _crop_around(rng, (pw, ph), box, width / height)
    sx, sy = width / cw, height / ch
    if sx < 1:  # shrinking: whole-pixel crop, area averaging
        window = rgb[int(y0): int(np.ceil(y0 + ch)), int(x0): int(np.ceil(x0 + cw))]
        out = cv2.resize(window, (width, height), interpolation=cv2.INTER_AREA)
        x0, y0 = float(int(x0)), float(int(y0))
        sx, sy = width / window.shape[1], height / window.shape[0]
    else:  # enlarging (the large tail): crop and scale in one bicubic warp of the sub-pixel window
        affine = np.float64([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]])
        out = cv2.warpAffine(rgb, affine, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    # the object box in the new image, clipped to it
    bx0 = int(np.clip(round((box[0] - x0) * sx), 0, width - 2))
    by0 = int(np.clip(round((box[1] - y0) * sy), 0, height - 2))
    bx1 = int(np.clip(round((box[2] - x0) * sx), bx0 + 1, width - 1))
    by1 = int(np.clip(round((box[3] - y0) * sy), by0 + 1, height - 1))
    if rng.random() < 0.5:
        out = out[:, ::-1]
        bx0, bx1 = width - 1 - bx1, width - 1 - bx0
    # colour jitter: brightness, contrast, saturation
    x = out.astype(np.float32)
    x *= rng.uniform(0.8, 1.2)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.8, 1.2) + mean
    grey = x @ np.float32([0.299, 0.587, 0.114])
    x = grey[..., None] + (x - grey[..., None]) * rng.uniform(0.7, 1.3)
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    kind = rng.random()
    mode = "L" if kind < GREY_SHARE else "CMYK" if kind < GREY_SHARE + CMYK_SHARE else "RGB"
    img = Image.fromarray(out)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(75, 96)))
    stem = f"ILSVRC2012_val_{number:08d}"
    return buf.getvalue(), Made(number, stem, wnid, (width, height), (bx0, by0, bx1, by1), mode)


def box_xml(made: Made) -> str:
    """The image's annotation in ILSVRC's PASCAL VOC layout."""
    (w, h), (x0, y0, x1, y1) = made.size, made.box
    return (f"<annotation><folder>val</folder><filename>{made.stem}</filename>"
            f"<source><database>ILSVRC_2012</database></source>"
            f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size><segmented>0</segmented>"
            f"<object><name>{made.wnid}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
            f"<ymax>{y1}</ymax></bndbox></object></annotation>\n")


def clsloc_ids() -> dict[str, int]:
    """WNID -> CLS-LOC ID (1..1000): a fixed permutation, so that ID order is not WNID order (as in ILSVRC)."""
    from shift_hub import classes

    order = np.random.default_rng(CLSLOC_SEED).permutation(1000)
    wnids = classes.wnids()
    return {wnids[int(index)]: k + 1 for k, index in enumerate(order)}


def _write_meta(data: Path) -> dict[str, int]:
    from scipy.io import savemat

    from shift_hub import classes

    ids = clsloc_ids()
    fields = [("ILSVRC2015_CLSLOC_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"),
              ("num_children", "O"), ("children", "O"), ("wordnet_height", "O"), ("num_train_images", "O")]
    synsets = np.zeros((1000,), dtype=fields)
    lemmas = classes.lemmas()
    for wnid, k in ids.items():
        synsets[k - 1] = (k, wnid, lemmas[wnid], "", 0, np.zeros((0,)), 0, 1300)
    savemat(data / "meta_clsloc.mat", {"synsets": synsets})
    return ids


def _write_one(args: tuple[int, int, str]) -> Made:
    number, seed, root = args
    data, made = make_image(number, seed)
    root_path = Path(root)
    (root_path / "val" / f"{made.stem}.JPEG").write_bytes(data)
    (root_path / "bbox_val" / f"{made.stem}.xml").write_text(box_xml(made))
    return made


def make_synthetic_imagenet(n: int, out: str | os.PathLike, seed: int = 0, workers: int = 1) -> list[Made]:
    """Write the N-image devkit under `out` (see the module docstring); returns each image's description."""
    if n < 1:
        raise ValueError("n must be at least 1")
    root = Path(out)
    for sub in ("val", "data", "bbox_val"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = _write_meta(root / "data")
    jobs = [(i, seed, str(root)) for i in range(1, n + 1)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            made = list(pool.map(_write_one, jobs, chunksize=64))
    else:
        made = [_write_one(job) for job in jobs]
    truth = "".join(f"{ids[m.wnid]}\n" for m in made)
    (root / "data" / "ILSVRC2015_clsloc_validation_ground_truth.txt").write_text(truth)
    blacklist = np.flatnonzero(np.random.default_rng([seed, 0]).random(n) < BLACKLIST_SHARE) + 1
    (root / "data" / "ILSVRC2015_clsloc_validation_blacklist.txt").write_text("".join(f"{i}\n" for i in blacklist))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, required=True, help="number of validation images")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    made = make_synthetic_imagenet(args.n, args.out, args.seed, args.workers)
    large = sum(max(m.size) > 500 for m in made)
    modes = {mode: sum(m.mode == mode for m in made) for mode in ("RGB", "L", "CMYK")}
    print(f"wrote {len(made)} images to {args.out} ({large} larger than 500 px; modes {modes})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()

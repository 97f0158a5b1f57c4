"""Images/s of the XImageNet-12 background scenarios on CPU: ours vs. the published procedure.

The reference column re-does each step the way XImageNet-12's scripts do it (written from reading
XImageNet-12/XIMAGENET-12 explainable-ai-imagenet-12/{utils,Color_image,generated_background}.py):
BGR arrays, a 3-channel mask image compared per channel, the whole-image HSV round trip with
fancy-index assignment, and `convert_to_transparent_v2`'s per-pixel Python loop for the alpha
channel (timed on fewer images: it is slow). Masks are GrabCut's from a central box, computed once
(timed separately: XImageNet-12 drew polygons by hand, so it has no reference). Both columns
exclude decoding and encoding; the last line times the whole engine (decode, cached mask, shift,
JPEG/PNG, parquet) for the 9 CPU configs.

    python bench/bench_ximagenet.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shift_hub import masks  # noqa: E402
from shift_hub.rng import generator  # noqa: E402
from shift_hub.shifts import ximagenet as xi  # noqa: E402
from shift_hub.sources import Example, Samples, Source  # noqa: E402


def photos() -> list[tuple[str, np.ndarray, tuple]]:
    from shift_hub.imaging import decode

    out = []
    for ex in Samples().examples():
        arr, _ = decode(Samples().read(ex), ex.image_id)
        h, w = arr.shape[:2]
        out.append((ex.image_id, arr, ((w // 5, h // 5, 4 * w // 5, 4 * h // 5),)))
    return out


# --- the published procedure, step by step -------------------------------------------------------------

def ref_blur(bgr, mask_img, method):
    mask_3d = cv2.cvtColor(mask_img, cv2.COLOR_GRAY2BGR)
    blurred = cv2.GaussianBlur(bgr, (15, 15), 3)
    return np.where(mask_3d == 0, blurred, bgr) if method == "background" else np.where(mask_3d > 0, blurred, bgr)


def ref_color(bgr, mask_img3, color):
    new_img = bgr.copy()
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    ranges = [[[0, 29], [150, 180]], [30, 89], [90, 149]]
    i = {"red": 0, "green": 1, "blue": 2}[color]
    lo, hi = ranges[0][random.randint(0, 1)] if i == 0 else ranges[i]
    turn = hsv.copy()
    turn[:, :, 0] = random.randint(lo, hi)
    turn_img = cv2.cvtColor(turn, cv2.COLOR_HSV2BGR)
    new_img[np.where(mask_img3[:, :, 2] == 0)] = turn_img[np.where(mask_img3[:, :, 2] == 0)]
    return new_img


def ref_transparent(bgr, mask_img):
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    for x in range(image.shape[0]):
        for y in range(image.shape[1]):
            image[x, y, 3] = 0 if mask_img[x, y] == 0 else 255
    return image


def ref_segment(bgr, mask_img):
    return cv2.bitwise_and(bgr, bgr, mask=mask_img)


def ref_rand_bg(bgr, mask_img, background):
    fg = cv2.resize(ref_segment(bgr, mask_img), (background.shape[1], background.shape[0]))
    return cv2.addWeighted(background, 1, fg, 1, 0)


def rate(fn, items, repeat) -> float:
    """Images per second, best of `repeat` passes over `items`."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for item in items:
            fn(*item)
        best = min(best, time.perf_counter() - t)
    return len(items) / best


class BoxedSamples(Source):
    name = "samples+boxes"

    def __init__(self, boxes):
        self.inner, self.boxes = Samples(), boxes

    def examples(self):
        for ex in self.inner.examples():
            yield Example(ex.image_id, ex.labels, ex.locator, self.boxes[ex.image_id])

    def describe(self):
        return "samples with central boxes"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    data = photos()
    pixels = np.mean([a.shape[0] * a.shape[1] for _, a, _ in data]) / 1e6
    print(f"{len(data)} sample photos, mean {pixels:.2f} MP, 1 OpenCV thread, best of {args.repeat}")

    t = time.perf_counter()
    mask_list = [masks.grabcut(a, b, 5, 0) for _, a, b in data]
    grabcut_rate = len(data) / (time.perf_counter() - t)
    print(f"{'GrabCut mask (once per image)':32s} ours {grabcut_rate:8.1f} img/s   reference: hand-drawn polygons")

    ours_in = [(a, generator(0, "bench", i), m) for (i, a, _), m in zip(data, mask_list)]
    bgr = [cv2.cvtColor(a, cv2.COLOR_RGB2BGR) for _, a, _ in data]
    mask_img = [m.astype(np.uint8) * 255 for m in mask_list]
    mask_img3 = [cv2.cvtColor(m, cv2.COLOR_GRAY2BGR) for m in mask_img]
    backgrounds = {i: data[(k + 1) % len(data)][1] for k, (i, _, _) in enumerate(data)}
    random.seed(0)

    rows = [
        ("blur_bg", lambda a, r, m: xi.blur_bg(a, r, mask=m), [(b, m, "background") for b, m in zip(bgr, mask_img)], ref_blur),
        ("blur_obj", lambda a, r, m: xi.blur_obj(a, r, mask=m), [(b, m, "object") for b, m in zip(bgr, mask_img)], ref_blur),
    ]
    for color in ("red", "green", "blue"):
        rows.append((f"color_bg_{color}", lambda a, r, m, c=color: xi.color_bg(a, r, mask=m, color=c),
                     [(b, m, color) for b, m in zip(bgr, mask_img3)], ref_color))
    rows += [
        ("color_bg_grey", lambda a, r, m: xi.color_bg(a, r, mask=m, color="grey"), None, None),
        ("seg_img", lambda a, r, m: xi.seg_img(a, r, mask=m), list(zip(bgr, mask_img))[:2], ref_transparent),
        ("seg_img_rgb", lambda a, r, m: xi.seg_img_rgb(a, r, mask=m), list(zip(bgr, mask_img)), ref_segment),
        ("rand_bg", None, [(b, m, cv2.cvtColor(backgrounds[i], cv2.COLOR_RGB2BGR))
                           for b, m, (i, _, _) in zip(bgr, mask_img, data)], ref_rand_bg),
    ]
    for name, ours_fn, ref_items, ref_fn in rows:
        if name == "rand_bg":
            items = [(a, r, m, backgrounds[i]) for (a, r, m), (i, _, _) in zip(ours_in, data)]
            ours = rate(lambda a, r, m, bg: xi.rand_bg(a, r, mask=m, background_provider=lambda _: bg), items, args.repeat)
        else:
            ours = rate(ours_fn, ours_in, args.repeat)
        if ref_fn is None:
            print(f"{name:32s} ours {ours:8.1f} img/s   reference: not in XImageNet-12's code")
            continue
        ref = rate(ref_fn, ref_items, 1 if name == "seg_img" else args.repeat)
        note = " (per-pixel loop, 2 images)" if name == "seg_img" else ""
        print(f"{name:32s} ours {ours:8.1f} img/s   reference {ref:8.2f} img/s   ratio {ours / ref:7.1f}x{note}")

    from shift_hub.generate import generate
    from shift_hub.registry import REGISTRY

    configs = [n for n, s in REGISTRY.items() if s.family == "ximagenet" and not s.batched]
    source = BoxedSamples({i: b for i, _, b in data})
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate(configs, source, tmp, progress=False, card=False)
        total = time.perf_counter() - t
    n = len(configs) * len(data)
    print(f"{'engine, 9 CPU configs end to end':32s} ours {n / total:8.1f} img/s   ({n} images in {total:.1f} s, "
          f"GrabCut included once per photo; no reference pipeline)")
    print("ai_bg: SDXL inpainting, GPU; not timed on CPU (30 steps at 1024x1024 take minutes per image there)")


if __name__ == "__main__":
    main()

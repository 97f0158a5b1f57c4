"""Write a PNG contact sheet: one row per source image, its input then each config's output.

Each output is made exactly as `shift-hub generate` makes it (the config's geometry, the per-image
generator from `shift_hub.rng`, the shift, the config's encoding, decoded back), then scaled to a
thumbnail. Configs that need the published pencil patterns find them in $SHIFT_HUB_DRAWING_PATTERNS,
which defaults here to ../shared/fixtures/drawing-patterns when that folder exists.

    .venv/bin/python bench/contact_sheet.py --out out/contact_sheet.png
    .venv/bin/python bench/contact_sheet.py --configs drawing,drawing_pattern_i,toon_handdrawn,toon_ius
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shift_hub import registry  # noqa: E402
from shift_hub.imaging import apply_geometry, decode, encode  # noqa: E402
from shift_hub.rng import generator  # noqa: E402
from shift_hub.sources import open_source  # noqa: E402

DEFAULT_CONFIGS = "drawing,drawing_pattern_i,toon_handdrawn,toon_ius"
PATTERNS = ROOT.parent / "shared" / "fixtures" / "drawing-patterns"


def render(spec: registry.ShiftSpec, image: np.ndarray, image_id: str, seed: int) -> np.ndarray:
    arr = apply_geometry(image, spec.geometry)
    fn = spec.load_fn()
    if fn is not None:
        arr = fn(arr, generator(seed, spec.name, image_id), **spec.params)
    with Image.open(io.BytesIO(encode(arr, spec.encoding))) as img:
        return np.asarray(img.convert("RGB"))


def thumbnail(arr: np.ndarray, cell: int) -> np.ndarray:
    h, w = arr.shape[:2]
    scale = cell / max(h, w)
    small = cv2.resize(arr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    tile = np.full((cell, cell, 3), 255, dtype=np.uint8)
    top, left = (cell - small.shape[0]) // 2, (cell - small.shape[1]) // 2
    tile[top : top + small.shape[0], left : left + small.shape[1]] = small
    return tile


def label(text: str, width: int) -> np.ndarray:
    strip = np.full((22, width, 3), 255, dtype=np.uint8)
    cv2.putText(strip, text[: width // 8], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated config or group names")
    parser.add_argument("--source", default="samples")
    parser.add_argument("--limit", type=int, default=8, help="images (rows)")
    parser.add_argument("--cell", type=int, default=224, help="thumbnail side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/contact_sheet.png")
    args = parser.parse_args()
    if PATTERNS.is_dir():
        os.environ.setdefault("SHIFT_HUB_DRAWING_PATTERNS", str(PATTERNS))

    specs = [registry.get(name) for name in registry.expand(args.configs.split(","))]
    source = open_source(args.source)
    rows = [np.concatenate([label(name, args.cell) for name in ["input", *(s.name for s in specs)]], axis=1)]
    for n, example in enumerate(source.examples()):
        if n >= args.limit:
            break
        image, _ = decode(source.read(example), example.image_id)
        tiles = [thumbnail(image, args.cell)]
        for spec in specs:
            try:
                tiles.append(thumbnail(render(spec, image, example.image_id, args.seed), args.cell))
            except FileNotFoundError as exc:  # a published pattern that is not at hand
                print(f"{spec.name}: {exc}", file=sys.stderr)
                tiles.append(np.full((args.cell, args.cell, 3), 230, dtype=np.uint8))
        rows.append(np.concatenate(tiles, axis=1))
        print(f"{example.image_id}: done", file=sys.stderr)
    sheet = np.concatenate(rows, axis=0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out)
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()

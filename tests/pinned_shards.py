"""The job whose shards tests/test_pinned_bytes.py pins: made by the engine before issue 23's decode-once
rewrite, so every later engine must write the same bytes.

    .venv/bin/python tests/pinned_shards.py tests/fixtures/pinned_shards.json   # (re)pin: only on purpose
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from conftest import jpeg_bytes, photo  # noqa: E402

from shift_hub.folder import META_KEY  # noqa: E402
from shift_hub.sources import Example, Source  # noqa: E402

CONFIGS = ["clean", "clean_full", "gaussian_noise_3", "glass_blur_1", "snow_5", "jpeg_compression_2",
           "pixelate_4", "zoom_blur_2", "frost_3", "saturate_4", "drawing", "seg_img_rgb"]
SHARD_SIZE = 3
# and a second job whose one shard spans several parquet row groups, with skipped images inside them
LONG_CONFIGS, LONG_IMAGES = ["clean", "gaussian_noise_1", "seg_img_rgb"], 230


class PinnedSource(Source):
    """Seven small photos of assorted sizes, a grey one, a PNG with alpha and a truncated JPEG."""

    name = "pinned"

    def __init__(self, more: int = 0):
        items = [(f"img{i}", i * 37 % 1000, jpeg_bytes(photo(i, size=(40 + 9 * i, 72 - 3 * i)))) for i in range(7)]
        grey = io.BytesIO()
        Image.fromarray(photo(7, size=(50, 60))[..., 0]).save(grey, format="PNG")
        rgba = io.BytesIO()
        Image.fromarray(np.dstack([photo(8, size=(44, 52)), np.full((44, 52), 200, np.uint8)])).save(rgba, "PNG")
        items += [("img7_grey", 7, grey.getvalue()), ("img8_alpha", 8, rgba.getvalue()),
                  ("img9_truncated", 9, jpeg_bytes(photo(9))[:300])]
        for i in range(more):  # every 40th truncated: a skip in the middle of a row group
            data = jpeg_bytes(photo(100 + i, size=(24, 30)))
            items.append((f"long{i:04d}", i % 1000, data[:200] if i % 40 == 7 else data))
        self.items = items

    def examples(self):
        for i, (image_id, label, _) in enumerate(self.items):
            yield Example(image_id, (label,), i, ((3, 4, 30, 33),))

    def read(self, example):
        return self.items[example.locator][2]

    def describe(self):
        return "pinned test photos"


def make(out: Path, **kw) -> dict:
    from shift_hub import generate

    generate.generate(CONFIGS, PinnedSource(), out / "short", shard_size=SHARD_SIZE, progress=False, card=False, **kw)
    generate.generate(LONG_CONFIGS, PinnedSource(LONG_IMAGES), out / "long", progress=False, card=False, **kw)
    return {**{f"short/{k}": v for k, v in digests(out / "short").items()},
            **{f"long/{k}": v for k, v in digests(out / "long").items()}}


def digests(out: Path) -> dict:
    """Per shard: the file's sha256 and that of its content (every cell and the footer), which stays the same
    when only pyarrow's version (written into the file) changes."""
    import pyarrow.parquet as pq

    found = {}
    for path in sorted(out.glob("*/*.parquet")):
        f = pq.ParquetFile(path)
        content = hashlib.sha256()
        content.update(json.dumps([f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)]).encode())
        for row in f.read().to_pylist():
            content.update(json.dumps({**row, "image": None}, sort_keys=True).encode())
            content.update(row["image"]["bytes"])
            content.update(row["image"]["path"].encode())
        content.update(f.metadata.metadata[META_KEY])
        found[str(path.relative_to(out))] = {"file": hashlib.sha256(path.read_bytes()).hexdigest(),
                                             "content": content.hexdigest()}
    return found


if __name__ == "__main__":
    import tempfile

    import pyarrow

    with tempfile.TemporaryDirectory() as tmp:
        pins = {"pyarrow": pyarrow.__version__, "shards": make(Path(tmp) / "out")}
    Path(sys.argv[1]).write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    print(len(pins["shards"]), "shards pinned")

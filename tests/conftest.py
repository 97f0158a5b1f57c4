import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared fixtures are not present")
    return SHARED


def jpeg_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def photo(seed: int = 0, size=(48, 64)) -> np.ndarray:
    """A smooth random RGB image (JPEG-friendly) for tests that need many distinct images."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size[1], size[0]), Image.BICUBIC))


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    """Each test loads through its own `datasets` cache: folders with equal names never share a cached copy."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_datasets_cache"))


def digests(out: Path) -> dict[str, str]:
    """sha256 of every shard under a generated folder, by relative path: what byte-identity tests compare."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(out).glob("*/*.parquet"))}


def list_source(items):
    """A source of images given as bytes, in a chosen order: (image_id, label, bytes) triples."""
    from shift_hub.sources import Example, Source

    class ListSource(Source):
        name = "list"

        def examples(self):
            for i, (image_id, label, _) in enumerate(items):
                yield Example(image_id, (label,), i)

        def read(self, example):
            return items[example.locator][2]

    return ListSource()

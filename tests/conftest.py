import hashlib
import io
from contextlib import contextmanager
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


# --- a real browser for the HTML outputs (report.html, leaderboard.html) ---------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium():
    """Playwright's sync API and Debian's Chromium, or a skip that says which one is missing."""
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright): browser test skipped")
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium): browser test skipped")
    return sync_api, CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")


@contextmanager
def browser_page(url: str):
    """A 1280x900 page of a real headless Chromium at `url`; leaving it checks that the page logged no error and
    fetched nothing but file: and data: URLs (self-contained, opens offline)."""
    sync_api, executable = chromium()
    requests, problems = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url, wait_until="load")
            yield page
        finally:
            browser.close()
    assert not problems, problems
    assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests


# --- a devkit's metadata, for tests that build a devkit by hand ------------------------------------------------

def devkit_meta(root: Path) -> None:
    """ROOT/val/ and ROOT/data/meta_clsloc.mat whose CLS-LOC id k names the k-th WNID (1 -> n01440764)."""
    from scipy.io import savemat

    from shift_hub import classes

    (root / "val").mkdir(parents=True)
    (root / "data").mkdir()
    synsets = np.zeros((1000,), dtype=[("ILSVRC2015_CLSLOC_ID", "O"), ("WNID", "O"), ("words", "O")])
    for k, wnid in enumerate(classes.wnids(), 1):
        synsets[k - 1] = (k, wnid, classes.lemmas()[wnid])
    savemat(root / "data" / "meta_clsloc.mat", {"synsets": synsets})


# --- stored bytes are the on-the-fly bytes ---------------------------------------------------------------------

def assert_stored_bytes_are_shift_image(out: Path, configs: list[str], seed: int = 3, limit: int = 2) -> None:
    """Generate `configs` from the samples into `out`; every stored image is `shift_image`'s bytes for its row."""
    import datasets

    from shift_hub import generate as engine, registry
    from shift_hub.imaging import decode
    from shift_hub.sources import open_source

    engine.generate(configs, "samples", out, limit=limit, seed=seed, progress=False)
    source = open_source("samples")
    raw = {ex.image_id: decode(source.read(ex))[0] for ex in engine.plan_examples(source, limit=limit)}
    for config in configs:
        rows = datasets.load_dataset(str(out), config, split="validation")
        rows = rows.cast_column("image", datasets.Image(decode=False))
        assert len(rows) == limit
        for row in rows:
            expected = engine.shift_image(registry.get(config), raw[row["image_id"]], seed, row["image_id"])
            assert row["image"]["bytes"] == expected, (config, row["image_id"])
            assert row["severity"] == registry.get(config).severity


@pytest.fixture(scope="module")
def hub():
    """The local Hub server (tests/hub_server.py), one per test module."""
    from hub_server import HubServer

    server = HubServer().start()
    yield server
    server.stop()


@pytest.fixture
def one_thread():
    """The forward pass on one thread, restored after: a multi-threaded CPU matmul splits a batch's rows between
    threads, so an item's last bits can depend on its place in the batch, and on the fly items are loaded image
    by image (each batch holds the folder run's number of items, not the same items in the same places)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def stub_transform(image):
    """8x8 RGB in [0, 1], channels first: the input of the tests' tiny stub classifiers."""
    import torch

    arr = np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def linear_stub(module=None, name: str = "stub"):
    """A classifier over 8x8 inputs: `module`, or a fixed linear net (seed 0) whose flips and errors are what they
    are: for tests about which rows are scored and how they are counted, not about the scores."""
    import torch

    from shift_hub.evaluation.models import Classifier

    if module is None:
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000))
    return Classifier(name=name, adapter="stub", module=module.eval(), transform=stub_transform)

"""bench/make_synthetic_imagenet.py: a devkit that the devkit source reads, labels and boxes as written."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from shift_hub import classes
from shift_hub.imaging import decode
from shift_hub.sources import Devkit, open_source

ROOT = Path(__file__).resolve().parents[1]


def _load():
    path = ROOT / "bench" / "make_synthetic_imagenet.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_imagenet", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


synthetic = _load()


def test_devkit_of_twelve_reads_back(tmp_path):
    made = synthetic.make_synthetic_imagenet(12, tmp_path)
    source = open_source("devkit:" + str(tmp_path))
    assert isinstance(source, Devkit)
    examples = list(source.examples())
    assert [e.image_id for e in examples] == [f"ILSVRC2012_val_{i:08d}" for i in range(1, 13)]
    sample_wnids = {classes.wnids()[e.label] for e in open_source("samples").examples()}
    for e, m in zip(examples, made):
        assert classes.wnids()[e.label] == m.wnid and m.wnid in sample_wnids  # through the CLS-LOC ids
        assert e.boxes == (m.box,)
        arr, _ = decode(source.read(e), e.image_id)
        h, w = arr.shape[:2]
        assert (w, h) == m.size == Image.open(e.locator).size
        x0, y0, x1, y1 = m.box
        assert 0 <= x0 < x1 <= w - 1 and 0 <= y0 < y1 <= h - 1
    assert any(m.size in ((500, 375), (375, 500), (500, 333)) for m in made)
    # the CLS-LOC ids are not the WNID order, so the mapping step is exercised
    truth = [int(v) for v in (tmp_path / "data" / "ILSVRC2015_clsloc_validation_ground_truth.txt").read_text().split()]
    assert [classes.wnids()[t - 1] for t in truth] != [m.wnid for m in made]
    blacklist = (tmp_path / "data" / "ILSVRC2015_clsloc_validation_blacklist.txt").read_text().split()
    assert len(list(open_source("devkit:" + str(tmp_path), exclude_blacklist=True).examples())) == 12 - len(blacklist)


def test_images_depend_only_on_seed_and_number():
    a, made_a = synthetic.make_image(7, seed=3)
    b, made_b = synthetic.make_image(7, seed=3)
    assert a == b and made_a == made_b
    assert synthetic.make_image(8, seed=3)[0] != a and synthetic.make_image(7, seed=4)[0] != a


def test_size_mix_is_imagenet_like():
    rng = np.random.default_rng(0)
    sizes = [synthetic._draw_size(synthetic.size_position(i), rng) for i in range(1, 4001)]
    share = lambda *wh: sum(s in wh for s in sizes) / len(sizes)  # noqa: E731
    assert 0.35 < share((500, 375)) < 0.45 and share((375, 500), (500, 333)) > 0.2
    large = [max(s) for s in sizes if max(s) > 500]
    assert 0.03 < len(large) / len(sizes) < 0.07 and max(large) <= 4000 and max(large) > 3000


def test_every_prefix_holds_the_mix():
    """Per-image cost at N=200 and N=2,000 is comparable only if both hold the costly large tail in its share."""
    rng = np.random.default_rng(0)
    for n in (200, 2000):
        sizes = [synthetic._draw_size(synthetic.size_position(i), rng) for i in range(1, n + 1)]
        large = sorted(max(s) for s in sizes if max(s) > 500)
        assert abs(len(large) - 0.05 * n) <= 2
        assert abs(np.mean(large) - 2400) < 250  # long sides spread over 800..4000

"""Full-resolution shifts run in bands of rows, so memory stays bounded at any size (bench/bench_memory.py
measures it on 24 MP); here, on small images cut into several bands, a banded run must give the pixels of a
whole-image run."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from shift_hub.shifts import cartoon_classic, drawing, toon


@pytest.fixture
def image() -> np.ndarray:
    return np.ascontiguousarray(data.chelsea()[40:190, 100:300])  # 150 x 200


def _whole_and_banded(fn, image, monkeypatch, **kw):
    whole = fn(image, np.random.default_rng(0), **kw)
    monkeypatch.setattr(drawing, "STRIP_PIXELS", 64 * image.shape[1])
    assert len(drawing._bands(*image.shape[:2])) == 3
    return whole, fn(image, np.random.default_rng(0), **kw)


def test_drawing_bands_give_whole_image_pixels(image, monkeypatch):
    whole, banded = _whole_and_banded(drawing.pencil_drawing, image, monkeypatch)
    np.testing.assert_array_equal(whole, banded)


def test_toon_handdrawn_bands_give_whole_image_pixels(image, monkeypatch):
    whole, banded = _whole_and_banded(toon.toon_handdrawn, image, monkeypatch)
    np.testing.assert_array_equal(whole, banded)


def test_cartoon_classic_bands_give_whole_image_pixels(image, monkeypatch):
    whole, banded = _whole_and_banded(cartoon_classic.cartoon_classic, image, monkeypatch)
    np.testing.assert_array_equal(whole, banded)


def test_cartoon_classic_segments_a_shrunk_copy_above_the_cap(image):
    capped = cartoon_classic.cartoon_classic(image, None, segment_max_pixels=image.shape[0] * image.shape[1] // 4)
    again = cartoon_classic.cartoon_classic(image, None, segment_max_pixels=image.shape[0] * image.shape[1] // 4)
    assert capped.shape == image.shape and capped.dtype == np.uint8 and np.array_equal(capped, again)
    assert np.abs(capped.astype(float) - image).mean() < 40


def test_texture_system_solved_by_parts_matches_the_whole():
    rng = np.random.default_rng(2)
    n, lam = 6000, 0.2
    log_h = np.log(rng.uniform(0.2, 0.99, n))
    log_j = np.log(rng.uniform(0.01, 0.99, n))
    whole = drawing._solve_port_system(log_h.copy(), log_j.copy(), lam)
    first, last = 2000 - drawing.SOLVE_OVERLAP, 3500 + drawing.SOLVE_OVERLAP
    part = drawing._solve_port_system(log_h[first:last].copy(), log_j[first:last].copy(), lam, closed=False)
    np.testing.assert_allclose(part[2000 - first: 3500 - first], whole[2000:3500], rtol=1e-13, atol=1e-15)

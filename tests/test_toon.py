"""ToonNet's hand-drawn and IUS filters: registered, deterministic, doing what the paper describes, robust."""
from __future__ import annotations

import inspect

import cv2
import numpy as np
import pytest
from skimage import data

from shift_hub import registry
from shift_hub.shifts import toon

FILTERS = {"toon_handdrawn": toon.toon_handdrawn, "toon_ius": toon.toon_ius}


def _photo(width: int = 96) -> np.ndarray:
    img = data.coffee()
    h, w = img.shape[:2]
    return cv2.resize(img, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def _run(name: str, img: np.ndarray, seed: int = 0) -> np.ndarray:
    spec = registry.get(name)
    return spec.load_fn()(img, np.random.default_rng(seed), **spec.params)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_registered_with_documented_choices(name):
    spec = registry.get(name)
    assert spec.load_fn() is FILTERS[name]
    assert set(spec.params) <= set(inspect.signature(FILTERS[name]).parameters)
    assert spec.geometry == registry.FULL and spec.encoding == registry.Encoding(quality=95)
    assert "our choices" in spec.deviation and "3-D" in spec.deviation
    assert name in registry.expand(["all-cpu"]) and name in registry.expand(["toonnet"])


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_deterministic(name):
    img = _photo()
    np.testing.assert_array_equal(_run(name, img, 1), _run(name, img, 1))


def test_handdrawn_angles_come_from_rng():
    img = _photo()
    assert not np.array_equal(_run("toon_handdrawn", img, 1), _run("toon_handdrawn", img, 2))


def test_ius_ignores_rng():
    img = _photo()
    np.testing.assert_array_equal(_run("toon_ius", img, 1), _run("toon_ius", img, 2))


def test_handdrawn_keeps_tone_and_colour():
    img = _photo()
    out = _run("toon_handdrawn", img).astype(float)
    assert abs(out.mean() - img.mean()) < 40
    grey = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    g = _run("toon_handdrawn", grey).astype(int)
    assert np.abs(g[..., 0] - g[..., 2]).max() <= 1  # grey stays grey
    # each channel's mean ordering (the photo's warm cast) survives
    assert out[..., 0].mean() > out[..., 2].mean()


def test_ius_masks_and_flat_regions():
    """White background, black outline, two vivid shapes with shading: flat regions come out."""
    img = np.full((96, 128, 3), 250, np.uint8)
    cv2.circle(img, (40, 48), 26, (10, 10, 10), 3)
    cv2.circle(img, (40, 48), 24, (200, 30, 30), -1)
    cv2.rectangle(img, (80, 20), (120, 80), (30, 40, 200), -1)
    noise = np.random.default_rng(0).integers(-12, 13, img.shape)
    shaded = np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)
    out = _run("toon_ius", shaded)
    assert (out[5, 5] == 255).all()  # background painted white
    assert (out[48, 40 - 25] == 0).all()  # outline painted black
    disc, square = out[40:56, 32:48].reshape(-1, 3), out[30:70, 90:110].reshape(-1, 3)
    assert len(np.unique(disc, axis=0)) == 1 and len(np.unique(square, axis=0)) == 1  # one flat colour each
    assert disc[0, 0] > 150 and disc[0, 2] < 80 and square[0, 2] > 150  # red stays red, blue stays blue


def test_ius_hue_is_circular():
    lut = toon._hue_lut(178, 6)
    assert lut[2] == 255 and lut[172] == 255 and lut[10] == 0 and lut[200] == 0


def test_ius_region_colour_option():
    img = _photo()
    mean = toon.toon_ius(img, None)
    seed = toon.toon_ius(img, None, region_colour="seed")
    assert mean.shape == seed.shape and not np.array_equal(mean, seed)
    with pytest.raises(ValueError):
        toon.toon_ius(img, None, region_colour="median")


@pytest.mark.parametrize("name", sorted(FILTERS))
@pytest.mark.parametrize(
    "img",
    [
        np.zeros((8, 8, 3), np.uint8),
        np.full((8, 8, 3), 255, np.uint8),
        np.full((17, 23, 3), 120, np.uint8),
        np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 256, (12, 9), dtype=np.uint8),  # 2-D grey
        np.random.default_rng(2).integers(0, 256, (8, 150, 3), dtype=np.uint8),
    ],
    ids=["black", "white", "flat", "noise8", "grey2d", "sliver"],
)
def test_degenerate_inputs(name, img):
    out = _run(name, img)
    assert out.dtype == np.uint8 and out.shape == (*img.shape[:2], 3)


def test_ius_large_image_uses_working_size():
    img = cv2.resize(data.coffee(), (1300, 867), interpolation=cv2.INTER_CUBIC)
    out = toon.toon_ius(img, None, work_max_side=256)
    assert out.shape == img.shape


def test_handdrawn_segments_a_smaller_copy_of_large_images():
    img = _photo(160)
    out = toon.toon_handdrawn(img, np.random.default_rng(0), segment_area=200, segment_max_side=48)
    assert out.shape == img.shape and out.dtype == np.uint8

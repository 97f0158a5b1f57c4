"""ImageNet-C-bar: each corruption against the original's formulas, its draws against the original's law, the
registry entries, determinism and the pipeline.

The reference is bench/imagenet_c_bar_reference.py, the original corrupt.py restated pixel by pixel. Its
`OriginalDraws` is the original's global np.random stream (seeded per test case, recording what it hands out);
`original_draws` turns those numbers, and the ones the original then drew from RandomState(seed), into the
sequence our function asks its generator for, and `Replay` hands them over (checking each request's kind, shape
and range). Fed so, every
corruption must give the reference's output exactly, on real photos (chelsea, astronaut, coffee under resize 256 /
centre crop 224): at a sample of pixels (the interior, the four corners, the borders) for the corruptions computed
pixel by pixel, on the whole image for the Fourier noises. With our own generator, the change each makes (its mean
and spread over the image) must follow the original's across seeds, per severity.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_stored_bytes_are_shift_image, digests, jpeg_bytes
from test_generate import ListSource  # picklable, for the worker pool
from shift_hub import registry
from shift_hub.params import BadParameter
from shift_hub.rng import generator
from shift_hub.shifts import imagenet_c_bar as cbar

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(registry.IMAGENET_C_BAR_CORRUPTIONS)
FOURIER = ["blue_noise_sample", "brownish_noise"]
SIDE = 224


def _reference():
    path = ROOT / "bench" / "imagenet_c_bar_reference.py"
    spec = importlib.util.spec_from_file_location("imagenet_c_bar_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = _reference()


def levels(name: str) -> tuple[float, ...]:
    return registry.IMAGENET_C_BAR_CORRUPTIONS[name][2]


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    import skimage.data

    from shift_hub.imaging import apply_geometry

    return {n: apply_geometry(np.asarray(getattr(skimage.data, n)())[..., :3], registry.STANDARD)
            for n in ("chelsea", "astronaut", "coffee")}


@pytest.fixture(scope="module")
def pixels() -> list[tuple[int, int]]:
    """200 interior pixels, the four corners and 40 border pixels: where the formulas are compared."""
    rng = np.random.default_rng(25)
    inner = [tuple(int(v) for v in p) for p in rng.integers(1, SIDE - 1, (200, 2))]
    edge = rng.integers(0, SIDE, 40)
    border = [(0, int(edge[i])) if i % 4 == 0 else (SIDE - 1, int(edge[i])) if i % 4 == 1 else
              (int(edge[i]), 0) if i % 4 == 2 else (int(edge[i]), SIDE - 1) for i in range(40)]
    return inner + [(0, 0), (0, SIDE - 1), (SIDE - 1, 0), (SIDE - 1, SIDE - 1)] + border


def original_run(name: str, level: float, seed: int):
    """The original's parameters for one image, and a Replay of its numbers for our function."""
    state = REF.OriginalDraws(seed)
    params = REF.sample(name, state, level, SIDE)
    return params, REF.Replay(REF.original_draws(name, state.draws, params))


def ours_replayed(name: str, image: np.ndarray, level: float, seed: int) -> tuple[np.ndarray, dict]:
    params, replay = original_run(name, level, seed)
    out = getattr(cbar, name)(image, replay, level)
    assert not replay.draws, "drew fewer numbers than the original"
    assert out.dtype == np.uint8 and out.shape == image.shape
    return out, params


@lru_cache(maxsize=None)
def _power(kind: str) -> np.ndarray:
    return REF.blue_power(SIDE) if kind == "blue" else REF.brown_power(SIDE)


# ---- the formulas, fed the original's draws --------------------------------------------------------------

def test_registry_entries():
    group = registry.groups()["imagenet_c_bar"]
    assert len(group) == 50 and group == registry.expand(["imagenet_c_bar"])
    for name in NAMES:
        assert callable(getattr(cbar, name)) and name in cbar.CORRUPTIONS
        for severity, level in enumerate(levels(name), start=1):
            spec = registry.get(f"{name}_{severity}")
            assert spec.severity == severity and spec.params == {"level": level} and spec.group == "imagenet_c_bar"
            assert spec.geometry == registry.STANDARD
            assert spec.encoding == registry.Encoding(quality=85, optimize=True)
            assert spec.load_fn() is getattr(cbar, name)
            assert spec.citation.startswith("@inproceedings{mintun2021interaction") and spec.deviation
    assert set(cbar.CORRUPTIONS) == set(NAMES)
    assert registry.expand(["sparkles"]) == [f"sparkles_{k}" for k in range(1, 6)]
    # the levels of imagenet_c_bar.csv (facebookresearch/augmentation-corruption)
    assert levels("caustic_refraction") == (2.35, 3.2, 4.9, 6.6, 9.15) and levels("brownish_noise") == (1, 2, 3, 4, 5)
    assert levels("plasma_noise") == (4.75, 7, 8.5, 9.25, 10) and levels("blue_noise_sample") == (0.8, 1.6, 2.4, 4, 5.6)


def test_the_level_is_part_of_the_config_name():
    with pytest.raises(BadParameter, match="level is part of the config name"):
        registry.validate_overrides([registry.get("sparkles_3")], {"level": 4.0})


PER_PIXEL = sorted(REF.PER_PIXEL - {"caustic_refraction"})


@pytest.mark.parametrize("name", PER_PIXEL)
def test_fed_the_originals_draws_each_pixel_is_the_originals(photos, pixels, name):
    """checkerboard cells, sine and ring patterns, plasma, Perlin turbulence, sparkles: the original's per-pixel
    formula at every sampled pixel, at all five levels, on three photos."""
    rows, cols = np.array(pixels).T
    for severity, level in enumerate(levels(name), start=1):
        for k, image in enumerate(photos.values()):
            out, params = ours_replayed(name, image, level, seed=100 * severity + k)
            expected = REF.transform(name, image, params, SIDE, pixels)
            np.testing.assert_array_equal(out[rows, cols], expected, err_msg=f"{name} level {level}")


def test_caustic_refraction_fed_the_originals_draws_is_the_originals(photos, pixels):
    """The caustic pattern pixel by pixel (to the last bit or two), then the refraction and lighting (the original's
    rotation-matrix construction in the reference, our closed form) exactly, at every sampled pixel."""
    from scipy.ndimage import gaussian_filter

    rows, cols = np.array(pixels).T
    for severity, level in enumerate(levels("caustic_refraction"), start=1):
        image = list(photos.values())[severity % 3]
        out, params = ours_replayed("caustic_refraction", image, level, seed=7 + severity)
        pattern = cbar._caustic_pattern(SIDE, SIDE, params["time"], params["size"])
        expected_pattern = [REF.caustic_value(y, x, params["time"], params["size"]) for y, x in pixels]
        # NumPy's array power and libm's pow (the original's scalar `c ** 1.4`) may differ in the last bit
        np.testing.assert_allclose(pattern[rows, cols], expected_pattern, rtol=1e-13, atol=1e-300)
        smoothed = gaussian_filter(np.repeat(pattern[..., None], 3, axis=2), sigma=params["softening"])
        expected = REF._caustic(image, params, SIDE, pixels, pattern=smoothed)
        np.testing.assert_array_equal(out[rows, cols], expected, err_msg=f"level {level}")


@pytest.mark.parametrize("name", FOURIER)
def test_fed_the_originals_draws_the_fourier_noises_are_the_originals(photos, name):
    transform = REF._blue_noise_sample if name == "blue_noise_sample" else REF._brownish
    power = _power("blue" if name == "blue_noise_sample" else "brown")
    for severity, level in enumerate(levels(name), start=1):
        image = list(photos.values())[severity % 3]
        out, params = ours_replayed(name, image, level, seed=severity)
        np.testing.assert_array_equal(out, transform(image, params, SIDE, None, power=power), err_msg=str(level))


def test_perlin_quirk_a_zero_gradient_blackens_its_pixels(photos):
    """RandomState(83) draws gradient 2 as (0, 0): it normalises to NaN in the original, and the pixels that use
    it come out black there and here."""
    image = photos["coffee"]
    params = {**REF.sample("perlin_noise", REF.OriginalDraws(3), 7.6, SIDE), "seed": 83}
    assert np.isnan(REF.Perlin(np.random.RandomState(83)).g[2]).all()
    replay = REF.Replay(REF.original_draws("perlin_noise", [83], params))
    out = cbar.perlin_noise(image, replay, 7.6)
    rows, cols = np.meshgrid(np.arange(0, SIDE, 3), np.arange(0, SIDE, 3), indexing="ij")
    pixels = list(zip(rows.ravel().tolist(), cols.ravel().tolist()))
    np.testing.assert_array_equal(out[rows.ravel(), cols.ravel()], REF.transform("perlin_noise", image, params,
                                                                                 SIDE, pixels))
    black = (out == 0).all(axis=2) & ~(image == 0).all(axis=2)
    assert 0 < black.mean() < 0.2, black.mean()


# ---- the draws: our generator against the original's law -------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_change_per_severity_follows_the_original_across_seeds(photos, name):
    """Per severity, over 8 images each: the mean and the spread of (output - input) over an image, ours (our
    generator) against the original's (its draws, replayed), within 4 standard errors plus one grey level."""
    fn = getattr(cbar, name)
    images = list(photos.values())
    for severity, level in enumerate(levels(name), start=1):
        stats = {"ours": [], "original": []}
        for seed in range(8):
            image = images[seed % 3]
            theirs, _ = ours_replayed(name, image, level, seed=1000 + seed)
            mine = fn(image, generator(seed, f"{name}_{severity}", f"img{seed}"), level)
            for key, out in (("ours", mine), ("original", theirs)):
                change = out.astype(np.float64) - image
                stats[key].append((change.mean(), change.std()))
        ours, original = np.array(stats["ours"]), np.array(stats["original"])
        error = np.sqrt((ours.var(axis=0, ddof=1) + original.var(axis=0, ddof=1)) / len(ours))
        gap = np.abs(ours.mean(axis=0) - original.mean(axis=0))
        assert np.all(gap <= 4 * error + 1.0), (name, level, ours.mean(axis=0), original.mean(axis=0), error)


def test_draws_come_only_from_the_given_generator(photos):
    image = photos["astronaut"]
    before = np.random.get_state()[1].copy()
    for name in NAMES:
        fn = getattr(cbar, name)
        level = levels(name)[2]
        a, b = fn(image, np.random.default_rng(7), level), fn(image, np.random.default_rng(7), level)
        assert np.array_equal(a, b), name
        assert not np.array_equal(a, fn(image, np.random.default_rng(8), level)), name
    assert np.array_equal(np.random.get_state()[1], before), "a corruption touched the global np.random state"


# ---- any image, any run ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(97, 131), (130, 90), (8, 8)])
def test_any_image_size(photos, shape):
    image = np.ascontiguousarray(photos["chelsea"][: shape[0], : shape[1]])
    for name in NAMES:
        out = getattr(cbar, name)(image, np.random.default_rng(0), levels(name)[4])
        assert out.shape == image.shape and out.dtype == np.uint8, name


def test_an_image_that_is_not_square_is_cut_from_its_longer_sides_square(photos):
    """The documented rule: the longer side is the original's im_size, patterns are the square's, cut."""
    square = photos["coffee"]
    for name in NAMES:
        if name == "caustic_refraction":  # smoothed and differentiated across the cut: only the rule for its size
            continue
        fn, level = getattr(cbar, name), levels(name)[3]
        cut = fn(np.ascontiguousarray(square[:100]), np.random.default_rng(4), level)
        assert np.array_equal(cut, fn(square, np.random.default_rng(4), level)[:100]), name


def test_bytes_identical_across_worker_counts_and_order(tmp_path, photos):
    from shift_hub import generate as engine

    items = [(f"img{i}", i, jpeg_bytes(p)) for i, p in enumerate([*photos.values(), photos["chelsea"][::-1]])]
    configs = ["caustic_refraction_2", "sparkles_5", "perlin_noise_1", "checkerboard_cutout_3", "brownish_noise_4"]
    engine.generate(configs, ListSource(items), tmp_path / "a", num_proc=1, shard_size=2, progress=False)
    engine.generate(configs, ListSource(items[::-1]), tmp_path / "b", num_proc=2, shard_size=2, progress=False)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert len(a) == 2 * len(configs) and a == b


def test_on_the_fly_bytes_equal_generated_bytes(tmp_path):
    configs = ["inverse_sparkles_4", "blue_noise_sample_2", "plasma_noise_5", "single_frequency_greyscale_1",
               "cocentric_sine_waves_3"]
    assert_stored_bytes_are_shift_image(tmp_path, configs)
    card = (tmp_path / "README.md").read_text()
    assert card.count("@inproceedings{mintun2021interaction") == 1

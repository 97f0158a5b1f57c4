"""ImageNet-C corruptions: fidelity to the reference fixtures, determinism, the registry entries, on the fly.

The fixtures (tests/fixtures/imagenet_c/) come from bench/make_imagenet_c_reference.py: imagecorruptions
1.1.2 in its own old-stack venv, or the original make_imagenet_c.py algorithm with Wand/ImageMagick where
1.1.2 departs from it. Each reference ran with np.random.seed(seed); `LegacyDraws` hands our functions the
very same numbers, so even the random corruptions are compared pixel for pixel (PSNR >= 40 dB). The pure
noise corruptions are also checked with the real per-image generator against the reference's noise
statistics. impulse_noise cannot be replayed (skimage draws from its own unseeded generator): statistics only.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_stored_bytes_are_shift_image
from PIL import Image

from shift_hub import registry
from shift_hub.shifts import corruptions

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "imagenet_c"
NAMES = list(registry.IMAGENET_C_CORRUPTIONS)
NOISES = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"]
NOT_REPLAYABLE = {"impulse_noise"}


class LegacyDraws:
    """The Generator methods our corruptions call, answered by the legacy np.random stream the reference used."""

    def __init__(self, seed: int):
        self.state = np.random.RandomState(seed)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self.state.normal(loc, scale, size)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self.state.uniform(low, high, size)

    def integers(self, low, high=None, size=None):
        return self.state.randint(low, high, size)

    def poisson(self, lam=1.0, size=None):
        return self.state.poisson(lam, size)

    def random(self, size=None):
        return self.state.random_sample(size)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def reference():
    image = np.asarray(Image.open(FIXTURES / "input.png").convert("RGB"))
    meta = json.loads((FIXTURES / "reference.json").read_text())
    with np.load(FIXTURES / "reference.npz") as npz:
        outputs = {key: npz[key] for key in npz.files}
    crop = tuple(slice(*c) for c in meta["crop"])
    return image, meta, outputs, crop


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NOT_REPLAYABLE])
def test_matches_reference_with_the_same_draws(reference, name):
    image, meta, outputs, crop = reference
    fn = getattr(corruptions, name)
    for severity in corruptions.SEVERITIES:
        key = f"{name}_{severity}"
        out = fn(image.copy(), LegacyDraws(meta["configs"][key]["seed"]), severity)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert psnr(out[crop], outputs[key]) >= 40, (key, psnr(out[crop], outputs[key]))


@pytest.mark.parametrize("name", NOISES)
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_noise_statistics_with_our_generator(reference, name, severity):
    image, meta, _, _ = reference
    ref = meta["configs"][f"{name}_{severity}"]
    out = getattr(corruptions, name)(image, np.random.default_rng(severity), severity)
    diff = out.astype(np.float64) - image
    mean, std = diff.mean(axis=(0, 1)), diff.std(axis=(0, 1))
    ref_mean, ref_std = np.array(ref["diff_mean"]), np.array(ref["diff_std"])
    np.testing.assert_allclose(std, ref_std, rtol=0.03)
    assert np.all(np.abs(mean - ref_mean) <= 0.03 * ref_std), (mean, ref_mean, ref_std)


def test_draws_come_only_from_the_given_generator():
    image = _photo((96, 128))
    before = np.random.get_state()[1].copy()
    for name in NAMES:
        fn = getattr(corruptions, name)
        a = fn(image, np.random.default_rng(7), 3)
        b = fn(image, np.random.default_rng(7), 3)
        assert np.array_equal(a, b), name
    assert np.array_equal(np.random.get_state()[1], before), "a corruption touched the global np.random state"


def test_random_corruptions_depend_on_the_seed():
    image = np.asarray(Image.open(FIXTURES / "input.png").convert("RGB"))
    deterministic = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression",
                     "gaussian_blur", "saturate"}
    for name in NAMES:
        fn = getattr(corruptions, name)
        same = np.array_equal(fn(image, np.random.default_rng(1), 2), fn(image, np.random.default_rng(2), 2))
        assert same == (name in deterministic), name


@pytest.mark.parametrize("shape", [(96, 128), (130, 90)])
def test_any_image_size(shape):
    image = _photo(shape)
    for name in NAMES:
        out = getattr(corruptions, name)(image, np.random.default_rng(0), 5)
        assert out.shape == image.shape and out.dtype == np.uint8, name


def test_quirks_are_kept():
    # frost: the original lists six photographs but draws randint(5)
    assert len(corruptions.FROST_FILES) == 5
    # glass blur: `x[a], x[b] = x[b], x[a]` on NumPy views copies one way; pixel values only ever duplicate
    state = np.arange(10)
    target, source = np.array([5, 4, 3]), np.array([6, 5, 5])
    for t, s in zip(target, source):
        state[t] = state[s]
    assert np.array_equal(corruptions._sequential_copies(10, target, source), state)  # [.., 6, 6, 6, 6, ..]


def test_sequential_copies_match_the_loop():
    rng = np.random.default_rng(0)
    h = w = 40
    for d in (1, 2, 4):
        rows, cols = np.arange(h - d, d, -1), np.arange(w - d, d, -1)
        target = (rows[:, None] * w + cols[None, :]).ravel()
        off = rng.integers(-d, d, size=(target.size, 2))
        source = target + off[:, 1] * w + off[:, 0]
        state = list(range(h * w))
        for t, s in zip(target.tolist(), source.tolist()):
            state[t] = state[s]
        assert np.array_equal(corruptions._sequential_copies(h * w, target, source), state)


def test_frost_photographs_are_the_published_ones():
    notice = (Path(corruptions.__file__).parents[1] / "data" / "frost" / "NOTICE.md").read_text()
    for name in corruptions.FROST_FILES:
        data = (Path(corruptions.__file__).parents[1] / "data" / "frost" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() in notice, name
        assert min(corruptions.frost_image(corruptions.FROST_FILES.index(name)).shape[:2]) > 224


def test_registry_entries():
    groups = registry.groups()
    assert len(groups["imagenet_c"]) == 75 and len(groups["imagenet_c_extra"]) == 20
    for name, (group, *_rest) in registry.IMAGENET_C_CORRUPTIONS.items():
        for severity in corruptions.SEVERITIES:
            spec = registry.get(f"{name}_{severity}")
            assert spec.group == group and spec.severity == severity and spec.params == {"severity": severity}
            assert spec.geometry == registry.STANDARD
            assert spec.encoding == registry.Encoding(quality=85, optimize=True)
            assert spec.load_fn() is getattr(corruptions, name)


def test_on_the_fly_bytes_equal_generated_bytes(tmp_path):
    """shift_image (what the evaluator calls) gives the stored bytes, for random and deterministic configs."""
    configs = ["glass_blur_2", "frost_4", "motion_blur_5", "snow_1", "pixelate_3"]
    assert_stored_bytes_are_shift_image(tmp_path, configs)


def _photo(shape) -> np.ndarray:
    """A real photo cut to `shape`, so that edges, flat areas and colours all occur."""
    image = np.asarray(Image.open(FIXTURES / "input.png").convert("RGB"))
    return np.ascontiguousarray(np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.BILINEAR)))


def test_jpeg_and_pixelate_use_pil_as_the_original():
    image = _photo((64, 64))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=corruptions.JPEG_QUALITY[2])
    assert np.array_equal(corruptions.jpeg_compression(image, None, 3), np.asarray(Image.open(buf)))


@pytest.mark.parametrize("shape", [(224, 224), (97, 131)])
def test_contrast_table_and_channels_last_zoom_give_the_plain_bytes(shape):
    """contrast via a per-channel table and zoom_blur via torch's channels-last bilinear kernel are speed-ups
    only: every byte must equal the plain per-pixel arithmetic (float64 contrast, channels-first zooms)."""
    import torch
    import torch.nn.functional as F

    image = _photo(shape)
    for severity in corruptions.SEVERITIES:
        x = image / 255.0
        means = x.mean(axis=(0, 1), keepdims=True)
        plain = np.uint8(np.clip((x - means) * corruptions.CONTRAST[severity - 1] + means, 0, 1) * 255)
        assert np.array_equal(corruptions.contrast(image, None, severity), plain), severity

        stop, step = corruptions.ZOOM_BLUR[severity - 1]
        factors = np.arange(1, stop, step)
        x32 = x.astype(np.float32)
        planar = torch.from_numpy(np.ascontiguousarray(x32.transpose(2, 0, 1)))[None]
        total = torch.zeros_like(planar)
        h, w = shape
        with corruptions._torch_single_thread():  # as zoom_blur runs (see its docstring)
            for factor in factors:
                (t0, c0, s0, r0), (t1, c1, s1, r1) = (corruptions._zoom_window(h, factor),
                                                      corruptions._zoom_window(w, factor))
                zoomed = F.interpolate(planar[..., t0:t0 + c0, t1:t1 + c1], size=(s0, s1), mode="bilinear",
                                       align_corners=True)
                total += zoomed[..., r0:r0 + h, r1:r1 + w]
        out = total[0].numpy().transpose(1, 2, 0)
        plain = np.uint8(np.clip((x32 + out) / (len(factors) + 1), 0, 1) * 255)
        assert np.array_equal(corruptions.zoom_blur(image, None, severity), plain), severity

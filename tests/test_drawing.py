"""The `drawing` shift: faithful to the pencil-drawing port imagenet-shift ran, robust, deterministic.

The reference is bench/pencil_reference.py, a literal slow re-run of the port (convolve2d, spdiags
+ conjugate gradient). Tolerances: stroke and tone maps to 1e-9 (same arithmetic, other order);
texture to 1e-4 (the port's CG stops at relative residual 1e-6, we solve exactly); final uint8
images within 1 grey level on at most 0.1% of pixel channels.
"""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import color, data

from shift_hub import registry
from shift_hub.shifts import drawing

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ROOT.parent / "shared" / "fixtures" / "drawing-patterns"
PATTERN_FILES = {name: PATTERNS / file for name, file in drawing.PUBLISHED_PATTERNS.items()}


def _load_reference():
    spec = importlib.util.spec_from_file_location("pencil_reference", ROOT / "bench" / "pencil_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


def _pattern(name: str) -> Path:
    path = PATTERN_FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def _small(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    out = cv2.resize(img, (width, max(8, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return np.repeat(out[..., None], 3, axis=2) if out.ndim == 2 else out


SMALL_IMAGES = {
    "chelsea": lambda: _small(data.chelsea(), 120),
    "camera_grey": lambda: _small(data.camera(), 96),
    "coffee": lambda: _small(data.coffee(), 110),
    "noise_8x8": lambda: np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8),
}


def _compare(ours: np.ndarray, ref: np.ndarray) -> None:
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 1e-3


# ---- faithfulness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL_IMAGES))
def test_matches_literal_port_with_pattern_i(name):
    path = _pattern("I")
    img = SMALL_IMAGES[name]()
    ours = drawing.pencil_drawing(img, np.random.default_rng(0), pattern=str(path))
    ref = reference.reference_pencil_drawing(img, str(path))  # reads the pattern with skimage.io as the port
    _compare(ours, ref)


def test_matches_literal_port_with_synthetic_pattern():
    img = SMALL_IMAGES["chelsea"]()
    ours = drawing.pencil_drawing(img, np.random.default_rng(0))
    ref = reference.reference_pencil_drawing(img, None, pattern=drawing.synthetic_pattern())
    _compare(ours, ref)


def test_stages_match_literal_port():
    y = color.rgb2yuv(SMALL_IMAGES["coffee"]())[..., 0]
    np.testing.assert_allclose(drawing.stroke_map(y), reference.reference_stroke_map(y), atol=1e-9)
    tone = reference.reference_tone_map(y)
    np.testing.assert_allclose(drawing.tone_map(y), tone, atol=1e-9)
    texture = drawing.synthetic_pattern()
    np.testing.assert_allclose(
        drawing.texture_map(texture, tone), reference.reference_texture(y, texture, tone), rtol=1e-4, atol=1e-4
    )


def test_pattern_read_as_port_did():
    from skimage import io

    for name in ("I", "III"):  # III is RGBA: composited over white, then rgb2gray
        path = _pattern(name)
        np.testing.assert_array_equal(drawing.load_pattern(str(path)), io.imread(str(path), as_gray=True))


def test_port_system_is_what_spdiags_built():
    """The port's operator: its 'dx' is -I (offset h*w falls outside), its 'dy' a 1-pixel forward difference."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    rng = np.random.default_rng(1)
    n, lam = 37, 0.2
    log_h = np.log(rng.uniform(0.3, 0.95, n))
    log_j = np.log(rng.uniform(0.1, 0.99, n))
    pair = np.stack([-np.ones(n), np.ones(n)])
    dx = sparse.spdiags(pair, [0, n], n, n)
    dy = sparse.spdiags(pair, [0, 1], n, n)
    assert (dx.toarray() == -np.eye(n)).all()
    a = lam * (dx @ dx.T + dy @ dy.T) + sparse.diags(log_h**2)
    expected = spsolve(a.tocsc(), log_h * log_j)
    np.testing.assert_allclose(drawing._solve_port_system(log_h, log_j, lam), expected, rtol=1e-10)


def test_published_parameters():
    assert drawing.TONE_WEIGHT_GROUPS[2] == (2, 22, 76)
    assert drawing.TONE == dict(sigma_b=9.0, u_a=105.0, u_b=225.0, mu_d=90.0, sigma_d=11.0)
    kernels = drawing.line_kernels(8, 0, 8)
    assert len(kernels) == 8 and kernels[0].shape == (17, 17)
    assert kernels[0][9].sum() == 17 and kernels[0].sum() == 17  # one row, one below the centre
    cdf = drawing.target_tone_cdf(2)
    assert np.all(np.diff(cdf) > 0) and cdf[-1] == pytest.approx(1.0)
    spec = registry.get("drawing")
    assert spec.params == dict(pattern=None, **drawing.PUBLISHED_CALL)
    assert spec.geometry == registry.FULL and spec.encoding == registry.Encoding(quality=95)
    assert spec.deviation and "synthe" in spec.deviation.lower()
    accepted = inspect.signature(drawing.pencil_drawing).parameters
    for name in ("drawing", "drawing_pattern_i", "drawing_pattern_ii", "drawing_pattern_iii", "drawing_pattern_iv"):
        spec = registry.get(name)
        assert set(spec.params) <= set(accepted)
        assert spec.load_fn() is drawing.pencil_drawing
    assert registry.get("drawing_pattern_i").params["pattern"] == "drawing-pattern-I.jpg"
    assert registry.WEIGHTS in registry.get("drawing_pattern_iv").needs
    assert "drawing_pattern_i" not in registry.expand(["all-cpu"])


# ---- patterns -------------------------------------------------------------------------------------


def test_published_patterns_found_through_environment(monkeypatch):
    _pattern("I")
    monkeypatch.setenv(drawing.PATTERN_DIR_ENV, str(PATTERNS))
    img = SMALL_IMAGES["chelsea"]()
    outs = {}
    for spec_name in ("drawing_pattern_i", "drawing_pattern_iii", "drawing_pattern_iv"):
        if not PATTERN_FILES[spec_name.rsplit("_", 1)[1].upper()].is_file():
            continue
        outs[spec_name] = drawing.pencil_drawing(img, None, **registry.get(spec_name).params)
        assert outs[spec_name].shape == img.shape
    values = list(outs.values())
    assert all(not np.array_equal(values[0], v) for v in values[1:])


def test_missing_pattern_says_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv(drawing.PATTERN_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="SHIFT_HUB_DRAWING_PATTERNS"):
        drawing.pencil_drawing(SMALL_IMAGES["noise_8x8"](), None, pattern="drawing-pattern-II.jpg")


def test_synthetic_pattern_is_fixed_and_pencil_like():
    a = drawing.synthetic_pattern()
    drawing.synthetic_pattern.cache_clear()
    b = drawing.synthetic_pattern()
    np.testing.assert_array_equal(a, b)
    cfg = drawing.SYNTHETIC_TEXTURE
    assert a.shape == (cfg["height"], cfg["width"])
    assert abs(a.mean() - cfg["mean"]) < 0.01 and abs(a.std() - cfg["std"]) < 0.01
    assert 0 < a.min() and a.max() < 1


# ---- behaviour ------------------------------------------------------------------------------------


def test_deterministic_and_ignores_rng():
    img = SMALL_IMAGES["coffee"]()
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    a = drawing.pencil_drawing(img, rng)
    assert rng.bit_generator.state == state
    np.testing.assert_array_equal(a, drawing.pencil_drawing(img, np.random.default_rng(6)))


def test_keeps_chroma_redraws_luma():
    img = SMALL_IMAGES["chelsea"]()
    out = drawing.pencil_drawing(img, None)
    # grey in, grey out (U = V = 0 survive)
    grey = SMALL_IMAGES["camera_grey"]()
    g = drawing.pencil_drawing(grey, None).astype(int)
    assert np.abs(g[..., 0] - g[..., 1]).max() <= 1 and np.abs(g[..., 1] - g[..., 2]).max() <= 1
    for channel in (1, 2):  # U and V of the output follow the input's
        u_out, u_in = color.rgb2yuv(out)[..., channel].ravel(), color.rgb2yuv(img)[..., channel].ravel()
        assert np.corrcoef(u_out, u_in)[0, 1] > 0.9


def test_paper_smoothness_option():
    img = SMALL_IMAGES["chelsea"]()
    port = drawing.pencil_drawing(img, None)
    paper = drawing.pencil_drawing(img, None, smoothness="paper")
    assert paper.shape == port.shape and not np.array_equal(port, paper)
    with pytest.raises(ValueError):
        drawing.pencil_drawing(img, None, smoothness="nope")


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((8, 8, 3), np.uint8),
        np.full((8, 8, 3), 255, np.uint8),
        np.full((20, 31, 3), 77, np.uint8),
        np.random.default_rng(0).integers(0, 256, (9, 8), dtype=np.uint8),  # 2-D grey
        np.random.default_rng(1).integers(0, 256, (8, 200, 3), dtype=np.uint8),
    ],
    ids=["black", "white", "flat", "grey2d", "sliver"],
)
def test_degenerate_inputs(img):
    out = drawing.pencil_drawing(img, None)
    assert out.dtype == np.uint8 and out.shape == (*img.shape[:2], 3)


def test_large_image():
    img = cv2.resize(data.coffee(), (1500, 1000), interpolation=cv2.INTER_CUBIC)
    out = drawing.pencil_drawing(img, None)
    assert out.shape == img.shape and 40 < out.mean() < 230

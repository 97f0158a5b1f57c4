"""3D Common Corruptions' image-space corruptions (Kar et al., CVPR 2022) as pure functions `fn(image, rng, severity)`.

These are the three corruptions of 3DCC that need no depth map (`create_3dcc/create_non3d.py` in
EPFL-VILAB/3DCommonCorruptions): colour quantisation, ISO noise and low light. The tables below are that
script's, index severity - 1; the depth-based 3DCC corruptions are not here.

Every step before the noise acts on each value alone, so it is computed once per input level (256 entries)
with the script's own float operations, in its order (each `/ 255.` and `* 255` it does), and looked up: the
same float64 values, not a re-derivation. The random draws keep their roles, order, shapes and laws: first a
Poisson photon count for every value, then additive Gaussian read noise, from `rng` instead of the global
`np.random` stream. Results are cast with truncation (`np.uint8` of a float in [0, 255]), as the script does.
"""
from __future__ import annotations

import cv2
import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)

# ---- parameter tables (create_non3d.py), index severity - 1 ---------------------------------------

COLOR_QUANT_BITS = tuple(6 - s for s in SEVERITIES)  # bits kept per channel: PIL ImageOps.posterize(6 - severity)

ISO_PHOTONS = 25  # photons per unit intensity; ISO leaves photon noise alone, so every severity has 25
ISO_READ_NOISE = tuple(0.7 * s for s in (0.08, 0.12, 0.18, 0.26, 0.38))  # std on [0, 1]: electronic noise

LOW_LIGHT_CEILING = (0.60, 0.50, 0.40, 0.30, 0.20)  # imadjust maps the image's [min, max] to [0, ceiling]
LOW_LIGHT_GAMMA = 2.0
# low_light then adds the script's Poisson-Gaussian noise at its severity 3, whatever the low-light severity
LOW_LIGHT_PHOTONS = 10 * (60, 25, 12, 5, 3)[3 - 1]  # 120 photons per unit intensity
LOW_LIGHT_READ_NOISE = 0.1 * (0.08, 0.12, 0.18, 0.26, 0.38)[3 - 1]  # std 0.018 on [0, 1]

_LEVELS = np.arange(256) / 255.0  # each 8-bit level as the script's `np.array(x) / 255.` makes it


# ---- the shared noise step ------------------------------------------------------------------------

def _after_photons(photons: int) -> np.ndarray:
    """Per photon count k (capped at `photons`), the script's `clip(k / photons, 0, 1) * 255` then `/ 255.`."""
    counts = np.arange(photons + 1)
    return (np.clip(counts / photons, 0, 1) * 255) / 255.0


_AFTER_PHOTONS = {n: _after_photons(n) for n in (ISO_PHOTONS, LOW_LIGHT_PHOTONS)}


def _per_value(table: np.ndarray, image: np.ndarray) -> np.ndarray:
    """table[image] for a 256-entry float64 table (OpenCV's LUT: the same values, several times faster)."""
    return cv2.LUT(np.ascontiguousarray(image, dtype=np.uint8), table)


def _photon_and_read_noise(rate: np.ndarray, rng, photons: int, read_std: float) -> np.ndarray:
    """Poisson counts at `rate` (= value x photons, per value), then Gaussian noise of `read_std`, clipped to
    [0, 1] and truncated to 8 bits: the script's `poisson_gaussian_noise` / `iso_noise` arithmetic."""
    counts = rng.poisson(rate)
    np.minimum(counts, photons, out=counts)  # counts above `photons` all clip to 1
    noisy = rng.normal(0.0, read_std, counts.shape)
    noisy += _AFTER_PHOTONS[photons].take(counts)
    np.clip(noisy, 0, 1, out=noisy)
    noisy *= 255
    return noisy.astype(np.uint8)


# ---- the corruptions ----------------------------------------------------------------------------

def color_quant(image, rng, severity: int) -> np.ndarray:
    """PIL's posterize: keep the top 6 - severity bits of every value (deterministic; `rng` is unused)."""
    bits = COLOR_QUANT_BITS[severity - 1]
    return np.bitwise_and(image, np.uint8((0xFF << (8 - bits)) & 0xFF))


def iso_noise(image, rng, severity: int) -> np.ndarray:
    rate = _per_value(_LEVELS * ISO_PHOTONS, image)
    return _photon_and_read_noise(rate, rng, ISO_PHOTONS, ISO_READ_NOISE[severity - 1])


def low_light_levels(low: int, high: int, severity: int) -> np.ndarray:
    """Per 8-bit level, the script's `imadjust(x, x.min(), x.max(), 0, c, gamma=2) * 255` for an image whose
    extreme levels are `low` and `high`. A constant image (low == high), where the script divides by zero and
    fails, maps to 0: black before the noise."""
    c = LOW_LIGHT_CEILING[severity - 1]
    a, b = _LEVELS[low], _LEVELS[high]
    if b == a:
        return np.zeros(256)
    return ((((_LEVELS - a) / (b - a)) ** LOW_LIGHT_GAMMA) * (c - 0) + 0) * 255


def low_light(image, rng, severity: int) -> np.ndarray:
    image = np.asarray(image, dtype=np.uint8)
    levels = low_light_levels(int(image.min()), int(image.max()), severity)
    rate = _per_value((levels / 255.0) * LOW_LIGHT_PHOTONS, image)
    return _photon_and_read_noise(rate, rng, LOW_LIGHT_PHOTONS, LOW_LIGHT_READ_NOISE)

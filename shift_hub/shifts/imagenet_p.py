"""ImageNet-P (Hendrycks & Dietterich, ICLR 2019): short sequences of small, smooth perturbations.

Each function takes the image resized to shorter side 256 (the original's `trn.Resize(256)`; the registry's
geometry), a generator and the sequence's parameters, and returns the frames as 224x224 uint8 arrays, as
`ImageNet-P/create_p/make_imagenet_p.py` made them before ffmpeg: the geometric ones (translate, rotate, tilt,
scale, zoom_blur) move the 256 image and then center-crop, so the borders come from outside the crop as in the
original; the others work on the crop. The noise configs draw frame i from its own generator, a child of
the image's (`_frame_rngs`), so a frame depends on (seed, config, image id, frame) only; snow and spatter draw
their one layer per sequence from the image's generator, as the original drew it once per image. Frames are
stored losslessly: the original's x264 videos are not reproduced.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .. import imaging
from ..registry import Geometry
from .corruptions import (_SPATTER_EMBOSS, _clipped_zoom, _gaussian, _hsv_to_rgb, _motion_blur, _rgb_to_hsv,
                          _unit_to_uint8)

CROP = 224
FRAMES = 31  # every sequence but translate
TRANSLATE_FRAMES = 41
_CROP = Geometry(center_crop=CROP)


def crop(image: np.ndarray) -> np.ndarray:
    """torchvision's CenterCrop(224), as every frame of the original ends."""
    return imaging.apply_geometry(np.asarray(image), _CROP)


def _frame_rngs(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    """One generator per frame: children of a seed drawn from the image's generator, so frame i's draws
    depend on (seed, config, image id, i) alone (SeedSequence.spawn, in every NumPy the package supports)."""
    children = np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64).tolist()).spawn(count)
    return [np.random.Generator(np.random.PCG64(child)) for child in children]


def _to_unit32(image: np.ndarray) -> np.ndarray:
    """torchvision's ToTensor: bytes / 255 in float32."""
    return np.asarray(image, dtype=np.float32) / np.float32(255)


def _unit32_to_uint8(x: np.ndarray) -> np.ndarray:
    """torchvision's ToPILImage on a float tensor: times 255, truncated to bytes."""
    x = x * np.float32(255)
    return x.astype(np.uint8)


def _old_torchvision_affine(image: np.ndarray, angle: float = 0.0, translate=(0, 0), scale: float = 1.0,
                            shear: float = 0.0, resample=Image.NEAREST) -> np.ndarray:
    """torchvision (0.2-0.4)'s `functional.affine` on a PIL image, as the original called it: the inverse
    map of a clockwise rotation by `angle` degrees, a shear by `shear` degrees and a zoom by `scale` about the
    centre (w/2 + 0.5, h/2 + 0.5), then a shift by `translate` px, sampled by PIL with black outside. The
    coefficients are computed in that version's order (inverse rotation-shear over its determinant)."""
    h, w = image.shape[:2]
    cx, cy = w * 0.5 + 0.5, h * 0.5 + 0.5
    a, s = math.radians(angle), math.radians(shear)
    det = math.cos(a + s) * math.cos(a) + math.sin(a + s) * math.sin(a)
    factor = (1.0 / scale) / det
    m = [factor * v for v in (math.cos(a + s), math.sin(a + s), 0.0, -math.sin(a), math.cos(a), 0.0)]
    tx, ty = -cx - translate[0], -cy - translate[1]
    m[2] = m[0] * tx + m[1] * ty + cx
    m[5] = m[3] * tx + m[4] * ty + cy
    out = Image.fromarray(np.ascontiguousarray(image)).transform((w, h), Image.AFFINE, m, resample)
    return np.asarray(out)


def _tilt_matrix(h: int, w: int, degrees: float) -> np.ndarray:
    """The original's homography: centre the image, rotate it about x then y by `degrees` (RX @ RY), push it
    f = the diagonal away and project back with focal length f."""
    t = math.radians(degrees)
    f = math.hypot(w, h)
    c, s = math.cos(t), math.sin(t)
    to_centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]], dtype=np.float64)
    about_x = np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]], dtype=np.float64)
    about_y = np.array([[c, 0, -s, 0], [0, 1, 0, 0], [s, 0, c, 0], [0, 0, 0, 1]], dtype=np.float64)
    away = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]], dtype=np.float64)
    project = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]], dtype=np.float64)
    return project @ away @ about_x @ about_y @ to_centre


# ---- the noise sequences: frame 0 the crop, each later frame fresh noise on it --------------------------

def gaussian_noise(image, rng, sigma: float) -> list[np.ndarray]:
    """Frame i > 0: clamp(x + sigma * N(0, 1), 0, 1) on ToTensor's x, back through ToPILImage."""
    clean = crop(image)
    x = _to_unit32(clean)
    frames = [clean]
    for frame_rng in _frame_rngs(rng, FRAMES)[1:]:
        noisy = frame_rng.standard_normal(x.shape, dtype=np.float32)
        noisy *= np.float32(sigma)
        noisy += x
        frames.append(_unit32_to_uint8(np.clip(noisy, 0, 1, out=noisy)))
    return frames


def shot_noise(image, rng, rate: float) -> list[np.ndarray]:
    """Frame i > 0: Poisson(x * rate) / rate, clipped, on x = bytes / 255."""
    return _noise_sequence(image, rng, lambda x, r: r.poisson(x * rate) / float(rate))


def _noise_sequence(image, rng, noisy) -> list[np.ndarray]:
    """Frame 0 the crop; frame i > 0 `noisy(x, its own generator)` on x = bytes / 255, clipped to bytes."""
    clean = crop(image)
    x = np.asarray(clean, dtype=np.float64) / 255.0
    return [clean] + [_unit_to_uint8(noisy(x, frame_rng)) for frame_rng in _frame_rngs(rng, FRAMES)[1:]]


# ---- the deterministic sequences ------------------------------------------------------------------------

def brightness(image, rng, percent: int) -> list[np.ndarray]:
    """Frame i: the crop's HSV value plus (i - 15) * percent / 100, clipped (skimage's rgb2hsv/hsv2rgb,
    truncated); computed as the original wrote it, so the float offsets are its own."""
    clean = crop(image)
    frames = []
    for i in range(FRAMES):
        hue, sat, value = _rgb_to_hsv(clean)
        value += (i - 15) * percent / 100.0
        np.clip(value, 0, 1, out=value)
        frames.append(_unit_to_uint8(_hsv_to_rgb(hue, sat, value).reshape(clean.shape)))
    return frames


def translate(image, rng, pixels: int) -> list[np.ndarray]:
    """Frame i of 2 * pixels + 1: the 256 image shifted right by i - pixels px (nearest), then cropped."""
    return [crop(_old_torchvision_affine(image, translate=(i - pixels, 0))) for i in range(2 * pixels + 1)]


def rotate(image, rng, degrees: int) -> list[np.ndarray]:
    """Frame i: the 256 image rotated clockwise by i - 15 degrees (bilinear), then cropped."""
    return [crop(_old_torchvision_affine(image, angle=i - degrees, resample=Image.BILINEAR))
            for i in range(2 * degrees + 1)]


def tilt(image, rng, degrees: int) -> list[np.ndarray]:
    """Frame i: the 256 image tilted by i - 15 degrees about both axes (cv2.warpPerspective), then cropped."""
    import cv2

    x = np.ascontiguousarray(image)
    h, w = x.shape[:2]
    return [crop(cv2.warpPerspective(x, _tilt_matrix(h, w, i - degrees), (w, h))) for i in range(2 * degrees + 1)]


def scale(image, rng, start: float, step: float) -> list[np.ndarray]:
    """Frame i: the 256 image zoomed by (i * 2.5 + 40) / 100 about its centre (bilinear), then cropped."""
    return [crop(_old_torchvision_affine(image, scale=(i * step + start) / 100.0, resample=Image.BILINEAR))
            for i in range(FRAMES)]


def zoom_blur(image, rng, step: float) -> list[np.ndarray]:
    """Frame i: the mean of the crops of the 256 image zoomed by 1 + step * j for j = 0..i (bilinear), in
    float32 as ToTensor summed them."""
    clean = crop(image)
    total = _to_unit32(clean)
    frames = [clean]
    for i in range(1, FRAMES):
        zoomed = crop(_old_torchvision_affine(image, scale=1 + step * i, resample=Image.BILINEAR))
        total += _to_unit32(zoomed)
        frames.append(_unit32_to_uint8(total / np.float32(i + 1)))
    return frames


def motion_blur(image, rng, radius: int, sigma: float) -> list[np.ndarray]:
    """Frame i: ImageMagick's motion blur of the crop at angle (i - 30) * 4 (our Wand-equivalent blur)."""
    clean = crop(image)
    return [_motion_blur(clean, radius, sigma, (i - 30) * 4) for i in range(FRAMES)]


def snow(image, rng, radius: int, sigma: float) -> list[np.ndarray]:
    """One snow layer per sequence (N(0.05, 0.3), zoomed 3x, below 0.5 dropped, as 8 bits), motion-blurred at
    angle i * 4 - 150 in frame i over the whitened crop, with its 180-degree turn."""
    import cv2

    x = crop(image).astype(np.float64) / 255.0
    h, w = x.shape[:2]
    layer = _clipped_zoom(rng.normal(0.05, 0.3, (h, w)), 3)
    layer[layer < 0.5] = 0
    flakes = (np.clip(layer, 0, 1) * 255).astype(np.uint8)
    grey = cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY)[..., None]
    base = 0.85 * x + (1 - 0.85) * np.maximum(x, grey * 1.5 + 0.5)
    frames = []
    for i in range(FRAMES):
        moving = (_motion_blur(flakes, radius, sigma, i * 4 - 150) / 255.0)[..., None]
        frames.append(_unit_to_uint8(base + moving + np.rot90(moving, k=2)))
    return frames


# ---- the validation sequences (the original's "Validation Data") -----------------------------------------

def speckle_noise(image, rng, scale: float) -> list[np.ndarray]:
    """Frame 0 the crop, frame i > 0: x + x * N(0, scale), clipped, on x = bytes / 255."""
    return _noise_sequence(image, rng, lambda x, r: x + x * r.normal(0.0, scale, x.shape))


def gaussian_blur(image, rng, start: float, step: float) -> list[np.ndarray]:
    """Frame i: the crop blurred with sigma start + step * i (skimage's gaussian, truncate 6)."""
    x = np.asarray(crop(image), dtype=np.float64) / 255.0
    return [_unit_to_uint8(_gaussian(x, start + step * i, truncate=6.0)) for i in range(FRAMES)]


def shear(image, rng, degrees: int) -> list[np.ndarray]:
    """Frame i: the 256 image sheared by i - 15 degrees (bilinear, torchvision 0.2's affine), then cropped."""
    return [crop(_old_torchvision_affine(image, shear=i - degrees, resample=Image.BILINEAR))
            for i in range(2 * degrees + 1)]


_WATER = (np.array([175, 238, 238]) / 255.0).astype(np.float32)  # pale turquoise, in the crop's channel order
_DRIP = np.array([0.05, 0.1, 0.15, 0.7])


def _water(liquid: np.ndarray) -> np.ndarray:
    """The embossed water mask of a liquid layer, as ImageNet-C's water spatter makes it, peak-scaled to 0.6."""
    from .corruptions import water_mask

    return water_mask(liquid, 0.6)


def spatter(image, rng, loc: float, scale: float, sigma: float, threshold: float) -> list[np.ndarray]:
    """One liquid layer per sequence (N(loc, scale), blurred, below `threshold` dropped) drawn as water on the
    crop; after each frame the layer drips down one step (each column convolved with 0.05, 0.1, 0.15, 0.7)."""
    x = np.asarray(crop(image), dtype=np.float32) / np.float32(255)
    liquid = _gaussian(rng.normal(loc, scale, x.shape[:2]), sigma)
    liquid[liquid < threshold] = 0
    frames = []
    for _ in range(FRAMES):
        frames.append(_unit_to_uint8(x + _water(liquid)[..., None] * _WATER))
        liquid = np.stack([np.convolve(column, _DRIP, mode="same") for column in liquid.T], axis=1)
    return frames

"""ToonNet's 2-D stylisation filters (Zhou et al., VRCAI 2018): hand-drawing and Inputs Unified Stylization.

ToonNet describes both filters in prose and publishes neither code nor parameters, so every number
below is our choice (tables at the top; the registry's cards say so):

* `toon_handdrawn`: segment by colour and location (SLIC superpixels in Lab + x, y), fill each
  segment with a greyscale hatching texture rotated by a random angle, shade it by the pixel's
  lightness, draw the segment borders as pencil outlines, and map the colour back (the segment's
  mean chroma on the pencil luminance).
* `toon_ius`: mean-shift filtering, HSV masks for background (low saturation, high value) and
  outlines (low value), then region growing: the most saturated unassigned pixel seeds a
  breadth-first flood fill over 4-neighbours of close hue (close value for grey pixels) or light
  unmasked pixels, and the region takes the seed's colour; background turns white, outlines black.

ToonNet's 3-D routes (cel-shaded renders of 3-D models, MagicToon) are out of scope.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from ..imaging import as_rgb

# ---- parameter tables (ToonNet publishes none: these are ours) ---------------------------------

HANDDRAWN = dict(
    segment_area=900,  # pixels per SLIC superpixel (so the count scales with the image)
    compactness=12.0,  # SLIC colour-vs-location trade-off
    max_segments=4000,  # bounds the work on huge images
    segment_max_side=1024,  # segment a copy at most this long side (labels scaled back, nearest)
    outline_strength=0.35,  # how dark segment borders are drawn (0 = none)
    chroma_strength=1.0,  # 1 = the segment's mean chroma, 0 = grey pencil
)
OUTLINE_FULL_STEP = 0.25  # colour step (0..1, max over RGB) across a border that gets the full outline
HATCH_TEXTURE = dict(seed=2018, size=256, strokes=900, length=(30, 140), angle_spread=4.0, mean=0.72, std=0.11)

IUS = dict(
    work_max_side=1024,  # filter at most this long side, then scale the result back (nearest)
    spatial_radius=8,  # mean-shift window (pixels)
    colour_radius=24,  # mean-shift colour window (8-bit units)
    background_max_saturation=40,  # background: saturation below this (of 255) ...
    background_min_value=205,  # ... and value above this
    outline_max_value=48,  # outline: value below this
    chromatic_min_saturation=40,  # below: a grey pixel, grown by value instead of hue
    hue_tolerance=6,  # OpenCV hue units (0..179, so 12 degrees)
    value_band=40,  # and, for colour seeds, value within this of the seed's: keeps light/shade apart
    value_tolerance=28,  # for grey seeds
    light_min_value=190,  # unmasked pixels this light join any neighbouring region
    max_regions=600,  # leftover pixels keep their mean-shift colour
    region_colour="mean",  # "mean": the region's mean filtered colour; "seed": the seed's (vivid)
)


# ---- hand-drawn -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def hatch_texture() -> np.ndarray:
    """A tileable greyscale pencil hatching (strokes along x), float32 in [0, 1]; fixed seed."""
    cfg = HATCH_TEXTURE
    gen = np.random.Generator(np.random.PCG64(cfg["seed"]))
    n = cfg["size"]
    graphite = np.zeros((n, n), dtype=np.float32)
    lo, hi = cfg["length"]
    for _ in range(cfg["strokes"]):
        angle = np.deg2rad(cfg["angle_spread"] * gen.standard_normal())
        length = gen.uniform(lo, hi)
        x, y = gen.uniform(0, n), gen.uniform(0, n)
        dx, dy = length * np.cos(angle), length * np.sin(angle)
        weight = float(gen.uniform(0.3, 1.0))
        for ox in (-n, 0, n):  # draw the wrapped copies so the texture tiles
            for oy in (-n, 0, n):
                p0 = (int(round((x + ox) * 16)), int(round((y + oy) * 16)))
                p1 = (int(round((x + ox + dx) * 16)), int(round((y + oy + dy) * 16)))
                cv2.line(graphite, p0, p1, weight, 1, cv2.LINE_AA, 4)
    grain = gen.standard_normal((n, n)).astype(np.float32)
    texture = -graphite + 0.15 * grain
    texture = (texture - texture.mean()) / texture.std()
    texture = np.clip(cfg["mean"] + cfg["std"] * texture, 0.02, 1.0).astype(np.float32)
    texture.setflags(write=False)
    return texture


def _rotated_patch(texture: np.ndarray, angle: float, offset: tuple[float, float], box: tuple[slice, slice]) -> np.ndarray:
    """The texture rotated by `angle` and shifted by `offset`, sampled over the image box (wrapping)."""
    ys, xs = box
    c, s = np.cos(angle), np.sin(angle)
    x0, y0 = xs.start, ys.start
    m = np.array([[c, -s, c * x0 - s * y0 + offset[0]], [s, c, s * x0 + c * y0 + offset[1]]])
    return cv2.warpAffine(
        texture,
        m,
        (xs.stop - xs.start, ys.stop - ys.start),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_WRAP,
    )


def toon_handdrawn(
    image: np.ndarray,
    rng: np.random.Generator,
    segment_area: int = HANDDRAWN["segment_area"],
    compactness: float = HANDDRAWN["compactness"],
    max_segments: int = HANDDRAWN["max_segments"],
    segment_max_side: int = HANDDRAWN["segment_max_side"],
    outline_strength: float = HANDDRAWN["outline_strength"],
    chroma_strength: float = HANDDRAWN["chroma_strength"],
) -> np.ndarray:
    """Colour pencil 'hand drawing': one randomly rotated hatching per colour/location segment.

    Segments, their mean colours and their hatching are whole-image; the rest is local, so it runs in
    bands of rows (drawing's `_bands`) with a margin that makes each band's rows those of a whole-image
    run: memory stays bounded at any size, and an image up to STRIP_PIXELS is one band.
    """
    from scipy import ndimage
    from skimage.segmentation import slic

    from .drawing import _bands, _YuvRows

    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    n_segments = int(np.clip(round(h * w / segment_area), 1, max_segments))
    scale = min(1.0, segment_max_side / max(h, w))
    work = rgb
    if scale < 1.0:
        work = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    labels = slic(work, n_segments=n_segments, compactness=compactness, sigma=1.0, start_label=0, channel_axis=-1)
    if scale < 1.0:
        labels = cv2.resize(labels.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    count = int(labels.max()) + 1
    bands, yuv = _bands(h, w), _YuvRows(rgb)

    # per segment: pixel count, mean U, V and RGB; bounding box
    sums = np.zeros((5, count))  # U, V, R, G, B
    boxes: list = [None] * count
    for a, b in bands:
        flat = labels[a:b].ravel()
        for i, channel in enumerate((yuv.rows(a, b)[..., 1], yuv.rows(a, b)[..., 2])):
            sums[i] += np.bincount(flat, channel.ravel(), minlength=count)
        if outline_strength > 0:
            for c in range(3):
                sums[2 + c] += np.bincount(flat, rgb[a:b, :, c].ravel().astype(np.float64), minlength=count)
        for index, box in enumerate(ndimage.find_objects(labels[a:b] + 1, max_label=count)):
            if box is not None:  # the union of the segment's boxes over the bands so far
                ys, xs = box
                if boxes[index] is None:
                    boxes[index] = (slice(ys.start + a, ys.stop + a), xs)
                else:
                    seen_ys, seen_xs = boxes[index]
                    boxes[index] = (slice(seen_ys.start, ys.stop + a),
                                    slice(min(seen_xs.start, xs.start), max(seen_xs.stop, xs.stop)))
    sizes = np.maximum(np.bincount(labels.ravel(), minlength=count), 1)
    mean_u, mean_v = sums[0] / sizes, sums[1] / sizes
    mean_rgb = np.stack([sums[2 + c] / sizes for c in range(3)], -1)

    # Each segment's hatching: its own random angle and phase, drawn in label order.
    texture = hatch_texture()
    n = texture.shape[0]
    angles = rng.uniform(0.0, np.pi, size=count)
    offsets = rng.uniform(0.0, n, size=(count, 2))
    hatching = np.ones((h, w), dtype=np.float32)
    for index, box in enumerate(boxes):
        if box is None:
            continue
        inside = labels[box] == index
        patch = _rotated_patch(texture, angles[index], (offsets[index, 0], offsets[index, 1]), box)
        hatching[box][inside] = patch[inside]

    out = np.empty((h, w, 3), dtype=np.uint8)
    for a, b in bands:
        top, bottom = max(0, a - HANDDRAWN_MARGIN), min(h, b + HANDDRAWN_MARGIN)
        core = slice(a - top, b - top)
        # Tone: raise the hatching to the power that makes its mean equal the pixel's lightness, so
        # light areas stay paper-white and dark ones fill with dense graphite.
        light = cv2.GaussianBlur(yuv.rows(top, bottom)[..., 0], (0, 0), 1.0)[core]
        gamma = np.log(np.clip(light, 0.02, 0.995)) / np.log(HATCH_TEXTURE["mean"])
        pencil = np.power(hatching[a:b].astype(np.float64), gamma)
        if outline_strength > 0:
            pencil *= 1.0 - outline_strength * np.clip(_outline(labels[top:bottom], mean_rgb)[core] * 2.0, 0.0, 1.0)
        band = labels[a:b]
        yuv_band = np.stack([pencil, chroma_strength * mean_u[band], chroma_strength * mean_v[band]], axis=-1)
        out[a:b] = np.round(np.clip(_yuv2rgb(yuv_band), 0.0, 1.0) * 255.0).astype(np.uint8)
    return out


HANDDRAWN_MARGIN = 8  # rows beyond a band its pixels depend on: 3x3 outline, Gaussians of radius <= 4


def _outline(labels: np.ndarray, mean_rgb: np.ndarray) -> np.ndarray:
    """Segment borders weighted by the colour step across them, so flat areas split into several segments
    (sky, walls) are not gridded with lines; slightly blurred."""
    from skimage.segmentation import find_boundaries

    painted = mean_rgb[labels].astype(np.float32) / 255.0
    kernel = np.ones((3, 3), np.uint8)
    step = (cv2.dilate(painted, kernel) - cv2.erode(painted, kernel)).max(axis=2)
    border = find_boundaries(labels, mode="inner") * np.clip(step / OUTLINE_FULL_STEP, 0.0, 1.0)
    return cv2.GaussianBlur(border.astype(np.float32), (0, 0), 0.6)


def _yuv2rgb(yuv: np.ndarray) -> np.ndarray:
    from skimage import color

    return color.yuv2rgb(yuv)


# ---- Inputs Unified Stylization -------------------------------------------------------------------


def _hue_lut(hue: int, tolerance: int) -> np.ndarray:
    """255 where an OpenCV hue (0..179, circular) lies within `tolerance` of `hue`."""
    h = np.arange(256)
    dist = np.abs(h - hue) % 180
    dist = np.minimum(dist, 180 - dist)
    return np.where((dist <= tolerance) & (h < 180), 255, 0).astype(np.uint8)


def _value_lut(value: int, tolerance: int) -> np.ndarray:
    return np.where(np.abs(np.arange(256) - value) <= tolerance, 255, 0).astype(np.uint8)


def toon_ius(
    image: np.ndarray,
    rng: np.random.Generator | None = None,
    work_max_side: int = IUS["work_max_side"],
    spatial_radius: int = IUS["spatial_radius"],
    colour_radius: int = IUS["colour_radius"],
    background_max_saturation: int = IUS["background_max_saturation"],
    background_min_value: int = IUS["background_min_value"],
    outline_max_value: int = IUS["outline_max_value"],
    chromatic_min_saturation: int = IUS["chromatic_min_saturation"],
    hue_tolerance: int = IUS["hue_tolerance"],
    value_band: int = IUS["value_band"],
    value_tolerance: int = IUS["value_tolerance"],
    light_min_value: int = IUS["light_min_value"],
    max_regions: int = IUS["max_regions"],
    region_colour: str = IUS["region_colour"],
) -> np.ndarray:
    """Flat-colour toon image: white background, black outlines, hue regions grown from vivid seeds.

    Deterministic (`rng` is not used): seeds are taken in order of saturation, ties in raster order.
    """
    if region_colour not in ("mean", "seed"):
        raise ValueError(f"region_colour must be 'mean' or 'seed', not {region_colour!r}")
    rgb = as_rgb(image)
    full_h, full_w = rgb.shape[:2]
    scale = min(1.0, work_max_side / max(full_h, full_w))
    if scale < 1.0:
        size = (max(1, round(full_w * scale)), max(1, round(full_h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]

    smooth = cv2.pyrMeanShiftFiltering(rgb, spatial_radius, colour_radius, maxLevel=1)
    hsv = cv2.cvtColor(smooth, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    background = (sat < background_max_saturation) & (val > background_min_value)
    outline = val < outline_max_value
    masked = background | outline
    chromatic = sat >= chromatic_min_saturation
    light = ((val >= light_min_value) & ~masked).astype(np.uint8) * 255
    chromatic_u8 = chromatic.astype(np.uint8) * 255

    out = smooth.copy()
    available = (~masked).astype(np.uint8) * 255
    order = np.argsort(-sat.ravel(), kind="stable")
    order = order[~masked.ravel()[order]]
    cursor, regions = 0, 0
    flood_mask = np.zeros((h + 2, w + 2), dtype=np.uint8)
    while cursor < order.size and regions < max_regions:
        seed = int(order[cursor])
        cursor += 1
        sy, sx = divmod(seed, w)
        if not available[sy, sx]:
            continue
        if chromatic[sy, sx]:
            close = cv2.bitwise_and(cv2.LUT(hue, _hue_lut(int(hue[sy, sx]), hue_tolerance)), chromatic_u8)
            close = cv2.bitwise_and(close, cv2.LUT(val, _value_lut(int(val[sy, sx]), value_band)))
        else:
            close = cv2.bitwise_and(cv2.LUT(val, _value_lut(int(val[sy, sx]), value_tolerance)), ~chromatic_u8)
        candidates = cv2.bitwise_and(cv2.bitwise_or(close, light), available)
        candidates[sy, sx] = 255
        flood_mask[:] = 0
        _, _, _, (x, y, bw, bh) = cv2.floodFill(
            candidates, flood_mask, (sx, sy), 0, 0, 0, 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
        )
        region = flood_mask[y + 1 : y + 1 + bh, x + 1 : x + 1 + bw].astype(bool)
        box = out[y : y + bh, x : x + bw]
        if region_colour == "seed":
            box[region] = smooth[sy, sx]
        else:
            box[region] = np.round(smooth[y : y + bh, x : x + bw][region].mean(axis=0)).astype(np.uint8)
        available[y : y + bh, x : x + bw][region] = 0
        regions += 1

    out[background] = 255
    out[outline] = 0
    if scale < 1.0:
        out = cv2.resize(out, (full_w, full_h), interpolation=cv2.INTER_NEAREST)
    return out

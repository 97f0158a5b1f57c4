"""ImageNet-W (Li et al., CVPR 2023, "A Whac-A-Mole Dilemma"): a watermark over the crop the model sees.

As imagenet-w's `AddWatermark`: the text 捷径捷径捷径 ("shortcut" three times) in white at opacity 0.5, anchored
at (0.01 w, 0.4 h), in Source Han Serif SC ExtraLight at 36 px for a 224 crop (62 / 82 / 84 px for 384 / 512 /
518, else int(side / 6.22)), alpha-composited over the image. The font ships inside the `imagenet-w` wheel:
`pip install 'shift-hub[watermark]'`, or pass any font file as `font`.

The text layer depends only on the parameters and the image size, so it is drawn once, by Pillow exactly as
the original draws it (ImageDraw.text on a transparent white RGBA layer), and cached. Each image is then
composited over the layer's bounding box with Pillow's integer `alpha_composite` arithmetic (7 extra bits,
rounded divisions by 255) restated in NumPy for an opaque image: the bytes `Image.alpha_composite` gives.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

TEXT = "捷径捷径捷径"
OPACITY = 0.5
X_POS, Y_POS = 0.01, 0.4  # the text's anchor, as fractions of the width and height
COLOR = (255, 255, 255)
FONT_FILE = "SourceHanSerifSC-ExtraLight.otf"  # inside the imagenet_w package's fonts/ folder
FONT_SIZES = {224: 36, 384: 62, 512: 82, 518: 84}  # imagenet-w's table, by crop side
FONT_SIZE_DIVISOR = 6.22  # any other side: int(side / 6.22)
EXTRA = "pip install 'shift-hub[watermark]'"
_PRECISION_BITS = 7  # Pillow's AlphaComposite.c


class Layer(NamedTuple):
    """The drawn text where its alpha is non-zero: rows top:bottom, columns left:right of the image."""

    top: int
    bottom: int
    left: int
    right: int
    rgb: np.ndarray  # (h, w, 3) uint32: the layer's colour
    alpha: np.ndarray  # (h, w, 1) uint32: the layer's alpha, 0-255


def font_size_for(side: int) -> int:
    """imagenet-w's font size for a crop of `side` pixels."""
    return FONT_SIZES.get(int(side), int(side / FONT_SIZE_DIVISOR))


def font_path(font: str | os.PathLike | None = None) -> Path:
    """The font file to draw with: `font` as given, else the one inside the installed imagenet-w package
    (found without importing it). FileNotFoundError in one line naming the fix when there is none."""
    if font is not None:
        path = Path(font).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"watermark font {str(font)!r} not found: pass an existing .otf/.ttf file with "
                                    f"--set font=PATH, or null for ImageNet-W's own font ({EXTRA})")
        return path
    spec = importlib.util.find_spec("imagenet_w")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "fonts" / FONT_FILE
        if path.is_file():
            return path
    where = "is not installed" if not folders else f"has no fonts/{FONT_FILE}"
    raise FileNotFoundError(f"the ImageNet-W font ({FONT_FILE}) ships in the imagenet-w package, which {where}: "
                            f"{EXTRA} (or pass a font file with --set font=PATH)")


def check_font(params: dict) -> None:
    """Registry preflight: the font is there and FreeType reads it, before any image is drawn."""
    _font(str(font_path(params.get("font")).resolve()), _font_size(params.get("font_size"), 224))


def _font_size(font_size: int | None, width: int) -> int:
    return int(font_size) if font_size else font_size_for(width)


@lru_cache(maxsize=8)
def _font(path: str, size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size)
    except (OSError, ValueError) as exc:
        raise OSError(f"watermark font {path!r} cannot be read by Pillow/FreeType ({exc}); pass another font "
                      f"with --set font=PATH, or null for ImageNet-W's own ({EXTRA})") from None


@lru_cache(maxsize=16)
def _layer(path: str, size: int, text: str, opacity: float, x_pos: float, y_pos: float, width: int,
           height: int) -> Layer | None:
    """The text drawn on a transparent white RGBA layer of the image's size, as the original draws it."""
    from PIL import Image, ImageDraw

    layer = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    ImageDraw.Draw(layer).text(xy=(x_pos * width, y_pos * height), text=text,
                               fill=(*COLOR, round(opacity * 255)), font=_font(path, size))
    drawn = np.asarray(layer)
    rows, cols = np.nonzero(drawn[..., 3])
    if rows.size == 0:
        return None
    top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    box = drawn[top:bottom, left:right].astype(np.uint32)
    rgb, alpha = box[..., :3].copy(), box[..., 3:].copy()
    rgb.setflags(write=False)
    alpha.setflags(write=False)
    return Layer(top, bottom, left, right, rgb, alpha)


def _composite(under: np.ndarray, layer: Layer) -> np.ndarray:
    """Pillow's alpha_composite(opaque image, layer) colours: with the image's alpha 255 its coefficients are
    exactly alpha << 7 and (255 - alpha) << 7, and a pixel where the layer's alpha is 0 keeps the image's."""
    dst = under.astype(np.uint32)
    total = (layer.rgb * layer.alpha + dst * (255 - layer.alpha)) << _PRECISION_BITS
    total += 0x80 << _PRECISION_BITS
    out = (((total >> 8) + total) >> 8) >> _PRECISION_BITS
    return np.where(layer.alpha == 0, dst, out).astype(np.uint8)


def watermark(image, rng, text: str = TEXT, opacity: float = OPACITY, x_pos: float = X_POS, y_pos: float = Y_POS,
              font_size: int | None = None, font: str | None = None) -> np.ndarray:
    """ImageNet-W's watermark over `image` (deterministic; `rng` is unused). `font_size` None: imagenet-w's size
    for the image's width; `font` None: imagenet-w's Source Han Serif SC ExtraLight."""
    image = np.asarray(image, dtype=np.uint8)
    height, width = image.shape[:2]
    layer = _layer(str(font_path(font).resolve()), _font_size(font_size, width), str(text), float(opacity),
                   float(x_pos), float(y_pos), width, height)
    out = image.copy()
    if layer is not None:
        box = out[layer.top:layer.bottom, layer.left:layer.right]
        box[...] = _composite(box, layer)
    return out

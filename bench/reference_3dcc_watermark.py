"""The originals of 3DCC's image-space corruptions and of ImageNet-W, restated step by step for the tests and
the bench; not part of the package.

3DCC (EPFL-VILAB/3DCommonCorruptions, create_3dcc/create_non3d.py): a PIL image in, the global np.random
stream, float64 arrays through the same divisions, clips and multiplications in the same order, `np.uint8`
of the result, a PIL image out. ImageNet-W (imagenet-w 1.0.0, AddWatermark): the image converted to RGBA, the
text drawn on a transparent white RGBA layer with ImageDraw, Image.alpha_composite, back to RGB. The font is
loaded once, as AddWatermark loads it in its constructor.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

READ_NOISE = [.08, .12, 0.18, 0.26, 0.38]  # the table both noise functions scale
PHOTONS = [60, 25, 12, 5, 3]
CEILINGS = [.60, .50, 0.40, 0.30, 0.20]


def iso_noise(image: Image.Image, severity: int = 1) -> Image.Image:
    photons = 25  # the same at every severity
    x = np.array(image) / 255.
    x = np.clip(np.random.poisson(x * photons) / photons, 0, 1) * 255
    std = 0.7 * READ_NOISE[severity - 1]
    x = np.array(x) / 255.
    x = np.clip(x + np.random.normal(size=x.shape, scale=std), 0, 1) * 255
    return Image.fromarray(np.uint8(x))


def poisson_gaussian_noise(x, severity: int = 1) -> Image.Image:
    photons = 10 * PHOTONS[severity - 1]
    x = np.array(x) / 255.
    x = np.clip(np.random.poisson(x * photons) / photons, 0, 1) * 255
    std = 0.1 * READ_NOISE[severity - 1]
    x = np.array(x) / 255.
    x = np.clip(x + np.random.normal(size=x.shape, scale=std), 0, 1) * 255
    return Image.fromarray(np.uint8(x))


def imadjust(x, low_in, high_in, low_out, high_out, gamma=1):
    """MATLAB's imadjust: [low_in, high_in] to [low_out, high_out] through a power curve."""
    return (((x - low_in) / (high_in - low_in)) ** gamma) * (high_out - low_out) + low_out


def low_light(image: Image.Image, severity: int = 1) -> Image.Image:
    c = CEILINGS[severity - 1]
    x = np.array(image) / 255.
    darker = imadjust(x, x.min(), x.max(), 0, c, gamma=2.) * 255
    return poisson_gaussian_noise(darker, severity=3)


def color_quant(image: Image.Image, severity: int = 1) -> Image.Image:
    return ImageOps.posterize(image, 6 - severity)


class Watermark:
    """ImageNet-W's transform on PIL images: the font loaded once, the text drawn on every call."""

    SIZES = {224: 36, 384: 62, 512: 82, 518: 84}

    def __init__(self, font_path: str, image_size: int = 224, text: str = "捷径捷径捷径", opacity: float = 0.5,
                 color=(255, 255, 255), x_pos: float = 0.01, y_pos: float = 0.4):
        size = self.SIZES.get(image_size, int(image_size / 6.22))
        self.font = ImageFont.truetype(font_path, size)
        self.text, self.opacity, self.color, self.x_pos, self.y_pos = text, opacity, color, x_pos, y_pos

    def __call__(self, image: Image.Image) -> Image.Image:
        base = image.convert("RGBA")
        width, height = base.size
        layer = Image.new("RGBA", base.size, (255, 255, 255, 0))
        ImageDraw.Draw(layer).text(xy=(self.x_pos * width, self.y_pos * height), text=self.text,
                                   fill=(*self.color, round(self.opacity * 255)), font=self.font)
        return Image.alpha_composite(base, layer).convert("RGB")

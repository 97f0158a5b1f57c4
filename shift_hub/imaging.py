"""Decoding any source image to RGB uint8, the per-config geometry, and the final encoding.

Bad input never stops a run: `decode` either converts (with a note saying what it did) or raises
`BadImage` with a reason the engine records for that image id.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from .registry import Encoding, Geometry

MIN_SIDE = 8  # below this no shift or resize is meaningful
MAX_PIXELS = 100_000_000  # larger is treated as a decompression bomb (ILSVRC's largest is far below)


class BadImage(ValueError):
    """An image that cannot be used; the message is the reason recorded in the card's statistics."""


def decode(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, str | None]:
    """RGB uint8 array and a note on any conversion (CMYK, grey, 16-bit, alpha, palette), or BadImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below decides
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise BadImage(f"{name}: {w}x{h} exceeds {MAX_PIXELS} pixels (decompression bomb guard)")
            img.load()
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"{name}: decompression bomb ({exc})") from None
    except OSError as exc:  # truncated, corrupt, not an image
        raise BadImage(f"{name}: cannot decode ({exc}); re-download or remove the file") from None
    except Exception as exc:  # PIL raises assorted errors on malformed headers
        raise BadImage(f"{name}: cannot decode ({type(exc).__name__}: {exc})") from None
    if min(img.size) < MIN_SIDE:
        raise BadImage(f"{name}: {img.size[0]}x{img.size[1]} is smaller than {MIN_SIDE} px on a side")
    return _to_rgb(img)


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, str | None]:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy(), None
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img)
        if mode == "F" or arr.max(initial=0) > 65535:
            arr = np.clip(arr, 0, None)
            arr = arr / max(float(arr.max()), 1.0) * 255.0
        elif arr.max(initial=0) > 255 or mode.startswith("I;16"):
            arr = arr / 257.0  # 16-bit to 8-bit
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), f"converted {mode} (high bit depth grey) to 8-bit RGB"
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "P+transparency"
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out = Image.alpha_composite(white, rgba).convert("RGB")
        return np.asarray(out, dtype=np.uint8).copy(), f"composited {mode} (alpha) over white"
    out = img.convert("RGB")
    return np.asarray(out, dtype=np.uint8).copy(), f"converted {mode} to RGB"


def as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 from grey (HxW, HxWx1) or RGBA input, for shifts also called outside the engine."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., :3], dtype=np.uint8)


def apply_geometry(arr: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Resize/crop as the original dataset did: torchvision Resize+CenterCrop, or the cartoon cap."""
    if geometry.max_shorter:
        import cv2

        h, w = arr.shape[:2]
        if min(h, w) > geometry.max_shorter:
            m = geometry.max_shorter  # White-box's resize_crop: the long side is int(m * long / short)
            size = (m, int(m * h / w)) if h > w else (int(m * w / h), m)  # (width, height)
            arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    if geometry.resize_shorter:
        h, w = arr.shape[:2]
        s = geometry.resize_shorter
        # torchvision.transforms.Resize(int): the long side is truncated, not rounded
        size = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
        if size != (w, h):
            arr = np.asarray(Image.fromarray(arr).resize(size, Image.BILINEAR))
    if geometry.center_crop:
        h, w = arr.shape[:2]
        c = geometry.center_crop
        if h < c or w < c:  # torchvision pads with zeros in this case
            pad = np.zeros((max(h, c), max(w, c), arr.shape[2]), dtype=arr.dtype)
            top, left = (pad.shape[0] - h) // 2, (pad.shape[1] - w) // 2
            pad[top : top + h, left : left + w] = arr
            arr, h, w = pad, pad.shape[0], pad.shape[1]
        top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
        arr = arr[top : top + c, left : left + c]
    if geometry.crop_multiple:
        m = geometry.crop_multiple
        h, w = arr.shape[:2]
        arr = arr[: max(m, h // m * m), : max(m, w // m * m)]
    return np.ascontiguousarray(arr)


def encode(arr: np.ndarray, encoding: Encoding) -> bytes:
    if arr.dtype != np.uint8:
        raise TypeError(f"a shift must return uint8, got {arr.dtype}")
    img = Image.fromarray(arr)
    buf = io.BytesIO()
    if encoding.format == "PNG":
        img.save(buf, format="PNG", optimize=False, compress_level=6)
    else:
        if img.mode == "RGBA":
            raise ValueError("RGBA output needs PNG encoding")
        img.save(buf, format="JPEG", quality=encoding.quality, optimize=encoding.optimize)
    return buf.getvalue()


def extension(encoding: Encoding) -> str:
    return "png" if encoding.format == "PNG" else "jpg"

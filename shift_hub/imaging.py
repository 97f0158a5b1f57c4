"""Decoding any source image to RGB uint8, the per-config geometry, and the final encoding.

Bad input never stops a run: `decode` either converts (with a note saying what it did) or raises
`BadImage` with a reason the engine records for that image id.
"""
from __future__ import annotations

import io
import re
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from .registry import Encoding, Geometry

MIN_SIDE = 8  # below this no shift or resize is meaningful
MAX_PIXELS = 100_000_000  # larger is treated as a decompression bomb (ILSVRC's largest is far below)


class BadImage(ValueError):
    """An image that cannot be used; the message is the reason recorded in the card's statistics.

    The engine stores each reason next to its image id, so a reason never repeats the id, and it is
    stable text (see `stable_reason`): two runs over the same files write the same bytes.
    """


# an object's repr (`<_io.BytesIO object at 0x7f...>`), a bare memory address, an absolute path
_OBJECT_REPR = re.compile(r"<[^<>]*? at 0x[0-9a-fA-F]+>")
_ADDRESS = re.compile(r"(?:\bat\s+)?\b0x[0-9a-fA-F]{6,}\b")
_ABS_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s'\"()<>:;,]+[/\\])+([^\s'\"()<>:;,/\\]+)")


def stable_reason(text: str) -> str:
    """`text` without what differs between two runs over the same files: object reprs and memory addresses
    are dropped, absolute paths (temporary or machine-specific folders) are cut to their last component."""
    text = _OBJECT_REPR.sub("", str(text))
    text = _ADDRESS.sub("", text)
    text = _ABS_PATH.sub(r"\1", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)  # brackets emptied by the above
    text = re.sub(r"\s+([;,.])", r"\1", text)  # the space a removed repr leaves before punctuation
    return re.sub(r"\s{2,}", " ", text).strip(" :")


def decode(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, str | None]:
    """RGB uint8 array and a note on any conversion (CMYK, grey, 16-bit, alpha, palette) or on an EXIF
    orientation left unapplied, or BadImage.

    `name` is accepted for callers' convenience but kept out of the reason: the engine records the reason
    next to the image id already, and the card and the CLI print both.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below decides
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise BadImage(f"decompression bomb: {w}x{h} exceeds {MAX_PIXELS} pixels")
            img.load()
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb: {stable_reason(exc)}") from None
    except UnidentifiedImageError:  # its message is "cannot identify image file <_io.BytesIO object at 0x...>"
        raise BadImage("cannot decode: not an image format Pillow recognises; re-download or remove the file") from None
    except OSError as exc:  # truncated, corrupt
        raise BadImage(f"cannot decode: {stable_reason(exc) or type(exc).__name__}; "
                       "re-download or remove the file") from None
    except Exception as exc:  # PIL raises assorted errors on malformed headers
        detail = stable_reason(exc)
        raise BadImage(f"cannot decode: {type(exc).__name__}{': ' + detail if detail else ''}; "
                       "re-download or remove the file") from None
    if min(img.size) < MIN_SIDE:
        raise BadImage(f"too small: {img.size[0]}x{img.size[1]} is smaller than {MIN_SIDE} px on a side")
    orientation = _exif_orientation_note(img)
    arr, note = _to_rgb(img)
    return arr, "; ".join(n for n in (note, orientation) if n) or None


# EXIF tag 274 (Orientation): how a viewer turns the stored pixels for display; 1 is "as stored".
EXIF_ORIENTATION_TAG = 0x0112
EXIF_ORIENTATIONS = {
    2: "mirror horizontally", 3: "rotate 180", 4: "mirror vertically", 5: "mirror horizontally, rotate 270",
    6: "rotate 90", 7: "mirror horizontally, rotate 90", 8: "rotate 270",  # clockwise, as the EXIF standard
}


def _exif_orientation_note(img: Image.Image) -> str | None:
    """A note for an EXIF orientation other than identity. The pixels are kept as stored, as the published
    pipelines (PIL's Image.open and convert, torchvision's loader) read ImageNet: none applies the tag."""
    try:
        value = img.getexif().get(EXIF_ORIENTATION_TAG)
    except Exception:  # a malformed EXIF block: the pixels decoded, the tag is simply unreadable
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    if value not in EXIF_ORIENTATIONS:
        return None  # 1 (identity), absent, or outside the 1-8 the standard defines: viewers show it as stored
    return (f"EXIF orientation {value} ({EXIF_ORIENTATIONS[value]}) ignored, as the published pipelines do: "
            "pixels kept as stored")


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

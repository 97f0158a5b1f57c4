"""Foreground masks for the background families (XImageNet-12, ImageNet-9), computed once per source image and cached.

A mask comes from, in this order of preference: a polygon annotation for the image (LabelMe, V7 Darwin
or COCO JSON, or a mask PNG as XImageNet-12 ships), a transformers image-segmentation model, or the
ILSVRC bounding boxes refined by OpenCV GrabCut. Masks are computed on the decoded source image (the
resolution boxes and polygons refer to) and then follow the config's geometry, so every scenario of one
image sees the very same object pixels.

Every annotation is checked against its image before it is rasterised, and every mask against one
validity rule (`check_mask`): what fails is skipped with a reason (`MaskUnavailable`), never written as
a nonsense mask and never stopping the run. Cached masks are keyed by their input's content.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from .imaging import BadImage, apply_geometry, stable_reason
from .registry import Geometry, load
from .rng import generator
from .sources.base import Box, Example

GRABCUT_VERSION = "grabcut-v1"
BACKGROUND_LABELS = {"background", "_background_", "label_0", "bg", "wall", "floor", "sky", "ground"}

# The one validity rule: a background scenario needs an object and a background to change. Below the minimum
# the "object" is a speck (a degenerate box or polygon, a model that found nothing); above the maximum there is
# no background left (a box around the whole photo), and blur_bg would return the clean image.
MASK_MIN_FRACTION = 0.001
MASK_MAX_FRACTION = 0.95
# GrabCut's working size by default: its time grows with the pixels (126 s for a 2048x2048 photo at full size
# on one core here, 0.4-3.6 s at 512 px), and ImageNet's usual 500 px photos are not downscaled at all. Chosen
# with bench/bench_masks.py: per-photo time and IoU with the full-size mask (mean 0.94 at 512 px, 0.90 at 400).
DEFAULT_GRABCUT_MAX_SIDE = 512
MIN_GRABCUT_SIDE = 64
# an annotation made on a resized copy of the image is scaled back, if the copy is at most this many times
# larger or smaller and has the image's aspect ratio; anything else is another image's annotation
SCALE_LIMIT = 8
ASPECT_TOLERANCE = 0.02
POINT_MARGIN = 0.1  # polygon points may stray this fraction of a side outside the image (then are clipped)


class MaskUnavailable(BadImage):
    """No way to make a mask for an image; the message says which input would provide one."""


class MaskWarning(UserWarning):
    """An annotation that belongs to no image (so no image can be skipped for it), reported once per run."""


HOW_TO_PROVIDE = (
    "provide one of: (1) bounding boxes: a devkit source with its ILSVRC2012_val_*.xml files "
    "(`--source devkit:ROOT`, `--boxes DIR`); (2) polygons: `--polygons DIR` of LabelMe / V7 / COCO "
    "polygon JSON or binary mask PNGs named after the image ids; (3) a segmentation model: "
    "`--mask-model ID_OR_PATH`, any transformers image-segmentation checkpoint"
)


@dataclass(frozen=True)
class MaskOptions:
    """How masks are made for one run; part of every background config's fingerprint."""

    polygons: str | None = None
    model: str | None = None
    model_labels: tuple[str, ...] = ()  # segments kept from the model; default: its largest foreground one
    grabcut_iterations: int = 5
    grabcut_max_side: int | None = None  # GrabCut on a copy at most this large, mask scaled back; None: the
    # default (DEFAULT_GRABCUT_MAX_SIDE), 0: full size
    inpaint_model: str | None = None  # replaces ai_bg's SDXL inpainting model id (a Hub id or a local folder)

    def working_side(self) -> int | None:
        """The longer side GrabCut works at, or None for full size."""
        side = DEFAULT_GRABCUT_MAX_SIDE if self.grabcut_max_side is None else self.grabcut_max_side
        return side or None

    def mask_fields(self) -> dict:
        """What decides the masks besides each image's own annotation (whose content keys it separately).

        Folders are named without their place on disk: a moved folder with the same annotations makes the
        same masks, and the footer records no machine-specific path.
        """
        return {"polygons": Path(self.polygons).name if self.polygons else None,
                "model": _display_model(self.model), "labels": list(self.model_labels),
                "grabcut": [GRABCUT_VERSION, self.grabcut_iterations, self.working_side()]}

    def fields(self) -> dict:
        """Everything about this run's masks and inpainting model, as recorded in each shard's footer."""
        return {**self.mask_fields(), "inpaint_model": self.inpaint_model}

    def mask_key(self) -> str:
        return json.dumps(self.mask_fields(), sort_keys=True)

    def key(self) -> str:
        return json.dumps(self.fields(), sort_keys=True)


def _display_model(model: str | None) -> str | None:
    return Path(model).expanduser().name if model and Path(model).expanduser().is_dir() else model


def check_mask(mask: np.ndarray) -> np.ndarray:
    """`mask` if it describes an object on a background (MASK_MIN_FRACTION..MASK_MAX_FRACTION of the image)."""
    fraction = float(mask.mean()) if mask.size else 0.0
    valid = f"a usable mask covers {MASK_MIN_FRACTION:.1%} to {MASK_MAX_FRACTION:.0%}"
    if fraction < MASK_MIN_FRACTION:
        raise MaskUnavailable(f"mask too small: the object covers {fraction:.2%} of the image ({valid}); "
                              "check the annotation, or give this image a polygon (--polygons)")
    if fraction > MASK_MAX_FRACTION:
        raise MaskUnavailable(f"mask too large: the object covers {fraction:.2%} of the image, leaving no "
                              f"background to change ({valid}); give this image a tighter box or a polygon")
    return mask


# --- from boxes: GrabCut ---------------------------------------------------------------------------

def box_mask(shape: tuple[int, int], boxes: tuple[Box, ...]) -> np.ndarray:
    """The union of the boxes (inclusive pixel coordinates), clipped to the image."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        x0, x1 = sorted((max(0, min(w - 1, int(x0))), max(0, min(w - 1, int(x1)))))
        y0, y1 = sorted((max(0, min(h - 1, int(y0))), max(0, min(h - 1, int(y1)))))
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def _box_text(box) -> str:
    return "(" + ", ".join(f"{v:.3g}" if abs(v) >= 1e6 else str(v) for v in box) + ")"


def check_boxes(example: Example, boxes: tuple[Box, ...], shape: tuple[int, int]) -> None:
    """Boxes that can describe an object in this image: their file made for this image (its `<size>` and
    `<filename>`, where the source knows them), each box with an area and at least partly inside."""
    h, w = shape
    info = getattr(example, "box_file", None)  # what a devkit's XML says about its image
    if info is not None:
        if info.size and tuple(info.size) != (w, h):
            raise MaskUnavailable(f"bad box annotation: {info.name} is for a {info.size[0]}x{info.size[1]} image, "
                                  f"this one is {w}x{h}; its boxes would land elsewhere: fix or remove the file")
        if info.filename and Path(info.filename).stem != Path(example.image_id).stem:
            raise MaskUnavailable(f"bad box annotation: {info.name} names the image {info.filename!r}, not this "
                                  "one; fix or remove the file")
    for box in boxes:
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            raise MaskUnavailable(f"bad box: {_box_text(box)} has no area (xmax <= xmin or ymax <= ymin); "
                                  "fix the annotation")
        if x0 > w - 1 or y0 > h - 1 or x1 < 0 or y1 < 0:
            raise MaskUnavailable(f"bad box: {_box_text(box)} lies outside the {w}x{h} image; fix the annotation")


def grabcut(image: np.ndarray, boxes: tuple[Box, ...], iterations: int = 5, seed: int = 0) -> np.ndarray:
    """Object mask from boxes: outside every box is background, inside is probably object, GrabCut decides.

    GrabCut's GMM initialisation draws from OpenCV's RNG, seeded here so a mask is reproducible.
    Where GrabCut cannot run (a box covering the whole image) or finds nothing, the boxes are the mask.
    """
    import cv2

    boxed = box_mask(image.shape[:2], boxes)
    if boxed.all() or not boxed.any():
        return boxed
    init = np.where(boxed, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    try:
        cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), init, None, bgd, fgd, int(iterations),
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # too few pixels on one side for the colour models
        return boxed
    mask = (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
    return mask if mask.any() else boxed


# --- from polygons ---------------------------------------------------------------------------------

class _Bad(Exception):
    """An annotation that fails a check; the message says what (the file name is added by the caller)."""


@dataclass(frozen=True)
class _Entry:
    path: str
    kind: str  # "labelme", "v7", "coco", "png", or "broken" (a file named after the image that cannot be read)
    key: str | int | None = None  # the image's id inside a COCO file
    error: str | None = None  # why a broken entry cannot be used


def _file_id(path: str) -> tuple[str, int, int]:
    """(path, mtime, size): cached readings of a file are refreshed when it is edited."""
    st = os.stat(path)
    return path, st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8)
def _read_json(file_id: tuple[str, int, int]):
    return json.loads(Path(file_id[0]).read_bytes())


def _load_json(path: str):
    return _read_json(_file_id(path))


@lru_cache(maxsize=4096)
def _file_sha(file_id: tuple[str, int, int]) -> str:
    return hashlib.sha256(Path(file_id[0]).read_bytes()).hexdigest()


@lru_cache(maxsize=4)
def _coco_groups(file_id: tuple[str, int, int]) -> tuple[dict, dict]:
    """image id -> image entry, image id -> its annotations, once per COCO file (not once per image)."""
    data = _read_json(file_id)
    images = {img["id"]: img for img in data["images"]
              if isinstance(img, dict) and isinstance(img.get("id"), (int, str))}
    records: dict = {}
    for a in data["annotations"] if isinstance(data["annotations"], list) else ():
        if isinstance(a, dict):
            try:
                records.setdefault(a.get("image_id"), []).append(a)
            except TypeError:  # an unhashable image_id: belongs to no image
                continue
    return images, records


@lru_cache(maxsize=4)
def _index(folder: str) -> tuple[dict[str, _Entry], tuple[str, ...]]:
    """Image name (stem) -> annotation for every JSON / PNG file in `folder` (recursively), and the problems
    that belong to no image. A JSON named after an image that cannot be read is that image's broken entry."""
    root = Path(folder)
    if not root.is_dir():
        raise MaskUnavailable(f"--polygons {folder}: not a folder")
    index: dict[str, _Entry] = {}
    problems: list[str] = []

    def broken(path: Path, why: str) -> None:
        index.setdefault(path.stem, _Entry(str(path), "broken", error=f"bad polygons: {path.name}: {why}; "
                                           "fix or remove the file"))

    for path in sorted(root.rglob("*")):
        if path.suffix.lower() == ".png":
            index.setdefault(path.stem, _Entry(str(path), "png"))
        elif path.suffix.lower() == ".json":
            try:
                data = _load_json(str(path))
            except OSError as exc:
                broken(path, f"cannot read it ({exc.strerror or type(exc).__name__})")
                continue
            except ValueError as exc:
                broken(path, f"not valid JSON ({stable_reason(exc)})")
                continue
            if not isinstance(data, dict):
                broken(path, f"not a LabelMe, V7 or COCO annotation (its top level is a {type(data).__name__})")
            elif "shapes" in data:
                index[path.stem] = _Entry(str(path), "labelme")
                if isinstance(data.get("imagePath"), str) and data["imagePath"]:
                    index.setdefault(Path(data["imagePath"].replace("\\", "/")).stem, _Entry(str(path), "labelme"))
            elif "images" in data and "annotations" in data:
                if not isinstance(data["images"], list) or not isinstance(data["annotations"], list):
                    problems.append(f"{path.name}: `images` and `annotations` must be lists; the file is not used")
                    continue
                for k, img in enumerate(data["images"]):
                    name = img.get("file_name") if isinstance(img, dict) else None
                    if not isinstance(name, str) or not name or not isinstance(img.get("id"), (int, str)):
                        what = ("is not an object" if not isinstance(img, dict) else "has no file_name"
                                if not isinstance(name, str) or not name else "has no id (a number or a string)")
                        problems.append(f"{path.name}: images[{k}] {what}, so its annotations match no image; fix it")
                        continue
                    index[Path(name.replace("\\", "/")).stem] = _Entry(str(path), "coco", img["id"])
            elif "annotations" in data:
                image, item = data.get("image"), data.get("item")
                name = (image.get("filename") if isinstance(image, dict) else None) or \
                    (item.get("name") if isinstance(item, dict) else None)
                index[Path(name).stem if isinstance(name, str) and name else path.stem] = _Entry(str(path), "v7")
            else:
                broken(path, "not a LabelMe, V7 or COCO annotation (no `shapes` or `annotations`)")
    return index, tuple(problems)


def polygon_index(folder: str) -> dict[str, _Entry]:
    """Image name (stem) -> annotation, for every JSON / PNG file in `folder` (searched recursively)."""
    return _index(str(folder))[0]


def find_polygons(folder: str, image_id: str) -> _Entry | None:
    index = polygon_index(str(folder))
    for name in (image_id, Path(image_id).name, Path(image_id).stem):
        if name in index:
            return index[name]
    return None


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{what} is {json.dumps(value)[:30]}, not a number")
    return float(value)


def _scale(annotated, shape: tuple[int, int], what: str) -> np.ndarray:
    """(sx, sy) taking coordinates of an annotation made at `annotated` (h, w) to the image; None: same size."""
    h, w = shape
    if annotated is None:
        return np.array([1.0, 1.0])
    ah, aw = (_number(v, what) for v in annotated)
    text = "x".join(str(int(v)) if math.isfinite(v) and v == int(v) and abs(v) < 1e12 else f"{v:.4g}" for v in (aw, ah))
    if not all(math.isfinite(v) and v >= 1 and v == int(v) for v in (aw, ah)):
        raise _Bad(f"{what} {text} is not an image size")
    sx, sy = w / aw, h / ah
    if not (1 / SCALE_LIMIT <= min(sx, sy) and max(sx, sy) <= SCALE_LIMIT) or abs(sx / sy - 1) > ASPECT_TOLERANCE:
        raise _Bad(f"{what} {text} is not this {w}x{h} image's size (nor a resized copy's)")
    return np.array([sx, sy])


def _annotated_size(entry: _Entry, data: dict) -> tuple | None:
    """(height, width) an annotation was made at, where it says."""
    if entry.kind == "labelme":
        h, w = data.get("imageHeight"), data.get("imageWidth")
    elif entry.kind == "v7":
        image, item = data.get("image"), data.get("item")
        slots = item.get("slots") if isinstance(item, dict) else None
        slots = slots if isinstance(slots, list) and slots else [{}]
        where = image if isinstance(image, dict) and image.get("height") is not None else slots[0]
        if not isinstance(where, dict):
            raise _Bad("item.slots[0] is not an object")
        h, w = where.get("height"), where.get("width")
    else:
        img = _coco_groups(_file_id(entry.path))[0][entry.key]
        h, w = img.get("height"), img.get("width")
    if h is None and w is None:
        return None
    if h is None or w is None:
        raise _Bad("the image size names only " + ("its width" if h is None else "its height"))
    return h, w


def _points(value, what: str, minimum: int = 3) -> np.ndarray:
    """An N x 2 array of finite x, y."""
    try:
        pts = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        pts = None
    if pts is None or pts.ndim != 2 or pts.shape[1] != 2:
        raise _Bad(f"the points of {what} are not a list of [x, y] pairs")
    if not np.isfinite(pts).all():
        raise _Bad(f"the points of {what} include a coordinate that is not finite ({pts[~np.isfinite(pts)][0]})")
    if len(pts) < minimum:
        raise _Bad(f"{what} has {len(pts)} points; a polygon needs at least {minimum}")
    return pts


def _labelme_polygons(data: dict) -> tuple[list[np.ndarray], bool]:
    shapes = data.get("shapes")
    if not isinstance(shapes, list):
        raise _Bad("`shapes` is not a list")
    polys = []
    for k, shape in enumerate(shapes):
        if not isinstance(shape, dict):
            raise _Bad(f"shapes[{k}] is not an object")
        kind = shape.get("shape_type") or "polygon"
        if kind not in ("polygon", "rectangle"):
            continue  # points, lines, circles: not an object outline
        if "points" not in shape:
            raise _Bad(f"shapes[{k}] has no points")
        pts = _points(shape["points"], f"shapes[{k}]", 2 if kind == "rectangle" else 3)
        if kind == "rectangle":
            if len(pts) != 2:
                raise _Bad(f"shapes[{k}] is a rectangle of {len(pts)} points, not 2")
            (x0, y0), (x1, y1) = pts
            pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        polys.append(pts)
    return polys, False


def _v7_polygons(data: dict) -> tuple[list[np.ndarray], bool]:
    annotations = data.get("annotations")
    if not isinstance(annotations, list):
        raise _Bad("`annotations` is not a list")
    polys = []
    for k, record in enumerate(annotations):
        if not isinstance(record, dict):
            raise _Bad(f"annotations[{k}] is not an object")
        for key in ("polygon", "complex_polygon"):  # V7 Darwin 1.0 (path) and 2.0 (paths)
            if key not in record:
                continue
            poly = record[key]
            paths = (poly.get("paths") or poly.get("path")) if isinstance(poly, dict) else None
            if not isinstance(paths, list) or not paths:
                raise _Bad(f"annotations[{k}].{key} has no path (a list of {{x, y}} points)")
            if isinstance(paths[0], dict):
                paths = [paths]
            for j, path in enumerate(paths):
                if not isinstance(path, list) or not all(isinstance(p, dict) for p in path):
                    raise _Bad(f"annotations[{k}].{key} path {j} is not a list of {{x, y}} points")
                polys.append(_points([[p.get("x"), p.get("y")] for p in path], f"annotations[{k}].{key} path {j}"))
    return polys, True


def _coco_polygons(records: list[dict], shape: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """COCO polygons (flat x, y lists) and decoded RLE masks of one image's annotations."""
    polys, rles = [], []
    for k, record in enumerate(records):
        name = f"annotation id {record['id']}" if isinstance(record.get("id"), (int, str)) else f"annotation {k}"
        seg = record.get("segmentation")
        if isinstance(seg, dict):
            rles.append(_coco_rle(seg, shape, name))
        elif isinstance(seg, list):
            for j, flat in enumerate(seg):
                if not isinstance(flat, list):
                    raise _Bad(f"{name} segmentation[{j}] is not a flat x, y list")
                if len(flat) % 2:
                    raise _Bad(f"{name} segmentation[{j}] has an odd number of coordinates ({len(flat)}); "
                               "COCO polygons are flat x, y lists")
                pairs = [flat[i : i + 2] for i in range(0, len(flat), 2)]
                polys.append(_points(pairs, f"{name} segmentation[{j}]"))
        elif seg is not None:
            raise _Bad(f"{name} segmentation is neither polygons nor RLE")
    return polys, rles


def _coco_rle(rle: dict, shape: tuple[int, int], what: str) -> np.ndarray:
    """An RLE mask at the image's size, its claimed size checked against the image before anything is made."""
    size = rle.get("size")
    if not isinstance(size, list) or len(size) != 2:
        raise _Bad(f"{what} RLE size is not [height, width]")
    _scale(size, shape, f"{what} RLE size")
    h, w = int(size[0]), int(size[1])
    counts = rle.get("counts")
    if isinstance(counts, str):
        try:
            from pycocotools import mask as coco_mask
        except ImportError:
            raise MaskUnavailable("no mask: compressed COCO RLE needs pycocotools (`pip install pycocotools`), "
                                  "or export the masks as polygons") from None
        try:
            mask = coco_mask.decode({"size": [h, w], "counts": counts.encode()}).astype(bool)
        except Exception as exc:  # pycocotools raises assorted errors on bad strings
            raise _Bad(f"{what} RLE counts cannot be decoded ({type(exc).__name__})") from None
    else:
        if not isinstance(counts, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                                   for c in counts):
            raise _Bad(f"{what} RLE counts are not a list of run lengths")
        if sum(counts) != h * w:
            raise _Bad(f"{what} RLE counts cover {sum(counts)} pixels, not {w}x{h}")
        flat = np.zeros(h * w, dtype=bool)
        pos, value = 0, False
        for run in counts:
            flat[pos : pos + run] = value
            pos, value = pos + run, not value
        mask = flat.reshape(w, h).T  # COCO runs go down the columns
    if mask.shape != shape:
        mask = np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.NEAREST))
    return mask


def _fill(mask: np.ndarray, polygons: list[np.ndarray], even_odd: bool = False) -> None:
    """Rasterise polygons (N x 2 float x, y) into `mask` in place: union, or even-odd for paths with holes."""
    import cv2

    for poly in polygons:
        if len(poly) < 3:
            continue
        layer = np.zeros(mask.shape, np.uint8)
        cv2.fillPoly(layer, [np.round(poly).astype(np.int32).reshape(-1, 1, 2)], 1)
        if even_odd:
            mask ^= layer.astype(bool)
        else:
            mask |= layer.astype(bool)


def _in_image(polys: list[np.ndarray], scale: np.ndarray, shape: tuple[int, int], size_text: str) -> list[np.ndarray]:
    """Polygons in image pixels, each point within POINT_MARGIN of the image, clipped to just outside it."""
    h, w = shape
    lo, hi = -POINT_MARGIN * np.array([w, h]), (1 + POINT_MARGIN) * np.array([w, h])
    out = []
    for poly in polys:
        scaled = poly * scale
        outside = ((scaled < lo) | (scaled > hi)).any(axis=1)
        if outside.any():
            x, y = poly[outside][0]
            raise _Bad(f"a point at ({x:.4g}, {y:.4g}) lies outside the {size_text} image")
        out.append(np.clip(scaled, -1, [w, h]))
    return out


def _json_mask(entry: _Entry, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    data = _load_json(entry.path)
    size = _annotated_size(entry, data)
    scale = _scale(size, shape, "the annotated image size")
    size_text = f"{int(size[1])}x{int(size[0])}" if size else f"{w}x{h}"
    mask = np.zeros((h, w), dtype=bool)
    if entry.kind == "coco":
        records = _coco_groups(_file_id(entry.path))[1].get(entry.key, [])
        polys, rles = _coco_polygons(records, shape)
        even_odd = False
        for part in rles:
            mask |= part
    else:
        polys, even_odd = (_labelme_polygons if entry.kind == "labelme" else _v7_polygons)(data)
        rles = []
    if not polys and not rles:
        raise _Bad("no polygon for this image (LabelMe polygon / rectangle shapes, V7 polygons, COCO segmentation)")
    layer = np.zeros((h, w), dtype=bool)
    _fill(layer, _in_image(polys, scale, shape, size_text), even_odd)
    return mask | layer


def _png_mask(path: str, shape: tuple[int, int]) -> np.ndarray:
    """A mask image: palette by index (0 = background), a cut-out by its alpha, anything else non-zero = object."""
    from .imaging import MAX_PIXELS

    h, w = shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            if img.width * img.height > MAX_PIXELS:
                raise _Bad(f"{img.width}x{img.height} exceeds {MAX_PIXELS} pixels")
            img.load()
    except _Bad:
        raise
    except Exception as exc:  # truncated, not a PNG, assorted PIL errors
        raise _Bad(f"cannot read it ({stable_reason(exc) or type(exc).__name__})") from None
    _scale((img.height, img.width), shape, "its size")
    arr = np.asarray(img)
    if img.mode in ("P", "PA"):
        fg = (arr[..., 0] if arr.ndim == 3 else arr) != 0  # the index, whatever colour the palette gives it
    elif img.mode in ("LA", "RGBA") and arr[..., -1].min() != arr[..., -1].max():
        fg = arr[..., -1] > 0  # a cut-out: the object is where it is opaque
    elif img.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F", "LA", "RGB", "RGBA"):
        fg = (arr[..., :-1] if img.mode in ("LA", "RGBA") else arr) > 0
        fg = fg.any(axis=-1) if fg.ndim == 3 else fg
    else:
        raise _Bad(f"mode {img.mode} is not a mask encoding (1-bit, greyscale, palette, RGB or RGBA)")
    if fg.shape != (h, w):
        fg = np.asarray(Image.fromarray(fg).resize((w, h), Image.NEAREST))
    return fg


def polygon_mask(entry: _Entry, shape: tuple[int, int]) -> np.ndarray:
    """The union of all annotated objects, scaled if the annotation was made on a resized copy of the image;
    MaskUnavailable naming the file when any part of the annotation fails a check."""
    name = Path(entry.path).name
    kind = "bad mask PNG" if entry.kind == "png" else "bad polygons"
    if entry.kind == "broken":
        raise MaskUnavailable(entry.error)
    try:
        return _png_mask(entry.path, shape) if entry.kind == "png" else _json_mask(entry, shape)
    except MaskUnavailable:
        raise
    except _Bad as exc:
        raise MaskUnavailable(f"{kind}: {name}: {exc}; fix or remove the annotation") from None
    except OSError as exc:
        raise MaskUnavailable(f"{kind}: {name}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # a shape no check foresaw
        detail = stable_reason(exc)
        raise MaskUnavailable(f"{kind}: {name}: {type(exc).__name__}{': ' + detail if detail else ''}; "
                              "fix or remove the annotation") from None


def _entry_digest(entry: _Entry) -> str:
    """The content that makes this entry's mask: the file, or for COCO the image's own entry and annotations."""
    try:
        if entry.kind == "coco":
            images, records = _coco_groups(_file_id(entry.path))
            body = json.dumps([images.get(entry.key), records.get(entry.key, [])], sort_keys=True, default=str)
            return hashlib.sha256(body.encode()).hexdigest()
        return _file_sha(_file_id(entry.path))
    except (OSError, ValueError, TypeError, KeyError):
        return "unreadable"


# --- from a segmentation model ---------------------------------------------------------------------

def _local_model(model: str) -> Path | None:
    """The folder a model loads from: a local folder, or a Hub id's snapshot already in the cache (no network)."""
    if Path(model).expanduser().is_dir():
        return Path(model).expanduser()
    if model.startswith((".", "/", "~")):
        return None
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(model, "config.json")
    return Path(config).parent if isinstance(config, str) else None


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


@lru_cache(maxsize=2)
def _segmenter(model: str):
    """The image-segmentation pipeline of `model`; any failure to load it is one MaskUnavailable line."""
    folder = _local_model(model)
    if folder is None:
        _require_model(model)
    try:
        import torch
        from transformers import pipeline

        device = 0 if torch.cuda.is_available() else -1
        return pipeline("image-segmentation", model=str(folder), device=device, trust_remote_code=False)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for what is not a model
        raise MaskUnavailable(f"--mask-model {model}: cannot be loaded as a transformers image-segmentation "
                              f"model ({_one_line(exc)}); pass a folder saved with save_pretrained or a "
                              "downloaded Hub id of such a model") from None


def model_labels(model: str) -> list[str]:
    """The segment labels `model` can return (its config's id2label)."""
    id2label = getattr(_segmenter(model).model.config, "id2label", None) or {}
    return [str(v) for _, v in sorted(id2label.items(), key=lambda kv: int(kv[0]))]


def check_model(options: MaskOptions) -> None:
    """The model loads, and every --mask-label is one of its labels (said before any image is touched)."""
    _require_model(options.model)
    labels = model_labels(options.model)
    known = {label.lower() for label in labels}
    missing = [label for label in options.model_labels if label.lower() not in known]
    if missing:
        raise MaskUnavailable(f"--mask-label {', '.join(missing)}: not a label of --mask-model {options.model}; "
                              f"its labels are: {', '.join(labels)}")


@lru_cache(maxsize=4)
def _model_digest(model: str) -> str:
    """The model's files by content (JSON in full, weights by name and size): a replaced model makes new masks."""
    folder = _local_model(model)
    h = hashlib.sha256(model.encode() if folder is None else b"")
    for path in sorted(folder.rglob("*")) if folder is not None else ():
        if path.is_file():
            h.update(f"{path.relative_to(folder).as_posix()}\t{path.stat().st_size}\n".encode())
            if path.suffix == ".json":
                h.update(path.read_bytes())
    return h.hexdigest()


def model_mask(image: np.ndarray, model: str, labels: tuple[str, ...] = ()) -> np.ndarray:
    """The segments named in `labels`, or else the largest segment that is not background/stuff (none: empty)."""
    segments = _segmenter(model)(Image.fromarray(image))
    h, w = image.shape[:2]
    masks = []
    for seg in segments:
        m = np.asarray(seg["mask"].convert("L").resize((w, h), Image.NEAREST)) > 127
        masks.append((str(seg.get("label") or ""), m))
    if labels:
        wanted = {label.lower() for label in labels}
        chosen = [m for name, m in masks if name.lower() in wanted]
        return np.logical_or.reduce(chosen) if chosen else np.zeros((h, w), dtype=bool)
    candidates = [m for name, m in masks if name.lower() not in BACKGROUND_LABELS]
    if not candidates:  # only wall, sky, ...: no object (check_mask says so), never a background as the object
        return np.zeros((h, w), dtype=bool)
    return max(candidates, key=lambda m: int(m.sum()))


# --- choosing, caching, geometry -------------------------------------------------------------------

def require_masks(examples: list[Example], options: MaskOptions, configs: list[str], source_name: str) -> None:
    """Fail before anything is written when no image of the plan could get a mask."""
    if options.model:
        _require_model(options.model)
        return
    if options.polygons:
        if not polygon_index(str(options.polygons)):
            raise MaskUnavailable(f"--polygons {options.polygons}: no LabelMe / V7 / COCO JSON or mask PNG inside; "
                                  + HOW_TO_PROVIDE)
        return
    # an unreadable box file counts: its images are skipped one by one, each with its reason
    if not any(e.boxes or getattr(e, "box_file", None) for e in examples):
        verb = "needs" if len(configs) == 1 else "need"
        raise MaskUnavailable(f"{', '.join(configs)} {verb} foreground masks, but {source_name} has no bounding "
                              f"boxes; {HOW_TO_PROVIDE}")


def _require_model(model: str) -> None:
    """A local folder, or a Hub id already in the cache: masks are never made with a half-downloaded model."""
    if _local_model(model) is None:
        raise MaskUnavailable(f"--mask-model {model}: not a local folder and not in the Hugging Face cache; "
                              f"download it first (`hf download {model}`) or pass a folder saved with save_pretrained")


def method_for(example: Example, options: MaskOptions) -> tuple[str, object]:
    """Which input makes this image's mask: ("polygons", entry) / ("model", id) / ("grabcut", boxes)."""
    if options.polygons:
        entry = find_polygons(str(options.polygons), example.image_id)
        if entry is not None:
            return "polygons", entry
    if options.model:
        return "model", options.model
    info = getattr(example, "box_file", None)  # a devkit's XML, read or not
    if info is not None and info.error:
        raise MaskUnavailable(info.error)
    if example.boxes:
        return "grabcut", example.boxes
    if info is not None:
        raise MaskUnavailable(f"bad box annotation: {info.name} has no <object><bndbox>; fix or remove the file")
    raise MaskUnavailable("no mask: no polygon annotation" + (" in --polygons" if options.polygons else "")
                          + " and no bounding box for this image; " + HOW_TO_PROVIDE)


def input_key(example: Example, options: MaskOptions) -> str:
    """The content this image's mask is made from (annotation file, COCO entry, model files, boxes and their
    XML), hashed: it names the cached mask, so an edited annotation is never answered from the cache."""
    try:
        kind, what = method_for(example, options)
    except MaskUnavailable as exc:
        kind, content = "none", str(exc)
    else:
        if kind == "polygons":
            content = f"{what.kind}\t{_entry_digest(what)}"
        elif kind == "model":
            content = _model_digest(what)
        else:
            info = getattr(example, "box_file", None)
            content = repr(what) + (f"\t{info.sha256}" if info is not None else "")
    return hashlib.sha256(f"{kind}\n{content}".encode()).hexdigest()


@lru_cache(maxsize=2)
def annotations_digest(options: MaskOptions, pool: tuple[Example, ...]) -> str:
    """Every planned image's mask input by content, for the fingerprint: an edited annotation stales the shards."""
    h = hashlib.sha256()
    for e in pool:
        h.update(f"{e.image_id}\t{input_key(e, options)}\n".encode())
    return h.hexdigest()


def _clip(box, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return max(0, min(w - 1, x0)), max(0, min(h - 1, y0)), max(0, min(w - 1, x1)), max(0, min(h - 1, y1))


def compute_mask(example: Example, image: np.ndarray, options: MaskOptions) -> np.ndarray:
    """The mask of a decoded source image from its preferred input, that input checked against the image first."""
    kind, what = method_for(example, options)
    if kind == "polygons":
        return polygon_mask(what, image.shape[:2])
    if kind == "model":
        return model_mask(image, what, tuple(options.model_labels))
    h, w = image.shape[:2]
    check_boxes(example, what, (h, w))
    boxes = tuple(_clip(box, w, h) for box in what)
    # seeded from the image id only, so the mask (and its cache) is shared by every config and seed
    seed = int(generator(0, "mask:grabcut", example.image_id).integers(2**31 - 1))
    side = options.working_side()
    scale = min(1.0, side / max(h, w)) if side else 1.0
    if scale == 1.0:
        return grabcut(image, boxes, options.grabcut_iterations, seed)
    import cv2

    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    boxes = tuple(tuple(int(v * scale) for v in box) for box in boxes)
    mask = grabcut(small, boxes, options.grabcut_iterations, seed).astype(np.uint8) * 255
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) >= 128


class MaskCache:
    """Masks at source resolution as 1-bit PNGs under ROOT/<options hash>/<quoted image id>-<input hash>.png.

    Written atomically (temporary name, then rename), so a killed run never leaves a partial mask.
    The input hash (`input_key`) is of the annotation's content: an edited polygon, XML or model makes another
    file, so neither a rerun nor `--overwrite` reuses a mask made from what the user has since fixed.
    """

    def __init__(self, root: str | Path, options: MaskOptions, source_name: str):
        key = json.dumps({"source": source_name, "masks": options.mask_key()}, sort_keys=True)
        self.dir = Path(root) / hashlib.sha256(key.encode()).hexdigest()[:16]
        self.key = key
        self.options = options

    def path(self, example: Example) -> Path:
        return self.dir / f"{quote(example.image_id, safe='')}-{input_key(example, self.options)[:16]}.png"

    def get(self, example: Example, shape: tuple[int, int]) -> np.ndarray | None:
        path = self.path(example)
        try:
            arr = np.asarray(Image.open(path)).astype(bool)
        except (OSError, ValueError):
            return None
        return arr if arr.shape == tuple(shape) else None

    def put(self, example: Example, mask: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        about = self.dir / "method.json"
        if not about.exists():
            _atomic_write(about, self.key.encode())
        buf = io.BytesIO()
        Image.fromarray(mask.astype(bool)).save(buf, format="PNG")
        _atomic_write(self.path(example), buf.getvalue())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def mask_for(example: Example, image: np.ndarray, options: MaskOptions, cache: MaskCache | None = None) -> np.ndarray:
    """The cached mask of a decoded source image, computing (and caching) it on first use.

    A hit needs no new checks: its name is the hash of the very annotation the checks passed on, and its
    size that of the image."""
    if cache is not None:
        hit = cache.get(example, image.shape[:2])
        if hit is not None:
            return hit
    mask = compute_mask(example, image, options)
    if cache is not None:
        cache.put(example, mask)
    return mask


def follow_geometry(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The mask through the image's own geometry code (same sizes and crops), re-thresholded at one half."""
    arr = np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2)
    return apply_geometry(arr, geometry)[..., 0] >= 128


# --- what the engine hands the background family ----------------------------------------------------

@dataclass(frozen=True)
class MaskContext:
    """Per-run inputs of mask-needing configs: how masks are made, where they are cached, the background pool."""

    options: MaskOptions = MaskOptions()
    cache_dir: str | None = None
    source_name: str = ""
    pool: tuple[Example, ...] = ()  # the planned images rand_bg draws its backgrounds from (mixed_* its partners)
    annotations: str = ""  # annotations_digest of the planned images, set by for_spec (the fingerprint's)
    select: str | None = None  # the config's ShiftSpec.select, set by for_spec: precompute masks only images it keeps

    def cache(self) -> MaskCache | None:
        return MaskCache(self.cache_dir, self.options, self.source_name) if self.cache_dir else None

    def pool_digest(self) -> str:
        return hashlib.sha256("\n".join(f"{e.image_id}\t{e.labels}" for e in self.pool).encode()).hexdigest()

    def by_class(self) -> dict[int, list[Example]]:
        return _group_by_class(self.pool)


@lru_cache(maxsize=4)
def _group_by_class(pool: tuple[Example, ...]) -> dict[int, list[Example]]:
    groups: dict[int, list[Example]] = {}
    for e in pool:
        if e.labels:
            groups.setdefault(e.label, []).append(e)
    return groups


def background_provider(source, context: MaskContext, geometry: Geometry, example: Example):
    """A callable rng -> RGB image of another class of the source (class, then image, drawn by `rng`).

    Backgrounds get the config's geometry too, so rand_bg's output has the size its inputs would have.
    """
    from .imaging import decode
    from .sources.base import SourceError

    own = set(example.labels)
    groups = context.by_class()
    classes = sorted(c for c in groups if c not in own)

    def draw(rng: np.random.Generator) -> np.ndarray:
        if not classes:
            raise MaskUnavailable("rand_bg needs images of another class in the source, "
                                  "and the plan has none; widen --classes / --limit")
        for _ in range(8):  # a few tries past unreadable images, still a pure function of rng
            group = [e for e in groups[classes[int(rng.integers(len(classes)))]] if not own & set(e.labels)]
            if not group:
                continue
            pick = group[int(rng.integers(len(group)))]
            try:
                arr, _ = decode(source.read(pick), pick.image_id)
            except (BadImage, SourceError):
                continue
            return apply_geometry(arr, geometry)
        raise MaskUnavailable("no readable background image of another class found")

    return draw


class Partners:
    """The planned images a shift may combine with the one it makes (`example`; ImageNet-9's mixed_*): the shift
    draws from `pool` with its own generator and reads each candidate with `usable`, which keeps it only where the
    config would keep it (the same selection and mask checks), so a partner is itself an image of the config."""

    def __init__(self, source, context: MaskContext, spec, example: Example):
        self.source, self.context, self.spec = source, context, spec
        self.example = example  # the image being made: never its own partner

    @property
    def pool(self) -> tuple[Example, ...]:
        return self.context.pool

    def usable(self, example: Example) -> np.ndarray | None:
        """The candidate's decoded RGB image, or None when it is unreadable or the config would skip it."""
        from .imaging import decode
        from .sources.base import SourceError

        try:
            arr, _ = decode(self.source.read(example), example.image_id)
            _checked_mask(self.spec, self.context, example, arr)
        except (BadImage, SourceError):
            return None
        return arr


def _checked_mask(spec, context: MaskContext, example: Example, decoded: np.ndarray) -> np.ndarray:
    """The image's mask through the config's geometry, after the config's own selection (ShiftSpec.select, before
    and after the mask is made) and check_mask: MaskUnavailable / BadImage to skip it."""
    select = load(getattr(spec, "select", None))
    if select is not None:
        select(example, decoded, None)  # the rules that need no mask first: no GrabCut for an image they skip
    mask = mask_for(example, decoded, context.options, context.cache())
    shaped = check_mask(follow_geometry(mask, spec.geometry))
    if select is not None:
        select(example, decoded, mask)
    return shaped


def spec_options(spec, options: MaskOptions) -> MaskOptions:
    """The run's mask options with the config's own GrabCut settings where it declares them (ImageNet-9 declares
    the original's: full size, 5 iterations), so they are what its masks, cache and footer use."""
    changes = {key: int(spec.params[key]) for key in ("grabcut_iterations", "grabcut_max_side") if key in spec.params}
    return dataclasses.replace(options, **changes) if changes else options


# --- engine hooks (called by planning, rows and generate) -------------------------------------------------------------

def _accepts(spec, name: str) -> bool:
    import inspect

    fn = spec.load_fn()
    return fn is not None and name in inspect.signature(fn).parameters


def _draws_from_pool(spec) -> bool:
    """rand_bg's backgrounds and mixed_*'s partners come from the other planned images."""
    return not spec.batched and (_accepts(spec, "background_provider") or _accepts(spec, "partners"))


def fingerprint_extra(spec, context: MaskContext | None) -> str:
    """What besides the spec shapes a mask config's bytes: the mask method, and rand_bg's background pool."""
    if context is None:
        return ""
    extra = context.options.key()
    if context.annotations:  # the annotations' content: an edited polygon or XML is another setting
        extra += "\nannotations:" + context.annotations
    if _draws_from_pool(spec):
        extra += "\npool:" + context.pool_digest()
    return extra


def for_spec(spec, context: MaskContext | None) -> MaskContext | None:
    """The context a job of `spec` carries: the annotations' digest, and the background pool only where the
    shift draws backgrounds."""
    if context is None:
        return None
    if context.pool and not context.annotations:
        context = dataclasses.replace(context, annotations=annotations_digest(context.options, context.pool))
    options, select = spec_options(spec, context.options), getattr(spec, "select", None)
    if options != context.options or select != context.select:
        context = dataclasses.replace(context, options=options, select=select)
    if _draws_from_pool(spec):
        return context
    return dataclasses.replace(context, pool=())


def extra_inputs(spec, context: MaskContext | None, source, example: Example, decoded: np.ndarray) -> dict:
    """Keyword inputs of a mask config for one decoded source image: `mask` (through the geometry), the image's
    `boxes` and `partners` for the shifts that take them, `background_provider` for those that take one. Raises
    MaskUnavailable (a BadImage) to skip it, also when the mask, as the shift would see it, fails `check_mask`
    or the config's selection (ShiftSpec.select) does not keep the image."""
    context = context or MaskContext(spec_options(spec, MaskOptions()), source_name=source.describe())
    out = {"mask": _checked_mask(spec, context, example, decoded)}
    if _accepts(spec, "boxes"):
        out["boxes"] = example.boxes
    if _draws_from_pool(spec):
        pool_context = context if context.pool else MaskContext(context.options, None, context.source_name, (example,))
        if _accepts(spec, "partners"):
            out["partners"] = Partners(source, pool_context, spec, example)
        else:
            out["background_provider"] = background_provider(source, pool_context, spec.geometry, example)
    return out


def _precompute_one(args) -> None:
    context, source, example = args
    from .imaging import decode
    from .sources.base import SourceError

    try:
        arr, _ = decode(source.read(example), example.image_id)
        select = load(context.select)
        if select is not None:
            select(example, arr, None)  # an image the config skips before its mask needs none
        mask_for(example, arr, context.options, context.cache())
    except (BadImage, SourceError):
        pass  # the shard records why when it meets this image


def precompute(context: MaskContext, source, examples, num_proc: int = 1, state=None,
               progress: bool | None = None) -> None:
    """Fill the cache once per source image before any config runs, so no two workers compute the same mask.

    Its own progress bar ("masks"): GrabCut takes seconds per large photo, before the first shard starts.
    `progress=None` shows it only on a terminal."""
    from tqdm.auto import tqdm

    cache = context.cache()
    context = dataclasses.replace(context, pool=())  # workers need the options and cache, not the pool
    if state is not None:
        state.wait_for_everyone()  # every process must see the same cache before splitting the work
    todo = [e for e in examples if cache is None or not cache.path(e).exists()]
    if cache is None or not todo:
        return
    main = state is None or state.is_main_process

    def bar(total: int):
        return tqdm(total=total, unit="img", desc="masks", disable=True if not main else None if progress is None
                    else not progress)

    if state is not None:
        with state.split_between_processes(todo) as mine, bar(len(mine)) as shown:
            for e in mine:
                _precompute_one((context, source, e))
                shown.update(1)
        state.wait_for_everyone()
    elif num_proc <= 1 or len(todo) < 2:
        with bar(len(todo)) as shown:
            for e in todo:
                _precompute_one((context, source, e))
                shown.update(1)
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        from .hygiene import pool_worker  # workers die with the run and use one thread each

        with ProcessPoolExecutor(max_workers=num_proc, mp_context=get_context("spawn"), initializer=pool_worker,
                                 initargs=(os.getpid(),)) as pool, bar(len(todo)) as shown:
            for _ in pool.map(_precompute_one, [(context, source, e) for e in todo], chunksize=8):
                shown.update(1)


def preflight(specs, examples: list[Example], options: MaskOptions, source_name: str) -> None:
    """Everything that can fail for a whole config fails here, before a single shard is written; annotation
    problems that belong to no image are warned about (MaskWarning), one line each."""
    _index.cache_clear()  # a new run reads the annotations afresh (their files may have been edited)
    _model_digest.cache_clear()
    annotations_digest.cache_clear()
    side = options.grabcut_max_side
    if side is not None and side != 0 and side < MIN_GRABCUT_SIDE:
        raise MaskUnavailable(f"--grabcut-max-side {side}: use 0 (full size) or at least {MIN_GRABCUT_SIDE} px")
    for spec in specs:
        own = spec.params.get("grabcut_max_side")
        if own is not None and own != 0 and own < MIN_GRABCUT_SIDE:
            raise MaskUnavailable(f"--set grabcut_max_side={own} for {spec.name}: use 0 (full size) or at least "
                                  f"{MIN_GRABCUT_SIDE} px")
    names = [s.name for s in specs]
    require_masks(examples, options, names, source_name)
    if options.polygons:
        for problem in _index(str(options.polygons))[1]:
            warnings.warn(f"--polygons: {problem}", MaskWarning, stacklevel=2)
    if options.model:
        check_model(options)
    for spec in specs:
        if spec.batched and "model_id" in spec.params:
            from importlib.util import find_spec

            from .shifts.ximagenet import WeightsMissing, locate_model

            if find_spec("diffusers") is None:
                raise WeightsMissing(f"{spec.name} needs diffusers: `pip install 'shift-hub[sdxl]'`")
            locate_model(options.inpaint_model or spec.params["model_id"])


def batched_params(spec, context: MaskContext | None) -> dict:
    params = dict(spec.params)
    if context is not None and context.options.inpaint_model and "model_id" in params:
        params["model_id"] = context.options.inpaint_model
    return params

"""Foreground masks for the background family (XImageNet-12), computed once per source image and cached.

A mask comes from, in this order of preference: a polygon annotation for the image (LabelMe, V7 Darwin
or COCO JSON, or a binary mask PNG as XImageNet-12 ships), a transformers image-segmentation model,
or the ILSVRC bounding boxes refined by OpenCV GrabCut. Masks are computed on the decoded source
image (the resolution boxes and polygons refer to) and then follow the config's geometry, so every
scenario of one image sees the very same object pixels.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from .imaging import BadImage, apply_geometry
from .registry import Geometry
from .rng import generator
from .sources.base import Box, Example

GRABCUT_VERSION = "grabcut-v1"
BACKGROUND_LABELS = {"background", "_background_", "label_0", "bg", "wall", "floor", "sky", "ground"}


class MaskUnavailable(BadImage):
    """No way to make a mask for an image; the message says which input would provide one."""


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
    grabcut_max_side: int | None = None  # run GrabCut on a copy at most this large (huge photos), mask scaled back
    inpaint_model: str | None = None  # replaces ai_bg's SDXL inpainting model id (a Hub id or a local folder)

    def mask_fields(self) -> dict:
        """What decides the masks (and so their cache)."""
        polygons = str(Path(self.polygons).resolve()) if self.polygons else None
        return {"polygons": polygons, "model": self.model, "labels": list(self.model_labels),
                "grabcut": [GRABCUT_VERSION, self.grabcut_iterations, self.grabcut_max_side]}

    def fields(self) -> dict:
        """Everything about this run's masks and inpainting model, as recorded in each shard's footer."""
        return {**self.mask_fields(), "inpaint_model": self.inpaint_model}

    def mask_key(self) -> str:
        return json.dumps(self.mask_fields(), sort_keys=True)

    def key(self) -> str:
        return json.dumps(self.fields(), sort_keys=True)


# --- from boxes: GrabCut ---------------------------------------------------------------------------

def box_mask(shape: tuple[int, int], boxes: tuple[Box, ...]) -> np.ndarray:
    """The union of the boxes (inclusive pixel coordinates), clipped to the image."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        x0, x1 = sorted((max(0, int(x0)), min(w - 1, int(x1))))
        y0, y1 = sorted((max(0, int(y0)), min(h - 1, int(y1))))
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


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


def _coco_rle(rle: dict) -> np.ndarray:
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, str):
        try:
            from pycocotools import mask as coco_mask
        except ImportError:
            raise MaskUnavailable("compressed COCO RLE needs pycocotools (`pip install pycocotools`), "
                                  "or export the masks as polygons") from None
        return coco_mask.decode({"size": [h, w], "counts": counts.encode()}).astype(bool)
    flat = np.zeros(h * w, dtype=bool)
    pos, value = 0, False
    for run in counts:
        flat[pos : pos + run] = value
        pos, value = pos + run, not value
    return flat.reshape(w, h).T  # COCO runs go down the columns


def _annotation_polygons(record: dict) -> tuple[list[np.ndarray], bool]:
    """Polygons of one LabelMe shape, V7 annotation or COCO annotation, and whether holes are even-odd."""
    if "points" in record:  # LabelMe shape
        pts = np.asarray(record["points"], dtype=float)
        if record.get("shape_type", "polygon") == "rectangle" and len(pts) == 2:
            (x0, y0), (x1, y1) = pts
            pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return [pts], False
    for key in ("polygon", "complex_polygon"):  # V7 Darwin 1.0 (path) and 2.0 (paths)
        if key in record:
            poly = record[key]
            paths = poly.get("paths") or poly.get("path") or []
            if paths and isinstance(paths[0], dict):
                paths = [paths]
            return [np.array([[p["x"], p["y"]] for p in path], dtype=float) for path in paths], True
    seg = record.get("segmentation")
    if isinstance(seg, list):  # COCO polygons: flat x, y lists, one per part
        return [np.asarray(s, dtype=float).reshape(-1, 2) for s in seg], False
    return [], False


@dataclass(frozen=True)
class _Entry:
    path: str
    kind: str  # "labelme", "v7", "coco", "png"
    key: str | int | None = None  # the image's id inside a COCO file


@lru_cache(maxsize=4)
def polygon_index(folder: str) -> dict[str, _Entry]:
    """Image name (stem) -> annotation, for every JSON / PNG file in `folder` (searched recursively)."""
    root = Path(folder)
    if not root.is_dir():
        raise MaskUnavailable(f"--polygons {folder}: not a folder")
    index: dict[str, _Entry] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() == ".png":
            index.setdefault(path.stem, _Entry(str(path), "png"))
        elif path.suffix.lower() == ".json":
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            if "shapes" in data:
                index[path.stem] = _Entry(str(path), "labelme")
                if data.get("imagePath"):
                    index.setdefault(Path(str(data["imagePath"]).replace("\\", "/")).stem, _Entry(str(path), "labelme"))
            elif "images" in data and "annotations" in data:
                for img in data["images"]:
                    index[Path(str(img["file_name"])).stem] = _Entry(str(path), "coco", img["id"])
            elif "annotations" in data:
                name = (data.get("image") or {}).get("filename") or (data.get("item") or {}).get("name")
                index[Path(name).stem if name else path.stem] = _Entry(str(path), "v7")
    return index


def _annotated_size(kind: str, data: dict, key) -> tuple[int, int] | None:
    if kind == "labelme" and data.get("imageHeight"):
        return int(data["imageHeight"]), int(data["imageWidth"])
    if kind == "v7":
        image = data.get("image") or {}
        slots = (data.get("item") or {}).get("slots") or [{}]
        where = image if image.get("height") else slots[0]
        size = (where.get("height"), where.get("width"))
        return (int(size[0]), int(size[1])) if size[0] else None
    if kind == "coco":
        img = next(i for i in data["images"] if i["id"] == key)
        return (int(img["height"]), int(img["width"])) if img.get("height") else None
    return None


def polygon_mask(entry: _Entry, shape: tuple[int, int]) -> np.ndarray:
    """The union of all annotated objects, scaled if the annotation was made on another size."""
    h, w = shape
    if entry.kind == "png":
        arr = np.asarray(Image.open(entry.path).convert("L"))
        if arr.shape != (h, w):
            arr = np.asarray(Image.fromarray(arr).resize((w, h), Image.NEAREST))
        return arr > 0
    data = _load_json(entry.path)
    if entry.kind == "labelme":
        records = [s for s in data["shapes"] if s.get("shape_type", "polygon") in ("polygon", "rectangle")]
    elif entry.kind == "v7":
        records = data["annotations"]
    else:
        records = [a for a in data["annotations"] if a.get("image_id") == entry.key]
    size = _annotated_size(entry.kind, data, entry.key) or (h, w)
    scale = np.array([w / size[1], h / size[0]])
    mask = np.zeros((h, w), dtype=bool)
    for record in records:
        seg = record.get("segmentation")
        if isinstance(seg, dict):
            part = _coco_rle(seg)
            if part.shape != (h, w):
                part = np.asarray(Image.fromarray(part).resize((w, h), Image.NEAREST))
            mask |= part
            continue
        polys, even_odd = _annotation_polygons(record)
        layer = np.zeros((h, w), dtype=bool)
        _fill(layer, [p * scale for p in polys], even_odd)
        mask |= layer
    return mask


@lru_cache(maxsize=8)
def _load_json(path: str) -> dict:
    return json.loads(Path(path).read_text())


def find_polygons(folder: str, image_id: str) -> _Entry | None:
    index = polygon_index(str(folder))
    for name in (image_id, Path(image_id).name, Path(image_id).stem):
        if name in index:
            return index[name]
    return None


# --- from a segmentation model ---------------------------------------------------------------------

@lru_cache(maxsize=2)
def _segmenter(model: str):
    from transformers import pipeline

    try:
        import torch

        device = 0 if torch.cuda.is_available() else -1
        return pipeline("image-segmentation", model=model, device=device)
    except OSError as exc:
        raise MaskUnavailable(f"segmentation model {model!r} could not be loaded ({exc}); pass a local folder "
                              "saved with save_pretrained, or download it first (`hf download MODEL`)") from None


def model_mask(image: np.ndarray, model: str, labels: tuple[str, ...] = ()) -> np.ndarray:
    """The segments named in `labels`, or else the largest segment that is not background/stuff."""
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
    candidates = [m for name, m in masks if name.lower() not in BACKGROUND_LABELS] or [m for _, m in masks]
    if not candidates:
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
    if not any(e.boxes for e in examples):
        verb = "needs" if len(configs) == 1 else "need"
        raise MaskUnavailable(f"{', '.join(configs)} {verb} foreground masks, but {source_name} has no bounding "
                              f"boxes; {HOW_TO_PROVIDE}")


def _require_model(model: str) -> None:
    """A local folder, or a Hub id already in the cache: masks are never made with a half-downloaded model."""
    if Path(model).expanduser().is_dir():
        return
    from huggingface_hub import try_to_load_from_cache

    if model.startswith((".", "/", "~")) or not isinstance(try_to_load_from_cache(model, "config.json"), str):
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
    if example.boxes:
        return "grabcut", example.boxes
    raise MaskUnavailable(f"{example.image_id}: no mask: no polygon annotation"
                          + (f" in {options.polygons}" if options.polygons else "")
                          + " and no bounding box for this image; " + HOW_TO_PROVIDE)


def compute_mask(example: Example, image: np.ndarray, options: MaskOptions) -> np.ndarray:
    kind, what = method_for(example, options)
    if kind == "polygons":
        return polygon_mask(what, image.shape[:2])
    if kind == "model":
        return model_mask(image, what, tuple(options.model_labels))
    # seeded from the image id only, so the mask (and its cache) is shared by every config and seed
    seed = int(generator(0, "mask:grabcut", example.image_id).integers(2**31 - 1))
    h, w = image.shape[:2]
    scale = min(1.0, options.grabcut_max_side / max(h, w)) if options.grabcut_max_side else 1.0
    if scale == 1.0:
        return grabcut(image, what, options.grabcut_iterations, seed)
    import cv2

    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    boxes = tuple(tuple(int(v * scale) for v in box) for box in what)
    mask = grabcut(small, boxes, options.grabcut_iterations, seed).astype(np.uint8) * 255
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) >= 128


class MaskCache:
    """Masks at source resolution as 1-bit PNGs under ROOT/<method hash>/<quoted image id>[-<boxes hash>].png.

    Written atomically (temporary name, then rename), so a killed run never leaves a partial mask.
    The boxes are part of the name: other boxes for the same image make another mask.
    """

    def __init__(self, root: str | Path, options: MaskOptions, source_name: str):
        key = json.dumps({"source": source_name, "masks": options.mask_key()}, sort_keys=True)
        self.dir = Path(root) / hashlib.sha256(key.encode()).hexdigest()[:16]
        self.key = key

    def path(self, example: Example) -> Path:
        boxes = f"-{hashlib.sha256(repr(example.boxes).encode()).hexdigest()[:10]}" if example.boxes else ""
        return self.dir / f"{quote(example.image_id, safe='')}{boxes}.png"

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
    """The cached mask of a decoded source image, computing (and caching) it on first use."""
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
    pool: tuple[Example, ...] = ()  # the planned images rand_bg draws its backgrounds from

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
            raise MaskUnavailable(f"{example.image_id}: rand_bg needs images of another class in the source, "
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
        raise MaskUnavailable(f"{example.image_id}: no readable background image of another class found")

    return draw


# --- engine hooks (called by generate.py) -------------------------------------------------------------

def _accepts(spec, name: str) -> bool:
    import inspect

    fn = spec.load_fn()
    return fn is not None and name in inspect.signature(fn).parameters


def fingerprint_extra(spec, context: MaskContext | None) -> str:
    """What besides the spec shapes a mask config's bytes: the mask method, and rand_bg's background pool."""
    if context is None:
        return ""
    extra = context.options.key()
    if not spec.batched and _accepts(spec, "background_provider"):
        extra += "\npool:" + context.pool_digest()
    return extra


def for_spec(spec, context: MaskContext | None) -> MaskContext | None:
    """The context a job of `spec` carries: the background pool only where the shift draws backgrounds."""
    if context is None or (not spec.batched and _accepts(spec, "background_provider")):
        return context
    return dataclasses.replace(context, pool=())


def extra_inputs(spec, context: MaskContext | None, source, example: Example, decoded: np.ndarray) -> dict:
    """Keyword inputs of a mask config for one decoded source image: `mask` (through the geometry), and
    `background_provider` for the shifts that take one. Raises MaskUnavailable (a BadImage) to skip it."""
    context = context or MaskContext(source_name=source.describe())
    mask = mask_for(example, decoded, context.options, context.cache())
    out = {"mask": follow_geometry(mask, spec.geometry)}
    if not spec.batched and _accepts(spec, "background_provider"):
        pool_context = context if context.pool else MaskContext(context.options, None, context.source_name, (example,))
        out["background_provider"] = background_provider(source, pool_context, spec.geometry, example)
    return out


def _precompute_one(args) -> None:
    context, source, example = args
    from .imaging import decode
    from .sources.base import SourceError

    try:
        arr, _ = decode(source.read(example), example.image_id)
        mask_for(example, arr, context.options, context.cache())
    except (BadImage, SourceError):
        pass  # the shard records why when it meets this image


def precompute(context: MaskContext, source, examples, num_proc: int = 1, state=None) -> None:
    """Fill the cache once per source image before any config runs, so no two workers compute the same mask."""
    cache = context.cache()
    context = dataclasses.replace(context, pool=())  # workers need the options and cache, not the pool
    if state is not None:
        state.wait_for_everyone()  # every process must see the same cache before splitting the work
    todo = [e for e in examples if cache is None or not cache.path(e).exists()]
    if cache is None or not todo:
        return
    if state is not None:
        with state.split_between_processes(todo) as mine:
            for e in mine:
                _precompute_one((context, source, e))
        state.wait_for_everyone()
    elif num_proc <= 1 or len(todo) < 2:
        for e in todo:
            _precompute_one((context, source, e))
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=num_proc, mp_context=get_context("spawn")) as pool:
            list(pool.map(_precompute_one, [(context, source, e) for e in todo], chunksize=8))


def preflight(specs, examples: list[Example], options: MaskOptions, source_name: str) -> None:
    """Everything that can fail for a whole config fails here, before a single shard is written."""
    names = [s.name for s in specs]
    require_masks(examples, options, names, source_name)
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

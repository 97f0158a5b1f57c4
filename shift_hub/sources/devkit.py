"""ILSVRC-2012 validation in its devkit layout.

The devkit's ground truth uses ILSVRC CLS-LOC IDs, which are NOT the WNID-sorted 0..999 index
models use: each ID is mapped to its WNID through meta_clsloc.mat (or the 2012 devkit's meta.mat)
and the WNID to the standard index.
"""
from __future__ import annotations

import hashlib
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .. import classes
from .base import Box, Example, Source, SourceError, printable_name

# ASCII digits only: \d and int() also read other scripts' digits, which would relabel a stray file as image N
IMAGE_RE = re.compile(r"ILSVRC2012_val_(\d{8})\.(JPEG|jpeg|jpg|JPG|png)$", re.ASCII)
GROUND_TRUTH = ("ILSVRC2015_clsloc_validation_ground_truth.txt", "ILSVRC2012_validation_ground_truth.txt")
META = ("meta_clsloc.mat", "meta.mat")
BLACKLIST = ("ILSVRC2015_clsloc_validation_blacklist.txt", "ILSVRC2012_validation_blacklist.txt")
BOX_DIRS = ("bbox_val", "val_annotations", "Annotations/CLS-LOC/val", "ILSVRC/Annotations/CLS-LOC/val", "val")


def _find(root: Path, names: tuple[str, ...], sub: tuple[str, ...] = ("data", "devkit/data", "ILSVRC2012_devkit_t12/data", ".")) -> Path | None:
    for s in sub:
        for n in names:
            p = root / s / n
            if p.is_file():
                return p
    return None


def read_meta(path: Path) -> dict[int, str]:
    """ILSVRC ID -> WNID from the devkit's MATLAB struct array `synsets`."""
    from scipy.io import loadmat

    try:
        synsets = loadmat(str(path), squeeze_me=True, struct_as_record=False)["synsets"]
    except Exception as exc:
        raise SourceError(f"{path}: cannot read the devkit's synsets ({exc}); re-extract the devkit") from None
    out = {}
    for s in synsets:
        id_field = next(f for f in s._fieldnames if re.fullmatch(r"ILSVRC20\d\d(_CLSLOC)?_ID", f))
        out[int(getattr(s, id_field))] = str(s.WNID)
    return out


@dataclass(frozen=True)
class BoxFile:
    """What an ILSVRC box XML says besides its boxes, so the masks can check it against the decoded image.

    A malformed file does not stop a run: `error` holds the reason, and the images whose masks would come
    from it are skipped with that reason (configs that need no masks never look at it).
    """

    name: str  # the XML's file name, without its folder (reasons are stable text)
    sha256: str  # its content: an edited annotation makes another mask and another fingerprint
    size: tuple[int, int] | None = None  # <size>: width, height
    filename: str | None = None  # <filename>
    error: str | None = None  # why its boxes cannot be used


@dataclass(frozen=True)
class DevkitExample(Example):
    """An Example whose boxes come with their XML's own account of the image (see shift_hub.masks.check_boxes)."""

    box_file: BoxFile | None = None


def _number(text: str | None, what: str) -> float:
    if text is None or not text.strip():
        raise ValueError(f"{what} is missing")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} is {text.strip()[:20]!r}, not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} is {text.strip()[:20]!r}, not a finite number")
    return value


def read_box_file(xml_path: Path) -> tuple[tuple[Box, ...] | None, BoxFile]:
    """The boxes of one ILSVRC XML (None when it cannot be read) and what it says about its image."""
    name = xml_path.name
    try:
        data = xml_path.read_bytes()
    except OSError as exc:
        return None, BoxFile(name, "", error=f"bad box annotation: cannot read {name} ({exc.strerror or 'error'})")
    digest = hashlib.sha256(data).hexdigest()
    try:
        root = ET.fromstring(data)
        boxes = []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            if bb is not None:
                boxes.append(tuple(int(_number(bb.findtext(k), f"<{k}>")) for k in ("xmin", "ymin", "xmax", "ymax")))
        size = None
        if root.find("size") is not None:
            w, h = (_number(root.findtext(f"size/{k}"), f"<size><{k}>") for k in ("width", "height"))
            if w != int(w) or h != int(h) or w < 1 or h < 1:
                raise ValueError(f"<size> {w:g}x{h:g} is not a positive whole number of pixels")
            size = (int(w), int(h))
        filename = (root.findtext("filename") or "").strip() or None
    except ET.ParseError as exc:
        detail = f"not well-formed XML ({exc})"
    except ValueError as exc:
        detail = str(exc)
    else:
        return tuple(boxes), BoxFile(name, digest, size, filename)
    return None, BoxFile(name, digest, error=f"bad box annotation: {name}: {detail}; fix or remove the file")


class Devkit(Source):
    """`root` holds `val/` (flat images) and the devkit's `data/` (or point `devkit` elsewhere)."""

    name = "devkit"

    def __init__(self, root: str | Path, devkit: str | Path | None = None, exclude_blacklist: bool = False,
                 boxes: str | Path | None = None):
        self.root = Path(root)
        self.devkit = Path(devkit) if devkit else self.root
        self.exclude_blacklist = exclude_blacklist
        self.boxes = Path(boxes) if boxes else None

    def _image_dir(self) -> Path:
        for d in ("val", "ILSVRC2012_img_val", "Data/CLS-LOC/val", "."):
            p = self.root / d
            if p.is_dir() and any(IMAGE_RE.match(f.name) for f in p.iterdir()):
                return p
        raise SourceError(f"{self.root}: no ILSVRC2012_val_XXXXXXXX.JPEG files found in val/ or {self.root}; "
                          "extract ILSVRC2012_img_val.tar into ROOT/val")

    def _box_dir(self) -> Path | None:
        if self.boxes:
            return self.boxes
        for d in BOX_DIRS:
            p = self.root / d
            if p.is_dir() and any(p.glob("ILSVRC2012_val_*.xml")):
                return p
        return None

    def examples(self) -> Iterator[Example]:
        gt_path, meta_path = _find(self.devkit, GROUND_TRUTH), _find(self.devkit, META)
        if gt_path is None or meta_path is None:
            raise SourceError(f"{self.devkit}: the devkit's data/{GROUND_TRUTH[0]} and data/{META[0]} are needed "
                              "to label the validation images; extract the ILSVRC devkit there or pass --devkit DIR")
        id_to_wnid = read_meta(meta_path)
        ground_truth = [int(x) for x in gt_path.read_text().split()]
        skip: set[int] = set()
        if self.exclude_blacklist:
            bl = _find(self.devkit, BLACKLIST)
            if bl is None:
                raise SourceError(f"{self.devkit}: --exclude-blacklist needs data/{BLACKLIST[0]} from the devkit")
            skip = {int(x) for x in bl.read_text().split()}
        box_dir = self._box_dir()
        image_dir = self._image_dir()
        for path in sorted(image_dir.iterdir()):
            m = IMAGE_RE.match(path.name)
            if not m:
                continue
            number = int(m.group(1))
            if number in skip:
                continue
            if not 1 <= number <= len(ground_truth):
                raise SourceError(f"{path}: image number {number} has no entry in {gt_path} "
                                  f"({len(ground_truth)} lines); is the ground truth file complete?")
            wnid = id_to_wnid.get(ground_truth[number - 1])
            if wnid is None:
                raise SourceError(f"{gt_path}: ID {ground_truth[number - 1]} (line {number}) is not in {meta_path}")
            boxes = box_file = None
            if box_dir is not None and (box_dir / f"{path.stem}.xml").is_file():
                boxes, box_file = read_box_file(box_dir / f"{path.stem}.xml")  # a bad file: skipped per image
            yield DevkitExample(path.stem, (classes.index_of(wnid),), str(path), boxes, box_file)

    def describe(self) -> str:
        # the folder's name only: full paths would leak into public cards and make bytes machine-dependent
        excluded = " (blacklist excluded)" if self.exclude_blacklist else ""
        return f"devkit ILSVRC-2012 val ({printable_name(self.root.resolve().name)})" + excluded

"""The established ImageNet shift sets in the layouts their authors distribute them in.

Each reader yields Examples like every other source, so the evaluation runner scores them
unchanged; only the folder conventions differ:

- ImageNetV2 (Recht et al. 2019): `imagenetv2-<variant>-format-val/<class index 0..999>/*.jpeg`.
- ImageNet-Sketch `sketch/<wnid>/`, ImageNet-A / -O / -R `<wnid>/`: class folders (`Folders`).
- ImageNet-C (Hendrycks & Dietterich 2019): `<corruption>/<severity 1-5>/<wnid>/*.JPEG`.
- ImageNet-P: `<perturbation>/<wnid>/*.mp4` (the release's videos); a folder of frame images per
  sequence (`<perturbation>/<wnid>/<sequence>/*.png|jpg`) is read too.
- ReaL (Beyer et al. 2020): the validation images named ILSVRC2012_val_XXXXXXXX, labelled by the
  ReaL label sets timm ships, indexed by the image number (ILSVRC2012_val_00000001 -> entry 0).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from .. import classes
from .base import Example, Source, SourceError
from .folders import IMAGE_SUFFIXES, Folders

IMAGENET_V2_VARIANTS = ("matched-frequency", "threshold0.7", "top-images")
VAL_NAME_RE = re.compile(r"^ILSVRC2012_val_(\d{8})$")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def imagenet_v2_folder(variant: str) -> str:
    if variant not in IMAGENET_V2_VARIANTS:
        raise SourceError(f"unknown ImageNetV2 variant {variant!r}; known: {', '.join(IMAGENET_V2_VARIANTS)}")
    return f"imagenetv2-{variant}-format-val"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)



def _named_folders(root: Path, matches) -> dict[str, Path]:
    """name -> folder for the folders under `root` that `matches`, looking through one level of grouping
    folders (the releases' per-category archives, e.g. blur/motion_blur/) when a folder itself does not."""
    found: dict[str, Path] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if matches(d):
            found[d.name] = d
        else:
            found.update({g.name: g for g in sorted(d.iterdir()) if g.is_dir() and matches(g)})
    return found

class ImageNetV2(Source):
    """One ImageNetV2 variant: folders named by the class index (0..999, standard WNID order)."""

    name = "imagenet_v2"

    def __init__(self, root: str | Path, variant: str | None = None):
        self.root = Path(root)
        self.variant = variant or next((v for v in IMAGENET_V2_VARIANTS if imagenet_v2_folder(v) in self.root.name),
                                       self.root.name)

    def examples(self) -> Iterator[Example]:
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: not a directory; expected <root>/<class index 0..999>/*.jpeg")
        dirs = [d for d in self.root.iterdir() if d.is_dir()]
        bad = [d.name for d in dirs if not (d.name.isdigit() and 0 <= int(d.name) < 1000)]
        if bad or not dirs:
            raise SourceError(f"{self.root}: ImageNetV2 class folders are named 0..999; found {bad[:5] or 'none'}")
        for d in sorted(dirs, key=lambda d: int(d.name)):
            for path in _images(d):
                yield Example(f"{d.name}/{path.stem}", (int(d.name),), str(path))

    def describe(self) -> str:
        return f"ImageNetV2 {self.variant} at {self.root}"


class ImageNetC(Source):
    """ImageNet-C as distributed; `examples()` walks every corruption and severity, `part()` one of them."""

    name = "imagenet_c"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def corruption_folders(self) -> dict[str, Path]:
        """corruption -> folder; the release's per-category tars (noise, blur, weather, digital) may
        have been extracted one level deeper, so one level of grouping folders is looked through."""
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: not a directory; expected <root>/<corruption>/<1-5>/<wnid>/*.JPEG")

        def has_severities(d: Path) -> bool:
            return any(s.is_dir() and s.name.isdigit() for s in d.iterdir())

        found = _named_folders(self.root, has_severities)
        if not found:
            raise SourceError(f"{self.root}: no <corruption>/<severity>/ folders; expected the ImageNet-C layout")
        return dict(sorted(found.items()))

    def parts(self) -> list[tuple[str, int]]:
        """(corruption, severity) pairs present, corruptions sorted, severities ascending."""
        return [(name, int(s.name)) for name, folder in self.corruption_folders().items()
                for s in sorted((s for s in folder.iterdir() if s.is_dir() and s.name.isdigit()), key=lambda s: int(s.name))]

    def part(self, corruption: str, severity: int) -> Folders:
        return Folders(self.corruption_folders()[corruption] / str(severity))

    def examples(self) -> Iterator[Example]:
        for corruption, severity in self.parts():
            for ex in self.part(corruption, severity).examples():
                yield Example(f"{corruption}/{severity}/{ex.image_id}", ex.labels, ex.locator)

    def describe(self) -> str:
        return f"ImageNet-C (distributed layout) at {self.root}"


class RealValidation(Source):
    """ILSVRC-2012 validation images (flat, or re-sorted into class folders) with ReaL label sets.

    The label set of image N is entry N-1 of timm's `imagenet_real_labels.json`; an empty set
    (an image the ReaL raters found no valid ImageNet class for) is kept as an Example with no labels.
    """

    name = "real"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def examples(self) -> Iterator[Example]:
        real = classes.real_labels()
        found = 0
        for path in sorted(self._files(), key=lambda p: p.name):
            m = VAL_NAME_RE.match(path.stem)
            number = int(m.group(1))
            if not 1 <= number <= len(real):
                raise SourceError(f"{path}: validation image number {number} outside ReaL's 1..{len(real)}")
            found += 1
            yield Example(path.stem, tuple(real[number - 1]), str(path))
        if not found:
            raise SourceError(f"{self.root}: no ILSVRC2012_val_XXXXXXXX images (flat or in class folders)")

    def _files(self) -> Iterator[Path]:
        for path in self.root.iterdir():
            if path.is_dir():
                yield from (p for p in path.iterdir() if VAL_NAME_RE.match(p.stem) and p.suffix.lower() in IMAGE_SUFFIXES)
            elif VAL_NAME_RE.match(path.stem) and path.suffix.lower() in IMAGE_SUFFIXES:
                yield path

    def describe(self) -> str:
        return f"ImageNet validation with ReaL labels at {self.root}"


def is_class_folders(root: Path) -> bool:
    index = classes.wnid_to_index()
    return root.is_dir() and any(d.is_dir() and d.name in index for d in root.iterdir())


class ImageNetP(Source):
    """ImageNet-P perturbation sequences. Examples are whole sequences (locator: the video file or
    frame folder); `frames(example)` decodes one into RGB uint8 arrays in temporal order."""

    name = "imagenet_p"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def perturbation_folders(self) -> dict[str, Path]:
        """perturbation -> folder, looking through one level of grouping folders (as for ImageNet-C)."""
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: not a directory; expected <root>/<perturbation>/<wnid>/*.mp4")
        found = _named_folders(self.root, is_class_folders)
        if not found:
            raise SourceError(f"{self.root}: no <perturbation>/<wnid>/ folders; expected the ImageNet-P layout")
        return dict(sorted(found.items()))

    def perturbations(self) -> list[str]:
        return list(self.perturbation_folders())

    def sequences(self, perturbation: str) -> Iterator[Example]:
        index = classes.wnid_to_index()
        folder = self.perturbation_folders()[perturbation]
        for d in sorted(p for p in folder.iterdir() if p.is_dir()):
            if d.name not in index:
                raise SourceError(f"{d}: not an ImageNet-1k WNID folder")
            for item in sorted(d.iterdir()):
                if item.is_file() and item.suffix.lower() in VIDEO_SUFFIXES:
                    yield Example(f"{perturbation}/{d.name}/{item.stem}", (index[d.name],), str(item))
                elif item.is_dir() and _images(item):
                    yield Example(f"{perturbation}/{d.name}/{item.name}", (index[d.name],), str(item))

    def examples(self) -> Iterator[Example]:
        for perturbation in self.perturbations():
            yield from self.sequences(perturbation)

    def frames(self, example: Example) -> list:
        return read_frames(example.locator)

    def describe(self) -> str:
        return f"ImageNet-P (perturbation sequences) at {self.root}"


def read_frames(locator: str | Path) -> list:
    """All frames of a sequence as RGB uint8 arrays: a video decoded with OpenCV (as the reference
    loader does) or a folder of frame images in name order."""
    import cv2
    import numpy as np
    from PIL import Image

    path = Path(locator)
    if path.is_dir():
        return [np.asarray(Image.open(p).convert("RGB")) for p in _images(path)]
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise SourceError(f"{path}: no frames could be decoded (is OpenCV built with FFmpeg?)")
    return frames


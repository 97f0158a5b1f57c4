"""The established ImageNet shift sets in the layouts their authors distribute them in.

Each reader yields Examples like every other source, so the evaluation runner scores them
unchanged; only the folder conventions differ:

- ImageNetV2 (Recht et al. 2019): `imagenetv2-<variant>-format-val/<class index 0..999>/*.jpeg`.
- ImageNet-Sketch `sketch/<wnid>/`, ImageNet-A / -O / -R `<wnid>/`: class folders (`ClassFolders`).
- ImageNet-C (Hendrycks & Dietterich 2019): `<corruption>/<severity 1-5>/<wnid>/*.JPEG`.
- ImageNet-P: `<perturbation>/<wnid>/*.mp4` (the release's videos); a folder of frame images per
  sequence (`<perturbation>/<wnid>/<sequence>/*.png|jpg`) is read too.
- ReaL (Beyer et al. 2020): the validation images named ILSVRC2012_val_XXXXXXXX, labelled by the
  ReaL label sets timm ships, indexed by the image number (ILSVRC2012_val_00000001 -> entry 0).

These are big downloads extracted by hand, so a stray entry (a `junk/` folder, a text file named
`.jpg`, a symlink loop) must not stop a set: the readers leave such entries out and list each in
`skipped` with a stable reason; a SourceError means the set as a whole cannot be read.
"""
from __future__ import annotations

import errno
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .. import classes
from .base import NOT_UTF8, Example, Source, SourceError, is_utf8_name, printable_name
from .folders import IMAGE_SUFFIXES

IMAGENET_V2_VARIANTS = ("matched-frequency", "threshold0.7", "top-images")
VAL_NAME_RE = re.compile(r"^ILSVRC2012_val_(\d{8})$", re.ASCII)  # \d and int() read other scripts' digits too
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def imagenet_v2_folder(variant: str) -> str:
    if variant not in IMAGENET_V2_VARIANTS:
        raise SourceError(f"unknown ImageNetV2 variant {variant!r}; known: {', '.join(IMAGENET_V2_VARIANTS)}")
    return f"imagenetv2-{variant}-format-val"


# ----------------------------------------------------------------------------------------------
# listing folders without tripping on stray entries
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Skip:
    """An entry left out of a set: its path and why (stable text: no folders, no reprs)."""
    path: str
    reason: str

    def __post_init__(self):  # a name that is not UTF-8 is still listed, escaped, in results that must be UTF-8
        object.__setattr__(self, "path", printable_name(str(self.path)))


def _os_reason(path: Path, exc: OSError) -> str:
    """Why an entry cannot be followed, in words that do not depend on where the data is mounted."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return "broken symlink"
    return exc.strerror or type(exc).__name__


def list_folder(folder: Path) -> tuple[list[Path], list[Path], list[Skip]]:
    """(sub-folders, files, entries that cannot be followed) of `folder`, sorted by name. Hidden entries
    (.DS_Store, ._x.jpg) belong to no release and are left out. SourceError if it cannot be listed."""
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise SourceError(f"cannot list the folder ({_os_reason(folder, exc)}): {folder.name}") from None
    dirs, files, skipped = [], [], []
    for p in entries:
        try:
            mode = p.stat().st_mode
        except OSError as exc:
            reason = _os_reason(p, exc)
            skipped.append(Skip(str(p), reason if "symlink" in reason else f"cannot be read ({reason})"))
            continue
        if stat.S_ISDIR(mode):
            dirs.append(p)
        elif stat.S_ISREG(mode):
            files.append(p)
        else:
            skipped.append(Skip(str(p), "not a regular file or folder"))
    return dirs, files, skipped


def _without_name(exc: SourceError) -> str:
    return str(exc).rsplit(": ", 1)[0]


def _not_image(path: Path) -> str:
    return f"not an image file ({path.suffix.lower() or 'no suffix'})"


def _labelled_folders(root: Path, label_of: Callable[[str], int | None], what: str,
                      skipped: list[Skip]) -> Iterator[Example]:
    """Examples `<folder name>/<stem>` of `root/<folder>/<image>`, the label from the folder name; every
    entry that is not such an image goes to `skipped`. SourceError when no folder is a class folder."""
    dirs, files, bad = list_folder(root)
    skipped += bad
    skipped += [Skip(str(f), "image outside a class folder (no label)") for f in files
                if f.suffix.lower() in IMAGE_SUFFIXES]
    labelled = [(d, label_of(d.name)) for d in dirs]
    skipped += [Skip(str(d), f"not a class folder (not {what})") for d, label in labelled if label is None]
    labelled = [(d, label) for d, label in labelled if label is not None]
    if not labelled:
        found = [d.name for d in dirs][:5]
        raise SourceError(f"no class folders named by {what} (found {found or 'none'}): {root.name}")
    for d, label in labelled:
        try:
            sub, images, bad = list_folder(d)
        except SourceError as exc:
            skipped.append(Skip(str(d), _without_name(exc)))
            continue
        skipped += bad + [Skip(str(s), "a folder inside a class folder") for s in sub]
        skipped += [Skip(str(f), _not_image(f)) for f in images if f.suffix.lower() not in IMAGE_SUFFIXES]
        skipped += [Skip(str(f), NOT_UTF8) for f in images
                    if f.suffix.lower() in IMAGE_SUFFIXES and not is_utf8_name(f.name)]
        for path in images:
            if path.suffix.lower() in IMAGE_SUFFIXES and is_utf8_name(path.name):
                yield Example(f"{d.name}/{path.stem}", (label,), str(path))


def _named_folders(root: Path, matches: Callable[[Path], bool], what: str) -> tuple[dict[str, Path], list[Skip]]:
    """(name -> folder for the folders under `root` that `matches`, the folders left out), looking through
    one level of grouping folders (the releases' per-category archives, e.g. blur/motion_blur/) when a
    folder itself does not match. Files beside them (README.txt) are not entries of the set."""
    found: dict[str, Path] = {}
    dirs, _, skipped = list_folder(root)
    for d in dirs:
        if matches(d):
            found[d.name] = d
            continue
        try:
            inner, _, bad = list_folder(d)
        except SourceError as exc:
            skipped.append(Skip(str(d), _without_name(exc)))
            continue
        hits = {g.name: g for g in inner if matches(g)}
        found.update(hits)
        if hits:  # a grouping folder: what else it holds is left out
            skipped += bad + [Skip(str(g), f"not {what}") for g in inner if g.name not in hits]
        else:
            skipped.append(Skip(str(d), f"not {what}"))
    return found, skipped


def _safe(predicate: Callable[[Path], bool]) -> Callable[[Path], bool]:
    def check(folder: Path) -> bool:
        try:
            return predicate(folder)
        except (OSError, SourceError):
            return False
    return check


# ----------------------------------------------------------------------------------------------
# the sets
# ----------------------------------------------------------------------------------------------

class ClassFolders(Source):
    """`<root>/<wnid>/<image>`; unlike `Folders`, stray entries are listed in `skipped`, not fatal."""

    name = "class_folders"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.skipped: list[Skip] = []

    def examples(self) -> Iterator[Example]:
        self.skipped = []
        index = classes.wnid_to_index()
        yield from _labelled_folders(self.root, index.get, "an ImageNet-1k WNID such as n01440764", self.skipped)

    def describe(self) -> str:
        return f"class folders ({self.root.name})"


def _v2_label(name: str) -> int | None:
    return int(name) if name.isdigit() and 0 <= int(name) < 1000 else None


class ImageNetV2(Source):
    """One ImageNetV2 variant: folders named by the class index (0..999, standard WNID order)."""

    name = "imagenet_v2"

    def __init__(self, root: str | Path, variant: str | None = None):
        self.root = Path(root)
        self.variant = variant or next((v for v in IMAGENET_V2_VARIANTS if imagenet_v2_folder(v) in self.root.name),
                                       self.root.name)
        self.skipped: list[Skip] = []

    def examples(self) -> Iterator[Example]:
        self.skipped = []
        yield from _labelled_folders(self.root, _v2_label, "a class index 0..999", self.skipped)

    def describe(self) -> str:
        return f"ImageNetV2 {self.variant} at {self.root}"


def _has_severities(d: Path) -> bool:
    return any(s.name.isdigit() for s in list_folder(d)[0])


class ImageNetC(Source):
    """ImageNet-C as distributed; `examples()` walks every corruption and severity, `part()` one of them.
    `skipped` lists the folders that are neither corruptions nor severities."""

    name = "imagenet_c"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._layout: tuple[dict[str, Path], list[Skip]] | None = None

    def _scan(self) -> tuple[dict[str, Path], list[Skip]]:
        if self._layout is None:
            if self.root.is_file():
                raise SourceError(f"a file; expected <root>/<corruption>/<1-5>/<wnid>/*.JPEG: {self.root.name}")
            found, skipped = _named_folders(self.root, _safe(_has_severities), "a corruption folder (no 1-5 inside)")
            if not found:
                raise SourceError(f"no <corruption>/<severity>/ folders (the ImageNet-C layout): {self.root.name}")
            for folder in found.values():
                skipped += [Skip(str(s), "not a severity folder (1-5)") for s in list_folder(folder)[0]
                            if not s.name.isdigit()]
            self._layout = dict(sorted(found.items())), skipped
        return self._layout

    @property
    def skipped(self) -> list[Skip]:
        return list(self._scan()[1])

    def corruption_folders(self) -> dict[str, Path]:
        """corruption -> folder; the release's per-category tars (noise, blur, weather, digital) may
        have been extracted one level deeper, so one level of grouping folders is looked through."""
        return dict(self._scan()[0])

    def parts(self) -> list[tuple[str, int]]:
        """(corruption, severity) pairs present, corruptions sorted, severities ascending."""
        return [(name, int(s.name)) for name, folder in self.corruption_folders().items()
                for s in sorted((s for s in list_folder(folder)[0] if s.name.isdigit()), key=lambda s: int(s.name))]

    def part(self, corruption: str, severity: int) -> ClassFolders:
        return ClassFolders(self.corruption_folders()[corruption] / str(severity))

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
    try:
        return root.is_dir() and any(d.name in index for d in list_folder(root)[0])
    except SourceError:
        return False


class ImageNetP(Source):
    """ImageNet-P perturbation sequences. Examples are whole sequences (locator: the video file or
    frame folder); `frames(example)` decodes one into RGB uint8 arrays in temporal order. `skipped`
    lists the entries of the perturbations read so far that are not sequences."""

    name = "imagenet_p"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._layout: tuple[dict[str, Path], list[Skip]] | None = None
        self._skipped_in: dict[str, list[Skip]] = {}

    def _scan(self) -> tuple[dict[str, Path], list[Skip]]:
        if self._layout is None:
            if self.root.is_file():
                raise SourceError(f"a file; expected <root>/<perturbation>/<wnid>/*.mp4: {self.root.name}")
            found, skipped = _named_folders(self.root, is_class_folders, "a perturbation folder (no <wnid>/ inside)")
            if not found:
                raise SourceError(f"no <perturbation>/<wnid>/ folders (the ImageNet-P layout): {self.root.name}")
            self._layout = dict(sorted(found.items())), skipped
        return self._layout

    @property
    def skipped(self) -> list[Skip]:
        return [*self._scan()[1], *(s for p in sorted(self._skipped_in) for s in self._skipped_in[p])]

    def perturbation_folders(self) -> dict[str, Path]:
        """perturbation -> folder, looking through one level of grouping folders (as for ImageNet-C)."""
        return dict(self._scan()[0])

    def perturbations(self) -> list[str]:
        return list(self.perturbation_folders())

    def sequences(self, perturbation: str) -> list[Example]:
        index = classes.wnid_to_index()
        skipped: list[Skip] = []
        out = []
        dirs, _, bad = list_folder(self.perturbation_folders()[perturbation])
        skipped += bad
        for d in dirs:
            if d.name not in index:
                skipped.append(Skip(str(d), "not a class folder (not an ImageNet-1k WNID such as n01440764)"))
                continue
            try:
                sub, files, bad = list_folder(d)
            except SourceError as exc:
                skipped.append(Skip(str(d), _without_name(exc)))
                continue
            skipped += bad + [Skip(str(item), NOT_UTF8) for item in files + sub if not is_utf8_name(item.name)]
            files, sub = [f for f in files if is_utf8_name(f.name)], [s for s in sub if is_utf8_name(s.name)]
            for item in files:
                if item.suffix.lower() in VIDEO_SUFFIXES:
                    out.append(Example(f"{perturbation}/{d.name}/{item.stem}", (index[d.name],), str(item)))
                else:
                    skipped.append(Skip(str(item), f"not a video file ({item.suffix.lower() or 'no suffix'})"))
            for item in sub:
                if frame_files(item):
                    out.append(Example(f"{perturbation}/{d.name}/{item.name}", (index[d.name],), str(item)))
                else:
                    skipped.append(Skip(str(item), "a folder without frame images"))
        self._skipped_in[perturbation] = skipped
        return out

    def examples(self) -> Iterator[Example]:
        for perturbation in self.perturbations():
            yield from self.sequences(perturbation)

    def frames(self, example: Example) -> list:
        return read_frames(example.locator)

    def describe(self) -> str:
        return f"ImageNet-P (perturbation sequences) at {self.root}"


def frame_files(folder: Path) -> list[Path]:
    """The frame images of a frame-folder sequence, in name (= temporal) order."""
    try:
        return [p for p in list_folder(folder)[1] if p.suffix.lower() in IMAGE_SUFFIXES]
    except SourceError:
        return []


def frame_count(locator: str | Path) -> int:
    """Frames in a sequence without decoding it when the video's header says (else by decoding)."""
    import cv2

    path = Path(locator)
    if path.is_dir():
        return len(frame_files(path))
    capture = cv2.VideoCapture(str(path))
    n = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    return n if n > 0 else len(read_frames(path))


def read_frames(locator: str | Path) -> list:
    """All frames of a sequence as RGB uint8 arrays: a video decoded with OpenCV (as the reference
    loader does) or a folder of frame images in name order. SourceError `reason: file name` otherwise."""
    import cv2
    import numpy as np
    from PIL import Image

    path = Path(locator)
    if path.is_dir():
        frames = []
        for p in frame_files(path):
            try:
                with Image.open(p) as image:
                    frames.append(np.asarray(image.convert("RGB")))
            except Exception as exc:  # any undecodable frame: the sequence cannot be compared frame to frame
                raise SourceError(f"frame image cannot be decoded ({type(exc).__name__}): {p.name}") from None
        return frames
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
        raise SourceError(f"no frames could be decoded (a damaged video, or OpenCV without FFmpeg): {path.name}")
    return frames

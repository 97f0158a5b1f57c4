"""Image subsets: RobustBench's 5,000 ImageNet validation images, or any list of image ids.

RobustBench (Croce et al. 2021) scores ImageNet models, clean and under ImageNet-C, on a fixed random 5,000 of
the 50,000 validation images; its list ships in shift_hub/data/robustbench/ (MIT, see NOTICE.md there).
`--subset robustbench`, or `--subset FILE` (one id a line), keeps exactly the listed images, so the numbers sit
beside its leaderboard. A listed image the source or folder lacks is refused, never left out: a smaller subset
would silently be another benchmark.

Ids match by the validation file's stem (`ILSVRC2012_val_00015253`) whatever the layout: a devkit's
`ILSVRC2012_val_00015253`, class folders' `n09468604/ILSVRC2012_val_00015253`. A WNID in the list must name the
image's label in the source: another class means another label mapping, refused rather than scored.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .sources.base import Example, Source, SourceError

ROBUSTBENCH = "robustbench"
ROBUSTBENCH_LIST = Path(__file__).parent / "data" / "robustbench" / "imagenet_test_image_ids.txt"
_WNID = re.compile(r"n\d{8}", re.ASCII)
_IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
SHOWN = 3  # missing ids named in an error


class SubsetError(SourceError):
    """A subset list that cannot be read, or a source or folder that does not hold all of its images."""


@dataclass(frozen=True)
class Subset:
    name: str  # `robustbench`, or the list file's name (never its folder: results and cards are shared)
    ids: tuple[str, ...]  # the file stems, in list order
    wnids: tuple[str | None, ...]  # the WNID each line names, or None
    sha256: str  # of the list file's bytes

    def record(self) -> dict:
        """What results.json says about it."""
        return {"name": self.name, "images": len(self.ids), "sha256": self.sha256}

    def describe(self) -> str:
        """Appended to the source's description in shard footers and the card."""
        return f"; subset {self.name} ({len(self.ids)} images, id list sha256 {self.sha256[:16]})"


def load(spec: str | Path | Subset) -> Subset:
    """`robustbench` (the shipped list) or a file of ids; SubsetError naming the file and line otherwise."""
    if isinstance(spec, Subset):
        return spec
    if str(spec) == ROBUSTBENCH:
        return parse(ROBUSTBENCH_LIST.read_bytes(), ROBUSTBENCH)
    path = Path(spec)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubsetError(f"--subset {spec}: cannot read the id list ({exc.strerror or type(exc).__name__}); "
                          f"give `{ROBUSTBENCH}` or a file with one image id a line") from None
    return parse(data, path.name)


def parse(data: bytes, name: str) -> Subset:
    """One id a line, `WNID/ILSVRC2012_val_XXXXXXXX.JPEG` or the bare id; blank lines and `#` comments ignored."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SubsetError(f"subset {name}: not UTF-8 text; give one image id a line") from None
    ids, wnids, seen = [], [], {}
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        wnid, stem = _entry(entry, name, number)
        if stem in seen:
            raise SubsetError(f"subset {name}: line {number}: {stem} is listed twice (first on line {seen[stem]})")
        seen[stem] = number
        ids.append(stem)
        wnids.append(wnid)
    if not ids:
        raise SubsetError(f"subset {name}: lists no image ids; give one image id a line")
    return Subset(name, tuple(ids), tuple(wnids), hashlib.sha256(data).hexdigest())


def _entry(entry: str, name: str, number: int) -> tuple[str | None, str]:
    from . import classes

    parts = entry.replace("\\", "/").split("/")
    stem = key_of(parts[-1])
    if not stem:
        raise SubsetError(f"subset {name}: line {number}: {entry!r} names no image")
    wnid = parts[-2] if len(parts) > 1 and _WNID.fullmatch(parts[-2]) else None
    if wnid is not None and wnid not in classes.wnid_to_index():
        raise SubsetError(f"subset {name}: line {number}: {wnid} is not one of the 1000 ImageNet-1k WNIDs")
    return wnid, stem


def key_of(image_id: str) -> str:
    """The file stem an id is matched by: `n09468604/ILSVRC2012_val_00015253.JPEG` -> `ILSVRC2012_val_00015253`."""
    name = str(image_id).rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in _IMAGE_SUFFIXES else name


# --- restricting examples (generate) and rows (evaluate) ------------------------------------------------

def select(examples: Iterable[Example], subset: Subset, where: str) -> list[Example]:
    """The examples of the subset's images, in their given order; SubsetError when one is missing, named
    twice, or labelled with another class than the list's WNID."""
    examples = list(examples)
    rows = keep_rows([e.image_id for e in examples], [e.labels for e in examples], subset, where,
                     fix="point --source at a set that holds them all (e.g. the whole ILSVRC-2012 validation set)")
    return [examples[r] for r in rows]


def keep_rows(image_ids: Sequence[str], labels: Sequence[Sequence[int]], subset: Subset, where: str,
              fix: str = "") -> list[int]:
    """Indices (ascending) of the rows holding the subset's images, every listed image exactly once."""
    wanted = {stem: i for i, stem in enumerate(subset.ids)}
    found: dict[str, int] = {}
    for r, image_id in enumerate(image_ids):
        key = key_of(image_id)
        if key not in wanted:
            continue
        if key in found:
            raise SubsetError(f"{where}: {image_ids[found[key]]} and {image_id} are both {key} of subset "
                              f"{subset.name}; each listed id must name one image")
        found[key] = r
    _refuse_missing(subset, found, where, fix)
    for key, r in found.items():
        _check_label(subset, subset.wnids[wanted[key]], image_ids[r], labels[r], where)
    return sorted(found.values())


def _refuse_missing(subset: Subset, found: dict, where: str, fix: str) -> None:
    missing = [stem for stem in subset.ids if stem not in found]
    if missing:
        shown = ", ".join(missing[:SHOWN]) + (", ..." if len(missing) > SHOWN else "")
        raise SubsetError(f"{where}: {len(missing)} of the {len(subset.ids)} images of subset {subset.name} are "
                          f"missing ({shown}); a smaller subset gives other numbers than {subset.name}'s"
                          + (f": {fix}" if fix else ""))


def _check_label(subset: Subset, wnid: str | None, image_id: str, labels: Sequence[int], where: str) -> None:
    from . import classes

    if wnid is None or not labels or classes.index_of(wnid) in labels:
        return
    held = ", ".join(classes.wnids()[i] if 0 <= i < 1000 else str(i) for i in labels)
    raise SubsetError(f"{where}: {image_id} is {wnid} in subset {subset.name} but labelled {held} here: the "
                      "labels follow another class mapping (another devkit or label order); fix the labels or "
                      "use an id list made for them")


def mce_note(subset: Subset) -> str:
    """Why an mCE on a subset is not the subset's own AlexNet-normalised figure. RobustBench normalises by
    AlexNet's errors on its 5,000 images, which shift_hub could not obtain (the stored copies of RobustBench's
    model_info/imagenet/corruptions/*.csv hold no AlexNet row), so the full-validation reference stays."""
    return (f"CE and mCE on subset {subset.name} are normalised by AlexNet's errors on all 50,000 ImageNet-C "
            "validation images (Hendrycks & Dietterich 2019), not by AlexNet's errors on these "
            f"{len(subset.ids)} images" + (" as RobustBench normalises" if subset.name == ROBUSTBENCH else ""))


class RowView:
    """Rows `rows` of an indexable dataset (the evaluation loader's `part.dataset`), picklable."""

    def __init__(self, base, rows: Sequence[int]):
        self.base, self.rows = base, list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, r: int):
        return self.base[self.rows[r]]


def restrict_rows(dataset, rows: Sequence[int]):
    """The dataset's rows `rows`: `datasets.Dataset.select` where it exists, else a RowView."""
    return dataset.select(list(rows)) if hasattr(dataset, "select") else RowView(dataset, rows)


class SubsetSource(Source):
    """A source holding only a subset's images (what `evaluate --on-the-fly --subset` shifts)."""

    def __init__(self, source: Source, subset: Subset):
        self.source, self.subset = source, subset
        self.name = source.name

    def examples(self):
        return iter(select(self.source.examples(), self.subset, self.source.describe()))

    def read(self, example: Example) -> bytes:
        return self.source.read(example)

    def describe(self) -> str:
        return self.source.describe() + self.subset.describe()

"""`shift-hub evaluate MODEL --suite robustness --root DIR`: every established shift set found under
DIR, each scored with its own protocol, plus any generated shift_hub folders, in ONE report.

Sets are found by the folder names their releases extract to (case and `-`/`_` ignored):
imagenetv2-{matched-frequency,threshold0.7,top-images}-format-val, sketch (or imagenet-sketch),
imagenet-a, imagenet-o, imagenet-r, imagenet-c, imagenet-p, and the ImageNet validation images
(val, imagenet-val, ILSVRC2012_img_val) for ReaL, the clean baseline and ImageNet-O's
in-distribution half. A generated folder is any folder with a README.md `configs:` block.

Images go through the evaluation runner unchanged (the model's own preprocessing, one DataLoader
for every image set); ImageNet-P frames go through it too, one row per frame.

Sets are extracted by hand and damaged in the ways hand work damages them, so each is read on its
own: an entry that cannot be read (a text file named .jpg, a damaged video, a symlink loop, a stray
folder) is skipped and listed by its path under --root with its reason, an image the protocol leaves
out (ImageNet-R/A classes outside their 200) is listed as excluded, a set with nothing readable is
reported as such, and the report is written for whatever was scored.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import classes
from ..sources.base import Example, Source, SourceError
from ..sources.devkit import Devkit
from ..sources.known import (IMAGENET_V2_VARIANTS, ClassFolders, ImageNetC, ImageNetP, ImageNetV2, RealValidation,
                             Skip, frame_count, imagenet_v2_folder, is_class_folders, read_frames)
from . import protocols
from .labels import LabelSpace, get_label_space, imagenet_names
from .runner import ConfigData, DataError

SUITES = ("robustness",)

# key -> (display name, protocol, folder names it is distributed under)
KNOWN_SETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "imagenet-val": ("ImageNet val", "top-1 (1000 classes); ReaL accuracy", ("val", "imagenet-val", "ilsvrc2012-img-val")),
    **{f"imagenet-v2-{v}": (f"ImageNetV2 {v}", "top-1 (1000 classes)", (imagenet_v2_folder(v),))
       for v in IMAGENET_V2_VARIANTS},
    "imagenet-sketch": ("ImageNet-Sketch", "top-1 (1000 classes)", ("sketch", "imagenet-sketch")),
    "imagenet-a": ("ImageNet-A", "top-1 over its 200 classes (masked logits)", ("imagenet-a",)),
    "imagenet-r": ("ImageNet-R", "top-1 over its 200 classes (masked logits)", ("imagenet-r",)),
    "imagenet-o": ("ImageNet-O", "OOD detection vs ImageNet val: AUPR of -MSP over its 200 classes", ("imagenet-o",)),
    "imagenet-c": ("ImageNet-C (distributed)", "top-1 per corruption/severity; mCE (AlexNet-normalised)", ("imagenet-c",)),
    "imagenet-p": ("ImageNet-P", "flip probability, top-5 distance; mFR/mT5D with an AlexNet reference", ("imagenet-p",)),
}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def _children(folder: Path) -> dict[str, Path]:
    """Sub-folders by normalised name, and symlinks that cannot be followed (a set folder that is a
    symlink loop is found, then reported unreadable); a folder that cannot be listed has none."""
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
        return {_norm(p.name): p for p in entries if p.is_dir() or (p.is_symlink() and not p.exists())}
    except OSError:
        return {}


def is_generated(folder: Path) -> bool:
    readme = folder / "README.md"
    try:
        return readme.is_file() and "configs:" in readme.read_text(errors="ignore") and any(folder.glob("*/*.parquet"))
    except OSError:
        return False


def discover(root: str | Path) -> tuple[dict[str, Path], list[Path]]:
    """(known set key -> folder, generated folders) under `root` (its children and grandchildren)."""
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: not a directory; --root names the folder holding the shift sets")
    levels = [_children(root)]
    for child in list(levels[0].values()):
        levels.append(_children(child))
    found: dict[str, Path] = {}
    for key, (_, _, names) in KNOWN_SETS.items():
        for level in levels:
            hit = next((level[_norm(n)] for n in names if _norm(n) in level), None)
            if hit is not None:
                if key == "imagenet-sketch" and (hit / "sketch").is_dir():
                    hit = hit / "sketch"
                found[key] = hit
                break
    generated = [p for p in [root, *levels[0].values()] if is_generated(p)]
    return found, generated


# ----------------------------------------------------------------------------------------------
# sources -> runner parts
# ----------------------------------------------------------------------------------------------

class SourceRows:
    """Row access for the runner over a Source's Examples: {"image": {"bytes": ...}} read on demand."""

    def __init__(self, source: Source, examples: list[Example]):
        self.source, self.examples = source, examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, r):
        return {"image": {"bytes": self.source.read(self.examples[r]), "path": None}}


class FrameRows:
    """One row per frame of each sequence; a worker decodes a video once and keeps it (or why it
    failed) while its frames are read, so a damaged video costs one decode, not one per frame."""

    def __init__(self, sequences: list[Example], lengths: list[int]):
        self.index = [(s, k) for s, n in enumerate(lengths) for k in range(n)]
        self.sequences = sequences
        self._cached: tuple[int, list | str] | None = None

    def __len__(self):
        return len(self.index)

    def __getitem__(self, r):
        from PIL import Image

        s, k = self.index[r]
        if self._cached is None or self._cached[0] != s:
            try:
                self._cached = (s, read_frames(self.sequences[s].locator))
            except SourceError as exc:
                self._cached = (s, str(exc))
        frames = self._cached[1]
        if isinstance(frames, str):
            raise SourceError(frames)
        if k >= len(frames):
            raise SourceError("frames missing (the video decodes to fewer frames than its header lists)")
        return {"image": Image.fromarray(frames[k])}


def subset_space(name: str, indices) -> LabelSpace:
    names = imagenet_names()
    indices = sorted(int(i) for i in indices)
    return LabelSpace(name, tuple(names[i] for i in indices), tuple((i,) for i in indices))


def source_part(name: str, source: Source, space: LabelSpace | None = None, examples: list[Example] | None = None,
                severity: int = 0, limit: int | None = None) -> ConfigData:
    """A runner part over a Source (all its examples, or the given ones; the first `limit`)."""
    examples = list(source.examples()) if examples is None else list(examples)
    if limit:
        examples = examples[:limit]
    if not examples:
        raise SourceError(f"no images for {name}")
    return ConfigData(name=name, dataset=SourceRows(source, examples), space=space or get_label_space(None),
                      labels=[list(e.labels) for e in examples], image_ids=[e.image_id for e in examples],
                      severities=[severity] * len(examples))


def frames_part(name: str, sequences: list[Example], lengths: list[int]) -> ConfigData:
    """One item per frame, ids `<sequence>#<frame>` as a generated ImageNet-P config's (frame_rows.spread)."""
    from .frame_rows import spread

    ids, labels, _ = spread([s.image_id for s in sequences], [s.labels for s in sequences], lengths)
    return ConfigData(name=name, dataset=FrameRows(sequences, lengths), space=get_label_space(None), labels=labels,
                      image_ids=ids, severities=[0] * len(ids))


def _validation_sources(folder: Path) -> tuple[Source | None, Source | None]:
    """(source with the true labels or None, ReaL source or None) for a validation folder."""
    labelled: Source | None = None
    if is_class_folders(folder):
        labelled = ClassFolders(folder)
    else:  # flat: labelled by the devkit's ground truth, found beside the folder or inside it
        for devkit in (Devkit(folder, devkit=folder.parent), Devkit(folder)):
            try:
                next(iter(devkit.examples()))
                labelled = devkit
                break
            except (SourceError, StopIteration):
                continue
    real = RealValidation(folder)
    try:
        next(iter(real.examples()))
    except (SourceError, StopIteration, OSError):
        real = None
    return labelled, real


# ----------------------------------------------------------------------------------------------
# what each set left out
# ----------------------------------------------------------------------------------------------

def split_reason(text: str, path=None) -> tuple[str, str | None]:
    """(stable reason, file name or None) from a runner or SourceError message about `path`: the
    `SourceError: ` prefix and folders are dropped, and a trailing `: <name>` naming `path` (or, for a
    folder, a file in it) is returned apart, so a reason counts alike for every file it hits."""
    from ..imaging import stable_reason

    text = stable_reason(re.sub(r"^SourceError: ", "", str(text)))
    reason, sep, name = text.rpartition(": ")
    if not sep or path is None:
        return text, None
    if name == Path(path).name or (re.fullmatch(r"[^\s/\\]+", name) and (Path(path) / name).is_file()):
        return reason, name
    return text, None


@dataclass
class Ledger:
    """Per known set, what was left out, by path relative to --root: `skipped` (could not be read),
    `excluded` (read but outside the set's protocol) and `unreadable` (the whole set, and why)."""

    root: Path | None
    skipped: dict[str, list[dict]] = field(default_factory=dict)
    excluded: dict[str, list[dict]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def relative(self, path) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix() if self.root is not None else Path(path).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def skip(self, key: str, path, reason: str) -> None:
        reason, name = split_reason(reason, path)
        if name and name != Path(path).name:  # a frame image of a frame-folder sequence
            path = Path(path) / name
        self.skipped.setdefault(key, []).append({"path": self.relative(path), "reason": reason})

    def skips(self, key: str, entries: list[Skip]) -> None:
        for entry in entries:
            self.skip(key, entry.path, entry.reason)

    def exclude(self, key: str, path, reason: str) -> None:
        self.excluded.setdefault(key, []).append({"path": self.relative(path), "reason": reason})

    def cannot_read(self, key: str, exc: BaseException, path=None) -> None:
        self.unreadable[key] = split_reason(str(exc), path)[0] or type(exc).__name__

    def summary(self, key: str) -> dict:
        return {"skipped": _tally(self.skipped.get(key, [])), "excluded": _tally(self.excluded.get(key, []))}


def _tally(items: list[dict]) -> dict:
    """{total, by_reason (most frequent first), items (by path)}; each path listed once per reason."""
    unique = sorted({(i["path"], i["reason"]) for i in items})
    counts: dict[str, int] = {}
    for _, reason in unique:
        counts[reason] = counts.get(reason, 0) + 1
    return {"total": len(unique), "by_reason": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "items": [{"path": p, "reason": r} for p, r in unique]}


# ----------------------------------------------------------------------------------------------
# the suite
# ----------------------------------------------------------------------------------------------

@dataclass
class SuitePlan:
    ledger: Ledger
    parts: list[ConfigData] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # part name -> known set key
    locators: dict[str, dict[str, str]] = field(default_factory=dict)  # part name -> image id -> file
    notes: list[str] = field(default_factory=list)
    val_labelled: bool = False  # the val part carries true labels (else its labels are the ReaL sets)


READ_ERRORS = (SourceError, DataError, OSError)


def _read(ledger: Ledger, key: str, source: Source) -> list[Example]:
    """The source's examples; what it left out goes to the ledger, also when it then gave up."""
    try:
        return list(source.examples())
    finally:
        ledger.skips(key, getattr(source, "skipped", []))


def plan(found: dict[str, Path], limit: int | None = None, root: Path | None = None) -> SuitePlan:
    """Runner parts for every known set but ImageNet-P; a set that cannot be read is recorded in the
    ledger and the others are planned all the same."""
    out = SuitePlan(Ledger(Path(root) if root is not None else None))
    ledger = out.ledger

    def add(key: str, part: ConfigData) -> None:
        out.parts.append(part)
        out.kinds[part.name] = key
        out.locators[part.name] = {e.image_id: str(e.locator) for e in part.dataset.examples}

    def guarded(key: str, build) -> None:
        try:
            build()
        except READ_ERRORS as exc:
            ledger.cannot_read(key, exc, found[key])

    def simple(key: str, source: Source, space: LabelSpace | None = None) -> None:
        examples = _read(ledger, key, source)
        if space is not None and space.name in ("imagenet-a", "imagenet-r"):
            name = KNOWN_SETS[key][0]
            for e in examples:
                if not space.targets(e.labels):
                    ledger.exclude(key, e.locator, f"class not among {name}'s 200 classes")
            examples = [e for e in examples if space.targets(e.labels)]
            if not examples:
                raise SourceError(f"no images of {name}'s 200 classes")
        add(key, source_part(key, source, space, examples, limit=limit))

    for v in IMAGENET_V2_VARIANTS:
        key = f"imagenet-v2-{v}"
        if key in found:
            guarded(key, lambda key=key, v=v: simple(key, ImageNetV2(found[key], v)))
    if "imagenet-sketch" in found:
        guarded("imagenet-sketch", lambda: simple("imagenet-sketch", ClassFolders(found["imagenet-sketch"])))
    for key in ("imagenet-a", "imagenet-r"):
        if key in found:
            guarded(key, lambda key=key: simple(key, ClassFolders(found[key]), get_label_space(key)))
    labelled = None
    if "imagenet-val" in found:
        labelled = _plan_val(out, found["imagenet-val"], limit, add)
    if "imagenet-o" in found:
        guarded("imagenet-o", lambda: _plan_o(out, found["imagenet-o"], labelled, limit, add))
    if "imagenet-c" in found:
        guarded("imagenet-c", lambda: _plan_c(out, found["imagenet-c"], limit, add))
    return out


def _plan_val(out: SuitePlan, folder: Path, limit: int | None, add) -> Source | None:
    """The val part (true labels, else ReaL sets); the labelled source for ImageNet-O, or None."""
    try:
        labelled, real = _validation_sources(folder)
        source = labelled or real
        if source is None:
            out.ledger.cannot_read("imagenet-val", SourceError("no ILSVRC2012 validation images found"))
            return None
        examples = _read(out.ledger, "imagenet-val", source)
        add("imagenet-val", source_part("imagenet-val", source, examples=examples, limit=limit))
    except READ_ERRORS as exc:
        out.ledger.cannot_read("imagenet-val", exc, folder)
        return None
    out.val_labelled = labelled is not None
    if real is None:
        out.notes.append("val images are not named ILSVRC2012_val_XXXXXXXX: ReaL accuracy not computed")
    if labelled is None:
        out.notes.append("val has no true labels (class folders or the devkit's data/): plain top-1, the "
                         "clean baseline and ImageNet-O's in-distribution half are not computed")
    return labelled


def _plan_o(out: SuitePlan, folder: Path, labelled: Source | None, limit: int | None, add) -> None:
    source = ClassFolders(folder)
    examples = _read(out.ledger, "imagenet-o", source)
    wnids = sorted({Path(e.locator).parent.name for e in examples})
    space = subset_space("imagenet-o", [classes.index_of(w) for w in wnids])
    add("imagenet-o", source_part("imagenet-o", source, space, examples, limit=limit))
    if labelled is not None:
        keep = {classes.index_of(w) for w in wnids}
        inside = [e for e in labelled.examples() if e.label in keep]
        if inside:
            add("imagenet-o", source_part("imagenet-o/in-distribution", labelled, space, inside, limit=limit))
        else:
            out.notes.append("ImageNet-O: no validation images of its 200 classes; AUPR not computed")
    else:
        out.notes.append("ImageNet-O needs the ImageNet validation images (with labels) as in-distribution "
                         "examples; put them in ROOT/val as class folders or with the devkit")


def _plan_c(out: SuitePlan, folder: Path, limit: int | None, add) -> None:
    """One part per corruption and severity; a severity folder that cannot be read is skipped whole."""
    c = ImageNetC(folder)
    out.ledger.skips("imagenet-c", c.skipped)
    planned = 0
    for corruption, severity in c.parts():
        source = c.part(corruption, severity)
        try:
            part = source_part(f"imagenet-c/{corruption}/{severity}", source,
                               examples=_read(out.ledger, "imagenet-c", source), severity=severity, limit=limit)
        except SourceError as exc:
            out.ledger.skip("imagenet-c", source.root, str(exc))
            continue
        add("imagenet-c", part)
        planned += 1
    if not planned:
        raise SourceError("no <corruption>/<severity>/<wnid>/ folder holds an image")


def plan_perturbations(folder: Path, limit: int | None, ledger: Ledger
                       ) -> tuple[list[ConfigData], dict[str, list[tuple[str, int]]], dict[str, str]]:
    """(one frame part per perturbation, part -> [(sequence id, frames)], sequence id -> file); a
    sequence whose frames cannot be counted is skipped with its reason."""
    p = ImageNetP(folder)
    parts, expected, locators = [], {}, {}
    for perturbation in p.perturbations():
        kept, lengths = [], []
        for seq in p.sequences(perturbation)[: limit or None]:
            try:
                n = frame_count(seq.locator)
            except READ_ERRORS as exc:
                ledger.skip("imagenet-p", seq.locator, str(exc))
                continue
            kept.append(seq)
            lengths.append(n)
            locators[seq.image_id] = str(seq.locator)
        if kept:
            name = f"imagenet-p/{perturbation}"
            parts.append(frames_part(name, kept, lengths))
            expected[name] = [(s.image_id, n) for s, n in zip(kept, lengths)]
    ledger.skips("imagenet-p", p.skipped)
    return parts, expected, locators


def _by_part(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["config"], []).append(r)
    return out


def _top1(rows: list[dict]) -> float:
    hits = [r["correct"] for r in rows if r["scorable"]]
    return float(np.mean(hits)) if hits else float("nan")


def score_known(rows: list[dict], planned: SuitePlan, found: dict[str, Path]) -> dict[str, dict]:
    """Per known set: its protocol's metrics from the runner's per-image rows."""
    from .metrics import corruption_errors

    by = _by_part(rows)
    kinds = planned.kinds
    sets: dict[str, dict] = {}

    def entry(key: str, **metrics) -> None:
        name, protocol, _ = KNOWN_SETS[key]
        sets[key] = {"name": name, "protocol": protocol, "path": str(found[key]), **metrics}

    for part, key in kinds.items():
        if key in ("imagenet-c", "imagenet-o") or part not in by:
            continue
        rs = by[part]
        metrics = {"images": len(rs), "top1": _top1(rs)}
        if key == "imagenet-val":
            if all("ILSVRC2012_val_" in r["image_id"] for r in rs):
                label_sets = protocols.real_label_sets([r["image_id"] for r in rs])
                metrics["real"] = protocols.real_accuracy([r["pred"] for r in rs], label_sets)
            if not planned.val_labelled:
                metrics["top1"] = float("nan")  # its rows were labelled with the ReaL sets, not the originals
        entry(key, **metrics)
    if "imagenet-o" in found and "imagenet-o" in by:
        out_msp = [r["confidence"] for r in by["imagenet-o"]]
        in_msp = [r["confidence"] for r in by.get("imagenet-o/in-distribution", [])]
        entry("imagenet-o", images=len(out_msp), in_distribution_images=len(in_msp),
              **protocols.ood_detection(in_msp, out_msp))
    c_parts = [p for p, k in kinds.items() if k == "imagenet-c" and p in by]
    if c_parts:
        errors = {}
        for p in c_parts:
            _, corruption, severity = p.split("/")
            errors[(corruption, int(severity))] = 1.0 - _top1(by[p])
        clean = sets.get("imagenet-val", {}).get("top1")
        clean_error = None if clean is None or math.isnan(clean) else 1.0 - clean
        summary = corruption_errors(errors, clean_error)
        entry("imagenet-c", images=sum(len(by[p]) for p in c_parts), **summary)
    return sets


def score_perturbations(rows: list[dict], expected: dict[str, list[tuple[str, int]]], difficulty: int = 1,
                        reference: dict | None = None) -> dict:
    """Flip probability and top-5 distance per perturbation from per-frame rows; a sequence missing a
    frame is left out (listed under `incomplete`), a perturbation left with no sequence is not reported."""
    by = _by_part(rows)
    flip, t5d, per, incomplete = {}, {}, {}, []
    for part, sequences in expected.items():
        perturbation = part.split("/", 1)[1]
        preds, top5, missing = protocols.sequences_from_rows(by.get(part, []), sequences)
        incomplete += missing
        if not preds:
            continue
        noise = protocols.is_noise(perturbation)
        flip[perturbation] = protocols.flip_probability(preds, noise, difficulty)
        t5d[perturbation] = protocols.top5_distance(top5, noise, difficulty)
        per[perturbation] = {"sequences": len(preds), "frames": int(sum(len(s) for s in preds)),
                             "flip_probability": flip[perturbation], "top5_distance": t5d[perturbation],
                             "compared_to": "first frame" if noise else f"frame {difficulty} earlier"}
    return {"difficulty": difficulty, "per_perturbation": per, "incomplete": incomplete,
            **protocols.perturbation_summary(protocols.at_difficulty(flip, difficulty),
                                             protocols.at_difficulty(t5d, difficulty), reference)}


# What scoring needs from each runner row; the full rows go to the predictions file as they come,
# so ImageNet-C's 3.75 million images are never all held in memory with every field.
SCORING_FIELDS = ("config", "image_id", "labels", "pred", "top5", "confidence", "correct", "scorable")


def _groups(planned: SuitePlan) -> list[list[ConfigData]]:
    """One runner call for the small sets together, one per ImageNet-C corruption."""
    main = [p for p in planned.parts if planned.kinds[p.name] != "imagenet-c"]
    by_corruption: dict[str, list[ConfigData]] = {}
    for p in planned.parts:
        if planned.kinds[p.name] == "imagenet-c":
            by_corruption.setdefault(p.name.split("/")[1], []).append(p)
    return [g for g in [main, *by_corruption.values()] if g]


def _record_failures(failures: dict, kinds: dict[str, str], locators: dict[str, dict[str, str]],
                     ledger: Ledger) -> set[str]:
    """The runner's undecodable images ({part: {"images": [{image_id, reason}]}}) into the ledger by
    file (ImageNet-P frames `<sequence>#<frame>` by sequence); returns the ids recorded."""
    recorded = set()
    for part, what in failures.items():
        key = kinds.get(part, part.split("/")[0])
        for entry in what.get("images", []):
            image_id = str(entry["image_id"])
            if key == "imagenet-p":
                image_id = image_id.rpartition("#")[0]
            recorded.add(image_id)
            ledger.skip(key, locators.get(part, {}).get(image_id, image_id), entry["reason"])
    return recorded


def _unreadable_entry(key: str, found: dict[str, Path], reason: str) -> dict:
    name, protocol, _ = KNOWN_SETS[key]
    return {"name": name, "protocol": protocol, "path": str(found[key]), "images": 0, "unreadable": reason}


def _score_p(scored, found: dict[str, Path], limit, ledger: Ledger, difficulty: int, reference) -> dict:
    """ImageNet-P's entry: its sequences scored, the damaged ones skipped; SourceError if none is left."""
    parts, expected, locators = plan_perturbations(found["imagenet-p"], limit, ledger)
    if not parts:
        raise SourceError("no sequence could be read")
    failures: dict = {}
    rows = scored(parts, failures)
    failed = _record_failures(failures, {p.name: "imagenet-p" for p in parts}, {p.name: locators for p in parts},
                              ledger)
    summary = score_perturbations(rows, expected, difficulty, reference)
    for sequence in summary.pop("incomplete"):
        if sequence not in failed:
            ledger.skip("imagenet-p", locators[sequence], "frames missing (not every frame was scored)")
    if not summary["per_perturbation"]:
        raise SourceError("no sequence could be decoded")
    name, protocol, _ = KNOWN_SETS["imagenet-p"]
    frames = sum(e["frames"] for e in summary["per_perturbation"].values())
    return {"name": name, "protocol": protocol, "path": str(found["imagenet-p"]), "images": frames, **summary}


def run_suite(model, root, *, out=None, suite: str = "robustness", weights: str | None = None,
              revision: str | None = None, batch_size: int = 32, num_workers: int | None = None,
              device: str | None = None, amp: bool = False, limit: int | None = None, allow_partial: bool = False,
              p_difficulty: int = 1, p_reference: str | dict | None = None, progress: bool = False) -> dict:
    """Discover, run and score every set under `root`; return (and with `out`, write) one report.
    Each set is read on its own: what one cannot read is listed in its entry, the others are scored."""
    from .. import __version__
    from .models import load_model
    from .runner import run

    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    found, generated = discover(root)
    reference = protocols.reference_from_file(p_reference) if isinstance(p_reference, (str, Path)) else p_reference
    classifier = load_model(model, weights=weights, revision=revision, allow_partial=allow_partial)
    options = dict(batch_size=batch_size, num_workers=num_workers, device=device, amp=amp, progress=progress)
    planned = plan(found, limit, root=Path(root))
    ledger = planned.ledger
    out = Path(out) if out is not None else None
    predictions = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        predictions = (out / "robustness_predictions.jsonl").open("w")

    def scored(parts: list[ConfigData], failures: dict, **extra) -> list[dict]:
        from .report import _jsonable

        rows = run(classifier, parts, unreadable=failures, **options)
        if predictions is not None:
            for row in rows:
                predictions.write(json.dumps({**row, **extra}, default=_jsonable) + "\n")
        return rows

    try:
        rows = []
        for group in _groups(planned):
            failures: dict = {}
            rows += [{k: r[k] for k in SCORING_FIELDS} for r in scored(group, failures)]
            _record_failures(failures, planned.kinds, planned.locators, ledger)
        sets = score_known(rows, planned, found)
        if "imagenet-p" in found:
            try:
                sets["imagenet-p"] = _score_p(scored, found, limit, ledger, p_difficulty, reference)
            except READ_ERRORS as exc:
                ledger.cannot_read("imagenet-p", exc, found["imagenet-p"])
            if not reference:
                planned.notes.append("ImageNet-P: no AlexNet reference table given (--p-reference FILE.json), so "
                                     "mFR / mT5D are not computed; raw mean flip probability and top-5 distance "
                                     "are reported")
        gen_results = {str(folder): _score_generated(folder, classifier, scored, limit, p_difficulty, reference)
                       for folder in generated}
    finally:
        if predictions is not None:
            predictions.close()
    for key in found:
        if key not in sets and key not in ledger.unreadable:  # planned, but not one image decoded
            ledger.unreadable[key] = "no image could be read"
        if key in ledger.unreadable:
            sets[key] = _unreadable_entry(key, found, ledger.unreadable[key])
        sets[key].update(ledger.summary(key))
    results = {
        "shift_hub_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "suite": suite,
        "model": classifier.describe(),
        "root": str(Path(root).resolve()),
        "found": {k: str(v) for k, v in found.items()},
        "missing": [k for k in KNOWN_SETS if k not in found],
        "generated": gen_results,
        "sets": {k: sets[k] for k in KNOWN_SETS if k in sets},
        "notes": planned.notes + [f"{KNOWN_SETS[k][0]} could not be read: {r}" for k, r in ledger.unreadable.items()],
        "options": {"limit": limit, "batch_size": batch_size, "amp": amp, "p_difficulty": p_difficulty,
                    "preprocessing": "each model's own (also for the 224x224 ImageNet-C/P images)"},
    }
    if out is not None:
        results["paths"] = {k: str(v) for k, v in write_suite(results, out).items()}
    return results


def _score_generated(folder: Path, classifier, scored, limit, p_difficulty: int = 1, reference=None) -> dict:
    """A generated folder's results; its unreadable shards and images listed, or why none could be read."""
    from .metrics import summarize
    from .report import build_results
    from .runner import open_data
    from .sequence_scores import score_parts

    unreadable: dict = {}
    try:
        source, parts = open_data(folder, limit=limit, unreadable=unreadable)
        g_rows = scored(parts, unreadable, generated=str(folder))
    except READ_ERRORS as exc:
        return {"unreadable": split_reason(str(exc), folder)[0], "metrics": {}}
    # a generated ImageNet-P config: as sequences, at the suite's difficulty and reference
    scored, names, _ = score_parts(g_rows, parts, summarize, p_difficulty, reference)
    return build_results(classifier.describe(), source, names, scored, unreadable=unreadable)


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------

def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def _num(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def markdown(results: dict) -> str:
    lines = [f"**{results['model']['id']}**: `{results['suite']}` suite under `{results['root']}`", "",
             "| set | protocol | images | metric | value |", "|---|---|---:|---|---:|"]
    for key, s in results["sets"].items():
        n = f"{s.get('images', '-')}{_left_count(s)}"
        if "unreadable" in s:
            lines.append(f"| {s['name']} | {s['protocol']} | 0 | cannot be read | - |")
        elif key == "imagenet-o":
            lines.append(f"| {s['name']} | {s['protocol']} | {n} (+{s.get('in_distribution_images', 0)} val) "
                         f"| AUPR % / AUROC % | {_pct(s.get('aupr'))} / {_pct(s.get('auroc'))} |")
        elif key == "imagenet-c":
            value = _pct(s.get("mce")) + ("" if s.get("complete") else f" (partial: {s.get('corruptions_in_mce', 0)} corruptions)")
            lines.append(f"| {s['name']} | {s['protocol']} | {n} | mCE % | {value} |")
            if "relative_mce" in s:
                lines.append(f"| {s['name']} | relative mCE | {n} | relative mCE % | {_pct(s['relative_mce'])} |")
            for c, e in s.get("per_corruption", {}).items():
                lines.append(f"| {s['name']}: {c} | mean error over severities {','.join(e['error_by_severity'])} | | "
                             f"error % | {_pct(e['mean_error'])} |")
        elif key == "imagenet-p":
            frames = f"{s.get('images', '-')} frames{_left_count(s)}"
            if "mfr" in s:
                lines.append(f"| {s['name']} | mFR (AlexNet-normalised) | {frames} | mFR % | {_pct(s['mfr'])} |")
            if "mt5d" in s:
                lines.append(f"| {s['name']} | mT5D (AlexNet-normalised) | {frames} | mT5D % | {_pct(s['mt5d'])} |")
            lines.append(f"| {s['name']} | mean flip probability (raw) | {frames} | FP % | {_pct(s['mean_flip_probability'])} |")
            lines.append(f"| {s['name']} | mean top-5 distance (raw) | {frames} | T5D | {_num(s['mean_top5_distance'])} |")
            for p, e in s["per_perturbation"].items():
                lines.append(f"| {s['name']}: {p} | vs {e['compared_to']} | {e['frames']} frames | FP % / T5D | "
                             f"{_pct(e['flip_probability'])} / {_num(e['top5_distance'])} |")
        else:
            lines.append(f"| {s['name']} | {s['protocol']} | {n} | top-1 % | {_pct(s.get('top1'))} |")
            if "real" in s:
                r = s["real"]
                lines.append(f"| ReaL | top-1 correct if in the ReaL label set | {r['n_scored']} "
                             f"(-{r['n_excluded']} without labels) | ReaL top-1 % | {_pct(r['accuracy'])} |")
    for folder, g in results["generated"].items():
        if _whole_folder_unreadable(g):
            lines.append(f"| generated {Path(folder).name} | - | 0 | cannot be read | - |")
        for name, m in g["metrics"].items():
            d = (m.get("drop") or {}).get("abs")
            lines.append(f"| generated {Path(folder).name}/{name} | top-1 ({m['label_space']})"
                         + (f", drop vs {m['baseline']} {_pct(d)} pts" if d is not None else "")
                         + f" | {m['n_scored']} | top-1 % | {_pct(m['top1'])} |")
        for name, e in ((g.get("summary") or {}).get("imagenet_p") or {}).get("per_config", {}).items():
            lines.append(f"| generated {Path(folder).name}/{name} | vs {e['compared_to']} | {e['frames']} frames | "
                         f"FP % / T5D | {_pct(e['flip_probability'])} / {_num(e['top5_distance'])} |")
    names = {k: v[0] for k, v in KNOWN_SETS.items()}
    lines += ["", "Found: " + (", ".join(names[k] for k in results["found"]) or "none")
              + (f"; generated folders: {', '.join(Path(f).name for f in results['generated'])}" if results["generated"] else ""),
              "Missing: " + (", ".join(names[k] for k in results["missing"]) or "none")]
    lines += [f"Note: {n}" for n in results["notes"]]
    return "\n".join(lines + left_out(results))


def _whole_folder_unreadable(generated: dict) -> bool:
    """A generated folder's `unreadable` is a reason (str) when none of it could be read, else the per-config
    dict of build_results, empty when everything was read."""
    return isinstance(generated.get("unreadable"), str)


def _left_count(s: dict) -> str:
    """` (+k skipped, +e excluded)` beside a set's image count; the reasons are in the left-out table."""
    parts = [f"+{s[w]['total']} {w}" for w in ("skipped", "excluded") if (s.get(w) or {}).get("total")]
    return f" ({', '.join(parts)})" if parts else ""


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def left_out(results: dict) -> list[str]:
    """Markdown lines: per set and reason, how many entries were skipped or excluded, with one example
    path (every path is in the results JSON); nothing when nothing was left out."""
    rows = []
    for s in results["sets"].values():
        if "unreadable" in s:
            rows.append(f"| {s['name']} | whole set | {_cell(s['unreadable'])} | - | - |")
        for what in ("skipped", "excluded"):
            tally = s.get(what) or {}
            for reason, count in tally.get("by_reason", {}).items():
                example = next(i["path"] for i in tally["items"] if i["reason"] == reason)
                rows.append(f"| {s['name']} | {what} | {_cell(reason)} | {count} | {_cell(example)} |")
    for folder, g in results["generated"].items():
        if _whole_folder_unreadable(g):
            rows.append(f"| generated {Path(folder).name} | whole folder | {_cell(g['unreadable'])} | - | - |")
            continue
        for config, what in (g.get("unreadable") or {}).items():  # shards or images of a config, not the folder
            for entry in what.get("files", []):
                rows.append(f"| generated {Path(folder).name}/{config} | shard | {_cell(entry['reason'])} | - | "
                            f"{_cell(entry.get('file') or '-')} |")
            images = what.get("images", [])
            for reason in dict.fromkeys(e["reason"] for e in images):
                example = next(e["image_id"] for e in images if e["reason"] == reason)
                count = sum(e["reason"] == reason for e in images)
                rows.append(f"| generated {Path(folder).name}/{config} | image | {_cell(reason)} | {count} | "
                            f"{_cell(example)} |")
    if not rows:
        return []
    return ["", "Left out (paths relative to the root; all of them in robustness.json):", "",
            "| set | left out | reason | count | e.g. |", "|---|---|---|---:|---|", *rows]


def write_suite(results: dict, out) -> dict[str, Path]:
    """robustness.json and robustness.md beside the per-image robustness_predictions.jsonl."""
    from .report import _finite, _jsonable

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "robustness.json", "table": out / "robustness.md",
             "predictions": out / "robustness_predictions.jsonl"}
    paths["results"].write_text(json.dumps(_finite(results), indent=2, default=_jsonable))
    paths["table"].write_text(markdown(results) + "\n")
    return paths

def add_suite_arguments(parser) -> None:
    """The `--suite/--root` options of `shift-hub evaluate` (command.py calls this)."""
    parser.add_argument("--suite", choices=SUITES,
                        help="score every established shift set found under --root with its own protocol "
                             "(ImageNetV2, -Sketch, -A, -O, -R, -C, -P, ReaL on val) plus generated folders there")
    parser.add_argument("--root", help="folder holding the shift sets for --suite, in their distributed layouts")
    parser.add_argument("--p-difficulty", type=int, default=1, choices=(1, 2, 3),
                        help="ImageNet-P difficulty (--suite, and imagenet_p_* configs of --data): frame stride, "
                             "and the noise folders/configs <noise>_2/_3 (default 1)")
    parser.add_argument("--p-reference", help="JSON {'flip_probability': {perturbation: AlexNet FP}, "
                                              "'top5_distance': {...}} to report ImageNet-P mFR and mT5D "
                                              "(--suite, and imagenet_p_* configs of --data)")


def run_suite_command(args) -> int:
    """`shift-hub evaluate MODEL --suite robustness --root DIR [--out DIR]`: print the table, write the report."""
    import sys

    from .labels import UnmappableLabels
    from .models import ModelLoadError
    from .runner import DataError

    if not args.root:
        print("shift-hub: error: --suite needs --root DIR (the folder holding the shift sets)", file=sys.stderr)
        return 2
    try:
        results = run_suite(args.model, args.root, out=args.out, suite=args.suite, weights=args.weights,
                            revision=args.revision, batch_size=args.batch_size, num_workers=args.num_workers,
                            device=args.device, amp=args.amp, limit=args.limit, allow_partial=args.allow_partial,
                            p_difficulty=args.p_difficulty, p_reference=args.p_reference, progress=not args.quiet)
    except (ModelLoadError, UnmappableLabels, DataError, SourceError, ValueError) as exc:
        print(f"shift-hub: error: {exc}", file=sys.stderr)
        return 2
    print(markdown(results))
    for kind, path in results.get("paths", {}).items():
        print(f"wrote {kind}: {path}")
    return 0

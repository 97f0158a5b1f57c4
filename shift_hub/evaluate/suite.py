"""`shift-hub evaluate MODEL --suite robustness --root DIR`: every established shift set found under
DIR, each scored with its own protocol, plus any generated shift_hub folders, in ONE report.

Sets are found by the folder names their releases extract to (case and `-`/`_` ignored):
imagenetv2-{matched-frequency,threshold0.7,top-images}-format-val, sketch (or imagenet-sketch),
imagenet-a, imagenet-o, imagenet-r, imagenet-c, imagenet-p, and the ImageNet validation images
(val, imagenet-val, ILSVRC2012_img_val) for ReaL, the clean baseline and ImageNet-O's
in-distribution half. A generated folder is any folder with a README.md `configs:` block.

Images go through the evaluation runner unchanged (the model's own preprocessing, one DataLoader
for every image set); ImageNet-P frames go through it too, one row per frame.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import classes
from ..sources.base import Example, Source, SourceError
from ..sources.devkit import Devkit
from ..sources.folders import Folders
from ..sources.known import (IMAGENET_V2_VARIANTS, ImageNetC, ImageNetP, ImageNetV2, RealValidation,
                             imagenet_v2_folder, is_class_folders, read_frames)
from . import protocols
from .labels import LabelSpace, get_label_space, imagenet_names
from .runner import ConfigData

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
    return {_norm(p.name): p for p in sorted(folder.iterdir()) if p.is_dir()} if folder.is_dir() else {}


def is_generated(folder: Path) -> bool:
    readme = folder / "README.md"
    return readme.is_file() and "configs:" in readme.read_text(errors="ignore") and any(folder.glob("*/*.parquet"))


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
    """One row per frame of each sequence; a worker decodes a video once and keeps it while its frames are read."""

    def __init__(self, sequences: list[Example], lengths: list[int]):
        self.index = [(s, k) for s, n in enumerate(lengths) for k in range(n)]
        self.sequences = sequences
        self._cached: tuple[int, list] | None = None

    def __len__(self):
        return len(self.index)

    def __getitem__(self, r):
        from PIL import Image

        s, k = self.index[r]
        if self._cached is None or self._cached[0] != s:
            self._cached = (s, read_frames(self.sequences[s].locator))
        frames = self._cached[1]
        if k >= len(frames):
            raise SourceError(f"{self.sequences[s].locator}: frame {k} missing ({len(frames)} decoded)")
        return {"image": Image.fromarray(frames[k])}


def frame_count(locator: str) -> int:
    import cv2

    path = Path(locator)
    if path.is_dir():
        return len(read_frames(path))
    capture = cv2.VideoCapture(str(path))
    n = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return n if n > 0 else len(read_frames(path))


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
        raise SourceError(f"{source.describe()}: no images for {name}")
    return ConfigData(name=name, dataset=SourceRows(source, examples), space=space or get_label_space(None),
                      labels=[list(e.labels) for e in examples], image_ids=[e.image_id for e in examples],
                      severities=[severity] * len(examples))


def frames_part(name: str, sequences: list[Example]) -> tuple[ConfigData, list[int]]:
    lengths = [frame_count(s.locator) for s in sequences]
    rows = FrameRows(sequences, lengths)
    ids = [f"{sequences[s].image_id}#{k:03d}" for s, k in rows.index]
    labels = [list(sequences[s].labels) for s, _ in rows.index]
    return ConfigData(name=name, dataset=rows, space=get_label_space(None), labels=labels, image_ids=ids,
                      severities=[0] * len(ids)), lengths


def _validation_sources(folder: Path) -> tuple[Source | None, Source | None]:
    """(source with the true labels or None, ReaL source or None) for a validation folder."""
    labelled: Source | None = None
    if is_class_folders(folder):
        labelled = Folders(folder)
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
    except (SourceError, StopIteration):
        real = None
    return labelled, real


# ----------------------------------------------------------------------------------------------
# the suite
# ----------------------------------------------------------------------------------------------

@dataclass
class SuitePlan:
    parts: list[ConfigData] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # part name -> known set key
    notes: list[str] = field(default_factory=list)
    val_labelled: bool = False  # the val part carries true labels (else its labels are the ReaL sets)


def plan(found: dict[str, Path], limit: int | None = None) -> SuitePlan:
    out = SuitePlan()

    def add(key: str, part: ConfigData) -> None:
        out.parts.append(part)
        out.kinds[part.name] = key

    for v in IMAGENET_V2_VARIANTS:
        key = f"imagenet-v2-{v}"
        if key in found:
            add(key, source_part(key, ImageNetV2(found[key], v), limit=limit))
    if "imagenet-sketch" in found:
        add("imagenet-sketch", source_part("imagenet-sketch", Folders(found["imagenet-sketch"]), limit=limit))
    for key in ("imagenet-a", "imagenet-r"):
        if key in found:
            add(key, source_part(key, Folders(found[key]), get_label_space(key), limit=limit))
    labelled = None
    if "imagenet-val" in found:
        labelled, real = _validation_sources(found["imagenet-val"])
        source = labelled or real
        if source is None:
            out.notes.append(f"{found['imagenet-val']}: no ILSVRC2012 validation images found; val skipped")
        else:
            add("imagenet-val", source_part("imagenet-val", source, limit=limit))
            out.val_labelled = labelled is not None
            if real is None:
                out.notes.append("val images are not named ILSVRC2012_val_XXXXXXXX: ReaL accuracy not computed")
            if labelled is None:
                out.notes.append("val has no true labels (class folders or the devkit's data/): plain top-1, the "
                                 "clean baseline and ImageNet-O's in-distribution half are not computed")
    if "imagenet-o" in found:
        folder = found["imagenet-o"]
        wnids = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name in classes.wnid_to_index())
        space = subset_space("imagenet-o", [classes.index_of(w) for w in wnids])
        add("imagenet-o", source_part("imagenet-o", Folders(folder), space, limit=limit))
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
    if "imagenet-c" in found:
        c = ImageNetC(found["imagenet-c"])
        for corruption, severity in c.parts():
            add("imagenet-c", source_part(f"imagenet-c/{corruption}/{severity}", c.part(corruption, severity),
                                          severity=severity, limit=limit))
    return out


def plan_perturbations(folder: Path, limit: int | None = None) -> tuple[list[ConfigData], dict[str, list[int]]]:
    p = ImageNetP(folder)
    parts, lengths = [], {}
    for perturbation in p.perturbations():
        sequences = list(p.sequences(perturbation))[: limit or None]
        if sequences:
            part, lengths[f"imagenet-p/{perturbation}"] = frames_part(f"imagenet-p/{perturbation}", sequences)
            parts.append(part)
    return parts, lengths


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


def score_perturbations(rows: list[dict], lengths: dict[str, list[int]], difficulty: int = 1,
                        reference: dict | None = None) -> dict:
    """Flip probability and top-5 distance per perturbation from per-frame rows (in frame order)."""
    by = _by_part(rows)
    flip, t5d, per = {}, {}, {}
    for part, seq_lengths in lengths.items():
        perturbation = part.split("/", 1)[1]
        rs, preds, top5, start = by.get(part, []), [], [], 0
        for n in seq_lengths:
            preds.append([r["pred"] for r in rs[start:start + n]])
            top5.append([r["top5"] for r in rs[start:start + n]])
            start += n
        noise = protocols.is_noise(perturbation)
        flip[perturbation] = protocols.flip_probability(preds, noise, difficulty)
        t5d[perturbation] = protocols.top5_distance(top5, noise, difficulty)
        per[perturbation] = {"sequences": len(seq_lengths), "frames": int(sum(seq_lengths)),
                             "flip_probability": flip[perturbation], "top5_distance": t5d[perturbation],
                             "compared_to": "first frame" if noise else f"frame {difficulty} earlier"}
    return {"difficulty": difficulty, "per_perturbation": per,
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


def run_suite(model, root, *, out=None, suite: str = "robustness", weights: str | None = None,
              revision: str | None = None, batch_size: int = 32, num_workers: int | None = None,
              device: str | None = None, amp: bool = False, limit: int | None = None, allow_partial: bool = False,
              p_difficulty: int = 1, p_reference: str | dict | None = None, progress: bool = False) -> dict:
    """Discover, run and score every set under `root`; return (and with `out`, write) one report."""
    from .. import __version__
    from .metrics import summarize
    from .models import load_model
    from .report import _jsonable, build_results
    from .runner import open_data, run

    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    found, generated = discover(root)
    reference = protocols.reference_from_file(p_reference) if isinstance(p_reference, (str, Path)) else p_reference
    classifier = load_model(model, weights=weights, revision=revision, allow_partial=allow_partial)
    options = dict(batch_size=batch_size, num_workers=num_workers, device=device, amp=amp, progress=progress)
    planned = plan(found, limit)
    out = Path(out) if out is not None else None
    predictions = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        predictions = (out / "robustness_predictions.jsonl").open("w")

    def scored(parts: list[ConfigData], **extra) -> list[dict]:
        rows = run(classifier, parts, **options)
        if predictions is not None:
            for row in rows:
                predictions.write(json.dumps({**row, **extra}, default=_jsonable) + "\n")
        return rows

    try:
        rows = [{k: r[k] for k in SCORING_FIELDS} for g in _groups(planned) for r in scored(g)]
        sets = score_known(rows, planned, found)
        if "imagenet-p" in found:
            p_parts, lengths = plan_perturbations(found["imagenet-p"], limit)
            p_rows = scored(p_parts) if p_parts else []
            name, protocol, _ = KNOWN_SETS["imagenet-p"]
            sets["imagenet-p"] = {"name": name, "protocol": protocol, "path": str(found["imagenet-p"]),
                                  "images": len(p_rows), **score_perturbations(p_rows, lengths, p_difficulty, reference)}
            if not reference:
                planned.notes.append("ImageNet-P: no AlexNet reference table given (--p-reference FILE.json), so "
                                     "mFR / mT5D are not computed; raw mean flip probability and top-5 distance "
                                     "are reported")
        gen_results = {}
        for folder in generated:
            source, parts = open_data(folder, limit=limit)
            g_rows = scored(parts, generated=str(folder))
            names = [p.name for p in parts]
            gen_results[str(folder)] = build_results(classifier.describe(), source, names, summarize(g_rows, names))
    finally:
        if predictions is not None:
            predictions.close()
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
        "notes": planned.notes,
        "options": {"limit": limit, "batch_size": batch_size, "amp": amp, "p_difficulty": p_difficulty,
                    "preprocessing": "each model's own (also for the 224x224 ImageNet-C/P images)"},
    }
    if out is not None:
        results["paths"] = {k: str(v) for k, v in write_suite(results, out).items()}
    return results


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
        n = s.get("images", "-")
        if key == "imagenet-o":
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
            if "mfr" in s:
                lines.append(f"| {s['name']} | mFR (AlexNet-normalised) | {n} frames | mFR % | {_pct(s['mfr'])} |")
            if "mt5d" in s:
                lines.append(f"| {s['name']} | mT5D (AlexNet-normalised) | {n} frames | mT5D % | {_pct(s['mt5d'])} |")
            lines.append(f"| {s['name']} | mean flip probability (raw) | {n} frames | FP % | {_pct(s['mean_flip_probability'])} |")
            lines.append(f"| {s['name']} | mean top-5 distance (raw) | {n} frames | T5D | {_num(s['mean_top5_distance'])} |")
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
        for name, m in g["metrics"].items():
            d = (m.get("drop") or {}).get("abs")
            lines.append(f"| generated {Path(folder).name}/{name} | top-1 ({m['label_space']})"
                         + (f", drop vs {m['baseline']} {_pct(d)} pts" if d is not None else "")
                         + f" | {m['n_scored']} | top-1 % | {_pct(m['top1'])} |")
    names = {k: v[0] for k, v in KNOWN_SETS.items()}
    lines += ["", "Found: " + (", ".join(names[k] for k in results["found"]) or "none")
              + (f"; generated folders: {', '.join(Path(f).name for f in results['generated'])}" if results["generated"] else ""),
              "Missing: " + (", ".join(names[k] for k in results["missing"]) or "none")]
    lines += [f"Note: {n}" for n in results["notes"]]
    return "\n".join(lines)


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
                        help="ImageNet-P difficulty: frame stride, and the noise folders <noise>_2/_3 (default 1)")
    parser.add_argument("--p-reference", help="JSON {'flip_probability': {perturbation: AlexNet FP}, "
                                              "'top5_distance': {...}} to report ImageNet-P mFR and mT5D")


def run_suite_command(args) -> int:
    """`shift-hub evaluate MODEL --suite robustness --root DIR [--out DIR]`: print the table, write the report."""
    import sys

    from .labels import UnmappableLabels
    from .models import ModelLoadError
    from .runner import DataError

    if not args.root:
        print("shift-hub evaluate: error: --suite needs --root DIR (the folder holding the shift sets)", file=sys.stderr)
        return 2
    try:
        results = run_suite(args.model, args.root, out=args.out, suite=args.suite, weights=args.weights,
                            revision=args.revision, batch_size=args.batch_size, num_workers=args.num_workers,
                            device=args.device, amp=args.amp, limit=args.limit, allow_partial=args.allow_partial,
                            p_difficulty=args.p_difficulty, p_reference=args.p_reference, progress=not args.quiet)
    except (ModelLoadError, UnmappableLabels, DataError, SourceError, ValueError) as exc:
        print(f"shift-hub evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(markdown(results))
    for kind, path in results.get("paths", {}).items():
        print(f"wrote {kind}: {path}")
    return 0

"""ImageNet-X factors (Idrissi et al., ICLR 2023): which factors of variation each shift makes the model fail on.

ImageNet-X annotates 48,868 ILSVRC-2012 validation images with 16 factors (pose, background, color, ...). Its
wheel (`pip install 'shift-hub[imagenet-x]'`; annotations CC BY-NC 4.0) ships them; they are read from the
installed package at run time, never copied into shift_hub, and the package's code is not run (only its files).

The error ratio is ImageNet-X's own (its `get_factor_accuracies` + `error_ratio` with their defaults):
per config, over the annotated images it scored,

    error ratio(factor) = top-1 error on the images whose TOP factor is `factor` / top-1 error on all of them

with the top-factor annotations (`imagenet_x_val_top_factor.jsonl`: one factor per image, the one its
annotator ranked first) and the 3,000 prototypical images (the examples annotators were shown) left out.
1 means the factor costs the model nothing; 2, twice its usual error. The ratio is undefined (None) where a
config has no image of that factor or makes no error at all.

An image of the data is used only when its id names an ILSVRC val file (`ILSVRC2012_val_00000001`, also as
`<wnid>/ILSVRC2012_val_00000001` or with `.JPEG`) that ImageNet-X annotates and its label equals ImageNet-X's
class: the others are counted (unannotated, prototypes, label mismatch), never guessed. So a folder whose
files are named like val but hold other photos (bench/make_synthetic_imagenet.py) gets counts, no ratio.
Intervals: 95 % percentile bootstrap over source images from the very resample weights intervals.py draws
(same image order, same seed), so they are paired with every other score of the run.
"""
from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .intervals import DEFAULT_RESAMPLES, METHOD, interval, resample_weights

PACKAGE, DISTRIBUTION = "imagenet_x", "imagenet-x"
LICENCE = "CC BY-NC 4.0"
MISSING = ("ImageNet-X factors need its annotations, which are not installed: "
           "pip install 'shift-hub[imagenet-x]' (CC BY-NC 4.0)")
ANNOTATIONS = "imagenet_x_val_top_factor.jsonl"
PROTOTYPES = "prototypical_paths.csv"
NOT_FACTORS = {"file_name", "class", "justification", "one_word"}  # the other columns of the annotation file
DEFINITION = ("error ratio = top-1 error on the images whose top factor is F / top-1 error on all annotated images "
              "(ImageNet-X's error_ratio: top-factor annotations, prototypical images left out)")
PLOT_FILE = "imagenet_x_factors.png"
VAL_ID = re.compile(r"(?:^|/)(ILSVRC2012_val_\d{8})(?:\.(?:JPEG|jpeg|jpg|JPG|png|PNG))?$", re.ASCII)
log = logging.getLogger("shift_hub")


class ImageNetXMissing(ValueError):
    """The annotations are asked for but `imagenet-x` is not installed; the message says how to install it."""


def _package_dir() -> Path | None:
    """The installed package's folder, found without importing it (its __init__ pulls in pandas)."""
    from importlib.util import find_spec

    spec = find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def load_annotations() -> dict:
    """{factors: [16 names, in the file's order], images: {file name: (class, top factor index or -1)},
    prototypes: {file names}, version}; ImageNetXMissing when the package is not installed."""
    folder = _package_dir()
    path = folder / "annotations" / ANNOTATIONS if folder else None
    if path is None or not path.is_file():
        raise ImageNetXMissing(MISSING)
    factors: list[str] = []
    images: dict[str, tuple[int, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            entry = json.loads(line)
            if not factors:
                factors = [k for k in entry if k not in NOT_FACTORS]
            top = [k for k, f in enumerate(factors) if entry[f]]
            images[entry["file_name"]] = (int(entry["class"]), top[0] if top else -1)
    lines = (folder / "annotations" / PROTOTYPES).read_text(encoding="utf-8").split()
    return {"factors": factors, "images": images, "prototypes": set(lines[1:]), "version": _version()}


def val_file_name(image_id: str) -> str | None:
    """`ILSVRC2012_val_00000001.JPEG` (ImageNet-X's key) for an id naming that val image, else None."""
    m = VAL_ID.search(str(image_id))
    return f"{m.group(1)}.JPEG" if m else None


def factor_summary(rows: Sequence[Mapping], configs: Sequence[str], resamples: int | None = None,
                   seed: int = 0) -> dict | None:
    """results.json `summary["imagenet_x"]`, or None when no image id is an ILSVRC val id (then nothing is said).
    Without the package: {note: how to install it} and one warning, the other scores unchanged."""
    if not any(val_file_name(r["image_id"]) for r in rows):
        return None
    try:
        annotations = load_annotations()
    except ImageNetXMissing as exc:
        log.warning(str(exc))
        return {"note": str(exc)}
    ids = sorted({r["image_id"] for r in rows})  # the order intervals.correctness gives the resample weights
    factor_of, counts = _image_factors(rows, ids, annotations)
    configs = list(configs)
    present, wrong = _error_matrices(rows, ids, configs, factor_of >= -1)
    factors = annotations["factors"]
    block = {"factors": factors, **counts, "definition": DEFINITION,
             "source": f"imagenet-x {annotations['version']}", "licence": LICENCE}
    if not counts["annotated"]:
        block.update(per_config={}, note="no image of the data is an ImageNet-X annotated image with its label; "
                                         "no error ratio")
        return block
    ratios, overall = _ratios(present, wrong, factor_of, len(factors))
    samples = _resampled_ratios(present, wrong, factor_of, len(factors), resamples, seed)
    n = np.stack([present[factor_of == f].sum(axis=0) for f in range(len(factors))], axis=1)  # configs x factors
    block["per_config"] = {
        c: {f: {"ratio": _finite(ratios[k, j]), **_ci(samples, k, j), "n": int(n[k, j])}
            for j, f in enumerate(factors)}
        for k, c in enumerate(configs)}
    block["overall_error"] = {c: _finite(overall[k]) for k, c in enumerate(configs)}
    block["intervals"] = {"method": METHOD, "resamples": 0 if samples is None else int(samples.shape[0]),
                          "seed": seed}
    return block


def _image_factors(rows: Sequence[Mapping], ids: list[str], annotations: dict) -> tuple[np.ndarray, dict]:
    """Per image (in `ids` order) its top factor index (-1: annotated without one), or -2 when it is not
    used; and the counts of each kind of image."""
    label = {}
    for r in rows:
        labels = r.get("labels") or r.get("targets") or []
        label.setdefault(r["image_id"], int(labels[0]) if labels else None)
    factor_of = np.full(len(ids), -2, dtype=np.int64)
    counts = {"annotated": 0, "unannotated": 0, "prototypes": 0, "label_mismatch": 0}
    for i, image_id in enumerate(ids):
        name = val_file_name(image_id)
        entry = annotations["images"].get(name) if name else None
        if entry is None:
            counts["unannotated"] += 1
        elif name in annotations["prototypes"]:
            counts["prototypes"] += 1
        elif label[image_id] != entry[0]:
            counts["label_mismatch"] += 1
        else:
            counts["annotated"] += 1
            factor_of[i] = entry[1]
    return factor_of, counts


def _error_matrices(rows, ids, configs, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scored, wrong): images x configs 0/1, over the used (annotated) images only."""
    where = {image_id: i for i, image_id in enumerate(ids)}
    column = {c: k for k, c in enumerate(configs)}
    present, wrong = np.zeros((len(ids), len(configs))), np.zeros((len(ids), len(configs)))
    for r in rows:
        k, i = column.get(r["config"]), where[r["image_id"]]
        if k is not None and r["scorable"] and used[i]:
            present[i, k], wrong[i, k] = 1.0, float(not r["correct"])
    return present, wrong


def _ratios(present, wrong, factor_of, n_factors):
    """(configs x factors error ratios, per-config error over the annotated images); NaN where undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = wrong.sum(axis=0) / present.sum(axis=0)
        per = np.stack([wrong[factor_of == f].sum(axis=0) / present[factor_of == f].sum(axis=0)
                        for f in range(n_factors)], axis=1)
        return per / overall[:, None], overall


def _resampled_ratios(present, wrong, factor_of, n_factors, resamples, seed) -> np.ndarray | None:
    """(resamples, configs, factors) error ratios, one per resample of intervals.resample_weights; None
    without resampling. Each factor's images are a disjoint set, so a resample costs one pass over the images."""
    resamples = DEFAULT_RESAMPLES if resamples is None else resamples
    if not resamples:
        return None
    members = [np.flatnonzero(factor_of == f) for f in range(n_factors)]
    used = np.flatnonzero(factor_of >= -1)
    out = []
    for w in resample_weights(len(factor_of), resamples, seed):
        with np.errstate(invalid="ignore", divide="ignore"):
            overall = (w[:, used] @ wrong[used]) / (w[:, used] @ present[used])
            per = np.stack([(w[:, m] @ wrong[m]) / (w[:, m] @ present[m]) for m in members], axis=2)
            out.append(per / overall[:, :, None])
    return np.concatenate(out)


def _ci(samples, k: int, j: int) -> dict:
    bounds = interval(samples[:, k, j]) if samples is not None else None
    return bounds or {"ci_low": None, "ci_high": None}


def _finite(value) -> float | None:
    return float(value) if np.isfinite(value) else None


# --- what a person reads --------------------------------------------------------------------------

def _fmt(entry: Mapping) -> str:
    if entry.get("ratio") is None:
        return "-"
    low, high = entry.get("ci_low"), entry.get("ci_high")
    return f"{entry['ratio']:.2f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else "")


def counts_words(block: Mapping) -> str:
    """`12 annotated images used; 1 without annotation, 1 prototypical (left out), 1 whose label differs`."""
    words = [f"{block.get('annotated', 0)} annotated image(s) used"]
    for key, what in (("unannotated", "without annotation"),
                      ("prototypes", "prototypical (left out, as ImageNet-X does)"),
                      ("label_mismatch", "whose label is not ImageNet-X's class (left out)")):
        if block.get(key):
            words.append(f"{block[key]} {what}")
    return "; ".join(words)


def table_line(block: Mapping) -> str:
    """One line of table.md: the highest error ratio of each config, and where the rest is."""
    if "factors" not in block:
        return f"ImageNet-X factors: {block.get('note', '')}"
    head = (f"ImageNet-X factors ({block.get('source')}, annotations {block.get('licence')}; {DEFINITION}): "
            f"{counts_words(block)}")
    worst = []
    for config, per in (block.get("per_config") or {}).items():
        defined = {f: e for f, e in per.items() if e.get("ratio") is not None}
        if defined:
            f = max(defined, key=lambda name: defined[name]["ratio"])
            worst.append(f"{config} {f} {_fmt(defined[f])}")
    if worst:
        head += "; highest ratio per config: " + ", ".join(worst)
    elif block.get("note"):
        head += f"; {block['note']}"
    return head + f" (all in results.json summary.imagenet_x and {PLOT_FILE})"


def html_section(block: Mapping) -> dict:
    """{note, columns, rows} for report.html's ImageNet-X section: rows are configs, cells {text, sort}."""
    if "factors" not in block:
        return {"note": block.get("note", ""), "columns": [], "rows": []}
    note = (f"{DEFINITION[0].upper()}{DEFINITION[1:]}; 1 = the factor costs nothing, above 1 = the model fails "
            f"more often on it. {counts_words(block)}. Brackets: 95 % interval. Annotations: {block.get('source')}, "
            f"{block.get('licence')}.")
    if block.get("note"):
        note += f" {block['note']}."
    factors = block["factors"]
    rows = []
    for config, per in (block.get("per_config") or {}).items():
        cells = [{"text": config, "sort": config}]
        for f in factors:
            e = per.get(f) or {}
            ratio = e.get("ratio")
            cells.append({"text": _fmt(e) + (f" (n={e.get('n', 0)})" if ratio is not None else ""),
                          "sort": "" if ratio is None else f"{ratio:.6f}"})
        rows.append(cells)
    return {"note": note, "columns": [("config", "text")] + [(f.replace("_", " "), "num") for f in factors],
            "rows": rows}


def heatmap_height(block: Mapping) -> float:
    """Inches: a row per config, room for the slanted factor names and the title."""
    return max(3.5, 0.32 * len(block.get("per_config") or {}) + 2.6)


def draw_factor_heatmap(fig, block: Mapping, model_id: str) -> None:
    """The config x factor heatmap of error ratios on `fig` (report.py saves it), diverging at 1."""
    from matplotlib.colors import TwoSlopeNorm

    per = block["per_config"]
    factors, configs = block["factors"], list(per)
    values = np.array([[np.nan if per[c][f]["ratio"] is None else per[c][f]["ratio"] for f in factors]
                       for c in configs], dtype=np.float64)
    top = max(2.0, float(np.nanmax(values)) if np.isfinite(values).any() else 2.0)
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=_colormap(), norm=TwoSlopeNorm(1.0, 0.0, top), aspect="auto")
    ax.set_xticks(range(len(factors)), [f.replace("_", " ") for f in factors], rotation=40, ha="right", fontsize=9)
    ax.set_yticks(range(len(configs)), configs, fontsize=9)
    if len(configs) <= 40:  # a number per cell while it stays readable
        for (y, x), v in np.ndenumerate(values):
            ax.text(x, y, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(v) and abs(v - 1) > 0.6 * (top - 1) else "black")
    fig.colorbar(image, ax=ax, label="error ratio (1 = no effect)", shrink=0.8)
    ax.set_title(f"{model_id}: ImageNet-X error ratio per factor ({block.get('annotated')} annotated images; "
                 "grey: undefined)", fontsize=11)


def _colormap():
    import matplotlib

    return matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d0d7de")  # grey: undefined

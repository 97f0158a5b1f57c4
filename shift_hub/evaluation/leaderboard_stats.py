"""The leaderboard's 95 % intervals and its significance between models, from each folder's predictions.jsonl.

Every column is resampled over source images with intervals.py's weights, which are seeded by
[seed, images, resamples]: two models scored on the same images of the same data draw the very same resamples,
so the difference of their scores per resample is a paired bootstrap of the difference. Two results whose data
(name with its commit or fingerprint, subset, generation seed, --limit, --label-space) or scored images differ
are never compared: they are "incomparable", and the table says why.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .intervals import interval, resample_weights

PREDICTIONS = "predictions.jsonl"
SEPARATED, NOT_SEPARATED, INCOMPARABLE, UNTESTED = "separated", "not separated", "incomparable", "untested"
_IDENTITY = (("data", "data"), ("subset", "subset"), ("seed", "data generation seed"), ("limit", "--limit"),
             ("label_space", "--label-space"))  # (key, what the reason calls it), in the order they are named


@dataclass
class ModelStats:
    """One model's columns per resample (percent, or points for a gap) and what its images were."""
    samples: dict  # column id -> (resamples,) array
    estimates: dict  # column id -> the value over every image, unrounded
    images: str  # digest of the image ids and the (image, config) cells scored: equal means the same images
    cells: int  # (image, config) cells scored


@dataclass
class Pair:
    """Two ranked rows (0-based positions in rank order) and whether their difference is separated from 0."""
    first: int
    second: int
    status: str  # SEPARATED, NOT_SEPARATED, INCOMPARABLE or UNTESTED
    difference: float | None = None  # first minus second, in the column's unit
    low: float | None = None
    high: float | None = None
    reason: str = ""  # why INCOMPARABLE or UNTESTED


def data_identity(results: dict, data_name: str) -> dict:
    """What must be equal for two results to be on the same images: the data pinned (`data_name`), the subset's
    id list, the seed a generated or on-the-fly source was shifted with, --limit and --label-space."""
    data, options = results["data"], results.get("options") or {}
    subset = data.get("subset") if isinstance(data.get("subset"), dict) else None
    return {"data": data_name,
            "subset": f"{subset.get('name')} (sha256 {str(subset.get('sha256'))[:12]})" if subset else "none",
            "seed": data.get("seed"), "limit": options.get("limit"), "label_space": options.get("label_space")}


@dataclass
class Cells:
    """One model's predictions over `configs` as intervals.correctness gives them: every image id (sorted) and
    images x configs 0/1 matrices of hits and of scored cells."""
    configs: list
    ids: list
    hits: np.ndarray
    present: np.ndarray


def read_predictions(folder, configs) -> tuple[Cells | None, str | None]:
    """(the Cells of `configs` in folder/predictions.jsonl, None) or (None, why there are none). Only four
    fields of each row are kept, so a file of millions of rows is never held as dicts."""
    path = Path(folder) / PREDICTIONS if folder else None
    if path is None or not path.is_file():
        return None, f"no {PREDICTIONS} beside its results.json"
    column = {c: k for k, c in enumerate(configs)}
    ids, ks, hits, scored, number = [], [], [], [], 0
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                row = json.loads(line) if line.strip() else {"config": None}
                k = column.get(row["config"])
                if k is not None:
                    ids.append(row["image_id"])
                    ks.append(k)
                    hits.append(bool(row["correct"]))
                    scored.append(bool(row["scorable"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path} line {number} cannot be read ({type(exc).__name__}: {exc})"
    return _cells(list(configs), ids, ks, hits, scored), None


def _cells(configs: list, ids: list, ks: list, hits: list, scored: list) -> Cells:
    """The matrices from flat per-row lists: a cell is a hit only where its row was scorable, as in correctness."""
    order = sorted(set(ids))
    where = {image_id: i for i, image_id in enumerate(order)}
    rows = np.fromiter((where[i] for i in ids), dtype=np.int64, count=len(ids))
    ks_, scored_ = np.asarray(ks, dtype=np.int64), np.asarray(scored, dtype=bool)
    hit, present = np.zeros((len(order), len(configs))), np.zeros((len(order), len(configs)))
    hit[rows[scored_], ks_[scored_]] = np.asarray(hits, dtype=np.float64)[scored_]
    present[rows[scored_], ks_[scored_]] = 1.0
    return Cells(configs, order, hit, present)


def model_stats(cells: Cells, results: dict, tasks: list, mean_of: list, mean_id: str, resamples: int,
                seed: int = 0) -> tuple[ModelStats | None, str | None]:
    """(every column of `tasks`, and `mean_id` = the mean of the `mean_of` task ids, per resample, None), or
    (None, why not) when the predictions do not give the scores results.json holds: an interval around another
    number than the one shown would be silently wrong. `cells` must cover every config of `tasks`."""
    configs, ids, hits, present = cells.configs, cells.ids, cells.hits, cells.present
    column = {c: k for k, c in enumerate(configs)}
    gap = {t.metric: _gap_matrices(hits, present, column, *GAPS[t.metric]) for t in tasks if t.metric in GAPS}
    right = hits * present
    estimates = {k: float(v[0]) for k, v in _columns(np.ones((1, len(ids))), right, present, gap,
                                                     tasks, column, mean_of, mean_id).items()}
    problem = _mismatch(results, configs, hits, present, estimates)
    if problem:
        return None, problem
    chunks = [_columns(w, right, present, gap, tasks, column, mean_of, mean_id)
              for w in resample_weights(len(ids), resamples, seed)]
    samples = {k: np.concatenate([c[k] for c in chunks]) for k in estimates}
    return ModelStats(samples, estimates, _digest(ids, present, configs), int(present.sum())), None


# the gap columns: task id -> (results.json summary block, its field, what it is called)
GAP_FIELDS = {"watermark_gap": ("watermark", "in_w_gap", "the watermark gap"),
              "in9_bg_gap": ("imagenet_9", "bg_gap", "the ImageNet-9 BG-gap")}
GAPS = {"watermark_gap": ("watermark", "clean"), "bg_gap": ("in9_mixed_same", "in9_mixed_rand")}  # a minus b


def _gap_matrices(hits, present, column, a: str = "watermark", b: str = "clean") -> tuple[np.ndarray, np.ndarray] | None:
    """(shared, a minus b hit) per image: a gap (ImageNet-W's watermark minus clean, ImageNet-9's mixed_same minus
    mixed_rand) is over the images both configs scored."""
    if a not in column or b not in column:
        return None
    w, c = column[a], column[b]
    shared = present[:, w] * present[:, c]
    return shared, (hits[:, w] - hits[:, c]) * shared


def _columns(weights, right, present, gap, tasks, column, mean_of, mean_id) -> dict:
    """Each task's value per row of `weights` (one resample a row), as eval_results.task_value defines it."""
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (weights @ right) / (weights @ present)  # (resamples, configs)
        out = {}
        for task in tasks:
            ks = [column[c] for c in task.configs]
            if task.metric in ("top1", "mean_top1"):
                out[task.id] = 100 * accuracy[:, ks].mean(axis=1)
            elif task.metric in ("mce", "relative_mce"):
                out[task.id] = _corruption_samples(task, accuracy[:, ks])
            elif task.metric in GAPS and gap.get(task.metric) is not None:
                shared, diff = gap[task.metric]
                out[task.id] = 100 * (weights @ diff) / (weights @ shared)
        if mean_of:
            out[mean_id] = np.mean([out[t] for t in mean_of], axis=0)
    return out


def _corruption_samples(task, accuracy: np.ndarray) -> np.ndarray:
    """mCE or relative mCE per resample, by metrics.corruption_errors (the definition's one home)."""
    from .metrics import config_info, corruption_errors

    info = config_info(list(task.configs))
    keys = [(info[c].get("corruption"), info[c].get("severity")) for c in task.configs]
    clean = task.configs.index("clean") if "clean" in task.configs else None
    out = np.full(accuracy.shape[0], np.nan)
    for b, row in enumerate(accuracy):
        if not np.all(np.isfinite(row)):
            continue
        errors = {key: 1 - v for key, v in zip(keys, row) if key[0]}
        value = corruption_errors(errors, None if clean is None else 1 - row[clean]).get(task.metric)
        out[b] = np.nan if value is None else 100 * value
    return out


def _mismatch(results: dict, configs: list, hits, present, estimates: dict) -> str | None:
    """The first score the predictions give otherwise than results.json, or None."""
    for k, config in enumerate(configs):
        m = results["metrics"].get(config) or {}
        n = int(present[:, k].sum())
        top1 = float(hits[:, k] @ present[:, k] / n) if n else None
        recorded = m.get("top1")
        recorded = None if recorded is None or (isinstance(recorded, float) and math.isnan(recorded)) else recorded
        if n != m.get("n_scored") or (top1 is None) != (recorded is None) or (
                top1 is not None and abs(top1 - recorded) > 1e-9):
            return (f"its {PREDICTIONS} does not match its results.json ({config}: {n} images, top-1 "
                    f"{_shown(top1)} in it; {m.get('n_scored')} images, top-1 {_shown(recorded)} in results.json)")
    for task, (block, field, words) in GAP_FIELDS.items():
        gap = ((results.get("summary") or {}).get(block) or {}).get(field)
        given = estimates.get(task)
        if given is not None and isinstance(gap, (int, float)) and abs(given - 100 * gap) > 1e-6:
            return f"its {PREDICTIONS} does not give {words} its results.json holds"
    return None


def _shown(fraction) -> str:
    return "none" if fraction is None else f"{100 * fraction:.2f} %"


def _digest(ids: list, present: np.ndarray, configs: list) -> str:
    digest = hashlib.sha256(json.dumps([list(configs), [str(i) for i in ids]]).encode())
    digest.update(np.ascontiguousarray(present.astype(bool)).tobytes())
    return digest.hexdigest()


def compare(first: tuple, second: tuple, column: str) -> Pair:
    """Pair of two entries (position, identity, ModelStats or None, why none), on `column`: the percentile
    interval of the paired difference per resample; separated when it excludes 0."""
    (i, identity_a, a, why_a), (j, identity_b, b, why_b) = first, second
    reason = _incomparable(identity_a, identity_b)
    if reason:
        return Pair(i, j, INCOMPARABLE, reason=reason)
    if a is None or b is None or column not in a.samples or column not in b.samples:
        missing = why_a if a is None else why_b if b is None else f"no interval for {column}"
        return Pair(i, j, UNTESTED, reason=missing or "no predictions")
    if a.images != b.images:
        counts = f"{a.cells} vs {b.cells}" if a.cells != b.cells else f"as many ({a.cells}), but other ones"
        return Pair(i, j, INCOMPARABLE, reason=f"scored different images (scored image-config cells: {counts})")
    difference = a.samples[column] - b.samples[column]  # the same images and weights: paired per resample
    ci = interval(difference)
    estimate = a.estimates[column] - b.estimates[column]
    if ci is None:
        return Pair(i, j, UNTESTED, estimate, reason="no finite resample")
    separated = ci["ci_low"] > 0 or ci["ci_high"] < 0
    return Pair(i, j, SEPARATED if separated else NOT_SEPARATED, estimate, ci["ci_low"], ci["ci_high"])


def _incomparable(a: dict, b: dict) -> str:
    for key, what in _IDENTITY:
        if a.get(key) != b.get(key):
            return f"different {what} ({_said(a.get(key))} vs {_said(b.get(key))})"
    return ""


def _said(value) -> str:
    return "none" if value is None else str(value)


def interval_of(samples) -> tuple[float, float] | None:
    """(low, high) of the LEVEL percentile interval, or None without a finite resample."""
    ci = interval(samples)
    return None if ci is None else (ci["ci_low"], ci["ci_high"])


# ----------------------------------------------------------------------------------------------
# ImageNet-P columns: read from each results.json's summary.imagenet_p, never resampled here (its sequences are
# not in the per-image matrices), so their intervals are the ones `evaluate` wrote
# ----------------------------------------------------------------------------------------------

# column id -> (summary.imagenet_p field, scale: 100 shows a fraction in %, 1 a top-5 distance in rank positions)
P_COLUMNS = {"imagenet_p_flip_probability": ("mean_flip_probability", 100),
             "imagenet_p_top5_distance": ("mean_top5_distance", 1),
             "imagenet_p_mfr": ("mfr", 100), "imagenet_p_mt5d": ("mt5d", 100)}
DIGITS = {"imagenet_p_top5_distance": 3}  # decimals shown; every other column 2 (a top-5 distance is often < 1)
P_MEANS = ("imagenet_p_flip_probability", "imagenet_p_top5_distance")  # shown when some model has ImageNet-P
# shown when every model has it: column -> (its per-perturbation ratios, the raw per-config value they divide)
P_RATIOS = {"imagenet_p_mfr": ("flip_rate", "flip_probability"),
            "imagenet_p_mt5d": ("top5_distance_ratio", "top5_distance")}


def imagenet_p_block(results: dict) -> dict | None:
    summary = results.get("summary")
    block = summary.get("imagenet_p") if isinstance(summary, dict) else None
    return block if isinstance(block, dict) else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def imagenet_p_value(results: dict, column: str) -> tuple[float | None, tuple[float, float] | None]:
    """(the column's value in its unit, (low, high) of the 95 % interval results.json gives it), Nones when absent."""
    block = imagenet_p_block(results)
    field, scale = P_COLUMNS[column]
    value = block.get(field) if block else None
    if not _finite(value):
        return None, None
    ci = (block.get("ci") or {}).get(field)
    ok = isinstance(ci, dict) and _finite(ci.get("ci_low")) and _finite(ci.get("ci_high"))
    return scale * value, (scale * ci["ci_low"], scale * ci["ci_high"]) if ok else None


def imagenet_p_scored(results: dict) -> str:
    """`difficulty 1: brightness, translate`: what a model's ImageNet-P means are over, '' without ImageNet-P.
    Two models whose words differ average other perturbations, or compare frames another stride apart."""
    block = imagenet_p_block(results)
    if block is None:
        return ""
    names = ", ".join(sorted(block.get("perturbations") or [])) or "no benchmark perturbation"
    return f"difficulty {block.get('difficulty', 1)}: {names}"


def imagenet_p_reference_difference(labelled: list[tuple[str, dict]], column: str) -> str:
    """Why mFR or mT5D (`column`) of these (label, results) compare unlike with unlike, or '': their ratios must
    be over the same perturbations and, where a reference value can be read back (raw value / ratio), divided by
    the same AlexNet reference. results.json does not name its reference file, so this is the check there is."""
    ratios_field, raw_field = P_RATIOS[column]
    over = {label: tuple(sorted(imagenet_p_block(r).get(ratios_field) or {})) for label, r in labelled}
    if len(set(over.values())) > 1:
        return (f"{column} is over different perturbations ("
                + "; ".join(f"{label}: {', '.join(names) or 'none'}" for label, names in over.items()) + ")")
    seen: dict[str, tuple[str, float]] = {}
    for label, results in labelled:
        for name, value in _implied_reference(imagenet_p_block(results), ratios_field, raw_field).items():
            first = seen.setdefault(name, (label, value))
            if not math.isclose(first[1], value, rel_tol=1e-6):
                return (f"{column} is normalised by different reference values ({name}: {first[1]:.6g} for "
                        f"{first[0]}, {value:.6g} for {label})")
    return ""


def _implied_reference(block: dict, ratios_field: str, raw_field: str) -> dict[str, float]:
    """{perturbation: the reference value its ratio was divided by}, where the raw value and the ratio are both
    non-zero; at difficulty d a noise perturbation's raw value is its `_d` config's, as protocols.at_difficulty."""
    difficulty = block.get("difficulty", 1)
    raw = {e.get("perturbation"): e.get(raw_field) for e in (block.get("per_config") or {}).values()
           if isinstance(e, dict)}
    out = {}
    for name, ratio in (block.get(ratios_field) or {}).items():
        value = raw.get(f"{name}_{difficulty}", raw.get(name))
        if _finite(value) and _finite(ratio) and value and ratio:
            out[name] = value / ratio
    return out

"""Scores computed from per-image results: plain numpy, so each is easy to check by hand.

Definitions follow the papers that introduced them:
- CE / mCE / relative mCE: Hendrycks & Dietterich (ICLR 2019), normalised by AlexNet.
- ECE: 15 equal-mass bins over the top-1 confidence, as the ImageNet-Cartoon/Drawing paper
  (Salvador & Oberman 2022, oberman-lab/imagenet-shift `metrics.py`) computed it.
- IN-W gap and carton gap: ImageNet-W (Li et al., CVPR 2023, `eval_watermark_shortcut.py` of
  facebookresearch/Whac-A-Mole): top-1 on `watermark` minus on `clean`, and the accuracy on the images of
  class 478 "carton" (the class the watermark pushes predictions to) on `watermark` minus on `clean`.
- BG-gap: the Backgrounds Challenge (Xiao et al., ICLR 2021): top-1 on Mixed-Same minus on Mixed-Rand, in the
  ImageNet-9 label space (a 1000-way top-1 mapped to its IN-9 class, as in9_eval.py).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping, Sequence

import numpy as np

from .intervals import DEFAULT_RESAMPLES, add_intervals, interval, resample_weights

# AlexNet top-1 error on ImageNet-C, per corruption, averaged over the 5 severities
# (Hendrycks & Dietterich 2019). The only hand-typed corruption list: the reference table itself.
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}
ALEXNET_CLEAN_ERROR = 0.4348
CORRUPTION_GROUPS = ("imagenet_c", "imagenet_c_extra")  # the groups CE, mCE and the ImageNet-C summary cover
CARTON = 478  # ImageNet-1k index of n02971356 "carton": ImageNet-W's CARTON_CLASS_INDEX
WATERMARK, CLEAN = "watermark", "clean"
IN9_SAME, IN9_RAND = "in9_mixed_same", "in9_mixed_rand"  # the BG-gap's two configs (the Backgrounds Challenge)


def topk_correct(scores: np.ndarray, targets: Sequence[Iterable[int]], k: int) -> np.ndarray:
    """Boolean per row: is any of the row's valid classes among the k highest scores?

    NaN scores (classes with no ImageNet counterpart) are never predicted.
    """
    scores = np.asarray(scores, dtype=np.float64)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.array([bool(set(t) & set(map(int, row))) for t, row in zip(targets, top)], dtype=bool)


def accuracy(correct: Sequence[bool]) -> float:
    correct = np.asarray(correct, dtype=bool)
    if correct.size == 0:
        return float("nan")
    return float(correct.mean())


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 15) -> float:
    """ECE with equal-mass bins: sort by confidence, cut into `n_bins` runs of (nearly) equal size,
    and sum over bins |mean confidence - accuracy| weighted by the bin's share of samples.

    The cut points are those of the imagenet-shift code: after sorting, bin 0 holds the first
    int(linspace(0, n-1, n_bins+1)[1]) + 1 samples and bin i the samples from cut i to cut i+1,
    where cut j = int(linspace(0, n-1, n_bins+1)[j]) + 1. Empty bins (only when n < n_bins) are
    skipped, where the reference would return NaN.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    n = conf.size
    if n == 0:
        return float("nan")
    order, bounds = equal_mass_bins(conf, n_bins)
    conf, hit = conf[order], hit[order]
    ece = 0.0
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo:
            continue
        ece += (hi - lo) / n * abs(conf[lo:hi].mean() - hit[lo:hi].mean())
    return float(ece)


def equal_mass_bins(confidences: np.ndarray, n_bins: int = 15) -> tuple[np.ndarray, list[int]]:
    """(the order sorting the confidences, the bins' bounds in that order): ECE's equal-mass bins."""
    n = len(confidences)
    order = np.argsort(confidences, kind="quicksort")
    cuts = np.linspace(0, n - 1, n_bins + 1).astype(int) + 1
    return order, [0, *cuts[1:-1].tolist(), n]


def _ece_intervals(per: dict, rows: Sequence[Mapping], configs: Sequence[str], resamples: int, seed: int,
                   n_bins: int = 15) -> None:
    """ECE's interval per config from the same resample weights as top-1's (same images, same seed). The bins
    are held at the full sample's equal-mass cuts: a resample sums its weighted (confidence - hit) per bin, so
    ECE_b = sum over bins |sum w (conf - hit)| / sum w, one matrix product for every config at once; the interval
    is bias-corrected (ECE_INTERVAL says why)."""
    with_ece = [c for c in configs if per.get(c) and np.isfinite(per[c]["ece"])]
    if not with_ece:
        return
    ids = sorted({r["image_id"] for r in rows})  # as intervals.correctness: the same n, so the same weights
    where = {image_id: i for i, image_id in enumerate(ids)}
    column = {c: k for k, c in enumerate(with_ece)}
    scored: dict[str, list[Mapping]] = defaultdict(list)
    for r in rows:
        if r["config"] in column and r["scorable"]:
            scored[r["config"]].append(r)
    gap = np.zeros((len(ids), len(with_ece) * n_bins), dtype=np.float32)  # (conf - hit) in its config's bin
    present = np.zeros((len(ids), len(with_ece)), dtype=np.float32)
    for c, k in column.items():
        image = np.array([where[r["image_id"]] for r in scored[c]])
        conf = np.array([r["confidence"] for r in scored[c]], dtype=np.float64)
        hit = np.array([bool(r["correct"]) for r in scored[c]], dtype=np.float64)
        order, bounds = equal_mass_bins(conf, n_bins)
        for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            members = order[lo:hi]
            gap[image[members], k * n_bins + j] = conf[members] - hit[members]
        present[image, k] = 1.0
    samples = []
    for w in resample_weights(len(ids), resamples, seed):
        w = w.astype(np.float32)
        per_bin = np.abs(w @ gap).reshape(len(w), len(with_ece), n_bins).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            samples.append(per_bin / (w @ present))
    ece = np.concatenate(samples)
    for c, k in column.items():
        per[c].setdefault("ci", {})["ece"] = _bias_corrected_interval(per[c]["ece"], ece[:, k])


ECE_INTERVAL = ("percentile bootstrap shifted by the bootstrap's bias (the resamples' mean minus the estimate), clipped "
                "at 0, the equal-mass bins held at the full sample's cuts: a sum of absolute bin gaps is biased "
                "upward, so the raw resamples sit above the estimate and their percentile interval can miss it")


def _bias_corrected_interval(estimate: float, samples: np.ndarray) -> dict | None:
    """The percentile interval of `samples` moved down by their bias, mean(samples) - estimate; clipped at 0."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    raw = interval(finite - (finite.mean() - estimate))
    return {"ci_low": max(0.0, raw["ci_low"]), "ci_high": max(0.0, raw["ci_high"])}


def drop(accuracy_shift: float, accuracy_clean: float) -> dict[str, float]:
    """Accuracy lost against `clean`: absolute (points of accuracy) and relative (share of clean)."""
    absolute = accuracy_clean - accuracy_shift
    relative = absolute / accuracy_clean if accuracy_clean > 0 else float("nan")
    return {"abs": float(absolute), "rel": float(relative)}


def corruption_errors(
    errors: Mapping[tuple[str, int], float],
    clean_error: float | None = None,
    reference: Mapping[str, float] = ALEXNET_ERRORS,
    reference_clean: float = ALEXNET_CLEAN_ERROR,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
) -> dict:
    """CE, mCE and relative mCE from top-1 errors keyed by (corruption, severity).

    CE_c = sum_s E_{s,c} / sum_s E^AlexNet_{s,c}; with AlexNet's errors given as averages over the
    5 severities this is mean_s E_{s,c} / AlexNet_c. Relative CE_c = (mean_s E_{s,c} - E_clean) /
    (AlexNet_c - AlexNet_clean). mCE averages CE over the reference corruptions present; it is marked
    `complete` only when all 15 corruptions have all 5 severities, as the published figure needs.
    Corruptions without an AlexNet reference keep their per-severity errors but no CE.
    """
    by_corruption: dict[str, dict[int, float]] = defaultdict(dict)
    for (name, severity), err in errors.items():
        by_corruption[name][int(severity)] = float(err)
    per: dict[str, dict] = {}
    ces, rel_ces = [], []
    all_complete = True
    for name, sev_err in sorted(by_corruption.items()):
        mean_err = float(np.mean(list(sev_err.values())))
        entry = {
            "error_by_severity": {str(s): e for s, e in sorted(sev_err.items())},
            "mean_error": mean_err,
            "complete": all(s in sev_err for s in severities),
        }
        if name in reference:  # over the severities present; `complete` says whether all five are
            entry["ce"] = mean_err / reference[name]
            ces.append(entry["ce"])
            if clean_error is not None:
                entry["relative_ce"] = (mean_err - clean_error) / (reference[name] - reference_clean)
                rel_ces.append(entry["relative_ce"])
            all_complete &= entry["complete"]
        per[name] = entry
    summary: dict = {"per_corruption": per}
    if ces:
        summary["mce"] = float(np.mean(ces))
        summary["complete"] = bool(all_complete and set(reference) <= set(by_corruption))
        summary["corruptions_in_mce"] = len(ces)
    if rel_ces:
        summary["relative_mce"] = float(np.mean(rel_ces))
    return summary


def error_by_severity(errors: Mapping[tuple[str, int], float]) -> dict[int, float]:
    """Mean error over corruptions at each severity (the accuracy-vs-severity curve)."""
    by_sev: dict[int, list[float]] = defaultdict(list)
    for (_, severity), err in errors.items():
        by_sev[int(severity)].append(float(err))
    return {s: float(np.mean(v)) for s, v in sorted(by_sev.items())}


def ximagenet_robustness(accuracy_by_scenario: Mapping[str, float],
                         class_accuracy_by_scenario: Mapping[str, Sequence[float]] | None = None) -> dict:
    """Variance-based robustness summary for XImageNet-12 scenarios.

    The paper (Li et al., arXiv 2310.08182) defines a robustness score that accounts for the spread
    of accuracy across scenarios and within each scenario (across its 12 classes). Its exact
    equation could not be retrieved while this was written, so this returns the ingredients
    (mean accuracy, between-scenario variance, mean within-scenario variance) and
    score = mean accuracy * (1 - sqrt(between + within)), documented as provisional in the report.
    """
    accs = np.asarray(list(accuracy_by_scenario.values()), dtype=np.float64)
    if accs.size == 0:
        return {}
    between = float(accs.var())
    within = 0.0
    if class_accuracy_by_scenario:
        within = float(np.mean([np.var(np.asarray(v, dtype=np.float64)) for v in class_accuracy_by_scenario.values()]))
    mean = float(accs.mean())
    return {
        "mean_accuracy": mean,
        "between_scenario_variance": between,
        "within_scenario_variance": within,
        "score": float(mean * (1.0 - np.sqrt(between + within))),
        "provisional": True,
    }


def config_info(names: Sequence[str]) -> dict[str, dict]:
    """What the registry says about each config: family, group, severity, the corruption it belongs to
    (name without the `_<severity>` suffix) and its clean baseline (clean_full for full-resolution)."""
    from ..registry import FULL, REGISTRY

    info: dict[str, dict] = {}
    for name in names:
        spec = REGISTRY.get(name)
        if spec is None:
            info[name] = {"family": None, "group": None, "severity": None, "base": name, "baseline": "clean"}
            continue
        base = name
        if spec.severity is not None and name.endswith(f"_{spec.severity}"):
            base = name[: -len(f"_{spec.severity}")]
        info[name] = {
            "family": spec.family,
            "group": spec.group,
            "severity": spec.severity,
            "base": base,
            "corruption": base if spec.group in CORRUPTION_GROUPS and spec.severity is not None else None,
            "baseline": "clean_full" if spec.geometry == FULL and name != "clean_full" else "clean",
        }
    return info


def _ece(scored: list, space: str | None) -> float:
    """ECE, except in mean-probability spaces (ToonNet, 16-class) whose scores are not probabilities."""
    from .labels import get_label_space

    if space and get_label_space(space).kind == "mean_prob":
        return float("nan")
    return expected_calibration_error([r["confidence"] for r in scored], [r["correct"] for r in scored])


def summarize(rows: Sequence[Mapping], configs: Sequence[str], bootstrap: int | None = None, seed: int = 0) -> dict:
    """Per-config metrics and the cross-config summaries (mCE, severity curves, XImageNet score), each score
    with its 95 % bootstrap interval (`bootstrap` resamples over images, default 1,000; 0 turns them off)."""
    scored = _summarize(rows, configs)
    resamples = DEFAULT_RESAMPLES if bootstrap is None else bootstrap
    scored = add_intervals(scored, rows, configs, resamples, seed, derived=_imagenet_c_intervals)
    if resamples and rows:
        _ece_intervals(scored["per_config"], rows, configs, resamples, seed)
        scored["summary"]["intervals"]["ece_method"] = ECE_INTERVAL
    if scored["summary"].get("watermark") and resamples:
        _watermark_intervals(scored["summary"]["watermark"], rows, resamples, seed)
    if scored["summary"].get("imagenet_9") and resamples:
        _bg_gap_intervals(scored["summary"]["imagenet_9"], rows, resamples, seed)
    return scored


def _summarize(rows: Sequence[Mapping], configs: Sequence[str]) -> dict:
    info = config_info(configs)
    by_config: dict[str, list[Mapping]] = defaultdict(list)
    for row in rows:
        by_config[row["config"]].append(row)
    per: dict[str, dict] = {}
    for name in configs:
        scored = [r for r in by_config.get(name, []) if r["scorable"]]
        n_all = len(by_config.get(name, []))
        per[name] = {
            "n": n_all,
            "n_scored": len(scored),
            "n_unscorable": n_all - len(scored),
            "label_space": by_config[name][0]["label_space"] if by_config.get(name) else None,
            "top1": accuracy([r["correct"] for r in scored]),
            "top5": accuracy([r["correct5"] for r in scored]),
            "ece": _ece(scored, by_config[name][0]["label_space"] if by_config.get(name) else None),
            "severity": info[name]["severity"],
        }
    # drop vs the clean baseline, scored in the same label space
    for name in configs:
        base = info[name]["baseline"]
        if base == name or base not in by_config:
            base = "clean" if "clean" in by_config and name != "clean" else None
        if base is None or name in ("clean", "clean_full"):
            continue
        space = per[name]["label_space"]
        paired = _paired(by_config.get(name, []), by_config[base], space)
        if paired is not None:
            shift_acc, clean_acc, shared = paired
            per[name]["baseline"] = base
            per[name]["drop"] = {**drop(shift_acc, clean_acc), "images": shared}
            if shared != per[name]["n_scored"] or shared != _scored_count(by_config[base], space):
                per[name]["drop"]["shared_only"] = True  # the two configs hold different images: said
    summary: dict = {}
    corrupted = [n for n in configs if info[n].get("corruption") and not np.isnan(per[n]["top1"])]
    shared = _shared_images(by_config, [*corrupted, *(["clean"] if "clean" in by_config else [])])
    errors = {(info[n]["corruption"], info[n]["severity"]): 1.0 - _top1(by_config[n], shared) for n in corrupted}
    if errors:
        clean_err = 1.0 - _top1(by_config["clean"], shared) if "clean" in per and not np.isnan(per["clean"]["top1"]) else None
        summary["imagenet_c"] = corruption_errors(errors, clean_err)
        if shared is not None:  # the configs hold different images: CE and mCE on the ones they all share
            summary["imagenet_c"].update(images=len(shared), shared_only=True)
        from ..registry import groups

        fifteen = set(groups().get("imagenet_c", ()))  # the mean curve is over the 15, as mCE; not the 4 extras
        main = {k: v for k, v in errors.items() if f"{k[0]}_{k[1]}" in fifteen} or errors
        summary["imagenet_c"]["error_by_severity"] = {str(k): v for k, v in error_by_severity(main).items()}
    curves: dict[str, dict[str, float]] = defaultdict(dict)
    for n in configs:
        if info[n]["severity"] is not None and not np.isnan(per[n]["top1"]):
            curves[info[n]["base"]][str(info[n]["severity"])] = per[n]["top1"]
    if curves:
        summary["accuracy_by_severity"] = {k: dict(sorted(v.items(), key=lambda kv: int(kv[0]))) for k, v in curves.items()}
    xim = [n for n in configs if per[n]["label_space"] == "ximagenet-12" and per[n]["n_scored"]]
    if xim:
        class_acc = {}
        for n in xim:
            hits: dict[int, list[bool]] = defaultdict(list)
            for r in by_config[n]:
                if r["scorable"]:
                    hits[r["targets"][0]].append(r["correct"])
            class_acc[n] = [float(np.mean(v)) for v in hits.values()]
        summary["ximagenet_robustness"] = ximagenet_robustness({n: per[n]["top1"] for n in xim}, class_acc)
    gaps = watermark_gaps(by_config.get(WATERMARK, []), by_config.get(CLEAN, []))
    if gaps:
        summary["watermark"] = gaps
    gap = bg_gap(by_config.get(IN9_SAME, []), by_config.get(IN9_RAND, []))
    if gap:
        summary["imagenet_9"] = gap
    return {"per_config": per, "summary": summary}


# --- ImageNet-9 (the Backgrounds Challenge) ----------------------------------------------------------------------

def bg_gap(same: Sequence[Mapping], rand: Sequence[Mapping]) -> dict | None:
    """The Backgrounds Challenge's BG-gap, top-1 on in9_mixed_same minus on in9_mixed_rand (Xiao et al.: how much
    a background that agrees with the object helps), over the images both configs scored; None without both.
    `mixed_same_top1` / `mixed_rand_top1` are the two accuracies over those images."""
    pairs = _paired_rows(same, rand)
    if not pairs:
        return None
    both = np.asarray([(bool(a["correct"]), bool(b["correct"])) for a, b in pairs.values()], dtype=np.float64)
    out: dict = {"images": len(pairs), "label_space": next(iter(pairs.values()))[0]["label_space"],
                 "mixed_same_top1": float(both[:, 0].mean()), "mixed_rand_top1": float(both[:, 1].mean()),
                 "bg_gap": float(both[:, 0].mean() - both[:, 1].mean())}
    if any(len(pairs) != sum(1 for r in rows if r["scorable"]) for rows in (same, rand)):
        out["shared_only"] = True  # the two configs hold different images (a partner missing): the gap is on the shared
    return out


def _bg_gap_intervals(gap: dict, rows: Sequence[Mapping], resamples: int, seed: int) -> None:
    """`ci` of the BG-gap from the weights `add_intervals` draws (same images, same seed), paired per image."""
    ids, pairs = _ids_and_pairs(rows, IN9_SAME, IN9_RAND)
    sums = np.zeros((len(ids), 2))  # per image: [shared, same minus rand hit]
    for i, image_id in enumerate(ids):
        if image_id in pairs:
            a, b = pairs[image_id]
            sums[i] = (1.0, float(bool(a["correct"])) - float(bool(b["correct"])))
    gap["ci"] = _resampled_ratios(sums, {"bg_gap": (1, 0)}, resamples, seed)


def _ids_and_pairs(rows: Sequence[Mapping], first: str, second: str) -> tuple[list[str], dict[str, tuple]]:
    """(every image id in the order intervals.correctness gives the resample weights, the paired rows of two
    configs by image id)."""
    by_config: dict[str, list[Mapping]] = defaultdict(list)
    for r in rows:
        by_config[r["config"]].append(r)
    return sorted({r["image_id"] for r in rows}), _paired_rows(by_config[first], by_config[second])


def _resampled_ratios(sums: np.ndarray, ratios: Mapping[str, tuple[int, int]], resamples: int, seed: int) -> dict:
    """name -> the interval of sum(w x sums[:, num]) / sum(w x sums[:, den]) over the resample weights `add_intervals`
    draws, for each (num, den) column pair: a paired statistic over the resampled images."""
    samples: dict[str, list] = {name: [] for name in ratios}
    for w in resample_weights(sums.shape[0], resamples, seed):
        with np.errstate(invalid="ignore", divide="ignore"):
            s = w @ sums
            for name, (num, den) in ratios.items():
                samples[name].append(s[:, num] / s[:, den])
    return {name: interval(np.concatenate(v)) for name, v in samples.items()}


# --- ImageNet-W -------------------------------------------------------------------------------------

def _paired_rows(first: Sequence[Mapping], second: Sequence[Mapping]) -> dict[str, tuple]:
    """image id -> (row of `first`, row of `second`) for the images both configs scored in one label space."""
    base = {r["image_id"]: r for r in second if r["scorable"]}
    return {r["image_id"]: (r, base[r["image_id"]]) for r in first
            if r["scorable"] and r["image_id"] in base and base[r["image_id"]]["label_space"] == r["label_space"]}


def _watermark_columns(pairs: Mapping[str, tuple], carton: bool) -> dict[str, dict]:
    """Per paired image: correct and predicted carton (on watermark, on clean), and labelled carton."""
    hit = lambda r: bool(r["correct"])  # noqa: E731
    said = lambda r: carton and r["pred"] == CARTON  # noqa: E731
    return {image_id: {"correct": (hit(w), hit(c)), "carton_pred": (said(w), said(c)),
                       "carton_image": carton and CARTON in w["targets"]} for image_id, (w, c) in pairs.items()}


def watermark_gaps(watermark: Sequence[Mapping], clean: Sequence[Mapping]) -> dict | None:
    """ImageNet-W's gaps on the images `watermark` and `clean` both scored, or None without both configs:
    - in_w_gap: top-1 on watermark minus on clean (Li et al.'s IN-W gap; negative when the watermark hurts);
    - carton_gap: accuracy on the images labelled 478 carton, watermark minus clean (their carton gap;
      absent when no such image was scored, e.g. on sources without that class);
    - carton_prediction_gap: share of all images predicted carton, watermark minus clean (the shift of
      predictions to carton, over every image).
    The carton gaps need the ImageNet-1k label space (class 478 is carton only there)."""
    pairs = _paired_rows(watermark, clean)
    if not pairs:
        return None
    space = next(iter(pairs.values()))[0]["label_space"]
    columns = _watermark_columns(pairs, carton=space == "imagenet-1k")
    both = np.asarray([v["correct"] for v in columns.values()], dtype=np.float64)
    out: dict = {"images": len(pairs), "label_space": space,
                 "in_w_gap": float(both[:, 0].mean() - both[:, 1].mean())}
    if any(len(pairs) != sum(1 for r in rows if r["scorable"]) for rows in (watermark, clean)):
        out["shared_only"] = True  # the two configs hold different images: the gaps are on the shared ones
    if space != "imagenet-1k":
        return out
    said = np.asarray([v["carton_pred"] for v in columns.values()], dtype=np.float64)
    out["carton_prediction_gap"] = float(said[:, 0].mean() - said[:, 1].mean())
    cartons = np.asarray([v["carton_image"] for v in columns.values()], dtype=bool)
    out["carton_images"] = int(cartons.sum())
    if cartons.any():
        out["carton_gap"] = float(said[cartons, 0].mean() - said[cartons, 1].mean())
    return out


def _watermark_intervals(gaps: dict, rows: Sequence[Mapping], resamples: int, seed: int) -> None:
    """`ci` for each gap, from the same resample weights `add_intervals` draws (same images, same seed), so
    the gaps stay paired with every other score: per resample, each gap over the resampled shared images."""
    ids, pairs = _ids_and_pairs(rows, WATERMARK, CLEAN)
    columns = _watermark_columns(pairs, carton=gaps.get("label_space") == "imagenet-1k")
    # per image: [shared, correct diff, carton-labelled, carton-labelled x carton-pred diff, carton-pred diff]
    sums = np.zeros((len(ids), 5))
    for i, image_id in enumerate(ids):
        v = columns.get(image_id)
        if v is None:
            continue
        pred = v["carton_pred"][0] - v["carton_pred"][1]
        sums[i] = (1.0, v["correct"][0] - v["correct"][1], v["carton_image"], v["carton_image"] * pred, pred)
    ratios = {"in_w_gap": (1, 0), "carton_gap": (3, 2), "carton_prediction_gap": (4, 0)}
    gaps["ci"] = _resampled_ratios(sums, {k: v for k, v in ratios.items() if k in gaps}, resamples, seed)


_NOT_IN_SPACE = object()  # a baseline row that was never scored in the asked label space


def _paired(shifted: Sequence[Mapping], baseline: Sequence[Mapping], space: str | None):
    """(shifted top-1, baseline top-1, n) over the images both configs scored, matched by image id, the
    baseline in the shifted config's label space; None when they share no scorable image."""
    base = {}
    for r in baseline:
        hit = _in_space(r, space)
        if hit is _NOT_IN_SPACE:
            return None
        if hit is not None:
            base[r["image_id"]] = hit
    pairs = [(r["correct"], base[r["image_id"]]) for r in shifted if r["scorable"] and r["image_id"] in base]
    if not pairs:
        return None
    hits = np.asarray(pairs, dtype=bool)
    return float(hits[:, 0].mean()), float(hits[:, 1].mean()), len(pairs)


def _in_space(row: Mapping, space: str | None):
    """A baseline row's correctness in `space`: True/False, None when unscorable there, or _NOT_IN_SPACE."""
    if row["label_space"] == space:
        return bool(row["correct"]) if row["scorable"] else None
    other = (row.get("other_spaces") or {}).get(space)
    if other is None:
        return _NOT_IN_SPACE
    return bool(other["correct"]) if other["scorable"] else None


def _scored_count(rows: Sequence[Mapping], space: str | None) -> int:
    return sum(1 for r in rows if isinstance(_in_space(r, space), bool))


def _shared_images(by_config: Mapping[str, Sequence[Mapping]], names: Sequence[str]) -> set | None:
    """The scorable image ids every config in `names` holds, or None when they all hold the same ones."""
    sets = [{r["image_id"] for r in by_config.get(n, []) if r["scorable"]} for n in names]
    if not sets or all(s == sets[0] for s in sets):
        return None
    return set.intersection(*sets)


def _top1(rows: Sequence[Mapping], images: set | None) -> float:
    return accuracy([r["correct"] for r in rows if r["scorable"] and (images is None or r["image_id"] in images)])


def _imagenet_c_intervals(summary: dict, configs: list[str], top1: np.ndarray, column: dict) -> None:
    """ImageNet-C's mean error per corruption, CE, relative CE, mCE and relative mCE, recomputed per resample:
    `add_intervals` calls it (`derived`) with the resampled top-1 of every config."""
    c = summary.get("imagenet_c")
    if not c or not c.get("per_corruption"):
        return
    info = config_info(configs)
    clean = 1 - top1[:, column["clean"]] if "clean" in column else None
    ces, rel_ces = [], []
    for name, entry in c["per_corruption"].items():
        ks = [column[n] for n in configs if info[n].get("corruption") == name]
        if not ks:
            continue
        with np.errstate(invalid="ignore"):
            mean_err = np.nanmean(1 - top1[:, ks], axis=1) if len(ks) > 1 else 1 - top1[:, ks[0]]
        entry["ci"] = {"mean_error": interval(mean_err)}
        if name in ALEXNET_ERRORS:
            ce = mean_err / ALEXNET_ERRORS[name]
            entry["ci"]["ce"] = interval(ce)
            ces.append(ce)
            if clean is not None:
                rel = (mean_err - clean) / (ALEXNET_ERRORS[name] - ALEXNET_CLEAN_ERROR)
                entry["ci"]["relative_ce"] = interval(rel)
                rel_ces.append(rel)
    ci = {}
    if ces and "mce" in c:
        ci["mce"] = interval(np.mean(ces, axis=0))
    if rel_ces and "relative_mce" in c:
        ci["relative_mce"] = interval(np.mean(rel_ces, axis=0))
    c["ci"] = ci

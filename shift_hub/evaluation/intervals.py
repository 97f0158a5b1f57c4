"""95 % intervals for every score by a seeded bootstrap over source images.

Resampling an image resamples it in every config at once (rows are matched by `image_id`), so a drop
vs clean, a group mean and mCE keep their pairing: their intervals are those of paired statistics,
narrower than the two accuracies' intervals combined when the configs are correlated. Everything is a
matrix product over resample weights, so 50,000 images x 100 configs take seconds (bench/bench_intervals.py).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

METHOD = "percentile bootstrap over source images, paired across configs"
DEFAULT_RESAMPLES = 1000
LEVEL = 0.95
_CHUNK = 100  # resamples per matrix product: bounds memory at CHUNK x images weights


def correctness(rows: Sequence[Mapping], configs: Sequence[str]):
    """(image ids, top-1 hits, top-5 hits, present): images x configs 0/1 matrices, one pass over the rows."""
    ids = sorted({r["image_id"] for r in rows})
    where = {image_id: i for i, image_id in enumerate(ids)}
    column = {c: k for k, c in enumerate(configs)}
    shape = (len(ids), len(configs))
    hits, hits5, present = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for r in rows:
        k = column.get(r["config"])
        if k is not None and r["scorable"]:
            i = where[r["image_id"]]
            hits[i, k], hits5[i, k], present[i, k] = bool(r["correct"]), bool(r["correct5"]), 1.0
    return ids, hits, hits5, present


def resample_weights(n: int, resamples: int, seed: int = 0):
    """Chunks of (resamples, n) counts: how often each image is drawn in each resample."""
    rng = np.random.default_rng([seed, n, resamples])
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def resampled(hits: np.ndarray, hits5: np.ndarray, present: np.ndarray, pairs: Sequence[tuple[int, int]],
              resamples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top-1, top-5, paired drops) per resample, from one set of resample weights: accuracies are
    (resamples, configs), drops (resamples, pairs) for each (config, baseline) over the images both hold.
    NaN where a resample holds no scorable image."""
    k, b = [p[0] for p in pairs], [p[1] for p in pairs]
    both = present[:, k] * present[:, b]
    diff = (hits[:, b] - hits[:, k]) * both
    right1, right5 = hits * present, hits5 * present
    top1, top5, drops = [], [], []
    for w in resample_weights(hits.shape[0], resamples, seed):
        with np.errstate(invalid="ignore", divide="ignore"):
            count = w @ present
            top1.append((w @ right1) / count)
            top5.append((w @ right5) / count)
            drops.append((w @ diff) / (w @ both))
    return np.concatenate(top1), np.concatenate(top5), np.concatenate(drops)


def interval(samples: np.ndarray) -> dict | None:
    """{ci_low, ci_high}: the percentile interval at LEVEL, or None without finite samples."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return {"ci_low": float(low), "ci_high": float(high)}


def shift_severities(configs: Sequence[str]) -> dict[str, list[str]]:
    """`gaussian_noise` -> its severity configs present (`gaussian_noise_1` ...): what a report bar averages."""
    from ..registry import REGISTRY

    out: dict[str, list[str]] = {}
    for c in configs:
        spec = REGISTRY.get(c)
        if spec is not None and spec.severity is not None and c.endswith(f"_{spec.severity}"):
            out.setdefault(c[: -len(f"_{spec.severity}")], []).append(c)
    return out


def group_means(per: dict, configs: Sequence[str], top1: np.ndarray, column: dict) -> dict:
    """Mean top-1 over each registry group, and over each shift's severities, with two or more scored configs
    here (what eval.yaml's `<group>_top1` and the report's bars show), with the interval of that mean under the
    same resamples: paired, so it is narrower than the configs' intervals combined."""
    from ..registry import groups

    out = {}
    for group, names in {**groups(), **shift_severities(configs)}.items():
        cols = [column[c] for c in names if c in column and np.isfinite(per[c]["top1"])]
        if len(cols) < 2:
            continue
        with np.errstate(invalid="ignore"):
            samples = np.nanmean(top1[:, cols], axis=1) if top1.size else np.array([])
        out[group] = {"top1": float(np.mean([per[configs[k]]["top1"] for k in cols])), "configs": len(cols),
                      "ci": {"top1": interval(samples)}}
    return out


def add_intervals(scored: dict, rows: Sequence[Mapping], configs: Sequence[str], resamples: int = DEFAULT_RESAMPLES,
                  seed: int = 0, derived: Callable[[dict, list, np.ndarray, dict], None] | None = None) -> dict:
    """Put `ci` ({ci_low, ci_high} per score) beside top-1, top-5 and the drop of `summarize`'s output, and say
    how they were made under summary["intervals"]. `derived(summary, configs, top1, column)` adds those of the
    scores computed from the resampled top-1 (metrics passes ImageNet-C's: it owns their definitions)."""
    if not resamples or not rows:
        scored["summary"]["intervals"] = {"method": None, "resamples": 0}
        return scored
    per, summary = scored["per_config"], scored["summary"]
    configs = list(configs)
    ids, hits, hits5, present = correctness(rows, configs)
    spaces: dict[str, set] = {}
    for r in rows:
        spaces.setdefault(r["config"], set()).add(r["label_space"])
    column = {c: k for k, c in enumerate(configs)}
    pairs = [(column[c], column[per[c]["baseline"]]) for c in configs
             if per[c].get("drop") is not None and per[c].get("baseline") in column
             and len(spaces.get(c, set()) | spaces.get(per[c]["baseline"], set())) == 1]
    top1, top5, drops = resampled(hits, hits5, present, pairs, resamples, seed)
    drop_of = {k: j for j, (k, _) in enumerate(pairs)}
    for c, k in column.items():
        ci = {"top1": interval(top1[:, k]), "top5": interval(top5[:, k])}
        if k in drop_of:
            ci["drop_abs"] = interval(drops[:, drop_of[k]])
        per[c]["ci"] = ci
    means = group_means(per, configs, top1, column)
    if means:
        summary["group_means"] = means
    if derived:
        derived(summary, configs, top1, column)
    summary["intervals"] = {"method": METHOD, "resamples": int(resamples), "level": LEVEL, "seed": seed,
                            "images": len(ids)}
    return scored

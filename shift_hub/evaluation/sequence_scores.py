"""ImageNet-P configs scored as the paper: flip probability and top-5 distance per perturbation, their means,
and mFR / mT5D against an AlexNet reference, each with a 95 % bootstrap interval.

The per-frame rows come from the ordinary evaluation loop (image id `<sequence>#<frame>`); the protocol is
`protocols` (the same code that scores the released mp4s in `--suite robustness`). Intervals resample source
images: a sequence is one image's, and resampling an image resamples its sequence in every perturbation, so
the mean over perturbations keeps its pairing as mCE does.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

from . import protocols
from .intervals import METHOD, interval, resample_weights

PREFIX = "imagenet_p_"


def perturbation(config: str) -> str:
    """`imagenet_p_gaussian_noise_2` -> `gaussian_noise_2`, the release's folder name."""
    return config[len(PREFIX):] if config.startswith(PREFIX) else config


def score_parts(rows: Sequence[Mapping], parts: Sequence, summarize, difficulty: int = 1, reference=None,
                resamples: int = 1000, seed: int = 0) -> tuple[dict, list[str], list[Mapping]]:
    """(scores, image config names, their rows): the image configs of `parts` through `summarize(rows, names,
    bootstrap=, seed=)` (metrics.summarize), the sequence ones (ConfigData.sequences) into
    `summary.imagenet_p`. A sequence's frames never enter the per-config accuracies: frame 0's top-1 is no
    ImageNet-P number."""
    expected = {p.name: list(p.sequences) for p in parts if p.sequences}
    names = [p.name for p in parts if not p.sequences]
    image_rows = [r for r in rows if r["config"] not in expected] if expected else list(rows)
    scored = summarize(image_rows, names, bootstrap=resamples, seed=seed)
    if expected:
        scored["summary"]["imagenet_p"] = summarize_sequences(
            [r for r in rows if r["config"] in expected], expected, difficulty, reference, resamples, seed)
    return scored, names, image_rows


def summarize_sequences(rows: Sequence[Mapping], expected: Mapping[str, Sequence[tuple[str, int]]],
                        difficulty: int = 1, reference: Mapping | None = None, resamples: int = 1000,
                        seed: int = 0) -> dict:
    """results.json's `summary.imagenet_p`: per config its sequences, frames, flip probability and top-5
    distance (with intervals); over the ten benchmark perturbations their means, and mFR / mT5D with a
    reference. A sequence missing a frame is left out whole and listed (`incomplete`)."""
    by_config: dict[str, list[Mapping]] = defaultdict(list)
    for r in rows:
        by_config[r["config"]].append(r)
    per: dict[str, dict] = {}
    values: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    for config, sequences in expected.items():
        preds, top5, incomplete = protocols.sequences_from_rows(by_config.get(config, []), sequences)
        left_out = set(incomplete)
        ids = [s for s, _ in sequences if s not in left_out]
        name = perturbation(config)
        noise = protocols.is_noise(name)
        flips = np.array(protocols.flips_per_sequence(preds, noise, difficulty))
        dists = np.array(protocols.top5_distances_per_sequence(top5, noise, difficulty))
        spaces = sorted({r["label_space"] for r in by_config.get(config, []) if r.get("label_space")})
        per[config] = {
            "perturbation": name, "sequences": len(ids), "frames": int(sum(len(s) for s in preds)),
            "label_space": spaces[0] if len(spaces) == 1 else (spaces or None),
            "incomplete": list(incomplete), "compared_to": _compared_to(noise, difficulty),
            "flip_probability": _mean(flips), "top5_distance": _mean(dists)}
        values[config] = (ids, flips, dists)
    flip = {per[c]["perturbation"]: per[c]["flip_probability"] for c in per if per[c]["sequences"]}
    t5d = {per[c]["perturbation"]: per[c]["top5_distance"] for c in per if per[c]["sequences"]}
    summary = {"difficulty": difficulty, "per_config": per,
               **protocols.perturbation_summary(protocols.at_difficulty(flip, difficulty),
                                                protocols.at_difficulty(t5d, difficulty), reference)}
    if not reference:
        summary["note"] = ("no AlexNet reference given (--p-reference FILE.json), so mFR / mT5D are not computed; "
                           "the raw mean flip probability and top-5 distance are reported")
    if resamples:
        _add_intervals(summary, values, difficulty, reference, resamples, seed)
    return summary


def means_sentence(p: Mapping, percent, number, note=str) -> str:
    """The line under ImageNet-P's table, worded once for table.md and report.html: over which perturbations, the
    means, mFR / mT5D with a reference (partial or not) and the summary's note. `percent(value, ci)` and
    `number(value, ci)` write a value with its interval in each output's own way; `note` escapes the note."""
    ci = p.get("ci") or {}
    shown = p.get("perturbations") or []
    if not shown:
        text = "none of the 10 benchmark perturbations was scored (only validation or harder ones)"
    else:
        over = ("over the 10 benchmark perturbations" if p.get("complete")
                else f"over the {len(shown)} of 10 benchmark perturbations present")
        text = (f"difficulty {p.get('difficulty', 1)}, {over}: mean flip probability "
                f"{percent(p.get('mean_flip_probability'), ci.get('mean_flip_probability'))} %, mean top-5 distance "
                f"{number(p.get('mean_top5_distance'), ci.get('mean_top5_distance'))}")
        if "mfr" in p:
            text += f"; mFR {percent(p['mfr'], ci.get('mfr'))} %"
        if "mt5d" in p:
            text += f", mT5D {percent(p['mt5d'], ci.get('mt5d'))} %"
        if "mfr" in p or "mt5d" in p:
            text += " (AlexNet-normalised)"
            if not p.get("reference_complete"):
                text += " (partial: the reference or the data lacks some perturbations)"
    return text + (f"; {note(p['note'])}" if p.get("note") else "")


def _compared_to(noise: bool, difficulty: int) -> str:
    if noise:
        return "first frame"
    return "previous frame" if difficulty == 1 else f"frame {difficulty} earlier"


def _mean(values: np.ndarray) -> float:
    kept = values[np.isfinite(values)]
    return float(kept.mean()) if kept.size else float("nan")


def _benchmark_configs(per: Mapping[str, dict], difficulty: int) -> dict[str, str]:
    """{benchmark perturbation: the config standing in for it at `difficulty`}, as `protocols.at_difficulty`."""
    present = {per[c]["perturbation"]: c for c in per if per[c]["sequences"]}
    chosen = protocols.at_difficulty({p: p for p in present}, difficulty)
    return {p: present[source] for p, source in chosen.items() if p in protocols.IMAGENET_P_PERTURBATIONS}


def _add_intervals(summary: dict, values: Mapping[str, tuple], difficulty: int, reference, resamples: int,
                   seed: int) -> None:
    """Per-config and mean intervals from one set of resample weights over the source images."""
    ids = sorted({i for seq_ids, _, _ in values.values() for i in seq_ids})
    if not ids:
        return
    where = {image_id: k for k, image_id in enumerate(ids)}
    configs = list(values)
    # images x configs matrices of per-sequence values (0 where absent) and presence
    flips, dists, present = (np.zeros((len(ids), len(configs))) for _ in range(3))
    for k, config in enumerate(configs):
        seq_ids, f, d = values[config]
        rows = [where[i] for i in seq_ids]
        ok = np.isfinite(f)
        flips[rows, k], dists[rows, k], present[rows, k] = np.where(ok, f, 0), np.where(ok, d, 0), ok
    samples_f, samples_d = [], []
    for w in resample_weights(len(ids), resamples, seed):
        with np.errstate(invalid="ignore", divide="ignore"):
            count = w @ present
            samples_f.append((w @ flips) / count)
            samples_d.append((w @ dists) / count)
    fp, t5 = np.concatenate(samples_f), np.concatenate(samples_d)
    column = {c: k for k, c in enumerate(configs)}
    for config, entry in summary["per_config"].items():
        entry["ci"] = {"flip_probability": interval(fp[:, column[config]]),
                       "top5_distance": interval(t5[:, column[config]])}
    bench = _benchmark_configs(summary["per_config"], difficulty)
    ci: dict = {}
    if bench:
        cols = [column[c] for c in bench.values()]
        ci["mean_flip_probability"] = interval(fp[:, cols].mean(axis=1))
        ci["mean_top5_distance"] = interval(t5[:, cols].mean(axis=1))
        if reference:
            for key, samples, metric in (("mfr", fp, "flip_probability"), ("mt5d", t5, "top5_distance")):
                ref = reference.get(metric, {})
                ratios = [samples[:, column[c]] / ref[p] for p, c in bench.items() if ref.get(p)]
                if ratios and key in summary:
                    ci[key] = interval(np.mean(ratios, axis=0))
    summary["ci"] = ci
    summary["intervals"] = {"method": METHOD, "resamples": resamples, "seed": seed, "images": len(ids)}

"""How each established shift set is scored, as its authors scored it. Plain numpy, checkable by hand.

- ImageNet-A / -R (Hendrycks et al. 2019, 2021): top-1 over the set's 200 classes only (the other
  800 logits are masked out before the argmax).
- ReaL (Beyer et al. 2020): a prediction is correct when it is in the image's ReaL label set;
  images whose set is empty are left out.
- ImageNet-O (Hendrycks et al. 2021, natural-adv-examples `eval_many_models.py`): out-of-distribution
  detection with the maximum softmax probability over ImageNet-O's 200 classes; ImageNet-O images
  are the positives, ImageNet validation images of the same 200 classes the negatives, the anomaly
  score is -MSP, and AUPR is sklearn's average_precision_score (AUROC is reported beside it).
- ImageNet-P (Hendrycks & Dietterich 2019, robustness/ImageNet-P/test.py): flip probability and
  top-5 distance per perturbation. Noise sequences compare every frame with the first one; the
  other sequences compare consecutive frames, or frames `difficulty` apart (each of the
  `difficulty` interleaved sub-sequences separately). Per-sequence means are averaged over
  sequences. Flip rate FR_p = FP_p / FP_p(AlexNet); mFR averages FR over the perturbations, mT5D
  likewise with the top-5 distance.

The AlexNet ImageNet-P reference values are not in the authors' code (they were shared as a
spreadsheet), so none are typed here: mFR / mT5D are computed when a reference table is given
(`reference_from_file`), and the raw mean flip probability / top-5 distance are always reported.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

# The ten perturbations of the ImageNet-P benchmark figure (mFR, mT5D); the release also has four
# held-out ones (speckle_noise, gaussian_blur, spatter, shear) that are reported but not averaged.
IMAGENET_P_PERTURBATIONS = ("gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness",
                            "translate", "rotate", "tilt", "scale")
IMAGENET_P_HELD_OUT = ("speckle_noise", "gaussian_blur", "spatter", "shear")


# ----------------------------------------------------------------------------------------------
# classification protocols
# ----------------------------------------------------------------------------------------------

def masked_predictions(logits: np.ndarray, subset: Sequence[int]) -> np.ndarray:
    """ImageNet-1k index of the highest logit among `subset` (the 200-class protocol of A and R)."""
    subset = np.asarray(subset, dtype=np.int64)
    return subset[np.argmax(np.asarray(logits)[:, subset], axis=1)]


def masked_top1(logits: np.ndarray, labels: Sequence[int], subset: Sequence[int]) -> float:
    return float(np.mean(masked_predictions(logits, subset) == np.asarray(labels)))


def real_accuracy(predictions: Sequence[int], label_sets: Sequence[Iterable[int]]) -> dict:
    """ReaL top-1: correct when the prediction is in the set; empty sets excluded from the count."""
    hits = [int(p) in set(s) for p, s in zip(predictions, label_sets) if len(list(s))]
    n_all = len(predictions)
    return {"accuracy": float(np.mean(hits)) if hits else float("nan"), "n_scored": len(hits),
            "n_excluded": n_all - len(hits)}


def real_label_sets(image_ids: Sequence[str]) -> list[tuple[int, ...]]:
    """ReaL label set of each validation image id (anything ending in ILSVRC2012_val_XXXXXXXX)."""
    import re

    from .. import classes

    real = classes.real_labels()
    out = []
    for image_id in image_ids:
        m = re.search(r"ILSVRC2012_val_(\d{8})", str(image_id))
        if m is None:
            raise ValueError(f"{image_id!r} is not an ILSVRC2012 validation image name; ReaL needs them")
        out.append(tuple(real[int(m.group(1)) - 1]))
    return out


# ----------------------------------------------------------------------------------------------
# ImageNet-O
# ----------------------------------------------------------------------------------------------

def max_softmax(logits: np.ndarray, subset: Sequence[int] | None = None) -> np.ndarray:
    """Maximum softmax probability, the softmax taken over `subset` (all classes if None)."""
    z = np.asarray(logits, dtype=np.float64)
    if subset is not None:
        z = z[:, np.asarray(subset, dtype=np.int64)]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).max(axis=1)


def ood_detection(in_msp: Sequence[float], out_msp: Sequence[float]) -> dict:
    """AUPR (and AUROC) of detecting out-of-distribution images (positives) by the score -MSP."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    in_msp, out_msp = np.asarray(in_msp, dtype=np.float64), np.asarray(out_msp, dtype=np.float64)
    if in_msp.size == 0 or out_msp.size == 0:
        return {"aupr": float("nan"), "auroc": float("nan"), "n_in": int(in_msp.size), "n_out": int(out_msp.size)}
    scores = -np.concatenate([out_msp, in_msp])
    positive = np.concatenate([np.ones(out_msp.size), np.zeros(in_msp.size)])
    return {"aupr": float(average_precision_score(positive, scores)), "auroc": float(roc_auc_score(positive, scores)),
            "n_in": int(in_msp.size), "n_out": int(out_msp.size)}


# ----------------------------------------------------------------------------------------------
# ImageNet-P
# ----------------------------------------------------------------------------------------------

def is_noise(perturbation: str) -> bool:
    """Noise sequences are not temporally related: every frame is compared with the first."""
    return "noise" in perturbation


def _pairs(length: int, noise: bool, difficulty: int) -> list[tuple[int, int]]:
    """(earlier, later) frame indices compared within one sequence, in the reference's order."""
    step = 1 if noise else difficulty
    out = []
    for start in range(step):
        chain = list(range(start, length, step))
        for prev, cur in zip(chain[:-1], chain[1:]):
            out.append((chain[0] if noise else prev, cur))
    return out


def _per_sequence(sequences, noise: bool, difficulty: int, compare) -> list[float]:
    """Per sequence, the mean of `compare(earlier, later)` over its compared frame pairs (NaN: no pair)."""
    out = []
    for seq in sequences:
        pairs = _pairs(len(seq), noise, difficulty)
        out.append(float(np.mean([compare(seq[a], seq[b]) for a, b in pairs])) if pairs else float("nan"))
    return out


def flips_per_sequence(predictions: Sequence[Sequence[int]], noise: bool, difficulty: int = 1) -> list[float]:
    """Per sequence, the share of compared frame pairs whose top-1 prediction differs (NaN: no pair)."""
    return _per_sequence(predictions, noise, difficulty, lambda a, b: a != b)


def flip_probability(predictions: Sequence[Sequence[int]], noise: bool, difficulty: int = 1) -> float:
    """Mean over sequences of the share of compared frame pairs whose top-1 prediction differs."""
    return _mean_finite(flips_per_sequence(predictions, noise, difficulty))


def _mean_finite(values: Sequence[float]) -> float:
    kept = [v for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def sequences_from_rows(rows: Sequence[Mapping], expected: Sequence[tuple[str, int]]
                        ) -> tuple[list[list[int]], list[list[list[int]]], list[str]]:
    """(top-1 per frame, top-5 per frame, incomplete sequence ids) from per-frame rows with image ids
    `<sequence>#<frame>`. A sequence missing any of its `n` frames is left out whole: comparing the
    frames that remain would pair frames the protocol never pairs."""
    by_sequence: dict[str, dict[int, Mapping]] = {}
    for r in rows:
        sequence, _, k = str(r["image_id"]).rpartition("#")
        by_sequence.setdefault(sequence, {})[int(k)] = r
    preds, top5, incomplete = [], [], []
    for sequence, n in expected:
        frames = by_sequence.get(sequence, {})
        if n < 1 or sorted(frames) != list(range(n)):
            incomplete.append(sequence)
            continue
        preds.append([int(frames[k]["pred"]) for k in range(n)])
        top5.append([list(frames[k]["top5"]) for k in range(n)])
    return preds, top5, incomplete


def top5_pair_distance(top5_before: Sequence[int], top5_after: Sequence[int]) -> int:
    """Top-5 distance between two rankings: sum over i=1..5 of |i - min(rank_after(c_i), 6)|, c_i the
    class ranked i before. Only the first 5 positions count, so two top-5 lists determine it."""
    position = {int(c): k + 1 for k, c in enumerate(top5_after[:5])}
    return int(sum(abs(i - min(position.get(int(c), 6), 6)) for i, c in enumerate(top5_before[:5], start=1)))


def top5_distances_per_sequence(top5: Sequence[Sequence[Sequence[int]]], noise: bool, difficulty: int = 1
                                ) -> list[float]:
    """Per sequence, the mean top-5 distance of its compared frame pairs (NaN: no pair)."""
    return _per_sequence(top5, noise, difficulty, top5_pair_distance)


def top5_distance(top5: Sequence[Sequence[Sequence[int]]], noise: bool, difficulty: int = 1) -> float:
    """Mean over sequences of the mean top-5 distance of the compared frame pairs."""
    return _mean_finite(top5_distances_per_sequence(top5, noise, difficulty))


def at_difficulty(values: Mapping[str, float], difficulty: int = 1) -> dict[str, float]:
    """Per-perturbation values as the benchmark reads them at `difficulty`: the release keeps harder
    noise sequences in their own folders (`gaussian_noise_2`, `_3`), which stand in for the noise
    perturbation at that difficulty; other perturbations get harder through the frame stride."""
    out: dict[str, float] = {}
    for name, value in values.items():
        base, _, level = name.rpartition("_")
        if not (level.isdigit() and is_noise(base)) and not (difficulty > 1 and is_noise(name)):
            out[name] = value
    for name, value in values.items():
        base, _, level = name.rpartition("_")
        if level.isdigit() and is_noise(base) and int(level) == difficulty:
            out[base] = value
    return out


def perturbation_summary(flip: Mapping[str, float], t5d: Mapping[str, float],
                         reference: Mapping[str, Mapping[str, float]] | None = None,
                         benchmark: Sequence[str] = IMAGENET_P_PERTURBATIONS) -> dict:
    """Raw means over the benchmark perturbations present, and with an AlexNet reference
    ({"flip_probability": {p: FP}, "top5_distance": {p: T5D}}) FR / T5D ratios, mFR and mT5D."""
    present = [p for p in benchmark if p in flip]
    out: dict = {
        "perturbations": present,
        "complete": set(benchmark) <= set(flip),
        "mean_flip_probability": float(np.mean([flip[p] for p in present])) if present else float("nan"),
        "mean_top5_distance": float(np.mean([t5d[p] for p in present])) if present else float("nan"),
    }
    if reference:
        ref_fp, ref_t5 = reference.get("flip_probability", {}), reference.get("top5_distance", {})
        fr = {p: flip[p] / ref_fp[p] for p in present if ref_fp.get(p)}
        t5 = {p: t5d[p] / ref_t5[p] for p in present if ref_t5.get(p)}
        out["flip_rate"], out["top5_distance_ratio"] = fr, t5
        if fr:
            out["mfr"] = float(np.mean(list(fr.values())))
        if t5:
            out["mt5d"] = float(np.mean(list(t5.values())))
        out["reference_complete"] = len(fr) == len(present) == len(benchmark)
    return out


def reference_from_file(path: str | Path) -> dict:
    """A reference table from JSON: {"flip_probability": {perturbation: FP}, "top5_distance": {...}}."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "flip_probability" not in data:
        raise ValueError(f"{path}: expected {{'flip_probability': {{perturbation: value}}, 'top5_distance': {{...}}}}")
    return data

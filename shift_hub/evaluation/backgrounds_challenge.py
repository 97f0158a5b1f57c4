"""The Backgrounds Challenge's score (Xiao et al., ICLR 2021, challenge_eval.py): the share of foregrounds for which
some Only-BG-T background flips the model's IN-9 prediction.

A foreground is an in9_original image cut out by its in9_fg_mask; it is pasted onto backgrounds (in9_only_bg_t
images of every class, its own included, as the original does) as `where(mask, original, background)`, the
original's `bg * (1 - mask) + mask * image` with a 0/1 mask. It is vulnerable if ANY composite's IN-9 prediction
(a 1000-way top-1 mapped to its class, "none" included) differs from its class. With N backgrounds per foreground,
each foreground's N are drawn without replacement by its own generator (seed, `in9_challenge`, image id); N = 0 or
N >= the number of backgrounds uses every background, as the original.

The composites are made in the DataLoader workers (`Composites`) and scored by the ordinary loop, in rounds: a
foreground found vulnerable is not pasted again (the original stops at its first flipping batch too), so the
verdicts are those of trying every drawn background while a round holds at most ROUND_ITEMS composites. Their rows
never reach the per-config accuracies: only the verdicts are kept, in results.json's `summary.imagenet_9.challenge`.
"""
from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..rng import generator
from .intervals import interval, resample_weights
from .runner import ConfigData, DataError, decode_image

NAME = "in9_challenge"  # the composites' config name (rows and draws); never a config of the data
ORIGINAL, BACKGROUND, MASK = "in9_original", "in9_only_bg_t", "in9_fg_mask"
NEEDED = (ORIGINAL, BACKGROUND, MASK)
ROUND_ITEMS = 16384  # composites per round at most: bounds the rows held before they are reduced to verdicts
CACHED_BACKGROUNDS = 4096  # stored background cells a loading process keeps (each is read once while it is held)
METHOD_FOREGROUNDS = "percentile bootstrap over foregrounds"
NOTE = ("the original (challenge_eval.py) pastes every foreground onto every Only-BG-T background; with fewer "
        "backgrounds per foreground the share is a lower bound of that one")
NOTE_ALL = "every foreground pasted onto every Only-BG-T background, as the original (challenge_eval.py)"


def composite(image: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The foreground's pixels where the mask is set, the background's elsewhere (uint8 HxWx3)."""
    return np.where(np.asarray(mask, bool)[..., None], image, background)


def draw_backgrounds(seed: int, image_id: str, count: int, n: int) -> np.ndarray:
    """The backgrounds (positions among `count`) one foreground is pasted onto: all of them for n = 0 or n >= count,
    else n drawn without replacement by the foreground's own generator, in increasing order."""
    if n <= 0 or n >= count:
        return np.arange(count)
    return np.sort(generator(seed, NAME, image_id).choice(count, size=n, replace=False))


def _mask_array(value) -> np.ndarray:
    """A stored fg_mask cell as bool HxW (255 object; any grey above half counts)."""
    from PIL import Image

    if isinstance(value, dict):
        value = value.get("bytes") or open(value["path"], "rb").read()
    if isinstance(value, (bytes, bytearray)):
        value = Image.open(io.BytesIO(value))
    return np.asarray(value.convert("L")) > 127


class Composites:
    """Item i is {"image": the composite of items[i] = (original row, mask row, background row)} as a PIL image.
    Items come foreground by foreground, so a foreground and its mask are decoded once per run of items; stored
    background cells are kept (up to CACHED_BACKGROUNDS), so each is read once per process."""

    def __init__(self, originals, masks, backgrounds, items: Sequence[tuple[int, int, int]], ids: tuple):
        self.originals, self.masks, self.backgrounds = originals, masks, backgrounds
        self.items, self.ids = list(items), ids  # ids: (original ids, background ids), for messages
        self._foreground: tuple | None = None
        self._cells: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_foreground": None, "_cells": OrderedDict()}

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        o, m, b = self.items[i]
        if self._foreground is None or self._foreground[0] != (o, m):
            image = np.asarray(decode_image(self.originals[o]["image"]))
            self._foreground = ((o, m), image, _mask_array(self.masks[m]["image"]))
        _, image, mask = self._foreground
        background = np.asarray(decode_image(self._cell(b)))
        if not image.shape == background.shape == (*mask.shape, 3):
            raise ValueError(f"{ORIGINAL} {self.ids[0][o]} is {image.shape[1]}x{image.shape[0]}, its {MASK} "
                             f"{mask.shape[1]}x{mask.shape[0]}, {BACKGROUND} {self.ids[1][b]} {background.shape[1]}x"
                             f"{background.shape[0]}: the challenge needs them at one size (regenerate the configs)")
        return {"image": Image.fromarray(composite(image, mask, background))}

    def _cell(self, b: int):
        cell = self._cells.get(b)
        if cell is None:
            cell = self.backgrounds[b]["image"]
            self._cells[b] = cell
            if len(self._cells) > CACHED_BACKGROUNDS:
                self._cells.popitem(last=False)
        else:
            self._cells.move_to_end(b)
        return cell


@dataclass
class Challenge:
    """What the score needs, checked before the model runs: the three configs' parts, the foregrounds (rows of
    in9_original with their mask rows and IN-9 classes), the backgrounds and each foreground's drawn backgrounds."""

    original: ConfigData
    mask: ConfigData
    background: ConfigData
    foregrounds: list[int]  # rows of `original`
    mask_rows: list[int]  # per foreground: its row in `mask`
    classes: list[int]  # per foreground: its IN-9 class
    backgrounds: list[int]  # rows of `background`
    draws: list[np.ndarray]  # per foreground: positions in `backgrounds`, in the order they are tried
    requested: int
    seed: int
    left_out: dict

    def fingerprints(self) -> list[str]:
        return [f for p in (self.original, self.mask, self.background) for f in p.fingerprints]


def _check_masks(mask: ConfigData, damaged: set, unreadable: dict | None) -> None:
    """Each stored mask decoded: one that cannot be is its foreground's loss (left out and listed), not the run's."""
    from .runner import _reason

    for r, image_id in enumerate(mask.image_ids):
        if image_id in damaged:
            continue
        try:
            _mask_array(mask.dataset[r]["image"])
        except Exception as exc:  # truncated, garbage or unsupported bytes
            damaged.add(image_id)
            if unreadable is not None:
                unreadable.setdefault(MASK, {}).setdefault("images", []).append(
                    {"image_id": image_id, "reason": _reason(exc)})


def check(parts: Sequence[ConfigData], held: Sequence[ConfigData], n: int,
          unreadable: dict | None = None) -> dict[str, ConfigData]:
    """{config: part} of the three configs the challenge reads; DataError in one line when one is missing or they
    hold different images. Cheap (ids only): evaluate calls it before any image is scored."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise DataError(f"backgrounds_challenge must be an integer >= 0 (0: every background), got {n!r}")
    by_name = {p.name: p for p in (*parts, *held)}
    missing = [c for c in NEEDED if c not in by_name]
    if missing:
        why = [f"{c} (it could not be read)" if c in (unreadable or {}) else c for c in missing]
        raise DataError(f"--backgrounds-challenge needs {', '.join(NEEDED)} in the data; missing: {', '.join(why)} "
                        "(generate them: shift-hub generate in9_original in9_only_bg_t in9_fg_mask --source "
                        "devkit:ROOT, with the seed and options of the others; evaluate with --configs backgrounds)")
    original, background, mask = (by_name[c] for c in NEEDED)
    ids = {c: list(by_name[c].image_ids) for c in NEEDED}
    for c in NEEDED:
        twice = next((i for i in ids[c] if ids[c].count(i) > 1), None) if len(set(ids[c])) != len(ids[c]) else None
        if twice is not None:
            raise DataError(f"--backgrounds-challenge: {c} holds image {twice} twice: regenerate it")
    for c in (BACKGROUND, MASK):
        if sorted(ids[c]) != sorted(ids[ORIGINAL]):
            extra = sorted(set(ids[c]) - set(ids[ORIGINAL]))[:3]
            lacks = sorted(set(ids[ORIGINAL]) - set(ids[c]))[:3]
            raise DataError(f"--backgrounds-challenge: {c} and {ORIGINAL} hold different images ({len(ids[c])} and "
                            f"{len(ids[ORIGINAL])} rows" + (f"; only in {c}: {', '.join(extra)}" if extra else "")
                            + (f"; only in {ORIGINAL}: {', '.join(lacks)}" if lacks else "")
                            + "): generate them in one run from the same source, seed and options")
    return by_name


def prepare(parts: Sequence[ConfigData], held: Sequence[ConfigData], n: int, seed: int = 0,
            unreadable: dict | None = None) -> Challenge:
    """The challenge over the data's in9_original, in9_only_bg_t (scored parts) and in9_fg_mask (a held, unscored
    part), leaving out the images `unreadable` lists and the masks that cannot be decoded (`check` refuses first)."""
    by_name = check(parts, held, n, unreadable)
    original, background, mask = (by_name[c] for c in NEEDED)
    ids = {c: list(by_name[c].image_ids) for c in NEEDED}
    damaged = {c: {e["image_id"] for e in (unreadable or {}).get(c, {}).get("images", [])} for c in NEEDED}
    _check_masks(mask, damaged[MASK], unreadable)  # masks never go through the main pass: decoded here, once
    space = _in9_space()
    mask_row = {image_id: r for r, image_id in enumerate(ids[MASK])}
    foregrounds, classes = [], []
    for r, image_id in enumerate(ids[ORIGINAL]):
        if image_id in damaged[ORIGINAL] or image_id in damaged[MASK]:
            continue
        targets = space.targets(original.labels[r])
        if len(targets) != 1:
            raise DataError(f"--backgrounds-challenge: {ORIGINAL} image {image_id} has no single ImageNet-9 class "
                            f"(labels {list(original.labels[r])}): these are not ImageNet-9 images")
        foregrounds.append(r)
        classes.append(next(iter(targets)))
    backgrounds = [r for r, image_id in enumerate(ids[BACKGROUND]) if image_id not in damaged[BACKGROUND]]
    if not foregrounds or not backgrounds:
        raise DataError(f"--backgrounds-challenge: no readable {'foreground' if not foregrounds else 'background'}")
    draws = [draw_backgrounds(seed, ids[ORIGINAL][r], len(backgrounds), n) for r in foregrounds]
    left_out = {c: sorted(damaged[c]) for c in NEEDED if damaged[c]}
    return Challenge(original, mask, background, foregrounds, [mask_row[ids[ORIGINAL][r]] for r in foregrounds],
                     classes, backgrounds, draws, n, seed, left_out)


def _in9_space():
    from .labels import get_label_space

    return get_label_space("imagenet-9")


def composite_part(challenge: Challenge, items: Sequence[tuple[int, int]]) -> ConfigData:
    """The composites of (foreground, background position) pairs as one part, scored in the IN-9 label space."""
    c = challenge
    rows = [(c.foregrounds[f], c.mask_rows[f], c.backgrounds[k]) for f, k in items]
    dataset = Composites(c.original.dataset, c.mask.dataset, c.background.dataset, rows,
                         (c.original.image_ids, c.background.image_ids))
    ids = [f"{c.original.image_ids[o]}+{c.background.image_ids[b]}" for o, _, b in rows]
    labels = [list(c.original.labels[o]) for o, _, _ in rows]
    return ConfigData(NAME, dataset, _in9_space(), labels, ids, [0] * len(rows))


def verdicts(challenge: Challenge, score_round, round_items: int = ROUND_ITEMS) -> tuple[list[bool], int]:
    """(vulnerable per foreground, composites scored): `score_round(part)` scores a part's composites and returns
    their rows in order (runner.run). Each round pastes every undecided foreground onto its next backgrounds."""
    total = len(challenge.foregrounds)
    vulnerable, tried, scored = [False] * total, [0] * total, 0
    pending = [f for f in range(total) if len(challenge.draws[f])]
    while pending:
        width = max(1, round_items // len(pending))
        items = [(f, int(k)) for f in pending for k in challenge.draws[f][tried[f]: tried[f] + width]]
        rows = score_round(composite_part(challenge, items))
        if len(rows) != len(items):
            raise DataError(f"--backgrounds-challenge: {len(items) - len(rows)} composite(s) could not be scored")
        for (f, _), row in zip(items, rows):
            vulnerable[f] = vulnerable[f] or row["pred"] != challenge.classes[f]
            tried[f] += 1
        scored += len(items)
        pending = [f for f in pending if not vulnerable[f] and tried[f] < len(challenge.draws[f])]
    return vulnerable, scored


def summary(challenge: Challenge, vulnerable: Sequence[bool], composites: int, resamples: int = 1000,
            seed: int = 0) -> dict:
    """results.json's `summary.imagenet_9.challenge`; `ci` resamples foregrounds (intervals.resample_weights)."""
    c = challenge
    flags = np.asarray(vulnerable, dtype=np.float64)
    every = all(len(d) == len(c.backgrounds) for d in c.draws)
    out = {"foregrounds": len(flags), "backgrounds": len(c.backgrounds),
           "backgrounds_per_foreground": len(c.backgrounds) if every else int(c.requested),
           "requested": int(c.requested), "vulnerable": int(flags.sum()),
           "vulnerable_share": float(flags.mean()), "composites_scored": int(composites), "seed": int(c.seed),
           "label_space": "imagenet-9", "note": NOTE_ALL if every else NOTE}
    if c.left_out:
        out["left_out"] = c.left_out  # unreadable images: their foregrounds / backgrounds are not in the score
    if resamples:
        shares = np.concatenate([(w @ flags) / w.sum(axis=1) for w in resample_weights(len(flags), resamples, seed)])
        out["ci"] = {"vulnerable_share": interval(shares)}
        out["intervals"] = {"method": METHOD_FOREGROUNDS, "resamples": int(resamples), "seed": int(seed)}
    return out


def score(challenge: Challenge, score_round, resamples: int = 1000, seed: int = 0) -> dict:
    """The challenge's summary, its composites scored by `score_round` (see `verdicts`)."""
    flags, composites = verdicts(challenge, score_round)
    return summary(challenge, flags, composites, resamples, seed)

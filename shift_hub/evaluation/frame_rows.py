"""ImageNet-P rows read as frames: one evaluation item per frame of each stored sequence.

A stored row holds a whole sequence (`frames`, a list of images); the evaluation loop scores images, so
each row is spread into its frames, with image ids `<image id>#<frame>` (what `protocols.sequences_from_rows`
reads back). A row whose frame count is not its config's is refused frame by frame, so its sequence is left
out whole and said, never compared on the frames it happens to have.
"""
from __future__ import annotations

from typing import Sequence

FRAMES_COLUMN = "frames"


def registry_frame_count(config: str) -> int | None:
    """The frames a registry sequence config holds per row (31; translate 41), None for other configs."""
    from ..registry import IMAGENET_P_SEQUENCES, REGISTRY

    spec = REGISTRY.get(config)
    if spec is None or not spec.frames:
        return None
    return IMAGENET_P_SEQUENCES[config[len("imagenet_p_"):]][3]


def sequence_space():
    """The label space every ImageNet-P frame is scored in: ImageNet-1k, whatever --label-space asks, since flip
    probability and top-5 distance are defined over the 1000-way ranking (results.json's summary says so)."""
    from .labels import get_label_space

    return get_label_space(None)


def is_sequence_config(config: str, columns: Sequence[str] = ()) -> bool:
    return registry_frame_count(config) is not None or FRAMES_COLUMN in columns


def frame_id(image_id: str, k: int) -> str:
    return f"{image_id}#{k:03d}"


class FrameImages:
    """Item i is {"image": frame k of row s}; `rows[s]` is a mapping holding that row's `frames` cells.
    The row last read is kept (consecutive items are its frames), so a row is fetched once per process."""

    def __init__(self, rows, lengths: Sequence[int], where: str):
        self.rows, self.lengths, self.where = rows, list(lengths), where
        self.index = [(s, k) for s, n in enumerate(self.lengths) for k in range(n)]
        self._held: tuple[int, list] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_held": None}

    def __getitem__(self, i: int) -> dict:
        s, k = self.index[i]
        if self._held is None or self._held[0] != s:
            self._held = (s, list(self.rows[s][FRAMES_COLUMN] or []))
        frames = self._held[1]
        if len(frames) != self.lengths[s]:
            raise ValueError(f"{self.where} row {s} holds {len(frames)} frames where the config has "
                             f"{self.lengths[s]}: the sequence is left out (regenerate the config)")
        return {"image": frames[k]}

    def select(self, rows: Sequence[int]) -> "FrameImages":
        """The sequences of `rows` only, in that order (a subset, --limit)."""
        picked = _Picked(self.rows, list(rows))
        return FrameImages(picked, [self.lengths[r] for r in rows], self.where)


class _Picked:
    def __init__(self, rows, picks: list[int]):
        self.rows, self.picks = rows, picks

    def __getitem__(self, s: int):
        return self.rows[self.picks[s]]


def spread(image_ids: Sequence[str], labels: Sequence, lengths: Sequence[int]) -> tuple[list[str], list, list[tuple]]:
    """(frame ids, frame labels, (sequence id, frames) per sequence) of sequences with `lengths` frames."""
    ids = [frame_id(i, k) for i, n in zip(image_ids, lengths) for k in range(n)]
    frame_labels = [list(lab) for lab, n in zip(labels, lengths) for _ in range(n)]
    return ids, frame_labels, [(str(i), int(n)) for i, n in zip(image_ids, lengths)]

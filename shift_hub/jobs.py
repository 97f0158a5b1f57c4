"""What the generator plans and engines run: one shard of one config (`ShardJob`), the shards that share their
images and so one decode per image (`JobGroup`), and what running them reports (`ConfigReport`).

Plain data with no behaviour beyond naming, so planning, the shard writer, workers and engines all import
it and none of them imports another to know what a job is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .registry import Encoding, ShiftSpec
from .sources import Example


class GenerationError(RuntimeError):
    pass


ROW_GROUP = 100  # rows per parquet row group: what one shard being written holds in memory at once
SEQUENCE_ROW_GROUP = 8  # for sequence configs (ShiftSpec.frames): a row holds 31-41 frames, a reader one row group
STAGES = ("decode", "geometry", "shift", "encode", "write")  # where a config's seconds went (bench/bench_decode_once.py)


@dataclass
class ConfigReport:
    config: str
    written: int = 0
    reused_shards: int = 0
    skipped: list = field(default_factory=list)  # [{"image_id", "reason"}]
    converted: list = field(default_factory=list)  # [{"image_id", "note"}]
    busy: bool = False  # the shard was being written by another live run: not run here
    seconds: float = 0.0  # wall time spent making shards (one core each): what bench/bench_scale.py reports
    stages: dict = field(default_factory=dict)  # stage -> seconds; a decode shared by k configs counts 1/k each


@dataclass(frozen=True)
class ShardJob:
    spec: ShiftSpec
    index: int
    count: int
    examples: tuple[Example, ...]
    seed: int
    encoding: Encoding
    path: str
    fingerprint: str
    source_name: str
    batch_size: int = 16
    masks: object = None  # masks.MaskContext for configs that need MASKS
    video: object = None  # video.VideoEncoding for a sequence config stored as mp4 (--p-encoding mp4)

    @property
    def config(self) -> str:
        return self.spec.name

    @property
    def row_group(self) -> int:
        """Rows per parquet row group of this job's shard."""
        return SEQUENCE_ROW_GROUP if self.spec.frames else ROW_GROUP


@dataclass(frozen=True)
class JobGroup:
    """Shards of several configs over the same images: each image is decoded once, brought to each distinct
    geometry once, and every config is applied to that array, each writing its own shard."""

    jobs: tuple[ShardJob, ...]

    @property
    def examples(self) -> tuple[Example, ...]:
        return self.jobs[0].examples

    @property
    def path(self) -> str:  # the first shard's: a stable tie-break when ordering groups
        return self.jobs[0].path

    @property
    def configs(self) -> list[str]:
        return [j.config for j in self.jobs]

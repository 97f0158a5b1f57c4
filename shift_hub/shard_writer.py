"""Rows -> one parquet shard: streamed to a temporary file in row groups, the footer (fingerprint, reasons)
last, then checked against concurrent runs and renamed, so a shard is either whole or absent.

Several writers may be open at once (one per config of a job group); each holds at most one row group.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from . import folder
from ._version import __version__
from .folder import META_KEY
from .jobs import ConfigReport, GenerationError, ShardJob

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}  # the disk failed, not the data


def features(spec=None, video: bool = False):
    """The row schema; a config that declares extra columns (ShiftSpec.extra_columns) has them last, as text,
    and a sequence config (ShiftSpec.frames) ends with its `frames`, a list of images, then, stored as mp4
    (`video`, --p-encoding mp4), the `video` column: the sequence's mp4 bytes, which `frames` are decoded from."""
    import datasets

    from . import classes

    return datasets.Features({
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(classes.wnids())),
        "labels": datasets.List(datasets.Value("int16")),
        "image_id": datasets.Value("string"),
        "config": datasets.Value("string"),
        "severity": datasets.Value("int8"),
        **{name: datasets.Value("string") for name in (spec.extra_columns if spec is not None else ())},
        **({"frames": datasets.List(datasets.Image())} if spec is not None and spec.frames else {}),
        **({"video": datasets.Value("binary")} if video and spec is not None and spec.frames else {}),
    })


class ShardWriter:
    """One shard being written: `add` rows in plan order, then `commit` (or `abort` on any failure)."""

    def __init__(self, job: ShardJob, report: ConfigReport):
        import pyarrow.parquet as pq

        self.job, self.report = job, report
        self.path = Path(job.path)
        self.schema = features(job.spec, video=job.video is not None).arrow_schema
        self.batch: list[dict] = []
        self.tmp = None
        try:
            with self._disk_errors():
                self.path.parent.mkdir(parents=True, exist_ok=True)  # only now: a failed run leaves no empty dir
                self.tmp = folder.temp_path(self.path)
                self.writer = pq.ParquetWriter(self.tmp, self.schema)
        except BaseException:
            self.abort()
            raise

    def add(self, row: dict) -> None:
        self.batch.append(row)
        if len(self.batch) == self.job.row_group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        with self._disk_errors():
            self.writer.write_table(pa.Table.from_pylist(self.batch, schema=self.schema))
        self.report.written += len(self.batch)
        self.batch = []

    def commit(self) -> None:
        if self.batch:
            self._flush()
        with self._disk_errors():
            self.writer.add_key_value_metadata({META_KEY: json.dumps(footer(self.job, self.report), sort_keys=True).encode()})
            self.writer.close()
            with folder.commit_lock(self.path.parent):  # check and rename as one step against runs with other settings
                refuse_other_settings(self.job)
                os.replace(self.tmp, self.path)
        self.tmp = None

    def abort(self) -> None:
        if self.tmp is None:
            return
        try:
            self.writer.close()
        except Exception:  # closing a writer whose disk failed may fail again: the file goes anyway
            pass
        self.tmp.unlink(missing_ok=True)
        self.tmp = None

    def _disk_errors(self):
        return _DiskErrors(self)


class _DiskErrors:
    """A full disk or a lost mount becomes one line naming the shard, saying that nothing finished is lost."""

    def __init__(self, writer: ShardWriter):
        self.writer = writer

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, OSError) or exc.errno not in _WRITE_ERRNOS:
            return False
        self.writer.abort()
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        raise GenerationError(f"{self.writer.path}: cannot be written ({reason}); free space there or choose another "
                              "--out: finished shards are kept and a rerun of the same command resumes") from None


def write_shard(job: ShardJob, rows: Iterable[dict], report: ConfigReport) -> None:
    """All of one shard from an iterable of rows (the batched GPU path, and single-config jobs)."""
    writer = ShardWriter(job, report)
    try:
        for row in rows:
            writer.add(row)
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def footer(job: ShardJob, report: ConfigReport) -> dict:
    return {
        "shift_hub_version": __version__, "config": job.config, "seed": job.seed, "fingerprint": job.fingerprint,
        "shard": job.index, "num_shards": job.count, "planned": len(job.examples), "written": report.written,
        "source": job.source_name, "encoding": encoding_fields(job),
        "params": json.loads(json.dumps(dict(job.spec.params), default=str)),
        "masks": job.masks.options.fields() if job.masks is not None else None,  # how masks were made
        "ids_sha256": hashlib.sha256("\n".join(e.image_id for e in job.examples).encode()).hexdigest(),
        "skipped": report.skipped, "converted": report.converted,
    }


def encoding_fields(job: ShardJob) -> dict:
    """The footer's `encoding`: the image encoding, and for a sequence stored as mp4 its video encoding under
    `video`, so the card says it and shards of one config made with and without it count as other settings."""
    return {**asdict(job.encoding), **({"video": asdict(job.video)} if job.video is not None else {})}


def refuse_other_settings(job: ShardJob) -> None:
    """Stop when a concurrent run with other settings has written this config meanwhile: a shard at this
    job's name with another fingerprint, or shards of another plan (another --shard-size). Called under
    the shard's lock just before writing, so two runs that differ never both finish with a mixed folder;
    whatever was there before this run started was already refused (or removed with --overwrite)."""
    path = Path(job.path)
    ours = f"-of-{job.count:05d}.parquet"
    others = [p for p in folder.shard_files(path.parent) if not p.name.endswith(ours)]
    if path.exists():
        others.insert(0, path)
    if others:
        owner = folder.lock_owner(others[0])
        raise GenerationError(
            f"{path.parent}: {others[0].name} was written meanwhile by another run with other settings"
            f"{f' ({owner})' if owner else ''}; stopped, nothing was deleted: let that run finish, then rerun "
            "with --overwrite to replace its shards, or choose another --out")

"""What a worker does with one job group: take each shard's lock, reuse shards already written with the same
settings, and write the rest from one decode per image. Every engine (pool, accelerate, Ray, job arrays)
calls `run_group`; it decides nothing about who runs what.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

from . import folder
from .jobs import ConfigReport, JobGroup, ShardJob
from .rows import batched_rows, group_rows
from .shard_writer import ShardWriter, refuse_other_settings, write_shard
from .sources import Source


def run_group(group: JobGroup, source: Source, progress=None, wait: bool = False) -> list[ConfigReport]:
    """One report per job of the group, in its order. A shard another live writer holds is left to it (`busy`)
    unless `wait`; one finished meanwhile by another run with the same settings is not made again."""
    reports = [ConfigReport(job.config) for job in group.jobs]
    with contextlib.ExitStack() as locks:
        todo = []
        for job, report in zip(group.jobs, reports):
            if not locks.enter_context(folder.shard_lock(job.path, wait)):
                report.busy = True
            elif _reusable(job):
                report.reused_shards += 1
                if progress:
                    progress(len(job.examples))
            else:
                refuse_other_settings(job)  # the start-up check is not enough: another run may have written meanwhile
                todo.append((job, report))
        if todo:
            started = time.perf_counter()
            _write(todo, source, progress)
            elapsed = time.perf_counter() - started
            staged = sum(sum(r.stages.values()) for _, r in todo)
            for _, report in todo:  # its own stages, its share of the shared ones, and of the rest (open, rename)
                report.seconds += sum(report.stages.values()) + max(0.0, elapsed - staged) / len(todo)
    return reports


def run_shard(job: ShardJob, source: Source, progress=None, wait: bool = False) -> ConfigReport:
    """One shard alone: a group of one."""
    return run_group(JobGroup((job,)), source, progress, wait)[0]


def _reusable(job: ShardJob) -> bool:
    for stale in folder.dead_temp_files(job.path):
        stale.unlink(missing_ok=True)  # we hold the lock, so its writer is dead: never renamed, never seen
    return Path(job.path).exists() and folder.readable_fingerprint(job.path) == job.fingerprint


def _write(todo: list[tuple[ShardJob, ConfigReport]], source: Source, progress) -> None:
    jobs, reports = [j for j, _ in todo], [r for _, r in todo]
    if len(jobs) == 1 and jobs[0].spec.batched:
        write_shard(jobs[0], batched_rows(jobs[0], source, reports[0], progress), reports[0])
        return
    writers: list[ShardWriter] = []
    try:
        for job, report in todo:
            writers.append(ShardWriter(job, report))
        group_rows(jobs, source, reports, lambda i, row: writers[i].add(row), progress)
        for writer, report in zip(writers, reports):
            started = time.perf_counter()
            writer.commit()
            report.stages["write"] = report.stages.get("write", 0.0) + time.perf_counter() - started
    except BaseException:
        for writer in writers:
            writer.abort()  # shards already renamed are whole and stay; the others leave nothing
        raise

"""What a run will make: the examples, one shard job per (config, image range) with the fingerprint of
everything that shapes its bytes, which of them are still pending, and the job groups that share a decode.

The plan never depends on the process count or on what is on disk (except `pending`), so a run resumes
under any launch and N processes that never talk agree on who does what.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from . import folder
from ._version import __version__
from .folder import shard_name
from .jobs import GenerationError, JobGroup, ShardJob
from .registry import MASKS, Encoding, ShiftSpec, load
from .sources import Example, Source, SourceError


def plan_examples(source: Source, limit: int | None = None, classes_subset: str | None = None,
                  subset=None) -> list[Example]:
    """The source's images sorted by id; `subset` (a `subsets.Subset`, `robustbench` or a FILE of ids) keeps
    exactly its images, all of them or SubsetError; then the class subset, then the first `limit`."""
    examples = sorted(source.examples(), key=lambda e: e.image_id)
    ids = [e.image_id for e in examples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SourceError(f"{source.describe()}: image id {dup!r} occurs twice; ids must be unique")
    if subset is not None:
        from . import subsets

        examples = subsets.select(examples, subsets.load(subset), source.describe())
    if classes_subset:
        from . import classes

        keep = set(classes.subset(classes_subset))
        examples = [e for e in examples if keep.intersection(e.labels)]
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise SourceError(f"{source.describe()}: no images to generate from"
                          + (f" in class subset {classes_subset}" if classes_subset else ""))
    return examples


def fingerprint(spec: ShiftSpec, seed: int, encoding: Encoding, examples: Iterable[Example], extra: str = "",
                video=None) -> str:
    """SHA-256 of everything that shapes a shard's bytes; `video` (a video.VideoEncoding: --p-encoding mp4, its
    encoder's versions included) enters only when set, so PNG shards keep the fingerprint they always had."""
    h = hashlib.sha256()
    settings = {"config": spec.name, "fn": spec.fn, "params": repr(sorted(spec.params.items())),
                "geometry": asdict(spec.geometry), "encoding": asdict(encoding), "seed": seed, "version": __version__}
    if extra:  # e.g. how masks were made
        settings["extra"] = extra
    if video is not None:
        settings["video"] = asdict(video)
    h.update(json.dumps(settings, sort_keys=True).encode())
    boxes = MASKS in spec.needs  # boxes shape only masked configs: adding annotations never stales `clean`
    for e in examples:
        h.update(f"\n{e.image_id}\t{e.labels}\t{e.boxes if boxes else ''}".encode())
    return h.hexdigest()


def plan_jobs(spec: ShiftSpec, examples: list[Example], out: Path, seed: int, encoding: Encoding,
              shard_size: int, source_name: str, batch_size: int = 16, masks=None, video=None) -> list[ShardJob]:
    """One job per shard of `spec`; `video` (video.video_for: --p-encoding mp4) stores a sequence config's mp4."""
    from .masks import fingerprint_extra, for_spec

    masks = for_spec(spec, masks) if MASKS in spec.needs else None
    extra = fingerprint_extra(spec, masks)
    count = max(1, math.ceil(len(examples) / shard_size))
    jobs = []
    for i in range(count):
        chunk = tuple(examples[i * shard_size : (i + 1) * shard_size])
        jobs.append(ShardJob(spec, i, count, chunk, seed, encoding, str(out / spec.name / shard_name(i, count)),
                             fingerprint(spec, seed, encoding, chunk, extra, video), source_name, batch_size, masks,
                             video))
    return jobs


# --- job groups: one decode per image for every config over the same images ------------------------------

GROUP_BUFFER_BYTES = 192 * 2**20  # encoded rows a group's open writers may hold at once (one row group each): peak
# worker RSS 950 MB at 256 MB on ImageNet-C's 95 configs over 230 synthetic photos (830 MB with one config per group)
_TYPICAL_PIXELS = 500 * 375  # ImageNet's usual photo, for configs stored at the source's size
_MAX_FRAMES = 41  # ImageNet-P's longest sequence (translate)
_BYTES_PER_PIXEL = {"JPEG": 0.6, "PNG": 2.4}  # encoded bytes per pixel, generous (noise compresses badly)
_VIDEO_BYTES_PER_PIXEL = 0.6  # an mp4 row's video, beside its frames (x264 -tune grain on noise: about 0.4)


def row_group_bytes(job: ShardJob) -> float:
    """About how many bytes one row group of this job's shard holds before it is written."""
    g = job.spec.geometry
    pixels = g.center_crop ** 2 if g.center_crop else min(_TYPICAL_PIXELS, (g.max_shorter or 10**6) ** 2 * 4 // 3)
    frames = _MAX_FRAMES if job.spec.frames else 1  # a sequence config's row holds every frame
    per_pixel = _BYTES_PER_PIXEL.get(job.encoding.format, 2.4) + (_VIDEO_BYTES_PER_PIXEL if job.video else 0.0)
    return job.row_group * pixels * frames * per_pixel


def group_jobs(jobs: list[ShardJob]) -> list[JobGroup]:
    """Jobs over the same images in one group (plan order kept), cut so the group's open writers stay within
    GROUP_BUFFER_BYTES; batched (GPU) jobs run alone, in batches through their model."""
    by_range: dict[tuple, list[ShardJob]] = {}
    groups: list[JobGroup] = []
    for job in jobs:
        if job.spec.batched:
            groups.append(JobGroup((job,)))
            continue
        key = (job.source_name, job.index, job.count, tuple(e.image_id for e in job.examples))
        by_range.setdefault(key, []).append(job)
    for members in by_range.values():
        part: list[ShardJob] = []
        held = 0.0
        for job in members:
            cost = row_group_bytes(job)
            if part and held + cost > GROUP_BUFFER_BYTES:
                groups.append(JobGroup(tuple(part)))
                part, held = [], 0.0
            part.append(job)
            held += cost
        groups.append(JobGroup(tuple(part)))
    return groups


# --- what is still to make --------------------------------------------------------------------------------

def pending(jobs: list[ShardJob], overwrite: bool, log=None) -> list[ShardJob]:
    """Jobs still to run (what a slice or rank runs is decided by engines.py from the whole plan).

    Never deletes a file shift_hub did not write unless told to: shards made with other settings and
    parquet files without a shift_hub footer are refused without --overwrite; an unreadable file at a
    planned name (a truncated copy, a disk error) is moved to OUT/.damaged/ and made again.
    """
    config_dir = Path(jobs[0].path).parent
    planned = {Path(j.path).name for j in jobs}
    present = folder.shard_files(config_dir)
    kinds = {p.name: folder.ownership(p) for p in present}
    damaged = [p for p in present if p.name in planned and kinds[p.name] == "damaged"]
    for p in damaged:
        target = config_dir.parent / ".damaged" / config_dir.name / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, target)
        if log:
            log(f"{p}: unreadable (truncated or damaged); moved to {target} and made again")
    foreign = [p for p in present if p not in damaged and (p.name not in planned or kinds[p.name] != "ours")]
    mismatched = [j for j in jobs if Path(j.path).exists() and Path(j.path) not in foreign
                  and folder.readable_fingerprint(j.path) != j.fingerprint]
    if (foreign or mismatched) and not overwrite:
        names = [p.name + (" (not written by shift_hub)" if kinds[p.name] == "foreign" else "") for p in foreign]
        names += [Path(j.path).name for j in mismatched]
        raise GenerationError(f"{config_dir}: holds shards made with other settings or by another program "
                              f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}); nothing was deleted: "
                              "rerun with --overwrite to replace them, or choose another --out")
    if foreign or mismatched:
        with folder.commit_lock(config_dir):
            for p in foreign:
                p.unlink(missing_ok=True)
            for j in mismatched:
                Path(j.path).unlink(missing_ok=True)
    return [j for j in jobs if not Path(j.path).exists()]


def refuse_other_images(out: Path, specs: list[ShiftSpec], examples: list[Example]) -> None:
    """A config planned over other images than the folder's other configs would be compared with them (drops,
    mCE) over different images: refused, as other settings are, unless --overwrite."""
    differing = folder.other_images(out, [s.name for s in specs], [e.image_id for e in examples])
    if differing:
        shown = ", ".join(f"{name} ({n} images)" for name, n in differing[:3]) + (", ..." if len(differing) > 3 else "")
        raise GenerationError(
            f"{out}: this run plans {len(examples)} images but the folder's {shown} were planned over other "
            "images, so scores in this folder would compare different images: choose another --out, or pass "
            "--overwrite to add the configs anyway (evaluation then computes drops on the shared images)")


def verify_written(planned: list[ShardJob]) -> None:
    """When the run ends, every planned shard on disk must carry this run's fingerprint and no other plan's
    shard may sit beside them: a concurrent run with other settings that replaced ours (it held
    --overwrite) makes this run fail instead of reporting success over a folder it does not describe."""
    names: dict[Path, set] = {}
    for job in planned:
        names.setdefault(Path(job.path).parent, set()).add(Path(job.path).name)
        if Path(job.path).exists() and folder.readable_fingerprint(job.path) != job.fingerprint:
            raise GenerationError(
                f"{job.path}: replaced meanwhile by another run with other settings; this run's output is not "
                "complete: rerun when that run has finished (with --overwrite to replace its shards)")
    for config_dir, planned_names in names.items():
        strays = [p.name for p in folder.shard_files(config_dir) if p.name not in planned_names]
        if strays:
            raise GenerationError(
                f"{config_dir}: {strays[0]} was written meanwhile by another run with other settings; this run's "
                "output is not complete: rerun when that run has finished (with --overwrite to replace its shards)")


# --- settings ------------------------------------------------------------------------------------------------

def encoding_for(spec: ShiftSpec, png: bool = False) -> Encoding:
    """The config's declared encoding, or lossless PNG when asked for or when the output has alpha."""
    return Encoding(format="PNG", quality=None) if png or spec.channels == 4 else spec.encoding


def preflight(specs: list[ShiftSpec]) -> None:
    """Check every config's external inputs (weights, pattern files) before anything is written."""
    for spec in specs:
        if spec.preflight:
            try:
                load(spec.preflight)(dict(spec.params))
            except (OSError, ValueError) as exc:
                raise GenerationError(f"{spec.name}: {exc}") from None


def with_overrides(specs: list[ShiftSpec], overrides: dict) -> list[ShiftSpec]:
    """Specs with parameters replaced (e.g. `weights`, `pattern`), each value checked against the type and
    range the registry declares for it, and each key belonging to some chosen config.

    The changed parameters enter the shard fingerprint and footer, so the card shows what was used.
    """
    from .registry import BadParameter, validate_overrides

    try:
        per_config = validate_overrides(specs, overrides)
    except BadParameter as exc:
        raise GenerationError(str(exc)) from None
    return [dataclasses.replace(spec, params={**spec.params, **per_config.get(spec.name, {})}) for spec in specs]

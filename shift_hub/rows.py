"""Decoded images -> stored rows: geometry, shift and encoding, per config, with every random draw from
the generator seeded by (seed, config, image id).

`shift_image` is what the evaluator calls to shift on the fly; `group_rows` is what a worker runs for a job
group: each source image decoded once and brought to each distinct geometry once, then every config of the
group applied to its own copy of that array, so the bytes are those of one config run alone.
"""
from __future__ import annotations

import json
import time
from typing import Iterator

import numpy as np

from . import hygiene, imaging
from .jobs import ConfigReport, GenerationError, ShardJob
from .registry import MASKS, Encoding, ShiftSpec
from .rng import generator
from .sources import Example, Source, SourceError


def apply_shift(spec: ShiftSpec, arr: np.ndarray, seed: int, image_id: str, **extra) -> np.ndarray:
    """The shift alone on an image already through the config's geometry; for a config with extra columns
    (ShiftSpec.extra_columns) the shift's (image, {column: value}) pair, see `split_columns`."""
    fn = spec.load_fn()
    if fn is None:
        return arr
    return fn(arr, generator(seed, spec.name, image_id), **spec.params, **extra)


def split_columns(spec: ShiftSpec, out) -> tuple[np.ndarray, dict]:
    """(image, the row's extra column values): a shift of a config with extra columns returns both, exactly the
    declared columns as text; any other shift returns the image alone."""
    if not spec.extra_columns:
        return out, {}
    image, values = out
    if set(values) != set(spec.extra_columns):
        raise GenerationError(f"{spec.name}: its shift returned columns {sorted(values)}, the registry declares "
                              f"{list(spec.extra_columns)}")
    return image, {k: str(values[k]) for k in spec.extra_columns}


def shift_image(spec: ShiftSpec, image: np.ndarray, seed: int, image_id: str,
                encoding: Encoding | None = None, **extra) -> bytes:
    """Geometry, shift and encoding for one decoded RGB image: the same bytes as the stored config.

    The evaluator calls this to apply a shift on the fly without writing anything to disk.
    """
    if spec.batched:
        raise GenerationError(f"{spec.name} is a batched (GPU) shift; use its model through generate()")
    if spec.frames:
        raise GenerationError(f"{spec.name} is a sequence of frames, not one image; generate it with "
                              f"`shift-hub generate {spec.name}` and read its `frames` column")
    arr, _ = split_columns(spec, apply_shift(spec, imaging.apply_geometry(image, spec.geometry), seed, image_id,
                                             **extra))
    return imaging.encode(np.ascontiguousarray(arr), encoding or spec.encoding)


def encode_output(spec: ShiftSpec, example: Example, out, encoding: Encoding, columns: dict,
                  video=None) -> tuple[bytes, dict]:
    """(the `image` bytes, the row's extra columns): for a sequence config (ShiftSpec.frames) `out` is its
    frames, `image` is frame 0 and the `frames` column holds every frame, each encoded alone. With `video` (a
    video.VideoEncoding, --p-encoding mp4) the `video` column holds the sequence's mp4 and the frames stored
    are that mp4 decoded by the ImageNet-P reader, so a model scored on `frames` sees what it sees in the video."""
    if not spec.frames:
        return imaging.encode(np.ascontiguousarray(out), encoding), columns
    if not isinstance(out, list) or not out:
        raise GenerationError(f"{spec.name}: its shift returned {type(out).__name__}, a sequence config's shift "
                              "returns a non-empty list of frames")
    if video is not None:
        data, out = _through_video(spec, example, out, video)
        columns = {**columns, "video": data}
    frames = [imaging.encode(np.ascontiguousarray(f), encoding) for f in out]
    ext = imaging.extension(encoding)
    stored = [{"bytes": data, "path": f"{example.image_id}_{i:02d}.{ext}"} for i, data in enumerate(frames)]
    return frames[0], {**columns, "frames": stored}


def _through_video(spec: ShiftSpec, example: Example, frames: list, video) -> tuple[bytes, list]:
    """(the mp4 of `frames`, its frames as the ImageNet-P reader decodes them); GenerationError naming the image
    when the reader cannot decode it or finds another number of frames."""
    from .video import decode, encode

    data = encode(frames, video)
    try:
        decoded = decode(data)
    except SourceError as exc:
        raise GenerationError(f"{spec.name}: image {example.image_id!r}: its mp4 cannot be read back ({exc}); "
                              "install an OpenCV built with FFmpeg (opencv-python-headless)") from None
    if len(decoded) != len(frames):
        raise GenerationError(f"{spec.name}: image {example.image_id!r}: its mp4 decodes to {len(decoded)} frames, "
                              f"{len(frames)} were encoded; nothing of this shard was written")
    return data, decoded


def row(spec: ShiftSpec, example: Example, data: bytes, encoding: Encoding, columns: dict | None = None) -> dict:
    """One stored row; `columns` are the config's extra columns (ShiftSpec.extra_columns), after the standard ones."""
    return {
        "image": {"bytes": data, "path": f"{example.image_id}.{imaging.extension(encoding)}"},
        "label": example.label,
        "labels": list(example.labels),
        "image_id": example.image_id,
        "config": spec.name,
        "severity": spec.severity or 0,
        **(columns or {}),
    }


def decode_example(source: Source, example: Example) -> tuple[np.ndarray | None, str | None, str | None]:
    """(RGB array, conversion note, None) or (None, None, the reason it is skipped)."""
    try:
        arr, note = imaging.decode(source.read(example), example.image_id)
    except (imaging.BadImage, SourceError) as exc:
        return None, None, str(exc)
    return arr, note, None


def extra_inputs(job: ShardJob, source: Source, example: Example, decoded: np.ndarray) -> dict:
    """Per-image inputs beyond the pixels that some families need: the object mask (computed once per source
    image, cached, then through the config's geometry) and, for rand_bg, a background provider."""
    if MASKS in job.spec.needs:
        from . import masks

        return masks.extra_inputs(job.spec, job.masks, source, example, decoded)
    return {}


class _Clock:
    """Seconds per stage into reports; a stage shared by k configs is split between them."""

    def __init__(self):
        self.last = time.perf_counter()

    def lap(self, stage: str, *reports: ConfigReport) -> None:
        now = time.perf_counter()
        share = (now - self.last) / max(1, len(reports))
        for r in reports:
            r.stages[stage] = r.stages.get(stage, 0.0) + share
        self.last = now


def iter_rows(job: ShardJob, source: Source, report: ConfigReport, progress=None) -> Iterator[dict]:
    """The rows of one job in plan order, pulled one by one (the `datasets` builder's path)."""
    if job.spec.batched:
        yield from batched_rows(job, source, report, progress)
        return
    for ex in job.examples:
        made: list[dict] = []
        _one_image([job], source, [report], lambda i, r: made.append(r), ex, _Clock())
        yield from made
        if progress:
            progress(1)


def group_rows(jobs: list[ShardJob], source: Source, reports: list[ConfigReport], add, progress=None) -> None:
    """Every row of every job, in plan order: `add(i, row)` for job i. One decode per image for all jobs."""
    clock = _Clock()
    for ex in jobs[0].examples:
        _one_image(jobs, source, reports, add, ex, clock)
        if progress:
            progress(len(jobs))


def _one_image(jobs, source, reports, add, ex: Example, clock: _Clock) -> None:
    arr, note, reason = decode_example(source, ex)
    if arr is None:
        for r in reports:
            r.skipped.append({"image_id": ex.image_id, "reason": reason})
        clock.lap("decode", *reports)
        return
    if note:
        for r in reports:
            r.converted.append({"image_id": ex.image_id, "note": note})
    clock.lap("decode", *reports)
    large = arr.shape[0] * arr.shape[1] > hygiene.LARGE_IMAGE_PIXELS
    _apply_all(jobs, source, reports, add, ex, arr, clock)
    del arr
    if large:
        hygiene.return_freed_memory()


def _apply_all(jobs, source, reports, add, ex: Example, arr: np.ndarray, clock: _Clock) -> None:
    """Each job on one decoded image, in the order a single config runs it: inputs, geometry, shift, encode."""
    by_geometry: dict = {}  # geometry -> the array through it, or the BadImage it raised
    for i, (job, report) in enumerate(zip(jobs, reports)):
        spec = job.spec
        try:
            extra = extra_inputs(job, source, ex, arr)
            shaped = _through(by_geometry, arr, spec, jobs, reports, clock)
            out = apply_shift(spec, shaped.copy() if len(jobs) > 1 else shaped, job.seed, ex.image_id, **extra)
            out, columns = split_columns(spec, out)
            clock.lap("shift", report)
            data, columns = encode_output(spec, ex, out, job.encoding, columns, job.video)
            clock.lap("encode", report)
        except imaging.BadImage as exc:  # includes masks.MaskUnavailable
            report.skipped.append({"image_id": ex.image_id, "reason": str(exc)})
            clock.lap("shift", report)
            continue
        out = None
        add(i, row(spec, ex, data, job.encoding, columns))
        clock.lap("write", report)


def through_geometry(arr: np.ndarray, geometry):
    """The image through `geometry`, or the BadImage it raised: kept, so each config sharing the geometry
    reports the same reason (here and in on-the-fly evaluation)."""
    try:
        return imaging.apply_geometry(arr, geometry)
    except imaging.BadImage as exc:
        return exc


def _through(by_geometry: dict, arr: np.ndarray, spec: ShiftSpec, jobs, reports, clock: _Clock) -> np.ndarray:
    """The image through `spec.geometry`, computed once per image for every config that shares it (each
    config gets its own copy, so a shift that works in place cannot reach the next one)."""
    geometry = spec.geometry
    if geometry not in by_geometry:
        by_geometry[geometry] = through_geometry(arr, geometry)
        clock.lap("geometry", *[r for j, r in zip(jobs, reports) if j.spec.geometry == geometry])
    shaped = by_geometry[geometry]
    if isinstance(shaped, imaging.BadImage):
        raise shaped
    return shaped


# --- batched (GPU) configs: one model, images in batches -------------------------------------------------

_MODELS: dict = {}  # one loaded GPU model per (factory, parameters) per process, not one per shard


def _batched_model(spec: ShiftSpec, params: dict):
    key = (spec.fn, json.dumps(params, sort_keys=True, default=str))
    if key not in _MODELS:
        _MODELS.clear()  # keep at most one model in (GPU) memory
        _MODELS[key] = spec.load_fn()(**params)
    return _MODELS[key]


def batched_rows(job: ShardJob, source: Source, report: ConfigReport, progress=None) -> Iterator[dict]:
    """The rows of one batched config's shard in plan order; bad images go to `report`."""
    from . import masks

    spec = job.spec
    model = _batched_model(spec, masks.batched_params(spec, job.masks))
    for start in range(0, len(job.examples), job.batch_size):
        chunk = job.examples[start : start + job.batch_size]
        decoded = []
        for ex in chunk:  # as one pass each: the footer lists decode failures before mask failures
            arr, note, reason = decode_example(source, ex)
            if arr is None:
                report.skipped.append({"image_id": ex.image_id, "reason": reason})
                continue
            if note:
                report.converted.append({"image_id": ex.image_id, "note": note})
            decoded.append((ex, arr))
        with_inputs = []
        for ex, arr in decoded:
            try:
                with_inputs.append((ex, arr, extra_inputs(job, source, ex, arr)))
            except imaging.BadImage as exc:  # includes masks.MaskUnavailable
                report.skipped.append({"image_id": ex.image_id, "reason": str(exc)})
        decoded = [(ex, imaging.apply_geometry(a, spec.geometry), x) for ex, a, x in with_inputs]
        rngs = [generator(job.seed, spec.name, ex.image_id) for ex, _, _ in decoded]
        kwargs = {}
        if MASKS in spec.needs:
            kwargs = {"masks": [x["mask"] for _, _, x in decoded], "labels": [ex.labels for ex, _, _ in decoded]}
        outs = model([a for _, a, _ in decoded], rngs, **kwargs) if decoded else []
        for (ex, _, _), out in zip(decoded, outs):
            yield row(spec, ex, imaging.encode(np.ascontiguousarray(out), job.encoding), job.encoding)
        if progress:
            progress(len(chunk))

"""The generation engine: plan (image ids -> shards), run (processes or accelerate), write (atomic, resumable).

Each shard is one parquet file written to a temporary name and renamed, carrying in its footer
the fingerprint of everything that shaped its bytes and the per-image skip/convert reasons.
A rerun skips shards whose fingerprint matches, so a killed run resumes with nothing lost or
duplicated; a shard made with other settings is never silently mixed in or overwritten.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import __version__, imaging
from .registry import MASKS, Encoding, ShiftSpec, get
from .rng import generator
from .sources import Example, Source, SourceError, open_source

SPLIT = "validation"
META_KEY = b"shift_hub"
DEFAULT_SHARD_SIZE = 1000


def features():
    import datasets

    from . import classes

    return datasets.Features({
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(classes.wnids())),
        "labels": datasets.List(datasets.Value("int16")),
        "image_id": datasets.Value("string"),
        "config": datasets.Value("string"),
        "severity": datasets.Value("int8"),
    })


@dataclass
class ConfigReport:
    config: str
    written: int = 0
    reused_shards: int = 0
    skipped: list = field(default_factory=list)  # [{"image_id", "reason"}]
    converted: list = field(default_factory=list)  # [{"image_id", "note"}]


class GenerationError(RuntimeError):
    pass


# --- one image ---------------------------------------------------------------------------------

def shift_image(spec: ShiftSpec, image: np.ndarray, seed: int, image_id: str,
                encoding: Encoding | None = None, **extra) -> bytes:
    """Geometry, shift and encoding for one decoded RGB image: the same bytes as the stored config.

    The evaluator calls this to apply a shift on the fly without writing anything to disk.
    """
    if spec.batched:
        raise GenerationError(f"{spec.name} is a batched (GPU) shift; use its model through generate()")
    arr = imaging.apply_geometry(image, spec.geometry)
    fn = spec.load_fn()
    if fn is not None:
        arr = fn(arr, generator(seed, spec.name, image_id), **spec.params, **extra)
    return imaging.encode(np.ascontiguousarray(arr), encoding or spec.encoding)


def _row(spec: ShiftSpec, example: Example, data: bytes, encoding: Encoding) -> dict:
    return {
        "image": {"bytes": data, "path": f"{example.image_id}.{imaging.extension(encoding)}"},
        "label": example.label,
        "labels": list(example.labels),
        "image_id": example.image_id,
        "config": spec.name,
        "severity": spec.severity or 0,
    }


# --- one shard ---------------------------------------------------------------------------------

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

    @property
    def config(self) -> str:
        return self.spec.name


_MODELS: dict = {}  # one loaded GPU model per (factory, parameters) per process, not one per shard


def _batched_model(spec: ShiftSpec, params: dict):
    key = (spec.fn, json.dumps(params, sort_keys=True, default=str))
    if key not in _MODELS:
        _MODELS.clear()  # keep at most one model in (GPU) memory
        _MODELS[key] = spec.load_fn()(**params)
    return _MODELS[key]


def _decode(source: Source, example: Example, report: ConfigReport, spec: ShiftSpec):
    try:
        arr, note = imaging.decode(source.read(example), example.image_id)
    except (imaging.BadImage, SourceError) as exc:
        report.skipped.append({"image_id": example.image_id, "reason": str(exc)})
        return None
    if note:
        report.converted.append({"image_id": example.image_id, "note": note})
    return arr


def iter_rows(job: ShardJob, source: Source, report: ConfigReport, progress=None) -> Iterator[dict]:
    """The rows of one shard in plan order; bad images go to `report` instead of stopping the run."""
    spec = job.spec
    if spec.batched:
        from . import masks

        model = _batched_model(spec, masks.batched_params(spec, job.masks))
        for start in range(0, len(job.examples), job.batch_size):
            chunk = job.examples[start : start + job.batch_size]
            decoded = [(ex, _decode(source, ex, report, spec)) for ex in chunk]
            decoded = [(ex, a, _batched_extra(job, source, ex, a, report)) for ex, a in decoded if a is not None]
            decoded = [(ex, imaging.apply_geometry(a, spec.geometry), x) for ex, a, x in decoded if x is not None]
            rngs = [generator(job.seed, spec.name, ex.image_id) for ex, _, _ in decoded]
            kwargs = {}
            if MASKS in spec.needs:
                kwargs = {"masks": [x["mask"] for _, _, x in decoded], "labels": [ex.labels for ex, _, _ in decoded]}
            outs = model([a for _, a, _ in decoded], rngs, **kwargs) if decoded else []
            for (ex, _, _), out in zip(decoded, outs):
                yield _row(spec, ex, imaging.encode(np.ascontiguousarray(out), job.encoding), job.encoding)
            if progress:
                progress(len(chunk))
        return
    for ex in job.examples:
        arr = _decode(source, ex, report, spec)
        if arr is not None:
            try:
                data = shift_image(spec, arr, job.seed, ex.image_id, job.encoding, **_extra_inputs(job, source, ex, arr))
            except imaging.BadImage as exc:
                report.skipped.append({"image_id": ex.image_id, "reason": str(exc)})
            else:
                yield _row(spec, ex, data, job.encoding)
        if progress:
            progress(1)


def run_shard(job: ShardJob, source: Source, progress=None) -> ConfigReport:
    report = ConfigReport(job.config)
    rows = list(iter_rows(job, source, report, progress))
    report.written = len(rows)
    _write_shard(job, rows, report)
    return report


def _extra_inputs(job: ShardJob, source: Source, example: Example, decoded: np.ndarray) -> dict:
    """Per-image inputs beyond the pixels that some families need: the object mask (computed once per source
    image, cached, then through the config's geometry) and, for rand_bg, a background provider."""
    if MASKS in job.spec.needs:
        from . import masks

        return masks.extra_inputs(job.spec, job.masks, source, example, decoded)
    return {}


def _batched_extra(job: ShardJob, source: Source, example: Example, decoded: np.ndarray, report: ConfigReport):
    try:
        return _extra_inputs(job, source, example, decoded)
    except imaging.BadImage as exc:  # includes masks.MaskUnavailable
        report.skipped.append({"image_id": example.image_id, "reason": str(exc)})
        return None


def _write_shard(job: ShardJob, rows: list[dict], report: ConfigReport) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = features().arrow_schema
    meta = {
        "shift_hub_version": __version__, "config": job.config, "seed": job.seed, "fingerprint": job.fingerprint,
        "shard": job.index, "num_shards": job.count, "planned": len(job.examples), "written": len(rows),
        "source": job.source_name, "encoding": asdict(job.encoding),
        "params": json.loads(json.dumps(dict(job.spec.params), default=str)),
        "masks": job.masks.options.fields() if job.masks is not None else None,  # how masks were made
        "ids_sha256": hashlib.sha256("\n".join(e.image_id for e in job.examples).encode()).hexdigest(),
        "skipped": report.skipped, "converted": report.converted,
    }
    schema = schema.with_metadata({**(schema.metadata or {}), META_KEY: json.dumps(meta, sort_keys=True).encode()})
    columns = {name: [r[name] for r in rows] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema)
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)  # only now: a run that fails first leaves no empty config dir
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, row_group_size=100)
    os.replace(tmp, path)


def shard_metadata(path: str | Path) -> dict:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if META_KEY not in meta:
        raise GenerationError(f"{path}: not written by shift_hub (no {META_KEY.decode()} footer metadata)")
    return json.loads(meta[META_KEY])


# --- planning ----------------------------------------------------------------------------------

def plan_examples(source: Source, limit: int | None = None, classes_subset: str | None = None) -> list[Example]:
    examples = sorted(source.examples(), key=lambda e: e.image_id)
    ids = [e.image_id for e in examples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SourceError(f"{source.describe()}: image id {dup!r} occurs twice; ids must be unique")
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


def fingerprint(spec: ShiftSpec, seed: int, encoding: Encoding, examples: Iterable[Example], extra: str = "") -> str:
    h = hashlib.sha256()
    settings = {"config": spec.name, "fn": spec.fn, "params": repr(sorted(spec.params.items())),
                "geometry": asdict(spec.geometry), "encoding": asdict(encoding), "seed": seed, "version": __version__}
    if extra:  # e.g. how masks were made
        settings["extra"] = extra
    h.update(json.dumps(settings, sort_keys=True).encode())
    boxes = MASKS in spec.needs  # boxes shape only masked configs: adding annotations never stales `clean`
    for e in examples:
        h.update(f"\n{e.image_id}\t{e.labels}\t{e.boxes if boxes else ''}".encode())
    return h.hexdigest()


def shard_name(index: int, count: int) -> str:
    return f"{SPLIT}-{index:05d}-of-{count:05d}.parquet"


def plan_jobs(spec: ShiftSpec, examples: list[Example], out: Path, seed: int, encoding: Encoding,
              shard_size: int, source_name: str, batch_size: int = 16, masks=None) -> list[ShardJob]:
    from .masks import fingerprint_extra, for_spec

    masks = for_spec(spec, masks) if MASKS in spec.needs else None
    extra = fingerprint_extra(spec, masks)
    count = max(1, math.ceil(len(examples) / shard_size))
    jobs = []
    for i in range(count):
        chunk = tuple(examples[i * shard_size : (i + 1) * shard_size])
        jobs.append(ShardJob(spec, i, count, chunk, seed, encoding, str(out / spec.name / shard_name(i, count)),
                             fingerprint(spec, seed, encoding, chunk, extra), source_name, batch_size, masks))
    return jobs


def _pending(jobs: list[ShardJob], overwrite: bool) -> list[ShardJob]:
    """Jobs still to run; refuses to mix shards made with other settings unless told to replace them."""
    config_dir = Path(jobs[0].path).parent
    for stale in config_dir.glob(".*.tmp-*"):
        stale.unlink()  # a killed writer's partial file: never renamed, so never visible
    planned = {Path(j.path).name for j in jobs}
    foreign = sorted(p for p in config_dir.glob("*.parquet") if p.name not in planned)
    unreadable = [j for j in jobs if Path(j.path).exists() and _readable_fingerprint(j.path) is None]
    for j in unreadable:
        Path(j.path).unlink()  # a damaged shard (truncated copy, disk error) is simply made again
    mismatched = [j for j in jobs if Path(j.path).exists() and _readable_fingerprint(j.path) != j.fingerprint]
    if (foreign or mismatched) and not overwrite:
        names = [p.name for p in foreign] + [Path(j.path).name for j in mismatched]
        raise GenerationError(f"{config_dir}: holds shards made with other settings ({', '.join(names[:3])}"
                              f"{', ...' if len(names) > 3 else ''}); "
                              "rerun with --overwrite to replace them, or choose another --out")
    for p in foreign:
        p.unlink()
    for j in mismatched:
        Path(j.path).unlink()
    return [j for j in jobs if not Path(j.path).exists()]


def _readable_fingerprint(path: str | Path) -> str | None:
    try:
        return shard_metadata(path).get("fingerprint")
    except Exception:  # not parquet, truncated, foreign: pyarrow raises several kinds
        return None


# --- running -----------------------------------------------------------------------------------

def _single_threaded_worker() -> None:
    """One BLAS/OpenMP/OpenCV thread per worker process: N workers use N cores, not N x cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(1)  # numpy's BLAS was loaded before the variables above were set


def _distributed_state():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch
        from accelerate import PartialState

        # without cpu=True accelerate ignores a torchrun launch on a machine with no GPU (every process alone)
        cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
        state = PartialState(cpu=cpu)
        if state.num_processes != world:
            raise GenerationError(f"WORLD_SIZE={world} but accelerate sees {state.num_processes} process(es): "
                                  "launch with `accelerate launch --multi_gpu` or `torchrun --nproc_per_node N`")
        return state
    return None


def generate(configs: list[str], source: Source | str = "samples", out: str | Path = "shift_hub_data",
             num_proc: int = 1, seed: int = 0, limit: int | None = None, shard_size: int = DEFAULT_SHARD_SIZE,
             png: bool = False, overwrite: bool = False, classes_subset: str | None = None,
             batch_size: int = 16, progress: bool = True, card: bool = True,
             masks=None, overrides: dict | None = None) -> dict[str, ConfigReport]:
    """Write each config as parquet shards under OUT/<config>/ and (re)write OUT/README.md.

    `masks` (a `shift_hub.masks.MaskOptions`) says how configs that need MASKS get their object masks;
    they are computed once per source image into OUT/.masks/ before any config runs.
    """
    from tqdm.auto import tqdm

    from .registry import expand

    if isinstance(source, str):
        source = open_source(source)
    out = Path(out)
    specs = with_overrides([get(name) for name in expand(configs)], overrides or {})
    examples = plan_examples(source, limit, classes_subset)
    _preflight(specs)
    state = _distributed_state()
    mask_context = _mask_context(specs, examples, source, out, masks)
    jobs: list[ShardJob] = []
    for spec in specs:
        encoding = encoding_for(spec, png)
        # the shard plan never depends on the process count, so a run resumes under any launch;
        # with few images per GPU, lower --shard-size so every process gets work
        config_jobs = plan_jobs(spec, examples, out, seed, encoding, shard_size, source.describe(), batch_size,
                                mask_context)
        if state is None or state.is_main_process:
            config_jobs = _pending(config_jobs, overwrite)
        if state is not None:
            state.wait_for_everyone()
            config_jobs = [j for j in config_jobs if not Path(j.path).exists()]
        jobs.extend(config_jobs)

    if mask_context is not None:
        from .masks import precompute

        needing = {e.image_id: e for j in jobs if MASKS in j.spec.needs for e in j.examples}
        precompute(mask_context, source, list(needing.values()), num_proc, state)
    reports = {spec.name: ConfigReport(spec.name) for spec in specs}
    total = sum(len(j.examples) for j in jobs)
    bar = tqdm(total=total, unit="img", desc="generate", disable=not progress or (state is not None and not state.is_main_process))
    if state is not None:
        with state.split_between_processes(jobs) as mine:
            for job in mine:
                _merge(reports[job.config], run_shard(job, source, bar.update))
        state.wait_for_everyone()
    elif num_proc <= 1 or len(jobs) <= 1:
        for job in jobs:
            _merge(reports[job.config], run_shard(job, source, bar.update))
    else:
        with ProcessPoolExecutor(max_workers=num_proc, mp_context=get_context("spawn"),
                                 initializer=_single_threaded_worker) as pool:
            futures = {pool.submit(run_shard, job, source): job for job in jobs}
            try:
                for fut in as_completed(futures):
                    _merge(reports[futures[fut].config], fut.result())
                    bar.update(len(futures[fut].examples))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # finished shards stay; a rerun resumes
                raise
    bar.close()
    if card and (state is None or state.is_main_process):
        from .hub.cards import write_card

        write_card(out)
    return reports


def encoding_for(spec: ShiftSpec, png: bool = False) -> Encoding:
    """The config's declared encoding, or lossless PNG when asked for or when the output has alpha."""
    return Encoding(format="PNG", quality=None) if png or spec.channels == 4 else spec.encoding


def _preflight(specs: list[ShiftSpec]) -> None:
    """Check every config's external inputs (weights, pattern files) before anything is written."""
    for spec in specs:
        if spec.preflight:
            module, _, attr = spec.preflight.partition(":")
            import importlib

            try:
                getattr(importlib.import_module(module), attr)(dict(spec.params))
            except (OSError, ValueError) as exc:
                raise GenerationError(f"{spec.name}: {exc}") from None


def _mask_context(specs: list[ShiftSpec], examples: list[Example], source: Source, out: Path, options):
    """The masks context when some config needs MASKS; fails (nothing written) when none could be made."""
    needing = [s for s in specs if MASKS in s.needs]
    if not needing:
        return None
    from . import masks
    from .shifts.ximagenet import WeightsMissing

    options = options or masks.MaskOptions()
    try:
        masks.preflight(needing, examples, options, source.describe())
    except (masks.MaskUnavailable, WeightsMissing) as exc:
        raise GenerationError(str(exc)) from None
    return masks.MaskContext(options, str(out / ".masks"), source.describe(), tuple(examples))


def with_overrides(specs: list[ShiftSpec], overrides: dict) -> list[ShiftSpec]:
    """Specs with parameters replaced (e.g. `weights`, `pattern`); each key must belong to some chosen config.

    The changed parameters enter the shard fingerprint and footer, so the card shows what was used.
    """
    if "severity" in overrides:
        raise GenerationError("severity is part of the config name: choose e.g. gaussian_noise_5, not --set severity=5")
    unused = set(overrides) - {k for spec in specs for k in spec.params}
    if unused:
        raise GenerationError(f"parameter(s) {sorted(unused)} are not parameters of {[s.name for s in specs]}; "
                              "`shift-hub list` and the registry show each config's parameters")
    return [dataclasses.replace(spec, params={**spec.params, **{k: v for k, v in overrides.items() if k in spec.params}})
            for spec in specs]


def _merge(into: ConfigReport, part: ConfigReport) -> None:
    into.written += part.written
    into.skipped.extend(part.skipped)
    into.converted.extend(part.converted)


def summary(out: str | Path) -> dict[str, dict]:
    """Per config: shards, images written, skipped and converted with reasons, read back from the footers."""
    result: dict[str, dict] = {}
    for path in sorted(Path(out).glob(f"*/{SPLIT}-*.parquet")):
        if _readable_fingerprint(path) is None:
            continue  # damaged or foreign: the next generate run remakes it
        meta = shard_metadata(path)
        s = result.setdefault(meta["config"], {"shards": 0, "written": 0, "skipped": [], "converted": [],
                                                "seed": meta["seed"], "source": meta["source"],
                                                "encoding": meta["encoding"], "version": meta["shift_hub_version"],
                                                "params": meta.get("params", {})})
        s["shards"] += 1
        s["written"] += meta["written"]
        s["skipped"] += meta["skipped"]
        s["converted"] += meta["converted"]
    return result


__all__ = ["generate", "shift_image", "summary", "plan_examples", "features", "GenerationError"]

"""The generation engine: plan (image ids -> shards), run (processes or accelerate), write (atomic, resumable).

Each shard is one parquet file written to a temporary name and renamed, carrying in its footer
the fingerprint of everything that shaped its bytes and the per-image skip/convert reasons.
A rerun skips shards whose fingerprint matches, so a killed run resumes with nothing lost or
duplicated; a shard made with other settings is never silently mixed in or overwritten.
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import __version__, folder, imaging
from .folder import META_KEY, SPLIT, shard_metadata, shard_name  # noqa: F401  (re-exported for callers)
from .registry import MASKS, Encoding, ShiftSpec, get
from .rng import generator
from .folder import summary  # noqa: F401  (re-exported: generate.summary is public)
from .sources import Example, Source, SourceError, open_source

DEFAULT_SHARD_SIZE = 1000
logger = logging.getLogger(__name__)


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
    busy: bool = False  # the shard was being written by another live run: not run here
    seconds: float = 0.0  # wall time spent making shards (one core each): what bench/bench_scale.py reports


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
            large = arr.shape[0] * arr.shape[1] > LARGE_IMAGE_PIXELS
            try:
                data = shift_image(spec, arr, job.seed, ex.image_id, job.encoding, **_extra_inputs(job, source, ex, arr))
            except imaging.BadImage as exc:
                report.skipped.append({"image_id": ex.image_id, "reason": str(exc)})
            else:
                yield _row(spec, ex, data, job.encoding)
            del arr
            data = None
            if large:
                _return_freed_memory()
        if progress:
            progress(1)


LARGE_IMAGE_PIXELS = 4_000_000  # after an image this large, the heap it needed is handed back (see below)


def _return_freed_memory() -> None:
    """glibc keeps the heap a large image needed after it is freed, and fragments left in it make later
    images grow it further: a worker's RSS then climbs with the large photos it has seen (1.1 GB after the
    12 MP tail of bench/bench_scale.py). malloc_trim returns the free pages to the OS; it costs a
    few milliseconds and only runs after large images. Elsewhere than glibc it does nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def run_shard(job: ShardJob, source: Source, progress=None, wait: bool = False) -> ConfigReport:
    """Write one shard while holding its lock; every engine (pool, accelerate, Ray, job arrays) calls this.

    A shard another live writer holds is left to it (`busy`) unless `wait`; one finished meanwhile by
    another run with the same settings is not made again.
    """
    report = ConfigReport(job.config)
    with folder.shard_lock(job.path, wait) as held:
        if not held:
            report.busy = True
            return report
        for stale in folder.dead_temp_files(job.path):
            stale.unlink(missing_ok=True)  # we hold the lock, so its writer is dead: never renamed, never seen
        if Path(job.path).exists() and folder.readable_fingerprint(job.path) == job.fingerprint:
            report.reused_shards += 1
            if progress:
                progress(len(job.examples))
            return report
        refuse_other_settings(job)  # the start-up check is not enough: another run may have written meanwhile
        import time

        started = time.perf_counter()
        _write_shard(job, iter_rows(job, source, report, progress), report)
        report.seconds += time.perf_counter() - started
    return report


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


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}  # the disk failed, not the data

ROW_GROUP = 100  # rows per parquet row group: what a shard holds in memory at once


def _write_shard(job: ShardJob, rows: Iterator[dict], report: ConfigReport) -> None:
    """Stream rows to a temporary file in row groups, put the footer (fingerprint, reasons) last, rename."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = features().arrow_schema
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)  # only now: a run that fails first leaves no empty config dir
    tmp = folder.temp_path(path)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[dict] = []
            for row in rows:
                batch.append(row)
                if len(batch) == ROW_GROUP:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    report.written += len(batch)
                    batch = []
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                report.written += len(batch)
            writer.add_key_value_metadata({META_KEY: json.dumps(_footer(job, report), sort_keys=True).encode()})
        with folder.commit_lock(path.parent):  # check and rename as one step against runs with other settings
            refuse_other_settings(job)
            os.replace(tmp, path)
    except OSError as exc:  # a full disk or a lost mount: say where, and that nothing finished is lost
        tmp.unlink(missing_ok=True)
        if exc.errno not in _WRITE_ERRNOS:
            raise
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        raise GenerationError(f"{path}: cannot be written ({reason}); free space there or choose another --out: "
                              "finished shards are kept and a rerun of the same command resumes") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _footer(job: ShardJob, report: ConfigReport) -> dict:
    return {
        "shift_hub_version": __version__, "config": job.config, "seed": job.seed, "fingerprint": job.fingerprint,
        "shard": job.index, "num_shards": job.count, "planned": len(job.examples), "written": report.written,
        "source": job.source_name, "encoding": asdict(job.encoding),
        "params": json.loads(json.dumps(dict(job.spec.params), default=str)),
        "masks": job.masks.options.fields() if job.masks is not None else None,  # how masks were made
        "ids_sha256": hashlib.sha256("\n".join(e.image_id for e in job.examples).encode()).hexdigest(),
        "skipped": report.skipped, "converted": report.converted,
    }


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


def _pending(jobs: list[ShardJob], overwrite: bool, log=None) -> list[ShardJob]:
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
            _remove(foreign, mismatched)
    return [j for j in jobs if not Path(j.path).exists()]


def _remove(foreign: list[Path], mismatched: list[ShardJob]) -> None:
    for p in foreign:
        p.unlink(missing_ok=True)
    for j in mismatched:
        Path(j.path).unlink(missing_ok=True)


# --- running -----------------------------------------------------------------------------------

def pool_worker(parent_pid: int) -> None:
    """A pool worker: dies with its parent (a SIGKILLed run leaves no idle workers behind), one thread."""
    _die_with_parent(parent_pid)
    _single_threaded_worker()


def _die_with_parent(parent_pid: int) -> None:
    """Exit when the parent process goes away: PR_SET_PDEATHSIG on Linux, and a watchdog thread anywhere."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="shift_hub-parent-watchdog", daemon=True).start()


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
             masks=None, overrides: dict | None = None, engine: str = "local", ray_address: str | None = None,
             shard: str | tuple[int, int] | None = None) -> dict[str, ConfigReport]:
    """Write each config as parquet shards under OUT/<config>/ and (re)write OUT/README.md.

    `masks` (a `shift_hub.masks.MaskOptions`) says how configs that need MASKS get their object masks;
    they are computed once per source image into OUT/.masks/ before any config runs. `engine` is "local"
    (this process, a pool of `num_proc`, or accelerate/torchrun ranks) or "ray"; `shard` ("I/N") runs only
    slice I of N of the plan, for job arrays: the card is written by whichever slice completes the plan.
    """
    from tqdm.auto import tqdm

    from . import engines
    from .registry import expand

    slice_ = engines.parse_shard(shard) if isinstance(shard, str) else shard
    engines.check_engine(engine, ray_address)  # a missing Ray or a dead --ray-address is said before any work
    if isinstance(source, str):
        source = open_source(source)
    out = Path(out)
    specs = with_overrides([get(name) for name in expand(configs)], overrides or {})
    examples = plan_examples(source, limit, classes_subset)
    _preflight(specs)
    state = _distributed_state()
    main = state is None or state.is_main_process
    if main:
        folder.check_output_folder(out, overwrite)
        if not overwrite:
            _refuse_other_images(out, specs, examples)
    log = logger.warning  # waits, moved damaged files, a deferred card: said even with --quiet
    mask_context = _mask_context(specs, examples, source, out, masks)
    planned: list[ShardJob] = []
    jobs: list[ShardJob] = []
    for spec in specs:
        # the shard plan never depends on the process count, so a run resumes under any launch;
        # with few images per GPU, lower --shard-size so every process gets work
        config_jobs = plan_jobs(spec, examples, out, seed, encoding_for(spec, png), shard_size, source.describe(),
                                batch_size, mask_context)
        planned.extend(config_jobs)
        if main:
            config_jobs = _pending(config_jobs, overwrite, log)
        if state is not None:
            state.wait_for_everyone()
            config_jobs = [j for j in config_jobs if not Path(j.path).exists()]
        jobs.extend(config_jobs)
    if slice_ is not None:
        mine = {j.path for j in engines.assign(planned, slice_[1])[slice_[0] - 1]}
        jobs = [j for j in jobs if j.path in mine]

    if mask_context is not None:
        from .masks import precompute

        needing = {e.image_id: e for j in jobs if MASKS in j.spec.needs for e in j.examples}
        precompute(mask_context, source, list(needing.values()), num_proc, state, progress=progress)
    reports = {spec.name: ConfigReport(spec.name) for spec in specs}
    bar = tqdm(total=sum(len(j.examples) for j in jobs), unit="img", desc="generate",
               disable=not progress or not main or not jobs)  # no `0img` bar when there is nothing to make
    for report in engines.run(jobs, source, state=state, num_proc=num_proc, engine=engine,
                              ray_address=ray_address, update=bar.update, log=log):
        _merge(reports[report.config], report)
    bar.close()
    if main:
        verify_written(planned)
    if card and main:
        missing = [j for j in planned if not Path(j.path).exists()]
        if not missing:
            from .hub.cards import write_card

            write_card(out, replace_foreign=overwrite)
        elif log:
            log(f"{len(missing)} planned shard(s) are not written yet (other --shard slices?): the card is written "
                f"by the run that completes them, or by `shift-hub card {out}`")
    return reports


def _refuse_other_images(out: Path, specs: list[ShiftSpec], examples: list[Example]) -> None:
    """A config planned over other images than the folder's other configs would be compared with them (drops,
    mCE) over different images: refused, as other settings are, unless --overwrite."""
    differing = folder.other_images(out, [s.name for s in specs], [e.image_id for e in examples])
    if differing:
        shown = ", ".join(f"{name} ({n} images)" for name, n in differing[:3]) + (", ..." if len(differing) > 3 else "")
        raise GenerationError(
            f"{out}: this run plans {len(examples)} images but the folder's {shown} were planned over other "
            "images, so scores in this folder would compare different images: choose another --out, or pass "
            "--overwrite to add the configs anyway (evaluation then computes drops on the shared images)")


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


def _merge(into: ConfigReport, part: ConfigReport) -> None:
    into.written += part.written
    into.seconds += part.seconds
    into.skipped.extend(part.skipped)
    into.converted.extend(part.converted)


__all__ = ["generate", "shift_image", "summary", "plan_examples", "features", "GenerationError"]

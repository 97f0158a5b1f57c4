"""Generation, orchestrated: plan (planning.py), pending shards grouped so each image is decoded once for all
its configs, run by an engine (engines.py) with the worker's function (worker.py), which writes each shard
atomically (shard_writer.py); then the check that the folder is what this run planned, and the card.

Each shard is one parquet file written to a temporary name and renamed, carrying in its footer the
fingerprint of everything that shaped its bytes and the per-image skip/convert reasons. A rerun skips shards
whose fingerprint matches, so a killed run resumes with nothing lost or duplicated; a shard made with other
settings is never silently mixed in or overwritten.
"""
from __future__ import annotations

import logging
from pathlib import Path

from . import engines, folder
from .folder import META_KEY, SPLIT, shard_metadata, shard_name, summary  # noqa: F401  (public here too)
from .jobs import ConfigReport, GenerationError, JobGroup, ShardJob  # noqa: F401
from .planning import (encoding_for, fingerprint, group_jobs, pending, plan_examples, plan_jobs,  # noqa: F401
                       preflight, refuse_other_images, verify_written, with_overrides)
from .registry import MASKS, ShiftSpec, expand, get
from .rows import iter_rows, shift_image  # noqa: F401  (the builder's rows, the evaluator's on-the-fly shift)
from .shard_writer import features  # noqa: F401
from .sources import Example, Source, open_source
from .video import video_for
from .worker import run_group, run_shard  # noqa: F401

DEFAULT_SHARD_SIZE = 1000
logger = logging.getLogger(__name__)
_preflight = preflight  # the names evaluation/on_the_fly.py and older callers use
_distributed_state = engines.distributed_state


def generate(configs: list[str], source: Source | str = "samples", out: str | Path = "shift_hub_data",
             num_proc: int = 1, seed: int = 0, limit: int | None = None, shard_size: int = DEFAULT_SHARD_SIZE,
             png: bool = False, overwrite: bool = False, classes_subset: str | None = None,
             batch_size: int = 16, progress: bool = True, card: bool = True,
             masks=None, overrides: dict | None = None, engine: str = "local", ray_address: str | None = None,
             shard: str | tuple[int, int] | None = None, subset=None,
             per_class: int | None = None, p_encoding: str = "png") -> dict[str, ConfigReport]:
    """Write each config as parquet shards under OUT/<config>/ and (re)write OUT/README.md.

    `masks` (a `shift_hub.masks.MaskOptions`) says how configs that need MASKS get their object masks;
    they are computed once per source image into OUT/.masks/ before any config runs. `engine` is "local"
    (this process, a pool of `num_proc`, or accelerate/torchrun ranks) or "ray"; `shard` ("I/N") runs only
    slice I of N of the plan, for job arrays: the card is written by whichever slice completes the plan.
    `subset` (`robustbench`, a FILE of image ids or a `subsets.Subset`) keeps exactly those images; every one
    must be in the source, and the shard footers (so the card) name the subset and its id list's SHA-256.
    `per_class` N keeps N images per ImageNet-9 class among those the backgrounds configs' selection keeps, drawn
    with the generator for (seed, "per-class", class) (as the published IN-9's 450 per class), for every config.
    `p_encoding` "mp4" stores each sequence config (ImageNet-P) as the release did, one x264 video per image (the
    `video` column) with `frames` decoded from it (video.py); "png" (the default) stores lossless frames only.
    """
    from tqdm.auto import tqdm

    slice_ = engines.parse_shard(shard) if isinstance(shard, str) else shard
    engines.check_engine(engine, ray_address)  # a missing Ray or a dead --ray-address is said before any work
    if subset is not None:
        from . import subsets

        subset = subsets.load(subset)  # a bad list fails before the source is read
    if isinstance(source, str):
        source = open_source(source)
    out = Path(out)
    specs = with_overrides([get(name) for name in expand(configs)], overrides or {})
    videos = {spec.name: video_for(spec, p_encoding) for spec in specs}  # a missing PyAV is said before any work
    examples = plan_examples(source, limit, classes_subset, subset)
    source_name = source.describe() + (subset.describe() if subset is not None else "")  # what footers record
    preflight(specs)
    state = engines.distributed_state()
    main = state is None or state.is_main_process
    if main:
        folder.check_output_folder(out, overwrite)
    if per_class is not None:  # after the folder check: it makes the masks of every image into OUT/.masks
        examples = _per_class(specs, examples, source, out, masks, per_class, seed, num_proc, state, progress)
    if main:
        if not overwrite:
            refuse_other_images(out, specs, examples)
    log = logger.warning  # waits, moved damaged files, a deferred card: said even with --quiet
    mask_context = _mask_context(specs, examples, source, out, masks)
    planned: list[ShardJob] = []
    jobs: list[ShardJob] = []
    for spec in specs:
        # the shard plan never depends on the process count, so a run resumes under any launch;
        # with few images per GPU, lower --shard-size so every process gets work
        config_jobs = plan_jobs(spec, examples, out, seed, encoding_for(spec, png), shard_size, source_name,
                                batch_size, mask_context, videos[spec.name])
        planned.extend(config_jobs)
        if main:
            config_jobs = pending(config_jobs, overwrite, log)
        if state is not None:
            state.wait_for_everyone()
            config_jobs = [j for j in config_jobs if not Path(j.path).exists()]
        jobs.extend(config_jobs)
    if slice_ is not None:  # this slice's share of the whole plan, so slices agree without talking
        n = slice_[1]
        mine = {j.path for g in engines.assign(engines.spread(group_jobs(planned), n), n)[slice_[0] - 1]
                for j in g.jobs}
        jobs = [j for j in jobs if j.path in mine]

    if mask_context is not None:
        from .masks import precompute

        by_options: dict = {}  # configs with their own mask settings (ImageNet-9's full-size GrabCut) fill their own
        for j in jobs:
            if MASKS in j.spec.needs:
                key = (j.masks.options, j.masks.select)
                by_options.setdefault(key, (j.masks, {}))[1].update({e.image_id: e for e in j.examples})
        for context, needing in by_options.values() or [(mask_context, {})]:
            precompute(context, source, list(needing.values()), num_proc, state, progress=progress)
    reports = {spec.name: ConfigReport(spec.name) for spec in specs}
    bar = tqdm(total=sum(len(j.examples) for j in jobs), unit="img", desc="generate",
               disable=not progress or not main or not jobs)  # no `0img` bar when there is nothing to make
    for report in engines.run(group_jobs(jobs), source, run_group, state=state, num_proc=num_proc, engine=engine,
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


def _per_class(specs, examples, source, out, options, n: int, seed: int, num_proc: int, state, progress):
    """N images per ImageNet-9 class of the plan, among those the first selecting config (ShiftSpec.select, the
    backgrounds configs) keeps: their masks are made first (cached for the run), each image is checked as the
    config would check it, and each class's N are drawn with its own seeded generator, so the draw is the same for
    any worker count or slice; GenerationError when a class has fewer than N."""
    from . import masks
    from .classes import IN9_CLASSES, in9_class
    from .rng import generator

    selecting = [s for s in specs if s.select]
    if not selecting:
        raise GenerationError(f"--per-class {n}: draws per ImageNet-9 class among the images the backgrounds configs "
                              "select; add them (`backgrounds`) to the configs")
    context = masks.for_spec(selecting[0], _mask_context(selecting, examples, source, out, options))
    masks.precompute(context, source, examples, num_proc, state, progress=progress)
    check = masks.Partners(source, context, selecting[0], None)
    by_class: dict[int, list[Example]] = {}
    for example in examples:
        if in9_class(example.labels) is not None and check.usable(example) is not None:
            by_class.setdefault(in9_class(example.labels), []).append(example)
    kept = []
    for c, name in enumerate(IN9_CLASSES):
        pool = by_class.get(c, [])
        if len(pool) < n:
            raise GenerationError(f"--per-class {n}: ImageNet-9 class {name!r} has {len(pool)} selected image(s) in "
                                  "the plan; lower --per-class or widen the source")
        order = generator(seed, "per-class", name).permutation(len(pool))[:n]
        kept.extend(pool[int(k)] for k in order)
    return sorted(kept, key=lambda e: e.image_id)


def _merge(into: ConfigReport, part: ConfigReport) -> None:
    into.written += part.written
    into.seconds += part.seconds
    into.skipped.extend(part.skipped)
    into.converted.extend(part.converted)
    into.reused_shards += part.reused_shards
    for stage, seconds in part.stages.items():
        into.stages[stage] = into.stages.get(stage, 0.0) + seconds


__all__ = ["generate", "shift_image", "summary", "plan_examples", "features", "GenerationError"]

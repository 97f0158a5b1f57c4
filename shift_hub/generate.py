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
             shard: str | tuple[int, int] | None = None) -> dict[str, ConfigReport]:
    """Write each config as parquet shards under OUT/<config>/ and (re)write OUT/README.md.

    `masks` (a `shift_hub.masks.MaskOptions`) says how configs that need MASKS get their object masks;
    they are computed once per source image into OUT/.masks/ before any config runs. `engine` is "local"
    (this process, a pool of `num_proc`, or accelerate/torchrun ranks) or "ray"; `shard` ("I/N") runs only
    slice I of N of the plan, for job arrays: the card is written by whichever slice completes the plan.
    """
    from tqdm.auto import tqdm

    slice_ = engines.parse_shard(shard) if isinstance(shard, str) else shard
    engines.check_engine(engine, ray_address)  # a missing Ray or a dead --ray-address is said before any work
    if isinstance(source, str):
        source = open_source(source)
    out = Path(out)
    specs = with_overrides([get(name) for name in expand(configs)], overrides or {})
    examples = plan_examples(source, limit, classes_subset)
    preflight(specs)
    state = engines.distributed_state()
    main = state is None or state.is_main_process
    if main:
        folder.check_output_folder(out, overwrite)
        if not overwrite:
            refuse_other_images(out, specs, examples)
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

        needing = {e.image_id: e for j in jobs if MASKS in j.spec.needs for e in j.examples}
        precompute(mask_context, source, list(needing.values()), num_proc, state, progress=progress)
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


def _merge(into: ConfigReport, part: ConfigReport) -> None:
    into.written += part.written
    into.seconds += part.seconds
    into.skipped.extend(part.skipped)
    into.converted.extend(part.converted)
    into.reused_shards += part.reused_shards
    for stage, seconds in part.stages.items():
        into.stages[stage] = into.stages.get(stage, 0.0) + seconds


__all__ = ["generate", "shift_image", "summary", "plan_examples", "features", "GenerationError"]

"""`shift_hub.evaluate(model, data, configs=None, ...)`: load, run, score, report (`evaluate_many`: several)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SOURCES_TO_GENERATE = ("samples",)  # data given as a source name is generated first (the main job)


@dataclass
class EvaluationResult:
    results: dict
    rows: list = field(repr=False)
    paths: dict = field(default_factory=dict)
    not_written: dict = field(default_factory=dict)  # output name -> why it was not written

    @property
    def metrics(self) -> dict:
        return self.results["metrics"]

    @property
    def summary(self) -> dict:
        return self.results["summary"]

    def markdown(self) -> str:
        from .report import markdown_table

        return markdown_table(self.results)

    def model_index(self) -> str:
        from .report import model_index_yaml

        return model_index_yaml(self.results)

    def eval_results(self) -> list:
        """huggingface_hub EvalResultEntry list for the dataset's eval.yaml tasks (empty when none can be made)."""
        from .eval_results import entries

        return entries(self.results)[0]

    def save(self, out, plots: bool = True) -> dict:
        """write_outputs (results.json, table, plots, model-index ...) plus .eval_results/shift_hub.yaml."""
        from . import eval_results
        from .report import write_outputs
        from .runner import is_main_process

        if not is_main_process():  # under accelerate/torchrun only rank 0 writes (every rank holds all rows)
            return {}
        self.paths = write_outputs(self.results, self.rows, out, plots=plots)
        path, why = eval_results.write(self.results, out)
        if path:
            self.paths["eval_results"] = path
        else:
            self.not_written[eval_results.PATH_IN_REPO] = why
        return self.paths


def _generate_source(source: str, configs, out: Path, seed: int, limit: int | None,
                     progress: bool = False, subset=None) -> tuple[Path, list[str]]:
    """Write `clean` plus the requested (default: every CPU) configs from a source, reusing shards."""
    from ..generate import GenerationError, generate
    from ..registry import expand

    names = expand(["clean", *(configs or ["all-cpu"])])
    if not configs:
        _warn_left_out()
    try:
        generate(names, source, out, seed=seed, limit=limit, progress=progress, subset=subset)
    except GenerationError as exc:
        raise GenerationError(f"{exc} (the data generated for this evaluation lives in {out}: use another --out "
                              f"or delete {out})") from None
    return out, names


_NEEDS_WORDS = {  # why a config is not in `all-cpu`, and how to generate it
    "masks": "need object masks: generate them with `shift-hub generate NAME ... --source devkit:ROOT` (masks from "
             "its boxes, or --polygons DIR; XImageNet-12 with --classes ximagenet12), then evaluate that folder",
    "weights": "need files not shipped (cartoon: --weights; drawing_pattern_*: --set pattern=FILE; watermark: the "
               "font of pip install 'shift-hub[watermark]'): generate them with `shift-hub generate`, then evaluate "
               "that folder",
    "sequences": "are ImageNet-P frame sequences (31 or 41 frames a row, so 31 times the forward passes): name "
                 "them (--configs imagenet_p) to generate and score them by flip probability",
}


def _left_out_of_all_cpu() -> list[str]:
    """One phrase per reason: the configs `all-cpu` leaves out (they need masks, weights or a GPU)."""
    from ..registry import MASKS, REGISTRY, SEQUENCES, WEIGHTS

    by_reason: dict[tuple[str, str], list[str]] = {}
    for spec in REGISTRY.values():
        if spec.needs:
            reason = next((n for n in (MASKS, SEQUENCES) if n in spec.needs), WEIGHTS)
            named = _FAMILY_WORDS.get(spec.family, "") if reason != WEIGHTS else ""
            by_reason.setdefault((reason, named), []).append(spec.name)
    return [f"{len(names)} {named}config(s) ({', '.join(names)}) {_NEEDS_WORDS[reason]}"
            for (reason, named), names in by_reason.items()]


_FAMILY_WORDS = {"ximagenet": "XImageNet-12 ", "backgrounds": "Backgrounds Challenge ",  # the families, named
                 "imagenet_p": "ImageNet-P "}


def _warn_left_out() -> None:
    """The main job generates every CPU config; say which are left out and why, so a table without them
    is not read as the whole benchmark."""
    import logging

    for phrase in _left_out_of_all_cpu():
        logging.getLogger("shift_hub").warning(f"left out of the generated data: {phrase}")


def _check_data(data, on_the_fly: bool) -> None:
    """A `data` string that is no folder, no source to generate and no Hub id fails in one line, before any
    model is loaded."""
    from . import provenance
    from .runner import DataError

    if on_the_fly or not isinstance(data, (str, os.PathLike)):
        return
    data = os.fspath(data)
    if data in SOURCES_TO_GENERATE or Path(data).is_dir():
        return
    if Path(data).exists():
        raise DataError(f"{data} is a file; pass the dataset folder (the one holding <config>/ subfolders)")
    if not provenance.is_hub_id(data):
        raise DataError(f"cannot open {data!r}: not a local folder, not a Hub dataset id (org/name) and not a "
                        f"source to generate from ({', '.join(SOURCES_TO_GENERATE)}); pass a generated folder, or a source "
                        "such as devkit:ROOT with on_the_fly=True")


def evaluate(model=None, data="samples", configs=None, *, weights: str | None = None, revision: str | None = None,
             batch_size: int = 32, num_workers: int | None = None, device: str | None = None, amp: bool = False,
             split: str = "validation", data_revision: str | None = None, label_space: str | None = None,
             limit: int | None = None, allow_partial: bool = False, out=None, plots: bool = True,
             on_the_fly: bool = False, progress: bool = False, seed: int = 0, dataset_id: str | None = None,
             trust_remote_code: bool = False, spec: str | None = None,
             bootstrap: int = 1000, subset=None, p_difficulty: int = 1, p_reference=None,
             backgrounds_challenge: int | None = None) -> EvaluationResult:
    """Score `model` on the configs of `data` and return (and with `out`, write) the results.

    model: embedded `efficientnet_lite0` (default; lite1/lite2 when installed), a transformers folder
        or Hub id, `hf-hub:`/`local-dir:`/`timm:NAME` (+ weights=FILE) for timm, `torchvision:ARCH[/TAG]`
        (+ weights=FILE), `open_clip:ARCH/TAG`, or a `models.Classifier`.
    data: a generated folder, a Hub dataset repo id, a `datasets.Dataset`, or `samples` (generate
        `clean` and every CPU shift from the embedded sample photos into OUT/data first).
    configs: config or group names (`imagenet_c`, `all-cpu`); default every config in the data.
    dataset_id: the Hub id a local folder is (or will be) pushed to, for the model-index YAML and
        `.eval_results/shift_hub.yaml` (a Hub source names itself; its commit is resolved and pinned).
    on_the_fly: `data` is a source (`samples`, `devkit:ROOT`, ...): apply the CPU configs while loading,
        writing nothing; the images are byte-identical to the stored configs.
    trust_remote_code: let a transformers checkpoint run its own code (config `auto_map`); refused otherwise.
    spec: the spec string a `models.Classifier` given as `model` was loaded from (recorded as typed).
    subset: `robustbench` (RobustBench's 5,000 ImageNet validation images), a FILE of image ids or a
        `subsets.Subset`: only those images are scored, every one of them or SubsetError; recorded in
        `results["data"]["subset"]`.
    p_difficulty / p_reference: ImageNet-P configs (`imagenet_p`) are scored by flip probability and top-5
        distance, non-noise frames compared `p_difficulty` apart; with `p_reference` (a JSON file or dict of
        AlexNet's {"flip_probability": {...}, "top5_distance": {...}}) also mFR and mT5D. In
        `results["summary"]["imagenet_p"]`, not in the per-config accuracies.
    backgrounds_challenge: N backgrounds per foreground (0: all, as the original) for the Backgrounds Challenge's
        score, the share of foregrounds some in9_only_bg_t background flips (in `results["summary"]["imagenet_9"]
        ["challenge"]`); needs in9_original, in9_only_bg_t and in9_fg_mask in the data, holding the same images.
    A config whose shards cannot be read, or an image that cannot be decoded, is left out and listed in
    `results["unreadable"]` so the rest is still scored; DataError only when nothing could be read.
    """
    from . import provenance
    from .labels import get_label_space
    from .metrics import summarize
    from .models import load_model
    from .report import build_results, describe_unreadable
    from .runner import DataError, label_space_fallbacks, open_data, pick_device, run
    from .sequence_scores import score_parts

    _check_options(batch_size, num_workers, limit)
    _check_challenge(backgrounds_challenge)
    reference = _p_reference(p_reference, p_difficulty)  # a bad file fails before any model is loaded
    _check_data(data, on_the_fly)
    chosen = _load_subset(subset)  # a bad list fails before any model is loaded
    from .models import check_offline_availability

    check_offline_availability(model, revision)  # before torch: an offline run fails in a second
    pick_device(device)  # a wrong --device fails before any data is generated
    import logging
    import time

    log = logging.getLogger("shift_hub")
    started = time.perf_counter()
    log.info(f"loading model {spec or getattr(model, 'name', model) or 'efficientnet_lite0'} ...")
    classifier = load_model(model, weights=weights, revision=revision, allow_partial=allow_partial,
                            trust_remote_code=trust_remote_code)  # fail fast
    log.info(f"loaded {classifier.name} in {time.perf_counter() - started:.1f} s")
    generated_from = None
    if on_the_fly:  # shift the source's images in the loader: nothing is written
        from .on_the_fly import open_on_the_fly

        source, parts = open_on_the_fly(_restricted_source(data, chosen), configs, seed=seed, limit=limit,
                                        label_space=get_label_space(label_space) if label_space else None)
    elif isinstance(data, str) and data in SOURCES_TO_GENERATE and not Path(data).exists():
        cache = Path(out or "shift_hub_results") / "data"
        generated_from = data
        data, configs = _generate_source(data, configs, cache, seed, limit, progress, chosen)
    unreadable: dict = {}  # configs and images that could not be read: reported, the rest still scored
    pinned: dict = {}
    held: list = []  # configs read but not classified (in9_fg_mask), for the challenge
    if not on_the_fly:
        if provenance.is_hub_id(data):  # load the very commit that is recorded, even if main moves meanwhile
            pinned = provenance.hub_record(data, data_revision, split)
        source, parts = open_data(data, configs, split=split, revision=pinned.get("resolved_revision") or data_revision,
                                  label_space=label_space, limit=limit, unreadable=unreadable, subset=chosen,
                                  held=held if backgrounds_challenge is not None else None)
    if backgrounds_challenge is not None:  # its configs checked before any image is scored
        from .backgrounds_challenge import check

        check(parts, held, backgrounds_challenge, unreadable)
    rows = run(classifier, parts, batch_size=batch_size, num_workers=num_workers, device=device, amp=amp,
               progress=progress, unreadable=unreadable)
    if not rows:
        raise DataError(f"no image could be read: {describe_unreadable(unreadable)}")
    challenge = None
    if backgrounds_challenge is not None:  # composites scored in rounds; only the verdicts are kept
        from .backgrounds_challenge import prepare, score as challenge_score

        log.info(f"Backgrounds Challenge: {backgrounds_challenge or 'every'} background(s) per foreground ...")
        challenge = challenge_score(
            prepare(parts, held, backgrounds_challenge, seed, unreadable),  # images unreadable above left out
            lambda part: run(classifier, [part], batch_size=batch_size, num_workers=num_workers, device=device,
                             amp=amp, progress=progress), bootstrap, seed)
    if source.get("kind") == "local":
        read = [*parts, *(held if challenge is not None else ())]  # the masks too, when the challenge read them
        pinned = provenance.local_record(Path(source["source"]), [f for p in read for f in p.fingerprints])
    source = {**source, **pinned, "configs_available": pinned.get("configs_available") or [p.name for p in parts]}
    if generated_from:
        source = {**source, "generated_from": generated_from, "seed": seed}
    if dataset_id or source.get("kind") == "hub":
        source = {**source, "dataset_id": dataset_id or source["source"]}
    if chosen is not None:
        source = {**source, "subset": chosen.record()}
    # 95 % intervals, paired over images; ImageNet-P's frames scored as sequences, into summary.imagenet_p
    scored, names, image_rows = score_parts(rows, parts, summarize, p_difficulty, reference, bootstrap, seed)
    expected = [p.name for p in parts if p.sequences]
    if expected and label_space and get_label_space(label_space).name != "imagenet-1k":
        scored["summary"]["imagenet_p"]["label_space_note"] = (
            f"--label-space {label_space} does not apply to ImageNet-P: its flip probability and top-5 distance are "
            "computed over the 1000-way ranking (ImageNet-1k), as the paper")
    _note_subset_mce(scored, chosen)
    if challenge is not None:  # beside the BG-gap when there is one
        scored["summary"].setdefault("imagenet_9", {})["challenge"] = challenge
    from .imagenet_x import factor_summary

    factors = factor_summary(image_rows, names, bootstrap, seed)  # ILSVRC val ids only; same resamples as the rest
    if factors is not None:
        scored["summary"]["imagenet_x"] = factors
    sequences_scored = any(e["sequences"] for e in scored["summary"].get("imagenet_p", {}).get("per_config", {}).values())
    if not sequences_scored and not any(m["n_scored"] for m in scored["per_config"].values()):
        raise DataError("no image has an ImageNet-1k label in the model's label space: nothing could be scored")
    options = {"batch_size": batch_size, "amp": amp, "limit": limit, "label_space": label_space,
               **({"p_difficulty": p_difficulty} if expected else {}),
               **({"backgrounds_challenge": backgrounds_challenge} if challenge is not None else {})}
    model_record = provenance.model_record(classifier, model if isinstance(model, str) else spec)
    results = build_results(model_record, source, names, scored, options, unreadable, provenance.environment())
    if expected:  # scored as sequences: in summary.imagenet_p, not among the per-config accuracies
        results["data"]["sequence_configs"] = list(expected)
    results["label_space_fallbacks"] = label_space_fallbacks(parts, label_space)
    for config, why in results["label_space_fallbacks"].items():
        results["metrics"].get(config, {})["label_space_fallback"] = why
    result = EvaluationResult(results, rows)
    if out is not None:
        result.save(out, plots=plots)
    return result


@dataclass
class ManyResults:
    """`evaluate_many`: one EvaluationResult per model that ran, the failures ({spec: one-line reason}) and
    the combined leaderboard's files."""
    results: list
    failures: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)
    board: object = None

    def markdown(self) -> str:
        return self.board.markdown() if self.board else ""


def evaluate_many(models, data="samples", configs=None, *, out="shift_hub_results", plots: bool = True,
                  seed: int = 0, limit: int | None = None, progress: bool = False, on_the_fly: bool = False,
                  expected_errors: tuple = (), **options) -> ManyResults:
    """Score several checkpoints on the same data: OUT/<model id>/ per model (as `evaluate(out=...)`) and
    the combined leaderboard (table, CSV, effective-robustness plot) in OUT. A source such as `samples` is
    generated once, into OUT/data. The data and every model are checked (each model loaded) before anything
    is generated or scored: one that cannot be loaded raises its one-line error and nothing is written. A
    model raising one of `expected_errors` while scoring is reported in `failures` and the others still run."""
    from . import provenance
    from .leaderboard import build_leaderboard
    from .runner import is_main_process

    _check_options(options.get("batch_size", 32), options.get("num_workers"), limit)
    _check_data(data, on_the_fly)
    options["subset"] = _load_subset(options.get("subset"))  # a bad list fails before any model is loaded
    _p_reference(options.get("p_reference"), options.get("p_difficulty", 1))  # so does a bad ImageNet-P reference
    loaded = _load_all(models, options)
    out = Path(out)
    if not on_the_fly and isinstance(data, str) and data in SOURCES_TO_GENERATE and not Path(data).exists():
        data, configs = _generate_source(data, configs, out / "data", seed, limit, progress, options["subset"])
    if not on_the_fly and provenance.is_hub_id(data):  # every model scored on the same commit
        pinned = provenance.hub_record(data, options.get("data_revision"), options.get("split", "validation"))
        options["data_revision"] = pinned.get("resolved_revision") or options.get("data_revision")
    done, folders, failures = [], [], {}
    for spec, classifier in loaded:
        try:
            result = evaluate(classifier, data, configs, seed=seed, limit=limit, progress=progress,
                              on_the_fly=on_the_fly, spec=spec, **options)
        except expected_errors as exc:
            failures[spec or classifier.name] = " ".join(str(exc).split())
            continue
        folders.append(out / _unique(_slug(result.results["model"]["id"]), {f.name for f in folders}))
        result.save(folders[-1], plots=plots)
        done.append(result)
    many = ManyResults(done, failures)
    if done:
        many.board = build_leaderboard([r.results for r in done], names=folders)
        if is_main_process():  # under accelerate/torchrun only rank 0 writes
            many.paths = many.board.write(out, plots=plots)
    return many


def _load_all(models, options: dict) -> list:
    """(spec, Classifier) for every model, before any data is generated or scored: a model that cannot be
    found or loaded (offline, no weights, unknown name) fails here in its own one line."""
    from .models import check_offline_availability, load_model

    keys = ("weights", "revision", "allow_partial", "trust_remote_code")
    for spec in models:  # every Hub model checked against the offline cache before torch is imported
        check_offline_availability(spec, options.get("revision"))
    return [(spec if isinstance(spec, str) else None,
             load_model(spec, **{k: options[k] for k in keys if k in options})) for spec in models]


def _slug(model_id: str) -> str:
    """A folder name for a model id: `timm/resnet50.a1_in1k` -> `timm__resnet50.a1_in1k`."""
    import re

    return re.sub(r"[^\w.\-]+", "_", model_id.replace("/", "__")).strip("._") or "model"


def _unique(name: str, used: set) -> str:
    candidate, n = name, 2
    while candidate in used or candidate == "data":
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def _load_subset(subset):
    """The `subsets.Subset` asked for, or None."""
    if subset is None:
        return None
    from .. import subsets

    return subsets.load(subset)


def _restricted_source(data, subset):
    """An on-the-fly source holding only the subset's images (the source itself without a subset)."""
    if subset is None:
        return data
    from .. import subsets
    from ..sources import open_source

    return subsets.SubsetSource(open_source(data) if isinstance(data, str) else data, subset)


def _note_subset_mce(scored: dict, subset) -> None:
    """On a subset, mCE still divides by AlexNet's errors on all 50,000 ImageNet-C images: said with the mCE."""
    c = scored["summary"].get("imagenet_c")
    if subset is not None and c and "mce" in c:
        from .. import subsets

        c["note"] = subsets.mce_note(subset)


def _p_reference(reference, difficulty: int):
    """AlexNet's ImageNet-P rates from a JSON file (or a dict as given); a bad file or difficulty fails in one line."""
    from .protocols import reference_from_file
    from .runner import DataError

    if not isinstance(difficulty, int) or isinstance(difficulty, bool) or difficulty not in (1, 2, 3):
        raise DataError(f"p_difficulty must be 1, 2 or 3 (the release's difficulties), not {difficulty!r}")
    if reference is None or isinstance(reference, dict):
        return reference
    try:
        return reference_from_file(reference)
    except (OSError, ValueError) as exc:
        raise DataError(f"--p-reference {reference}: {exc}") from None


def _check_challenge(n) -> None:
    """--backgrounds-challenge N: an integer >= 0 (0: every background) or None (not computed)."""
    from .runner import DataError

    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise DataError(f"backgrounds_challenge must be an integer >= 0 (0: every background), got {n!r}")


def _check_options(batch_size, num_workers, limit) -> None:
    """Wrong counts fail here in one line, not deep inside the DataLoader."""
    from .runner import DataError

    for name, value, least in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0), ("limit", limit, 1)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
            raise DataError(f"{name} must be an integer >= {least}, got {value!r}")

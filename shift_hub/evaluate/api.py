"""`shift_hub.evaluate(model, data, configs=None, ...)`: load, run, score, report."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SOURCES_TO_GENERATE = ("samples",)  # data given as a source name is generated first (the main job)


@dataclass
class EvaluationResult:
    results: dict
    rows: list = field(repr=False)
    paths: dict = field(default_factory=dict)

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

    def save(self, out, plots: bool = True) -> dict:
        from .report import write_outputs

        self.paths = write_outputs(self.results, self.rows, out, plots=plots)
        return self.paths


def _generate_source(source: str, configs, out: Path, seed: int, limit: int | None,
                     progress: bool = False) -> tuple[Path, list[str]]:
    """Write `clean` plus the requested (default: every CPU) configs from a source, reusing shards."""
    from ..generate import GenerationError, generate
    from ..registry import expand

    names = expand(["clean", *(configs or ["all-cpu"])])
    try:
        generate(names, source, out, seed=seed, limit=limit, progress=progress)
    except GenerationError as exc:
        raise GenerationError(f"{exc} (the data generated for this evaluation lives in {out}: use another --out "
                              f"or delete {out})") from None
    return out, names


def evaluate(model=None, data="samples", configs=None, *, weights: str | None = None, revision: str | None = None,
             batch_size: int = 32, num_workers: int | None = None, device: str | None = None, amp: bool = False,
             split: str = "validation", data_revision: str | None = None, label_space: str | None = None,
             limit: int | None = None, allow_partial: bool = False, out=None, plots: bool = True,
             on_the_fly: bool = False,
             progress: bool = False, seed: int = 0, dataset_id: str | None = None) -> EvaluationResult:
    """Score `model` on the configs of `data` and return (and with `out`, write) the results.

    model: embedded `efficientnet_lite0` (default; lite1/lite2 when installed), a transformers folder
        or Hub id, `hf-hub:`/`local-dir:`/`timm:NAME` (+ weights=FILE) for timm, `open_clip:ARCH/TAG`,
        or a `models.Classifier`.
    data: a generated folder, a Hub dataset repo id, a `datasets.Dataset`, or `samples` (generate
        `clean` and every CPU shift from the embedded sample photos into OUT/data first).
    configs: config or group names (`imagenet_c`, `all-cpu`); default every config in the data.
    dataset_id: the Hub id a local folder is (or will be) pushed to, for the model-index YAML.
    on_the_fly: `data` is a source (`samples`, `devkit:ROOT`, ...): apply the CPU configs while loading,
        writing nothing; the images are byte-identical to the stored configs.
    """
    from .labels import get_label_space
    from .metrics import summarize
    from .models import load_model
    from .report import build_results
    from .runner import DataError, open_data, pick_device, run

    pick_device(device)  # a wrong --device fails before any data is generated
    classifier = load_model(model, weights=weights, revision=revision, allow_partial=allow_partial)  # fail fast
    generated_from = None
    if on_the_fly:  # shift the source's images in the loader: nothing is written
        from .on_the_fly import open_on_the_fly

        source, parts = open_on_the_fly(data, configs, seed=seed, limit=limit,
                                        label_space=get_label_space(label_space) if label_space else None)
    elif isinstance(data, str) and data in SOURCES_TO_GENERATE and not Path(data).exists():
        cache = Path(out or "shift_hub_results") / "data"
        generated_from = data
        data, configs = _generate_source(data, configs, cache, seed, limit, progress)
    if not on_the_fly:
        source, parts = open_data(data, configs, split=split, revision=data_revision, label_space=label_space,
                                  limit=limit)
    rows = run(classifier, parts, batch_size=batch_size, num_workers=num_workers, device=device, amp=amp,
               progress=progress)
    if generated_from:
        source = {**source, "generated_from": generated_from, "seed": seed}
    if dataset_id or source.get("kind") == "hub":
        source = {**source, "dataset_id": dataset_id or source["source"]}
    names = [p.name for p in parts]
    scored = summarize(rows, names)
    if not any(m["n_scored"] for m in scored["per_config"].values()):
        raise DataError("no image has an ImageNet-1k label in the model's label space: nothing could be scored")
    options = {"batch_size": batch_size, "amp": amp, "limit": limit, "label_space": label_space}
    result = EvaluationResult(build_results(classifier.describe(), source, names, scored, options), rows)
    if out is not None:
        result.save(out, plots=plots)
    return result

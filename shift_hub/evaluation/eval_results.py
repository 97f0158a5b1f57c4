"""`.eval_results/shift_hub.yaml`: a model's scores in the form Hub Benchmarks read, via huggingface_hub's
`EvalResultEntry` (one entry per eval.yaml task, value in the unit eval.yaml declares: percent)."""
from __future__ import annotations

import math
from pathlib import Path

from ..hub.eval_yaml import P_METRICS, Task, tasks_for

FOLDER = ".eval_results"
FILENAME = "shift_hub.yaml"
PATH_IN_REPO = f"{FOLDER}/{FILENAME}"


def task_value(task: Task, results: dict) -> float | None:
    """The task's value in percent from the per-config scores, or None unless every config of the task was
    scored. mCE is recomputed over exactly the task's configs, so subsets of models stay comparable."""
    if task.metric in P_METRICS:
        return _imagenet_p_value(task, results)
    per = results["metrics"]
    top1 = {}
    for config in task.configs:
        m = per.get(config) or {}
        value = m.get("top1")
        if not m.get("n_scored") or value is None or math.isnan(value):
            return None
        top1[config] = value
    if task.metric in ("top1", "mean_top1"):
        return round(100 * sum(top1.values()) / len(top1), 2)
    if task.metric == "watermark_gap":  # paired over the images both configs hold, as results.json's summary
        summary = results.get("summary") if isinstance(results.get("summary"), dict) else {}
        gap = summary.get("watermark").get("in_w_gap") if isinstance(summary.get("watermark"), dict) else None
        ok = isinstance(gap, (int, float)) and not isinstance(gap, bool) and not math.isnan(gap)
        return round(100 * gap, 2) if ok else None
    if task.metric == "bg_gap":  # ImageNet-9's BG-gap, paired over the images both mixed configs hold
        summary = results.get("summary") if isinstance(results.get("summary"), dict) else {}
        gap = summary.get("imagenet_9").get("bg_gap") if isinstance(summary.get("imagenet_9"), dict) else None
        ok = isinstance(gap, (int, float)) and not isinstance(gap, bool) and not math.isnan(gap)
        return round(100 * gap, 2) if ok else None
    from .metrics import config_info, corruption_errors

    info = config_info(list(top1))
    errors = {(info[c]["corruption"], info[c]["severity"]): 1 - v for c, v in top1.items() if info[c]["corruption"]}
    clean_error = 1 - top1["clean"] if "clean" in top1 else None
    value = corruption_errors(errors, clean_error).get(task.metric)
    return None if value is None else round(100 * value, 2)


def _imagenet_p_value(task: Task, results: dict) -> float | None:
    """The mean flip probability (percent) or top-5 distance over exactly the task's configs, at difficulty 1,
    from results.json's `summary.imagenet_p`; None unless every one of them was scored."""
    summary = results.get("summary") if isinstance(results.get("summary"), dict) else {}
    p = summary.get("imagenet_p") if isinstance(summary.get("imagenet_p"), dict) else {}
    per = p.get("per_config") if isinstance(p.get("per_config"), dict) else {}
    if p.get("difficulty", 1) != 1:
        return None
    values = []
    for config in task.configs:
        entry = per.get(config) if isinstance(per.get(config), dict) else {}
        value = entry.get(task.metric)
        if not entry.get("sequences") or not isinstance(value, (int, float)) or isinstance(value, bool) \
                or math.isnan(value) or entry.get("label_space", "imagenet-1k") != "imagenet-1k":
            return None
        values.append(float(value))
    mean = sum(values) / len(values)
    return round(100 * mean, 2) if task.metric == "flip_probability" else round(mean, 4)


def task_values(results: dict, configs=None) -> dict[str, float]:
    """{task id: value} for the tasks `configs` (default: the configs the data holds) support and the run scored."""
    data = results["data"]
    available = configs if configs is not None else (data.get("configs_available") or data["configs"])
    values = {t.id: task_value(t, results) for t in tasks_for(available)}
    return {k: v for k, v in values.items() if v is not None}


def entries(results: dict) -> tuple[list, str | None]:
    """(EvalResultEntry list, None) or ([], why none can be written)."""
    from huggingface_hub import EvalResultEntry

    data = results["data"]
    if not data.get("dataset_id"):
        return [], "no Hub dataset id: pass --dataset-id ORG/NAME (the repo the data is pushed to)"
    if (results.get("options") or {}).get("limit"):
        return [], "--limit scored only part of each config; a benchmark score needs every image"
    values = task_values(results)
    if not values:
        return [], "no eval.yaml task had all of its configs scored"
    notes = _notes(results)
    return [EvalResultEntry(dataset_id=data["dataset_id"], task_id=task_id, value=value,
                            dataset_revision=data.get("resolved_revision"), date=results.get("created"),
                            notes=notes) for task_id, value in values.items()], None


def _notes(results: dict) -> str:
    model = results["model"]
    counts = results.get("counts", {})
    images = sum(c.get("scored", 0) for c in counts.values())
    parts = [f"shift_hub {results.get('shift_hub_version')}", f"{images} images in {len(counts)} configs"]
    if model.get("revision"):
        parts.append(f"model revision {model['revision']}")
    elif model.get("weights_sha256"):
        parts.append(f"weights sha256 {model['weights_sha256'][:12]}")
    if any(c.get("unreadable") or c.get("unscorable") for c in counts.values()):
        parts.append("some images unreadable or unscorable (see results.json)")
    return "; ".join(parts)


def dump(items: list) -> str:
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    return yaml.safe_dump(eval_result_entries_to_yaml(items), sort_keys=False, allow_unicode=True)


def parse(text: str, where: str = PATH_IN_REPO) -> list:
    """EvalResultEntry list from YAML text; ValueError in one line when it is not an .eval_results file."""
    import yaml
    from huggingface_hub import parse_eval_result_entries

    try:
        data = yaml.safe_load(text)
        if not isinstance(data, list):
            raise TypeError("not a list of results")
        return parse_eval_result_entries(data)
    except Exception as exc:
        raise ValueError(f"{where} is not an .eval_results file ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]})") from None


def merge(remote: list, local: list) -> list:
    """Remote entries with those of the same (dataset, task) replaced by ours: a second push updates."""
    ours = {(e.dataset_id, e.task_id) for e in local}
    return [e for e in remote if (e.dataset_id, e.task_id) not in ours] + list(local)


def write(results: dict, out: str | Path) -> tuple[Path | None, str | None]:
    """Write OUT/.eval_results/shift_hub.yaml; (path, None), or (None, why not)."""
    items, why = entries(results)
    path = Path(out) / FOLDER / FILENAME
    if not items:
        path.unlink(missing_ok=True)  # a stale file from an earlier run must not be pushed
        return None, why
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(items), encoding="utf-8")
    return path, None

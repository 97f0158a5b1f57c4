"""Everything a person or a model card reads: results JSON, markdown table, plots, model-index YAML."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__


def _pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}"


def build_results(model: dict, data: dict, configs: list[str], scored: dict, options: dict | None = None) -> dict:
    """The results document: who was scored, on what, how many images, and every metric."""
    per = scored["per_config"]
    return {
        "shift_hub_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "data": {**data, "configs": list(configs)},
        "counts": {c: {"images": per[c]["n"], "scored": per[c]["n_scored"], "unscorable": per[c]["n_unscorable"]}
                   for c in configs},
        "metrics": per,
        "summary": scored["summary"],
        "options": options or {},
    }


def markdown_table(results: dict) -> str:
    """One line per config: images, top-1, top-5, drop vs clean (points and relative), ECE."""
    covered = results["model"].get("imagenet_classes_covered", 1000)
    lines = [
        f"**{results['model']['id']}** on `{results['data']['source']}`"
        + (f" — the model covers only {covered} of the 1000 ImageNet-1k classes" if covered < 1000 else ""),
        "",
        "| config | label space | images | top-1 % | top-5 % | drop (pts) | drop (rel %) | ECE % |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in results["metrics"].items():
        d = m.get("drop") or {}
        lines.append(
            f"| {name} | {m['label_space']} | {m['n_scored']}"
            + (f" (+{m['n_unscorable']} unscorable)" if m["n_unscorable"] else "")
            + f" | {_pct(m['top1'])} | {_pct(m['top5'])} | {_pct(d.get('abs'))} | {_pct(d.get('rel'))} | {_pct(m['ece'])} |"
        )
    summary = results.get("summary", {})
    c = summary.get("imagenet_c")
    if c and c.get("per_corruption"):
        lines += ["", "| corruption | error % by severity 1..5 | mean error % | CE % | relative CE % |",
                  "|---|---|---:|---:|---:|"]
        for name, e in c["per_corruption"].items():
            by_sev = " / ".join(_pct(e["error_by_severity"].get(str(s))) for s in range(1, 6))
            partial = "" if e.get("complete") or e.get("ce") is None else " (partial)"  # not all 5 severities
            lines.append(f"| {name} | {by_sev} | {_pct(e['mean_error'])} | {_pct(e.get('ce'))}{partial} | "
                         f"{_pct(e.get('relative_ce'))}{partial} |")
    if c and "mce" in c:
        done = "" if c.get("complete") else f" (partial: {c['corruptions_in_mce']} of 15 corruptions and/or not all severities)"
        lines += ["", f"mCE {_pct(c['mce'])}" + (f", relative mCE {_pct(c['relative_mce'])}" if "relative_mce" in c else "")
                  + " (AlexNet-normalised)" + done]
    x = summary.get("ximagenet_robustness")
    if x:
        lines += ["", f"XImageNet-12 robustness (provisional formula): {x['score']:.4f} "
                      f"(mean accuracy {_pct(x['mean_accuracy'])} %)"]
    return "\n".join(lines)


def model_index_yaml(results: dict, dataset_type: str | None = None) -> str:
    """`model-index:` block for a model card: one result per config, top-1/top-5 accuracy in %."""
    import yaml

    # a local folder is named by the Hub id it will be pushed to (dataset_id) when one was given
    source = dataset_type or results["data"].get("dataset_id")
    if not source:  # a local path means nothing on a model card: name the benchmark, pass --dataset-id to link it
        source = results["data"]["source"] if results["data"].get("kind") == "hub" else "shift_hub"
    entries = []
    for name, m in results["metrics"].items():
        if m["n_scored"] == 0:
            continue
        metrics = [{"type": "accuracy", "name": "top-1 accuracy", "value": round(100 * m["top1"], 2)},
                   {"type": "accuracy", "name": "top-5 accuracy", "value": round(100 * m["top5"], 2)}]
        entries.append({
            "task": {"type": "image-classification", "name": "Image Classification"},
            "dataset": {"name": f"{Path(str(source)).name} ({name})", "type": str(source), "config": name,
                        "split": results["data"].get("split", "validation")},
            "metrics": metrics,
        })
    doc = {"model-index": [{"name": results["model"]["id"], "results": entries}]}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def plot_accuracy_per_shift(results: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .metrics import config_info

    # one bar per shift: configs that differ only by severity are averaged into one bar
    metrics = {n: m for n, m in results["metrics"].items() if m["n_scored"]}
    info = config_info(list(metrics))
    bars: dict[str, list[float]] = {}
    for name, m in metrics.items():
        bars.setdefault(info[name]["base"], []).append(100 * m["top1"])
    names = [f"{b} ({len(v)} sev.)" if len(v) > 1 else b for b, v in bars.items()]
    values = [sum(v) / len(v) for v in bars.values()]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names) + 2), 4.5))
    colors = ["#555555" if n.startswith("clean") else "#1f77b4" for n in names]
    ax.bar(range(len(names)), values, color=colors)
    ax.set_xticks(range(len(names)), names, rotation=75, ha="right", fontsize=8)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{results['model']['id']}: accuracy per shift")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_vs_severity(results: dict, path: str | Path) -> Path | None:
    curves = results.get("summary", {}).get("accuracy_by_severity")
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    clean = results["metrics"].get("clean", {}).get("top1")
    lead = [0] if clean is not None else []
    lead_y = [100 * clean] if clean is not None else []
    colors = plt.cm.tab20.colors
    for i, (name, points) in enumerate(sorted(curves.items())):
        ax.plot(lead + [int(s) for s in points], lead_y + [100 * v for v in points.values()], marker="o",
                markersize=3, linewidth=1, alpha=0.8, color=colors[i % 20], linestyle="-" if i < 20 else "--",
                label=name)
    mean = results.get("summary", {}).get("imagenet_c", {}).get("error_by_severity")
    if mean:
        ax.plot(lead + [int(s) for s in mean], lead_y + [100 * (1 - e) for e in mean.values()], color="black",
                linewidth=3, marker="o", label="mean over ImageNet-C corruptions")
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{results['model']['id']}: accuracy vs severity")
    ax.legend(fontsize=6, ncol=3, loc="lower left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(results: dict, rows: list[dict], out: str | Path, plots: bool = True) -> dict[str, Path]:
    """results.json, predictions.jsonl (one row per image), table.md, model-index.yaml and the plots."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "predictions": out / "predictions.jsonl",
             "table": out / "table.md", "model_index": out / "model-index.yaml"}
    paths["results"].write_text(json.dumps(_finite(results), indent=2, default=_jsonable))
    with paths["predictions"].open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=_jsonable) + "\n")
    paths["table"].write_text(markdown_table(results) + "\n")
    paths["model_index"].write_text(model_index_yaml(results))
    if plots:
        paths["accuracy_per_shift"] = plot_accuracy_per_shift(results, out / "accuracy_per_shift.png")
        sev = plot_accuracy_vs_severity(results, out / "accuracy_vs_severity.png")
        if sev:
            paths["accuracy_vs_severity"] = sev
    return paths


def _finite(value):
    """NaN (e.g. accuracy of a config with no scorable image) is not JSON: write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)

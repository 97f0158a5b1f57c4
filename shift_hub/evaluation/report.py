"""Everything a person or a model card reads: results JSON, markdown table, plots, model-index YAML; and
write_outputs, which writes them all with report.html (rendered by html_report, which never imports this)."""
from __future__ import annotations

import json
import logging
import math
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..hub.cards import md_escape
from .html_report import PLOT_TITLES, write_report_html
from .left_out import describe_incomplete, describe_unreadable  # runner, api and command.py import them from here

PLOT_FILES = {"accuracy_per_shift": "accuracy_per_shift.png", "accuracy_vs_severity": "accuracy_vs_severity.png",
              "imagenet_x_factors": "imagenet_x_factors.png",  # shown in report.html's ImageNet-X section
              "imagenet_p_flip_probability": "imagenet_p_flip_probability.png"}  # and this in its ImageNet-P one
PLOT_SOFTWARE = "shift_hub"  # PNG `Software` text of every plot shift_hub writes: only such files are ever replaced
_SAFE_CODE = re.compile(r"[\w.\-/]+")
log = logging.getLogger("shift_hub")


def md_code(value) -> str:
    """A name as a markdown code span when it is plain (registry names are), else escaped text: a backtick in
    user data would otherwise close the span."""
    text = str(value)
    return f"`{text}`" if _SAFE_CODE.fullmatch(text) else md_escape(text)


def _pm(ci) -> str:
    """` ± h` (points): the half-width of a {ci_low, ci_high} interval, or nothing without one."""
    if not ci:
        return ""
    return f" ± {100 * (ci['ci_high'] - ci['ci_low']) / 2:.1f}"


def _pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}"


def _signed(value) -> str:
    """A difference of fractions in signed points: `+1.25`, `-25.40`, `-` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:+.2f}"


def watermark_line(w: dict) -> str:
    """ImageNet-W's gaps (results.json `summary.watermark`) as one line of table.md, each with its interval."""
    ci = w.get("ci") or {}
    parts = [f"IN-W gap {_signed(w.get('in_w_gap'))}{_pm(ci.get('in_w_gap'))} pts (top-1 on watermark minus clean)"]
    if "carton_gap" in w:
        parts.append(f"carton gap {_signed(w['carton_gap'])}{_pm(ci.get('carton_gap'))} pts (accuracy on the "
                     f"{w['carton_images']} images of class 478 carton, watermark minus clean)")
    elif "carton_images" in w:
        parts.append("carton gap: no image of class 478 carton was scored")
    else:
        parts.append(f"carton gaps: only in the ImageNet-1k label space, not {md_escape(w.get('label_space'))}")
    if "carton_prediction_gap" in w:
        parts.append(f"share of images predicted carton {_signed(w['carton_prediction_gap'])}"
                     f"{_pm(ci.get('carton_prediction_gap'))} pts")
    images = (f"on the {w.get('images')} images watermark and clean share" if w.get("shared_only")
              else f"{w.get('images')} images")
    return f"ImageNet-W ({images}): " + "; ".join(parts)


def in9_line(g: dict) -> str:
    """The Backgrounds Challenge's BG-gap (results.json `summary.imagenet_9`) as one line of table.md, and its
    challenge score (`summary.imagenet_9.challenge`, --backgrounds-challenge) as another when computed."""
    lines = []
    if "bg_gap" in g:
        ci = (g.get("ci") or {}).get("bg_gap")
        images = (f"on the {g.get('images')} images in9_mixed_same and in9_mixed_rand share" if g.get("shared_only")
                  else f"{g.get('images')} images")
        lines.append(f"ImageNet-9 ({images}, {md_escape(g.get('label_space'))} label space): BG-gap "
                     f"{_signed(g.get('bg_gap'))}{_pm(ci)} pts (top-1 on in9_mixed_same "
                     f"{_pct(g.get('mixed_same_top1'))} % minus in9_mixed_rand {_pct(g.get('mixed_rand_top1'))} %)")
    if isinstance(g.get("challenge"), dict):
        lines.append(challenge_line(g["challenge"]))
    return "\n\n".join(lines)


def challenge_line(c: dict) -> str:
    """The Backgrounds Challenge's score as one line of table.md: vulnerable foregrounds, of how many, how tried."""
    ci = (c.get("ci") or {}).get("vulnerable_share")
    every = c.get("backgrounds_per_foreground") == c.get("backgrounds")
    tried = (f"every one of the {c.get('backgrounds')} in9_only_bg_t backgrounds, as the original" if every else
             f"{c.get('backgrounds_per_foreground')} of the {c.get('backgrounds')} in9_only_bg_t backgrounds drawn per "
             f"foreground (seed {c.get('seed')}): a lower bound of the original's, which tries every one")
    left = sum(len(v) for v in (c.get("left_out") or {}).values())
    return (f"Backgrounds Challenge: {_pct(c.get('vulnerable_share'))}{_pm(ci)} % of foregrounds vulnerable "
            f"({c.get('vulnerable')} of {c.get('foregrounds')}: some background flips the IN-9 prediction), pasted "
            f"onto {tried}" + (f"; {left} unreadable image(s) left out" if left else ""))


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _pm_num(ci, digits: int = 3) -> str:
    """` ± h` in the value's own unit (top-5 distance is no percentage)."""
    if not ci:
        return ""
    return f" ± {(ci['ci_high'] - ci['ci_low']) / 2:.{digits}f}"


def imagenet_p_lines(p: dict) -> list[str]:
    """ImageNet-P (results.json `summary.imagenet_p`) in table.md: per config its flip probability and top-5
    distance, then the means over the benchmark's perturbations and, with a reference, mFR / mT5D."""
    lines = ["| ImageNet-P config | sequences | frames | compared with | flip probability % | top-5 distance |",
             "|---|---:|---:|---|---:|---:|"]
    for name, e in (p.get("per_config") or {}).items():
        ci = e.get("ci") or {}
        left = f" (+{len(e['incomplete'])} incomplete, left out)" if e.get("incomplete") else ""
        lines.append(f"| {md_escape(name)} | {e.get('sequences')}{left} | {e.get('frames')} | "
                     f"{md_escape(e.get('compared_to'))} | {_pct(e.get('flip_probability'))}"
                     f"{_pm(ci.get('flip_probability'))} | {_num(e.get('top5_distance'))}"
                     f"{_pm_num(ci.get('top5_distance'))} |")
    from .sequence_scores import means_sentence

    text = means_sentence(p, lambda v, ci: f"{_pct(v)}{_pm(ci)}", lambda v, ci: f"{_num(v)}{_pm_num(ci)}", md_escape)
    lines += ["", f"ImageNet-P: {text}"]
    if p.get("label_space_note"):
        lines += ["", f"ImageNet-P: {md_escape(p['label_space_note'])}"]
    boot = p.get("intervals") or {}
    if boot.get("resamples"):
        lines += ["", f"ImageNet-P ± : half-width of the 95 % interval ({boot['method']}, {boot['resamples']} "
                      f"resamples, {boot['images']} source images, each image's sequence resampled in every config)"]
    return lines


def _subset_words(subset) -> str:
    """` — subset robustbench (5000 images)` when the run was restricted to a list of images (--subset)."""
    if not isinstance(subset, dict):
        return ""
    return f" — subset {md_escape(subset.get('name'))} ({subset.get('images')} images)"


def build_results(model: dict, data: dict, configs: list[str], scored: dict, options: dict | None = None,
                  unreadable: dict | None = None, environment: dict | None = None) -> dict:
    """The results document: who was scored, on what, how many images, every metric, what could not be
    read (`unreadable`: per config, its shards {file, reason} and/or images {image_id, reason}) and the
    library versions that produced it (`environment`)."""
    per = scored["per_config"]
    unreadable = unreadable or {}
    return {
        "shift_hub_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "data": {**data, "configs": list(configs)},
        "counts": {c: {"images": per[c]["n"], "scored": per[c]["n_scored"], "unscorable": per[c]["n_unscorable"],
                       "unreadable": len(unreadable.get(c, {}).get("images", []))}
                   for c in configs},
        "metrics": per,
        "summary": scored["summary"],
        "options": options or {},
        "unreadable": unreadable,
        "environment": environment or {},
    }


def markdown_table(results: dict) -> str:
    """One line per config: images, top-1, top-5, drop vs clean (points and relative), ECE. Every name in it
    (model, data, configs, label spaces, reasons) is user data and escaped: the table is meant to be shared."""
    covered = results["model"].get("imagenet_classes_covered", 1000)
    lines = [
        f"**{md_escape(results['model']['id'])}** on {md_code(results['data']['source'])}"
        + _subset_words(results["data"].get("subset"))
        + (f" — the model covers only {covered} of the 1000 ImageNet-1k classes" if covered < 1000 else ""),
        "",
        "| config | label space | images | top-1 % | top-5 % | drop (pts) | drop (rel %) | ECE % |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []  # footnotes: drops over fewer shared images, label-space fallbacks

    def mark(text: str) -> str:
        notes.append(text)
        return f" [{len(notes)}]"

    for name, m in results["metrics"].items():
        d = m.get("drop") or {}
        ci = m.get("ci") or {}
        unread = results.get("counts", {}).get(name, {}).get("unreadable")
        space = md_escape(m["label_space"])
        if m.get("label_space_fallback"):
            space += mark(f"{md_escape(name)}: {md_escape(m['label_space_fallback'])}")
        shared = ""
        if d.get("shared_only"):
            shared = mark(f"{md_escape(name)}: drop computed on the {d['images']} images it shares with "
                          f"{md_escape(m.get('baseline', 'clean'))}")
        lines.append(
            f"| {md_escape(name)} | {space} | {m['n_scored']}"
            + (f" (+{m['n_unscorable']} unscorable)" if m["n_unscorable"] else "")
            + (f" (+{unread} unreadable)" if unread else "")
            + f" | {_pct(m['top1'])}{_pm(ci.get('top1'))} | {_pct(m['top5'])}{_pm(ci.get('top5'))} | "
            f"{_pct(d.get('abs'))}{_pm(ci.get('drop_abs'))}{shared} | {_pct(d.get('rel'))} | {_pct(m['ece'])}{_pm(ci.get('ece'))} |"
        )
    if not results["metrics"]:  # sequence configs only: their own table follows, no empty per-image one
        lines = lines[:1]
    if notes:
        lines += [""] + [f"[{i}] {text}" for i, text in enumerate(notes, 1)]
    boot = results.get("summary", {}).get("intervals") or {}
    if boot.get("resamples"):
        lines += ["", f"± : half-width of the 95 % interval ({boot['method']}, {boot['resamples']} resamples, "
                      f"{boot['images']} images; `ci_low`/`ci_high` in results.json)"]
    summary = results.get("summary", {})
    c = summary.get("imagenet_c")
    if c and c.get("per_corruption"):
        lines += ["", "| corruption | error % by severity 1..5 | mean error % | CE % | relative CE % |",
                  "|---|---|---:|---:|---:|"]
        for name, e in c["per_corruption"].items():
            by_sev = " / ".join(_pct(e["error_by_severity"].get(str(s))) for s in range(1, 6))
            partial = "" if e.get("complete") or e.get("ce") is None else " (partial)"  # not all 5 severities
            lines.append(f"| {md_escape(name)} | {by_sev} | {_pct(e['mean_error'])} | {_pct(e.get('ce'))}{partial} | "
                         f"{_pct(e.get('relative_ce'))}{partial} |")
    if c and "mce" in c:
        done = "" if c.get("complete") else f" (partial: {c['corruptions_in_mce']} of 15 corruptions and/or not all severities)"
        cci = c.get("ci") or {}
        lines += ["", f"mCE {_pct(c['mce'])}{_pm(cci.get('mce'))}"
                  + (f", relative mCE {_pct(c['relative_mce'])}{_pm(cci.get('relative_mce'))}" if "relative_mce" in c else "")
                  + " (AlexNet-normalised)" + done
                  + (f", on the {c['images']} images all its configs share" if c.get("shared_only") else "")
                  + (f"; {md_escape(c['note'])}" if c.get("note") else "")]
    x = summary.get("ximagenet_robustness")
    if x:
        lines += ["", f"XImageNet-12 robustness (provisional formula): {x['score']:.4f} "
                      f"(mean accuracy {_pct(x['mean_accuracy'])} %)"]
    if isinstance(summary.get("watermark"), dict):
        lines += ["", watermark_line(summary["watermark"])]
    if isinstance(summary.get("imagenet_9"), dict):
        lines += ["", in9_line(summary["imagenet_9"])]
    if isinstance(summary.get("imagenet_p"), dict):
        lines += ["", *imagenet_p_lines(summary["imagenet_p"])]
    if isinstance(summary.get("imagenet_x"), dict):
        from .imagenet_x import table_line

        lines += ["", md_escape(table_line(summary["imagenet_x"]))]
    if results.get("unreadable"):
        lines += ["", "Could not be read (left out of the scores): "
                  + md_escape(describe_unreadable(results["unreadable"]))]
    if results.get("data", {}).get("incomplete"):
        lines += ["", "Incomplete (scored on the shards present only): " + md_escape(describe_incomplete(results))]
    return "\n".join(lines)


def model_index_yaml(results: dict, dataset_type: str | None = None) -> str:
    """`model-index:` block for a model card, built with huggingface_hub's EvalResult/ModelCardData: one
    result per config, top-1 and top-5 accuracy as distinct metrics, both in percent."""
    from huggingface_hub import EvalResult, ModelCardData

    data = results["data"]
    # a local folder is named by the Hub id it will be pushed to (dataset_id) when one was given
    source = dataset_type or data.get("dataset_id")
    if not source:  # a local path means nothing on a model card: name the benchmark, pass --dataset-id to link it
        source = data["source"] if data.get("kind") == "hub" else "shift_hub"
    common = {"task_type": "image-classification", "task_name": "Image Classification", "dataset_type": str(source),
              "dataset_split": data.get("split", "validation"), "dataset_revision": data.get("resolved_revision")}
    found = []
    for name, m in results["metrics"].items():
        if m["n_scored"] == 0:
            continue
        where = {**common, "dataset_name": f"{Path(str(source)).name} ({name})", "dataset_config": name}
        found += [EvalResult(**where, metric_type="accuracy", metric_name="top-1 accuracy (%)",
                             metric_value=round(100 * m["top1"], 2)),
                  EvalResult(**where, metric_type="top_5_accuracy", metric_name="top-5 accuracy (%)",
                             metric_value=round(100 * m["top5"], 2))]
    if not found:
        return "model-index: []\n"
    return ModelCardData(model_name=results["model"]["id"], eval_results=found).to_yaml() + "\n"


@contextmanager
def plain_text_figure(path: str | Path, **figure_options):
    """A figure saved to `path` as a PNG tagged as shift_hub's (so a later run knows it may remove it) and
    closed even when drawing fails. Every text element (titles, labels, ticks, legends) is drawn as typed: no
    mathtext, so `$x_$` in a model or config name is text rather than a formula that fails to parse, and no
    LaTeX, whatever the user's matplotlibrc says."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"text.usetex": False, "text.parse_math": False}):
        fig = plt.figure(**figure_options)
        try:
            yield fig
            fig.savefig(path, dpi=120, metadata={"Software": PLOT_SOFTWARE})
        finally:
            plt.close(fig)


def remove_stale_plot(path: Path) -> None:
    """Delete a plot an earlier run left at a name this run did not write, so a folder never mixes runs; only
    a PNG shift_hub (or, before it tagged its plots, matplotlib) wrote there is removed, never another file."""
    from PIL import Image

    if not path.is_file():
        return
    try:
        with Image.open(path) as image:
            software = str(image.info.get("Software", "")) if image.format == "PNG" else ""
    except (OSError, ValueError):
        return
    if software == PLOT_SOFTWARE or software.startswith("Matplotlib version"):
        path.unlink()


def draw_plot(draw, *args) -> Path | None:
    """`draw(*args)` (its last argument is the PNG path), or None and one warning line when it fails: a plot
    is never worth losing results.json, report.html or the other models of a run."""
    try:
        return draw(*args)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        log.warning(f"plot {args[-1]} not written ({type(exc).__name__}: {reason}); the other outputs are written")
        return None


PLOT_WIDTH_IN = 10  # inches: 1200 px at 120 dpi, report.html's column width (shown 1:1, no rescaling)


def plot_accuracy_per_shift(results: dict, path: str | Path) -> Path | None:
    from .metrics import config_info

    # one bar per shift: configs that differ only by severity are averaged into one bar
    metrics = {n: m for n, m in results["metrics"].items() if m["n_scored"]}
    if not metrics:  # e.g. only ImageNet-P sequence configs, which have their own plot
        return None
    info = config_info(list(metrics))
    bars: dict[str, list[float]] = {}
    for name, m in metrics.items():
        bars.setdefault(info[name]["base"], []).append(100 * m["top1"])
    names = [f"{b} ({len(v)} sev.)" if len(v) > 1 else b for b, v in bars.items()]
    values = [sum(v) / len(v) for v in bars.values()]
    xerr = _bar_errors(results, metrics, info, list(bars), values)
    colors = ["#555555" if n.startswith("clean") else "#1f77b4" for n in names]
    # sized for report.html's full-width column (PLOT_WIDTH_IN at 120 dpi): 10 pt text is ~17 px there;
    # horizontal bars so that many config names stay readable, one row each, top to bottom
    height = max(3.5, 0.3 * len(names) + 1.5)
    with plain_text_figure(path, figsize=(PLOT_WIDTH_IN, height), layout="constrained") as fig:
        ax = fig.subplots()
        ax.barh(range(len(names)), values, color=colors, **({"xerr": xerr, "error_kw": {"elinewidth": 1,
                "capsize": 2, "ecolor": "#222222"}} if xerr is not None else {}))
        ax.set_yticks(range(len(names)), names, fontsize=10)
        ax.invert_yaxis()  # the first config (clean) on top
        for y, v in enumerate(values):  # the value after the bar's interval, so neither hides the other
            ax.text(min(v + (xerr[1][y] if xerr is not None else 0.0), 100) + 0.8, y, f"{v:.1f}", va="center",
                    fontsize=9)
        ax.set_xlabel("top-1 accuracy (%)", fontsize=11)
        ax.set_xlim(0, 110)  # room for the value written after a 100 % bar
        ax.set_xticks(range(0, 101, 20))
        ax.tick_params(axis="x", labelsize=10)
        ax.set_title(f"{results['model']['id']}: accuracy per shift", fontsize=12)
    return Path(path)


def _bar_errors(results: dict, metrics: dict, info: dict, bases: list[str], values: list[float]):
    """(2, bars) distances from each bar to its 95 % interval (a single config's, or the paired interval of a
    shift's severity mean), or None when the results carry no intervals; a bar without one gets none."""
    means = results.get("summary", {}).get("group_means", {})
    lows, highs, any_ci = [], [], False
    for base, value in zip(bases, values):
        names = [n for n in metrics if info[n]["base"] == base]
        ci = (metrics[names[0]].get("ci") or {}).get("top1") if len(names) == 1 else \
            (means.get(base, {}).get("ci") or {}).get("top1")
        if ci:
            any_ci = True
            lows.append(max(0.0, value - 100 * ci["ci_low"]))
            highs.append(max(0.0, 100 * ci["ci_high"] - value))
        else:
            lows.append(0.0)
            highs.append(0.0)
    return [lows, highs] if any_ci else None


def plot_accuracy_vs_severity(results: dict, path: str | Path) -> Path | None:
    curves = results.get("summary", {}).get("accuracy_by_severity")
    if not curves:
        return None
    # full column width; constrained layout keeps the legend (outside the axes, right) inside the figure
    with plain_text_figure(path, figsize=(PLOT_WIDTH_IN, 5.5), layout="constrained") as fig:
        _draw_severity_curves(fig.subplots(), results, curves)
    return Path(path)


MAX_BANDS = 6  # more interval bands than this hide the curves: the table's ± values carry them instead


def _severity_band(results: dict, name: str, points: dict, with_clean: bool):
    """(lows, highs) in % for a severity curve from its configs' intervals (clean's first), or None."""
    metrics = results["metrics"]
    keys = (["clean"] if with_clean else []) + [f"{name}_{s}" for s in points]
    cis = [(metrics.get(k, {}).get("ci") or {}).get("top1") for k in keys]
    if not all(cis):
        return None
    return [100 * c["ci_low"] for c in cis], [100 * c["ci_high"] for c in cis]


def _draw_severity_curves(ax, results: dict, curves: dict) -> None:
    import matplotlib.pyplot as plt

    clean = results["metrics"].get("clean", {}).get("top1")
    lead = [0] if clean is not None else []
    lead_y = [100 * clean] if clean is not None else []
    colors = plt.cm.tab20.colors
    for i, (name, points) in enumerate(sorted(curves.items())):
        xs, ys = lead + [int(s) for s in points], lead_y + [100 * v for v in points.values()]
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, alpha=0.8, color=colors[i % 20],
                linestyle="-" if i < 20 else "--", label=name)
        band = _severity_band(results, name, points, clean is not None) if len(curves) <= MAX_BANDS else None
        if band is not None:  # the 95 % interval of each point, as a light band around its curve
            ax.fill_between(xs, band[0], band[1], color=colors[i % 20], alpha=0.12, linewidth=0)
    mean = results.get("summary", {}).get("imagenet_c", {}).get("error_by_severity")
    if mean:
        ax.plot(lead + [int(s) for s in mean], lead_y + [100 * (1 - e) for e in mean.values()], color="black",
                linewidth=3, marker="o", label="mean over ImageNet-C corruptions")
    ax.set_xlabel("severity (0 = clean)", fontsize=11)
    ax.set_ylabel("top-1 accuracy (%)", fontsize=11)
    ax.tick_params(labelsize=10)
    ax.set_ylim(0, 100)
    banded = len(curves) <= MAX_BANDS and any(m.get("ci") for m in results["metrics"].values())
    ax.set_title(f"{results['model']['id']}: accuracy vs severity"
                 + (" (bands: 95 % intervals)" if banded else ""), fontsize=12)
    ax.legend(fontsize=9, ncol=1 if len(curves) <= 18 else 2, loc="upper left", bbox_to_anchor=(1.01, 1),
              borderaxespad=0, frameon=False)  # outside the axes: it never covers a line


def plot_imagenet_x_factors(results: dict, path: str | Path) -> Path | None:
    """ImageNet-X's config x factor error ratios (results.json `summary.imagenet_x`), or None without any."""
    from .imagenet_x import draw_factor_heatmap, heatmap_height

    block = results.get("summary", {}).get("imagenet_x") or {}
    if not block.get("per_config"):
        return None
    with plain_text_figure(path, figsize=(PLOT_WIDTH_IN, heatmap_height(block)), layout="constrained") as fig:
        draw_factor_heatmap(fig, block, results["model"]["id"])
    return Path(path)


def plot_imagenet_p_flip_probability(results: dict, path: str | Path) -> Path | None:
    """ImageNet-P's flip probability per config (results.json `summary.imagenet_p`), with its 95 % interval as an
    error bar, or None when no config holds a scored sequence."""
    block = results.get("summary", {}).get("imagenet_p") or {}
    bars = [(name, 100 * e["flip_probability"], (e.get("ci") or {}).get("flip_probability"))
            for name, e in (block.get("per_config") or {}).items()
            if e.get("sequences") and isinstance(e.get("flip_probability"), (int, float))
            and not math.isnan(e["flip_probability"])]
    if not bars:
        return None
    values = [v for _, v, _ in bars]
    # distances from each bar to its interval's ends (none for a bar without one)
    lows = [max(0.0, v - 100 * ci["ci_low"]) if ci else 0.0 for _, v, ci in bars]
    highs = [max(0.0, 100 * ci["ci_high"] - v) if ci else 0.0 for _, v, ci in bars]
    right = max(v + h for v, h in zip(values, highs))
    height = max(3.0, 0.3 * len(bars) + 1.5)
    with plain_text_figure(path, figsize=(PLOT_WIDTH_IN, height), layout="constrained") as fig:
        ax = fig.subplots()
        ax.barh(range(len(bars)), values, color="#1f77b4", xerr=[lows, highs],
                error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#222222"})
        ax.set_yticks(range(len(bars)), [name for name, _, _ in bars], fontsize=10)
        ax.invert_yaxis()  # in results.json's order, top to bottom
        for y, (v, h) in enumerate(zip(values, highs)):  # after the interval, so neither hides the other
            ax.text(v + h + 0.01 * max(right, 1.0), y, f"{v:.2f}", va="center", fontsize=9)
        ax.set_xlim(0, 1.15 * max(right, 1.0))  # room for the value written after the longest bar
        ax.set_xlabel("flip probability (%): top-1 changes between the frames compared; lower is steadier",
                      fontsize=11)
        ax.tick_params(axis="x", labelsize=10)
        ax.set_title(f"{results['model']['id']}: ImageNet-P flip probability per config "
                     f"(difficulty {block.get('difficulty', 1)}"
                     + ("; bars: 95 % intervals)" if any(ci for _, _, ci in bars) else ")"), fontsize=12)
    return Path(path)


def write_outputs(results: dict, rows: list[dict], out: str | Path, plots: bool = True) -> dict[str, Path]:
    """results.json, predictions.jsonl (one row per image), table.md, model-index.yaml, the plots and
    report.html (everything above on one self-contained page, with a clean-vs-shifted gallery). A plot that
    fails is a warning; a plot of an earlier run that this one did not draw is removed."""
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
    drawers = {"accuracy_per_shift": plot_accuracy_per_shift, "accuracy_vs_severity": plot_accuracy_vs_severity,
               "imagenet_x_factors": plot_imagenet_x_factors,
               "imagenet_p_flip_probability": plot_imagenet_p_flip_probability}
    for key, name in PLOT_FILES.items():
        made = draw_plot(drawers[key], results, out / name) if plots else None
        if made:
            paths[key] = made
        else:
            remove_stale_plot(out / name)
    paths["report_html"] = write_report_html(results, rows, out / "report.html",
                                             plots={k: paths[k] for k in PLOT_TITLES if k in paths},
                                             imagenet_x_plot=paths.get("imagenet_x_factors"),
                                             imagenet_p_plot=paths.get("imagenet_p_flip_probability"))
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

"""Many results folders -> one ranked table (markdown + CSV) and effective-robustness plots.

Columns are the eval.yaml tasks (hub/eval_yaml.py) over the configs every model was scored on, so all
rows compare like with like. Effective robustness follows Taori et al. 2020 and Miller et al. 2021
("accuracy on the line"): per shift, a line is fitted across the models to logit(shifted top-1) against
logit(clean top-1); a model's effective robustness is its shifted top-1 minus the line's prediction at its
clean top-1, in accuracy points.

With each results folder's predictions.jsonl at hand (leaderboard_stats.py), every value carries its 95 %
interval (a seeded percentile bootstrap over source images, intervals.py's weights) and every two models scored
on the same images of the same data are compared by a paired bootstrap of the difference in the ranking column:
a rank not separated at 95 % from the nearest rank above it that it can be compared with is marked `=`, one
comparable with no rank above (other data, subset or images) `?`, and every pair is listed. Effective
robustness's interval resamples the model's clean and shifted top-1 (paired, one set of weights) around the line
fitted to the point estimates, which is held fixed: it is the uncertainty of the model's own accuracies, not of
the fit.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..hub.cards import md_escape
from ..hub.eval_yaml import tasks_for
from .eval_results import task_value
from .intervals import DEFAULT_RESAMPLES, LEVEL, METHOD
from .leaderboard_stats import (DIGITS, GAP_FIELDS, INCOMPARABLE, NOT_SEPARATED, P_MEANS, P_RATIOS, SEPARATED,
                                UNTESTED, Pair, compare, data_identity, imagenet_p_block,
                                imagenet_p_reference_difference, imagenet_p_scored, imagenet_p_value, interval_of,
                                model_stats, read_predictions)
from .report import draw_plot, md_code, plain_text_figure, remove_stale_plot

CLEAN = "clean_top1"
BASELINES = ("clean_top1", "clean_full_top1")
EPS = 1e-3  # accuracies are clipped to [EPS, 1 - EPS] before the logit (0 % or 100 % has no logit)
MEAN = "mean_shifted_top1"
PLOT_FILE = "effective_robustness.png"
MINUS = "\u2212"  # the minus sign: `0.803 x − 1.362`, never `+ -1.362`
HTML_FILE = "leaderboard.html"
MARKS = {NOT_SEPARATED: "=", INCOMPARABLE: "?"}  # beside a rank: its verdict against the rank above (Row.versus)
P_UNTESTED = "ImageNet-P's means are not resampled pairwise here: compare their intervals"


class LeaderboardError(ValueError):
    """Results that cannot be ranked; the message names the path and the fix."""


@dataclass
class Row:
    model: str  # the model id results.json records
    folder: str
    values: dict  # task id -> value in %
    data: str
    effective_robustness: dict = field(default_factory=dict)  # task id -> accuracy points above the fit
    rank: int = 0
    label: str = ""  # what the table and plot show: the id with its source (`timm:resnet18`), unique per row
    intervals: dict = field(default_factory=dict)  # column id -> (low, high) of its 95 % interval
    er_intervals: dict = field(default_factory=dict)  # shift task id -> (low, high) of its effective robustness
    versus: object = None  # leaderboard_stats.Pair with the nearest rank above compared with (else the one above)
    identity: dict = field(default_factory=dict)  # leaderboard_stats.data_identity: equal means comparable data
    stats: object = field(default=None, repr=False, compare=False)  # leaderboard_stats.ModelStats, or None
    why_no_intervals: str = ""
    imagenet_p: str = ""  # leaderboard_stats.imagenet_p_scored: what its ImageNet-P means are over

    def __post_init__(self):
        self.label = self.label or self.model


@dataclass
class Leaderboard:
    rows: list
    tasks: list  # Task, the table's columns
    fits: dict  # shift task id -> (slope, intercept) in logit space, or None
    sort: str
    notes: list = field(default_factory=list)  # markdown lines, their user data already escaped
    pairs: list = field(default_factory=list)  # leaderboard_stats.Pair for every two ranked rows, in rank order
    bootstrap: dict = field(default_factory=dict)  # how the intervals were made; empty when they were not
    p_columns: list = field(default_factory=list)  # the ImageNet-P columns shown (leaderboard_stats.P_COLUMNS)
    p_incomparable: dict = field(default_factory=dict)  # ImageNet-P column -> why its models compare unlike

    @property
    def shift_tasks(self) -> list:
        return [t for t in self.tasks if t.metric in ("top1", "mean_top1") and t.id not in BASELINES]

    @property
    def columns(self) -> list:
        """The value columns of the table, in order."""
        return [t.id for t in self.tasks] + ([MEAN] if self.shift_tasks else []) + self.p_columns

    def units(self) -> str:
        """What the values are in, for the line above the table."""
        words = "values in %; mCE: lower is better"
        if "imagenet_p_top5_distance" in self.p_columns:
            words += "; ImageNet-P: lower is better, top-5 distance in rank positions"
        elif self.p_columns:
            words += "; ImageNet-P: lower is better"
        return words

    def cell(self, row: Row, column: str) -> str:
        """A markdown value: its digits, ± the half-width of its interval, ` ?` in an incomparable column."""
        digits = DIGITS.get(column, 2)
        value = row.values.get(column)
        mark = " ?" if value is not None and column in self.p_incomparable else ""
        return _fmt(value, digits=digits) + _pm(row.intervals.get(column), digits) + mark

    def markdown(self) -> str:
        ids = self.columns
        count = f"{len(self.rows)} model" + ("" if len(self.rows) == 1 else "s")
        spread = f"; ± the half-width of the {100 * LEVEL:g} % interval" if any(r.intervals for r in self.rows) else ""
        lines = [f"Ranked by {md_code(self.sort)} ({count}; {self.units()}{spread})", "",
                 "| rank | model | " + " | ".join(md_code(i) for i in ids) + " |",
                 "|---:|---|" + "---:|" * len(ids)]
        for row in self.rows:
            lines.append(f"| {row.rank}{_mark(row)} | {md_escape(row.label)} | "
                         + " | ".join(self.cell(row, i) for i in ids) + " |")
        lines += self._significance_lines()
        fitted = [t for t in self.shift_tasks if self.fits.get(t.id)]
        if fitted:
            lines += ["", "Effective robustness: accuracy points above the line fitted across these models to "
                          "logit(shifted top-1) vs logit(clean top-1) (Taori et al. 2020; Miller et al. 2021)", "",
                      "| model | " + " | ".join(md_code(t.id) for t in fitted) + " |", "|---|" + "---:|" * len(fitted)]
            for row in self.rows:
                lines.append(f"| {md_escape(row.label)} | " + " | ".join(
                    _fmt(row.effective_robustness.get(t.id), signed=True) + _pm(row.er_intervals.get(t.id))
                    for t in fitted) + " |")
            lines += ["", "Fits (logit space): " + "; ".join(
                f"{md_code(t.id)} = {_line(*self.fits[t.id])}" for t in fitted)]
        lines += ["", *(f"Note: {n}" for n in self.notes)] if self.notes else []  # notes escape their data
        return "\n".join(lines)

    def fit_text(self, task_id: str) -> str:
        """The fitted line of one shift in logit space, `0.803 x − 1.362`."""
        return _line(*self.fits[task_id])

    def pair(self, first: int, second: int):
        """The Pair of two ranked rows (0-based positions), or None when they were not compared."""
        return next((p for p in self.pairs if (p.first, p.second) == (first, second)), None)

    def mark_words(self, position: int, escape=str) -> str:
        """`not separated from #1 at 95 % (+0.50 [-1.20, +2.10])`: the verdict of the row at `position` against
        the rank above it (Row.versus); `escape` is applied to the reason, which may hold user data."""
        pair = self.rows[position].versus
        if pair is None:
            return ""
        above = f"#{self.rows[pair.first].rank}"
        if pair.status == INCOMPARABLE:
            return f"comparable with no rank above ({above}: {escape(pair.reason)})"
        if pair.status == UNTESTED:
            return f"not tested against {above}: {escape(pair.reason)}"
        return f"{pair.status} from {above} at {100 * LEVEL:g} % ({_difference(pair)})"

    def _significance_lines(self) -> list[str]:
        """Under the ranked table: what each mark says, then every pair of models with its verdict (nothing when
        no pair could be tested: the note on the missing predictions says why)."""
        if all(p.status == UNTESTED for p in self.pairs):
            return []
        lines = ["", f"Significance: a paired bootstrap of the difference in {md_code(self.sort)} over the images "
                     f"both models scored ({self.bootstrap['resamples']} resamples, seed {self.bootstrap['seed']}); "
                     f"`=`: not separated at {100 * LEVEL:g} % from the nearest rank above it can be compared with, "
                     "`?`: comparable with no rank above", ""]
        lines += [f"- #{row.rank} {md_escape(row.label)}: {self.mark_words(k, md_escape)}"
                  for k, row in enumerate(self.rows) if _mark(row)]
        lines += ["", f"| pair | difference (first minus second) | {100 * LEVEL:g} % interval | verdict |",
                  "|---|---:|---|---|"]
        for pair in self.pairs:
            a, b = self.rows[pair.first], self.rows[pair.second]
            lines.append(f"| #{a.rank} {md_escape(a.label)} vs #{b.rank} {md_escape(b.label)} | "
                         f"{_fmt(pair.difference, signed=True)} | {_bracket(pair)} | "
                         f"{pair.status}{': ' + md_escape(pair.reason) if pair.reason else ''} |")
        return lines

    def csv_text(self) -> str:
        """The table as CSV; with ImageNet-P columns, `imagenet_p_scored` says what each model's means are over
        (models comparable there when it is equal)."""
        ids = self.columns
        scored = ["imagenet_p_scored"] if self.p_columns else []
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["rank", "model", "label", "results_folder", "data", *ids,
                         *(f"er_{t.id}" for t in self.shift_tasks),
                         *(f"{i}_ci_{end}" for i in ids for end in ("low", "high")),
                         *(f"er_{t.id}_ci_{end}" for t in self.shift_tasks for end in ("low", "high")),
                         "vs_rank", "vs_rank_verdict", *scored])
        for row in self.rows:
            versus = row.versus
            writer.writerow([row.rank, row.model, row.label, row.folder, row.data,
                             *(_round(row.values.get(i), DIGITS.get(i, 2)) for i in ids),
                             *(_round(row.effective_robustness.get(t.id)) for t in self.shift_tasks),
                             *(end for i in ids for end in _ends(row.intervals.get(i), DIGITS.get(i, 2))),
                             *(end for t in self.shift_tasks for end in _ends(row.er_intervals.get(t.id))),
                             self.rows[versus.first].rank if versus else "", versus.status if versus else "",
                             *([row.imagenet_p] if scored else [])])
        return buffer.getvalue()

    def write(self, out, plots: bool = True) -> dict:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"leaderboard": out / "leaderboard.md", "leaderboard_csv": out / "leaderboard.csv"}
        paths["leaderboard"].write_text(self.markdown() + "\n", encoding="utf-8")
        paths["leaderboard_csv"].write_text(self.csv_text(), encoding="utf-8")
        made = None
        if plots and self.shift_tasks and any(CLEAN in r.values for r in self.rows):
            made = draw_plot(self.plot, out / PLOT_FILE)  # a failed plot is a warning: the tables are written
        if made:
            paths["effective_robustness"] = made
        else:
            remove_stale_plot(out / PLOT_FILE)
        from .leaderboard_html import write_leaderboard_html

        paths["leaderboard_html"] = write_leaderboard_html(self, out / HTML_FILE, plot=made)
        return paths

    def plot(self, path) -> Path:
        """One panel per shift: each model's shifted vs clean top-1 on logit axes, the fit and y = x."""
        tasks = self.shift_tasks
        cols = min(3, len(tasks))
        rows = math.ceil(len(tasks) / cols)
        with plain_text_figure(path, figsize=(4.2 * cols, 3.9 * rows)) as fig:
            self._draw(fig.subplots(rows, cols, squeeze=False), tasks)
            fig.tight_layout(rect=(0, 0.08, 1, 0.96))
        return Path(path)

    def _draw(self, axes, tasks) -> None:
        import matplotlib.pyplot as plt
        import numpy as np
        from matplotlib.ticker import FuncFormatter

        fig = axes.flat[0].figure
        colors = plt.cm.tab10.colors
        percent = FuncFormatter(lambda v, _: f"{100 * v:g}")
        for ax, task in zip(axes.flat, tasks):
            for i, row in enumerate(self.rows):
                if CLEAN in row.values and task.id in row.values:
                    x, y = _clip(row.values[CLEAN]), _clip(row.values[task.id])
                    ax.scatter(x, y, color=colors[i % 10], s=30, zorder=3, label=row.label)
                    xerr, yerr = _bar(x, row.intervals.get(CLEAN)), _bar(y, row.intervals.get(task.id))
                    if xerr or yerr:  # the 95 % intervals of both accuracies
                        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor=colors[i % 10], elinewidth=0.8,
                                    capsize=2, zorder=2)
            ax.set_xscale("logit")
            ax.set_yscale("logit")
            low, high = ax.get_xlim()
            xs = _sigmoid(np.linspace(_logit(low), _logit(high), 100))  # evenly spaced on the logit axis
            ax.plot(xs, xs, linestyle=":", color="grey", linewidth=1, label="y = x")
            fit = self.fits.get(task.id)
            if fit:
                ax.plot(xs, _sigmoid(fit[0] * _logit(xs) + fit[1]), color="black", linewidth=1.2, label="linear fit")
            ax.set_xlim(low, high)
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(percent)
                axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            ax.set_xlabel("clean top-1 (%, logit scale)")
            ax.set_ylabel(f"{task.id} (%, logit scale)")
            ax.set_title(task.id, fontsize=9)
        for ax in list(axes.flat)[len(tasks):]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7, frameon=False)
        fig.suptitle("Effective robustness: shifted vs clean top-1 across models", fontsize=10)


def _fmt(value, signed: bool = False, digits: int = 2) -> str:
    """Two decimals (or `digits`); a value that rounds to zero is `0.00`, never `-0.00` (nor `+0.00`)."""
    if value is None:
        return "-"
    value = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{value:+.{digits}f}" if signed and value else f"{value:.{digits}f}"


def _pm(ci, digits: int = 2) -> str:
    """` ± 1.23`: the half-width of a (low, high) interval, or nothing without one."""
    return "" if ci is None else f" ± {(ci[1] - ci[0]) / 2:.{digits}f}"


def _mark(row: Row) -> str:
    """` =` or ` ?` after the rank, or nothing for a rank separated from the one above (or the first)."""
    sign = MARKS.get(row.versus.status) if row.versus else None
    return f" {sign}" if sign else ""


def _bracket(pair) -> str:
    """`[-1.20, +2.10]`, or `-` for a pair that was not compared."""
    if pair.low is None:
        return "-"
    return f"[{_fmt(pair.low, signed=True)}, {_fmt(pair.high, signed=True)}]"


def _difference(pair) -> str:
    return f"{_fmt(pair.difference, signed=True)} {_bracket(pair)}"


def _ends(ci, digits: int = 2) -> tuple:
    return ("", "") if ci is None else (_round(ci[0], digits), _round(ci[1], digits))


def _bar(value: float, ci) -> list | None:
    """matplotlib's asymmetric error for one point at `value` (a clipped fraction) from a (low, high) in %."""
    if ci is None:
        return None
    return [[max(0.0, value - _clip(ci[0]))], [max(0.0, _clip(ci[1]) - value)]]


def _line(slope: float, intercept: float) -> str:
    """`0.803 x − 1.362`: the sign of the intercept is the operator, and a minus is a minus sign."""
    slope, intercept = round(slope, 3) + 0.0, round(intercept, 3) + 0.0  # + 0.0: no `-0.000`
    sign = MINUS if slope < 0 else ""
    return f"{sign}{abs(slope):.3f} x {MINUS if intercept < 0 else '+'} {abs(intercept):.3f}"


def _round(value, digits: int = 2):
    return "" if value is None else round(value, digits) + 0.0


def _clip(percent: float) -> float:
    return min(max(percent / 100, EPS), 1 - EPS)


def _logit(p):
    import numpy as np

    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _sigmoid(z):
    import numpy as np

    return 1 / (1 + np.exp(-z))


def find_results(paths) -> list[tuple[Path, dict]]:
    """(folder, results) for each path: a results.json, or a folder searched recursively for every
    results.json in it (the OUT of `shift-hub evaluate`, of `evaluate M1 M2 ...`, or both). Each one is
    checked before anything is ranked; a file reached twice through two paths is read once."""
    found, seen = [], set()
    for given in paths:
        for file in _results_files(Path(given)):
            if file.resolve() not in seen:
                seen.add(file.resolve())
                found.append((file.parent, _read_results(file)))
    return found


def _results_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise LeaderboardError(f"{path}: no such file or folder (give results folders written by "
                               "`shift-hub evaluate --out`)")
    files = sorted(path.rglob("results.json"), key=lambda f: (len(f.parts), f))  # OUT's own first
    if not files:
        raise LeaderboardError(f"{path}: no results.json here or in its subfolders (give results folders "
                               "written by `shift-hub evaluate --out`)")
    return files


def _read_results(file: Path) -> dict:
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LeaderboardError(f"{file}: cannot be read as JSON ({type(exc).__name__}); rerun the "
                               "evaluation that wrote it") from None
    if not isinstance(results, dict) or "metrics" not in results or "model" not in results:
        raise LeaderboardError(f"{file}: not a results.json of `shift-hub evaluate` (no metrics/model); "
                               "suite reports are not ranked here")
    problem = results_problem(results)
    if problem:
        raise LeaderboardError(f"{file}: {problem}; rerun the evaluation that wrote it")
    return results


def results_problem(results: dict) -> str | None:
    """The first field of a results document the leaderboard cannot rank from (`field is X, not Y`), or None:
    a string or percent top-1 must be an error naming the field, never a TypeError or a wrong rank."""
    for key in ("model", "data", "metrics"):
        if not isinstance(results.get(key), dict):
            return f"{key} is {_kind(results.get(key))}, not an object"
    model, data = results["model"], results["data"]
    if not isinstance(model.get("id"), str) or not model["id"].strip():
        return f"model.id is {_kind(model.get('id'))}, not a model name"
    for where, doc, keys in (("model", model, ("adapter", "spec", "revision", "weights_sha256")),
                             ("data", data, ("dataset_id", "source", "resolved_revision", "provenance_sha256"))):
        for key in keys:
            if doc.get(key) is not None and not isinstance(doc[key], str):
                return f"{where}.{key} is {_kind(doc[key])}, not text"
    if results.get("created") is not None and not isinstance(results["created"], str):
        return f"created is {_kind(results['created'])}, not a date"
    for config, m in results["metrics"].items():
        problem = _metric_problem(f"metrics.{config}", m)
        if problem:
            return problem
    gap = next((p for block, field, _ in GAP_FIELDS.values()
                if (p := _gap_problem(results.get("summary"), block, field))), None)
    return gap or _imagenet_p_problem(results.get("summary"))


def _gap_problem(summary, block: str, field: str) -> str | None:
    """summary.BLOCK.FIELD (a gap column: watermark_gap, in9_bg_gap) must be a difference of fractions or null."""
    g = summary.get(block) if isinstance(summary, dict) else None
    if g is None:
        return None
    if not isinstance(g, dict):
        return f"summary.{block} is {_kind(g)}, not an object"
    gap = g.get(field)
    if gap is None or (isinstance(gap, float) and math.isnan(gap)):
        return None
    if not isinstance(gap, (int, float)) or isinstance(gap, bool) or not -1 <= gap <= 1:
        return f"summary.{block}.{field} is {_kind(gap)}, not a difference of fractions in [-1, 1] or null"
    return None


# summary.imagenet_p fields the ImageNet-P columns read: field -> (lowest, highest, what it must be)
P_FIELDS = {"mean_flip_probability": (0, 1, "a fraction in [0, 1]"),
            "mean_top5_distance": (0, math.inf, "a distance >= 0"),
            "mfr": (0, math.inf, "a ratio >= 0"), "mt5d": (0, math.inf, "a ratio >= 0")}


def _imagenet_p_problem(summary) -> str | None:
    """summary.imagenet_p (the ImageNet-P columns): its means and ratios numbers in range or null, their
    intervals {ci_low <= ci_high}, the perturbations they are over a list of names, the difficulty a stride."""
    p = summary.get("imagenet_p") if isinstance(summary, dict) else None
    if p is None:
        return None
    if not isinstance(p, dict):
        return f"summary.imagenet_p is {_kind(p)}, not an object"
    difficulty = p.get("difficulty", 1)
    if not isinstance(difficulty, int) or isinstance(difficulty, bool) or difficulty < 1:
        return f"summary.imagenet_p.difficulty is {_kind(difficulty)}, not a frame stride >= 1"
    names = p.get("perturbations")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return f"summary.imagenet_p.perturbations is {_kind(names)}, not a list of perturbation names"
    for key in ("ci", "per_config", *(ratios for ratios, _ in P_RATIOS.values())):
        if p.get(key) is not None and not isinstance(p[key], dict):
            return f"summary.imagenet_p.{key} is {_kind(p[key])}, not an object"
    ci = p.get("ci") or {}
    for key, (low, high, what) in P_FIELDS.items():
        value = p.get(key)
        if not (value is None or isinstance(value, float) and math.isnan(value)) and not _in_range(value, low, high):
            return f"summary.imagenet_p.{key} is {_kind(value)}, not {what} or null"
        bounds = ci.get(key)
        if bounds is not None and not (isinstance(bounds, dict) and _in_range(bounds.get("ci_low"), -math.inf, math.inf)
                                       and _in_range(bounds.get("ci_high"), bounds["ci_low"], math.inf)):
            return f"summary.imagenet_p.ci.{key} is {_kind(bounds)}, not {{ci_low, ci_high}} numbers, low <= high"
    for ratios, _ in P_RATIOS.values():
        for name, value in (p.get(ratios) or {}).items():
            if not _in_range(value, 0, math.inf):
                return f"summary.imagenet_p.{ratios}.{name} is {_kind(value)}, not a ratio >= 0"
    for config, entry in (p.get("per_config") or {}).items():
        if not isinstance(entry, dict):
            return f"summary.imagenet_p.per_config.{config} is {_kind(entry)}, not an object"
        for raw in ("flip_probability", "top5_distance"):
            value = entry.get(raw)
            if value is not None and not (isinstance(value, float) and math.isnan(value)) \
                    and not _in_range(value, 0, math.inf):
                return f"summary.imagenet_p.per_config.{config}.{raw} is {_kind(value)}, not a number >= 0 or null"
    return None


def _in_range(value, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
        low <= value <= high


def _metric_problem(where: str, m) -> str | None:
    if not isinstance(m, dict):
        return f"{where} is {_kind(m)}, not an object"
    n = m.get("n_scored")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return f"{where}.n_scored is {_kind(n)}, not a count of images"
    top1 = m.get("top1")
    if top1 is None or (isinstance(top1, float) and math.isnan(top1)):  # nothing scorable: written as null
        return None
    if not isinstance(top1, (int, float)) or isinstance(top1, bool) or not 0 <= top1 <= 1:
        return f"{where}.top1 is {_kind(top1)}, not a fraction in [0, 1] or null"
    return None


_JSON_KINDS = {str: "string", bool: "boolean", int: "number", float: "number", list: "list", dict: "object"}


def _kind(value) -> str:
    """`"0.8" (a string)`, `80 (a number)`, `missing or null`: what a field holds, for a one-line error."""
    if value is None:
        return "missing or null"
    kind = _JSON_KINDS.get(type(value), type(value).__name__)
    return f"{json.dumps(value)[:40]} (a {kind})" if isinstance(value, (str, int, float)) else f"a {kind}"


def build_leaderboard(results: list, names=None, sort: str | None = None, bootstrap: int = DEFAULT_RESAMPLES,
                      seed: int = 0) -> Leaderboard:
    """Rank `results` (results.json documents) over the tasks their common configs support; the same model
    scored on the same data twice is one row, with a note naming both files. `names` are the results folders:
    with their predictions.jsonl, `bootstrap` resamples (0: none) give each value its interval and each two
    models their paired comparison."""
    if not results:
        raise LeaderboardError("no results to rank")
    if not isinstance(bootstrap, int) or isinstance(bootstrap, bool) or bootstrap < 0:
        raise LeaderboardError(f"bootstrap must be an integer >= 0 (0 turns intervals off), got {bootstrap!r}")
    names = [str(n) for n in (names or [""] * len(results))]
    results, names, notes = _drop_duplicates(list(results), names)
    scored = [{c for c, m in r["metrics"].items() if m.get("n_scored")} for r in results]
    common = set.intersection(*scored)
    order = list(results[0]["metrics"])
    tasks = tasks_for([c for c in order if c in common])
    if any(s != common for s in scored):
        notes.append("configs scored for only some models are left out: "
                     + ", ".join(md_escape(c) for c in sorted(set.union(*scored) - common)))
    sources = {_data_name(r) for r in results}
    if len(sources) > 1:
        notes.append("the models were scored on different data: " + "; ".join(md_escape(s) for s in sorted(sources)))
    unpaired = sorted({c for r in results for c, m in r["metrics"].items()
                       if c in common and (m.get("drop") or {}).get("shared_only")})
    if unpaired:  # a config over other images than clean: its row and fit compare different images
        notes.append("these configs hold other images than their clean baseline, so their top-1 and effective "
                     "robustness compare different images (each model's drop is on the shared images): "
                     + ", ".join(md_escape(c) for c in unpaired))
    labels = _labels([model_label(r["model"]) for r in results], names)
    rows = [Row(r["model"]["id"], name, {t.id: v for t in tasks if (v := task_value(t, r)) is not None},
                _data_name(r), label=label)
            for label, name, r in zip(labels, names, results)]
    board = Leaderboard(rows, tasks, {}, sort or "", notes)
    _imagenet_p_columns(board, results)
    board.sort = sort or (MEAN if board.shift_tasks else CLEAN if any(t.id == CLEAN for t in tasks)
                          else (tasks[0].id if tasks else _imagenet_p_sort(board)))
    for row in rows:
        shifted = [row.values[t.id] for t in board.shift_tasks if t.id in row.values]
        if shifted:
            row.values[MEAN] = round(sum(shifted) / len(shifted), 2)
    _fit(board)
    sources = list(zip(rows, results, names))  # before _rank reorders the rows
    _rank(board)
    if bootstrap:
        _add_intervals(board, sources, bootstrap, seed)
        _imagenet_p_intervals(board, sources)
        _er_intervals(board)
        _compare(board)
    return board


def _imagenet_p_columns(board: Leaderboard, results: list) -> None:
    """ImageNet-P's mean flip probability and top-5 distance when some model has `summary.imagenet_p`, its mFR and
    mT5D when every model has them; a column whose models were scored on other perturbations or difficulty (or
    normalised by another reference) is marked incomparable, with a note saying why. `results` is in row order."""
    blocks = [imagenet_p_block(r) for r in results]
    if not any(blocks):
        return
    ratios = [c for c in P_RATIOS if all(b and imagenet_p_value(r, c)[0] is not None for b, r in zip(blocks, results))]
    board.p_columns = [*P_MEANS, *ratios]
    for row, r in zip(board.rows, results):
        row.imagenet_p = imagenet_p_scored(r)
        for column in board.p_columns:
            value, _ = imagenet_p_value(r, column)
            if value is not None:
                row.values[column] = value
    scored = {row.label: row.imagenet_p for row in board.rows if row.imagenet_p}
    if len(set(scored.values())) > 1:
        reason = ("the models were scored on different ImageNet-P perturbations or difficulty ("
                  + "; ".join(f"{label}: {words}" for label, words in scored.items()) + ")")
        board.p_incomparable = dict.fromkeys(board.p_columns, reason)
    else:
        labelled = [(row.label, r) for row, r in zip(board.rows, results)]
        board.p_incomparable = {c: why for c in ratios if (why := imagenet_p_reference_difference(labelled, c))}
    for reason in dict.fromkeys(board.p_incomparable.values()):  # one note per reason, its columns named
        columns = [c for c, why in board.p_incomparable.items() if why == reason]
        board.notes.append(f"{', '.join(md_code(c) for c in columns)} incomparable (marked ?): {md_escape(reason)}")
    board.notes.append("ImageNet-P columns come from each results.json's `summary.imagenet_p` (lower is better): the "
                       "mean flip probability (%) and top-5 distance (rank positions) over its benchmark perturbations"
                       + (", mFR / mT5D normalised by the AlexNet reference (%)" if ratios else "")
                       + "; their ± are the intervals `evaluate` wrote (a bootstrap over source images), not "
                       "resampled here, and no two models are compared pairwise on them")


def _imagenet_p_sort(board: Leaderboard) -> str:
    """The default ranking column of results with no task column: mFR, else the mean flip probability, if
    comparable; '' when neither is (_rank then says why)."""
    return next((c for c in ("imagenet_p_mfr", "imagenet_p_flip_probability")
                 if c in board.p_columns and c not in board.p_incomparable), "")


def _imagenet_p_intervals(board: Leaderboard, sources: list) -> None:
    """Each ImageNet-P value's interval, as its results.json gives it."""
    for row, results, _ in sources:
        for column in board.p_columns:
            _, ci = imagenet_p_value(results, column)
            if ci is not None and column in row.values:
                row.intervals[column] = ci


def _add_intervals(board: Leaderboard, sources: list, resamples: int, seed: int) -> None:
    """Each row's interval per column, from the predictions.jsonl in its results folder (a row without one
    keeps its values bare, and a note says why)."""
    board.bootstrap = {"method": METHOD, "resamples": resamples, "seed": seed, "level": LEVEL}
    configs = list(dict.fromkeys(c for t in board.tasks for c in t.configs))
    if not configs:  # only ImageNet-P columns: nothing in predictions.jsonl to resample
        for row, results, _ in sources:
            row.identity = data_identity(results, row.data)
        return
    mean_of = [t.id for t in board.shift_tasks]
    missing = []
    for row, results, name in sources:
        row.identity = data_identity(results, row.data)
        cells, why = read_predictions(name, configs)
        if cells is not None:
            row.stats, why = model_stats(cells, results, board.tasks, mean_of, MEAN, resamples, seed)
        if row.stats is None:
            row.why_no_intervals = why
            missing.append(f"{md_escape(row.label)} ({md_escape(why)})")
            continue
        row.intervals = {k: ci for k, v in row.stats.samples.items()
                         if k in row.values and (ci := interval_of(v)) is not None}
    if missing:
        board.notes.append("no intervals or significance for " + "; ".join(missing))


def _er_intervals(board: Leaderboard) -> None:
    """Effective robustness per resample of the model's own clean and shifted top-1, the fitted line fixed."""
    import numpy as np

    for task in board.shift_tasks:
        fit = board.fits.get(task.id)
        for row in board.rows if fit else []:
            samples = row.stats.samples if row.stats else {}
            if task.id in row.effective_robustness and CLEAN in samples and task.id in samples:
                predicted = _sigmoid(fit[0] * _logit(samples[CLEAN] / 100) + fit[1])
                er = 100 * (np.clip(samples[task.id] / 100, EPS, 1 - EPS) - predicted)
                if (ci := interval_of(er)) is not None:
                    row.er_intervals[task.id] = ci


def _compare(board: Leaderboard) -> None:
    """Every two rows ranked by the sort column, paired; each rank's verdict is against the nearest rank above it
    that it could be compared with (a model on other data in between does not hide whether it is separated), or,
    when there is none, against the rank right above."""
    ranked = [k for k, r in enumerate(board.rows) if board.sort in r.values]
    entries = [(k, board.rows[k].identity, board.rows[k].stats, board.rows[k].why_no_intervals) for k in ranked]
    board.pairs = [compare(a, b, board.sort) for n, a in enumerate(entries) for b in entries[n + 1:]]
    if board.sort in board.p_columns:  # only whether they are on the same data is said
        board.pairs = [Pair(p.first, p.second, UNTESTED, reason=P_UNTESTED) if p.status == UNTESTED else p
                       for p in board.pairs]
    index = {(p.first, p.second): p for p in board.pairs}
    for k in ranked[1:]:
        above = [index[j, k] for j in range(k - 1, -1, -1)]
        board.rows[k].versus = next((p for p in above if p.status in (SEPARATED, NOT_SEPARATED)), above[0])


def model_label(model: dict) -> str:
    """The model id with its source, so a timm and a torchvision resnet18 read differently: `hf-hub:` for a
    Hub checkpoint given so, else the adapter (`timm:resnet18`, `torchvision:resnet18`, `transformers:org/vit`)."""
    model_id = str(model["id"])
    source = "hf-hub" if str(model.get("spec") or "").startswith("hf-hub:") else model.get("adapter")
    if not source:
        return model_id
    name = model_id.removeprefix(f"{source}/")  # torchvision records `torchvision/resnet18`
    return name if name.startswith(f"{source}:") else f"{source}:{name}"


def _same_run_key(results: dict) -> tuple:
    """What makes two results the same model on the same data: the id with its source and weights, and the
    data pinned with the images taken from it."""
    model, options = results["model"], results.get("options") or {}
    scored = tuple(sorted(c for c, m in results["metrics"].items() if m.get("n_scored")))
    sequences = tuple(sorted((imagenet_p_block(results) or {}).get("per_config") or {}))  # not in metrics
    return (model_label(model), model["id"], model.get("revision"), model.get("weights_sha256"),
            _data_name(results), scored, sequences, imagenet_p_scored(results), options.get("limit"),
            options.get("label_space"))


def _drop_duplicates(results: list, names: list) -> tuple[list, list, list]:
    """One row per (model, data): the newest run where one was found twice, and a note naming every file."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(results):
        groups.setdefault(_same_run_key(r), []).append(i)
    kept, notes = [], []
    for indices in groups.values():
        chosen = max(indices, key=lambda i: (str(results[i].get("created") or ""), -i))
        kept.append(chosen)
        if len(indices) > 1:
            files = [_results_file(names[i]) for i in indices]
            differ = len({json.dumps(results[i]["metrics"], sort_keys=True) for i in indices}) > 1
            notes.append(f"{md_escape(model_label(results[chosen]['model']))} on "
                         f"{md_escape(_data_name(results[chosen]))} was found {len(indices)} times "
                         f"({', '.join(md_escape(f) for f in files)}); ranked once, from "
                         f"{md_escape(_results_file(names[chosen]))}"
                         + (" (their scores differ: the newest run is ranked)" if differ else ""))
    kept.sort()
    return [results[i] for i in kept], [names[i] for i in kept], notes


def _results_file(name: str) -> str:
    if not name:
        return "(not written)"
    return name if name.endswith(".json") else str(Path(name) / "results.json")


def _data_name(results: dict) -> str:
    data = results["data"]
    name = data.get("dataset_id") or data.get("source", "?")
    pin = data.get("resolved_revision") or data.get("provenance_sha256")
    return f"{name}@{pin[:12]}" if pin else str(name)


def _labels(labels: list[str], names: list[str]) -> list[str]:
    """Model labels, with the results folder added where two rows would read the same."""
    return [f"{i} ({Path(n).name})" if labels.count(i) > 1 and n else i for i, n in zip(labels, names)]


def _fit(board: Leaderboard) -> None:
    import numpy as np

    for task in board.shift_tasks:
        pairs = [(r, r.values[CLEAN], r.values[task.id]) for r in board.rows
                 if CLEAN in r.values and task.id in r.values]
        x = _logit(np.array([c / 100 for _, c, _ in pairs]))
        if len(pairs) < 2 or np.ptp(x) == 0:
            board.fits[task.id] = None
            continue
        y = _logit(np.array([s / 100 for _, _, s in pairs]))
        slope, intercept = np.polyfit(x, y, 1)
        board.fits[task.id] = (float(slope), float(intercept))
        for row, clean, shifted in pairs:  # in the clipped accuracies the fit and the plot see
            predicted = float(_sigmoid(slope * _logit(clean / 100) + intercept))
            row.effective_robustness[task.id] = 100 * (_clip(shifted) - predicted)
    if any(board.fits.values()) and len(board.rows) == 2:
        board.notes.append("with two models the line passes through both, so effective robustness is 0 by "
                           "construction; rank three or more models for a meaningful fit")
    if board.shift_tasks and not any(CLEAN in r.values for r in board.rows):
        board.notes.append("no `clean` config in common: effective robustness needs clean top-1")


def _rank(board: Leaderboard) -> None:
    known = {t.id: t.higher_is_better for t in board.tasks}
    if board.shift_tasks:
        known[MEAN] = True
    if board.sort in board.p_incomparable:
        raise LeaderboardError(f"--sort {board.sort}: cannot rank by it, {board.p_incomparable[board.sort]}; "
                               "evaluate the models on the same imagenet_p configs and --p-difficulty")
    known.update((c, False) for c in board.p_columns if c not in board.p_incomparable)  # lower is steadier
    if not known:
        because = (f", and their ImageNet-P columns cannot rank them: {next(iter(board.p_incomparable.values()))}"
                   if board.p_incomparable else "")
        raise LeaderboardError(f"the results share no config any eval.yaml task covers{because}; evaluate the "
                               "models on the same configs")
    if board.sort not in known:
        raise LeaderboardError(f"--sort {board.sort}: not a column here (choose from {', '.join(known)})")
    higher = known[board.sort]
    present = [r for r in board.rows if board.sort in r.values]
    present.sort(key=lambda r: r.values[board.sort], reverse=higher)
    board.rows = present + [r for r in board.rows if board.sort not in r.values]
    for i, row in enumerate(board.rows, 1):
        row.rank = i


def leaderboard(paths, out, sort: str | None = None, plots: bool = True, bootstrap: int = DEFAULT_RESAMPLES,
                seed: int = 0) -> tuple[Leaderboard, dict]:
    """`shift-hub leaderboard RESULTS... --out DIR`: read, rank, compare, write markdown, CSV, plots and page."""
    found = find_results(paths)
    board = build_leaderboard([r for _, r in found], names=[str(f) for f, _ in found], sort=sort,
                              bootstrap=bootstrap, seed=seed)
    return board, board.write(out, plots=plots)

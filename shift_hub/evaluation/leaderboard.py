"""Many results folders -> one ranked table (markdown + CSV) and effective-robustness plots.

Columns are the eval.yaml tasks (hub/eval_yaml.py) over the configs every model was scored on, so all
rows compare like with like. Effective robustness follows Taori et al. 2020 and Miller et al. 2021
("accuracy on the line"): per shift, a line is fitted across the models to logit(shifted top-1) against
logit(clean top-1); a model's effective robustness is its shifted top-1 minus the line's prediction at its
clean top-1, in accuracy points.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..hub.eval_yaml import tasks_for
from .eval_results import task_value

CLEAN = "clean_top1"
BASELINES = ("clean_top1", "clean_full_top1")
EPS = 1e-3  # accuracies are clipped to [EPS, 1 - EPS] before the logit (0 % or 100 % has no logit)
MEAN = "mean_shifted_top1"


class LeaderboardError(ValueError):
    """Results that cannot be ranked; the message names the path and the fix."""


@dataclass
class Row:
    model: str
    folder: str
    values: dict  # task id -> value in %
    data: str
    effective_robustness: dict = field(default_factory=dict)  # task id -> accuracy points above the fit
    rank: int = 0


@dataclass
class Leaderboard:
    rows: list
    tasks: list  # Task, the table's columns
    fits: dict  # shift task id -> (slope, intercept) in logit space, or None
    sort: str
    notes: list = field(default_factory=list)

    @property
    def shift_tasks(self) -> list:
        return [t for t in self.tasks if t.metric in ("top1", "mean_top1") and t.id not in BASELINES]

    def markdown(self) -> str:
        ids = [t.id for t in self.tasks] + ([MEAN] if self.shift_tasks else [])
        lines = [f"Ranked by `{self.sort}` ({len(self.rows)} models; values in %; mCE: lower is better)", "",
                 "| rank | model | " + " | ".join(f"`{i}`" for i in ids) + " |",
                 "|---:|---|" + "---:|" * len(ids)]
        for row in self.rows:
            lines.append(f"| {row.rank} | {row.model} | " + " | ".join(_fmt(row.values.get(i)) for i in ids) + " |")
        fitted = [t for t in self.shift_tasks if self.fits.get(t.id)]
        if fitted:
            lines += ["", "Effective robustness: accuracy points above the line fitted across these models to "
                          "logit(shifted top-1) vs logit(clean top-1) (Taori et al. 2020; Miller et al. 2021)", "",
                      "| model | " + " | ".join(f"`{t.id}`" for t in fitted) + " |", "|---|" + "---:|" * len(fitted)]
            for row in self.rows:
                lines.append(f"| {row.model} | " + " | ".join(_fmt(row.effective_robustness.get(t.id), signed=True)
                                                             for t in fitted) + " |")
            lines += ["", "Fits (logit space): " + "; ".join(
                f"`{t.id}` = {self.fits[t.id][0]:.3f} x + {self.fits[t.id][1]:.3f}" for t in fitted)]
        lines += ["", *(f"Note: {n}" for n in self.notes)] if self.notes else []
        return "\n".join(lines)

    def csv_text(self) -> str:
        ids = [t.id for t in self.tasks] + ([MEAN] if self.shift_tasks else [])
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["rank", "model", "results_folder", "data", *ids, *(f"er_{t.id}" for t in self.shift_tasks)])
        for row in self.rows:
            writer.writerow([row.rank, row.model, row.folder, row.data, *(row.values.get(i, "") for i in ids),
                             *(_round(row.effective_robustness.get(t.id)) for t in self.shift_tasks)])
        return buffer.getvalue()

    def write(self, out, plots: bool = True) -> dict:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"leaderboard": out / "leaderboard.md", "leaderboard_csv": out / "leaderboard.csv"}
        paths["leaderboard"].write_text(self.markdown() + "\n", encoding="utf-8")
        paths["leaderboard_csv"].write_text(self.csv_text(), encoding="utf-8")
        if plots and self.shift_tasks and any(CLEAN in r.values for r in self.rows):
            paths["effective_robustness"] = self.plot(out / "effective_robustness.png")
        return paths

    def plot(self, path) -> Path:
        """One panel per shift: each model's shifted vs clean top-1 on logit axes, the fit and y = x."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
        from matplotlib.ticker import FuncFormatter

        tasks = self.shift_tasks
        cols = min(3, len(tasks))
        rows = math.ceil(len(tasks) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.9 * rows), squeeze=False)
        colors = plt.cm.tab10.colors
        percent = FuncFormatter(lambda v, _: f"{100 * v:g}")
        for ax, task in zip(axes.flat, tasks):
            for i, row in enumerate(self.rows):
                if CLEAN in row.values and task.id in row.values:
                    ax.scatter(_clip(row.values[CLEAN]), _clip(row.values[task.id]), color=colors[i % 10], s=30,
                               zorder=3, label=row.model)
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
        fig.tight_layout(rect=(0, 0.08, 1, 0.96))
        path = Path(path)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _fmt(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _round(value):
    return "" if value is None else round(value, 2)


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
    """(folder, results) for each path: a results.json, a folder holding one, or a folder whose subfolders
    do (the OUT of `shift-hub evaluate M1 M2 ...`)."""
    found = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            files = [path]
        elif (path / "results.json").is_file():
            files = [path / "results.json"]
        elif path.is_dir():
            files = sorted(path.glob("*/results.json"))
        else:
            raise LeaderboardError(f"{path}: no such file or folder (give results folders written by "
                                   "`shift-hub evaluate --out`)")
        if not files:
            raise LeaderboardError(f"{path}: no results.json here or in its subfolders (give results folders "
                                   "written by `shift-hub evaluate --out`)")
        for file in files:
            try:
                results = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise LeaderboardError(f"{file}: cannot be read as JSON ({type(exc).__name__}); rerun the "
                                       "evaluation that wrote it") from None
            if not isinstance(results, dict) or "metrics" not in results or "model" not in results:
                raise LeaderboardError(f"{file}: not a results.json of `shift-hub evaluate` (no metrics/model); "
                                       "suite reports are not ranked here")
            found.append((file.parent, results))
    return found


def build_leaderboard(results: list, names=None, sort: str | None = None) -> Leaderboard:
    """Rank `results` (results.json documents) over the tasks their common configs support."""
    if not results:
        raise LeaderboardError("no results to rank")
    names = [str(n) for n in (names or [""] * len(results))]
    scored = [{c for c, m in r["metrics"].items() if m.get("n_scored")} for r in results]
    common = set.intersection(*scored)
    order = list(results[0]["metrics"])
    tasks = tasks_for([c for c in order if c in common])
    notes = []
    if any(s != common for s in scored):
        notes.append("configs scored for only some models are left out: "
                     + ", ".join(sorted(set.union(*scored) - common)))
    sources = {_data_name(r) for r in results}
    if len(sources) > 1:
        notes.append("the models were scored on different data: " + "; ".join(sorted(sources)))
    labels = _labels([r["model"]["id"] for r in results], names)
    rows = [Row(label, name, {t.id: v for t in tasks if (v := task_value(t, r)) is not None}, _data_name(r))
            for label, name, r in zip(labels, names, results)]
    board = Leaderboard(rows, tasks, {}, sort or "", notes)
    board.sort = sort or (MEAN if board.shift_tasks else CLEAN if any(t.id == CLEAN for t in tasks)
                          else (tasks[0].id if tasks else ""))
    for row in rows:
        shifted = [row.values[t.id] for t in board.shift_tasks if t.id in row.values]
        if shifted:
            row.values[MEAN] = round(sum(shifted) / len(shifted), 2)
    _fit(board)
    _rank(board)
    return board


def _data_name(results: dict) -> str:
    data = results["data"]
    name = data.get("dataset_id") or data.get("source", "?")
    pin = data.get("resolved_revision") or data.get("provenance_sha256")
    return f"{name}@{pin[:12]}" if pin else str(name)


def _labels(ids: list[str], names: list[str]) -> list[str]:
    """Model ids, with the results folder added where two rows would read the same."""
    return [f"{i} ({Path(n).name})" if ids.count(i) > 1 and n else i for i, n in zip(ids, names)]


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
    if not known:
        raise LeaderboardError("the results share no config any eval.yaml task covers; evaluate the models on "
                               "the same configs")
    if board.sort not in known:
        raise LeaderboardError(f"--sort {board.sort}: not a column here (choose from {', '.join(known)})")
    higher = known[board.sort]
    present = [r for r in board.rows if board.sort in r.values]
    present.sort(key=lambda r: r.values[board.sort], reverse=higher)
    board.rows = present + [r for r in board.rows if board.sort not in r.values]
    for i, row in enumerate(board.rows, 1):
        row.rank = i


def leaderboard(paths, out, sort: str | None = None, plots: bool = True) -> tuple[Leaderboard, dict]:
    """`shift-hub leaderboard RESULTS... --out DIR`: read, rank, write markdown, CSV and plots."""
    found = find_results(paths)
    board = build_leaderboard([r for _, r in found], names=[str(f) for f, _ in found], sort=sort)
    return board, board.write(out, plots=plots)

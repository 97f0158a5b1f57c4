"""Outputs that are shared can be trusted: plots draw any name as plain text and never cost the other outputs
or models, markdown carries user data inert, a rewritten results folder holds one run only, a bad results.json
is one line naming the file and field, the leaderboard finds every results.json once, and its text reads right.

Results come from the real embedded EfficientNet-Lite0 on two sample photos of two configs (module fixture)."""
from __future__ import annotations

import copy
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shift_hub.evaluation import leaderboard, report

HOSTILE = "<script>alert(1)</script>"
DOLLARS = "lite$x_$"  # mathtext would parse `$x_$` as a formula and fail on it


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """(data folder, results folder, EvaluationResult) of one real evaluate on clean + gaussian_noise_1."""
    import shift_hub
    from shift_hub.generate import generate

    root = tmp_path_factory.mktemp("trust_outputs")
    generate(["clean", "gaussian_noise_1"], "samples", root / "data", limit=2, progress=False)
    result = shift_hub.evaluate("efficientnet_lite0", str(root / "data"), out=root / "results", device="cpu",
                                num_workers=0)
    return root / "data", root / "results", result


def _results(evaluated, **model) -> dict:
    """A deep copy of the real results with the model record changed."""
    results = copy.deepcopy(evaluated[2].results)
    results["model"].update(model)
    return results


def _with_configs(results: dict, renames: dict) -> dict:
    """`results` with configs renamed (metrics, counts, severity curves), as a folder of such names gives."""
    results["metrics"] = {renames.get(k, k): v for k, v in results["metrics"].items()}
    results["counts"] = {renames.get(k, k): v for k, v in results["counts"].items()}
    curves = results["summary"].get("accuracy_by_severity") or {}
    results["summary"]["accuracy_by_severity"] = {renames.get(k, k) + "$^$": v for k, v in curves.items()}
    return results


def _write(folder: Path, results: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder / "results.json"


def _cells(line: str) -> list[str]:
    """A markdown table line's cells, split only at unescaped pipes (as a renderer splits them)."""
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "shift_hub"]


# --- 1. plots: plain text, and a failing plot costs nothing else -------------------------------------------

def test_dollar_names_are_plain_text_in_every_plot_even_with_usetex(evaluated, tmp_path, caplog, monkeypatch):
    import matplotlib

    monkeypatch.setitem(matplotlib.rcParams, "text.usetex", True)  # a user's matplotlibrc; no LaTeX here
    results = _with_configs(_results(evaluated, id=DOLLARS), {"gaussian_noise_1": "noise$\\frac$"})
    assert results["summary"]["accuracy_by_severity"], "the severity plot must be drawn too"
    paths = report.write_outputs(results, evaluated[2].rows, tmp_path / "one")
    assert paths["accuracy_per_shift"].is_file() and paths["accuracy_vs_severity"].is_file()
    board = leaderboard.build_leaderboard([_results(evaluated, id=DOLLARS), _results(evaluated)], names=["a", "b"])
    assert board.write(tmp_path / "board")["effective_robustness"].is_file()  # the `$` name is in its legend
    assert _warnings(caplog) == []
    with report.plain_text_figure(tmp_path / "probe.png") as fig:  # what every plot draws under
        text = fig.suptitle(DOLLARS)
        assert not text.get_usetex() and not text.get_parse_math()


def test_a_dollar_model_name_in_a_multi_model_run_scores_every_model(evaluated, tmp_path, caplog):
    """Before: mathtext raised in the first model's plot, the second model never ran, no report.html."""
    import shift_hub
    from shift_hub.evaluation.models import load_model

    dollar = load_model("efficientnet_lite0")
    dollar.name = DOLLARS
    many = shift_hub.evaluate_many([dollar, "efficientnet_lite0"], str(evaluated[0]), out=tmp_path, device="cpu",
                                   num_workers=0)
    assert [r.results["model"]["id"] for r in many.results] == [DOLLARS, "efficientnet_lite0"]
    for result in many.results:
        assert result.paths["report_html"].is_file() and result.paths["accuracy_per_shift"].is_file()
    assert (tmp_path / "leaderboard.md").is_file() and _warnings(caplog) == []


def test_a_failing_plot_is_one_warning_and_every_other_output_is_written(evaluated, tmp_path, caplog, monkeypatch):
    import shift_hub

    calls = []

    def fails_once(results, path):
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("renderer broke\nsecond line")
        return real(results, path)

    real = report.plot_accuracy_per_shift
    monkeypatch.setattr(report, "plot_accuracy_per_shift", fails_once)
    many = shift_hub.evaluate_many(["efficientnet_lite0", "efficientnet_lite0"], str(evaluated[0]), out=tmp_path,
                                   device="cpu", num_workers=0)
    first, second = (Path(r.paths["results"]).parent for r in many.results)
    for folder in (first, second):
        assert (folder / "results.json").is_file() and (folder / "report.html").is_file()
        assert (folder / "accuracy_vs_severity.png").is_file()
    assert not (first / "accuracy_per_shift.png").exists() and (second / "accuracy_per_shift.png").is_file()
    (warning,) = _warnings(caplog)
    assert "accuracy_per_shift.png" in warning and "RuntimeError: renderer broke" in warning
    assert "\n" not in warning


def test_a_failing_leaderboard_plot_is_a_warning_and_the_tables_are_written(evaluated, tmp_path, caplog,
                                                                           monkeypatch):
    board = leaderboard.build_leaderboard([_results(evaluated, id="a"), _results(evaluated, id="b")], names=["a", "b"])
    monkeypatch.setattr(leaderboard.Leaderboard, "plot", lambda self, path: 1 / 0)
    paths = board.write(tmp_path)
    assert paths["leaderboard"].is_file() and paths["leaderboard_csv"].is_file()
    assert "effective_robustness" not in paths and not (tmp_path / "effective_robustness.png").exists()
    (warning,) = _warnings(caplog)
    assert "effective_robustness.png" in warning and "ZeroDivisionError" in warning


# --- 2. markdown outputs carry user data inert -------------------------------------------------------------

def test_table_and_leaderboard_markdown_escape_user_data(evaluated, tmp_path):
    odd_config = "noise|`x`"
    results = _with_configs(_results(evaluated, id=HOSTILE), {"gaussian_noise_1": odd_config})
    results["data"]["source"] = "src`|<b>"
    table = report.markdown_table(results)
    assert "<script>" not in table and "&lt;script&gt;" in table and "<b>" not in table
    header = next(line for line in table.splitlines() if line.startswith("| config"))
    for line in table.splitlines():
        if line.startswith("| ") and odd_config[:6] in line.replace("\\", ""):
            assert len(_cells(line)) == len(_cells(header)), line  # the pipe in the name splits no cell

    board = leaderboard.build_leaderboard([_results(evaluated, id=HOSTILE), _results(evaluated, id="pipe|model")],
                                          names=[str(tmp_path / "a"), str(tmp_path / "b")])
    text = board.write(tmp_path / "board", plots=False)["leaderboard"].read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    rows = [line for line in text.splitlines() if "pipe" in line and line.startswith("|")]
    header = next(line for line in text.splitlines() if line.startswith("| rank"))
    assert rows and all(len(_cells(r)) in (len(_cells(header)), 1 + len(board.shift_tasks)) for r in rows)
    assert "pipe\\|model" in text


# --- 3. a rewritten results folder holds one run ------------------------------------------------------------

def test_plots_of_an_earlier_run_are_removed_and_foreign_files_kept(evaluated, tmp_path):
    import shift_hub

    data, first_run, _ = evaluated
    out = tmp_path / "results"
    shutil.copytree(first_run, out)
    assert (out / "accuracy_vs_severity.png").is_file()  # the first run had a corruption
    Image.new("RGB", (4, 4)).save(out / "photo.png")
    result = shift_hub.evaluate("efficientnet_lite0", str(data), configs=["clean"], out=out, device="cpu",
                                num_workers=0)
    assert "accuracy_vs_severity" not in result.paths
    assert not (out / "accuracy_vs_severity.png").exists()  # would mix this run with the last
    assert (out / "accuracy_per_shift.png").is_file() and (out / "photo.png").is_file()
    assert "data:image/png" in (out / "report.html").read_text()

    Image.new("RGB", (4, 4)).save(out / "accuracy_vs_severity.png")  # someone's file at our name: kept
    report.write_outputs(result.results, result.rows, out, plots=False)
    assert not (out / "accuracy_per_shift.png").exists() and (out / "accuracy_vs_severity.png").is_file()


def test_a_stale_effective_robustness_plot_is_removed(evaluated, tmp_path):
    board = leaderboard.build_leaderboard([_results(evaluated, id="a"), _results(evaluated, id="b")], names=["a", "b"])
    assert "effective_robustness" in board.write(tmp_path)
    board.write(tmp_path, plots=False)
    assert not (tmp_path / "effective_robustness.png").exists()
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.savefig(tmp_path / "effective_robustness.png")  # as versions before the shift_hub tag wrote it
    plt.close(fig)
    board.write(tmp_path, plots=False)
    assert not (tmp_path / "effective_robustness.png").exists()


# --- 4. every results.json the leaderboard reads is checked -------------------------------------------------

@pytest.mark.parametrize("field, value, says", [
    (("metrics", "clean", "top1"), "0.8", 'metrics.clean.top1 is "0.8" (a string)'),
    (("metrics", "clean", "top1"), 80.0, "metrics.clean.top1 is 80.0 (a number), not a fraction in [0, 1]"),
    (("metrics", "clean", "n_scored"), "2", "metrics.clean.n_scored is"),
    (("model", "id"), 7, "model.id is 7 (a number)"),
    (("data", "provenance_sha256"), 1, "data.provenance_sha256 is 1"),
])
def test_a_bad_results_json_is_one_line_naming_file_and_field(evaluated, tmp_path, capsys, field, value, says):
    from shift_hub.cli import main

    good = _write(tmp_path / "good", _results(evaluated, id="good"))
    results = _results(evaluated, id="bad")
    target = results
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    bad = _write(tmp_path / "bad", results)
    with pytest.raises(leaderboard.LeaderboardError) as caught:
        leaderboard.leaderboard([good.parent, bad.parent], tmp_path / "board")
    message = str(caught.value)
    assert message.startswith(f"{bad}: ") and says in message and "\n" not in message
    assert main(["leaderboard", str(tmp_path), "--out", str(tmp_path / "board")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(bad) in err[0] and says in err[0]


# --- 5. every results.json under a folder, each model once ---------------------------------------------------

def test_leaderboard_finds_every_results_json_under_a_folder_and_a_duplicate_once(evaluated, tmp_path):
    """`evaluate(out=R)` then `evaluate_many(..., out=R)`: R/results.json and R/<model>/results.json."""
    import shift_hub
    from shift_hub.evaluation.models import load_model

    data, first_run, _ = evaluated
    out = tmp_path / "results"
    shutil.copytree(first_run, out)  # evaluate(efficientnet_lite0, out=R)
    other = load_model("efficientnet_lite0")
    other.name = "other-model"
    shift_hub.evaluate_many(["efficientnet_lite0", other], str(data), out=out, device="cpu", num_workers=0,
                            plots=False)
    board, _ = leaderboard.leaderboard([out], tmp_path / "board", plots=False)
    assert sorted(r.model for r in board.rows) == ["efficientnet_lite0", "other-model"]  # the flat one and below
    (note,) = [n for n in board.notes if "found 2 times" in n]
    assert str(out / "results.json") in note and str(out / "efficientnet_lite0" / "results.json") in note
    board, _ = leaderboard.leaderboard([out, out / "other-model"], tmp_path / "board", plots=False)
    assert len(board.rows) == 2  # a file reached through two paths is read once


def test_the_same_model_on_other_data_or_weights_is_ranked_separately(evaluated, tmp_path):
    base = _results(evaluated)
    other_data = copy.deepcopy(base)
    other_data["data"]["provenance_sha256"] = "f" * 64
    other_weights = _results(evaluated, weights_sha256="e" * 64)
    for name, results in (("a", base), ("b", other_data), ("c/d", other_weights)):
        _write(tmp_path / "runs" / name, results)
    board, _ = leaderboard.leaderboard([tmp_path / "runs"], tmp_path / "board", plots=False)
    assert len(board.rows) == 3 and not any("found" in n for n in board.notes)


# --- 6. leaderboard text -------------------------------------------------------------------------------------

def _on_line(evaluated, model: dict, clean: float) -> dict:
    """Results whose gaussian_noise_1 top-1 lies on logit(shift) = 0.8 logit(clean) - 1."""
    results = _results(evaluated, **model)
    logit = np.log(clean / (1 - clean))
    results["metrics"]["clean"]["top1"] = clean
    results["metrics"]["gaussian_noise_1"]["top1"] = float(1 / (1 + np.exp(-(0.8 * logit - 1))))
    return results


def test_leaderboard_text_reads_right(evaluated, tmp_path):
    one = leaderboard.build_leaderboard([_results(evaluated)])
    assert "(1 model;" in one.markdown()
    models = [{"id": "resnet18", "adapter": "timm", "spec": "timm:resnet18"},
              {"id": "resnet18", "adapter": "torchvision", "spec": "torchvision:resnet18"},
              {"id": "torchvision/resnet50", "adapter": "torchvision", "spec": "torchvision:resnet50"},
              {"id": "timm/vit_tiny", "adapter": "timm", "spec": "hf-hub:timm/vit_tiny"}]
    board = leaderboard.build_leaderboard([_on_line(evaluated, m, c) for m, c in zip(models, (0.6, 0.7, 0.8, 0.9))],
                                          names=["a", "b", "c", "d"])
    assert sorted(r.label for r in board.rows) == ["hf-hub:timm/vit_tiny", "timm:resnet18", "torchvision:resnet18",
                                                   "torchvision:resnet50"]
    text = board.markdown()
    assert "(4 models;" in text and "| timm:resnet18 |" in text and "| torchvision:resnet18 |" in text
    assert re.search(r"= 0\.8\d\d x \u2212 (1\.0|0\.9)\d\d", text) and "+ -" not in text
    board.rows[0].effective_robustness["imagenet_c_top1"] = -0.004
    board.rows[0].values["clean_top1"] = -0.001
    text = board.markdown()
    assert "-0.00" not in text and "+0.00" not in text and "| 0.00 |" in text
    assert ",-0.0," not in board.csv_text()

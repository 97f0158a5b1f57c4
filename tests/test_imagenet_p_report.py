"""ImageNet-P in the outputs people read (issue 27 item 3): report.html's section with its intervals, the
flip-probability plot, and the leaderboard's ImageNet-P columns, comparable only when the models were scored on
the same perturbations and difficulty (and, for mFR / mT5D, normalised by the same reference).

Every `summary.imagenet_p` here is made by the real summarizer (sequence_scores.summarize_sequences) from
hand-written frame rows: a few sequences of a few frames, no model run."""
from __future__ import annotations

import copy
import csv
import json
import logging
import re
from pathlib import Path

import pytest
from PIL import Image

from conftest import browser_page

from shift_hub.evaluation import leaderboard

P_CONFIGS = ("imagenet_p_gaussian_noise", "imagenet_p_brightness", "imagenet_p_translate")
REFERENCE = {"flip_probability": {"gaussian_noise": 0.2, "brightness": 0.05, "translate": 0.1},
             "top5_distance": {"gaussian_noise": 2.0, "brightness": 1.0, "translate": 1.5}}
SEQUENCES, FRAMES = 6, 5


def _frame_rows(configs=P_CONFIGS, steady: int = 3) -> list[dict]:
    """Frame rows `seq<s>#<k>`: the top-1 changes on every frame k with (k + s + config) % steady == 0, and the
    top-5 list turns with it; a larger `steady` flips less."""
    rows = []
    for c, config in enumerate(configs):
        for s in range(SEQUENCES):
            label = 1
            for k in range(FRAMES):
                if k and (k + s + c) % steady == 0:
                    label = 3 - label  # 1 <-> 2
                top5 = [label, 3 - label, 7, 8, 9] if (k + s) % 2 else [label, 7, 3 - label, 8, 9]
                rows.append({"config": config, "image_id": f"seq{s}#{k}", "pred": label, "top5": top5,
                             "labels": [1], "targets": [1], "correct": label == 1, "scorable": True})
    return rows


def _p_summary(configs=P_CONFIGS, steady: int = 3, difficulty: int = 1, reference=REFERENCE) -> dict:
    from shift_hub.evaluation.sequence_scores import summarize_sequences

    expected = {c: [(f"seq{s}", FRAMES) for s in range(SEQUENCES)] for c in configs}
    return summarize_sequences(_frame_rows(configs, steady), expected, difficulty, reference, resamples=200)


def _clean_rows(right: int, images: int = 20) -> list[dict]:
    return [{"config": "clean", "image_id": f"img{i:03d}", "severity": 0, "labels": [1], "targets": [1],
             "pred": 1 if i < right else 2, "pred_name": "goldfish", "top5": [1 if i < right else 2],
             "confidence": 0.9, "correct": i < right, "correct5": i < right, "scorable": True,
             "label_space": "imagenet-1k"} for i in range(images)]


def _results(model: str = "org/m", clean: int | None = 15, source: str = "/data/p", **p_options) -> tuple[dict, list]:
    """(results.json, predictions rows) as `evaluate` writes them: clean top-1 over 20 images (none when `clean`
    is None: only ImageNet-P sequence configs), and summary.imagenet_p over the frame rows."""
    from shift_hub.evaluation.metrics import summarize
    from shift_hub.evaluation.report import build_results

    configs = ["clean"] if clean is not None else []
    rows = _clean_rows(clean) if clean is not None else []
    scored = summarize(rows, configs, bootstrap=200)
    scored["summary"]["imagenet_p"] = summary = _p_summary(**p_options)
    data = {"source": source, "kind": "local", "split": "validation", "provenance_sha256": "a" * 64,
            "sequence_configs": list(summary["per_config"])}
    results = build_results({"id": model, "adapter": "timm"}, data, configs, scored)
    return results, rows + _frame_rows(tuple(summary["per_config"]), p_options.get("steady", 3))


def _folder(root: Path, name: str, **options) -> Path:
    results, rows = _results(f"org/{name}", **options)
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}"


def _half(ci: dict, scale: float = 100, digits: int = 1) -> str:
    return f"{scale * (ci['ci_high'] - ci['ci_low']) / 2:.{digits}f}"


# --- report.html and the plot ------------------------------------------------------------------------------

def test_report_html_shows_each_config_and_the_means_with_their_intervals(tmp_path):
    from shift_hub.evaluation.html_report import write_report_html

    results, rows = _results(source=str(tmp_path / "gone"))
    p = results["summary"]["imagenet_p"]
    text = write_report_html(results, rows, tmp_path / "report.html").read_text()
    section = text.split('<section id="imagenet-p">', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr>") == len(P_CONFIGS)
    for config, e in p["per_config"].items():
        row = body.split(f'<td data-sort="{config}">{config}</td>', 1)[1].split("</tr>", 1)[0]
        ci = e["ci"]
        assert f">{_pct(e['flip_probability'])} ± {_half(ci['flip_probability'])}</td>" in row, row
        assert f">{e['top5_distance']:.3f} ± {_half(ci['top5_distance'], 1, 3)}</td>" in row, row
        assert f">{SEQUENCES}</td>" in row and f">{e['frames']}</td>" in row and f">{e['compared_to']}</td>" in row
    assert "first frame" in body and "previous frame" in body  # noise against the first frame, others the last
    line = section.split('<p id="imagenet-p-summary">', 1)[1].split("</p>", 1)[0]
    ci = p["ci"]
    assert f"over the 3 of 10 benchmark perturbations present: mean flip probability " \
           f"{_pct(p['mean_flip_probability'])} ± {_half(ci['mean_flip_probability'])} %" in line
    assert f"mean top-5 distance {p['mean_top5_distance']:.3f} ± {_half(ci['mean_top5_distance'], 1, 3)}" in line
    assert f"mFR {_pct(p['mfr'])} ± {_half(ci['mfr'])} %, mT5D {_pct(p['mt5d'])} ± {_half(ci['mt5d'])} %" in line
    assert "(AlexNet-normalised) (partial: the reference or the data lacks some perturbations)" in line
    assert "ImageNet-P mFR" in text.split('<section id="summary">', 1)[1].split("</section>", 1)[0]  # a tile
    assert "3 ImageNet-P sequence config(s)" in text


def test_the_summary_line_carries_the_note_without_a_reference(tmp_path):
    from shift_hub.evaluation.html_report import write_report_html

    results, rows = _results(source=str(tmp_path / "gone"), reference=None)
    text = write_report_html(results, rows, tmp_path / "report.html").read_text()
    line = text.split('<p id="imagenet-p-summary">', 1)[1].split("</p>", 1)[0]
    assert "mFR " not in line.split(";", 1)[0] and "AlexNet-normalised" not in line
    assert line.endswith("; no AlexNet reference given (--p-reference FILE.json), so mFR / mT5D are not computed; "
                         "the raw mean flip probability and top-5 distance are reported")


def test_only_sequence_configs_write_every_output_without_a_warning(tmp_path, caplog):
    """results["metrics"] is empty: report.html shows the ImageNet-P section and no empty per-config table or
    gallery, the accuracy plot is not drawn (no warning), the flip-probability plot is."""
    from shift_hub.evaluation.report import write_outputs

    results, rows = _results(clean=None, source=str(tmp_path))
    assert results["metrics"] == {}
    with caplog.at_level(logging.WARNING, logger="shift_hub"):
        paths = write_outputs(results, rows, tmp_path / "out")
    assert not caplog.records, [r.message for r in caplog.records]
    assert "accuracy_per_shift" not in paths and paths["imagenet_p_flip_probability"].is_file()
    text = paths["report_html"].read_text()
    assert 'id="imagenet-p-table"' in text and 'id="config-table"' not in text and 'id="gallery"' not in text
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 1  # the flip-probability plot, in its section
    assert "| ImageNet-P config |" in paths["table"].read_text()


def test_the_flip_probability_plot_fits_the_page_and_a_stale_one_is_removed(tmp_path):
    from shift_hub.evaluation.report import write_outputs

    results, rows = _results(source=str(tmp_path))
    out = tmp_path / "out"
    paths = write_outputs(results, rows, out)
    with Image.open(paths["imagenet_p_flip_probability"]) as image:
        assert image.size[0] == 1200  # report.html's column, shown 1:1 as the other plots
    page = paths["report_html"].read_text().split('<section id="imagenet-p">', 1)[1].split("</section>", 1)[0]
    assert 'src="data:image/png;base64,' in page
    plain = copy.deepcopy(results)
    del plain["summary"]["imagenet_p"]
    again = write_outputs(plain, [r for r in rows if r["config"] == "clean"], out)
    assert "imagenet_p_flip_probability" not in again and not (out / "imagenet_p_flip_probability.png").exists()
    assert 'id="imagenet-p"' not in again["report_html"].read_text()
    write_outputs(results, rows, out, plots=False)
    assert not (out / "imagenet_p_flip_probability.png").exists()


# --- the leaderboard ---------------------------------------------------------------------------------------

def _docs(*folders) -> list[dict]:
    return [json.loads((f / "results.json").read_text()) for f in folders]


def test_leaderboard_shows_the_imagenet_p_means_with_their_intervals(tmp_path):
    folders = [_folder(tmp_path, "steady", clean=16, steady=4), _folder(tmp_path, "shaky", clean=14, steady=2)]
    board, paths = leaderboard.leaderboard(folders, tmp_path / "board", plots=False)
    assert board.sort == "clean_top1"  # the ImageNet-P columns sit beside the ranking, not in it
    assert board.p_columns == ["imagenet_p_flip_probability", "imagenet_p_top5_distance", "imagenet_p_mfr",
                               "imagenet_p_mt5d"] and not board.p_incomparable
    text = paths["leaderboard"].read_text()
    for folder, row in zip(folders, board.rows):
        p = json.loads((folder / "results.json").read_text())["summary"]["imagenet_p"]
        ci = p["ci"]
        line = next(x for x in text.splitlines() if x.startswith(f"| {row.rank} ") and f"org/{folder.name}" in x)
        assert f"| {_pct(p['mean_flip_probability'])} ± {_half(ci['mean_flip_probability'], digits=2)} |" in line
        assert f"| {p['mean_top5_distance']:.3f} ± {_half(ci['mean_top5_distance'], 1, 3)} |" in line
        assert f"| {_pct(p['mfr'])} ± {_half(ci['mfr'], digits=2)} |" in line
        assert row.intervals["clean_top1"]  # the top-1 columns keep their own resampled interval
    assert "top-5 distance in rank positions" in text and "not resampled here" in text
    shaky, steady = (board.rows[[r.model for r in board.rows].index(m)] for m in ("org/shaky", "org/steady"))
    assert shaky.values["imagenet_p_flip_probability"] > steady.values["imagenet_p_flip_probability"]
    rows = list(csv.DictReader(paths["leaderboard_csv"].open()))
    assert rows[0]["imagenet_p_scored"] == "difficulty 1: brightness, gaussian_noise, translate"
    assert float(rows[0]["imagenet_p_flip_probability_ci_low"]) <= float(rows[0]["imagenet_p_flip_probability"])
    page = paths["leaderboard_html"].read_text()
    assert re.search(r'<td class="num" data-sort="[\d.e-]+">\d+\.\d{3} <span class="pm">± \d+\.\d{3}</span>', page)


def test_no_imagenet_p_columns_without_imagenet_p(tmp_path):
    docs = [_results(f"org/{n}")[0] for n in "ab"]
    for doc in docs:
        del doc["summary"]["imagenet_p"]
    board = leaderboard.build_leaderboard(docs, bootstrap=0)
    assert board.p_columns == [] and "imagenet_p" not in board.markdown() and "imagenet_p" not in board.csv_text()


def test_a_model_without_imagenet_p_has_no_value_and_no_mfr_column(tmp_path):
    with_p, without = _results("org/with")[0], _results("org/without")[0]
    del without["summary"]["imagenet_p"]
    board = leaderboard.build_leaderboard([with_p, without], bootstrap=0)
    assert board.p_columns == ["imagenet_p_flip_probability", "imagenet_p_top5_distance"]  # mFR: not every model
    assert not board.p_incomparable
    line = next(x for x in board.markdown().splitlines() if "org/without" in x)
    assert line.endswith("| - | - |")


@pytest.mark.parametrize("other, says", [
    ({"configs": P_CONFIGS[:2]}, "brightness, gaussian_noise)"),
    ({"difficulty": 2}, "difficulty 2: brightness, translate"),  # no gaussian_noise_2 config: noise left out
])
def test_other_perturbations_or_difficulty_are_incomparable(tmp_path, other, says):
    folders = [_folder(tmp_path, "a"), _folder(tmp_path, "b", **other)]
    board, paths = leaderboard.leaderboard(folders, tmp_path / "board", plots=False)
    assert set(board.p_incomparable) == set(board.p_columns) and board.p_columns
    reason = board.p_incomparable["imagenet_p_flip_probability"]
    assert "scored on different ImageNet-P perturbations or difficulty" in reason and says in reason, reason
    text = paths["leaderboard"].read_text()
    for row in board.rows:
        line = next(x for x in text.splitlines() if f"| {row.label} |" in x)
        assert re.search(r"\| \d+\.\d\d ± \d+\.\d\d \? \| \d\.\d{3} ± \d\.\d{3} \? \|", line), line
    assert "incomparable (marked ?): the models were scored on different ImageNet-P" in text
    page = paths["leaderboard_html"].read_text()
    assert 'class="num incomparable"' in page and 'title="incomparable: the models were scored on different' in page
    with pytest.raises(leaderboard.LeaderboardError, match=r"--sort imagenet_p_flip_probability: cannot rank by it, "
                                                           r"the models were scored on different ImageNet-P"):
        leaderboard.leaderboard(folders, tmp_path / "sorted", sort="imagenet_p_flip_probability", plots=False)


def test_mfr_normalised_by_another_reference_is_incomparable():
    other = {k: {p: 2 * v for p, v in table.items()} for k, table in REFERENCE.items()}
    docs = [_results("org/a")[0], _results("org/b", reference=other)[0]]
    board = leaderboard.build_leaderboard(docs, bootstrap=0)
    assert set(board.p_incomparable) == {"imagenet_p_mfr", "imagenet_p_mt5d"}  # the raw means still compare
    assert "normalised by different reference values (" in board.p_incomparable["imagenet_p_mfr"]
    same = leaderboard.build_leaderboard([docs[0], _results("org/c", steady=2)[0]], bootstrap=0)
    assert not same.p_incomparable  # other flips, the same reference


def test_only_sequence_configs_are_ranked_by_imagenet_p(tmp_path):
    """No per-config metrics (an `evaluate` of imagenet_p configs only, for several models): ranked by mFR, lowest
    first; the pairs are untested (nothing to resample pairwise) and no note asks for predictions."""
    folders = [_folder(tmp_path, "shaky", clean=None, steady=2), _folder(tmp_path, "steady", clean=None, steady=4)]
    board, paths = leaderboard.leaderboard(folders, tmp_path / "board", plots=False)
    assert board.sort == "imagenet_p_mfr" and [r.model for r in board.rows] == ["org/steady", "org/shaky"]
    assert board.pairs and all(p.status == leaderboard.UNTESTED and p.reason == leaderboard.P_UNTESTED
                               for p in board.pairs)
    assert not any("no intervals" in n for n in board.notes)
    assert all(r.intervals.get("imagenet_p_mfr") for r in board.rows)
    by_fp, _ = leaderboard.leaderboard(folders, tmp_path / "fp", sort="imagenet_p_flip_probability", plots=False)
    assert [r.model for r in by_fp.rows] == ["org/steady", "org/shaky"]
    assert 'data-sort="imagenet_p_mfr"' not in paths["leaderboard_html"].read_text()  # written, no stray column


def test_only_sequence_configs_on_other_difficulties_are_refused_with_the_reason(tmp_path):
    docs = [_results("org/a", clean=None)[0], _results("org/b", clean=None, difficulty=2)[0]]
    with pytest.raises(leaderboard.LeaderboardError, match=r"share no config any eval.yaml task covers, and their "
                                                           r"ImageNet-P columns cannot rank them: the models were"):
        leaderboard.build_leaderboard(docs, bootstrap=0)


def test_the_same_model_on_other_sequence_configs_is_two_rows():
    one, other = _results("org/m")[0], _results("org/m", configs=P_CONFIGS[:2])[0]
    board = leaderboard.build_leaderboard([one, other], bootstrap=0)
    assert len(board.rows) == 2 and not any("found 2 times" in n for n in board.notes)
    assert len(leaderboard.build_leaderboard([one, copy.deepcopy(one)], bootstrap=0).rows) == 1


def _set(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[key]
    target[last] = value
    return doc


@pytest.mark.parametrize("path, value, says", [
    ("summary.imagenet_p", [0.1], "summary.imagenet_p is a list, not an object"),
    ("summary.imagenet_p.mean_flip_probability", 4.9, "summary.imagenet_p.mean_flip_probability is 4.9 (a number), "
                                                      "not a fraction in [0, 1] or null"),
    ("summary.imagenet_p.mean_flip_probability", "0.05", "mean_flip_probability is \"0.05\" (a string)"),
    ("summary.imagenet_p.mean_top5_distance", -1, "mean_top5_distance is -1 (a number), not a distance >= 0"),
    ("summary.imagenet_p.mfr", True, "summary.imagenet_p.mfr is true (a boolean), not a ratio >= 0 or null"),
    ("summary.imagenet_p.difficulty", 0, "summary.imagenet_p.difficulty is 0 (a number), not a frame stride >= 1"),
    ("summary.imagenet_p.difficulty", 1.5, "difficulty is 1.5 (a number), not a frame stride"),
    ("summary.imagenet_p.perturbations", "brightness", "summary.imagenet_p.perturbations is \"brightness\" (a "
                                                       "string), not a list of perturbation names"),
    ("summary.imagenet_p.ci.mean_flip_probability", {"ci_low": 0.2, "ci_high": 0.1},
     "summary.imagenet_p.ci.mean_flip_probability is a object, not {ci_low, ci_high} numbers, low <= high"),
    ("summary.imagenet_p.ci.mfr", 0.3, "summary.imagenet_p.ci.mfr is 0.3 (a number), not {ci_low, ci_high}"),
    ("summary.imagenet_p.flip_rate.brightness", "x", "summary.imagenet_p.flip_rate.brightness is \"x\" (a string)"),
    ("summary.imagenet_p.per_config.imagenet_p_brightness.flip_probability", -0.1,
     "per_config.imagenet_p_brightness.flip_probability is -0.1 (a number), not a number >= 0 or null"),
])
def test_a_malformed_imagenet_p_summary_is_refused_naming_the_field(tmp_path, path, value, says):
    doc = _set(_results()[0], path, value)
    assert says in leaderboard.results_problem(doc)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(doc))
    with pytest.raises(leaderboard.LeaderboardError) as caught:
        leaderboard.leaderboard([folder], tmp_path / "board", plots=False)
    assert str(folder / "results.json") in str(caught.value) and "rerun the evaluation that wrote it" in str(caught.value)


def test_null_means_and_a_missing_interval_are_accepted():
    doc = _set(_set(_results()[0], "summary.imagenet_p.mean_flip_probability", None), "summary.imagenet_p.ci", None)
    assert leaderboard.results_problem(doc) is None
    board = leaderboard.build_leaderboard([doc], bootstrap=0)
    assert "imagenet_p_flip_probability" not in board.rows[0].values


def test_leaderboard_page_marks_incomparable_imagenet_p_cells_in_chromium(tmp_path):
    folders = [_folder(tmp_path, "a"), _folder(tmp_path, "b", difficulty=2)]
    _, paths = leaderboard.leaderboard(folders, tmp_path / "board", plots=False)
    with browser_page(paths["leaderboard_html"].resolve().as_uri()) as page:
        header = page.locator("#ranking thead th", has_text="imagenet_p_flip_probability")
        assert "incomparable" in header.get_attribute("title")
        marks = page.locator("#ranking td.incomparable .mark")
        assert marks.count() == 2 * 4 and marks.first.text_content() == "?"  # two models, four ImageNet-P columns
        header.click()
        values = page.eval_on_selector_all("#ranking tbody tr", "rs => rs.map(r => r.cells[3].dataset.sort)")
        assert [float(v) for v in values] == sorted(float(v) for v in values)

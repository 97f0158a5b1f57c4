"""The leaderboard's intervals and significance between models (issue 24 items 2 and 5): a paired bootstrap of the
difference over the images both models scored, `=` on a rank not separated from the one above, results on other
data, subsets or images said to be incomparable, effective robustness with intervals, and leaderboard.html
checked in a real headless Chromium.

Results folders are written by hand: predictions rows for 40 images in three configs, scored by the real
summarizer, so results.json and predictions.jsonl agree as `evaluate` writes them."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import browser_page

from shift_hub.evaluation import leaderboard
from shift_hub.evaluation.leaderboard_stats import INCOMPARABLE, NOT_SEPARATED, SEPARATED, UNTESTED

HOSTILE = "<script>alert(1)</script>"

# per config, which of the 40 images each model gets right. B is A with three noise images changed (noise on few
# images: not separated); C is right only where A is, on far fewer (clearly worse: separated from both)
A = {"clean": [1] * 32 + [0] * 8, "gaussian_noise_3": [1] * 24 + [0] * 16, "drawing": [0] * 16 + [1] * 24}
B = {**A, "gaussian_noise_3": [0] + [1] * 23 + [0] * 6 + [1, 1] + [0] * 8}
C = {"clean": [1] * 20 + [0] * 20, "gaussian_noise_3": [1] * 6 + [0] * 34, "drawing": [0] * 16 + [1] * 8 + [0] * 16}


def _rows(hits: dict, unscorable=()) -> list[dict]:
    rows = []
    for config, column in hits.items():
        for i, hit in enumerate(column):
            scorable = (config, i) not in unscorable
            rows.append({"config": config, "image_id": f"img{i:03d}", "severity": 3 if "noise" in config else 0,
                         "labels": [1], "targets": [1] if scorable else [], "pred": 1 if hit else 2,
                         "pred_name": "goldfish" if hit else "shark", "top5": [1 if hit else 2], "confidence": 0.9,
                         "correct": bool(hit) and scorable, "correct5": bool(hit) and scorable, "scorable": scorable,
                         "label_space": "imagenet-1k"})
    return rows


def _folder(root: Path, name: str, hits: dict, data: str = "a" * 64, subset=None, unscorable=(), model=None) -> Path:
    from shift_hub.evaluation.metrics import summarize
    from shift_hub.evaluation.report import build_results

    rows = _rows(hits, unscorable)
    source = {"source": "/data/shift_hub", "kind": "local", "split": "validation", "provenance_sha256": data}
    if subset:
        source["subset"] = subset
    results = build_results(model or {"id": f"org/{name}"}, source, list(hits), summarize(rows, list(hits), bootstrap=0))
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("three")
    return [_folder(root, name, hits) for name, hits in (("a", A), ("b", B), ("c", C))]


def _by_model(board) -> dict:
    return {row.model: k for k, row in enumerate(board.rows)}


def _status(board, one: str, other: str):
    where = _by_model(board)
    first, second = sorted((where[one], where[other]))
    return board.pair(first, second)


# --- significance ---------------------------------------------------------------------------------------

def test_three_models_mark_the_unseparated_pair(three, tmp_path, capsys):
    from shift_hub.cli import main

    assert main(["leaderboard", *map(str, three), "--out", str(tmp_path / "board")]) == 0
    out = capsys.readouterr().out
    lines = {re.split(r" \| ", line)[1]: line for line in out.splitlines() if line.startswith("| ") and "org/" in line
             and " vs " not in line and "±" in line and line.count("|") > 5}
    assert lines["org/b"].startswith("| 1 | ") and lines["org/a"].startswith("| 2 = | ")  # A not separated from B
    assert lines["org/c"].startswith("| 3 | ")  # C separated from the rank above
    assert "- #2 org/a: not separated from #1 at 95 % (" in out
    assert re.search(r"\| 61\.25 ± \d+\.\d\d \|$", lines["org/b"])  # the ranking column carries its interval
    assert "wrote leaderboard_html:" in out

    board, _ = leaderboard.leaderboard(three, tmp_path / "again", plots=False)
    assert _status(board, "org/a", "org/b").status == NOT_SEPARATED
    for other in ("org/a", "org/b"):
        pair = _status(board, other, "org/c")
        assert pair.status == SEPARATED and pair.low > 0  # C is clearly worse
    ab = _status(board, "org/a", "org/b")
    assert ab.low < 0 < ab.high and ab.difference == pytest.approx(1.25)  # B - A: +1 of 40 noise images, halved
    rows = list(csv.DictReader((tmp_path / "again" / "leaderboard.csv").open()))
    assert [(r["model"], r["vs_rank"], r["vs_rank_verdict"]) for r in rows] == [
        ("org/b", "", ""), ("org/a", "1", NOT_SEPARATED), ("org/c", "2", SEPARATED)]
    mean = "mean_shifted_top1"
    assert all(float(r[f"{mean}_ci_low"]) < float(r[mean]) < float(r[f"{mean}_ci_high"]) for r in rows)


def test_effective_robustness_carries_an_interval_around_the_fixed_line(three, tmp_path):
    board = leaderboard.build_leaderboard(
        [json.loads((f / "results.json").read_text()) for f in three], names=three)
    for row in board.rows:
        for task in ("imagenet_c_top1", "drawing_top1"):
            low, high = row.er_intervals[task]
            assert low < row.effective_robustness[task] < high
    text = board.markdown()
    assert re.search(r"\| org/b \| \+\d+\.\d\d ± \d+\.\d\d \|", text)


def test_results_on_other_data_subsets_or_images_are_incomparable(tmp_path):
    folders = [_folder(tmp_path, "a", A), _folder(tmp_path, "b", B),
               _folder(tmp_path, "other-data", A, data="f" * 64),
               _folder(tmp_path, "subset", A, subset={"name": "robustbench", "images": 40, "sha256": "5" * 64}),
               _folder(tmp_path, "fewer", A, unscorable={("drawing", 3)})]
    board, paths = leaderboard.leaderboard(folders, tmp_path / "board", plots=False)
    for other, says in (("org/other-data", ("different data (", "/data/shift_hub@aaaaaaaaaaaa", "/data/shift_hub@fff")),
                        ("org/subset", ("different subset (", "none", "robustbench (sha256 555555555555)")),
                        ("org/fewer", ("scored different images (scored image-config cells: ", "120", "119"))):
        pair = _status(board, "org/a", other)
        assert pair.status == INCOMPARABLE and pair.difference is None and pair.low is None, (other, pair)
        assert all(words in pair.reason for words in says), pair.reason
    text = paths["leaderboard"].read_text()
    assert "| incomparable: different data (" in text and "| incomparable: different subset (" in text
    page = paths["leaderboard_html"].read_text()
    assert "incomparable: different subset (none vs robustbench" in page
    marked = [r for r in board.rows if r.versus and r.versus.status == INCOMPARABLE]
    assert {r.model for r in marked} <= {"org/other-data", "org/subset", "org/fewer"} and marked  # `?` on ranks


def test_a_model_between_on_other_data_does_not_hide_the_verdict(tmp_path):
    """B, then A on other data, then A: the last is judged against B (the nearest comparable rank), not `?`."""
    better = {**A, "drawing": [1] * 40}  # on other data, ranked first
    folders = [_folder(tmp_path, "a", A), _folder(tmp_path, "b", B), _folder(tmp_path, "elsewhere", better, "f" * 64)]
    board = leaderboard.build_leaderboard([json.loads((f / "results.json").read_text()) for f in folders],
                                          names=folders)
    assert [r.model for r in board.rows] == ["org/elsewhere", "org/b", "org/a"]
    b, a = board.rows[1], board.rows[2]
    assert b.versus.status == INCOMPARABLE and "?" in board.markdown().split("| org/b |")[0].splitlines()[-1]
    assert a.versus.status == NOT_SEPARATED and board.rows[a.versus.first].model == "org/b"


def test_every_rankable_column_carries_an_interval_around_its_value(tmp_path):
    """The IN-W gap (paired over the images clean and watermark share: one watermark image is unscorable), mCE
    and relative mCE are resampled as eval_results defines them: no mismatch, each value inside its interval."""
    def hits(clean, watermark, noise):
        return {c: [1] * n + [0] * (40 - n) for c, n in (("clean", clean), ("watermark", watermark),
                                                          ("gaussian_noise_3", noise))}

    folders = [_folder(tmp_path, name, hits(*counts), unscorable={("watermark", 5)})
               for name, counts in (("a", (32, 28, 20)), ("b", (30, 29, 10)), ("c", (20, 10, 5)))]
    for sort in ("watermark_gap", "imagenet_c_mce", "imagenet_c_relative_mce"):
        board, _ = leaderboard.leaderboard(folders, tmp_path / sort, sort=sort, plots=False)
        assert not any("no intervals" in n for n in board.notes), board.notes
        for row in board.rows:
            assert set(row.intervals) == set(row.values)
            for column, (low, high) in row.intervals.items():
                assert low <= row.values[column] <= high, (sort, row.model, column)
        assert {p.status for p in board.pairs} <= {SEPARATED, NOT_SEPARATED} and len(board.pairs) == 3
    assert board.rows[0].values["watermark_gap"] == pytest.approx(100 * (27 / 39 - 31 / 39), abs=0.01)


def test_the_bootstrap_is_seeded(three):
    docs = [json.loads((f / "results.json").read_text()) for f in three]

    def numbers(seed):
        board = leaderboard.build_leaderboard(docs, names=three, seed=seed)
        return ([(r.model, r.intervals, r.er_intervals) for r in board.rows],
                [(p.first, p.second, p.status, p.low, p.high) for p in board.pairs])

    assert numbers(0) == numbers(0)
    assert numbers(0) != numbers(1)
    few = leaderboard.build_leaderboard(docs, names=three, bootstrap=50)
    assert few.bootstrap["resamples"] == 50 and few.pairs


def test_no_bootstrap_no_predictions_or_mismatched_predictions_give_no_silent_interval(three, tmp_path):
    docs = [json.loads((f / "results.json").read_text()) for f in three]
    off = leaderboard.build_leaderboard(docs, names=three, bootstrap=0)
    assert not off.pairs and "±" not in off.markdown() and not any(r.intervals for r in off.rows)
    with pytest.raises(leaderboard.LeaderboardError, match="bootstrap must be an integer >= 0"):
        leaderboard.build_leaderboard(docs, names=three, bootstrap=-1)

    bare = leaderboard.build_leaderboard(docs)  # no folders: nothing to resample
    assert not any(r.intervals for r in bare.rows) and all(p.status == UNTESTED for p in bare.pairs)
    assert any("no intervals or significance for org/a (no predictions.jsonl beside its results.json)" in n
               for n in bare.notes)

    edited = tmp_path / "a"
    shutil.copytree(three[0], edited)
    doc = json.loads((edited / "results.json").read_text())
    doc["metrics"]["drawing"]["top1"] = 0.9  # results.json no longer what its predictions give
    (edited / "results.json").write_text(json.dumps(doc))
    board, _ = leaderboard.leaderboard([edited, *three[1:]], tmp_path / "board", plots=False)
    row = board.rows[_by_model(board)["org/a"]]
    assert not row.intervals
    assert "does not match its results.json (drawing: 40 images, top-1 60.00 % in it; 40 images, top-1 90.00 % in results.json)" in row.why_no_intervals
    assert _status(board, "org/a", "org/b").status == UNTESTED
    assert any("does not match its results.json" in n for n in board.notes)


def test_predictions_are_read_into_the_matrices_intervals_resamples(tmp_path):
    from shift_hub.evaluation.intervals import correctness
    from shift_hub.evaluation.leaderboard_stats import read_predictions

    folder = _folder(tmp_path, "a", A, unscorable={("drawing", 3), ("clean", 0)})
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    configs = ["drawing", "clean"]
    cells, why = read_predictions(folder, configs)
    ids, hits, _, present = correctness([r for r in rows if r["config"] in configs], configs)
    assert why is None and cells.ids == ids and (cells.hits == hits).all() and (cells.present == present).all()
    lines = (folder / "predictions.jsonl").read_text().splitlines()
    (folder / "predictions.jsonl").write_text("\n".join([*lines[:2], '{"config": "clean"', *lines[2:]]) + "\n")
    cells, why = read_predictions(folder, configs)
    assert cells is None and "predictions.jsonl line 3 cannot be read (JSONDecodeError" in why


def test_cli_bootstrap_flag(three, tmp_path, capsys):
    from shift_hub.cli import main

    assert main(["leaderboard", *map(str, three), "--out", str(tmp_path / "b"), "--bootstrap", "0", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert " ± " not in out and "Significance" not in out and (tmp_path / "b" / "leaderboard.html").is_file()
    with pytest.raises(SystemExit):
        main(["leaderboard", str(three[0]), "--bootstrap", "-3"])
    assert "--bootstrap: must be an integer >= 0" in capsys.readouterr().err


# --- leaderboard.html ----------------------------------------------------------------------------------------

def test_page_is_self_contained_escaped_and_carries_the_marks(tmp_path):
    folders = [_folder(tmp_path, "a", A), _folder(tmp_path, "b", B, model={"id": HOSTILE}), _folder(tmp_path, "c", C),
               _folder(tmp_path, "d", A, data="f" * 64)]
    _, paths = leaderboard.leaderboard(folders, tmp_path / "board")
    text = paths["leaderboard_html"].read_text()
    assert paths["leaderboard_html"] == tmp_path / "board" / "leaderboard.html"
    assert not re.search(r'(src|href)="(?!data:|#)', text) and "http://" not in text and "https://" not in text
    assert HOSTILE not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 1  # the effective-robustness plot
    assert '<span class="mark"' in text and "not separated from #1 at 95 %" in text
    assert "incomparable: different data" in text and '<tr class="incomparable">' in text
    assert re.search(r'<td class="num" data-sort="61\.25">61\.25 <span class="pm">± \d+\.\d\d</span>', text)


def test_page_in_headless_chromium_sorts_and_shows_the_marks(three, tmp_path):
    _, paths = leaderboard.leaderboard(three, tmp_path / "board")
    with browser_page(paths["leaderboard_html"].resolve().as_uri()) as page:
        def models():
            return page.eval_on_selector_all("#ranking tbody tr", "rs => rs.map(r => r.cells[1].textContent)")

        assert models() == ["org/b", "org/a", "org/c"]  # as ranked
        mark = page.locator("#ranking tbody tr", has_text="org/a").locator(".mark")
        assert mark.is_visible() and mark.text_content() == "="
        assert "not separated from #1" in mark.get_attribute("title")
        assert page.locator("#ranking .mark").count() == 1  # only the unseparated rank
        marks = page.locator("#marks")
        assert marks.is_visible() and "not separated from #1" in marks.inner_text()

        header = page.locator("#ranking thead th", has_text="imagenet_c_mce")
        header.click()  # ascending: lowest mCE first
        assert models() == ["org/b", "org/a", "org/c"] and header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert models() == ["org/c", "org/a", "org/b"]
        page.locator("#ranking thead th", has_text="model").click()
        assert models() == ["org/a", "org/b", "org/c"]
        cells = page.eval_on_selector_all("#ranking tbody tr", "rs => rs.map(r => r.cells[7].textContent)")
        assert all(" ± " in c for c in cells), cells  # mean shifted top-1 with its interval
        assert page.locator("#pairs tbody tr").count() == 3 and page.locator("#er-plot").is_visible()
        width = page.eval_on_selector("#er-plot", "i => i.naturalWidth")
        assert width > 0
        page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)

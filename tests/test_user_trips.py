"""What a new user trips over (issue: wrong drops, silent fallbacks, names and messages): each test is one
thing that did not work as a user expects, run the way a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import shift_hub
from shift_hub.generate import GenerationError, generate

CLI = [sys.executable, "-m", "shift_hub.cli"]


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    out = tmp_path_factory.mktemp("eight") / "data"
    generate(["clean", "gaussian_noise_1", "toon_ius"], "samples", out, progress=False)
    return out


def test_a_config_over_other_images_is_refused_in_one_line(eight, tmp_path):
    run = _cli("generate", "clean", "--source", "samples", "--out", str(eight), "--limit", "3", "--quiet")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "plans 3 images" in lines[0] and "gaussian_noise_1 (8 images)" in lines[0]
    assert "--overwrite" in lines[0]


def test_drops_are_computed_on_the_images_both_configs_hold_and_say_so(eight, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(eight, data)
    generate(["clean"], "samples", data, limit=3, overwrite=True, progress=False)  # asked for, so allowed
    result = shift_hub.evaluate("efficientnet_lite0", data, configs=["clean", "gaussian_noise_1"], num_workers=0)
    m = result.metrics["gaussian_noise_1"]
    assert m["n_scored"] == 8 and result.metrics["clean"]["n_scored"] == 3
    shared = {r["image_id"] for r in result.rows if r["config"] == "clean"}
    noisy = [r for r in result.rows if r["config"] == "gaussian_noise_1" and r["image_id"] in shared]
    clean = [r for r in result.rows if r["config"] == "clean"]
    expected = sum(r["correct"] for r in clean) / 3 - sum(r["correct"] for r in noisy) / 3
    assert m["drop"]["abs"] == pytest.approx(expected) and m["drop"]["images"] == 3 and m["drop"]["shared_only"]
    table = result.markdown()
    assert "gaussian_noise_1: drop computed on the 3 images it shares with clean" in table


def test_a_label_space_fallback_is_said_in_the_table_the_report_and_results(eight, tmp_path):
    result = shift_hub.evaluate("efficientnet_lite0", eight, configs=["clean", "toon_ius"], num_workers=0,
                                out=tmp_path / "res", plots=False)
    why = result.results["label_space_fallbacks"]["toon_ius"]
    assert "not toonnet" in why and "labelled images have no class in toonnet" in why
    assert result.metrics["toon_ius"]["label_space"] == "imagenet-1k"
    assert f"toon_ius: {why}" in result.markdown()
    saved = json.loads((tmp_path / "res" / "results.json").read_text())
    assert saved["metrics"]["toon_ius"]["label_space_fallback"] == why
    assert "fallback: scored in imagenet-1k" in (tmp_path / "res" / "report.html").read_text()
    from shift_hub.hub import eval_yaml

    (task,) = [t for t in eval_yaml.tasks_for(["toon_ius"]) if t.id == "toon_ius_top1"]
    assert "ImageNet-1k when most images have no class there" in task.to_dict()["metric"]["name"]


def test_evaluate_takes_every_name_generate_takes_and_lists_the_nearest(eight):
    from shift_hub.evaluation.runner import DataError

    result = shift_hub.evaluate("efficientnet_lite0", eight, configs=["gaussian_noise"], num_workers=0)
    assert list(result.metrics) == ["gaussian_noise_1"]
    result = shift_hub.evaluate("efficientnet_lite0", eight, configs=["imagenet_c", "toonnet"], num_workers=0)
    assert set(result.metrics) == {"gaussian_noise_1", "toon_ius"}
    with pytest.raises(DataError) as err:
        shift_hub.evaluate("efficientnet_lite0", eight, configs=["gausian_noise"], num_workers=0)
    assert "nearest: gaussian_noise" in str(err.value) and "pixelate" not in str(err.value)


def test_the_table_shows_intervals_and_bootstrap_0_turns_them_off(eight, tmp_path):
    args = ["evaluate", "efficientnet_lite0", "--data", str(eight), "--configs", "clean", "gaussian_noise_1",
            "--num-workers", "0", "--no-plots", "--quiet"]
    with_ci = _cli(*args, "--out", str(tmp_path / "a"))
    assert with_ci.returncode == 0, with_ci.stderr
    assert " ± " in with_ci.stdout and "1000 resamples" in with_ci.stdout
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(saved["metrics"]["clean"]["ci"]["top1"]) == {"ci_low", "ci_high"}
    without = _cli(*args, "--out", str(tmp_path / "b"), "--bootstrap", "0")
    assert without.returncode == 0 and " ± " not in without.stdout


def test_the_leaderboard_says_when_a_config_holds_other_images_than_clean(eight, tmp_path):
    import copy
    import shutil

    from shift_hub.evaluation.leaderboard import build_leaderboard

    data = tmp_path / "data"
    shutil.copytree(eight, data)
    generate(["clean"], "samples", data, limit=3, overwrite=True, progress=False)
    one = shift_hub.evaluate("efficientnet_lite0", data, configs=["clean", "gaussian_noise_1"], num_workers=0,
                             bootstrap=0).results
    two = copy.deepcopy(one)
    two["model"]["id"] = "other_model"
    board = build_leaderboard([one, two])
    assert any("hold other images than their clean baseline" in n and "gaussian_noise_1" in n for n in board.notes)

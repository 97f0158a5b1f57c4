"""What a new user trips over in `shift-hub evaluate` (several models, a wrong --data, the suite's report on a
generated folder, configs the main job leaves out): each test is one thing that did not work as a user
expects, run the way a user runs it."""
from __future__ import annotations

import logging
import subprocess
import sys

CLI = [sys.executable, "-m", "shift_hub.cli"]


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, **kw)


def _error_lines(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("shift-hub: error:")]


# --- 1: every model and --data are checked before anything is scored -------------------------------------------

def test_a_model_that_cannot_load_fails_before_the_first_is_scored(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    bad = "torchvision:resnet50/NO_SUCH_TAG"  # fails to load without any download
    run = _cli("evaluate", "efficientnet_lite0", bad, "--data", str(data), "--out", str(out), "--quiet")
    assert run.returncode == 2
    errors = _error_lines(run)
    assert len(errors) == 1 and "NO_SUCH_TAG" in errors[0]
    assert run.stderr.count(bad) == 1  # the model is named once
    assert not out.exists()  # nothing scored, no one-model leaderboard
    assert "efficientnet_lite0" not in run.stdout


def test_the_api_loads_every_model_before_scoring(tmp_path):
    import pytest

    import shift_hub
    from shift_hub.evaluation.models import ModelLoadError

    (tmp_path / "data").mkdir()
    with pytest.raises(ModelLoadError, match="not a torchvision classification model"):
        shift_hub.evaluate_many(["efficientnet_lite0", "torchvision:no_such_arch"], str(tmp_path / "data"),
                                out=tmp_path / "out", device="cpu", num_workers=0)
    assert not (tmp_path / "out").exists()


def test_data_that_is_nothing_fails_before_any_model_is_loaded(tmp_path):
    missing = str(tmp_path / "nonexistent")
    for models in (["efficientnet_lite0"], ["efficientnet_lite0", "efficientnet_lite0"]):
        run = _cli("evaluate", *models, "--data", missing, "--out", str(tmp_path / "out"))  # info lines on
        assert run.returncode == 2
        assert run.stderr.strip().splitlines() == _error_lines(run)  # the one line only
        assert len(_error_lines(run)) == 1 and f"cannot open {missing!r}" in run.stderr
        assert "loading model" not in run.stderr
    assert not (tmp_path / "out").exists()


# --- 2: the suite's report on a readable generated folder -------------------------------------------------------

def _suite_root(tmp_path, configs):
    from shift_hub.generate import generate

    root = tmp_path / "root"
    generate(configs, "samples", root / "generated", limit=2, progress=False)
    return root


def test_a_readable_generated_folder_is_not_reported_unreadable(tmp_path):
    from shift_hub.evaluation.suite import markdown, run_suite
    from test_known_sets import stub

    root = _suite_root(tmp_path, ["clean"])
    results = run_suite(stub(), root, num_workers=0, batch_size=4)
    table = markdown(results)
    assert "generated generated/clean" in table
    assert "cannot be read" not in table and "Left out" not in table and "{}" not in table


def test_a_generated_config_that_cannot_be_read_is_named_not_the_whole_folder(tmp_path):
    from shift_hub.evaluation.suite import markdown, run_suite
    from test_known_sets import stub

    root = _suite_root(tmp_path, ["clean", "gaussian_noise_1"])
    for shard in (root / "generated" / "gaussian_noise_1").rglob("*.parquet"):
        shard.write_bytes(b"not a parquet file")
    results = run_suite(stub(), root, num_workers=0, batch_size=4)
    table = markdown(results)
    assert "generated generated/clean" in table and "cannot be read" not in table
    assert "| generated generated/gaussian_noise_1 | shard |" in table


# --- 3: the main job says which configs it leaves out --------------------------------------------------------

def test_the_main_job_names_the_configs_it_leaves_out(tmp_path, monkeypatch, caplog):
    from shift_hub import generate as generate_module
    from shift_hub.evaluation import api

    monkeypatch.setattr(generate_module, "generate", lambda *a, **kw: None)  # the warning, not the work
    with caplog.at_level(logging.WARNING, logger="shift_hub"):
        api._generate_source("samples", None, tmp_path, 0, None)
    text = caplog.text
    assert "10 XImageNet-12 config(s)" in text and "blur_bg" in text and "need object masks" in text
    assert "--polygons" in text and "cartoon" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shift_hub"):
        api._generate_source("samples", ["gaussian_noise_1"], tmp_path, 0, None)  # asked for: nothing to say
    assert "left out" not in caplog.text

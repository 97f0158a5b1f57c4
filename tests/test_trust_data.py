"""Trust, round 3: scores come from the files on disk, concurrent runs never mix a folder, and a card or an
evaluation never calls an unfinished config complete. Concurrency tests run the real CLI in two processes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import shift_hub
from shift_hub import folder
from shift_hub.generate import generate

CLI = [sys.executable, "-m", "shift_hub.cli"]


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, **kw)


def _ids(result) -> list[str]:
    return sorted(r["image_id"] for r in result.rows)


# --- 1. no stale scores --------------------------------------------------------------------------

def test_a_folder_regenerated_in_place_is_scored_on_its_new_rows(tmp_path):
    data = tmp_path / "F" / "shifts"
    generate(["clean"], "samples", data, progress=False)
    first = shift_hub.evaluate("efficientnet_lite0", data, num_workers=0)
    assert first.metrics["clean"]["n"] == 8
    generate(["clean"], "samples", data, limit=3, overwrite=True, progress=False)
    second = shift_hub.evaluate("efficientnet_lite0", data, num_workers=0)
    assert second.metrics["clean"]["n"] == 3 and len(second.rows) == 3
    assert second.results["data"]["provenance_sha256"] != first.results["data"]["provenance_sha256"]


def test_two_folders_with_one_basename_are_scored_on_their_own_rows(tmp_path):
    a, b = tmp_path / "a" / "data", tmp_path / "b" / "data"
    generate(["clean"], "samples", a, limit=2, progress=False)
    generate(["clean"], "samples", b, limit=5, progress=False)
    ra = shift_hub.evaluate("efficientnet_lite0", a, num_workers=0)
    rb = shift_hub.evaluate("efficientnet_lite0", b, num_workers=0)
    assert (ra.metrics["clean"]["n"], rb.metrics["clean"]["n"]) == (2, 5)
    # renamed into each other's place: still each folder's own files
    shutil.move(a, tmp_path / "tmp")
    shutil.move(b, a)
    rc = shift_hub.evaluate("efficientnet_lite0", a, num_workers=0)
    assert rc.metrics["clean"]["n"] == 5
    assert rc.results["data"]["provenance_sha256"] == rb.results["data"]["provenance_sha256"]


def test_provenance_pins_the_rows_scored_not_the_folder_read_later(tmp_path):
    from shift_hub.evaluation.runner import open_data

    data = tmp_path / "shifts"
    generate(["clean"], "samples", data, limit=4, progress=False)
    _, parts = open_data(data, ["clean"])
    assert [line.split(":")[0] for line in parts[0].fingerprints] == ["clean/validation-00000-of-00001.parquet"]
    generate(["clean"], "samples", data, limit=2, overwrite=True, progress=False, card=False)
    from shift_hub.evaluation.runner import DataError

    with pytest.raises(DataError, match="replaced while it was being scored"):
        parts[0].dataset[0]  # the rows pinned at open time are never silently swapped for the new file's


# --- 2. concurrent runs with other settings never both succeed over a mixed folder ---------------

def _start(out: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "generate", "toon_ius", "--source", "samples", "--out", str(out), "--quiet",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop_after_first_shard(proc: subprocess.Popen, config_dir: Path) -> None:
    deadline = time.time() + 120
    while not folder.shard_files(config_dir):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGSTOP)


def _settings(config_dir: Path) -> set:
    return {(folder.shard_metadata(p)["seed"], folder.shard_metadata(p)["num_shards"])
            for p in folder.shard_files(config_dir)}


def test_a_run_with_another_shard_size_meanwhile_stops_and_leaves_the_other_runs_folder(tmp_path):
    from conftest import digests

    out = tmp_path / "out"
    first = _start(out, "--shard-size", "1")  # 8 shards
    _stop_after_first_shard(first, out / "toon_ius")
    try:
        second = _cli("generate", "toon_ius", "--source", "samples", "--out", str(out), "--quiet",
                      "--shard-size", "2", "--overwrite")  # 4 shards; removes the other run's first shard
        assert second.returncode == 0, second.stderr
        made = digests(out)
        card = (out / "README.md").read_text()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode != 0
    assert "written meanwhile by another run with other settings" in err and len(err.strip().splitlines()) == 1
    assert digests(out) == made and (out / "README.md").read_text() == card  # nothing slipped in
    assert _settings(out / "toon_ius") == {(0, 4)} and not folder.check_config(out, "toon_ius").problems
    assert "8 images" in card or "| 8 |" in card


def test_concurrent_runs_with_other_seeds_never_both_succeed_over_a_mixed_folder(tmp_path):
    out = tmp_path / "out"
    first = _start(out, "--shard-size", "1", "--seed", "0")
    _stop_after_first_shard(first, out / "toon_ius")  # it holds the lock of the shard it is writing
    second = _start(out, "--shard-size", "1", "--seed", "1", "--overwrite")
    deadline = time.time() + 120
    while len(folder.shard_files(out / "toon_ius")) < 7 and second.poll() is None:  # all but the held shard
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGCONT)
    results = {seed: (proc.wait(timeout=300), proc.stderr.read()) for seed, proc in ((0, first), (1, second))}
    assert not all(rc == 0 for rc, _ in results.values()), results
    for seed, (rc, err) in results.items():
        if rc == 0:
            assert _settings(out / "toon_ius") == {(seed, 8)}
        else:
            errors = [line for line in err.splitlines() if line.startswith("shift-hub: error:")]
            assert len(errors) == 1 and "other settings" in errors[0], err  # one line (a "waiting" note may precede)


# --- 3. an unfinished config is never called complete ---------------------------------------------

def test_a_card_written_beside_an_unfinished_config_leaves_it_out_and_evaluate_says_so(tmp_path):
    import datasets

    out = tmp_path / "out"
    killed = _start(out, "--shard-size", "1")
    deadline = time.time() + 120
    while len(folder.shard_files(out / "toon_ius")) < 3:
        assert killed.poll() is None and time.time() < deadline
        time.sleep(0.01)
    killed.kill()
    killed.wait()
    done = _cli("generate", "clean", "--source", "samples", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    present = len(folder.shard_files(out / "toon_ius"))
    assert 3 <= present < 8
    card = (out / "README.md").read_text()
    assert "config_name: toon_ius" not in card and f"`toon_ius`: {present} of 8 planned shards written" in card
    assert len(datasets.load_dataset(str(out), "clean", split="validation")) == 8
    with pytest.raises(ValueError):
        datasets.load_dataset(str(out), "toon_ius", split="validation")
    strict = _cli("evaluate", "efficientnet_lite0", "--data", str(out), "--configs", "toon_ius", "--out",
                  str(tmp_path / "res"), "--strict", "--quiet", "--num-workers", "0", "--no-plots")
    assert strict.returncode == 1, strict.stderr
    assert f"incomplete config(s): toon_ius ({present} of 8 planned shards written)" in strict.stderr
    assert "Incomplete (scored on the shards present only)" in strict.stdout
    results = json.loads((tmp_path / "res" / "results.json").read_text())
    assert results["data"]["incomplete"] == {"toon_ius": [f"{present} of 8 planned shards written"]}
    assert "Incomplete" in (tmp_path / "res" / "report.html").read_text()


# --- smaller: a full disk, a wrong option, SIGTERM -------------------------------------------------

def test_a_full_disk_names_the_shard_and_keeps_what_was_finished(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from shift_hub.generate import GenerationError

    out = tmp_path / "out"
    generate(["clean"], "samples", out, limit=2, progress=False)
    real = pq.ParquetWriter.write_table

    def full(self, *a, **kw):
        raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    with pytest.raises(GenerationError) as err:
        generate(["clean", "gaussian_noise_1"], "samples", out, limit=2, progress=False)
    message = str(err.value)
    assert str(out / "gaussian_noise_1" / "validation-00000-of-00001.parquet") in message
    assert "No space left on device" in message and "rerun of the same command resumes" in message
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    assert len(folder.shard_files(out / "clean")) == 1 and not list((out / "gaussian_noise_1").glob(".*tmp*"))


def test_a_wrong_option_is_one_line_without_the_usage_text():
    for args in (["generate", "clean", "--num-proc", "x"], ["list", "--nonsense"], ["push"]):
        run = _cli(*args)
        assert run.returncode == 2
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("shift-hub: error:") and "usage:" not in run.stderr, run.stderr


def test_sigterm_says_stopped_and_the_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    proc = _start(out, "--shard-size", "1")
    deadline = time.time() + 120
    while not folder.shard_files(out / "toon_ius"):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == ("shift-hub: error: stopped (SIGTERM); finished shards are kept: rerun "
                                            "the same command to resume")
    kept = len(folder.shard_files(out / "toon_ius"))
    again = _cli("generate", "toon_ius", "--source", "samples", "--out", str(out), "--quiet", "--shard-size", "1")
    assert again.returncode == 0 and kept >= 1 and len(folder.shard_files(out / "toon_ius")) == 8

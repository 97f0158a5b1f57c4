"""Multi-process evaluation (issue 13): torchrun with 2 CPU processes gives the predictions and metrics of one.

Both runs use one thread per process, so every batch's logits come from the same kernels in the same order.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shift_hub.generate import generate


def _evaluate(tmp_path: Path, out: Path, extra: list[str], processes: int) -> subprocess.CompletedProcess:
    scratch = tmp_path / "tmp"  # torchrun leaves a torchelastic_* folder in TMPDIR: keep it in pytest's tmp
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "TMPDIR": str(scratch)}
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", "shift_hub.cli"] if processes > 1 else [sys.executable, "-m", "shift_hub.cli"])
    cmd = [*launch, "evaluate", "efficientnet_lite0", "--out", str(out), "--batch-size", "3", "--num-workers", "0",
           "--no-plots", "--quiet", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def _same_results(one: Path, two: Path) -> None:
    assert (one / "predictions.jsonl").read_bytes() == (two / "predictions.jsonl").read_bytes()
    a, b = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert a["metrics"] == b["metrics"] and a["summary"] == b["summary"]


@pytest.mark.parametrize("mode", ["stored", "on_the_fly"])
def test_two_processes_give_the_results_of_one(tmp_path, mode):
    if mode == "stored":
        data = tmp_path / "data"
        generate(["clean", "gaussian_noise_2", "contrast_1"], "samples", data, limit=7, progress=False)
        extra = ["--data", str(data)]
    else:
        extra = ["--data", "samples", "--on-the-fly", "--configs", "pixelate_3", "--limit", "7"]
    single = _evaluate(tmp_path, tmp_path / "one", extra, 1)
    assert single.returncode == 0, single.stderr[-3000:]
    double = _evaluate(tmp_path, tmp_path / "two", extra, 2)
    assert double.returncode == 0, double.stderr[-3000:]
    _same_results(tmp_path / "one", tmp_path / "two")
    assert double.stdout.count("| clean") == single.stdout.count("| clean") >= 1  # one table, printed once

"""What the CLI's own words get wrong (issue: --quiet, resume and --shard lines, help defaults, `list`), each
run the way a user runs it: the real `shift-hub` in a subprocess."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO

CLI = [sys.executable, "-m", "shift_hub.cli"]


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def _words(text: str) -> str:
    """Help text with argparse's line wrapping undone."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    """A first `generate --quiet` into a folder given with a trailing slash, as shells complete it."""
    out = tmp_path_factory.mktemp("trips") / "data"
    run = _cli("generate", "clean", "--source", "samples", "--limit", "2", "--out", f"{out}/", "--quiet")
    assert run.returncode == 0, run.stderr
    return out, run


def test_quiet_generate_prints_nothing_but_warnings(quiet_run):
    out, run = quiet_run
    assert (out / "README.md").exists()  # it did write
    assert run.stdout == ""
    assert run.stderr == ""  # nothing went wrong, so nothing to warn about


def test_a_resume_with_nothing_to_do_says_already_complete_not_generated(quiet_run):
    out, _ = quiet_run
    run = _cli("generate", "clean", "--source", "samples", "--limit", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "clean: already complete (2 images in 1 shard)" in run.stdout
    assert "converted" not in run.stdout and "0img" not in run.stderr


def test_the_card_line_prints_a_clean_path_when_out_ends_in_a_slash(quiet_run):
    out, _ = quiet_run
    run = _cli("generate", "clean", "--source", "samples", "--limit", "2", "--out", f"{out}/")
    assert f"card: {out}/README.md;" in run.stdout and "//" not in run.stdout
    assert f"load_dataset({str(out)!r}, CONFIG)" in run.stdout


def test_a_shard_slice_holding_none_of_a_config_says_so(tmp_path):
    run = _cli("generate", "clean", "--source", "samples", "--limit", "2", "--out", str(tmp_path / "d"),
               "--shard", "2/2")
    assert run.returncode == 0, run.stderr
    assert "clean: nothing in slice 2/2" in run.stdout
    assert "0 images in 0 shard" not in run.stdout and "0img" not in run.stderr


def test_evaluate_help_shows_defaults_and_that_on_the_fly_still_writes_results():
    run = _cli("evaluate", "--help")
    text = _words(run.stdout)
    assert run.returncode == 0
    assert "--data DATA generated folder" in text and "default samples)" in text
    assert "(default shift_hub_results)" in text
    assert "no shift data is written (results still are)" in text and "write nothing" not in text


def _list_rows(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line and not line[0].isspace()}


def test_list_says_the_drawing_patterns_need_a_pattern_not_weights():
    rows = _list_rows(_cli("list").stdout)
    for name in ("drawing_pattern_i", "drawing_pattern_ii", "drawing_pattern_iii", "drawing_pattern_iv"):
        assert rows[name][3] == "pattern", rows[name]
    assert rows["cartoon"][3] == "gpu,weights"  # real model weights keep their word
    assert "needs: pattern" in _cli("list", "--params", "drawing_pattern_ii").stdout


def test_list_fits_100_columns_and_details_stay_under_params():
    run = _cli("list")
    assert run.returncode == 0
    widest = max(run.stdout.splitlines(), key=len)
    assert len(widest) <= 100, widest
    params = _cli("list", "--params", "clean").stdout
    assert "geometry: resize shorter side to 256, center crop 224x224" in params
    assert "encoding: JPEG quality 95" in params


def test_every_file_pyproject_names_exists():
    text = (REPO / "pyproject.toml").read_text()
    project = tomllib.loads(text)
    named = set(re.findall(r"[\w./-]+\.(?:md|txt|rst|cfg|toml)\b", text))  # comments included: they send readers there
    named.add(project["project"]["readme"])
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, f"pyproject.toml names files the repo lacks: {missing}"
    setuptools = project["tool"]["setuptools"]
    for package, folder in setuptools["package-dir"].items():
        assert (REPO / folder).is_dir(), package
    for package, globs in setuptools["package-data"].items():
        root = REPO / setuptools["package-dir"].get(package, package.replace(".", "/"))
        for glob in globs:
            assert any(p.is_file() for p in root.glob(glob)), f"{package}: {glob} matches no file"

"""Trust under faults (issue 12): concurrent runs, killed runs, a user's own files, bad folders, hostile names.

Each test here failed before its fix. Determinism across threads lives in test_faults_determinism.py,
evaluation faults in test_faults_evaluate.py, parameter validation in test_params.py.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import digests, jpeg_bytes, list_source, photo
from shift_hub import cli, engines, folder
from shift_hub import generate as engine


HOLD_LOCK = """
import sys, time
from shift_hub import folder
with folder.shard_lock(sys.argv[1]) as held:
    print("locked" if held else "busy", flush=True)
    time.sleep(120)
"""


# --- 3. concurrency and crashes -------------------------------------------------------------------

def test_a_second_run_waits_for_a_live_writer_and_finishes_its_shard_when_that_writer_dies(tmp_path):
    out = tmp_path / "out"
    shard = out / "clean" / "validation-00000-of-00001.parquet"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(shard)], stdout=subprocess.PIPE, text=True)
    second = None
    try:
        assert holder.stdout.readline().strip() == "locked"
        shard.parent.mkdir(parents=True, exist_ok=True)
        live_tmp = shard.with_name(f".{shard.name}.tmp-otherhost-1234")
        live_tmp.write_bytes(b"half a shard")
        second = subprocess.Popen([sys.executable, "-m", "shift_hub.cli", "generate", "clean", "--out", str(out),
                                   "--limit", "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=tmp_path)
        deadline = time.time() + 60
        while time.time() < deadline and not folder.lock_owner(shard).startswith(f"pid {holder.pid} "):
            time.sleep(0.1)
        time.sleep(3)  # the second run is now waiting on the lock
        assert second.poll() is None and live_tmp.read_bytes() == b"half a shard"  # a live writer's file is kept
    finally:
        holder.kill()
        holder.wait()
    code, err = second.wait(timeout=120), second.stderr.read()
    assert code == 0, err
    assert f"waiting for 1 shard(s) being written by another run (pid {holder.pid} on" in err
    assert "Traceback" not in err
    # the writer died: the lock went with it, its temp file was removed and the shard written
    assert not live_tmp.exists() and folder.shard_metadata(shard)["written"] == 2
    assert folder.is_shift_hub_card(out / "README.md")


def test_two_concurrent_runs_share_the_work_and_leave_the_bytes_of_one_run(tmp_path):
    out = tmp_path / "out"
    args = ["generate", "clean", "clean_full", "--out", str(out), "--shard-size", "1", "--quiet"]
    procs = [subprocess.Popen([sys.executable, "-m", "shift_hub.cli", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in results:
        assert code == 0 and "Traceback" not in err, err
    engine.generate(["clean", "clean_full"], "samples", tmp_path / "ref", shard_size=1, progress=False)
    assert digests(out) == digests(tmp_path / "ref") and len(digests(out)) == 16
    assert not list(out.glob("*/.*tmp*"))


def test_unexpected_errors_print_type_and_message_not_a_bare_errno(tmp_path, capsys, monkeypatch):
    def vanish(*a, **k):
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "x.tmp"))

    monkeypatch.setattr(engines, "run", vanish)
    assert cli.main(["generate", "clean", "--out", str(tmp_path / "o"), "--limit", "1", "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert err != "shift-hub: error: 2"
    assert "FileNotFoundError: No such file or directory" in err and "x.tmp" in err

    monkeypatch.setattr(engines, "run", lambda *a, **k: {}[0])
    assert cli.main(["generate", "clean", "--out", str(tmp_path / "o"), "--limit", "1", "--quiet"]) == 1
    assert "KeyError: 0" in capsys.readouterr().err


def _descendants(pid: int) -> set[int]:
    import psutil

    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def test_workers_exit_when_the_main_process_is_killed(tmp_path):
    import psutil

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "shift_hub.cli", "generate", "zoom_blur", "--out", str(out), "--num-proc", "2",
           "--shard-size", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    children: set[int] = set()
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        children |= _descendants(proc.pid)
        if len(children) >= 3 and list(out.glob("zoom_blur_*/*.parquet")):  # 2 workers + resource tracker, working
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    alive = children
    while time.time() < deadline:
        alive = {p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
        if not alive:
            break
        time.sleep(0.2)
    for p in alive:  # do not leave them behind whatever happens
        os.kill(p, signal.SIGKILL)
    assert not alive, f"{len(alive)} process(es) outlived their parent"


# --- 5, 6. a user's own files ---------------------------------------------------------------------

def test_foreign_readme_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "my_project"
    out.mkdir()
    (out / "README.md").write_text("# My project\n\nNotes I care about.\n")
    assert cli.main(["generate", "clean", "--out", str(out), "--limit", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is not a shift_hub dataset card" in err and "--overwrite" in err
    assert (out / "README.md").read_text() == "# My project\n\nNotes I care about.\n"
    assert not (out / "clean").exists()  # refused before any work
    assert cli.main(["generate", "clean", "--out", str(out), "--limit", "1", "--quiet", "--overwrite"]) == 0
    assert folder.is_shift_hub_card(out / "README.md")
    # our own card is replaced freely by the next run
    assert cli.main(["generate", "clean_full", "--out", str(out), "--limit", "1", "--quiet"]) == 0


def test_parquet_not_written_by_shift_hub_is_not_deleted_without_overwrite(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    items = [(f"img{i}", i, jpeg_bytes(photo(i))) for i in range(2)]
    mine = tmp_path / "clean" / "validation-00000-of-00001.parquet"
    mine.parent.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 2, 3]}), mine)
    other = tmp_path / "clean" / "validation-00007-of-00009.parquet"
    pq.write_table(pa.table({"y": [1]}), other)
    before = {p: p.read_bytes() for p in (mine, other)}
    with pytest.raises(engine.GenerationError, match="not written by shift_hub.*nothing was deleted"):
        engine.generate(["clean"], list_source(items), tmp_path, progress=False)
    assert {p: p.read_bytes() for p in (mine, other)} == before
    engine.generate(["clean"], list_source(items), tmp_path, progress=False, overwrite=True)
    assert not other.exists() and folder.shard_metadata(mine)["written"] == 2


def test_damaged_shard_is_moved_aside_not_deleted(tmp_path):
    items = [(f"img{i}", i, jpeg_bytes(photo(i))) for i in range(2)]
    engine.generate(["clean"], list_source(items), tmp_path, progress=False)
    shard = tmp_path / "clean" / "validation-00000-of-00001.parquet"
    damaged = shard.read_bytes()[:100]
    shard.write_bytes(damaged)
    engine.generate(["clean"], list_source(items), tmp_path, progress=False)
    assert folder.shard_metadata(shard)["written"] == 2
    assert (tmp_path / ".damaged" / "clean" / shard.name).read_bytes() == damaged


def test_out_naming_a_file_is_one_clear_line(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert cli.main(["generate", "clean", "--out", str(target), "--limit", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is an existing file, not a folder" in err
    assert target.read_text() == "keep me"


# --- 12. push checks the folder before creating anything -------------------------------------------

@pytest.fixture()
def pushable(tmp_path) -> Path:
    out = tmp_path / "out"
    engine.generate(["clean"], "samples", out, limit=4, shard_size=1, progress=False)
    return out


def push_dry(out: Path, repo: str, capsys) -> tuple[int, str]:
    code = cli.main(["push", str(out), repo, "--dry-run"])
    return code, capsys.readouterr().err.strip()


def test_push_refuses_a_stray_shard_of_another_run(pushable, tmp_path, capsys):
    engine.generate(["clean"], "samples", tmp_path / "other", limit=1, progress=False)
    stray = pushable / "clean" / "validation-00000-of-00001.parquet"
    stray.write_bytes((tmp_path / "other" / "clean" / "validation-00000-of-00001.parquet").read_bytes())
    code, err = push_dry(pushable, "org/data", capsys)
    assert code == 2 and "shards of different runs mixed" in err and "nothing was uploaded" in err


def test_push_refuses_a_truncated_shard_and_a_bad_repo_id_before_creating_anything(pushable, capsys, monkeypatch):
    from huggingface_hub import HfApi

    created = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, *a, **k: created.append(a))
    monkeypatch.setenv("HF_TOKEN", "hf_notARealToken0123456789")
    shard = pushable / "clean" / "validation-00002-of-00004.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert cli.main(["push", str(pushable), "org/data"]) == 2
    err = capsys.readouterr().err
    assert "validation-00002-of-00004.parquet" in err and "not a readable parquet" in err
    code, err = push_dry(pushable, "org/data", capsys)
    assert code == 2 and "not a readable parquet" in err
    assert not created
    assert "hf_notARealToken" not in err
    code, err = push_dry(pushable, "../evil", capsys)
    assert code == 2 and "not a Hub repo id" in err


def test_push_refuses_a_folder_that_is_not_generated(tmp_path, capsys):
    (tmp_path / "evil").mkdir()
    code, err = push_dry(tmp_path / "evil", "org/data", capsys)
    assert code == 2 and "nothing generated here" in err
    code, err = push_dry(tmp_path / "missing", "org/data", capsys)
    assert code == 2 and "no such folder" in err


def test_folder_check_accepts_what_generate_writes(pushable):
    assert folder.problems(folder.check(pushable)) == []


# --- 13. user data in the card is inert -----------------------------------------------------------

def test_hostile_file_names_are_escaped_in_the_card(tmp_path):
    hostile = "x`\n## INJECTED\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>.JPEG"
    items = [("good", 1, jpeg_bytes(photo(1))), (hostile, 2, b"not an image at all")]
    engine.generate(["clean"], list_source(items), tmp_path, progress=False)
    card = (tmp_path / "README.md").read_text()
    assert "INJECTED" in card  # listed as a skip...
    assert not [line for line in card.splitlines() if line.lstrip().startswith("## INJECTED")]  # ...but inert:
    assert "<img" not in card and "&lt;img src=x onerror=alert(1)&gt;" in card  # no raw HTML,
    assert "[click](" not in card and "\\[click\\](javascript" in card  # no link, no code span
    assert "x\\` ## INJECTED" in card


# --- 7. --set values are checked against the registry's declarations before anything runs ----------

@pytest.mark.parametrize("config,setting", [("drawing", "kernel_size=abc"), ("drawing", "kernel_size=-5"),
                                            ("drawing", "directions=0"), ("drawing", "gradient=evil"),
                                            ("drawing", "kernel_size=[1,2]"), ("toon_ius", "work_max_side=-1")])
def test_bad_set_values_are_one_line_and_write_nothing(tmp_path, capsys, config, setting):
    out = tmp_path / "out"
    assert cli.main(["generate", config, "--set", setting, "--out", str(out), "--limit", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and setting.split("=")[0] in err and "must be" in err
    assert not out.exists()

"""Publishing you can trust: `shift-hub push` and `push-results` refuse bad input before anything exists on the
Hub, delete only what the plan lists, keep files shift_hub did not write, say when nothing changed, and work
against the local Hub (tests/hub_server.py) as a user would start it, without HF_HUB_DISABLE_XET.

Every Hub step is the real CLI in a subprocess pointed at a local server (huggingface_hub reads HF_ENDPOINT at
import), as in tests/test_hub.py.
"""
from __future__ import annotations

import base64
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from hub_server import client_env
from shift_hub.generate import generate

TOKEN = "hf_trustHUBtokenForTests0123456789"
SHARD = "clean/validation-00000-of-00001.parquet"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "shift_hub"
    generate(["clean"], "samples", out, limit=3, progress=False)
    return out


def hub_env(endpoint: str, home: Path, xet_switch: bool = True) -> dict:
    """The user's environment: HF_ENDPOINT and a token; HF_HUB_DISABLE_XET=1 only when `xet_switch`."""
    return client_env(endpoint, TOKEN, home, xet_off=xet_switch)


@pytest.fixture()
def env(hub, tmp_path) -> dict:
    return hub_env(hub.url, tmp_path)


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "shift_hub.cli", *args], env=env, capture_output=True, text=True,
                            timeout=120, cwd=Path(env["HF_HOME"]).parent)
    assert TOKEN not in result.stdout + result.stderr, "the token leaked into the output"
    return result


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def nothing_created(hub, before: int) -> None:
    assert not [r for r in hub.state.requests[before:] if r.startswith("POST ") and
                ("/api/repos/create" in r or "/commit/" in r or "/branch/" in r)]


def put_on_hub(hub, repo_id: str, files: dict[str, bytes]) -> None:
    """Files someone else added to the repo (a commit straight into the server's state)."""
    repo = hub.state.repos[("dataset", repo_id)]
    hub.state.apply_commit(repo, "main", [{"key": "header", "value": {"summary": "by hand"}}] + [
        {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode()}}
        for path, data in files.items()])


# --- 1. an undecodable image is refused before anything is created ------------------------------------

def break_first_image(shard: Path) -> None:
    """Garbage for the first image's bytes, the footer kept: the folder checks (footers, row counts) pass."""
    footer = {k: v for k, v in pq.read_metadata(shard).metadata.items() if k != b"ARROW:schema"}
    table = pq.read_table(shard)
    cells = table.column("image").to_pylist()
    cells[0] = {**cells[0], "bytes": cells[0]["bytes"][:200] + b"\0garbage" * 64}
    at = table.schema.get_field_index("image")
    table = table.set_column(at, "image", pa.array(cells, type=table.schema.field(at).type))
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **footer}), shard)


def test_an_undecodable_thumbnail_image_is_one_line_before_anything_is_created(out, hub, env, tmp_path):
    from shift_hub import folder

    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    break_first_image(broken / SHARD)
    assert folder.problems(folder.check(broken)) == []  # what push checked before: it passed
    before = len(hub.state.requests)
    for extra in (["--dry-run"], []):
        line = one_line_error(cli(env, "push", str(broken), "org/broken", *extra))
        assert str(broken / SHARD) in line and "cannot be decoded" in line and "clean" in line
        assert "rerun the same `shift-hub generate`" in line and "nothing was created" in line
    assert ("dataset", "org/broken") not in hub.state.repos
    nothing_created(hub, before)


# --- 2. a bare repo id is refused before anything is created ------------------------------------------

def test_a_repo_id_without_namespace_is_refused_in_one_line_push_and_push_results(out, hub, env, tmp_path):
    results = results_dir(tmp_path, {"clean_top1": 70.0})
    before = len(hub.state.requests)
    for args in (["push", str(out), "noslash"], ["push", str(out), "noslash", "--dry-run"],
                 ["push-results", str(results), "noslash"]):
        line = one_line_error(cli(env, *args))
        assert "'noslash'" in line and "NAMESPACE/NAME" in line and "my-org/noslash" in line
    assert not [k for k in hub.state.repos if k[1].endswith("/noslash")]
    assert hub.state.requests[before:] == []  # refused before any request


# --- 3. push deletes only what its plan lists, and keeps files shift_hub did not write ------------------

def test_push_lists_every_deletion_and_keeps_files_shift_hub_did_not_write(out, hub, env):
    assert cli(env, "push", str(out), "org/notes").returncode == 0
    stale = "clean/validation-00000-of-00003.parquet"  # a shard of an earlier push with 3 shards
    foreign = {"clean/NOTES.md": b"my notes", "clean/extra/validation-00000-of-00001.parquet": b"mine"}
    put_on_hub(hub, "org/notes", {stale: b"old shard", **foreign})

    dry = cli(env, "push", str(out), "org/notes", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"  delete {stale}" in dry.stdout
    assert dry.stdout.count("delete ") == 1  # only the stale shard
    kept = "kept on the Hub, not written by shift_hub (--overwrite deletes them): " + ", ".join(sorted(foreign))
    assert kept in dry.stdout

    pushed = cli(env, "push", str(out), "org/notes")
    assert pushed.returncode == 0, pushed.stderr
    assert f"  delete {stale}" in pushed.stdout and kept in pushed.stdout
    files = hub.state.files("org/notes")
    assert stale not in files and SHARD in files
    assert all(files[path] == data for path, data in foreign.items())

    dry = cli(env, "push", str(out), "org/notes", "--overwrite", "--dry-run")
    assert all(f"  delete {path}  (not written by shift_hub; --overwrite)" in dry.stdout for path in foreign)
    assert cli(env, "push", str(out), "org/notes", "--overwrite").returncode == 0
    files = hub.state.files("org/notes")
    assert not set(foreign) & set(files) and SHARD in files


def test_a_foreign_file_load_dataset_would_read_with_the_config_is_refused(out, hub, env):
    assert cli(env, "push", str(out), "org/mixed").returncode == 0
    foreign = "clean/validation-extra.parquet"  # matches the card's data_files glob clean/validation-*.parquet
    put_on_hub(hub, "org/mixed", {foreign: b"someone's rows"})
    repo = hub.state.repos[("dataset", "org/mixed")]
    commits = len(repo.commits)
    for extra in (["--dry-run"], []):
        line = one_line_error(cli(env, "push", str(out), "org/mixed", *extra))
        assert foreign in line and "--overwrite" in line and "load_dataset" in line
    assert len(repo.commits) == commits
    assert cli(env, "push", str(out), "org/mixed", "--overwrite").returncode == 0
    assert foreign not in hub.state.files("org/mixed")


def test_a_push_that_changes_nothing_says_so(out, hub, env):
    assert cli(env, "push", str(out), "org/same").returncode == 0
    repo = hub.state.repos[("dataset", "org/same")]
    commits = len(repo.commits)
    again = cli(env, "push", str(out), "org/same")
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout and "/commit/" not in again.stdout
    assert len(repo.commits) == commits


# --- 4. push-results of unchanged results, and the local Hub as a user starts it ------------------------

def results_dir(tmp_path: Path, values: dict[str, float], name: str = "model") -> Path:
    """A results folder as `shift-hub evaluate` leaves it: .eval_results/shift_hub.yaml."""
    from huggingface_hub import EvalResultEntry

    from shift_hub.evaluation import eval_results

    folder = tmp_path / name
    (folder / eval_results.FOLDER).mkdir(parents=True, exist_ok=True)
    items = [EvalResultEntry(dataset_id="org/bench", task_id=task, value=value, dataset_revision="a" * 40,
                             date="2025-01-15T10:30:00+00:00", notes="shift_hub 0.1.0")
             for task, value in values.items()]
    (folder / eval_results.FOLDER / eval_results.FILENAME).write_text(eval_results.dump(items), encoding="utf-8")
    return folder


def test_pushing_unchanged_results_again_says_nothing_changed(hub, env, tmp_path):
    values = {"clean_top1": 70.0, "imagenet_c_top1": 40.0, "imagenet_c_mce": 80.0}
    results = results_dir(tmp_path, values)
    hub.state.create_repo("model", "org/scored", private=False)
    repo = hub.state.repos[("model", "org/scored")]
    first = cli(env, "push-results", str(results), "org/scored")
    assert first.returncode == 0 and "3 new" in first.stdout, first.stdout + first.stderr
    commits = len(repo.commits)

    again = cli(env, "push-results", str(results), "org/scored")
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout and "already holds these 3 entries" in again.stdout
    assert "replaced" not in again.stdout and "/commit/" not in again.stdout  # no stale commit URL
    assert len(repo.commits) == commits

    results_dir(tmp_path, {**values, "clean_top1": 71.0})
    changed = cli(env, "push-results", str(results), "org/scored")
    assert changed.returncode == 0 and "1 changed, 2 unchanged" in changed.stdout, changed.stdout
    assert len(repo.commits) == commits + 1

    # no write access: the pull request is opened once; the same results again open nothing new
    hub.state.create_repo("model", "someone/scored", private=False)
    opened = cli(env, "push-results", str(results), "someone/scored")
    assert opened.returncode == 0 and "opened pull request" in opened.stdout, opened.stdout + opened.stderr
    again = cli(env, "push-results", str(results), "someone/scored")
    assert again.returncode == 0 and "nothing changed" in again.stdout and "pull request" in again.stdout
    results_dir(tmp_path, {**values, "clean_top1": 72.0})
    updated = cli(env, "push-results", str(results), "someone/scored")  # new values update that pull request
    assert updated.returncode == 0 and "in pull request" in updated.stdout and "1 changed" in updated.stdout
    assert len(hub.state.repos[("model", "someone/scored")].pulls) == 1


def start_local_hub(*args: str) -> tuple[subprocess.Popen, str]:
    """`python tests/hub_server.py ARGS` as a user runs it; (process, the HF_ENDPOINT it prints)."""
    server = subprocess.Popen([sys.executable, str(REPO / "tests" / "hub_server.py"), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in server.stdout:
        found = re.search(r"export HF_ENDPOINT=(\S+)", line)
        if found:
            return server, found.group(1)
    server.kill()
    raise AssertionError(f"no HF_ENDPOINT printed: {server.stderr.read()}")


@pytest.mark.skipif(not __import__("importlib").util.find_spec("hf_xet"), reason="hf_xet not installed")
def test_the_local_hub_started_by_hand_takes_a_push_without_hf_hub_disable_xet(out, tmp_path):
    server, endpoint = start_local_hub("--namespace", "my-org")
    try:
        env = hub_env(endpoint, tmp_path, xet_switch=False)
        pushed = cli(env, "push", str(out), "my-org/shift_hub")
        assert pushed.returncode == 0, pushed.stderr[-2000:]
        assert f"dataset page: {endpoint}/datasets/my-org/shift_hub" in pushed.stdout
        made = subprocess.run([sys.executable, "-c", "from huggingface_hub import HfApi; "
                               "HfApi().create_repo('my-org/model')"], env=env, capture_output=True, text=True)
        assert made.returncode == 0, made.stderr[-2000:]
        results = cli(env, "push-results", str(results_dir(tmp_path, {"clean_top1": 70.0})), "my-org/model")
        assert results.returncode == 0 and "updated .eval_results/shift_hub.yaml" in results.stdout, results.stderr
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: a quiet exit
        assert server.wait(timeout=10) == 0 and "Traceback" not in server.stderr.read()

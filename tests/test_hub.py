"""Cards, `shift-hub push` and a round trip through a local Hub-compatible server (tests/hub_server.py).

huggingface_hub and datasets read HF_ENDPOINT when imported, so every client-side step runs in a
subprocess pointed at the server; the server runs in this process, where the tests read its state.
Uploads use the LFS protocol (HF_HUB_DISABLE_XET=1): the server does not speak Xet.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from hub_server import client_env
from shift_hub.generate import generate
from shift_hub.hub import card_facts, cards, legacy_card

TOKEN = "hf_secretTOKENforTests0123456789"
LOAD_ROWS = r"""
import hashlib, json, sys, datasets
ds = datasets.load_dataset(sys.argv[1], sys.argv[2], split="validation")
ds = ds.cast_column("image", datasets.Image(decode=False))
print(json.dumps([[r["image_id"], r["label"], r["labels"], r["config"], r["severity"],
                   hashlib.sha256(r["image"]["bytes"]).hexdigest()] for r in ds]))
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "shift_hub"
    generate(["clean", "clean_full"], "samples", out, limit=3, progress=False)
    return out


@pytest.fixture()
def env(hub, tmp_path) -> dict:
    return client_env(hub.url, TOKEN, tmp_path, HF_DATASETS_CACHE=str(tmp_path / "datasets_cache"),
                      HF_HUB_VERBOSITY="debug")


SPLIT_COMMITS = ("import sys; from shift_hub.hub import push; push.xet_uploads = lambda: True; "
                 "from shift_hub.cli import main; sys.exit(main())")


def shift_hub(env: dict, *args: str, split_commits: bool = False) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; `split_commits` takes the path used when hf_xet may split the upload."""
    entry = ["-c", SPLIT_COMMITS, *args] if split_commits else ["-m", "shift_hub.cli", *args]
    # run outside the checkout, so the installed package (with shift_hub.cards) is the one imported
    result = subprocess.run([sys.executable, *entry], env=env, capture_output=True, text=True, timeout=120,
                            cwd=Path(env["HF_HOME"]).parent)
    assert TOKEN not in result.stdout + result.stderr, "the token leaked into the output"
    return result


def rows(env: dict, path_or_repo: str, config: str) -> list:
    env = {k: v for k, v in env.items() if k != "HF_HUB_DISABLE_XET"}  # downloads work with hf_xet on
    result = subprocess.run([sys.executable, "-c", LOAD_ROWS, path_or_repo, config], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def remote_card(hub, repo_id: str, rev: str = "main") -> str:
    return hub.state.files(repo_id, rev)["README.md"].decode()


def remote_facts(hub, repo_id: str, rev: str = "main") -> card_facts.CardFacts:
    return card_facts.CardFacts.from_json(hub.state.files(repo_id, rev)[card_facts.FILENAME].decode())


# --- cards, offline ---------------------------------------------------------------------------------

def test_card_is_valid_and_says_what_it_must(out):
    text = (out / "README.md").read_text()
    card = cards.validate_card(text)
    assert [c["config_name"] for c in card.data.configs] == ["clean", "clean_full"]
    assert card.data.license == ["cc-by-2.0", "cc0-1.0"]  # camera, chelsea: CC0; china: CC BY 2.0
    for needed in ("CC BY 2.0 (danielbuechele on Flickr)", "images written | 3", "image-id list SHA-256", "seed | 0",
                   "shift_hub version | 0.1.0", "samples", "Russakovsky", "ClassLabel", "Known deviations",
                   "![clean: first 3 images](thumbnails/clean.jpg)"):
        assert needed in text, needed
    assert (out / "thumbnails" / "clean.jpg").stat().st_size > 1000
    assert not list(out.glob("thumbnails/validation-*.parquet"))  # never mistaken for a data file
    with pytest.raises(cards.CardError):
        cards.validate_card(text.replace("pretty_name: ", "pretty_name: twice\npretty_name: ", 1))


def test_merge_keeps_remote_configs_and_foreign_prose(out):
    clean = cards.local_facts(out, ["clean"])
    full = cards.local_facts(out, ["clean_full"])
    merged = card_facts.merge(clean, full)
    assert cards.validate_card(str(cards.render(merged, "org/x"))).data.configs[0]["config_name"] == "clean_full"
    assert set(merged.facts) == {"clean", "clean_full"}
    foreign = ("---\nlicense: mit\ntags: [mine]\nconfigs:\n- config_name: other\n  data_files: other/*.parquet\n"
               "---\n# Hand-written card\nKeep me.\n")
    facts = card_facts.merge(clean, legacy_card.read(foreign))
    merged = cards.render(facts, "org/x")
    assert [c["config_name"] for c in merged.data.configs] == ["other", "clean"]
    assert "mine" in merged.data.tags and "Keep me." in merged.text
    stored = card_facts.CardFacts.from_json(facts.to_json())  # later pushes read shift_hub.json, not the card
    again = cards.render(card_facts.merge(full, stored), "org/x")  # the carried-over prose survives them
    assert [c["config_name"] for c in again.data.configs] == ["other", "clean", "clean_full"]
    assert again.text.count("Keep me.") == 1 and "mine" in again.data.tags


def test_noncommercial_configs_say_so(out):
    stats = {"encoding": {"format": "JPEG", "quality": 95}, "seed": 0, "version": "0.1.0", "source": "test",
             "shards": 0, "written": 0, "skipped": [], "converted": []}
    facts = card_facts.config_facts(out, "cartoon", stats)
    assert facts["noncommercial"]
    card = cards.compose_card([(facts, cards.config_entry("cartoon"))], "org/x")
    assert "non-commercial use only" in card.text and "`cartoon`" in card.text.split("## License")[1]
    cards.validate_card(str(card))


class RecordingApi:
    """Stands in for HfApi to see what `_upload` commits, call by call."""

    def __init__(self, remote_files=()):
        self.calls, self.remote_files = [], list(remote_files)

    def upload_folder(self, folder_path, delete_patterns, **kw):
        staged = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())
        self.calls.append(("upload_folder", staged, delete_patterns))

    def list_repo_files(self, *args, **kw):
        return self.remote_files

    def create_commit(self, operations, **kw):
        self.calls.append(("create_commit", [(type(op).__name__, op.path_in_repo) for op in operations], None))


def test_card_is_committed_with_or_after_the_data(out, monkeypatch):
    from shift_hub.hub import push

    the_plan = push.plan(out, "org/x", ["clean"], remote=False)
    the_plan.deletions = ["clean/validation-00000-of-00009.parquet"]  # exactly what the plan lists goes
    shard, thumb = "clean/validation-00000-of-00001.parquet", "thumbnails/clean.jpg"
    monkeypatch.setattr(push, "xet_uploads", lambda: False)
    api = RecordingApi()
    push._upload(api, the_plan)  # LFS: upload_folder makes one commit of everything
    assert api.calls == [("upload_folder", ["README.md", shard, "eval.yaml", "shift_hub.json", thumb],
                          the_plan.deletions)]

    monkeypatch.setattr(push, "xet_uploads", lambda: True)  # may split in commits
    api = RecordingApi(["README.md", shard, "clean/validation-00000-of-00009.parquet", "clean_full/a.parquet"])
    push._upload(api, the_plan)
    assert api.calls == [
        ("upload_folder", [shard, thumb], None),
        ("create_commit", [("CommitOperationAdd", "README.md"), ("CommitOperationAdd", "shift_hub.json"),
                           ("CommitOperationAdd", "eval.yaml"),
                           ("CommitOperationDelete", "clean/validation-00000-of-00009.parquet")], None)]


# --- push and load through the fake Hub -------------------------------------------------------------

def test_push_then_load_dataset_round_trip(out, hub, env):
    dry = shift_hub(env, "push", str(out), "org/shift_hub", "--configs", "clean", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "clean/validation-00000-of-00001.parquet" in dry.stdout and "kB" in dry.stdout
    assert f"dataset page: {hub.url}/datasets/org/shift_hub" in dry.stdout
    assert ("dataset", "org/shift_hub") not in hub.state.repos  # a dry run creates nothing

    pushed = shift_hub(env, "push", str(out), "org/shift_hub", "--configs", "clean")
    assert pushed.returncode == 0, pushed.stderr
    assert f"dataset page: {hub.url}/datasets/org/shift_hub" in pushed.stdout
    assert TOKEN in hub.state.tokens_seen
    files = hub.state.files("org/shift_hub")
    assert "clean/validation-00000-of-00001.parquet" in files and "thumbnails/clean.jpg" in files
    assert remote_facts(hub, "org/shift_hub").names == ["clean"]  # shift_hub.json beside the card...
    assert not any(p.startswith("clean_full/") for p in files)
    assert files["clean/validation-00000-of-00001.parquet"] == \
        (out / "clean" / "validation-00000-of-00001.parquet").read_bytes()
    cards.validate_card(remote_card(hub, "org/shift_hub"))

    remote_rows = rows(env, "org/shift_hub", "clean")
    assert len(remote_rows) == 3
    assert remote_rows == rows(env, str(out), "clean")  # ...is not read as data, on the Hub or in the folder


def test_push_to_a_repo_holding_other_configs_keeps_them(out, hub, env, tmp_path):
    first = shift_hub(env, "push", str(out), "org/two", "--configs", "clean_full", "--private")
    assert first.returncode == 0, first.stderr
    assert hub.state.repos[("dataset", "org/two")].private
    before = hub.state.files("org/two")

    branch = shift_hub(env, "push", str(out), "org/two", "--configs", "clean", "--revision", "v1")
    assert branch.returncode == 0, branch.stderr
    assert "/tree/v1" in branch.stdout
    assert hub.state.files("org/two", "main") == before  # main untouched by a push to a branch
    assert "clean/validation-00000-of-00001.parquet" in hub.state.files("org/two", "v1")

    second = shift_hub(env, "push", str(out), "org/two", "--configs", "clean")
    assert second.returncode == 0, second.stderr
    assert "kept on the Hub as they are: clean_full" in second.stdout
    after = hub.state.files("org/two")
    for path, data in before.items():  # nothing of clean_full deleted or rewritten
        if path not in ("README.md", "shift_hub.json", "eval.yaml"):  # the card, its facts and the tasks gain clean
            assert after[path] == data, path
    card = cards.validate_card(remote_card(hub, "org/two"))
    assert [c["config_name"] for c in card.data.configs] == ["clean_full", "clean"]
    assert set(remote_facts(hub, "org/two").facts) == {"clean", "clean_full"}

    # `clean` regenerated in 2 shards, pushed the way hf_xet uploads go (data, then card + stale-shard
    # deletion in a last commit): the old shard goes, clean_full stays
    regenerated = tmp_path / "regen"
    shutil.copytree(out, regenerated)
    generate(["clean"], "samples", regenerated, limit=3, shard_size=2, overwrite=True, progress=False)
    repo = hub.state.repos[("dataset", "org/two")]
    commits = len(repo.commits)
    third = shift_hub(env, "push", str(regenerated), "org/two", "--configs", "clean", split_commits=True)
    assert third.returncode == 0, third.stderr
    assert len(repo.commits) == commits + 2  # data, then card + stale-shard deletion
    card_commit, data_commit = repo.history("main")[:2]
    assert hub.state.read(data_commit.files["README.md"], repo) == after["README.md"]  # card not yet changed
    assert "clean/validation-00000-of-00001.parquet" in data_commit.files
    assert "clean/validation-00000-of-00001.parquet" not in card_commit.files
    now = hub.state.files("org/two")
    assert sorted(p for p in now if p.startswith("clean/")) == [
        "clean/validation-00000-of-00002.parquet", "clean/validation-00001-of-00002.parquet"]
    assert all(now[p] == data for p, data in before.items() if p.startswith("clean_full/"))
    assert rows(env, "org/two", "clean") == rows(env, str(out), "clean")


def test_push_without_a_token_fails_clearly(out, hub, env):
    env = {k: v for k, v in env.items() if k != "HF_TOKEN"}  # and HF_HOME is empty: no login cache
    result = shift_hub(env, "push", str(out), "org/notoken")
    assert result.returncode == 2
    assert "no Hugging Face token" in result.stderr and "HF_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert ("dataset", "org/notoken") not in hub.state.repos


def test_connection_drop_publishes_nothing_and_the_next_push_completes(out, hub, env):
    hub.state.drop("PUT", "/lfs-objects/")  # cut once: huggingface_hub retries this one by itself
    hub.state.drop("POST", "/api/datasets/org/drop/commit/")  # cut the commit: not retried
    failed = shift_hub(env, "push", str(out), "org/drop")
    assert failed.returncode == 2
    assert "rerun the same command" in failed.stderr and "Traceback" not in failed.stderr
    assert not hub.state.drops  # both cuts happened
    repo = hub.state.repos[("dataset", "org/drop")]
    assert len(repo.commits) == 1 and set(hub.state.files("org/drop")) == {".gitattributes"}  # nothing half-published

    start = len(hub.state.requests)
    done = shift_hub(env, "push", str(out), "org/drop")
    assert done.returncode == 0, done.stderr
    assert not [r for r in hub.state.requests[start:] if r.startswith("PUT")]  # uploaded blobs were kept
    files = hub.state.files("org/drop")
    for config in ("clean", "clean_full"):
        local = out / config / "validation-00000-of-00001.parquet"
        assert files[f"{config}/{local.name}"] == local.read_bytes()
    assert len(repo.commits) == 2

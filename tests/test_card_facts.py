"""The card is a rendering, not a store (issue #23): README.md is rendered from shift_hub.json, the facts file beside
it, and never read back; `push` merges facts files; a card written before shift_hub.json existed (facts in HTML
comments, factored or one section per config) is read once, by hub/legacy_card.py, and then no longer needed.

Hub steps are the real CLI in a subprocess pointed at the local Hub (tests/hub_server.py), as in test_hub.py.
"""
from __future__ import annotations

import ast
import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from hub_server import client_env
from shift_hub import folder
from shift_hub.generate import generate
from shift_hub.hub import card_facts, cards, legacy_card, push
from shift_hub.hub.card_facts import FILENAME, CardFacts
from test_cards import LEGACY

TOKEN = "hf_factsTOKENforTests0123456789"
FIXTURES = REPO / "tests" / "fixtures"
FACTORED = FIXTURES / "card_factored_0.1.0.md"  # written by shift_hub 0.1.0: clean_full, gaussian_noise_1/2, other
FACTORED_FACTS = FIXTURES / "card_factored_0.1.0.facts.json"  # what 0.1.0's own parser read back from it


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("facts") / "shift_hub"
    generate(["clean", "gaussian_noise_1"], "samples", out, limit=2, progress=False)
    return out


@pytest.fixture()
def env(hub, tmp_path) -> dict:
    return client_env(hub.url, TOKEN, tmp_path)


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "shift_hub.cli", *args], env=env, capture_output=True, text=True,
                            timeout=120, cwd=Path(env["HF_HOME"]).parent)
    assert TOKEN not in result.stdout + result.stderr, "the token leaked into the output"
    return result


def put_on_hub(hub, repo_id: str, files: dict[str, bytes]) -> None:
    """Files someone else wrote to the repo (a commit straight into the server's state), the repo made if new."""
    repo, _ = hub.state.create_repo("dataset", repo_id, private=False)
    hub.state.apply_commit(repo, "main", [{"key": "header", "value": {"summary": "by hand"}}] + [
        {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode()}}
        for path, data in files.items()])


def hub_text(hub, repo_id: str, path: str) -> str:
    return hub.state.files(repo_id)[path].decode()


def hub_facts(hub, repo_id: str) -> CardFacts:
    return CardFacts.from_json(hub_text(hub, repo_id, FILENAME))


def without_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


# --- (a) write_card writes the facts and the card rendered from them ---------------------------------

def test_write_card_writes_shift_hub_json_and_the_card_rendered_from_it(out):
    readme, stored = (out / "README.md").read_bytes(), (out / FILENAME).read_bytes()
    facts = CardFacts.from_json(stored.decode())
    assert facts.names == ["clean", "gaussian_noise_1"] and facts.entries[0]["default"]
    from_footers = card_facts.config_facts(out, "clean", folder.summary(out)["clean"])
    assert facts.facts["clean"] == card_facts.complete({**from_footers, "thumbnail": 2})  # the complete facts
    assert facts.facts["gaussian_noise_1"]["deviation"].startswith("Random draws come from the per-image generator")
    assert "hendrycks2019benchmarking" in facts.bibtex and "russakovsky2015imagenet" in facts.bibtex
    assert str(cards.render(facts, out.name)).encode() == readme and facts.renders(readme.decode())
    assert stored.decode() == json.dumps(json.loads(stored), sort_keys=True, indent=1) + "\n"  # sorted, stable
    cards.write_card(out)  # again: the same bytes
    assert (out / "README.md").read_bytes() == readme and (out / FILENAME).read_bytes() == stored
    assert folder.is_shift_hub_card(out / "README.md")


def test_shift_hub_json_is_not_loaded_as_data(out):
    import datasets

    assert (out / FILENAME).is_file()
    for config in ("clean", "gaussian_noise_1"):
        ds = datasets.load_dataset(str(out), config, split="validation")
        assert len(ds) == 2 and set(ds["config"]) == {config}
    assert set(datasets.load_dataset(str(out), split="validation")["config"]) == {"clean"}  # the default config


def test_a_shift_hub_json_shift_hub_did_not_write_is_kept(out, tmp_path):
    mine = tmp_path / "mine"
    shutil.copytree(out, mine)
    (mine / FILENAME).write_text('{"my": "settings"}\n')
    with pytest.raises(cards.CardError, match="not a shift_hub facts file.*--overwrite"):
        cards.write_card(mine)
    assert (mine / FILENAME).read_text() == '{"my": "settings"}\n'
    cards.write_card(mine, replace_foreign=True)
    assert CardFacts.from_json((mine / FILENAME).read_text()).names == ["clean", "gaussian_noise_1"]


# --- (b) README.md is never read back ------------------------------------------------------------

def test_a_card_rendered_from_its_facts_is_never_read(out, monkeypatch):
    first = push.plan(out, "org/x", ["clean"], remote=False)
    remote = push.Remote({"README.md": first.card, FILENAME: first.facts}, [])

    def refuse(text):
        raise AssertionError("README.md was read back")

    monkeypatch.setattr(legacy_card, "read", refuse)
    second = push.plan(out, "org/x", ["gaussian_noise_1"], remote=remote)
    assert CardFacts.from_json(second.facts).names == ["clean", "gaussian_noise_1"]
    assert not second.remarks


def test_an_edited_card_is_rendered_again_from_shift_hub_json(out, hub, env):
    first = cli(env, "push", str(out), "org/edited", "--configs", "clean")
    assert first.returncode == 0, first.stderr
    pushed = hub_facts(hub, "org/edited").facts["clean"]
    card = hub_text(hub, "org/edited", "README.md")
    assert "images written: 2 ·" in card
    edited = without_comments(card).replace("images written: 2 ·", "images written: 999 ·") + "\nHand edit.\n"
    put_on_hub(hub, "org/edited", {"README.md": edited.encode()})  # every comment gone, a number changed

    second = cli(env, "push", str(out), "org/edited", "--configs", "gaussian_noise_1")
    assert second.returncode == 0, second.stderr
    assert "README.md on the Hub was edited" in second.stdout
    facts = hub_facts(hub, "org/edited")
    assert facts.names == ["clean", "gaussian_noise_1"] and facts.facts["clean"] == pushed
    card = hub_text(hub, "org/edited", "README.md")
    assert cards.validate_card(card).data.configs[0]["config_name"] == "clean"
    assert facts.renders(card) and "images written: 999" not in card and "Hand edit." not in card
    assert "| images written | 2 |" in card and "`clean`" in card and "`gaussian_noise_1`" in card


# --- (c) a card of an older shift_hub is read once ------------------------------------------------

def test_a_factored_card_is_read_as_shift_hub_0_1_0_read_it():
    facts = legacy_card.read(FACTORED.read_text())
    added = {"licence_of": None}  # facts this version added since 0.1.0, read back as their defaults
    assert facts.facts == {name: {**added, **f} for name, f in json.loads(FACTORED_FACTS.read_text()).items()}
    assert facts.notes == "# Hand-written card\nKeep me." and facts.metadata == {"tags": ["mine"]}
    assert set(facts.bibtex) == {"hendrycks2019benchmarking", "russakovsky2015imagenet"}


def test_a_card_of_this_version_without_its_facts_keeps_its_configs_listed_and_its_notes_once(out):
    first = push.plan(out, "org/x", ["clean"], remote="---\ntags: [mine]\n---\n# Mine\nKeep me.\n")
    alone = legacy_card.read(first.card)  # its shift_hub.json deleted on the Hub: nothing but the card is left
    assert alone.names == ["clean"] and alone.facts["clean"]["foreign"]  # listed, its facts unknown: not guessed
    assert alone.notes == "# Mine\nKeep me." and alone.metadata == {"tags": ["mine"]}


@pytest.mark.parametrize("card, old", [(FACTORED.read_text(), ["other", "gaussian_noise_1", "gaussian_noise_2",
                                                                "clean_full"]),
                                       (LEGACY, ["old_shift"])], ids=["factored", "sections"])
def test_a_card_without_shift_hub_json_is_read_once(out, hub, env, card, old):
    repo_id = f"org/legacy-{len(old)}"
    put_on_hub(hub, repo_id, {"README.md": card.encode()})
    before = legacy_card.read(card)
    first = cli(env, "push", str(out), repo_id, "--configs", "clean")
    assert first.returncode == 0, first.stderr
    assert f"README.md on the Hub has no {FILENAME} beside it: read once" in first.stdout
    facts = hub_facts(hub, repo_id)
    assert facts.names == [*old, "clean"]
    assert all(facts.facts[name] == before.facts[name] for name in old)  # the old configs' facts, in the file
    assert facts.notes == before.notes and facts.renders(hub_text(hub, repo_id, "README.md"))
    assert set(before.bibtex) <= set(facts.bibtex)
    if old == ["old_shift"]:
        assert facts.facts["old_shift"]["deviation"] == "Old deviation text." and "old2020paper" in facts.bibtex

    put_on_hub(hub, repo_id, {"README.md": without_comments(hub_text(hub, repo_id, "README.md")).encode()})
    again = cli(env, "push", str(out), repo_id, "--configs", "gaussian_noise_1")  # the old card is not needed now
    assert again.returncode == 0, again.stderr
    assert "read once" not in again.stdout and "was edited" in again.stdout
    later = hub_facts(hub, repo_id)
    assert later.names == list(dict.fromkeys([*old, "clean", "gaussian_noise_1"]))  # gaussian_noise_1 replaced
    assert all(later.facts[name] == facts.facts[name] for name in [*old, "clean"] if name != "gaussian_noise_1")
    assert later.facts["gaussian_noise_1"] == CardFacts.from_json((out / FILENAME).read_text()).facts["gaussian_noise_1"]
    assert later.notes == before.notes


# --- a shift_hub.json on the Hub that cannot be read ------------------------------------------------

@pytest.mark.parametrize("stored, said", [("not json", "is not JSON"),
                                          ('{"my": "settings"}', "is not a shift_hub facts file"),
                                          ('{"shift_hub_facts": 2}', "is format 2, this shift_hub reads format 1")])
def test_a_bad_shift_hub_json_on_the_hub_is_one_line(out, stored, said):
    remote = push.Remote({"README.md": LEGACY, FILENAME: stored}, [])
    with pytest.raises(push.PushError) as exc:
        push.plan(out, "org/x", ["clean"], remote=remote)
    message = str(exc.value)
    assert f"{FILENAME} on the Hub at org/x {said}" in message and "--overwrite" in message
    assert "\n" not in message
    replaced = push.plan(out, "org/x", ["clean"], remote=remote, overwrite=True)  # then the card is read once
    assert CardFacts.from_json(replaced.facts).names == ["old_shift", "clean"]


def test_a_card_with_broken_metadata_is_one_line_unless_shift_hub_json_has_the_facts(out):
    broken = "---\nconfigs: [\n---\n# mine\n"
    with pytest.raises(push.PushError) as exc:
        push.plan(out, "org/x", ["clean"], remote=push.Remote({"README.md": broken}, []))
    assert "README.md on the Hub at org/x" in str(exc.value) and "fix its YAML block" in str(exc.value)
    assert "\n" not in str(exc.value)
    first = push.plan(out, "org/x", ["clean"], remote=False)
    second = push.plan(out, "org/x", ["gaussian_noise_1"],
                       remote=push.Remote({"README.md": broken, FILENAME: first.facts}, []))
    assert CardFacts.from_json(second.facts).names == ["clean", "gaussian_noise_1"]
    assert any("its metadata cannot be read" in remark for remark in second.remarks)


# --- (d) cards.py only renders --------------------------------------------------------------------

def test_cards_py_has_no_regular_expression_and_reads_no_card():
    source = (REPO / "shift_hub" / "hub" / "cards.py").read_text()
    imports = [node for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = {alias.name for node in imports for alias in node.names} | \
        {node.module for node in imports if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name.split(".")[0] for name in names} & {"re", "regex", "fnmatch"}  # no pattern matching at all
    assert "legacy_card" not in names and "parse_sections" not in source
    for marker in ("shift_hub:card ", "shift_hub:deviation", "/shift_hub:config"):  # 0.1.0's facts markers
        assert marker not in source, marker
    for module in ("push.py", "card_facts.py"):  # the card is read in legacy_card.py alone
        assert "DatasetCard(" not in (REPO / "shift_hub" / "hub" / module).read_text(), module


def test_a_foreign_shift_hub_json_is_refused_before_any_work(tmp_path):
    from shift_hub import cli

    out = tmp_path / "out"
    out.mkdir()
    (out / "shift_hub.json").write_text('{"mine": true}')
    assert cli.main(["generate", "clean", "--out", str(out), "--limit", "1", "--quiet"]) == 2
    assert not (out / "clean").exists() and (out / "shift_hub.json").read_text() == '{"mine": true}'

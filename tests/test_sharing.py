"""Sharing and comparing scores: eval.yaml at push, pinned results with `.eval_results` (huggingface_hub's
EvalResultEntry), `push-results` to a model repo (direct or pull request, updated not duplicated), several
models in one `evaluate`, the leaderboard with effective robustness, and the torchvision adapter.

Client steps that talk to the Hub run in subprocesses pointed at tests/hub_server.py (huggingface_hub reads
HF_ENDPOINT at import), as in tests/test_hub.py. Models are tiny random ones saved in the test; data is 3
sample photos per config."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from shift_hub.evaluation import eval_results, leaderboard
from shift_hub.hub import eval_yaml

TOKEN = "hf_sharingTOKENforTests0123456789"


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from shift_hub.generate import generate

    out = tmp_path_factory.mktemp("gen") / "shift_hub"
    generate(["clean", "gaussian_noise_3", "drawing"], "samples", out, limit=3, progress=False)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A timm folder (save_for_hf), a transformers ViT folder and random torchvision weights."""
    import timm
    import torch
    import torchvision
    from safetensors.torch import save_file
    from timm.models import save_for_hf
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from shift_hub import classes

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    save_for_hf(timm.create_model("test_resnet"), root / "tiny-timm", safe_serialization=True)
    names = [classes.lemmas()[w] for w in classes.wnids()]
    ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=37, num_labels=1000,
                                        id2label=dict(enumerate(names)))).save_pretrained(root / "tiny-vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "tiny-vit")
    state = torchvision.models.get_model("squeezenet1_1", weights=None).state_dict()
    save_file(state, str(root / "squeezenet.safetensors"))
    torch.save(state, root / "squeezenet.pth")
    return root


def _env(hub, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and "proxy" not in k.lower()}  # 127.0.0.1 directly
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_TOKEN=TOKEN, HF_HOME=str(home / "hf_home"),
               HF_DATASETS_CACHE=str(home / "datasets_cache"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    return env


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "shift_hub.cli", *args], env=env, capture_output=True,
                            text=True, timeout=300, cwd=Path(env["HF_HOME"]).parent)
    assert TOKEN not in result.stdout + result.stderr, "the token leaked into the output"
    return result


def _results(per: dict, dataset_id: str | None = "org/bench", **data) -> dict:
    """A results document with these per-config top-1 (fractions), as build_results writes it."""
    metrics = {c: {"n": 10, "n_scored": 10, "n_unscorable": 0, "label_space": "imagenet-1k", "top1": v,
                   "top5": min(1.0, v + 0.1), "ece": 0.1, "severity": None} for c, v in per.items()}
    return {"shift_hub_version": "0.1.0", "created": "2025-01-15T10:30:00+00:00",
            "model": {"id": "org/model", "adapter": "timm"},
            "data": {"source": "x", "kind": "local", "split": "validation", "configs": list(per),
                     **({"dataset_id": dataset_id} if dataset_id else {}), **data},
            "counts": {c: {"images": 10, "scored": 10, "unscorable": 0, "unreadable": 0} for c in per},
            "metrics": metrics, "summary": {}, "options": {}, "unreadable": {}}


# --- eval.yaml -----------------------------------------------------------------------------------------

def test_eval_yaml_has_one_task_per_headline_metric_for_present_configs():
    doc = eval_yaml.parse(eval_yaml.dump(eval_yaml.build(
        ["clean", "gaussian_noise_3", "shot_noise_1", "drawing", "drawing_pattern_i", "blur_bg", "toon_ius"])))
    assert doc["evaluation_framework"] == "shift_hub" and doc["name"] and doc["description"]
    tasks = {t["id"]: t for t in doc["tasks"]}
    assert list(tasks) == ["clean_top1", "imagenet_c_top1", "imagenet_c_mce", "imagenet_c_relative_mce",
                           "drawing_top1", "drawing_pattern_i_top1", "toon_ius_top1", "blur_bg_top1"]
    assert tasks["clean_top1"]["config"] == "clean" and tasks["clean_top1"]["split"] == "validation"
    assert tasks["imagenet_c_mce"]["configs"] == ["gaussian_noise_3", "shot_noise_1"]
    assert tasks["imagenet_c_relative_mce"]["configs"] == ["clean", "gaussian_noise_3", "shot_noise_1"]
    assert tasks["imagenet_c_mce"]["metric"] == {"name": eval_yaml.METRICS["mce"][0], "unit": "%",
                                                 "higher_is_better": False}
    assert "cartoon_top1" not in tasks  # only configs present
    every = {task_id for task_id, _, _ in eval_yaml.catalogue()}
    assert {"cartoon_top1", "drawing_pattern_iv_top1", "seg_img_top1", "toon_handdrawn_top1"} <= every
    assert "`imagenet_c_relative_mce`" in eval_yaml.markdown_table()


def test_eval_yaml_merges_by_task_id_and_keeps_foreign_tasks():
    remote = eval_yaml.build(["clean", "gaussian_noise_3"])
    remote["tasks"].append({"id": "hand_written", "config": "clean", "split": "validation"})
    remote["license_note"] = "kept"
    merged = eval_yaml.merge(["shot_noise_1", "drawing"], eval_yaml.parse(eval_yaml.dump(remote)))
    tasks = {t["id"]: t for t in merged["tasks"]}
    assert tasks["imagenet_c_top1"]["configs"] == ["gaussian_noise_3", "shot_noise_1"]  # union, registry order
    assert tasks["hand_written"] == {"id": "hand_written", "config": "clean", "split": "validation"}
    assert {"clean_top1", "drawing_top1"} <= set(tasks) and merged["license_note"] == "kept"
    for bad in ("tasks: [", "tasks: 3", "tasks:\n- id: a\n- id: a\n"):
        with pytest.raises(eval_yaml.EvalYamlError, match="fix or delete it"):
            eval_yaml.parse(bad)


# --- values, .eval_results and model-index -------------------------------------------------------------

def test_task_values_are_percent_and_mce_covers_exactly_the_task_configs():
    from shift_hub.evaluation.metrics import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS

    results = _results({"clean": 0.8, "gaussian_noise_3": 0.5, "shot_noise_1": 0.7, "drawing": 0.25})
    values = eval_results.task_values(results)
    assert values["clean_top1"] == 80.0 and values["drawing_top1"] == 25.0
    assert values["imagenet_c_top1"] == 60.0
    mce = (0.5 / ALEXNET_ERRORS["gaussian_noise"] + 0.3 / ALEXNET_ERRORS["shot_noise"]) / 2
    assert values["imagenet_c_mce"] == round(100 * mce, 2)
    rel = ((0.5 - 0.2) / (ALEXNET_ERRORS["gaussian_noise"] - ALEXNET_CLEAN_ERROR)
           + (0.3 - 0.2) / (ALEXNET_ERRORS["shot_noise"] - ALEXNET_CLEAN_ERROR)) / 2
    assert values["imagenet_c_relative_mce"] == round(100 * rel, 2)
    # the data holds a config this run did not score: the tasks needing it get no value
    partial = eval_results.task_values(results, ["clean", "gaussian_noise_3", "shot_noise_1", "fog_1", "drawing"])
    assert "imagenet_c_mce" not in partial and partial["drawing_top1"] == 25.0


def test_eval_results_file_round_trips_through_huggingface_hub(tmp_path):
    from huggingface_hub import EvalResultEntry, parse_eval_result_entries

    results = _results({"clean": 0.8, "drawing": 0.25}, resolved_revision="a" * 40)
    path, why = eval_results.write(results, tmp_path)
    assert why is None and path == tmp_path / ".eval_results" / "shift_hub.yaml"
    parsed = parse_eval_result_entries(yaml.safe_load(path.read_text()))
    assert [(e.dataset_id, e.task_id, e.value, e.dataset_revision) for e in parsed] == [
        ("org/bench", "clean_top1", 80.0, "a" * 40), ("org/bench", "drawing_top1", 25.0, "a" * 40)]
    assert parsed[0].date == "2025-01-15T10:30:00+00:00" and "shift_hub 0.1.0" in parsed[0].notes

    # a second run updates its (dataset, task) entries and keeps other datasets' ones
    other = EvalResultEntry(dataset_id="other/bench", task_id="clean_top1", value=1.0)
    merged = eval_results.merge([other, *parsed], [EvalResultEntry(dataset_id="org/bench", task_id="clean_top1",
                                                                   value=81.0)])
    assert [(e.dataset_id, e.task_id, e.value) for e in merged] == [
        ("other/bench", "clean_top1", 1.0), ("org/bench", "drawing_top1", 25.0), ("org/bench", "clean_top1", 81.0)]

    for bad, reason in ((_results({"clean": 0.8}, dataset_id=None), "--dataset-id"),
                        ({**results, "options": {"limit": 2}}, "--limit")):
        path, why = eval_results.write(bad, tmp_path)
        assert path is None and reason in why
        assert not (tmp_path / ".eval_results" / "shift_hub.yaml").exists()  # no stale file left to push


def test_model_index_is_built_with_huggingface_hub_types():
    from huggingface_hub import ModelCardData

    from shift_hub.evaluation.report import model_index_yaml

    results = _results({"clean": 0.8, "drawing": 0.25}, resolved_revision="b" * 40)
    card = ModelCardData(**yaml.safe_load(model_index_yaml(results)))
    assert card.model_name == "org/model"
    found = {(r.dataset_config, r.metric_type): r for r in card.eval_results}
    assert found[("clean", "accuracy")].metric_value == 80.0
    assert found[("clean", "top_5_accuracy")].metric_value == 90.0  # top-5 a distinct metric, same unit
    assert found[("drawing", "accuracy")].dataset_type == "org/bench"
    assert found[("drawing", "accuracy")].dataset_revision == "b" * 40


# --- torchvision ---------------------------------------------------------------------------------------

def test_torchvision_adapter_loads_local_weights_with_its_eval_transform(models, data_dir):
    from PIL import Image

    import shift_hub
    from shift_hub.evaluation.models import load_model

    for name in ("squeezenet.safetensors", "squeezenet.pth"):  # safetensors, or torch.load(weights_only=True)
        clf = load_model("torchvision:squeezenet1_1", weights=str(models / name))
        assert clf.adapter == "torchvision" and clf.name == "torchvision/squeezenet1_1"
    steps = " ".join(repr(t) for t in clf.transform.full.transforms)
    assert "Resize(size=256, interpolation=bilinear" in steps and "CenterCrop(size=(224, 224))" in steps
    assert "mean=(0.485, 0.456, 0.406)" in steps
    assert tuple(clf.preprocess(Image.new("RGB", (400, 300))).shape) == (3, 224, 224)
    result = shift_hub.evaluate("torchvision:squeezenet1_1", data_dir, ["clean"],
                                weights=str(models / "squeezenet.safetensors"), num_workers=0)
    model = result.results["model"]
    assert model["id"] == "torchvision/squeezenet1_1" and model["spec"] == "torchvision:squeezenet1_1"
    assert model["preprocessing"]["input_size"] == [224, 224] and len(model["weights_sha256"]) == 64
    assert result.metrics["clean"]["n_scored"] == 3


def test_torchvision_named_weights_are_read_weights_only(models, monkeypatch):
    import torch

    from shift_hub.evaluation.models import ModelLoadError, load_model

    seen = {}

    def fake_download(url, **kwargs):  # stands in for the download into $TORCH_HOME: no network in tests
        seen.update(kwargs, url=url)
        return torch.load(models / "squeezenet.pth", weights_only=True)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    clf = load_model("torchvision:squeezenet1_1")
    assert seen["weights_only"] is True and seen["url"].endswith(".pth")
    assert clf.name == "torchvision/squeezenet1_1.IMAGENET1K_V1" and clf.revision == "IMAGENET1K_V1"
    with pytest.raises(ModelLoadError, match="no 'V9' weights"):
        load_model("torchvision:squeezenet1_1/V9")
    with pytest.raises(ModelLoadError, match="not a torchvision classification model"):
        load_model("torchvision:no_such_net", weights=str(models / "squeezenet.pth"))
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_model("torchvision:resnet18", weights=str(models / "squeezenet.pth"))


# --- several models in one run -------------------------------------------------------------------------

def test_several_models_one_failing_the_others_still_ranked(models, data_dir, tmp_path, capsys):
    from shift_hub.cli import main

    # every model is loaded before any is scored: one that cannot be is one line and nothing is written
    code = main(["evaluate", f"local-dir:{models / 'tiny-timm'}", "no such model!", "--data", str(data_dir),
                 "--configs", "clean", "--out", str(tmp_path), "--num-workers", "0", "--quiet", "--no-plots"])
    captured = capsys.readouterr()
    assert code == 2
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("shift-hub: error: unknown model 'no such model!'")
    assert not (tmp_path / "leaderboard.md").exists() and not (tmp_path / "tiny-timm").exists()

    code = main(["evaluate", f"local-dir:{models / 'tiny-timm'}", f"local-dir:{models / 'tiny-timm'}", "--data",
                 str(data_dir), "--configs", "clean", "--out", str(tmp_path), "--num-workers", "0", "--quiet",
                 "--no-plots"])
    captured = capsys.readouterr()
    assert code == 0
    assert (tmp_path / "tiny-timm" / "results.json").is_file() and (tmp_path / "tiny-timm-2" / "results.json").is_file()
    assert "tiny-timm" in (tmp_path / "leaderboard.md").read_text()
    assert "not written: .eval_results/shift_hub.yaml (no Hub dataset id" in captured.out

    code = main(["evaluate", "timm:a", "timm:b", "--weights", "w.safetensors", "--data", str(data_dir)])
    assert code == 2 and "--weights applies to one model" in capsys.readouterr().err


# --- leaderboard ---------------------------------------------------------------------------------------

def test_leaderboard_fits_in_logit_space_and_ranks(tmp_path):
    def logit(p):
        return np.log(p / (1 - p))

    def on_line(clean):  # logit(shift) = 0.8 logit(clean) - 1
        return float(1 / (1 + np.exp(-(0.8 * logit(clean) - 1))))

    folders = []
    for name, clean, lift in (("a", 0.6, 0.0), ("b", 0.7, 0.05), ("c", 0.8, 0.0), ("d", 0.9, 0.0)):
        results = _results({"clean": clean, "drawing": on_line(clean) + lift, "gaussian_noise_3": on_line(clean)})
        results["model"]["id"] = f"org/{name}"
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
        folders.append(tmp_path / name)
    board, paths = leaderboard.leaderboard(folders, tmp_path / "lb")
    er = {r.model: r.effective_robustness for r in board.rows}
    assert er["org/b"]["drawing_top1"] > 3 and er["org/a"]["drawing_top1"] < 0  # above / below the fit
    assert abs(er["org/c"]["imagenet_c_top1"]) < 0.01  # all on the line (values are kept to 0.01 %)
    slope, intercept = board.fits["imagenet_c_top1"]
    assert slope == pytest.approx(0.8, abs=1e-3) and intercept == pytest.approx(-1, abs=1e-3)
    assert [r.model for r in board.rows] == ["org/d", "org/c", "org/b", "org/a"]  # mean shifted top-1
    table = list(csv.DictReader(paths["leaderboard_csv"].open()))
    assert table[0]["model"] == "org/d" and "er_drawing_top1" in table[0]
    assert "Effective robustness" in paths["leaderboard"].read_text()
    assert paths["effective_robustness"].stat().st_size > 10_000
    board, _ = leaderboard.leaderboard(folders, tmp_path / "lb2", sort="imagenet_c_mce", plots=False)
    assert board.rows[0].model == "org/d"  # lowest mCE first
    with pytest.raises(leaderboard.LeaderboardError, match="--sort nope"):
        leaderboard.leaderboard(folders, tmp_path / "lb3", sort="nope")
    with pytest.raises(leaderboard.LeaderboardError, match="no results.json"):
        leaderboard.find_results([tmp_path / "lb"])


# --- the whole flow through the test Hub -----------------------------------------------------------------

def test_push_evaluate_push_results_and_rank(data_dir, models, hub, tmp_path):
    """Push a generated folder in two parts (eval.yaml merged), evaluate two local models on the Hub copy
    in one run, share one model's scores as a pull request (twice: the PR is updated, not duplicated)
    and the other's directly, then rank both."""
    from huggingface_hub import parse_eval_result_entries

    env = _env(hub, tmp_path)
    for configs in (["clean", "gaussian_noise_3"], ["drawing"]):
        pushed = _cli(env, "push", str(data_dir), "org/bench", "--configs", *configs)
        assert pushed.returncode == 0, pushed.stderr
    assert "eval.yaml" in pushed.stdout and "benchmark tasks" in pushed.stdout
    doc = eval_yaml.parse(hub.state.files("org/bench")["eval.yaml"].decode())
    tasks = {t["id"]: t for t in doc["tasks"]}
    assert list(tasks) == ["clean_top1", "imagenet_c_top1", "imagenet_c_mce", "imagenet_c_relative_mce",
                           "drawing_top1"]  # the second push merged into the first one's tasks
    assert tasks["imagenet_c_relative_mce"]["configs"] == ["clean", "gaussian_noise_3"]
    sha = hub.state.repos[("dataset", "org/bench")].branches["main"]

    out = tmp_path / "results"
    run = _cli(env, "evaluate", f"local-dir:{models / 'tiny-timm'}", str(models / "tiny-vit"), "--data", "org/bench",
               "--out", str(out), "--num-workers", "0", "--quiet")
    assert run.returncode == 0, run.stderr
    folders = sorted(p.parent for p in out.glob("*/results.json"))
    assert [f.name for f in folders] == ["tiny-timm", "tiny-vit"]  # named by the model, not local-dir:...
    for folder in folders:
        results = json.loads((folder / "results.json").read_text())
        assert results["model"]["id"] == folder.name and results["model"]["path"].endswith(folder.name)
        assert results["data"]["resolved_revision"] == sha and results["data"]["dataset_id"] == "org/bench"
        assert results["environment"]["huggingface_hub"] and results["model"]["preprocessing"]
        entries = parse_eval_result_entries(yaml.safe_load((folder / ".eval_results" / "shift_hub.yaml").read_text()))
        assert [e.task_id for e in entries] == list(tasks)
        assert {(e.dataset_id, e.dataset_revision) for e in entries} == {("org/bench", sha)}
    assert (out / "leaderboard.md").is_file() and (out / "effective_robustness.png").is_file()

    # someone else's model: no write access, so a pull request; a second push updates that pull request
    hub.state.create_repo("model", "someone/tiny-vit", private=False)
    for _ in range(2):
        shared = _cli(env, "push-results", str(out / "tiny-vit"), "someone/tiny-vit")
        assert shared.returncode == 0, shared.stderr
    assert "opening a pull request instead" in shared.stdout and "nothing changed" in shared.stdout  # same results
    repo = hub.state.repos[("model", "someone/tiny-vit")]
    assert [p["num"] for p in repo.pulls] == [1] and set(repo.branches) == {"main", "refs/pr/1"}
    in_pr = parse_eval_result_entries(yaml.safe_load(hub.state.files("someone/tiny-vit", "refs/pr/1", "model")
                                                     [".eval_results/shift_hub.yaml"]))
    assert sorted(e.task_id for e in in_pr) == sorted(tasks)  # updated, not duplicated
    assert ".eval_results/shift_hub.yaml" not in hub.state.files("someone/tiny-vit", "main", "model")

    # our own model: --create-pr opens a pull request, a plain push commits to main
    hub.state.create_repo("model", "org/tiny-timm", private=False)
    asked = _cli(env, "push-results", str(out / "tiny-timm"), "org/tiny-timm", "--create-pr")
    direct = _cli(env, "push-results", str(out / "tiny-timm"), "org/tiny-timm")
    assert asked.returncode == 0 and direct.returncode == 0, asked.stderr + direct.stderr
    assert len(hub.state.repos[("model", "org/tiny-timm")].pulls) == 1
    assert ".eval_results/shift_hub.yaml" in hub.state.files("org/tiny-timm", "main", "model")

    combined = _cli(env, "push-results", str(out), "org/tiny-timm")  # the OUT of several models: pick one
    assert combined.returncode == 2 and f"give one of them (e.g. {out / 'tiny-timm'})" in combined.stderr
    missing = _cli(env, "push-results", str(tmp_path / "hf_home"), "org/tiny-timm")
    assert missing.returncode == 2 and "--dataset-id" in missing.stderr and "Traceback" not in missing.stderr

    from shift_hub.cli import main

    assert main(["leaderboard", *map(str, folders), "--out", str(tmp_path / "board")]) == 0
    rows = list(csv.DictReader((tmp_path / "board" / "leaderboard.csv").open()))
    assert sorted(r["model"] for r in rows) == ["tiny-timm", "tiny-vit"]
    assert all(r["data"] == f"org/bench@{sha[:12]}" for r in rows)
    assert (tmp_path / "board" / "effective_robustness.png").stat().st_size > 10_000

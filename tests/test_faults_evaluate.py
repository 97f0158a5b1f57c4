"""Faults in `evaluate`: bad options and weights end in one line, every processor style keeps images
already at the input size, ImageNet's repeated names map, and unreadable shards or images are reported
while the rest is scored. Models are tiny random ones saved in the test; data is 3 sample photos."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import shift_hub
from shift_hub import classes
from shift_hub.cli import main
from shift_hub.evaluation.labels import UnmappableLabels
from shift_hub.evaluation.models import load_model
from shift_hub.evaluation.runner import DataError

SHARD = "validation-00000-of-00001.parquet"
CRANES, MAILLOTS = ("n02012849", "n03126707"), ("n03710637", "n03710721")


class NeedsCode:
    """Anything that is not a tensor: unpickling it would run this module's code."""


def _cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse refuses a value by exiting
        return exc.code


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    info = ("loading model ", "loaded ")  # progress lines of the logger (hidden by --quiet)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(info)]
    assert len(lines) == 1 and lines[0].startswith("shift-hub: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _tiny_resnet(folder, id2label: dict, processor=None):
    """A random transformers ResNet with these labels (and a processor), saved to `folder`."""
    import torch
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    model = ResNetForImageClassification(ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1],
                                                      num_labels=len(id2label), id2label=id2label))
    model.save_pretrained(folder)
    (processor or ConvNextImageProcessor(size={"shortest_edge": 32})).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def timm_weights(tmp_path_factory):
    import timm
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    state = timm.create_model("test_resnet").state_dict()
    save_file(state, str(root / "test_resnet.safetensors"))
    narrow = {**state, "conv1.0.weight": torch.zeros(8, 3, 3, 3)}  # one tensor of another width
    save_file(narrow, str(root / "narrow.safetensors"))
    torch.save({"state_dict": state, "extra": NeedsCode()}, root / "needs_code.pth")
    torch.save(state, root / "pickle.safetensors")  # a torch.save zip under a safetensors name
    return root


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vit")
    names = [classes.lemmas()[w] for w in classes.wnids()]
    ViTForImageClassification(ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, num_labels=1000, id2label=dict(enumerate(names)))).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


# --- 8: one line naming the problem and what to do ---------------------------------------------

@pytest.mark.parametrize("option", [["--device", "foo"], ["--batch-size", "0"], ["--batch-size", "-3"],
                                    ["--num-workers", "-1"], ["--limit", "0"], ["--batch-size", "many"]])
def test_bad_option_values_are_one_line(option, tmp_path, capsys):
    assert _cli(["evaluate", "efficientnet_lite0", "--data", str(tmp_path), *option]) == 2
    line = _one_error_line(capsys)
    assert option[0] in line and repr(option[1]) in line


def test_api_refuses_bad_counts_and_devices(tmp_path):
    with pytest.raises(DataError, match="batch_size must be an integer >= 1"):
        shift_hub.evaluate("efficientnet_lite0", tmp_path, batch_size=0)
    with pytest.raises(DataError, match="'foo' is not a torch device"):
        shift_hub.evaluate("efficientnet_lite0", tmp_path, device="foo")


def test_weights_of_another_architecture_are_summarised(timm_weights, tmp_path, capsys):
    weights = timm_weights / "test_resnet.safetensors"
    assert _cli(["evaluate", "timm:test_efficientnet", "--weights", str(weights), "--data", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert f"weights {weights} do not fit timm:test_efficientnet" in line
    assert "missing keys (e.g. conv_stem.weight" in line and "unexpected (e.g." in line
    assert line.endswith("pass weights for this architecture")


def test_shape_mismatch_names_the_tensor(timm_weights, tmp_path, capsys):
    assert _cli(["evaluate", "timm:test_resnet", "--weights", str(timm_weights / "narrow.safetensors"),
                 "--data", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "1 shape mismatch (conv1.0.weight: checkpoint [8, 3, 3, 3] vs model [" in line
    assert "missing" not in line


def test_pickle_needing_code_is_refused_in_one_line(timm_weights, tmp_path, capsys):
    weights = timm_weights / "needs_code.pth"
    assert _cli(["evaluate", "timm:test_resnet", "--weights", str(weights), "--data", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert f"{weights} is a pickle that needs code execution to load; refused (weights_only=True)" in line
    assert "Convert it to safetensors" in line


def test_pickle_named_safetensors_is_named(timm_weights, tmp_path, capsys):
    weights = timm_weights / "pickle.safetensors"
    assert _cli(["evaluate", "timm:test_resnet", "--weights", str(weights), "--data", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert f"{weights} is not a safetensors file" in line and "PyTorch zip checkpoint" in line


def test_messages_name_cli_flags_not_keywords(tmp_path, capsys):
    assert _cli(["evaluate", "timm:test_resnet", "--data", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "--weights FILE" in line and "weights=" not in line
    labels = dict(enumerate(n for i, n in enumerate(classes.names()) if i != 3))
    model = _tiny_resnet(tmp_path / "partial", labels)
    capsys.readouterr()  # saving shows progress bars
    assert _cli(["evaluate", str(model), "--data", str(tmp_path), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "--allow-partial" in line and "allow_partial" not in line


# --- 9: one "already at the input size" rule for every processor style ------------------------

def _processor(style: str):
    from transformers import BitImageProcessor, CLIPImageProcessor, ConvNextImageProcessor, ViTImageProcessor

    norm = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    return {
        "vit_height_width": lambda: ViTImageProcessor(size={"height": 32, "width": 32}, **norm),
        "convnext_shortest_edge_crop_pct": lambda: ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875,
                                                                          **norm),
        "bit_crop_size": lambda: BitImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32},
                                                   **norm),
        "clip_crop_size": lambda: CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                                     **norm),
    }[style]()


@pytest.mark.parametrize("style", ["vit_height_width", "convnext_shortest_edge_crop_pct", "bit_crop_size",
                                   "clip_crop_size"])
def test_transformers_processors_keep_images_at_input_size(style, tmp_path):
    import torch
    from PIL import Image

    folder = _tiny_resnet(tmp_path, dict(enumerate(classes.wnids())), _processor(style))
    clf = load_model(str(folder))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8))
    plain = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    assert torch.allclose(clf.preprocess(img), (plain - 0.5) / 0.5, atol=1e-5)
    assert tuple(clf.preprocess(img.resize((60, 45))).shape) == (3, 32, 32)  # others: the full transform


def test_timm_keeps_images_at_input_size(tmp_path):
    import timm
    import torch
    from PIL import Image
    from timm.models import save_for_hf

    save_for_hf(timm.create_model("test_resnet"), tmp_path / "timm_dir", safe_serialization=True)
    clf = load_model(f"local-dir:{tmp_path / 'timm_dir'}")
    config = timm.data.resolve_data_config({}, model=clf.module)
    _, h, w = config["input_size"]
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3)).astype(np.uint8))
    plain = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    mean, std = (torch.tensor(config[k]).view(3, 1, 1) for k in ("mean", "std"))
    assert torch.allclose(clf.preprocess(img), (plain - mean) / std, atol=1e-5)


# --- 10: ImageNet's repeated names (two cranes, two maillots) -----------------------------------

def _permutation_keeping_repeats(seed: int = 0) -> np.ndarray:
    """perm[output] = ImageNet index, shuffled, with the two cranes and two maillots in their own order."""
    perm = np.random.default_rng(seed).permutation(1000)
    for pair in ((134, 517), (638, 639)):
        slots = sorted(np.flatnonzero(np.isin(perm, pair)))
        perm[slots] = pair
    return perm


def test_imagenet_names_in_another_order_map_fully(tmp_path):
    names = classes.names()  # first lemmas: 'crane' and 'maillot' each twice
    assert names.count("crane") == 2 and names.count("maillot") == 2
    perm = _permutation_keeping_repeats()
    folder = _tiny_resnet(tmp_path, {i: names[j] for i, j in enumerate(perm)})
    assert (load_model(str(folder)).imagenet_index == perm).all()


def test_a_lone_crane_is_named_ambiguous_with_its_wnids(tmp_path):
    names = classes.names()
    keep = [j for j in _permutation_keeping_repeats(1) if j != 517]  # the machine is gone: which crane is left?
    folder = _tiny_resnet(tmp_path, {i: names[j] for i, j in enumerate(keep)})
    with pytest.raises(UnmappableLabels) as info:
        load_model(str(folder))
    message = str(info.value)
    assert "only 998 of the 1000" in message
    assert f"'crane' could be {CRANES[0]} or {CRANES[1]}" in message and "maillot" not in message
    partial = load_model(str(folder), allow_partial=True)
    assert partial.describe()["imagenet_classes_covered"] == 998


# --- 11: unreadable shards and images ----------------------------------------------------------

@pytest.fixture(scope="module")
def two_configs(tmp_path_factory):
    from shift_hub.generate import generate

    out = tmp_path_factory.mktemp("two_configs")
    generate(["clean", "gaussian_noise_1"], "samples", out, limit=3, progress=False)
    return out


def _copy(two_configs, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(two_configs, data)
    return data


def _evaluate_cli(model, data, out, *extra) -> int:
    return _cli(["evaluate", str(model), "--data", str(data), "--out", str(out), "--num-workers", "0",
                 "--quiet", "--no-plots", *extra])


@pytest.mark.parametrize("damage", ["truncated", "zero_bytes"])
def test_damaged_shard_leaves_out_its_config_only(damage, two_configs, vit_dir, tmp_path, capsys):
    data = _copy(two_configs, tmp_path)
    shard = data / "gaussian_noise_1" / SHARD
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2] if damage == "truncated" else b"")
    assert _evaluate_cli(vit_dir, data, tmp_path / "out") == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(results["metrics"]) == ["clean"] and results["metrics"]["clean"]["n_scored"] == 3
    (entry,) = results["unreadable"]["gaussian_noise_1"]["files"]
    assert entry["file"] == f"gaussian_noise_1/{SHARD}"
    assert ("0 bytes" if damage == "zero_bytes" else "magic bytes") in entry["reason"]
    table = (tmp_path / "out" / "table.md").read_text()
    assert f"Could not be read (left out of the scores): gaussian_noise_1 (gaussian_noise_1/{SHARD}" in table
    capsys.readouterr()
    assert _evaluate_cli(vit_dir, data, tmp_path / "strict", "--strict") == 1
    assert "--strict: could not read gaussian_noise_1" in capsys.readouterr().err


def _garble_first_image(shard) -> str:
    """Rewrite the shard with row 0's image bytes replaced by garbage, schema and footer metadata kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    footer = {k: v for k, v in (pq.read_metadata(shard).metadata or {}).items() if k != b"ARROW:schema"}
    assert b"shift_hub" in footer
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    images[0] = {**images[0], "bytes": b"not an image at all"}
    column = table.schema.get_field_index("image")
    table = table.set_column(column, table.schema.field(column), pa.array(images, type=table.schema.field(column).type))
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **footer}), shard)
    assert b"shift_hub" in pq.read_metadata(shard).metadata
    return table.column("image_id")[0].as_py()


def test_undecodable_image_is_reported_and_the_rest_scored(two_configs, vit_dir, tmp_path, capsys):
    data = _copy(two_configs, tmp_path)
    bad_id = _garble_first_image(data / "clean" / SHARD)
    assert _evaluate_cli(vit_dir, data, tmp_path / "out") == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["counts"]["clean"] == {"images": 2, "scored": 2, "unscorable": 0, "unreadable": 1}
    assert results["metrics"]["gaussian_noise_1"]["n_scored"] == 3
    (entry,) = results["unreadable"]["clean"]["images"]
    assert entry["image_id"] == bad_id and entry["reason"].startswith("UnidentifiedImageError")
    assert "0x" not in entry["reason"]  # no memory address in the report
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| clean | imagenet-1k | 2 (+1 unreadable) |" in table and f"1 image(s) of clean ({bad_id}:" in table
    capsys.readouterr()
    assert _evaluate_cli(vit_dir, data, tmp_path / "strict", "--strict") == 1


def test_api_records_unreadable_and_raises_only_when_nothing_is_left(two_configs, vit_dir, tmp_path, capsys):
    data = _copy(two_configs, tmp_path)
    (data / "gaussian_noise_1" / SHARD).write_bytes(b"")
    result = shift_hub.evaluate(str(vit_dir), data, num_workers=0)
    assert list(result.metrics) == ["clean"] and "gaussian_noise_1" in result.results["unreadable"]
    (data / "clean" / SHARD).write_bytes(b"")
    with pytest.raises(DataError, match="no config could be read"):
        shift_hub.evaluate(str(vit_dir), data, num_workers=0)
    assert _evaluate_cli(vit_dir, data, tmp_path / "out") == 2
    assert "no config could be read: clean (clean/" in _one_error_line(capsys)

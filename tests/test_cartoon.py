"""The cartoon family: White-box generator architecture, TF semantics, checkpoint converter, weights
lookup, the batched contract over two processes, and the weight-free `cartoon_classic`."""
import copy
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shift_hub.registry import GPU, WEIGHTS, get
from shift_hub.shifts import whitebox_convert as wc
from shift_hub.shifts.cartoon import (
    Cartoonizer,
    TFConv2d,
    WhiteBoxGenerator,
    _prepare,
    cartoon,
    guided_filter,
    random_cartoonizer,
    tf1_resize_bilinear,
    tf_same_padding,
)
from shift_hub.shifts.cartoon_classic import cartoon_classic

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_INDEX = REPO.parent / "shared" / "fixtures" / "whitebox" / "model-33999.index"
DATA_BYTES = 5_868_300  # 1,467,075 float32 values


# --- architecture and TF semantics ---
def test_generator_has_the_release_parameter_count():
    assert sum(p.numel() for p in WhiteBoxGenerator().parameters()) == 1_467_075


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [(224, 3, 2, (0, 1)), (8, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (5, 1, 2, (0, 0)), (224, 7, 1, (3, 3)), (9, 3, 1, (1, 1))],
)
def test_tf_same_padding(size, kernel, stride, expected):
    assert tf_same_padding(size, kernel, stride) == expected


def test_stride2_conv_pads_at_the_end_like_tf():
    conv = TFConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    out = conv(torch.ones(1, 1, 4, 4))[0, 0]
    # windows rows/cols {0,1,2} and {2,3,pad}: 3x3=9, 3x2=6, 2x2=4 (torch's padding=1 would give 4,6,6,9)
    assert out.tolist() == [[9.0, 6.0], [6.0, 4.0]]


def test_tf1_resize_bilinear_upsample_by_two():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)  # [[0,1,2],[3,4,5]]
    expected = [
        [0.0, 0.5, 1.0, 1.5, 2.0, 2.0],  # src = dst/2; last column clamps to the edge
        [1.5, 2.0, 2.5, 3.0, 3.5, 3.5],
        [3.0, 3.5, 4.0, 4.5, 5.0, 5.0],
        [3.0, 3.5, 4.0, 4.5, 5.0, 5.0],
    ]
    out = tf1_resize_bilinear(x, 4, 6)[0, 0]
    assert out.tolist() == expected
    torch_half_pixel = F.interpolate(x, size=(4, 6), mode="bilinear", align_corners=False)[0, 0]
    assert not torch.allclose(out, torch_half_pixel)  # the porting trap the helper exists for


def test_tf1_resize_fast_doubling_equals_the_general_formula():
    from shift_hub.shifts.cartoon import _tf1_axis

    x = torch.randn(2, 3, 5, 7)
    fast = tf1_resize_bilinear(x, 10, 14)
    y_lo, y_hi, y_frac = _tf1_axis(5, 10, "cpu")
    x_lo, x_hi, x_frac = _tf1_axis(7, 14, "cpu")
    rows = lambda t: t[..., x_lo] + (t[..., x_hi] - t[..., x_lo]) * x_frac  # noqa: E731
    top, bottom = rows(x[..., y_lo, :]), rows(x[..., y_hi, :])
    assert torch.equal(fast, top + (bottom - top) * y_frac[:, None])


def test_tf1_resize_bilinear_non_integer_scale():
    x = torch.tensor([[[[0.0, 10.0, 20.0]]]])  # 1x3 -> 1x2: src = dst * 1.5
    assert tf1_resize_bilinear(x, 1, 2)[0, 0, 0].tolist() == [0.0, 15.0]


def test_guided_filter_box_mean_counts_valid_neighbours_only():
    y = torch.tensor([[[[0.0, 4.0], [8.0, 12.0]]]])
    out = guided_filter(torch.ones_like(y), y)  # flat guide: A = 0, output = box mean of box mean of y
    # every 3x3 window of a 2x2 image covers the 4 pixels: mean 6 (zero padding / 9 would give 24/9, 16/9...)
    assert torch.allclose(out, torch.full_like(y, 6.0))


def test_pre_and_post_processing_bgr_minus_one_one_truncated():
    model = WhiteBoxGenerator()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.tail.bias.copy_(torch.tensor([1.0, -1.0, 0.0]))  # network output in BGR order
    runner = Cartoonizer(_prepare(model, None, torch.device("cpu"), None))
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    (out,) = runner([image], None)
    # constant output survives the guided filter; (0 + 1) * 127.5 truncates to 127; B=255, G=0 -> RGB (127, 0, 255)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert (out == np.array([127, 0, 255], np.uint8)).all()


def test_batched_callable_odd_sizes_grouping_and_determinism():
    runner = random_cartoonizer(seed=1, batch_pixels=3 * 32 * 40)
    rng = np.random.default_rng(0)
    sizes = [(32, 40), (32, 40), (17, 23), (32, 40), (8, 8), (1, 1), (32, 40)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    outs = runner(images, [None] * len(images))
    assert [o.shape for o in outs] == [i.shape for i in images]
    assert all(o.dtype == np.uint8 for o in outs)
    alone = [runner([im], None)[0] for im in images]
    for a, b in zip(outs, alone):  # batching never changes an image's result beyond float rounding
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    again = runner(images, None)
    assert all(np.array_equal(a, b) for a, b in zip(outs, again))


def test_half_precision_path_stays_close_to_float32():
    torch.manual_seed(0)
    model = WhiteBoxGenerator()
    full = Cartoonizer(_prepare(copy.deepcopy(model), None, torch.device("cpu"), False))
    half = Cartoonizer(_prepare(copy.deepcopy(model), None, torch.device("cpu"), True))  # as on CUDA
    batch = np.random.default_rng(0).integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    expected = full.run_batch(batch)
    assert half.dtype == torch.float16
    assert np.abs(half.run_batch(batch).astype(int) - expected).max() <= 2


# --- converter against the official index ---
needs_index = pytest.mark.skipif(not OFFICIAL_INDEX.is_file(), reason="../shared/fixtures/whitebox absent")


@pytest.fixture
def synthetic_checkpoint(tmp_path):
    """The official index beside a synthetic data file: each float32 is its own position in the file."""
    index = tmp_path / "model-33999.index"
    shutil.copyfile(OFFICIAL_INDEX, index)
    np.arange(DATA_BYTES // 4, dtype="<f4").tofile(tmp_path / "model-33999.data-00000-of-00001")
    return index


@needs_index
def test_every_official_variable_maps_onto_the_module_with_matching_shape():
    entries = wc.read_index(OFFICIAL_INDEX)
    params = dict(WhiteBoxGenerator().named_parameters())
    assert len(entries) == len(params) == 36
    for name, entry in entries.items():
        target = wc.torch_name(name)
        assert target in params, name
        tf_shape = entry.shape if len(entry.shape) != 4 else tuple(entry.shape[i] for i in (3, 2, 0, 1))
        assert tuple(params[target].shape) == tf_shape, name
        assert entry.dtype == 1 and entry.size == 4 * int(np.prod(entry.shape))
    assert sum(int(np.prod(e.shape)) for e in entries.values()) == 1_467_075
    assert max(e.offset + e.size for e in entries.values()) == DATA_BYTES


@needs_index
def test_convert_synthetic_checkpoint_end_to_end(synthetic_checkpoint, tmp_path):
    out = wc.convert_checkpoint(synthetic_checkpoint, tmp_path / "gen.safetensors", verify_checksums=False)
    model = WhiteBoxGenerator()
    state = {k: torch.from_numpy(v) for k, v in wc.resolve_weights(out).items()}
    model.load_state_dict(state, strict=True)  # every tensor present, every shape right
    entry = wc.read_index(synthetic_checkpoint)["generator/Conv_3/weights"]  # HWIO (3, 3, 64, 64)
    h, w, i, o = 2, 1, 5, 7
    flat = entry.offset // 4 + ((h * 3 + w) * 64 + i) * 64 + o
    assert model.down2.weight[o, i, h, w].item() == float(flat)
    bias = wc.read_index(synthetic_checkpoint)["generator/Conv_9/biases"]
    assert model.tail.bias.tolist() == [float(bias.offset // 4 + k) for k in range(3)]
    # the factory builds a runnable model from the converted file
    runner = cartoon(weights=str(synthetic_checkpoint.parent / "gen.safetensors"), device="cpu")
    assert runner([np.zeros((8, 8, 3), np.uint8)], None)[0].shape == (8, 8, 3)


@needs_index
def test_checksums_are_verified_and_nothing_written_on_mismatch(synthetic_checkpoint, tmp_path):
    out = tmp_path / "gen.safetensors"
    with pytest.raises(wc.BadCheckpoint, match="CRC32C"):
        wc.convert_checkpoint(synthetic_checkpoint, out)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


@needs_index
def test_truncated_data_file_is_refused(synthetic_checkpoint, tmp_path):
    data = synthetic_checkpoint.with_name("model-33999.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(wc.BadCheckpoint, match="truncated"):
        wc.convert_checkpoint(synthetic_checkpoint, tmp_path / "gen.safetensors", verify_checksums=False)
    assert not (tmp_path / "gen.safetensors").exists()


def test_crc32c_known_value():
    assert wc.crc32c(b"123456789") == 0xE3069283


# --- missing weights: a clear error, nothing written ---
def test_missing_data_file_says_how_to_get_weights(tmp_path):
    index = tmp_path / "model-33999.index"
    index.write_bytes(b"x")
    out = tmp_path / "gen.safetensors"
    with pytest.raises(wc.MissingWeights) as err:
        wc.convert_checkpoint(index, out)
    message = str(err.value)
    assert "model-33999.data-00000-of-00001" in message and "convert-whitebox" in message
    assert "SystemErrorWang/White-box-Cartoonization" in message and "CC BY-NC-SA" in message
    assert not out.exists()


def test_factory_without_weights_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("SHIFT_HUB_WHITEBOX", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(wc.MissingWeights, match="convert-whitebox"):
        cartoon()
    with pytest.raises(wc.MissingWeights, match="does not exist"):
        cartoon(weights=str(tmp_path / "nope.safetensors"))
    with pytest.raises(wc.MissingWeights, match="no .safetensors or .index"):
        cartoon(weights=str(tmp_path))
    assert not (tmp_path / "cache").exists()


def test_cli_generate_cartoon_without_weights_exits_with_the_message(tmp_path, monkeypatch, capsys):
    from shift_hub import cli

    monkeypatch.delenv("SHIFT_HUB_WHITEBOX", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rc = cli.main(["generate", "cartoon", "--source", "samples", "--out", str(tmp_path / "out"), "--quiet"])
    assert rc != 0
    assert "convert-whitebox" in capsys.readouterr().err
    assert not list((tmp_path / "out").rglob("*.parquet"))


def test_cli_convert_then_generate_cartoon_loads_with_datasets(tmp_path, monkeypatch):
    """Weights named by $SHIFT_HUB_WHITEBOX (random here) drive `shift-hub generate cartoon` end to end."""
    import datasets
    from safetensors.numpy import save_file

    from shift_hub import cli

    weights = tmp_path / "random.safetensors"
    save_file({k: v.numpy() for k, v in WhiteBoxGenerator().state_dict().items()}, str(weights))
    monkeypatch.setenv("SHIFT_HUB_WHITEBOX", str(weights))
    out = tmp_path / "out"
    assert cli.main(["generate", "cartoon", "--source", "samples", "--limit", "2", "--out", str(out), "--quiet"]) == 0
    # a private cache: datasets' cache key for a local folder does not include its full path
    ds = datasets.load_dataset(str(out), "cartoon", split="validation", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 2 and set(ds["config"]) == {"cartoon"}
    assert all(w % 8 == 0 and h % 8 == 0 and min(w, h) <= 720 for w, h in (im.size for im in ds["image"]))


def test_hub_repo_id_is_read_from_the_offline_cache(tmp_path, monkeypatch):
    """A repo id resolves through huggingface_hub's cache layout without any network access."""
    from huggingface_hub import constants
    from safetensors.numpy import save_file

    snapshot = tmp_path / "hub" / "models--someone--whitebox" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    tensors = {k: v.detach().numpy() for k, v in WhiteBoxGenerator().state_dict().items()}
    save_file(tensors, str(snapshot / wc.DEFAULT_FILENAME))
    (tmp_path / "hub" / "models--someone--whitebox" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--whitebox" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = wc.resolve_weights("someone/whitebox")
    assert set(loaded) == set(tensors)
    with pytest.raises(wc.MissingWeights, match="Hub repo someone/absent"):
        wc.resolve_weights("someone/absent")


# --- registry ---
def test_registry_entries():
    spec = get("cartoon")
    assert spec.batched and spec.needs == frozenset({GPU, WEIGHTS}) and "weights" in spec.params
    assert (spec.geometry.max_shorter, spec.geometry.crop_multiple, spec.encoding.quality) == (720, 8, 95)
    assert "non-commercial" in spec.deviation
    classic = get("cartoon_classic")
    assert not classic.needs and not classic.batched and "Not ImageNet-Cartoon" in classic.deviation
    assert classic.load_fn() is cartoon_classic and spec.load_fn() is cartoon


# --- many processes: each image exactly once ---
_WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from accelerate import PartialState
    from shift_hub.rng import generator
    from shift_hub.shifts.cartoon import random_cartoonizer, split_for_this_process

    ids = [f"img{i:02d}" for i in range(9)]
    mine = split_for_this_process(ids)
    images = [generator(0, "cartoon", i).integers(0, 256, (16 + 8 * (k % 2), 24, 3), dtype=np.uint8)
              for k, i in enumerate(ids) if i in mine]
    outs = random_cartoonizer(seed=3)(images, None)
    rank = PartialState().process_index
    np.savez(f"{sys.argv[1]}/rank{rank}.npz", **dict(zip(mine, outs)))
    """
)


def test_split_in_a_single_process_keeps_everything():
    from shift_hub.shifts.cartoon import split_for_this_process

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        pytest.skip("running under a distributed launcher")
    assert split_for_this_process(["a", "b", "c"]) == ["a", "b", "c"]


def test_two_cpu_processes_split_the_images_each_exactly_once(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parts = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in (0, 1)]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    done = {**parts[0], **parts[1]}
    ids = [f"img{i:02d}" for i in range(9)]
    assert sorted(done) == ids
    from shift_hub.rng import generator

    runner = random_cartoonizer(seed=3)
    for k, i in enumerate(ids):  # the same result as one process doing everything
        image = generator(0, "cartoon", i).integers(0, 256, (16 + 8 * (k % 2), 24, 3), dtype=np.uint8)
        assert np.abs(runner([image], None)[0].astype(int) - done[i].astype(int)).max() <= 1


# --- cartoon_classic ---
def test_cartoon_classic_is_deterministic_and_keeps_size():
    import skimage.data

    image = skimage.data.chelsea()[:120, :161]
    a = cartoon_classic(image, np.random.default_rng(0))
    b = cartoon_classic(image, np.random.default_rng(99))
    assert a.dtype == np.uint8 and a.shape == image.shape and np.array_equal(a, b)
    assert not np.array_equal(a, image)
    # flatter than the photo: fewer distinct colours, yet the same picture
    assert len(np.unique(a.reshape(-1, 3), axis=0)) < len(np.unique(image.reshape(-1, 3), axis=0))
    assert np.abs(a.astype(float) - image).mean() < 40


@pytest.mark.parametrize("shape", [(8, 8, 3), (9, 31, 3), (1, 1, 3), (64, 3, 3)])
def test_cartoon_classic_odd_and_tiny_sizes(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = cartoon_classic(image, None)
    assert out.shape == shape and out.dtype == np.uint8


def test_cli_generate_cartoon_classic_loads_with_datasets(tmp_path):
    import datasets

    from shift_hub import cli

    out = tmp_path / "out"
    argv = ["generate", "cartoon_classic", "--source", "samples", "--limit", "2", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    ds = datasets.load_dataset(str(out), "cartoon_classic", split="validation", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 2 and set(ds["config"]) == {"cartoon_classic"}


def test_cartoon_classic_flat_image_stays_flat():
    image = np.full((32, 48, 3), (200, 120, 40), np.uint8)
    assert np.abs(cartoon_classic(image, None).astype(int) - image).max() <= 1

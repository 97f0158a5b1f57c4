"""Trusting what is loaded: a model folder's own Python code never runs unless asked for, the weights hash
is the hash of the file really loaded, a dead --ray-address fails in one line instead of hanging, and a
file name that is not UTF-8 skips that image instead of aborting the run. Models are tiny random ones."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import jpeg_bytes, photo
from shift_hub import classes
from shift_hub.evaluation.models import ModelLoadError, file_sha256, load_model

WNID = "n01440764"


def _run_cli(tmp_path: Path, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter, offline, with transformers' module cache inside tmp_path."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "shift_hub.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=tmp_path)


def _error_lines(result: subprocess.CompletedProcess) -> list[str]:
    info = ("loading model ", "loaded ")  # the logger's progress lines (hidden by --quiet)
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(info)]


# --- 1: a folder's custom code (auto_map) is not run on a "y" --------------------------------------

def _custom_code_folder(root: Path, marker: Path) -> Path:
    """A transformers folder whose config points at its own code (auto_map); importing that code writes `marker`."""
    folder = root / "custom-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "marker_net", "architectures": ["MarkerModel"],
        "auto_map": {"AutoConfig": "configuration_marker.MarkerConfig",
                     "AutoModelForImageClassification": "modeling_marker.MarkerModel"}}))
    ran = f"open({str(marker)!r}, 'a').write('ran\\n')\n"
    (folder / "configuration_marker.py").write_text(
        ran + "from transformers import PretrainedConfig\n\n\nclass MarkerConfig(PretrainedConfig):\n"
        "    model_type = 'marker_net'\n")
    (folder / "modeling_marker.py").write_text(ran + "raise RuntimeError('this model only proves its code ran')\n")
    return folder


@pytest.fixture
def say_yes(monkeypatch):
    """Whoever asks on stdin ("run the custom code? [y/N]") gets a "y"."""
    import builtins

    monkeypatch.setattr(builtins, "input", lambda *args: "y")


def test_custom_code_is_refused_in_one_line_even_when_stdin_says_yes(tmp_path):
    marker = tmp_path / "code_ran"
    folder = _custom_code_folder(tmp_path, marker)
    result = _run_cli(tmp_path, "evaluate", str(folder), "--data", "samples", "--out", str(tmp_path / "out"),
                      stdin="y\n")
    lines = _error_lines(result)
    assert not marker.exists(), "the folder's code ran"
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("shift-hub: error: "), result.stderr
    assert "auto_map" in lines[0] and "--trust-remote-code" in lines[0], lines[0]
    assert "[y/N]" not in result.stdout + result.stderr  # nothing asked


def test_the_library_refuses_custom_code_by_default(tmp_path, say_yes):
    import shift_hub

    marker = tmp_path / "code_ran"
    folder = _custom_code_folder(tmp_path, marker)
    with pytest.raises(ModelLoadError, match="trust_remote_code=True"):
        shift_hub.evaluate(str(folder), "samples", out=tmp_path / "out")
    with pytest.raises(ModelLoadError, match="auto_map"):
        load_model(str(folder))
    assert not marker.exists()


def test_a_mask_model_with_custom_code_is_not_run(tmp_path, say_yes):
    from shift_hub import masks

    marker = tmp_path / "code_ran"
    folder = _custom_code_folder(tmp_path, marker)
    masks._segmenter.cache_clear()
    with pytest.raises(masks.MaskUnavailable):
        masks._segmenter(str(folder))
    masks._segmenter.cache_clear()
    assert not marker.exists()


@pytest.mark.parametrize("how", ["cli", "api"])
def test_trust_remote_code_lets_the_code_run_when_asked(tmp_path, how):
    marker = tmp_path / "code_ran"
    folder = _custom_code_folder(tmp_path, marker)
    if how == "cli":
        result = _run_cli(tmp_path, "evaluate", str(folder), "--trust-remote-code", "--data", "samples")
    else:  # the Python API, in a fresh interpreter as well
        code = ("import shift_hub\nfrom shift_hub.evaluation.models import ModelLoadError\ntry:\n"
                f"    shift_hub.evaluate({str(folder)!r}, 'samples', trust_remote_code=True)\n"
                "except ModelLoadError as exc:\n    print(exc)\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                                cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1",
                                                   "HF_MODULES_CACHE": str(tmp_path / "hf_modules")})
    assert marker.exists(), result.stdout + result.stderr  # asked for: the code ran (and this one then fails)
    assert "only proves its code ran" in result.stdout + result.stderr


# --- 2: the weights hash is the hash of the file that was loaded ------------------------------------

def test_timm_local_dir_hashes_the_file_timm_loads_not_the_first_sorted(tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file
    from timm.models import save_for_hf

    torch.manual_seed(0)
    folder = tmp_path / "timm_dir"
    save_for_hf(timm.create_model("test_resnet"), folder, safe_serialization=True)
    torch.manual_seed(1)
    save_file(timm.create_model("test_resnet").state_dict(), str(folder / "aaa_old_backup.safetensors"))
    loaded = load_model(f"local-dir:{folder}")
    from safetensors.torch import load_file

    stored = load_file(str(folder / "model.safetensors"))
    assert all(torch.equal(v, stored[k]) for k, v in loaded.module.state_dict().items() if k in stored)
    assert loaded.weights_sha256 == file_sha256(folder / "model.safetensors")
    assert loaded.describe()["weights_file"] == "model.safetensors"


def test_transformers_folder_hashes_the_file_it_loads_not_the_first_sorted(tmp_path):
    import torch
    from safetensors.torch import save_file
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1], num_labels=1000,
                          id2label=dict(enumerate(classes.wnids())))
    model = ResNetForImageClassification(config)
    model.save_pretrained(tmp_path / "resnet")
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(tmp_path / "resnet")
    torch.manual_seed(1)
    other = ResNetForImageClassification(config).state_dict()
    save_file({k: v.contiguous() for k, v in other.items()}, str(tmp_path / "resnet" / "aaa_old_backup.safetensors"))
    loaded = load_model(str(tmp_path / "resnet"))
    assert loaded.weights_sha256 == file_sha256(tmp_path / "resnet" / "model.safetensors")
    assert loaded.describe()["weights_file"] == "model.safetensors"


# --- 3: a --ray-address that answers nothing is one line, in seconds ----------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["dead", "nonsense", "host:notaport"])
def test_a_bad_ray_address_is_one_line_naming_the_flag_not_a_hang(tmp_path, address):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_free_port()}" if address == "dead" else address
    try:  # without the probe, Ray waits 600 s on a dead address printing C++ warnings
        result = _run_cli(tmp_path, "generate", "clean", "--limit", "1", "--out", str(tmp_path / "out"),
                          "--engine", "ray", "--ray-address", address, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"--ray-address {address} hung")
    lines = _error_lines(result)
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("shift-hub: error: --ray-address "), result.stderr
    assert address in lines[0] and "ray start --head" in lines[0] and "drop --ray-address" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_port_that_is_not_ray_is_refused_and_a_live_ray_head_is_accepted(tmp_path):
    ray = pytest.importorskip("ray")
    from shift_hub import engines
    from shift_hub.generate import GenerationError

    with socket.socket() as server:  # something else listens there (a web server, Ray's dashboard)
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer():
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(GenerationError, match="not a Ray head"):
            engines.check_ray_address(f"127.0.0.1:{server.getsockname()[1]}")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        engines.check_ray_address(ray.get_runtime_context().gcs_address)  # no error: a real GCS answers
    finally:
        ray.shutdown()


# --- 4: a file name that is not UTF-8 skips that image, not the run ----------------------------------

def _bad_name(folder: Path) -> bytes:
    """Write a JPEG whose name is not valid UTF-8 into `folder`; its name as bytes."""
    name = b"bad\xff.JPEG"
    with open(os.path.join(os.fsencode(folder), name), "wb") as fh:
        fh.write(jpeg_bytes(photo(3)))
    return name


def test_a_file_name_that_is_not_utf8_is_skipped_with_its_escaped_name(tmp_path, capsys):
    import pyarrow.parquet as pq

    from shift_hub.cli import main

    root = tmp_path / "src"
    (root / WNID).mkdir(parents=True)
    (root / WNID / "good.JPEG").write_bytes(jpeg_bytes(photo(1)))
    _bad_name(root / WNID)
    out = tmp_path / "out"
    assert main(["generate", "clean", "--source", f"folders:{root}", "--out", str(out), "--quiet"]) == 0
    (shard,) = sorted((out / "clean").glob("*.parquet"))
    table = pq.read_table(shard)
    assert table.column("image_id").to_pylist() == [f"{WNID}/good"]
    footer = json.loads(pq.read_metadata(shard).metadata[b"shift_hub"])
    assert footer["skipped"] == [{"image_id": f"{WNID}/bad\\xff",
                                  "reason": "file name is not valid UTF-8 (rename the file to include it): "
                                            "bad\\xff.JPEG"}]
    card = (out / "README.md").read_bytes().decode("utf-8")  # strict: the card is valid UTF-8
    assert "bad\\\\xff.JPEG" in card or "bad\\xff.JPEG" in card


def test_known_class_folders_list_a_name_that_is_not_utf8_as_skipped(tmp_path):
    from shift_hub.sources.known import ClassFolders

    (tmp_path / WNID).mkdir()
    (tmp_path / WNID / "good.JPEG").write_bytes(jpeg_bytes(photo(1)))
    _bad_name(tmp_path / WNID)
    source = ClassFolders(tmp_path)
    assert [e.image_id for e in source.examples()] == [f"{WNID}/good"]
    (skip,) = source.skipped
    assert skip.path.endswith(f"{WNID}/bad\\xff.JPEG") and "not valid UTF-8" in skip.reason
    skip.path.encode("utf-8")  # listable in results.json and the report


def test_devkit_reads_only_ascii_image_numbers_and_ignores_names_that_are_not_utf8(tmp_path):
    from test_sources import make_devkit

    from shift_hub.sources import Devkit

    make_devkit(tmp_path, n=3, boxes=False)
    _bad_name(tmp_path / "val")
    (tmp_path / "val" / "ILSVRC2012_val_\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0662.JPEG").write_bytes(
        jpeg_bytes(photo(4)))  # Arabic-Indic digits, which int() would read as image 2
    ids = [e.image_id for e in Devkit(tmp_path).examples()]
    assert ids == [f"ILSVRC2012_val_{i:08d}" for i in range(1, 4)]


def test_real_labels_read_only_ascii_image_numbers(tmp_path):
    from shift_hub.sources.known import RealValidation

    (tmp_path / "ILSVRC2012_val_00000001.JPEG").write_bytes(jpeg_bytes(photo(1)))
    (tmp_path / "ILSVRC2012_val_\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0662.JPEG").write_bytes(jpeg_bytes(photo(2)))
    _bad_name(tmp_path)
    assert [e.image_id for e in RealValidation(tmp_path).examples()] == ["ILSVRC2012_val_00000001"]


def test_a_sharded_transformers_folder_hashes_every_shard_it_loads(tmp_path):
    import hashlib

    import torch
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=1000,
                          id2label=dict(enumerate(classes.wnids())))
    folder = tmp_path / "sharded"
    ResNetForImageClassification(config).save_pretrained(folder, max_shard_size="20KB")
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(folder)
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1
    expected = hashlib.sha256("".join(f"{p.name}:{file_sha256(p)}\n" for p in shards).encode()).hexdigest()
    loaded = load_model(str(folder))
    assert loaded.weights_sha256 == expected  # not the first shard's alone
    assert loaded.describe()["weights_file"] == f"{shards[0].name} (+{len(shards) - 1} shards)"

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import jpeg_bytes, photo
from shift_hub import cli, generate as engine
from shift_hub.sources import Example, Source


def digests(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.glob("*/*.parquet"))}


class ListSource(Source):
    """Images given as bytes, in a chosen order: for order-independence and bad-input tests."""

    name = "list"

    def __init__(self, items):
        self.items = items  # (image_id, label, bytes)

    def examples(self):
        for i, (image_id, label, _) in enumerate(self.items):
            yield Example(image_id, (label,), i)

    def read(self, example):
        return self.items[example.locator][2]


def noisy_shift_spec():
    """`clean` plus a random shift, to check seeding: a registry entry made for the test."""
    from shift_hub.registry import REGISTRY, ShiftSpec

    spec = ShiftSpec(name="test_noise", family="test", fn="test_generate:add_noise", description="test",
                     citation="@misc{x}")
    REGISTRY.setdefault(spec.name, spec)
    return spec


def add_noise(image, rng, **params):
    noise = rng.integers(-20, 21, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def test_clean_end_to_end_loads_with_datasets(tmp_path):
    import datasets

    out = tmp_path / "shift_hub"
    assert cli.main(["generate", "clean", "--source", "samples", "--out", str(out), "--quiet"]) == 0
    assert (out / "README.md").read_text().count("config_name: clean") == 1
    assert sorted(os.listdir(out / "clean")) == ["validation-00000-of-00001.parquet"]
    ds = datasets.load_dataset(str(out), "clean", split="validation")
    assert len(ds) == 8 and set(ds.column_names) >= {"image", "label", "image_id", "config", "severity"}
    row = ds[ds["image_id"].index("chelsea")]
    assert ds.features["label"].int2str(row["label"]) == "n02123045"
    assert row["image"].size == (224, 224) and row["config"] == "clean" and row["severity"] == 0


def test_bytes_identical_across_worker_counts_and_order(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    noisy_shift_spec()
    items = [(f"img{i:02d}", i, jpeg_bytes(photo(i))) for i in range(6)]
    engine.generate(["test_noise", "clean"], ListSource(items), tmp_path / "a", num_proc=1, shard_size=2, progress=False)
    engine.generate(["test_noise", "clean"], ListSource(items[::-1]), tmp_path / "b", num_proc=2, shard_size=2,
                    progress=False)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert len(a) == 6 and a == b
    engine.generate(["test_noise"], ListSource(items), tmp_path / "c", seed=1, shard_size=2, progress=False)
    assert digests(tmp_path / "c") != {k: v for k, v in a.items() if k.startswith("test_noise")}


def test_resume_after_interrupt_mid_write(tmp_path, monkeypatch):
    items = [(f"img{i:02d}", i, jpeg_bytes(photo(i))) for i in range(6)]
    engine.generate(["clean"], ListSource(items), tmp_path / "ref", shard_size=2, progress=False)
    from shift_hub.shard_writer import ShardWriter

    real_commit = ShardWriter.commit
    calls = []

    def dying_commit(writer):
        calls.append(writer.job.index)
        if len(calls) == 2:  # die half-way through writing the second shard (its rows written, not renamed)
            Path(writer.job.path).with_name(f".{Path(writer.job.path).name}.tmp-999").write_bytes(b"partial")
            raise KeyboardInterrupt
        real_commit(writer)

    monkeypatch.setattr(ShardWriter, "commit", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        engine.generate(["clean"], ListSource(items), tmp_path / "out", shard_size=2, progress=False)
    assert len(list((tmp_path / "out" / "clean").glob("*.parquet"))) == 1
    monkeypatch.setattr(ShardWriter, "commit", real_commit)
    report = engine.generate(["clean"], ListSource(items), tmp_path / "out", shard_size=2, progress=False)
    assert report["clean"].written == 4  # only the two missing shards were made
    assert digests(tmp_path / "out") == digests(tmp_path / "ref")
    assert not list((tmp_path / "out").glob("*/.*tmp*"))


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "shift_hub.cli", "generate", "clean_full", "--png", "--shard-size", "1",
           "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and not list(out.glob("clean_full/*.parquet")):
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert subprocess.run(cmd, capture_output=True, cwd=tmp_path).returncode == 0
    engine.generate(["clean_full"], "samples", tmp_path / "ref", png=True, shard_size=1, progress=False)
    assert digests(out) == digests(tmp_path / "ref") and len(digests(out)) == 8


def test_other_settings_are_refused_then_replaced_with_overwrite(tmp_path):
    items = [(f"img{i}", i, jpeg_bytes(photo(i))) for i in range(3)]
    engine.generate(["clean"], ListSource(items), tmp_path, progress=False)
    with pytest.raises(engine.GenerationError, match="--overwrite"):
        engine.generate(["clean"], ListSource(items), tmp_path, png=True, progress=False)
    engine.generate(["clean"], ListSource(items), tmp_path, png=True, overwrite=True, shard_size=2, progress=False)
    assert sorted(p.name for p in (tmp_path / "clean").glob("*.parquet")) == [
        "validation-00000-of-00002.parquet", "validation-00001-of-00002.parquet"]


def test_card_lists_every_config_generated_separately(tmp_path):
    engine.generate(["clean"], "samples", tmp_path, limit=2, progress=False)
    engine.generate(["clean_full"], "samples", tmp_path, limit=2, progress=False)
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(tmp_path / "README.md")
    assert [c["config_name"] for c in card.data.configs] == ["clean", "clean_full"]


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def bad_inputs() -> dict[str, bytes]:
    good = jpeg_bytes(photo(0))
    cmyk = io.BytesIO()
    Image.fromarray(photo(1)).convert("CMYK").save(cmyk, format="JPEG")
    grey16 = Image.fromarray((np.linspace(0, 65535, 40 * 50).reshape(40, 50)).astype(np.uint16))
    rgba = np.dstack([photo(2), np.full((48, 64), 128, np.uint8)])
    palette = Image.fromarray(photo(3)).convert("P", palette=Image.ADAPTIVE)
    palette_t = palette.copy()
    palette_t.info["transparency"] = 0
    bomb = Image.new("1", (12000, 12000))
    return {
        "good": good,
        "truncated": good[: len(good) // 2],
        "corrupt": b"\xff\xd8\xff\xe0" + b"not a jpeg at all" * 10,
        "cmyk": cmyk.getvalue(),
        "grey": jpeg_bytes(photo(4)[..., 0]),
        "grey16": _png(grey16),
        "alpha": _png(Image.fromarray(rgba)),
        "palette": _png(palette),
        "palette_alpha": _png(palette_t, transparency=0),
        "tiny": _png(Image.new("RGB", (1, 1))),
        "bomb": _png(bomb, optimize=True),
    }


def test_every_bad_input_is_converted_or_skipped_with_a_reason(tmp_path):
    import datasets

    items = [(name, 1, data) for name, data in bad_inputs().items()]
    report = engine.generate(["clean", "clean_full"], ListSource(items), tmp_path, progress=False)["clean"]
    skipped = {s["image_id"]: s["reason"] for s in report.skipped}
    converted = {c["image_id"]: c["note"] for c in report.converted}
    assert set(skipped) == {"truncated", "corrupt", "tiny", "bomb"}
    assert "cannot decode" in skipped["truncated"] and "decompression bomb" in skipped["bomb"]
    assert "smaller than" in skipped["tiny"]
    assert set(converted) == {"cmyk", "grey", "grey16", "alpha", "palette", "palette_alpha"}
    assert "alpha" in converted["alpha"] and "bit" in converted["grey16"] and "CMYK" in converted["cmyk"]
    ds = datasets.load_dataset(str(tmp_path), "clean", split="validation")
    assert sorted(ds["image_id"]) == sorted({name for name, _, _ in items} - set(skipped))
    assert all(img.mode == "RGB" and img.size == (224, 224) for img in ds["image"])
    card = (tmp_path / "README.md").read_text()
    assert "images skipped | 4" in card and "\n- bomb: " in card


def test_builder_rows_match_generated_bytes(tmp_path):
    import datasets

    from shift_hub.builders import ShiftHub

    builder = ShiftHub(config_name="clean", source="samples", cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    built = builder.as_dataset(split="validation").cast_column("image", datasets.Image(decode=False))
    engine.generate(["clean"], "samples", tmp_path / "out", progress=False)
    written = datasets.load_dataset(str(tmp_path / "out"), "clean", split="validation")
    written = written.cast_column("image", datasets.Image(decode=False))
    assert sorted((r["image_id"], r["image"]["bytes"]) for r in built) == sorted(
        (r["image_id"], r["image"]["bytes"]) for r in written)


def test_class_subset_and_empty_source_errors(tmp_path):
    from shift_hub.sources import SourceError

    with pytest.raises(SourceError, match="no images"):
        engine.generate(["clean"], "samples", tmp_path, classes_subset="ximagenet12", progress=False)
    assert cli.main(["generate", "clean", "--out", str(tmp_path), "--classes", "ximagenet12", "--quiet"]) == 2


def test_parameter_overrides_are_checked_and_recorded(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from shift_hub.registry import REGISTRY, ShiftSpec

    REGISTRY.setdefault("test_amount", ShiftSpec(name="test_amount", family="test", fn="test_generate:add_noise",
                                                 description="test", citation="@misc{x}", params={"amount": 20}))
    items = [("a", 1, jpeg_bytes(photo(0)))]
    with pytest.raises(engine.GenerationError, match="not parameters"):
        engine.generate(["test_amount"], ListSource(items), tmp_path, overrides={"weights": "x"}, progress=False)
    engine.generate(["test_amount"], ListSource(items), tmp_path, overrides={"amount": 5}, progress=False)
    (shard,) = (tmp_path / "test_amount").glob("*.parquet")
    assert engine.shard_metadata(shard)["params"] == {"amount": 5}
    with pytest.raises(engine.GenerationError, match="--overwrite"):  # other parameters, other fingerprint
        engine.generate(["test_amount"], ListSource(items), tmp_path, progress=False)


def fail_preflight(params):
    raise FileNotFoundError(f"weights {params['weights']!r} not found; pass --weights PATH")


def test_missing_external_input_fails_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from shift_hub.registry import REGISTRY, ShiftSpec

    REGISTRY.setdefault("test_weights", ShiftSpec(name="test_weights", family="test", fn="test_generate:add_noise",
                                                  description="t", citation="@misc{x}", params={"weights": None},
                                                  preflight="test_generate:fail_preflight"))
    with pytest.raises(engine.GenerationError, match="test_weights: weights None not found"):
        engine.generate(["clean", "test_weights"], "samples", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_damaged_shard_is_made_again(tmp_path):
    items = [(f"img{i}", i, jpeg_bytes(photo(i))) for i in range(4)]
    engine.generate(["clean"], ListSource(items), tmp_path / "ref", shard_size=2, progress=False)
    engine.generate(["clean"], ListSource(items), tmp_path / "out", shard_size=2, progress=False)
    (tmp_path / "out" / "clean" / "validation-00001-of-00002.parquet").write_bytes(b"")
    assert set(engine.summary(tmp_path / "out")["clean"]["params"]) == set()
    engine.generate(["clean"], ListSource(items), tmp_path / "out", shard_size=2, progress=False)
    assert digests(tmp_path / "out") == digests(tmp_path / "ref")


def test_severity_is_not_an_override(tmp_path):
    with pytest.raises(engine.GenerationError, match="part of the config name"):
        engine.generate(["gaussian_noise_3"], "samples", tmp_path, overrides={"severity": 5}, progress=False)


def test_boxes_only_shape_configs_that_use_masks():
    from shift_hub.registry import get

    plain = [Example("a", (1,), 0)]
    boxed = [Example("a", (1,), 0, ((1, 2, 3, 4),))]
    clean, masked = get("clean"), next(s for s in __import__("shift_hub.registry").registry.REGISTRY.values()
                                       if "masks" in s.needs)
    assert engine.fingerprint(clean, 0, clean.encoding, plain) == engine.fingerprint(clean, 0, clean.encoding, boxed)
    assert engine.fingerprint(masked, 0, masked.encoding, plain) != engine.fingerprint(masked, 0, masked.encoding, boxed)

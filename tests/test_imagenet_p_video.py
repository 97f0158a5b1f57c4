"""ImageNet-P stored as the release stores it (issue 27, storage): `--p-encoding mp4` keeps each sequence's x264
video in a `video` column, made with the original's ffmpeg settings, and `frames` decoded from it by the suite's
reader; the bytes never depend on the worker count, the encoding is a setting a folder cannot mix, and
`export_release` writes the release's <perturbation>/<wnid>/<image>.mp4 layout."""
from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import digests
from shift_hub import registry, video
from shift_hub.generate import GenerationError, generate
from shift_hub.sources.known import ImageNetP, read_frames

CONFIGS = ["imagenet_p_gaussian_noise", "imagenet_p_translate"]  # a -tune grain one and a -crf 20 one of 41 frames


@pytest.fixture(scope="module")
def mp4_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "out"
    generate(CONFIGS, "samples", out, limit=2, shard_size=1, p_encoding="mp4", progress=False)
    return out


def _rows(out, config: str) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for p in sorted((out / config).glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def _png(cell: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(cell["bytes"])))


def _x264_options(data: bytes) -> str:
    """The settings x264 wrote into the stream it made."""
    return re.search(rb"options: ([ -~]+)", data).group(1).decode()


def test_the_noise_perturbations_use_tune_grain_and_the_others_crf_20_as_the_original():
    grain = {"gaussian_noise", "gaussian_noise_2", "gaussian_noise_3", "shot_noise", "shot_noise_2", "shot_noise_3",
             "speckle_noise", "speckle_noise_2", "speckle_noise_3"}
    for name, spec in registry.REGISTRY.items():
        chosen = video.video_for(spec, "mp4")
        if not spec.frames:
            assert chosen is None and video.video_for(spec, "png") is None
            continue
        noisy = name.removeprefix("imagenet_p_") in grain
        assert (chosen.tune, chosen.crf) == (("grain", None) if noisy else (None, 20)), name
        assert (chosen.preset, chosen.pix_fmt, chosen.fps, chosen.threads) == ("veryslow", "yuv444p", 1, 1)
        assert chosen.encoder.startswith(f"PyAV {__import__('av').__version__}") and "x264 core" in chosen.encoder
    with pytest.raises(GenerationError, match="choose png .* or mp4"):
        video.video_for(registry.get("imagenet_p_rotate"), "webm")


def test_the_video_bytes_are_x264s_c_reference_whatever_the_cpu_offers():
    """x264 picks intra-analysis routines by CPU unless cpu-independent; without it PyAV's build made other bytes
    from run to run on an AVX-512 machine. With it, the bytes are those of x264 with its assembly turned off."""
    from skimage import data

    from shift_hub import imaging
    from shift_hub.rng import generator

    class CReference(video.VideoEncoding):
        def options(self):
            return {**super().options(), "x264-params": "cpu-independent=1:asm=0"}

    spec = registry.get("imagenet_p_gaussian_noise")
    image = imaging.apply_geometry(data.chelsea(), spec.geometry)
    frames = spec.load_fn()(image, generator(0, spec.name, "chelsea"), **spec.params)[:10]
    assert "cpu-independent=1" in video.VideoEncoding("grain", None).options()["x264-params"]
    assert video.encode(frames, video.VideoEncoding("grain", None)) == video.encode(frames, CReference("grain", None))


def test_mp4_rows_hold_the_video_and_the_frames_decoded_from_it(mp4_folder):
    import av
    import datasets

    for config, count, rate in [("imagenet_p_gaussian_noise", 31, "crf=23.0"),
                                ("imagenet_p_translate", 41, "crf=20.0")]:
        rows = _rows(mp4_folder, config)
        assert len(rows) == 2
        for row in rows:
            assert len(row["frames"]) == count
            options = _x264_options(row["video"])
            assert f"rc=crf mbtree=1 {rate}" in options and "threads=1 " in options
            assert ("psy_rd=1.00:0.25" in options) == (config == "imagenet_p_gaussian_noise")  # -tune grain's
            with av.open(io.BytesIO(row["video"])) as container:
                stream = container.streams.video[0]
                assert (stream.codec_context.pix_fmt, stream.average_rate, stream.frames) == ("yuv444p", 1, count)
            assert np.array_equal(_png(row["image"]), _png(row["frames"][0]))
    ds = datasets.load_dataset(str(mp4_folder), "imagenet_p_translate", split="validation")
    assert ds.features["video"] == datasets.Value("binary") and len(ds[0]["frames"]) == 41


def test_the_stored_frames_are_what_the_suite_reader_sees_in_the_exported_mp4(mp4_folder, tmp_path, capsys):
    from shift_hub import classes

    written = video.export_release(mp4_folder, tmp_path / "release")
    assert written == {"gaussian_noise": 2, "translate": 2}
    source = ImageNetP(tmp_path / "release")
    assert source.perturbations() == ["gaussian_noise", "translate"]
    for config in CONFIGS:
        for row in _rows(mp4_folder, config):
            path = (tmp_path / "release" / config.removeprefix("imagenet_p_") / classes.wnids()[row["label"]]
                    / f"{row['image_id']}.mp4")
            assert path.read_bytes() == row["video"]
            decoded = read_frames(path)
            assert len(decoded) == len(row["frames"])
            assert all(np.array_equal(a, _png(b)) for a, b in zip(decoded, row["frames"]))
    from shift_hub import cli

    assert cli.main(["export-p", str(mp4_folder), str(tmp_path / "release")]) == 0  # a rerun keeps the same files
    assert "translate: 2 videos in" in capsys.readouterr().out


def test_mp4_shards_are_identical_for_any_worker_count(mp4_folder, tmp_path):
    generate(CONFIGS[:1], "samples", tmp_path / "b", limit=2, shard_size=1, num_proc=2, p_encoding="mp4",
             progress=False, card=False)
    made = digests(tmp_path / "b")
    assert len(made) == 2 and made == {k: v for k, v in digests(mp4_folder).items() if k.startswith(CONFIGS[0])}


def test_png_and_mp4_runs_are_never_mixed_in_one_folder(tmp_path):
    from shift_hub import folder

    out = tmp_path / "out"
    generate(["imagenet_p_brightness"], "samples", out, limit=1, progress=False, card=False)
    with pytest.raises(GenerationError, match="other settings"):
        generate(["imagenet_p_brightness"], "samples", out, limit=1, p_encoding="mp4", progress=False, card=False)
    assert "video" not in _rows(out, "imagenet_p_brightness")[0]
    with pytest.raises(folder.FolderError, match="stored as PNG.*--p-encoding mp4"):
        video.export_release(out, tmp_path / "release")
    assert not (tmp_path / "release").exists()
    again = generate(["imagenet_p_brightness"], "samples", tmp_path / "mp4", limit=1, p_encoding="mp4",
                     progress=False, card=False)
    before = digests(tmp_path / "mp4")
    assert again["imagenet_p_brightness"].written == 1 and len(before) == 1
    resumed = generate(["imagenet_p_brightness"], "samples", tmp_path / "mp4", limit=1, p_encoding="mp4",
                       progress=False, card=False)
    assert resumed["imagenet_p_brightness"].written == 0 and digests(tmp_path / "mp4") == before  # same settings resume
    with pytest.raises(GenerationError, match="other settings"):
        generate(["imagenet_p_brightness"], "samples", tmp_path / "mp4", limit=1, progress=False, card=False)


def test_the_card_records_the_encoding_and_the_mp4_deviation(mp4_folder):
    import json

    facts = json.loads((mp4_folder / "shift_hub.json").read_text())["facts"]
    grain, crf = facts["imagenet_p_gaussian_noise"], facts["imagenet_p_translate"]
    assert "x264 mp4" in grain["encoding"] and "-tune grain" in grain["encoding"] and "-crf 20" in crf["encoding"]
    assert "PyAV" in grain["encoding"] and "yuv444p" in crf["encoding"]
    assert grain["deviation"].startswith("Frames are x264-decoded") and "not the authors' ffmpeg build" in \
        grain["deviation"] and "lossless PNG" not in grain["deviation"]
    assert registry.get("imagenet_p_translate").deviation.startswith("Frames are stored as lossless PNG")
    readme = (mp4_folder / "README.md").read_text()
    assert "Frames are x264-decoded" in readme and "lossless PNG, where the release" not in readme


def test_without_pyav_mp4_is_refused_in_one_line_before_anything_is_made(tmp_path, monkeypatch, capsys):
    from shift_hub import cli

    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    with pytest.raises(GenerationError, match=re.escape("pip install 'shift-hub[video]'")):
        generate(["imagenet_p_rotate"], "samples", tmp_path / "out", limit=1, p_encoding="mp4", progress=False)
    assert cli.main(["generate", "imagenet_p_rotate", "--source", "samples", "--limit", "1", "--p-encoding", "mp4",
                     "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'shift-hub[video]'" in err
    assert not (tmp_path / "out").exists()
    generate(["clean"], "samples", tmp_path / "clean", limit=1, p_encoding="mp4", progress=False, card=False)


def test_a_video_decoding_to_another_frame_count_fails_naming_the_image(tmp_path, monkeypatch):
    real = video.decode
    monkeypatch.setattr(video, "decode", lambda data: real(data)[:-1])
    with pytest.raises(GenerationError, match=r"image 'camera'.* 30 frames, 31 were encoded"):
        generate(["imagenet_p_brightness"], "samples", tmp_path / "out", limit=1, p_encoding="mp4", progress=False)
    assert not list((tmp_path / "out").rglob("*.parquet"))


def test_sequence_shards_hold_8_rows_per_row_group(tmp_path):
    import pyarrow.parquet as pq

    from shift_hub import imaging, planning
    from shift_hub.jobs import ConfigReport, ShardJob
    from shift_hub.registry import PNG
    from shift_hub.rows import row
    from shift_hub.shard_writer import write_shard
    from shift_hub.sources import Example

    spec = registry.get("imagenet_p_rotate")
    examples = tuple(Example(f"img{i:02d}", (1,), None) for i in range(17))
    job = planning.plan_jobs(spec, list(examples), tmp_path, 0, PNG, 100, "test")[0]
    clean = planning.plan_jobs(registry.get("clean"), list(examples), tmp_path, 0, registry.get("clean").encoding,
                               100, "test")[0]
    assert (job.row_group, clean.row_group) == (8, 100)
    tiny = imaging.encode(np.zeros((2, 2, 3), np.uint8), PNG)
    frames = {"frames": [{"bytes": tiny, "path": "f.png"}] * 3}
    write_shard(job, (row(spec, ex, tiny, PNG, frames) for ex in examples), ConfigReport(spec.name))
    f = pq.ParquetFile(job.path)
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == [8, 8, 1]
    with_video = planning.plan_jobs(spec, list(examples), tmp_path, 0, PNG, 100, "test",
                                    video=video.video_for(spec, "mp4"))[0]
    assert isinstance(with_video, ShardJob) and with_video.row_group == 8
    assert planning.row_group_bytes(job) < planning.row_group_bytes(with_video) <= planning.GROUP_BUFFER_BYTES


def test_the_datasets_builder_makes_the_same_mp4_rows_as_generate(tmp_path):
    import datasets

    from shift_hub.builders import ShiftHub
    from shift_hub.generate import generate

    builder = ShiftHub(config_name="imagenet_p_brightness", source="samples", limit=1, p_encoding="mp4",
                       cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    built = builder.as_dataset(split="validation")
    generate(["imagenet_p_brightness"], "samples", tmp_path / "out", limit=1, progress=False, p_encoding="mp4")
    written = datasets.load_dataset(str(tmp_path / "out"), "imagenet_p_brightness", split="validation")
    raw = datasets.List(datasets.Image(decode=False))
    built, written = built.cast_column("frames", raw), written.cast_column("frames", raw)
    assert built[0]["video"] == written[0]["video"] and len(built[0]["frames"]) == 31
    assert [f["bytes"] for f in built[0]["frames"]] == [f["bytes"] for f in written[0]["frames"]]

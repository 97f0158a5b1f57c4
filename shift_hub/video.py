"""ImageNet-P as the release stores it: each sequence one x264 video (`--p-encoding mp4`), and the export of a
folder's videos into the release's layout.

The original (hendrycks/robustness, ImageNet-P/create_p/make_imagenet_p.py) saved the frames as RGB PNGs and ran

    ffmpeg -r 1 -framerate 1 -i img%01d.png -vcodec libx264 -crf 20 -preset veryslow -y <image stem>.mp4

with `-tune grain` in place of `-crf 20` (so x264's default CRF 23) for the noise perturbations (Gaussian, shot
and speckle noise, every difficulty). RGB input made ffmpeg choose yuv444p (x264's High 4:4:4 profile). Here the
same settings go through the libx264 that PyAV bundles, with one encoder thread so the bytes are the same for any
worker count, and one x264 setting the command did not give: cpu-independent. Without it x264 picks intra-analysis
routines by CPU (`-preset veryslow`'s subme 10 uses them), and PyAV's build gave other bytes from one run to the next
on an AVX-512 machine; with it the bytes are those of x264's C reference on any CPU. The encoder is not the
authors' ffmpeg build, so the bytes differ from the release's.
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .folder import FolderError, check_config, shard_files
from .jobs import GenerationError

P_ENCODINGS = ("png", "mp4")  # --p-encoding: lossless PNG frames (the default), or the release's x264 video
INSTALL = "pip install 'shift-hub[video]'"
_GRAIN = frozenset({"gaussian_noise", "shot_noise", "speckle_noise"})  # shifts the original encoded with -tune grain


@dataclass(frozen=True)
class VideoEncoding:
    """How one sequence is encoded; every field enters the shard fingerprint and footer (the encoder's
    versions too: another libx264 makes other bytes)."""

    tune: str | None  # "grain" for the noise perturbations, as the original
    crf: int | None  # 20 for the others; None is x264's default (23)
    preset: str = "veryslow"
    pix_fmt: str = "yuv444p"  # what ffmpeg chose for the original's RGB PNGs
    fps: int = 1
    codec: str = "libx264"
    container: str = "mp4"
    threads: int = 1  # one encoder thread: deterministic bytes
    cpu_independent: bool = True  # x264's canonical algorithms, not its CPU-specific ones (see the module docstring)
    encoder: str = ""  # PyAV, libavcodec and x264 versions

    def options(self) -> dict[str, str]:
        """The libx264 options: the original's command line, and x264's cpu-independent."""
        return {"preset": self.preset, **({"tune": self.tune} if self.tune else {}),
                **({"crf": str(self.crf)} if self.crf is not None else {}),
                **({"x264-params": "cpu-independent=1"} if self.cpu_independent else {})}


def describe(video: dict) -> str:
    """A footer's `encoding.video` in words, for the card."""
    rate = f"-crf {video['crf']}" if video.get("crf") is not None else "x264's default CRF 23"
    rate = f"-tune {video['tune']}, {rate}" if video.get("tune") else rate
    canonical = ", cpu-independent" if video.get("cpu_independent") else ""
    return (f"PNG frames decoded from x264 {video['container']} (the `video` column): {rate}, preset "
            f"{video['preset']}, {video['pix_fmt']}, {video['fps']} fps{canonical}; {video['encoder']}")


def require_av() -> None:
    """GenerationError in one line when PyAV is missing, before any image is made."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise GenerationError(f"--p-encoding mp4 encodes ImageNet-P with PyAV, which is not installed: {INSTALL}") \
            from None


@functools.lru_cache(maxsize=1)
def encoder_version() -> str:
    """'PyAV x, libavcodec y, x264 core z': the x264 core is read from the header x264 writes into its stream."""
    import av
    import numpy as np

    data = _encode([np.zeros((16, 16, 3), np.uint8)], VideoEncoding(tune=None, crf=20))
    core = re.search(rb"x264 - (core \d+[ -~]*?) - ", data)
    x264 = f"x264 {core.group(1).decode()}" if core else "x264 of unknown version"
    codec = ".".join(str(v) for v in av.library_versions.get("libavcodec", ()))
    return f"PyAV {av.__version__}, libavcodec {codec}, {x264}"


def video_for(spec, p_encoding: str) -> VideoEncoding | None:
    """The video encoding of a sequence config (ShiftSpec.frames) under `--p-encoding`, None otherwise."""
    if p_encoding not in P_ENCODINGS:
        raise GenerationError(f"--p-encoding {p_encoding!r}: choose png (lossless frames) or mp4 (the release's "
                              "x264 video)")
    if p_encoding == "png" or not spec.frames:
        return None
    require_av()
    grain = (spec.fn or "").rsplit(":", 1)[-1] in _GRAIN
    return VideoEncoding(tune="grain" if grain else None, crf=None if grain else 20, encoder=encoder_version())


def encode(frames: list, video: VideoEncoding) -> bytes:
    """One sequence of RGB uint8 frames as an mp4."""
    return _encode(frames, video)


def _encode(frames: list, video: VideoEncoding) -> bytes:
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=video.container) as container:
        stream = container.add_stream(video.codec, rate=video.fps, options=video.options())
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = video.pix_fmt
        stream.codec_context.thread_count = video.threads
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = i
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def decode(data: bytes) -> list:
    """The frames of an mp4 as the ImageNet-P reader (sources.known.read_frames, OpenCV) decodes them."""
    from .sources.known import read_frames

    with tempfile.TemporaryDirectory(prefix="shift_hub_p_") as tmp:
        path = Path(tmp) / "sequence.mp4"
        path.write_bytes(data)
        return read_frames(path)


# --- the release's layout ---------------------------------------------------------------------------

PREFIX = "imagenet_p_"


def export_release(folder: str | Path, out: str | Path) -> dict[str, int]:
    """Write `<out>/<perturbation>/<wnid>/<image stem>.mp4` from the `video` column of every ImageNet-P config of
    an mp4-encoded folder (`--p-encoding mp4`): the layout the robustness suite and `sources.known.ImageNetP`
    read. Returns videos per perturbation. A config stored as PNG frames only, an incomplete config, or two
    images landing on one file are refused before anything is written; a file already there is kept when it
    holds the same bytes (a rerun), refused otherwise."""
    import pyarrow.parquet as pq

    from . import classes

    folder, out = Path(folder), Path(out)
    configs = sorted(p.name for p in folder.glob(f"{PREFIX}*") if p.is_dir() and shard_files(p))
    if not configs:
        raise FolderError(f"{folder}: no ImageNet-P configs (imagenet_p_*/ shards); generate them with "
                          "`shift-hub generate imagenet_p --p-encoding mp4 --out FOLDER`")
    for name in configs:
        problems = check_config(folder, name).problems
        if problems:
            raise FolderError(problems[0])
        if "video" not in pq.read_schema(shard_files(folder / name)[0]).names:
            raise FolderError(f"{folder / name}: its frames are stored as PNG, without the release's videos; "
                              f"regenerate with `shift-hub generate {name} --p-encoding mp4 --out ...` to export it")
    wnids = classes.wnids()
    planned: dict[Path, str] = {}
    for name in configs:  # every target first: a collision is refused before a file is written
        for path in shard_files(folder / name):
            table = pq.read_table(path, columns=["image_id", "label"])
            for image_id, label in zip(table.column("image_id").to_pylist(), table.column("label").to_pylist()):
                if not 0 <= label < len(wnids):
                    raise FolderError(f"{path}: image {image_id!r} has no ImageNet-1k label; the release's layout "
                                      "needs a <wnid>/ folder per video")
                target = _release_path(out, name, wnids[label], image_id)
                if target in planned:
                    raise FolderError(f"{path}: images {planned[target]!r} and {image_id!r} would both be {target}; "
                                      "export them to separate folders")
                planned[target] = image_id
    written: dict[str, int] = {}
    for name in configs:
        for path in shard_files(folder / name):
            columns = ("image_id", "label", "video")
            for batch in pq.ParquetFile(path).iter_batches(batch_size=8, columns=list(columns)):  # 8 videos at once
                for image_id, label, data in zip(*(batch.column(c).to_pylist() for c in columns)):
                    _write(_release_path(out, name, wnids[label], image_id), data)
                    written[name[len(PREFIX):]] = written.get(name[len(PREFIX):], 0) + 1
    return written


def _release_path(out: Path, config: str, wnid: str, image_id: str) -> Path:
    """Where the release keeps a video: <perturbation>/<wnid>/<image stem>.mp4 (an id's last part is its stem)."""
    return out / config[len(PREFIX):] / wnid / f"{image_id.rsplit('/', 1)[-1]}.mp4"


def _write(target: Path, data: bytes) -> None:
    """The file whole or absent; an existing file with other bytes is refused, never replaced."""
    if target.exists():
        if target.read_bytes() == data:
            return
        raise FolderError(f"{target}: exists with other bytes (another folder's export?); choose another OUT")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)

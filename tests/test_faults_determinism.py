"""Same inputs, same bytes: whatever the thread settings, whatever the run; and what decode says about its input.

- Every CPU config gives identical bytes with 1 and with 4 torch / BLAS / OpenCV threads (zoom_blur used to
  follow torch's thread count: `--num-proc 1` kept the defaults while workers ran on one thread).
- Skip reasons are stable text (no memory address, no temporary folder) and do not repeat the image id that is
  stored next to them, so two runs over the same bad folder write identical shards and cards.
- A non-identity EXIF orientation is not applied (as the published pipelines read ImageNet) but is noted.
"""
from __future__ import annotations

import hashlib
import io
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import jpeg_bytes, photo
from shift_hub import generate as engine
from shift_hub import imaging, registry
from shift_hub.registry import Encoding

PNG = Encoding(format="PNG", quality=None)
CPU_SPECS = [s for s in registry.REGISTRY.values() if not s.needs]


def _real_photo(name: str, short: int = 240) -> np.ndarray:
    """A real photo from scikit-image, shrunk to `short` px on its shorter side (> 224: STANDARD still resizes)."""
    import skimage.data

    arr = getattr(skimage.data, name)()
    h, w = arr.shape[:2]
    scale = short / min(h, w)
    return np.asarray(Image.fromarray(arr).resize((round(w * scale), round(h * scale)), Image.BICUBIC))


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    # chelsea and rocket at this size both show torch's thread-dependent rounding in zoom_blur (1-14 pixels)
    return {name: _real_photo(name) for name in ("chelsea", "rocket")}


@contextmanager
def _threads(n: int):
    """n threads for torch, OpenCV and the BLAS / OpenMP pools; the previous settings restored after."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(torch_before)
        cv2.setNumThreads(cv2_before)


def _all_cpu_outputs(photos: dict[str, np.ndarray], n: int) -> dict[tuple[str, str, str], bytes]:
    out = {}
    with _threads(n):
        for image_id, image in photos.items():
            for spec in CPU_SPECS:
                # PNG sees every pixel (JPEG quantisation can hide a one-level difference); the config's own
                # encoding, what is stored, once per config
                out[spec.name, image_id, "png"] = engine.shift_image(spec, image, 0, image_id, PNG)
                if image_id == "chelsea":
                    out[spec.name, image_id, "own"] = engine.shift_image(spec, image, 0, image_id)
    return out


def test_every_cpu_config_is_independent_of_thread_counts(photos):
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    assert {s.family for s in CPU_SPECS} >= {"corruptions", "drawing", "toon", "cartoon", "clean"}
    assert {"zoom_blur_1", "cartoon_classic", "clean_full"} <= {s.name for s in CPU_SPECS}
    one, four = _all_cpu_outputs(photos, 1), _all_cpu_outputs(photos, 4)
    differ = sorted({f"{config} on {image_id}" for (config, image_id, _), data in one.items()
                     if four[config, image_id, _] != data})
    assert not differ, f"outputs depend on the thread count: {differ}"
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before


def test_zoom_blur_leaves_the_callers_torch_threads_alone(photos):
    import torch

    from shift_hub.shifts import corruptions

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        corruptions.zoom_blur(photos["chelsea"][:40, :56], None, 1)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_ximagenet_scenarios_are_independent_of_thread_counts(photos):
    from shift_hub.shifts import ximagenet as xi

    image = photos["chelsea"]
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 5 : 4 * h // 5, w // 4 : 3 * w // 4] = True  # a fixed "object"
    background = photos["rocket"][: h - 7, : w + 9]  # another size: rand_bg resizes the object onto it
    calls = {
        "blur_bg": lambda rng: xi.blur_bg(image, rng, mask=mask),
        "blur_obj": lambda rng: xi.blur_obj(image, rng, mask=mask),
        **{f"color_bg_{c}": (lambda rng, c=c: xi.color_bg(image, rng, mask=mask, color=c))
           for c in ("red", "green", "blue", "grey")},
        "seg_img": lambda rng: xi.seg_img(image, rng, mask=mask),
        "seg_img_rgb": lambda rng: xi.seg_img_rgb(image, rng, mask=mask),
        **{f"rand_bg_{c}": (lambda rng, c=c: xi.rand_bg(image, rng, mask=mask, composite=c,
                                                        background_provider=lambda _rng: background))
           for c in ("add", "alpha")},
    }
    results = {}
    for n in (1, 4):
        with _threads(n):
            results[n] = {name: call(np.random.default_rng(5)).tobytes() for name, call in calls.items()}
    assert [k for k in calls if results[1][k] != results[4][k]] == []


# --- stable skip reasons ----------------------------------------------------------------------------------

def _bad_folder(root: Path) -> Path:
    cls = root / "n01440764"
    cls.mkdir(parents=True)
    (cls / "good.JPEG").write_bytes(jpeg_bytes(photo(1)))
    (cls / "random.JPEG").write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (cls / "broken.JPEG").symlink_to(root / "nowhere" / "broken.JPEG")  # a dangling link: cannot be read
    return root


def _shards_sha256(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.glob("*/*.parquet"))}


def test_skip_reasons_are_stable_and_name_the_image_once(tmp_path):
    root = _bad_folder(tmp_path / "src")
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}" / "shift_hub"  # the card names the output folder: the same name twice
        engine.generate(["clean"], "folders:" + str(root), out, progress=False)
        runs.append((out, _shards_sha256(out), engine.summary(out)["clean"]))
    (out_a, sha_a, sum_a), (out_b, sha_b, sum_b) = runs
    assert sha_a and sha_a == sha_b, "two identical runs wrote different shards"
    assert (out_a / "README.md").read_text() == (out_b / "README.md").read_text()
    assert sum_a["written"] == 1
    reasons = {s["image_id"]: s["reason"] for s in sum_a["skipped"]}
    assert set(reasons) == {"n01440764/random", "n01440764/broken"}
    for image_id, reason in reasons.items():
        assert "0x" not in reason and "object at" not in reason and str(tmp_path) not in reason, reason
        # the id is stored (and printed) next to the reason: the line the CLI prints names it exactly once
        assert f"{image_id}: {reason}".count(image_id) == 1, reason
    assert reasons["n01440764/random"].startswith("cannot decode")
    assert reasons["n01440764/broken"] == "cannot read the file (No such file or directory): broken.JPEG"
    card_lines = [line for line in (out_a / "README.md").read_text().splitlines() if "n01440764/random" in line]
    assert card_lines and all(line.count("n01440764/random") == 1 for line in card_lines), card_lines


@pytest.mark.parametrize("data", [b"\x00" * 64, b"\xff\xd8\xff\xe0" + b"not a jpeg at all" * 10,
                                  jpeg_bytes(photo(2))[:300]])
def test_decode_reasons_carry_no_addresses_or_names(data):
    with pytest.raises(imaging.BadImage) as first:
        imaging.decode(data, "n01440764/some_image")
    with pytest.raises(imaging.BadImage) as second:
        imaging.decode(bytes(data), "n01440764/some_image")  # another buffer at another address
    assert str(first.value) == str(second.value)
    assert "0x" not in str(first.value) and "some_image" not in str(first.value)
    assert str(first.value).startswith("cannot decode")


def test_stable_reason_drops_reprs_addresses_and_folders():
    text = ("cannot identify image file <_io.BytesIO object at 0x7ff01234abcd>; buffer at 0x7ff01234abce, "
            "[Errno 2] No such file or directory: '/tmp/pytest-of-me/pytest-3/src/n01440764/x.JPEG'")
    assert imaging.stable_reason(text) == ("cannot identify image file; buffer, [Errno 2] No such file or "
                                           "directory: 'x.JPEG'")
    assert imaging.stable_reason("image file is truncated (5 bytes not processed)") == \
        "image file is truncated (5 bytes not processed)"


# --- EXIF orientation -----------------------------------------------------------------------------------

def _jpeg_with_orientation(arr: np.ndarray, orientation: int | None, mode: str = "RGB") -> bytes:
    img = Image.fromarray(arr).convert(mode)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def test_exif_orientation_is_kept_as_stored_and_noted():
    arr = photo(3, (40, 56))
    data = _jpeg_with_orientation(arr, 6)
    decoded, note = imaging.decode(data, "rotated")
    plain, plain_note = imaging.decode(jpeg_bytes(arr), "plain")
    assert decoded.shape == (40, 56, 3)  # stored 56 wide, 40 high: not turned to the displayed 40x56
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert plain_note is None
    assert note == "EXIF orientation 6 (rotate 90) ignored, as the published pipelines do: pixels kept as stored"
    assert imaging.decode(_jpeg_with_orientation(arr, 1), "upright")[1] is None  # identity: nothing to say
    assert imaging.decode(_jpeg_with_orientation(arr, 3), "upside")[1].startswith("EXIF orientation 3 (rotate 180)")


def test_exif_note_is_combined_with_a_conversion_note():
    note = imaging.decode(_jpeg_with_orientation(photo(4, (40, 56)), 8, mode="L"), "grey")[1]
    assert note == ("converted L to RGB; EXIF orientation 8 (rotate 270) ignored, as the published pipelines "
                    "do: pixels kept as stored")


def test_exif_note_reaches_the_shard_footer(tmp_path):
    cls = tmp_path / "src" / "n01440764"
    cls.mkdir(parents=True)
    (cls / "rotated.JPEG").write_bytes(_jpeg_with_orientation(photo(5, (40, 56)), 6))
    (cls / "upright.JPEG").write_bytes(jpeg_bytes(photo(6, (40, 56))))
    engine.generate(["clean"], "folders:" + str(tmp_path / "src"), tmp_path / "out", progress=False, card=False)
    stats = engine.summary(tmp_path / "out")["clean"]
    assert stats["written"] == 2 and not stats["skipped"]
    assert [c["image_id"] for c in stats["converted"]] == ["n01440764/rotated"]
    assert "EXIF orientation 6" in stats["converted"][0]["note"]

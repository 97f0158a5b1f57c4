"""ImageNet-P (issue 27): frame counts, frame 0, the deterministic sequences against the original's formulas
restated here on real photos, per-frame seeding, the frames column, and its place outside `all-cpu`."""
import hashlib
import math

import numpy as np
import pytest
from PIL import Image

from shift_hub import imaging, registry
from shift_hub.jobs import GenerationError
from shift_hub.registry import Geometry
from shift_hub.rng import generator
from shift_hub.shifts import imagenet_p as ip


def _photo(name: str) -> np.ndarray:
    """A real photograph through the configs' geometry (shorter side 256, as the original's Resize(256))."""
    from skimage import data

    return imaging.apply_geometry(getattr(data, name)(), Geometry(resize_shorter=256))


PHOTOS = ["chelsea", "astronaut", "coffee"]  # landscape, square, landscape: crops off-centre differently


def _crop(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    top, left = int(round((h - 224) / 2.0)), int(round((w - 224) / 2.0))
    return arr[top : top + 224, left : left + 224]


def _frames(config: str, image: np.ndarray, seed: int = 0, image_id: str = "x") -> list[np.ndarray]:
    spec = registry.get(config)
    return spec.load_fn()(image, generator(seed, config, image_id), **spec.params)


def _old_affine(image: np.ndarray, angle=0.0, shift=0.0, zoom=1.0, shear=0.0, resample=Image.BILINEAR):
    """torchvision 0.2's affine restated as matrices: output pixel p samples input C + RSS^-1 (p - C - T),
    C = (w/2 + 0.5, h/2 + 0.5), RSS = zoom * [[cos a, -sin(a + shear)], [sin a, cos(a + shear)]] (clockwise
    on screen), then PIL samples it."""
    h, w = image.shape[:2]
    centre = np.array([[1, 0, w * 0.5 + 0.5], [0, 1, h * 0.5 + 0.5], [0, 0, 1]])
    a, s = math.radians(angle), math.radians(shear)
    forward = np.array([[zoom * math.cos(a), -zoom * math.sin(a + s), shift],
                        [zoom * math.sin(a), zoom * math.cos(a + s), 0], [0, 0, 1]])
    inverse = centre @ np.linalg.inv(forward) @ np.linalg.inv(centre)
    out = Image.fromarray(image).transform((w, h), Image.AFFINE, tuple(inverse[:2].ravel()), resample)
    return np.asarray(out)


def _close(a: np.ndarray, b: np.ndarray, share: float = 0.002) -> None:
    """Equal but for a rare grey level (at most `share` of the values) where two float orders of the same
    formula land across a rounding."""
    diff = np.abs(a.astype(int) - b.astype(int))
    assert a.shape == b.shape and diff.max() <= 1 and (diff > 0).mean() < share


def test_the_ten_test_configs_and_the_harder_ones_are_grouped_and_left_out_of_all_cpu():
    groups = registry.groups()
    assert [n.removeprefix("imagenet_p_") for n in groups["imagenet_p"]] == [
        "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness", "translate", "rotate",
        "tilt", "scale"]
    assert groups["imagenet_p_harder"] == ["imagenet_p_gaussian_noise_2", "imagenet_p_gaussian_noise_3",
                                           "imagenet_p_shot_noise_2", "imagenet_p_shot_noise_3"]
    assert [n.removeprefix("imagenet_p_") for n in groups["imagenet_p_extra"]] == [
        "speckle_noise", "speckle_noise_2", "speckle_noise_3", "gaussian_blur", "spatter", "shear"]
    assert not [n for n in registry.expand(["all-cpu"]) if n.startswith("imagenet_p")]
    assert registry.get("imagenet_p_gaussian_noise_3").params == {"sigma": 0.08}
    assert registry.get("imagenet_p_shot_noise_2").params == {"rate": 120.0}
    assert not any(s.frames for s in registry.REGISTRY.values() if not s.name.startswith("imagenet_p"))


@pytest.mark.parametrize("config", registry.groups()["imagenet_p"] + registry.groups()["imagenet_p_extra"])
def test_frame_counts_and_frame_sizes(config):
    frames = _frames(config, _photo("chelsea"))
    assert len(frames) == (41 if config == "imagenet_p_translate" else 31)
    assert all(f.shape == (224, 224, 3) and f.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize("config", ["imagenet_p_gaussian_noise", "imagenet_p_shot_noise", "imagenet_p_zoom_blur",
                                    "imagenet_p_gaussian_noise_3", "imagenet_p_speckle_noise"])
def test_frame_0_is_the_clean_crop_where_the_original_saved_it(config):
    image = _photo("astronaut")
    assert np.array_equal(_frames(config, image)[0], _crop(image))


@pytest.mark.parametrize("photo", PHOTOS)
def test_the_identity_frame_of_the_geometric_sequences_is_the_clean_crop(photo):
    """translate's frame 20 and rotate's frame 15 move nothing: they are the crop itself. (Tilt's frame 15 is
    not: the original's projection puts the image at depth f + 1, a zoom by f / (f + 1), kept as it was.)"""
    image = _photo(photo)
    crop = _crop(image)
    assert np.array_equal(_frames("imagenet_p_translate", image)[20], crop)
    assert np.array_equal(_frames("imagenet_p_rotate", image)[15], crop)
    assert np.array_equal(_frames("imagenet_p_shear", image)[15], crop)
    _close(_frames("imagenet_p_scale", image)[24], crop)  # (24 * 2.5 + 40) / 100 = 1


@pytest.mark.parametrize("photo", PHOTOS)
def test_brightness_is_the_hsv_value_shifted_by_i_minus_15_times_2_percent(photo):
    from skimage import color

    image = _photo(photo)
    frames = _frames("imagenet_p_brightness", image)
    for i in (0, 7, 15, 30):
        hsv = color.rgb2hsv(np.array(_crop(image), copy=True) / 255.0)
        hsv[:, :, 2] = np.clip(hsv[:, :, 2] + (i - 15) * 2 / 100.0, 0, 1)
        assert np.array_equal(frames[i], np.uint8(color.hsv2rgb(hsv) * 255)), i


@pytest.mark.parametrize("photo", PHOTOS)
def test_translate_shifts_the_256_image_by_i_minus_20_px_then_crops(photo):
    image = _photo(photo)
    frames = _frames("imagenet_p_translate", image)
    for i in (0, 13, 40):
        t = i - 20
        shifted = np.zeros_like(image)
        if t >= 0:
            shifted[:, t:] = image[:, : image.shape[1] - t]
        else:
            shifted[:, :t] = image[:, -t:]
        assert np.array_equal(frames[i], _crop(shifted)), i
    assert np.array_equal(frames[0][:, :-20], frames[20][:, 20:])  # the content moves right with i


@pytest.mark.parametrize("photo", PHOTOS)
def test_rotate_scale_and_zoom_blur_follow_the_old_torchvision_affine(photo):
    image = _photo(photo)
    rotated, scaled, zoomed = (_frames(f"imagenet_p_{c}", image) for c in ("rotate", "scale", "zoom_blur"))
    for i in (0, 9, 30):
        _close(rotated[i], _crop(_old_affine(image, angle=i - 15)))
        _close(scaled[i], _crop(_old_affine(image, zoom=(i * 2.5 + 40) / 100.0)))
    total = _crop(image).astype(np.float32) / np.float32(255)
    for i in range(1, 6):
        total += _crop(_old_affine(image, zoom=1 + 0.004 * i)).astype(np.float32) / np.float32(255)
    _close(zoomed[5], (total / np.float32(6) * np.float32(255)).astype(np.uint8))
    assert (scaled[0][:40] == 0).all() and not (scaled[30][:40] == 0).all()  # zoomed out to 0.4: black border


@pytest.mark.parametrize("photo", PHOTOS)
def test_shear_and_gaussian_blur_follow_the_original(photo):
    from skimage.filters import gaussian

    image = _photo(photo)
    sheared, blurred = _frames("imagenet_p_shear", image), _frames("imagenet_p_gaussian_blur", image)
    for i in (0, 11, 30):
        _close(sheared[i], _crop(_old_affine(image, shear=i - 15)), share=0.005)
        want = np.uint8(255 * gaussian(_crop(image) / 255.0, sigma=0.25 + 0.035 * i, channel_axis=-1, truncate=6.0))
        _close(blurred[i], want, share=0.01)  # OpenCV's kernel (ImageNet-C's gaussian_blur) vs scipy's


def test_spatter_drips_down_frame_by_frame():
    image = _photo("chelsea")
    frames = _frames("imagenet_p_spatter", image)
    wet = [np.abs(f.astype(int) - _crop(image)).sum(axis=2) > 0 for f in frames]
    rows = np.arange(224)[:, None]
    assert wet[0].any() and (rows * wet[10]).sum() / wet[10].sum() > (rows * wet[0]).sum() / wet[0].sum()
    assert np.array_equal(_frames("imagenet_p_spatter", image)[5], frames[5])


def _tilt_by_corners(image: np.ndarray, degrees: float) -> np.ndarray:
    """The original's tilt restated: each corner rotated about x and y by `degrees` in 3-D around the image
    centre, pushed the diagonal f away and projected with focal length f; the homography through 4 corners."""
    import cv2

    h, w = image.shape[:2]
    f, t = math.hypot(w, h), math.radians(degrees)
    rot_x = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    rot_y = np.array([[math.cos(t), 0, -math.sin(t)], [0, 1, 0], [math.sin(t), 0, math.cos(t)]])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    moved = []
    for x, y in corners:
        p = rot_x @ rot_y @ np.array([x - w / 2, y - h / 2, 1.0])  # the original's P1 puts the image at z = 1
        z = p[2] + f
        moved.append([f * p[0] / z + w / 2, f * p[1] / z + h / 2])
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), np.array(moved, dtype=np.float32))
    return cv2.warpPerspective(np.ascontiguousarray(image), matrix, (w, h))


@pytest.mark.parametrize("photo", PHOTOS)
def test_tilt_is_the_original_3d_rotation_and_projection(photo):
    image = _photo(photo)
    frames = _frames("imagenet_p_tilt", image)
    for i in (0, 22, 30):
        got, want = frames[i].astype(int), _crop(_tilt_by_corners(image, i - 15)).astype(int)
        diff = np.abs(got - want)  # float32 corners: a few pixels round the other way
        assert (diff > 2).mean() < 0.01 and np.abs(got.mean() - want.mean()) < 0.5, i
    assert not np.array_equal(frames[0], frames[30])


def test_noise_frames_are_fresh_draws_seeded_per_seed_config_image_and_frame():
    image = _photo("chelsea")
    frames = _frames("imagenet_p_gaussian_noise", image)
    assert np.array_equal(_frames("imagenet_p_gaussian_noise", image)[7], frames[7])
    assert not np.array_equal(frames[1], frames[2])  # each frame its own noise
    assert not np.array_equal(_frames("imagenet_p_gaussian_noise", image, seed=1)[1], frames[1])
    assert not np.array_equal(_frames("imagenet_p_gaussian_noise", image, image_id="y")[1], frames[1])
    spread = np.std(frames[1].astype(float) - frames[0].astype(float))
    assert 0.02 * 255 < spread < 0.035 * 255  # sigma 0.03, a little less where clamped
    hard = _frames("imagenet_p_shot_noise_3", image)
    assert np.std(hard[1].astype(float) - hard[0]) > np.std(_frames("imagenet_p_shot_noise", image)[1].astype(float)
                                                             - hard[0])


def test_noise_frames_restate_the_original_formulas_with_the_frame_generator():
    image = _photo("astronaut")
    x32 = _crop(image).astype(np.float32) / np.float32(255)
    x64 = _crop(image) / 255.0
    for config, k in (("imagenet_p_gaussian_noise_2", 4), ("imagenet_p_shot_noise", 30)):
        frame_rng = ip._frame_rngs(generator(0, config, "x"), 31)[k]
        if "gaussian" in config:  # ToPILImage(clamp(x + 0.05 * randn, 0, 1)): times 255, truncated
            want = (np.clip(x32 + np.float32(0.05) * frame_rng.standard_normal(x32.shape, dtype=np.float32), 0, 1)
                    * np.float32(255)).astype(np.uint8)
        else:
            want = np.uint8(255 * np.clip(frame_rng.poisson(x64 * 300) / 300.0, 0, 1))
        assert np.array_equal(_frames(config, image)[k], want), config


def test_motion_blur_and_snow_move_from_frame_to_frame():
    image = _photo("coffee")
    blurred = _frames("imagenet_p_motion_blur", image)
    snowy = _frames("imagenet_p_snow", image)
    assert not np.array_equal(blurred[0], blurred[30]) and not np.array_equal(snowy[0], snowy[30])
    assert snowy[10].mean() > _crop(image).mean()  # whitened, flakes added


def _digests(out) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.glob("*/*.parquet"))}


def test_generated_rows_hold_every_frame_and_are_identical_for_any_worker_count(tmp_path):
    import datasets

    from shift_hub import generate as engine
    from shift_hub.sources import open_source

    configs = ["imagenet_p_brightness", "imagenet_p_shot_noise"]
    engine.generate(configs, open_source("samples"), tmp_path / "a", num_proc=1, shard_size=1, limit=2,
                    progress=False)
    engine.generate(configs, open_source("samples"), tmp_path / "b", num_proc=2, shard_size=1, limit=2,
                    progress=False, card=False)
    a = _digests(tmp_path / "a")
    assert len(a) == 4 and a == _digests(tmp_path / "b")
    ds = datasets.load_dataset(str(tmp_path / "a"), "imagenet_p_brightness", split="validation")
    row = ds[0]
    assert isinstance(row["frames"], list) and len(row["frames"]) == 31
    assert np.array_equal(np.asarray(row["image"]), np.asarray(row["frames"][0]))
    assert row["frames"][3].format == "PNG" and row["config"] == "imagenet_p_brightness"


def test_a_sequence_config_is_not_one_image_to_shift():
    from shift_hub.rows import shift_image

    with pytest.raises(GenerationError, match="sequence of frames"):
        shift_image(registry.get("imagenet_p_brightness"), _photo("chelsea"), 0, "x")


def test_the_main_job_names_imagenet_p_among_the_configs_it_leaves_out():
    from shift_hub.evaluation import api

    phrase = next(p for p in api._left_out_of_all_cpu() if "ImageNet-P" in p)
    assert phrase.startswith("20 ImageNet-P config(s) (imagenet_p_gaussian_noise, ")
    assert "--configs imagenet_p" in phrase and "flip probability" in phrase and "need files not shipped" not in phrase

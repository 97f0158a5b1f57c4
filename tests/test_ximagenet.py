"""XImageNet-12 backgrounds: masks (GrabCut, polygons, model), scenario invariants, engine plumbing, ai_bg."""
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, jpeg_bytes, photo
from shift_hub import cli, masks
from shift_hub import generate as engine
from shift_hub.registry import REGISTRY
from shift_hub.rng import generator
from shift_hub.shifts import ximagenet as xi
from shift_hub.sources import Example, Source

XIMAGENET_CONFIGS = [n for n, s in REGISTRY.items() if s.family == "ximagenet"]


def disk_scene(seed=0, size=(96, 128), centre=(48, 64), radius=24):
    """A saturated orange disk on a textured teal background: an object GrabCut must find."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = rng.integers(10, 60, (h, w))
    img[..., 1] = rng.integers(110, 170, (h, w))
    img[..., 2] = rng.integers(120, 190, (h, w))
    yy, xx = np.mgrid[:h, :w]
    disk = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
    img[disk] = (235, 120, 30) + rng.integers(-15, 16, (int(disk.sum()), 3))
    return img, disk


def box_of(mask, pad=6):
    ys, xs = np.nonzero(mask)
    return (int(xs.min()) - pad, int(ys.min()) - pad, int(xs.max()) + pad, int(ys.max()) + pad)


# --- masks ---------------------------------------------------------------------------------------------

def test_grabcut_finds_the_object_in_its_box_reproducibly():
    img, disk = disk_scene()
    box = box_of(disk)
    mask = masks.grabcut(img, (box,), iterations=5, seed=3)
    iou = (mask & disk).sum() / (mask | disk).sum()
    assert iou > 0.9
    assert not mask[~masks.box_mask(mask.shape, (box,))].any()  # never outside the box
    assert np.array_equal(mask, masks.grabcut(img, (box,), iterations=5, seed=3))


def test_grabcut_on_a_real_sample_with_a_box():
    import skimage.data

    img = skimage.data.coffee()[::2, ::2].copy()  # 200x300: the cup and saucer
    box = (40, 30, 200, 190)
    mask = masks.grabcut(img, (box,), seed=1)
    inside = masks.box_mask(mask.shape, (box,))
    assert not mask[~inside].any() and 0.2 < mask[inside].mean() < 0.98
    # a box covering the whole image leaves GrabCut nothing to learn background from: the box is the mask
    assert masks.grabcut(img, ((0, 0, 299, 199),)).all()


def test_grabcut_on_a_smaller_copy_scales_the_mask_back():
    img, disk = disk_scene(size=(192, 256), centre=(96, 128), radius=48)
    ex = Example("d", (1,), "d", (box_of(disk),))
    mask = masks.compute_mask(ex, img, masks.MaskOptions(grabcut_max_side=128))
    assert mask.shape == disk.shape and (mask & disk).sum() / (mask | disk).sum() > 0.9


def test_polygons_labelme_v7_coco_and_png_rasterise_alike(tmp_path):
    square = [[10, 20], [40, 20], [40, 50], [10, 50]]
    expected = np.zeros((60, 80), bool)
    expected[20:51, 10:41] = True
    (tmp_path / "a.json").write_text(json.dumps({"shapes": [{"label": "x", "points": square, "shape_type": "polygon"}],
                                                 "imageHeight": 60, "imageWidth": 80}))
    (tmp_path / "b.json").write_text(json.dumps({"version": "2.0", "item": {"name": "b.JPEG", "slots": [{"width": 80, "height": 60}]},
                                                 "annotations": [{"name": "x", "polygon": {"paths": [[{"x": x, "y": y} for x, y in square]]}}]}))
    (tmp_path / "coco.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "c.JPEG", "width": 160, "height": 120}],  # annotated at twice the size
        "annotations": [{"image_id": 7, "segmentation": [[v * 2 for p in square for v in p]]}]}))
    Image.fromarray(expected.astype(np.uint8) * 255).save(tmp_path / "d.png")
    for image_id in ("a", "b", "c", "d"):
        entry = masks.find_polygons(str(tmp_path), image_id)
        got = masks.polygon_mask(entry, (60, 80))
        assert (got != expected).sum() <= 0.02 * expected.sum(), image_id
    assert masks.find_polygons(str(tmp_path), "zzz") is None


def test_segmentation_model_mask_through_the_pipeline(tmp_path):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                             num_attention_heads=[1, 1], decoder_hidden_size=16, num_labels=2,
                             id2label={0: "background", 1: "cat"}, label2id={"background": 0, "cat": 1},
                             patch_sizes=[7, 3], strides=[4, 2], mlp_ratios=[2, 2])
    SegformerForSemanticSegmentation(config).save_pretrained(tmp_path)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    img = photo(1, (40, 56))
    mask = masks.model_mask(img, str(tmp_path))
    assert mask.shape == (40, 56) and mask.dtype == bool
    assert masks.model_mask(img, str(tmp_path), ("no such label",)).sum() == 0
    masks.require_masks([], masks.MaskOptions(model=str(tmp_path)), ["blur_bg"], "s")  # a local folder: fine
    with pytest.raises(masks.MaskUnavailable, match="not a local folder"):
        masks.require_masks([], masks.MaskOptions(model=str(tmp_path / "absent")), ["blur_bg"], "s")


def test_no_boxes_polygons_or_model_names_all_three(tmp_path):
    examples = [Example("x", (1,), "x")]
    with pytest.raises(masks.MaskUnavailable) as err:
        masks.require_masks(examples, masks.MaskOptions(), ["blur_bg"], "samples")
    for hint in ("bounding boxes", "--polygons", "--mask-model"):
        assert hint in str(err.value)
    out = tmp_path / "out"
    assert cli.main(["generate", "blur_bg", "--source", "samples", "--out", str(out), "--quiet"]) == 2
    assert not list(out.glob("*/*.parquet"))


def test_mask_follows_the_geometry():
    from shift_hub.imaging import apply_geometry
    from shift_hub.registry import STANDARD

    img, disk = disk_scene(size=(300, 400), centre=(150, 200), radius=60)
    moved = masks.follow_geometry(disk, STANDARD)
    assert moved.shape == (224, 224)
    # the disk is orange in the geometry-transformed image exactly where the moved mask says
    orange = apply_geometry(img, STANDARD)[..., 0] > 150
    assert (orange != moved).sum() < 0.03 * moved.sum()


# --- scenario invariants -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene():
    return disk_scene(seed=5)


def test_blur_bg_and_blur_obj(scene):
    img, mask = scene
    blurred = cv2.GaussianBlur(img, (15, 15), 3)
    out = xi.blur_bg(img, generator(0, "blur_bg", "i"), mask=mask)
    assert np.array_equal(out[mask], img[mask]) and np.array_equal(out[~mask], blurred[~mask])
    out = xi.blur_obj(img, generator(0, "blur_obj", "i"), mask=mask)
    assert np.array_equal(out[~mask], img[~mask]) and np.array_equal(out[mask], blurred[mask])
    assert not np.array_equal(out, img)


@pytest.mark.parametrize("color", ["red", "green", "blue"])
def test_color_bg_sets_one_hue_on_the_background(scene, color):
    img, mask = scene
    hues = set()
    for i in range(12):
        out = xi.color_bg(img, generator(0, f"color_bg_{color}", f"img{i}"), mask=mask, color=color)
        assert np.array_equal(out[mask], img[mask])
        hsv_in, hsv_out = cv2.cvtColor(img, cv2.COLOR_RGB2HSV), cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        bg = ~mask & (hsv_in[..., 1] > 80) & (hsv_in[..., 2] > 80)  # hue is only well defined where colourful
        h = hsv_out[..., 0][bg].astype(int)
        hue = int(np.median(h))
        assert (np.minimum(abs(h - hue), 180 - abs(h - hue)) <= 2).all()  # one constant (8-bit round trip)
        assert np.abs(hsv_out[..., 2][bg].astype(int) - hsv_in[..., 2][bg]).max() <= 2  # value kept
        assert np.abs(hsv_out[..., 1][bg].astype(int) - hsv_in[..., 1][bg]).max() <= 6  # saturation kept
        hue = hue % 180
        assert any(lo - 1 <= hue <= hi + 1 or (hi == 180 and hue <= 1) for lo, hi in xi.HUE_RANGES[color])
        hues.add(hue)
    assert len(hues) > 3  # one random hue per image
    if color == "red":
        assert any(h <= 30 for h in hues) and any(h >= 149 for h in hues)  # both red ranges are drawn


def test_color_bg_grey_zeroes_background_saturation(scene):
    img, mask = scene
    out = xi.color_bg(img, generator(0, "color_bg_grey", "i"), mask=mask, color="grey")
    assert np.array_equal(out[mask], img[mask])
    assert np.array_equal(out[~mask], np.repeat(img.max(axis=2)[~mask][:, None], 3, axis=1))


def test_seg_img_rgba_and_rgb(scene):
    img, mask = scene
    rgba = xi.seg_img(img, None, mask=mask)
    assert rgba.shape == img.shape[:2] + (4,) and np.array_equal(rgba[..., :3], img)
    assert np.array_equal(rgba[..., 3], mask.astype(np.uint8) * 255)
    rgb = xi.seg_img_rgb(img, None, mask=mask)
    assert np.array_equal(rgb[mask], img[mask]) and not rgb[~mask].any()


def test_rand_bg_saturating_add_and_alpha(scene):
    img, mask = scene
    background = photo(9, (150, 200))
    provider = lambda rng: background  # noqa: E731
    out = xi.rand_bg(img, generator(0, "rand_bg", "i"), mask=mask, background_provider=provider)
    fg = cv2.resize(np.where(mask[..., None], img, 0).astype(np.uint8), (200, 150))
    assert out.shape == background.shape
    assert np.array_equal(out, np.minimum(background.astype(int) + fg, 255).astype(np.uint8))
    assert np.array_equal(out[:8, :8], background[:8, :8])  # black foreground adds nothing
    alpha = xi.rand_bg(img, None, mask=mask, background_provider=provider, composite="alpha")
    inside = cv2.resize(mask.astype(np.uint8), (200, 150), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert np.array_equal(alpha[inside], fg[inside]) and np.array_equal(alpha[~inside], background[~inside])


class BoxSource(Source):
    """Disk images of several classes, each with its box, as a devkit with XML boxes would give."""

    name = "boxes"

    def __init__(self, n=6, boxes=True, classes=(100, 101, 102)):
        self.items = []
        for i in range(n):
            img, disk = disk_scene(seed=i, centre=(40 + i, 60 + 2 * i))
            label = classes[i % len(classes)]
            self.items.append((f"img{i}", (label,), jpeg_bytes(img), (box_of(disk),) if boxes else None))

    def examples(self):
        for i, (image_id, labels, _, boxes) in enumerate(self.items):
            yield Example(image_id, labels, i, boxes)

    def read(self, example):
        return self.items[example.locator][2]


def test_rand_bg_background_comes_from_another_class():
    source = BoxSource()
    examples = list(source.examples())
    context = masks.MaskContext(pool=tuple(examples))
    photos = [(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")), labels) for _, labels, jpeg, _ in source.items]
    for ex in examples:
        draw = masks.background_provider(source, context, REGISTRY["rand_bg"].geometry, ex)
        for k in range(4):
            bg = draw(generator(0, "rand_bg", f"{ex.image_id}-{k}"))
            labels = [lab for arr, lab in photos if np.array_equal(arr, bg)]
            assert labels and labels[0] != ex.labels


# --- engine --------------------------------------------------------------------------------------------

def test_generate_computes_each_mask_once_and_any_worker_count_gives_same_bytes(tmp_path, monkeypatch):
    import datasets

    calls = []
    real = masks.compute_mask
    monkeypatch.setattr(masks, "compute_mask", lambda ex, img, opt: calls.append(ex.image_id) or real(ex, img, opt))
    configs = [c for c in XIMAGENET_CONFIGS if c != "ai_bg"]
    out = tmp_path / "out"
    engine.generate(configs, BoxSource(), out, shard_size=4, progress=False)
    assert sorted(calls) == [f"img{i}" for i in range(6)]  # once per source image, for all 9 configs
    assert len(list((out / ".masks").glob("*/*.png"))) == 6
    first = {c: (out / c / "validation-00000-of-00002.parquet").read_bytes() for c in configs}
    engine.generate(configs, BoxSource(), tmp_path / "again", shard_size=4, num_proc=2, progress=False)
    assert all((tmp_path / "again" / c / "validation-00000-of-00002.parquet").read_bytes() == b for c, b in first.items())
    seg = datasets.load_dataset(str(out), "seg_img", split="validation")
    assert len(seg) == 6 and seg[0]["image"].mode == "RGBA"
    blur = datasets.load_dataset(str(out), "blur_bg", split="validation")
    assert blur[0]["image"].size == (128, 96)


def test_images_without_a_mask_are_skipped_with_the_reason(tmp_path):
    source = BoxSource(n=3)
    source.items[1] = source.items[1][:3] + (None,)
    reports = engine.generate(["blur_obj"], source, tmp_path, progress=False)
    assert reports["blur_obj"].written == 2
    assert "--polygons" in reports["blur_obj"].skipped[0]["reason"]


def test_ximagenet12_classes_restrict_the_plan(tmp_path):
    from shift_hub import classes

    assert classes.subset("ximagenet12") == (44, 46, 124, 147, 153, 277, 393, 405, 479, 480, 486, 928)
    source = BoxSource(n=6, classes=(44, 281, 928))  # lizard, tabby (not one of the 12), ice cream
    reports = engine.generate(["rand_bg"], source, tmp_path, classes_subset="ximagenet12", progress=False)
    assert reports["rand_bg"].written == 4 and not reports["rand_bg"].skipped


def test_devkit_end_to_end_through_the_cli(tmp_path):
    import datasets
    from test_sources import make_devkit

    make_devkit(tmp_path / "devkit", n=4)
    out = tmp_path / "out"
    assert cli.main(["generate", "blur_bg", "color_bg_blue", "--source", f"devkit:{tmp_path / 'devkit'}",
                     "--out", str(out), "--quiet"]) == 0
    ds = datasets.load_dataset(str(out), "blur_bg", split="validation")
    assert len(ds) == 4 and ds[0]["image"].size == (64, 48) and ds[0]["config"] == "blur_bg"
    assert "config_name: color_bg_blue" in (out / "README.md").read_text()


def test_polygons_option_is_preferred_and_in_the_fingerprint(tmp_path):
    polygons = tmp_path / "polys"
    polygons.mkdir()
    square = [[4, 4], [30, 4], [30, 30], [4, 30]]
    (polygons / "img0.json").write_text(json.dumps({"shapes": [{"label": "o", "points": square}]}))
    source = BoxSource(n=2)
    opts = masks.MaskOptions(polygons=str(polygons))
    engine.generate(["seg_img"], source, tmp_path / "a", masks=opts, progress=False)
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "a" / "seg_img").to_pylist()
    alpha = np.asarray(Image.open(io.BytesIO(rows[0]["image"]["bytes"])))[..., 3]
    assert alpha[4:31, 4:31].all() and alpha.sum() // 255 == 27 * 27  # img0 from its polygon, img1 from its box
    with pytest.raises(engine.GenerationError, match="other settings"):
        engine.generate(["seg_img"], source, tmp_path / "a", progress=False)  # boxes instead: another fingerprint


# --- ai_bg ---------------------------------------------------------------------------------------------

def build_tiny_sdxl_inpaint(path: Path) -> Path:
    """A randomly initialised SDXL inpainting pipeline (9-channel UNet, two CLIP encoders), saved to `path`."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=8)  # 80 = 6 time ids x 8 + the 32-d pooled text embedding
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=8, sample_size=64)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    text = CLIPTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=100, projection_dim=32)
    vocab = {"<|startoftext|>": 0, "<|pad|>": 1, "<|endoftext|>": 2}
    for ch in "abcdefghijklmnopqrstuvwxyz,.-":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    src = path / "tokenizer_files"
    src.mkdir(parents=True)
    (src / "vocab.json").write_text(json.dumps(vocab))
    (src / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(src / "vocab.json"), str(src / "merges.txt"), model_max_length=77)
    pipe = StableDiffusionXLInpaintPipeline(
        vae=vae, text_encoder=CLIPTextModel(text), text_encoder_2=CLIPTextModelWithProjection(text),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler, requires_aesthetics_score=False)
    pipe.save_pretrained(path / "pipeline")
    return path / "pipeline"


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory):
    pytest.importorskip("diffusers")
    return build_tiny_sdxl_inpaint(tmp_path_factory.mktemp("sdxl"))


def test_ai_bg_regenerates_the_background_only(tiny_sdxl):
    inpaint = xi.ai_bg(model_id=str(tiny_sdxl), steps=2, resolution=64)
    (a, ma), (b, mb) = disk_scene(1, size=(48, 64), centre=(24, 32), radius=12), disk_scene(2, size=(40, 72), centre=(20, 30), radius=10)
    run = lambda: inpaint([a, b], [generator(0, "ai_bg", "a"), generator(0, "ai_bg", "b")],  # noqa: E731
                          masks=[ma, mb], labels=[(44,), (999,)])
    outs = run()
    for out, img, m in zip(outs, (a, b), (ma, mb)):
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.array_equal(out[m], img[m]) and (out[~m] != img[~m]).any(axis=1).mean() > 0.5
    assert all(np.array_equal(x, y) for x, y in zip(outs, run()))  # one seed per image: reproducible


def test_ai_bg_prompts_are_class_aware():
    prompt, negative = xi.prompts_for((44,), generator(0, "ai_bg", "x"))
    assert "alligator lizard" in prompt and "alligator lizard" in negative
    assert any(scene in prompt for scene in xi.SCENES["n01689811"])


def test_missing_weights_name_the_model_and_write_nothing(tmp_path):
    with pytest.raises(xi.WeightsMissing, match="no-such/sdxl-inpaint.*--inpaint-model"):
        xi.locate_model("no-such/sdxl-inpaint")
    out = tmp_path / "out"
    opts = masks.MaskOptions(inpaint_model=str(tmp_path / "absent"))
    from importlib.util import find_spec

    expected = "absent" if find_spec("diffusers") else "pip install 'shift-hub\\[sdxl\\]'"
    with pytest.raises(engine.GenerationError, match=expected):
        engine.generate(["blur_bg", "ai_bg"], BoxSource(n=2), out, masks=opts, progress=False)
    assert not list(out.rglob("*.parquet"))


DISTRIBUTED_SCRIPT = textwrap.dedent("""
    import dataclasses, os, sys
    sys.path[:0] = [{tests!r}]
    from test_ximagenet import BoxSource
    from shift_hub import generate, masks
    from shift_hub.registry import REGISTRY
    from shift_hub.shifts import ximagenet

    spec = REGISTRY["ai_bg"]  # the registry's SDXL settings, made tiny: 2 steps at about 64x64
    REGISTRY["ai_bg"] = dataclasses.replace(spec, params={{**spec.params, "steps": 2, "resolution": 64}})

    real = ximagenet.BackgroundInpainter.__call__
    def logged(self, images, rngs, masks, labels):
        with open({log!r}, "a") as f:
            f.write(f"{{os.environ['RANK']}} {{len(images)}}\\n")
        return real(self, images, rngs, masks, labels)
    ximagenet.BackgroundInpainter.__call__ = logged
    generate.generate(["ai_bg"], BoxSource(n=5), {out!r}, masks=masks.MaskOptions(inpaint_model={model!r}),
                      progress=False, batch_size=2, shard_size=2)
""")


def test_ai_bg_under_two_processes_does_each_image_once(tmp_path, tiny_sdxl):
    import datasets

    pytest.importorskip("accelerate")
    out, log = tmp_path / "out", tmp_path / "calls.log"
    script = tmp_path / "run.py"
    script.write_text(DISTRIBUTED_SCRIPT.format(tests=str(REPO / "tests"), log=str(log), out=str(out),
                                                model=str(tiny_sdxl)))
    # on CPU, `accelerate launch --cpu` goes through mpirun; torchrun starts the same PartialState processes
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers it started
        raise
    assert proc.returncode == 0, stderr[-3000:]
    ranks = [line.split() for line in log.read_text().splitlines()]
    assert {r for r, _ in ranks} == {"0", "1"} and sum(int(n) for _, n in ranks) == 5  # both worked, 5 images in all
    ds = datasets.load_dataset(str(out), "ai_bg", split="validation")
    assert sorted(ds["image_id"]) == [f"img{i}" for i in range(5)]  # each exactly once, merged in one layout


def test_builder_makes_rand_bg_like_generate(tmp_path):
    import datasets

    from shift_hub.builders import ShiftHub
    from test_sources import make_devkit

    make_devkit(tmp_path / "dk", n=3)
    builder = ShiftHub(config_name="rand_bg", source=f"devkit:{tmp_path / 'dk'}", cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    built = builder.as_dataset(split="validation").cast_column("image", datasets.Image(decode=False))
    engine.generate(["rand_bg"], f"devkit:{tmp_path / 'dk'}", tmp_path / "out", progress=False)
    written = datasets.load_dataset(str(tmp_path / "out"), "rand_bg", split="validation")
    written = written.cast_column("image", datasets.Image(decode=False))
    assert len(built) == 3
    assert sorted((r["image_id"], r["image"]["bytes"]) for r in built) == sorted(
        (r["image_id"], r["image"]["bytes"]) for r in written)

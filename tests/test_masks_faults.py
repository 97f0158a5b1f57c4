"""Bad mask inputs (boxes, XML, polygons, PNG masks, segmentation models) are skipped per image with a reason,
never written as nonsense masks and never stopping a run; masks are cached by their inputs' content."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import jpeg_bytes
from shift_hub import masks
from shift_hub import generate as engine
from shift_hub.registry import REGISTRY
from shift_hub.sources import Devkit, Example, Source
from test_ximagenet import box_of, disk_scene

DISK = dict(size=(96, 128), centre=(48, 64), radius=24)  # 128x96 images, the disk's box inside them


def make_devkit(root: Path, xmls: dict[int, str]) -> Path:
    """A devkit of len(xmls) disk photos; xmls[i] is the text of image i's box XML (None: no file)."""
    from test_sources import make_devkit as base

    base(root, n=len(xmls), boxes=True)
    for i, xml in xmls.items():
        stem = f"ILSVRC2012_val_{i:08d}"
        img, _ = disk_scene(seed=i, **DISK)
        (root / "val" / f"{stem}.JPEG").write_bytes(jpeg_bytes(img))
        (root / "bbox_val" / f"{stem}.xml").write_text(xml)
    return root


def xml(i: int, box=None, size=(128, 96), filename=None, raw_box=None) -> str:
    """An ILSVRC box XML for image i: by default the disk's true box and the true size."""
    x0, y0, x1, y1 = box or box_of(disk_scene(seed=i, **DISK)[1])
    bndbox = raw_box or f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>" if size else ""
    return (f"<annotation><filename>{filename or f'ILSVRC2012_val_{i:08d}'}</filename>{size_xml}"
            f"<object><name>n0</name><bndbox>{bndbox}</bndbox></object></annotation>")


def skipped(out: Path, config: str) -> dict[str, str]:
    return {s["image_id"][-1]: s["reason"] for s in engine.summary(out)[config]["skipped"]}


# --- 1, 2: boxes ---------------------------------------------------------------------------------------------

def test_boxes_that_cannot_describe_the_object_are_skipped_and_counted_in_the_card(tmp_path):
    root = make_devkit(tmp_path / "dk", {
        1: xml(1),  # fine
        2: xml(2, box=(300, 200, 400, 260)),  # entirely outside the 128x96 image
        3: xml(3, box=(40, 30, 40, 30)),  # zero area
        4: xml(4, box=(0, 0, 127, 95)),  # the whole image: the mask would leave no background
        5: xml(5, size=(96, 128)),  # <size> of another image
        6: xml(6, filename="ILSVRC2012_val_00000009"),  # another image's annotation
    })
    out = tmp_path / "out"
    reports = engine.generate(["blur_bg", "clean_full"], Devkit(root), out, progress=False)
    assert reports["blur_bg"].written == 1 and reports["clean_full"].written == 6  # boxes never touch clean
    reasons = skipped(out, "blur_bg")
    assert set(reasons) == {"2", "3", "4", "5", "6"}
    assert reasons["2"].startswith("bad box: ") and "outside the 128x96 image" in reasons["2"]
    assert reasons["3"].startswith("bad box: ") and "no area" in reasons["3"]
    assert reasons["4"].startswith("mask too large: ") and "100" in reasons["4"]
    assert reasons["5"].startswith("bad box annotation: ILSVRC2012_val_00000005.xml") and "96x128" in reasons["5"]
    assert reasons["6"].startswith("bad box annotation: ILSVRC2012_val_00000006.xml") and "00000009" in reasons["6"]
    for reason in reasons.values():
        assert str(tmp_path) not in reason and "ILSVRC2012_val_0000000" not in reason.split(":")[0]
    card = (out / "README.md").read_text()  # the card counts skips per kind of reason (the text before the colon)
    assert all(f"{kind}: {n}" in card for kind, n in (("bad box", 2), ("bad box annotation", 2), ("mask too large", 1)))


@pytest.mark.parametrize("raw", [
    "<xmin>inf</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>",
    "<xmin>nan</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>",
    "<xmin>ten</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>",
    "<ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>",
])
def test_malformed_box_xml_skips_its_image_only(tmp_path, raw):
    root = make_devkit(tmp_path / "dk", {1: xml(1), 2: xml(2, raw_box=raw)})
    (root / "bbox_val" / "ILSVRC2012_val_00000003.xml").write_text("<annotation><object>")  # not even XML
    (root / "val" / "ILSVRC2012_val_00000003.JPEG").write_bytes(jpeg_bytes(disk_scene(seed=3, **DISK)[0]))
    (root / "data" / "ILSVRC2015_clsloc_validation_ground_truth.txt").write_text("4\n7\n10\n")
    out = tmp_path / "out"
    reports = engine.generate(["blur_obj", "clean_full"], Devkit(root), out, progress=False)
    assert reports["blur_obj"].written == 1 and reports["clean_full"].written == 3
    reasons = skipped(out, "blur_obj")
    assert reasons["2"].startswith("bad box annotation: ILSVRC2012_val_00000002.xml: <xmin>")
    assert reasons["3"].startswith("bad box annotation: ILSVRC2012_val_00000003.xml: not well-formed")


def test_boxes_partly_outside_are_clipped_and_kept(tmp_path):
    x0, y0, x1, y1 = box_of(disk_scene(seed=1, **DISK)[1])
    root = make_devkit(tmp_path / "dk", {1: xml(1, box=(x0, y0, x1 + 500, y1 + 10**6))})
    reports = engine.generate(["blur_bg"], Devkit(root), tmp_path / "out", progress=False)
    assert reports["blur_bg"].written == 1


# --- 3: polygons ------------------------------------------------------------------------------------------------

class DiskSource(Source):
    """Disk photos without boxes: a polygon annotation is the only way to a mask."""

    name = "disks"

    def __init__(self, ids):
        self.ids = list(ids)

    def examples(self):
        for i, image_id in enumerate(self.ids):
            yield Example(image_id, (100 + i % 3,), i)

    def read(self, example):
        return jpeg_bytes(disk_scene(seed=example.locator, **DISK)[0])


SQUARE = [[40, 30], [90, 30], [90, 70], [40, 70]]


def labelme(points=SQUARE, h=96, w=128, **shape):
    return {"shapes": [{"label": "o", "points": points, "shape_type": "polygon", **shape}],
            "imageHeight": h, "imageWidth": w}


BAD_POLYGONS = {
    "two_points": (labelme([[1, 2], [30, 40]]), "2 points"),
    "nan": (labelme([[40, 30], [float("nan"), 30], [90, 70]]), "not finite"),
    "huge": (labelme([[40, 30], [1e300, 30], [90, 70]]), "outside"),
    "tall": (labelme(h=10**9), "1000000000"),
    "negative": (labelme(w=-128), "-128"),
    "ragged": (labelme([[40, 30], [90], [90, 70, 3]]), "[x, y] pairs"),
    "no_points": ({"shapes": [{"label": "o", "shape_type": "polygon"}]}, "points"),
    "v7_path": ({"image": {"filename": "v7_path.jpg"}, "annotations": [{"name": "o", "polygon": {"path": "nope"}}]},
                "path"),
    "broken_json": ("{not json", "not valid JSON"),
}


def write_polygons(folder: Path) -> None:
    folder.mkdir()
    for name, (data, _) in BAD_POLYGONS.items():
        (folder / f"{name}.json").write_text(data if isinstance(data, str) else json.dumps(data))
    (folder / "good.json").write_text(json.dumps(labelme()))
    (folder / "v7_good.json").write_text(json.dumps({  # an `image` that is a string names nothing: the file does
        "image": "elsewhere.jpg",
        "annotations": [{"name": "o", "polygon": {"path": [{"x": x, "y": y} for x, y in SQUARE]}}]}))
    (folder / "coco.json").write_text(json.dumps({
        "images": [{"id": 1, "width": 128, "height": 96},  # no file_name: cannot be matched, must not crash
                   {"id": 2, "file_name": "coco_good.JPEG", "width": 128, "height": 96},
                   {"id": 3, "file_name": "coco_rle.JPEG", "width": 128, "height": 96},
                   {"id": 4, "file_name": "coco_odd.JPEG", "width": 128, "height": 96}],
        "annotations": [{"image_id": 2, "segmentation": [[v for p in SQUARE for v in p]]},
                        {"image_id": 3, "segmentation": {"size": [40000, 40000], "counts": [0, 1600000000]}},
                        {"image_id": 4, "segmentation": [[40, 30, 90, 30, 90]]}]}))


def test_bad_polygon_annotations_are_skipped_with_their_file_named(tmp_path):
    folder = tmp_path / "polys"
    write_polygons(folder)
    ids = ["good", "v7_good", "coco_good", "coco_rle", "coco_odd", "absent", *BAD_POLYGONS]
    out = tmp_path / "out"
    with pytest.warns(masks.MaskWarning, match="coco.json: images\\[0\\] has no file_name"):
        reports = engine.generate(["seg_img_rgb"], DiskSource(ids), out, masks=masks.MaskOptions(polygons=str(folder)),
                                  progress=False)
    assert reports["seg_img_rgb"].written == 3
    reasons = {s["image_id"]: s["reason"] for s in engine.summary(out)["seg_img_rgb"]["skipped"]}
    assert set(reasons) == {"coco_rle", "coco_odd", "absent", *BAD_POLYGONS}
    assert reasons["absent"].startswith("no mask: no polygon annotation in --polygons and no bounding box")
    for name, (_, words) in BAD_POLYGONS.items():
        assert reasons[name].startswith(f"bad polygons: {name}.json: ") and words in reasons[name], reasons[name]
    assert reasons["coco_rle"].startswith("bad polygons: coco.json: ") and "40000x40000" in reasons["coco_rle"]
    assert reasons["coco_odd"].startswith("bad polygons: coco.json: ") and "odd" in reasons["coco_odd"]
    assert not any(str(tmp_path) in r for r in reasons.values())


def test_polygon_annotated_at_another_size_is_scaled_but_a_foreign_aspect_is_not(tmp_path):
    folder = tmp_path / "polys"
    folder.mkdir()
    (folder / "half.json").write_text(json.dumps(labelme([[x / 2, y / 2] for x, y in SQUARE], h=48, w=64)))
    (folder / "square.json").write_text(json.dumps(labelme(h=128, w=128)))
    shape = (96, 128)
    got = masks.polygon_mask(masks.find_polygons(str(folder), "half"), shape)
    assert got[30:71, 40:91].all() and got.sum() == 41 * 51
    with pytest.raises(masks.MaskUnavailable, match="bad polygons: square.json: .*128x128.*128x96"):
        masks.polygon_mask(masks.find_polygons(str(folder), "square"), shape)


# --- 4: content-keyed cache and fingerprint --------------------------------------------------------------------

def test_an_edited_annotation_makes_a_new_mask_and_a_new_fingerprint(tmp_path):
    import pyarrow.parquet as pq

    folder = tmp_path / "polys"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(labelme()))
    opts = masks.MaskOptions(polygons=str(folder))
    out = tmp_path / "out"

    def alpha():
        row = pq.read_table(out / "seg_img").to_pylist()[0]
        return np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))[..., 3] > 0

    engine.generate(["seg_img"], DiskSource(["a"]), out, masks=opts, progress=False)
    assert alpha()[30:71, 40:91].all() and alpha().sum() == 41 * 51
    moved = [[x - 30, y - 20] for x, y in SQUARE]
    (folder / "a.json").write_text(json.dumps(labelme(moved)))  # the user fixes the annotation
    with pytest.raises(engine.GenerationError, match="other settings"):
        engine.generate(["seg_img"], DiskSource(["a"]), out, masks=opts, progress=False)  # not silently reused
    engine.generate(["seg_img"], DiskSource(["a"]), out, masks=opts, overwrite=True, progress=False)
    assert alpha()[10:51, 10:61].all() and alpha().sum() == 41 * 51


def test_box_xml_content_keys_the_cached_mask(tmp_path):
    root = make_devkit(tmp_path / "dk", {1: xml(1)})
    source = Devkit(root)
    ex = next(source.examples())
    cache = masks.MaskCache(tmp_path / "cache", masks.MaskOptions(), source.describe())
    (root / "bbox_val" / "ILSVRC2012_val_00000001.xml").write_text(xml(1, filename="ILSVRC2012_val_00000001.JPEG"))
    assert cache.path(ex) != cache.path(next(Devkit(root).examples()))


def test_mask_options_enter_the_fingerprint():
    spec = REGISTRY["blur_bg"]
    pool = (Example("a", (1,), "a", ((1, 2, 30, 40),)),)
    extras = {masks.fingerprint_extra(spec, masks.for_spec(spec, masks.MaskContext(o, None, "s", pool)))
              for o in (masks.MaskOptions(), masks.MaskOptions(grabcut_max_side=0),
                        masks.MaskOptions(grabcut_max_side=300), masks.MaskOptions(grabcut_iterations=3))}
    assert len(extras) == 4


# --- 5: palette PNG masks -----------------------------------------------------------------------------------------

def test_palette_png_mask_is_read_by_index_not_colour(tmp_path):
    index = np.zeros((96, 128), np.uint8)
    index[30:71, 40:91] = 1
    img = Image.fromarray(index, mode="P")
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)  # index 0 (background) is white, 1 (object) black
    img.save(tmp_path / "p.png")
    got = masks.polygon_mask(masks.find_polygons(str(tmp_path), "p"), (96, 128))
    assert np.array_equal(got, index == 1)


def test_rgba_cutout_png_is_read_by_alpha(tmp_path):
    rgba = np.full((96, 128, 4), 200, np.uint8)
    rgba[..., 3] = 0
    rgba[30:71, 40:91, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "c.png")
    got = masks.polygon_mask(masks.find_polygons(str(tmp_path), "c"), (96, 128))
    assert np.array_equal(got, rgba[..., 3] > 0)


# --- 6: segmentation model labels and load failures -------------------------------------------------------------

def tiny_segformer(path: Path) -> Path:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1],
                             hidden_sizes=[8, 16], num_attention_heads=[1, 1], decoder_hidden_size=16, num_labels=2,
                             id2label={0: "background", 1: "cat"}, label2id={"background": 0, "cat": 1},
                             patch_sizes=[7, 3], strides=[4, 2], mlp_ratios=[2, 2])
    SegformerForSemanticSegmentation(config).save_pretrained(path)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_unknown_mask_label_fails_before_any_work_naming_the_labels(tmp_path):
    model = tiny_segformer(tmp_path / "model")
    out = tmp_path / "out"
    opts = masks.MaskOptions(model=str(model), model_labels=("unicorn",))
    with pytest.raises(engine.GenerationError, match="--mask-label unicorn.*background, cat"):
        engine.generate(["blur_bg"], DiskSource(["a"]), out, masks=opts, progress=False)
    assert not list(out.rglob("*.parquet"))
    masks.preflight([REGISTRY["blur_bg"]], [], masks.MaskOptions(model=str(model), model_labels=("Cat",)), "s")


def test_a_folder_that_is_not_a_model_fails_in_one_line(tmp_path):
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(engine.GenerationError) as err:
        engine.generate(["blur_bg"], DiskSource(["a"]), tmp_path / "out", masks=masks.MaskOptions(model=str(folder)),
                        progress=False)
    message = str(err.value)
    assert message.startswith(f"--mask-model {folder}: ") and "\n" not in message


def test_model_finding_only_background_gives_no_mask(monkeypatch):
    h, w = 20, 30
    wall = np.zeros((h, w), np.uint8)
    wall[:, :20] = 255
    segments = [{"label": "wall", "mask": Image.fromarray(wall)}, {"label": "sky", "mask": Image.fromarray(255 - wall)}]
    monkeypatch.setattr(masks, "_segmenter", lambda model: lambda image: segments)
    assert not masks.model_mask(np.zeros((h, w, 3), np.uint8), "m").any()


# --- 7: GrabCut working size and progress ----------------------------------------------------------------------

def test_grabcut_runs_on_a_smaller_copy_by_default(monkeypatch):
    seen = []
    real = masks.grabcut
    monkeypatch.setattr(masks, "grabcut", lambda image, *a, **k: seen.append(image.shape[:2]) or real(image, *a, **k))
    img, disk = disk_scene(size=(1200, 1800), centre=(600, 900), radius=300)
    mask = masks.compute_mask(Example("big", (1,), "big", (box_of(disk, pad=60),)), img, masks.MaskOptions())
    side = masks.MaskOptions().working_side()
    assert side and max(seen[0]) == side and mask.shape == disk.shape
    assert (mask & disk).sum() / (mask | disk).sum() > 0.9
    seen.clear()
    small, small_disk = disk_scene(size=(300, 400), centre=(150, 200), radius=80)
    masks.compute_mask(Example("small", (1,), "small", (box_of(small_disk),)), small,
                       masks.MaskOptions(grabcut_max_side=0))  # 0: full size
    assert seen == [(300, 400)]


def test_mask_building_has_its_own_progress_bar(tmp_path, capsys):
    from test_ximagenet import BoxSource

    source = BoxSource(n=2)
    context = masks.MaskContext(masks.MaskOptions(), str(tmp_path / "cache"), source.describe())
    masks.precompute(context, source, list(source.examples()), progress=True)
    assert "masks" in capsys.readouterr().err
    assert len(list((tmp_path / "cache").glob("*/*.png"))) == 2

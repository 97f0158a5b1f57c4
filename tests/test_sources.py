import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from conftest import jpeg_bytes, photo
from shift_hub import classes
from shift_hub.sources import Devkit, Folders, HFDataset, Samples, SourceError, open_source


def test_class_metadata_from_timm_files():
    assert len(classes.wnids()) == 1000 and classes.wnids()[0] == "n01440764"
    assert classes.names()[967] == "espresso"
    assert len(classes.subset("imagenet_r")) == len(classes.subset("imagenet_a")) == 200
    assert classes.subset("ximagenet12") == (44, 46, 124, 147, 153, 277, 393, 405, 479, 480, 486, 928)
    real = classes.real_labels()
    assert len(real) == 50000 and any(len(r) == 0 for r in real)


def test_samples_are_real_photos_with_honest_labels():
    examples = {e.image_id: e for e in Samples().examples()}
    assert {"chelsea", "coffee", "china", "grace_hopper", "rocket", "motorcycle_left"} <= set(examples)
    assert classes.names()[examples["chelsea"].label] == "tabby"
    assert classes.names()[examples["coffee"].label] == "espresso"
    for e in examples.values():
        assert e.labels and Image.open(e.locator).size[0] > 100


PERMUTATION = 7  # CLS-LOC id k -> WNID index (k * 7) % 1000: deliberately not the sorted order


def make_devkit(root, n=5, boxes=True, year="2015"):
    (root / "val").mkdir(parents=True)
    (root / "data").mkdir()
    ids = np.arange(1, 1001)
    synsets = np.zeros((1000,), dtype=[(f"ILSVRC{year}{'_CLSLOC' if year == '2015' else ''}_ID", "O"), ("WNID", "O"), ("words", "O")])
    for k in ids:
        w = classes.wnids()[(k * PERMUTATION) % 1000]
        synsets[k - 1] = (k, w, classes.lemmas()[w])
    meta = "meta_clsloc.mat" if year == "2015" else "meta.mat"
    savemat(root / "data" / meta, {"synsets": synsets})
    truth = [3 * i + 1 for i in range(1, n + 1)]
    gt = f"ILSVRC{year}_clsloc_validation_ground_truth.txt" if year == "2015" else "ILSVRC2012_validation_ground_truth.txt"
    (root / "data" / gt).write_text("\n".join(map(str, truth)) + "\n")
    (root / "data" / "ILSVRC2015_clsloc_validation_blacklist.txt").write_text("2\n")
    if boxes:
        (root / "bbox_val").mkdir()
    for i in range(1, n + 1):
        stem = f"ILSVRC2012_val_{i:08d}"
        (root / "val" / f"{stem}.JPEG").write_bytes(jpeg_bytes(photo(i)))
        if boxes:
            (root / "bbox_val" / f"{stem}.xml").write_text(
                f"<annotation><filename>{stem}</filename><object><name>x</name><bndbox><xmin>{i}</xmin>"
                f"<ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object></annotation>")
    return [(3 * i + 1) * PERMUTATION % 1000 for i in range(1, n + 1)]


@pytest.mark.parametrize("year", ["2015", "2012"])
def test_devkit_maps_clsloc_ids_through_wnids(tmp_path, year):
    expected = make_devkit(tmp_path, year=year)
    examples = list(Devkit(tmp_path).examples())
    assert [e.image_id for e in examples] == [f"ILSVRC2012_val_{i:08d}" for i in range(1, 6)]
    assert [e.label for e in examples] == expected
    assert examples[0].boxes == ((1, 2, 30, 40),)


def test_devkit_blacklist_and_autodetect(tmp_path):
    make_devkit(tmp_path, boxes=False)
    source = open_source(str(tmp_path), exclude_blacklist=True)
    assert isinstance(source, Devkit)
    ids = [e.image_id for e in source.examples()]
    assert "ILSVRC2012_val_00000002" not in ids and len(ids) == 4
    assert all(e.boxes is None for e in source.examples())


def test_devkit_missing_ground_truth_says_what_to_do(tmp_path):
    (tmp_path / "val").mkdir()
    with pytest.raises(SourceError, match="ground_truth"):
        list(Devkit(tmp_path).examples())


def test_folders_source(tmp_path):
    for wnid in ("n01440764", "n02123045"):
        (tmp_path / wnid).mkdir()
        (tmp_path / wnid / "a.JPEG").write_bytes(jpeg_bytes(photo(1)))
    examples = list(open_source(str(tmp_path)).examples())
    assert [(e.image_id, e.label) for e in examples] == [("n01440764/a", 0), ("n02123045/a", 281)]
    (tmp_path / "cats").mkdir()
    with pytest.raises(SourceError, match="not ImageNet-1k WNIDs"):
        list(Folders(tmp_path).examples())


def test_hf_source_from_parquet_maps_label_names(tmp_path):
    import datasets

    names = ["n02123045", "n07920052"]
    ds = datasets.Dataset.from_dict(
        {"img": [{"bytes": jpeg_bytes(photo(i)), "path": None} for i in range(3)], "y": [0, 1, 1]},
        features=datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=names)}))
    ds.to_parquet(str(tmp_path / "data.parquet"))
    source = open_source(f"hf:{tmp_path / 'data.parquet'}", image_column="img", label_column="y")
    examples = list(source.examples())
    assert [e.label for e in examples] == [281, 967, 967]
    assert source.read(examples[0])[:2] == b"\xff\xd8"


def test_hf_source_refuses_unmappable_labels(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": jpeg_bytes(photo(0)), "path": None}], "label": [0]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["airplane"])}))
    ds.to_parquet(str(tmp_path / "x.parquet"))
    with pytest.raises(SourceError, match="not an ImageNet-1k class"):
        list(HFDataset(str(tmp_path / "x.parquet")).examples())
    with pytest.raises(SourceError, match="no column 'lbl'"):
        list(HFDataset(str(tmp_path / "x.parquet"), label_column="lbl").examples())

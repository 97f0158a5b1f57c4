"""ImageNet-X factors (issue 24 item 4): the error ratio per factor of every config, with its interval, the images
without annotation counted, a config x factor heatmap and a report.html section, on a devkit of annotated files."""
from __future__ import annotations

import json
import re
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import shift_hub
from conftest import devkit_meta, jpeg_bytes, linear_stub
from shift_hub.evaluation import imagenet_x
from shift_hub.evaluation.intervals import interval, resample_weights

CONFIGS = ["clean", "gaussian_noise_1", "brightness_3"]
RIGHT_ON_CLEAN = {"pose": 3, "background": 1, "color": 2}  # of the 4 images of each factor, the stub gets right
RESAMPLES = 200
needs_package = pytest.mark.skipif(find_spec("imagenet_x") is None,
                                   reason="pip install 'shift-hub[imagenet-x]' to test ImageNet-X's factors")


def _raw_annotations() -> tuple[list[dict], set]:
    """The package's top-factor annotations and prototypes, read here independently of the module under test."""
    folder = Path(find_spec("imagenet_x").submodule_search_locations[0]) / "annotations"
    with (folder / "imagenet_x_val_top_factor.jsonl").open() as fh:
        entries = [json.loads(line) for line in fh]
    return entries, set((folder / "prototypical_paths.csv").read_text().split()[1:])


def _pick_images():
    """(stem, label, factor, right on clean) for 4 annotated images of each factor of RIGHT_ON_CLEAN, plus a
    prototype, a val image ImageNet-X leaves unannotated and an annotated one whose devkit label is another."""
    entries, prototypes = _raw_annotations()
    entries.sort(key=lambda e: e["file_name"])
    names = {e["file_name"] for e in entries}
    usable = [e for e in entries if e["file_name"] not in prototypes]
    factors = [k for k in entries[0] if k not in ("file_name", "class", "justification", "one_word")]
    top = lambda e: next((f for f in factors if e[f]), None)  # noqa: E731  (the top-factor file: one per image)
    picked = []
    for factor, right in RIGHT_ON_CLEAN.items():
        mine = [e for e in usable if e[factor] and top(e) == factor][:4]
        picked += [(e["file_name"][:-5], e["class"], factor, k < right) for k, e in enumerate(mine)]
    prototype = next(e for e in entries if e["file_name"] in prototypes)
    unannotated = next(f"ILSVRC2012_val_{n:08d}" for n in range(1, 50001)
                       if f"ILSVRC2012_val_{n:08d}.JPEG" not in names)
    other = next(e for e in usable if e["texture"])
    picked += [(prototype["file_name"][:-5], prototype["class"], None, True), (unannotated, 0, None, True),
               (other["file_name"][:-5], (other["class"] + 1) % 1000, None, True)]
    return picked


def _make_devkit(root: Path, picked) -> Path:
    """val/ holds each picked image as a solid colour whose red level encodes its position (the stub reads it);
    the ground truth labels it as `picked` says, CLS-LOC id k naming the k-th WNID."""
    devkit_meta(root)
    truth = [1] * 50000
    for j, (stem, label, _, _) in enumerate(picked):
        truth[int(stem[-8:]) - 1] = label + 1
        colour = np.zeros((40, 48, 3), dtype=np.uint8) + np.array([10 + 16 * j, 120, 120], dtype=np.uint8)
        (root / "val" / f"{stem}.JPEG").write_bytes(jpeg_bytes(colour))
    (root / "data" / "ILSVRC2015_clsloc_validation_ground_truth.txt").write_text("\n".join(map(str, truth)) + "\n")
    return root


def _stub(answers):
    """Predicts answers[j] for the image whose red level is 10 + 16 j: right or wrong by design on clean."""
    import torch

    class Lookup(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("answers", torch.tensor(answers))

        def forward(self, x):
            j = ((x[:, 0].mean(dim=(1, 2)) * 255 - 10) / 16).round().long().clamp(0, len(answers) - 1)
            return 10 * torch.nn.functional.one_hot(self.answers[j], 1000).float()

    return linear_stub(Lookup(), name="lookup")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from shift_hub.generate import generate

    root = tmp_path_factory.mktemp("imagenet_x")
    picked = _pick_images()
    devkit = _make_devkit(root / "devkit", picked)
    generate(CONFIGS, f"devkit:{devkit}", root / "data", progress=False)
    answers = [label if right else (label + 7) % 1000 for _, label, _, right in picked]
    result = shift_hub.evaluate(_stub(answers), str(root / "data"), out=root / "results", num_workers=0,
                                bootstrap=RESAMPLES)
    return result, root / "results", picked


def _by_hand(rows, picked, config):
    """{factor: (ratio, n)} of one config from its predictions: error on the factor's images / error on all 12."""
    factor_of = {f"{stem}": factor for stem, _, factor, _ in picked if factor}
    wrong = {r["image_id"]: not r["correct"] for r in rows if r["config"] == config and r["image_id"] in factor_of}
    overall = np.mean(list(wrong.values()))
    out = {}
    for factor in RIGHT_ON_CLEAN:
        mine = [w for i, w in wrong.items() if factor_of[i] == factor]
        out[factor] = (np.mean(mine) / overall if overall else None, len(mine))
    return out


@needs_package
def test_error_ratio_per_factor_is_imagenet_x_definition_on_every_config(evaluated):
    result, _, picked = evaluated
    block = result.summary["imagenet_x"]
    entries, _ = _raw_annotations()
    assert block["factors"] == [k for k in entries[0] if k not in ("file_name", "class", "justification", "one_word")]
    assert len(block["factors"]) == 16
    assert {k: block[k] for k in ("annotated", "unannotated", "prototypes", "label_mismatch")} == {
        "annotated": 12, "unannotated": 1, "prototypes": 1, "label_mismatch": 1}
    assert block["licence"] == "CC BY-NC 4.0" and re.fullmatch(r"imagenet-x \d+\.\d+\.\d+", block["source"])
    clean = block["per_config"]["clean"]  # 6 of 12 wrong; pose 1 of 4, background 3 of 4, color 2 of 4
    assert block["overall_error"]["clean"] == pytest.approx(0.5)
    assert {f: clean[f]["ratio"] for f in RIGHT_ON_CLEAN} == pytest.approx({"pose": 0.5, "background": 1.5,
                                                                          "color": 1.0})
    for config in CONFIGS:
        per = block["per_config"][config]
        for factor, (ratio, n) in _by_hand(result.rows, picked, config).items():
            assert per[factor]["n"] == n == 4
            assert per[factor]["ratio"] == (None if ratio is None else pytest.approx(ratio))
        assert all(per[f] == {"ratio": None, "ci_low": None, "ci_high": None, "n": 0}
                   for f in block["factors"] if f not in RIGHT_ON_CLEAN)


@needs_package
def test_interval_comes_from_the_same_resample_weights(evaluated):
    """Recomputed image by image from intervals.resample_weights over every image id of the run (in its order)."""
    result, _, picked = evaluated
    ids = sorted({r["image_id"] for r in result.rows})
    factor_of = {stem: factor for stem, _, factor, _ in picked if factor}
    wrong = np.array([not next(r["correct"] for r in result.rows if r["config"] == "clean" and r["image_id"] == i)
                      if i in factor_of else 0 for i in ids], dtype=float)
    used = np.array([i in factor_of for i in ids], dtype=float)
    pose = np.array([factor_of.get(i) == "pose" for i in ids], dtype=float)
    w = np.concatenate(list(resample_weights(len(ids), RESAMPLES, 0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = ((w @ (wrong * pose)) / (w @ pose)) / ((w @ wrong) / (w @ used))
    got = result.summary["imagenet_x"]["per_config"]["clean"]["pose"]
    assert {"ci_low": got["ci_low"], "ci_high": got["ci_high"]} == pytest.approx(interval(ratios))
    assert result.summary["imagenet_x"]["intervals"]["resamples"] == RESAMPLES


@needs_package
def test_heatmap_report_section_and_table_line(evaluated):
    result, out, _ = evaluated
    heatmap = out / imagenet_x.PLOT_FILE
    assert result.paths["imagenet_x_factors"] == heatmap
    with Image.open(heatmap) as image:
        assert image.format == "PNG" and image.info.get("Software") == "shift_hub" and image.size[0] == 1200
    saved = json.loads((out / "results.json").read_text())
    assert saved["summary"]["imagenet_x"]["per_config"]["clean"]["pose"]["ratio"] == pytest.approx(0.5)
    page = (out / "report.html").read_text()
    section = page.split('<section id="imagenet-x">', 1)[1].split("</section>", 1)[0]
    assert "ImageNet-X: error ratio per factor" in section and 'src="data:image/png;base64,' in section
    assert "12 annotated image(s) used; 1 without annotation; 1 prototypical" in section
    assert "CC BY-NC 4.0" in section and "<td data-sort=\"0.500000\">0.50 [" in section
    table = (out / "table.md").read_text()
    assert "ImageNet-X factors (imagenet-x " in table and "highest ratio per config: clean background 1.50" in table


def _rows(ids, labels=(0,)):
    return [{"config": "clean", "image_id": i, "labels": list(labels), "targets": list(labels), "correct": False,
             "scorable": True} for i in ids]


def test_missing_extra_is_one_line_naming_the_install(monkeypatch, caplog):
    monkeypatch.setattr(imagenet_x, "_package_dir", lambda: None)
    imagenet_x.load_annotations.cache_clear()
    try:
        with pytest.raises(imagenet_x.ImageNetXMissing, match=r"pip install 'shift-hub\[imagenet-x\]'"):
            imagenet_x.load_annotations()
        block = imagenet_x.factor_summary(_rows(["n01440764/ILSVRC2012_val_00000293"]), ["clean"])
    finally:
        imagenet_x.load_annotations.cache_clear()
    assert block == {"note": imagenet_x.MISSING} and "\n" not in imagenet_x.MISSING
    assert imagenet_x.MISSING in caplog.text
    assert imagenet_x.table_line(block) == f"ImageNet-X factors: {imagenet_x.MISSING}"


def test_data_not_from_ilsvrc_val_gets_no_block():
    assert imagenet_x.factor_summary(_rows(["chelsea", "n01440764/n01440764_10026"]), ["clean"]) is None


@pytest.mark.parametrize("image_id, name", [
    ("ILSVRC2012_val_00000293", "ILSVRC2012_val_00000293.JPEG"),
    ("n01440764/ILSVRC2012_val_00000293", "ILSVRC2012_val_00000293.JPEG"),
    ("ILSVRC2012_val_00000293.JPEG", "ILSVRC2012_val_00000293.JPEG"),
    ("ILSVRC2012_val_0000029", None), ("x_ILSVRC2012_val_00000293", None), ("ILSVRC2012_val_00000293/x", None)])
def test_val_file_names(image_id, name):
    assert imagenet_x.val_file_name(image_id) == name


@needs_package
def test_val_names_with_other_labels_get_counts_and_no_ratio():
    """A folder named like val but holding other photos (bench/make_synthetic_imagenet.py): nothing guessed."""
    entries, prototypes = _raw_annotations()
    chosen = [e for e in entries if e["file_name"] not in prototypes][:3]
    rows = [{**r, "labels": [(e["class"] + 1) % 1000]} for r, e in zip(_rows([e["file_name"][:-5] for e in chosen]),
                                                                      chosen)]
    block = imagenet_x.factor_summary(rows, ["clean"], resamples=10)
    assert block["annotated"] == 0 and block["label_mismatch"] == 3 and block["per_config"] == {}
    assert "no error ratio" in block["note"]

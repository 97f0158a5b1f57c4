"""The established shift sets in their distributed layouts, their protocols on hand-computed cases, and
the robustness suite end to end with a stub model whose prediction is written in each image's colour."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from shift_hub import classes
from shift_hub.evaluation import protocols
from shift_hub.evaluation.metrics import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS
from shift_hub.sources.base import SourceError
from shift_hub.sources.known import ImageNetC, ImageNetP, ImageNetV2, RealValidation, read_frames

# ----------------------------------------------------------------------------------------------
# protocols, by hand
# ----------------------------------------------------------------------------------------------


def test_masked_top1_keeps_only_the_subset():
    logits = np.full((2, 1000), -10.0)
    logits[0, 500], logits[0, 6] = 5.0, 1.0  # global argmax 500 (outside), best in subset: 6
    logits[1, 11], logits[1, 13] = 1.0, 2.0
    subset = (6, 11, 13)
    assert protocols.masked_predictions(logits, subset).tolist() == [6, 13]
    assert protocols.masked_top1(logits, [6, 11], subset) == 0.5


def test_real_accuracy_excludes_empty_sets():
    result = protocols.real_accuracy([1, 2, 3, 4], [(1, 5), (), (3,), (9,)])
    assert result == {"accuracy": pytest.approx(2 / 3), "n_scored": 3, "n_excluded": 1}
    real = classes.real_labels()
    assert protocols.real_label_sets(["n01440764/ILSVRC2012_val_00000002", "ILSVRC2012_val_00000001"]) == [real[1], real[0]]
    assert real[0] == () and set(real[1]) == {970, 795}


def test_ood_aupr_positives_are_the_ood_images():
    # scores -MSP: out -0.2, -0.7; in -0.3, -0.8, -0.9. Ranked: P N P N N.
    # AP = 0.5 * 1 + 0.5 * 2/3; AUROC: 3 + 2 of the 6 (out, in) pairs ordered right.
    result = protocols.ood_detection(in_msp=[0.9, 0.8, 0.3], out_msp=[0.2, 0.7])
    assert result["aupr"] == pytest.approx(0.5 + 1 / 3)
    assert result["auroc"] == pytest.approx(5 / 6)
    assert (result["n_in"], result["n_out"]) == (3, 2)
    assert protocols.max_softmax(np.log([[1.0, 3.0, 4.0]]), subset=[0, 1]).tolist() == pytest.approx([0.75])


def test_flip_probability_noise_vs_consecutive_and_difficulty():
    seq = [1, 1, 2, 2, 1]
    # consecutive pairs: 1=1, 1≠2, 2=2, 2≠1 -> 1/2; with a constant second sequence the mean is 1/4
    assert protocols.flip_probability([seq, [3, 3, 3]], noise=False) == pytest.approx(0.25)
    # noise: every frame against the first: 1, 2, 2, 1 vs 1 -> 2 of 4
    assert protocols.flip_probability([seq], noise=True) == pytest.approx(0.5)
    # difficulty 2: chains (0,2,4) and (1,3): 1≠2, 2≠1, 1≠2 -> 3 of 3
    assert protocols.flip_probability([seq], noise=False, difficulty=2) == pytest.approx(1.0)
    # noise ignores difficulty (the reference's step is 1 for noise)
    assert protocols.flip_probability([seq], noise=True, difficulty=3) == pytest.approx(0.5)


def test_top5_pair_distance_by_hand():
    assert protocols.top5_pair_distance([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == 0
    # 1 and 2 swap (1 + 1), 5 drops out of the top 5 (|5 - 6| = 1)
    assert protocols.top5_pair_distance([1, 2, 3, 4, 5], [2, 1, 3, 4, 9]) == 3
    assert protocols.top5_pair_distance([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == 5 + 4 + 3 + 2 + 1


def _reference_top5_distance(logits_before, logits_after):
    """The reference's formula on full rankings (ordinal ranks, cumulative top-5 indicator)."""
    from scipy.stats import rankdata

    cum = np.cumsum([0] + [1] * 5 + [0] * (len(logits_before) - 6))
    perm1 = rankdata(-logits_before, method="ordinal").astype(int)
    perm2 = rankdata(-logits_after, method="ordinal").astype(int)
    sigma = perm2[np.argsort(perm1)]
    return int(np.sum(np.abs(cum[:5] - cum[sigma - 1][:5])))


def test_top5_distance_matches_the_full_ranking_formula():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.normal(size=1000)
        b = a + rng.normal(scale=0.3, size=1000) * (a > 2)  # perturb the top of the ranking
        top_a, top_b = np.argsort(-a, kind="stable")[:5], np.argsort(-b, kind="stable")[:5]
        assert protocols.top5_pair_distance(top_a, top_b) == _reference_top5_distance(a, b)


def test_perturbation_summary_with_and_without_reference():
    flip = {"gaussian_noise": 0.1, "translate": 0.2, "shear": 0.9}
    t5d = {"gaussian_noise": 1.0, "translate": 2.0, "shear": 5.0}
    raw = protocols.perturbation_summary(flip, t5d)
    assert raw["perturbations"] == ["gaussian_noise", "translate"]  # held-out `shear` not averaged
    assert raw["mean_flip_probability"] == pytest.approx(0.15) and not raw["complete"]
    assert "mfr" not in raw
    ref = {"flip_probability": {"gaussian_noise": 0.2, "translate": 0.8}, "top5_distance": {"gaussian_noise": 2.0, "translate": 2.0}}
    out = protocols.perturbation_summary(flip, t5d, ref)
    assert out["mfr"] == pytest.approx((0.5 + 0.25) / 2)
    assert out["mt5d"] == pytest.approx((0.5 + 1.0) / 2)


# ----------------------------------------------------------------------------------------------
# tiny folders in each layout; images carry the class the stub model will predict in their colour
# ----------------------------------------------------------------------------------------------

def colour(code: int) -> np.ndarray:
    """A flat 16x16 image whose red/green encode `code` (0..999) in steps of 8 (JPEG/mp4 safe)."""
    return np.broadcast_to(np.array([code // 32 * 8 + 4, code % 32 * 8 + 4, 128], np.uint8), (16, 16, 3)).copy()


def save(path, code: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(colour(code)).save(path, quality=95)


def write_video(path, codes) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (16, 16))
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    for c in codes:
        writer.write(np.ascontiguousarray(colour(c)[:, :, ::-1]))
    writer.release()


W = classes.wnids()
A = classes.subset("imagenet_a")
O_CLASSES = (100, 200)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("shift_sets")
    v2 = root / "imagenetv2-matched-frequency-format-val"
    save(v2 / "5" / "a.jpeg", 5)  # right
    save(v2 / "7" / "b.jpeg", 8)  # wrong
    save(root / "imagenetv2-threshold0.7-format-val" / "0" / "c.jpeg", 0)
    save(root / "ImageNet-Sketch" / "sketch" / W[3] / "s.JPEG", 3)
    save(root / "imagenet-a" / W[A[0]] / "a0.jpg", A[0])  # right
    save(root / "imagenet-a" / W[A[1]] / "a1.jpg", A[1] - 1)  # wrong over 1000, right over the 200
    # ImageNet-O: code 150 is equidistant from 100 and 200 -> MSP 0.5; 149 -> MSP ~0.88
    save(root / "imagenet-o" / W[100] / "o0.jpg", 150)
    save(root / "imagenet-o" / W[200] / "o1.jpg", 149)
    # val (class folders, true labels 100/200): ReaL sets #1 (), #2 {970, 795}, #3 {230, 231}, #4 {809}
    save(root / "val" / W[100] / "ILSVRC2012_val_00000001.JPEG", 100)
    save(root / "val" / W[100] / "ILSVRC2012_val_00000002.JPEG", 795)
    save(root / "val" / W[200] / "ILSVRC2012_val_00000003.JPEG", 230)
    save(root / "val" / W[200] / "ILSVRC2012_val_00000004.JPEG", 100)
    c = root / "imagenet-c"
    save(c / "gaussian_noise" / "1" / W[6] / "x.JPEG", 6)
    save(c / "gaussian_noise" / "2" / W[6] / "x.JPEG", 7)
    save(c / "brightness" / "1" / W[6] / "x.JPEG", 6)
    p = root / "imagenet-p"
    write_video(p / "gaussian_noise" / W[6] / "v.mp4", [6, 6, 9, 6])
    for k, code in enumerate([6, 9, 9, 6]):  # the frame-folder layout
        save(p / "translate" / W[6] / "seq0" / f"{k:03d}.png", code)
    return root


def test_imagenet_v2_layout(root):
    ex = list(ImageNetV2(root / "imagenetv2-matched-frequency-format-val").examples())
    assert [(e.image_id, e.labels) for e in ex] == [("5/a", (5,)), ("7/b", (7,))]
    with pytest.raises(SourceError, match="0..999"):
        list(ImageNetV2(root / "imagenet-a").examples())


def test_imagenet_c_layout(root):
    c = ImageNetC(root / "imagenet-c")
    assert c.parts() == [("brightness", 1), ("gaussian_noise", 1), ("gaussian_noise", 2)]
    assert [e.image_id for e in c.examples()][0] == f"brightness/1/{W[6]}/x"


def test_real_validation_labels_by_file_number(root):
    ex = {e.image_id: e.labels for e in RealValidation(root / "val").examples()}
    assert ex["ILSVRC2012_val_00000001"] == () and set(ex["ILSVRC2012_val_00000003"]) == {230, 231}


def test_imagenet_p_layouts_video_and_frames(root):
    p = ImageNetP(root / "imagenet-p")
    assert p.perturbations() == ["gaussian_noise", "translate"]
    video, = p.sequences("gaussian_noise")
    frames, = p.sequences("translate")
    assert video.labels == frames.labels == (6,)
    assert len(read_frames(video.locator)) == 4 and len(p.frames(frames)) == 4
    assert read_frames(frames.locator)[1].shape == (16, 16, 3)


# ----------------------------------------------------------------------------------------------
# the suite with the colour-code stub
# ----------------------------------------------------------------------------------------------

class SmallTensor:
    def __call__(self, image):
        import torch

        return torch.from_numpy(np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32)).permute(2, 0, 1)


def code_logits(batch):
    """logits_j = -|j - k|, k read back from the mean red/green of each image."""
    import torch

    mean = batch.mean(dim=(2, 3))
    k = torch.round((mean[:, 0] - 4) / 8) * 32 + torch.round((mean[:, 1] - 4) / 8)
    return -(torch.arange(1000, dtype=torch.float32)[None, :] - k[:, None]).abs()


def stub():
    import torch

    from shift_hub.evaluation.models import Classifier

    class CodeNet(torch.nn.Module):
        def forward(self, x):
            return code_logits(x)

    return Classifier(name="colour-code stub", adapter="stub", module=CodeNet(), transform=SmallTensor())


@pytest.fixture(scope="module")
def suite_result(root, tmp_path_factory):
    from shift_hub.evaluation.suite import run_suite
    from shift_hub.generate import generate

    generate(["clean"], "samples", root / "generated", progress=False)
    out = tmp_path_factory.mktemp("report")
    reference = {"flip_probability": {"gaussian_noise": 0.5, "translate": 1.0},
                 "top5_distance": {"gaussian_noise": 10.0, "translate": 28 / 3}}
    results = run_suite(stub(), root, out=out, num_workers=0, batch_size=4, p_reference=reference)
    return results, out


def test_suite_finds_sets_and_names_the_missing(suite_result, root):
    results, out = suite_result
    assert set(results["missing"]) == {"imagenet-v2-top-images", "imagenet-r"}
    assert results["found"]["imagenet-sketch"] == str(root / "ImageNet-Sketch" / "sketch")
    assert list(results["generated"]) == [str(root / "generated")]
    table = (out / "robustness.md").read_text()
    assert "Missing: ImageNetV2 top-images, ImageNet-R" in table and table.index("| ImageNet val") < table.index("| ImageNet-A")
    assert "generated generated/clean" in table
    saved = json.loads((out / "robustness.json").read_text())
    assert saved["sets"]["imagenet-a"]["top1"] == 1.0
    assert sum(1 for _ in open(out / "robustness_predictions.jsonl")) > 20


def test_suite_classification_protocols(suite_result):
    sets = suite_result[0]["sets"]
    assert sets["imagenet-v2-matched-frequency"]["top1"] == 0.5
    assert sets["imagenet-v2-threshold0.7"]["top1"] == 1.0
    assert sets["imagenet-sketch"]["top1"] == 1.0
    assert sets["imagenet-a"]["top1"] == 1.0  # 0.5 without the 200-class mask
    val = sets["imagenet-val"]
    assert val["top1"] == 0.25  # only #1 is predicted as its folder's class
    assert val["real"] == {"accuracy": pytest.approx(2 / 3), "n_scored": 3, "n_excluded": 1}


def test_suite_imagenet_o(suite_result):
    o = suite_result[0]["sets"]["imagenet-o"]
    # in-distribution = the 4 val images of O's classes, all confidently classified over {100, 200};
    # the O images score MSP 0.5 and ~0.88: perfectly separated
    assert (o["images"], o["in_distribution_images"]) == (2, 4)
    assert o["aupr"] == pytest.approx(1.0) and o["auroc"] == pytest.approx(1.0)


def test_suite_imagenet_c_mce(suite_result):
    c = suite_result[0]["sets"]["imagenet-c"]
    gn, br = 0.5 / ALEXNET_ERRORS["gaussian_noise"], 0.0 / ALEXNET_ERRORS["brightness"]
    assert c["mce"] == pytest.approx((gn + br) / 2) and not c["complete"]
    clean_err = 0.75
    rel = [(0.5 - clean_err) / (ALEXNET_ERRORS["gaussian_noise"] - ALEXNET_CLEAN_ERROR),
           (0.0 - clean_err) / (ALEXNET_ERRORS["brightness"] - ALEXNET_CLEAN_ERROR)]
    assert c["relative_mce"] == pytest.approx(np.mean(rel))


def test_suite_imagenet_p(suite_result):
    p = suite_result[0]["sets"]["imagenet-p"]
    per = p["per_perturbation"]
    # noise [6,6,9,6] vs the first frame: one flip in 3; translate [6,9,9,6] consecutive: 2 in 3
    assert per["gaussian_noise"]["flip_probability"] == pytest.approx(1 / 3)
    assert per["translate"]["flip_probability"] == pytest.approx(2 / 3)
    # top-5 of code k is [k, k-1, k+1, k-2, k+2]; d(6 -> 9) = 15, d(9 -> 6) = 13
    assert per["gaussian_noise"]["top5_distance"] == pytest.approx(15 / 3)
    assert per["translate"]["top5_distance"] == pytest.approx((15 + 0 + 13) / 3)
    assert p["mean_flip_probability"] == pytest.approx(0.5)
    assert p["mfr"] == pytest.approx(2 / 3) and p["mt5d"] == pytest.approx(0.75)
    assert not p["reference_complete"]


def test_suite_flat_val_without_devkit_scores_real_only(tmp_path):
    from shift_hub.evaluation.suite import run_suite

    for n, code in [(1, 5), (2, 795), (3, 231), (4, 809)]:
        save(tmp_path / "ILSVRC2012_img_val" / f"ILSVRC2012_val_{n:08d}.JPEG", code)
    save(tmp_path / "imagenet_o" / W[100] / "o.jpg", 150)
    results = run_suite(stub(), tmp_path, num_workers=0, limit=3)
    val = results["sets"]["imagenet-val"]
    assert math.isnan(val["top1"])  # no true labels without the devkit
    assert val["real"] == {"accuracy": 1.0, "n_scored": 2, "n_excluded": 1}
    assert math.isnan(results["sets"]["imagenet-o"]["aupr"])
    assert any("in-distribution" in n for n in results["notes"])
    assert "imagenet-c" in results["missing"] and not results["generated"]


def test_noise_folders_stand_in_at_their_difficulty():
    values = {"gaussian_noise": 0.1, "gaussian_noise_2": 0.2, "gaussian_noise_3": 0.3, "translate": 0.4}
    assert protocols.at_difficulty(values, 1) == {"gaussian_noise": 0.1, "translate": 0.4}
    assert protocols.at_difficulty(values, 2) == {"gaussian_noise": 0.2, "translate": 0.4}
    assert protocols.at_difficulty({"shot_noise": 0.1, "rotate": 0.2}, 3) == {"rotate": 0.2}  # no shot_noise_3


def test_imagenet_c_per_category_extraction(tmp_path):
    save(tmp_path / "blur" / "motion_blur" / "3" / W[6] / "x.JPEG", 6)
    save(tmp_path / "fog" / "1" / W[6] / "y.JPEG", 6)
    c = ImageNetC(tmp_path)
    assert c.parts() == [("fog", 1), ("motion_blur", 3)]
    assert [e.image_id for e in c.part("motion_blur", 3).examples()] == [f"{W[6]}/x"]


def test_cli_suite_with_a_tiny_timm_model(root, tmp_path, capsys):
    import timm
    from timm.models import save_for_hf

    from shift_hub.evaluation.command import cli_main

    save_for_hf(timm.create_model("test_resnet"), tmp_path / "model", safe_serialization=True)
    out = tmp_path / "report"
    rc = cli_main([str(tmp_path / "model"), "--suite", "robustness", "--root", str(root), "--out", str(out),
                   "--num-workers", "0", "--limit", "1", "--batch-size", "8", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "Missing: ImageNetV2 top-images, ImageNet-R" in printed and "| ImageNet-A |" in printed
    results = json.loads((out / "robustness.json").read_text())
    assert results["model"]["adapter"] == "timm" and results["options"]["limit"] == 1
    assert results["sets"]["imagenet-v2-matched-frequency"]["images"] == 1
    assert cli_main(["--suite", "robustness"]) == 2 and "--root" in capsys.readouterr().err

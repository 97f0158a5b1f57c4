"""Metric and label-space functions against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shift_hub.evaluation import labels as L
from shift_hub.evaluation import metrics as M


def test_topk_correct_and_accuracy():
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    targets = [[2], [0], [0, 1]]  # the last row has two valid labels
    assert M.topk_correct(scores, targets, 1).tolist() == [False, True, False]
    assert M.topk_correct(scores, targets, 2).tolist() == [True, True, True]
    assert M.accuracy([True, False, True, True]) == 0.75
    assert math.isnan(M.accuracy([]))


def test_ece_two_bins_by_hand():
    # sorted confidences 0.3 0.6 | 0.8 0.9, hits 0 1 | 0 1
    # bin 1: |0.45 - 0.5| * 2/4 = 0.025; bin 2: |0.85 - 0.5| * 2/4 = 0.175
    ece = M.expected_calibration_error([0.9, 0.8, 0.6, 0.3], [True, False, True, False], n_bins=2)
    assert ece == pytest.approx(0.2)


def test_ece_fifteen_equal_mass_bins():
    # 30 samples -> 15 bins of 2 (cut points int(linspace(0, 29, 16)) + 1 = 2, 4, ..., 28)
    levels = np.linspace(0.1, 0.95, 15)
    conf = np.concatenate([levels, levels + 0.001])
    hits = np.concatenate([np.ones(15, bool), np.zeros(15, bool)])  # each bin: one right, one wrong
    expected = np.mean(np.abs(levels + 0.0005 - 0.5))
    assert M.expected_calibration_error(conf, hits) == pytest.approx(expected)
    perfect = M.expected_calibration_error(np.ones(30), np.ones(30, bool))
    assert perfect == 0.0


def test_drop_absolute_and_relative():
    d = M.drop(0.5, 0.8)
    assert d["abs"] == pytest.approx(0.3) and d["rel"] == pytest.approx(0.375)


def test_ce_mce_relative_mce_by_hand():
    errors = {("gaussian_noise", 1): 0.5, ("gaussian_noise", 2): 0.7, ("brightness", 1): 0.3,
              ("speckle_noise", 1): 0.9}  # speckle noise has no AlexNet reference
    out = M.corruption_errors(errors, clean_error=0.2)
    ce_g, ce_b = 0.6 / 0.886428, 0.3 / 0.564592
    assert out["per_corruption"]["gaussian_noise"]["ce"] == pytest.approx(ce_g)
    assert out["per_corruption"]["brightness"]["ce"] == pytest.approx(ce_b)
    assert "ce" not in out["per_corruption"]["speckle_noise"]
    assert out["mce"] == pytest.approx((ce_g + ce_b) / 2)
    rel_g = (0.6 - 0.2) / (0.886428 - 0.4348)
    rel_b = (0.3 - 0.2) / (0.564592 - 0.4348)
    assert out["relative_mce"] == pytest.approx((rel_g + rel_b) / 2)
    assert out["complete"] is False and out["corruptions_in_mce"] == 2
    assert M.error_by_severity(errors) == {1: pytest.approx((0.5 + 0.3 + 0.9) / 3), 2: 0.7}


def test_alexnet_table_matches_published_order():
    assert list(M.ALEXNET_ERRORS)[0] == "gaussian_noise" and list(M.ALEXNET_ERRORS)[-1] == "jpeg_compression"
    assert len(M.ALEXNET_ERRORS) == 15 and M.ALEXNET_ERRORS["fog"] == 0.819324


def test_complete_mce_needs_all_corruptions_and_severities():
    errors = {(c, s): 0.5 for c in M.ALEXNET_ERRORS for s in range(1, 6)}
    out = M.corruption_errors(errors)
    assert out["complete"] is True
    assert out["mce"] == pytest.approx(np.mean([0.5 / v for v in M.ALEXNET_ERRORS.values()]))


def _logits_from_probs(probs):
    return torch.log(torch.as_tensor(probs, dtype=torch.float64).clamp_min(1e-30)).unsqueeze(0)


def test_sixteen_class_mean_probability_aggregation():
    p = np.full(1000, 0.0)
    p[404] = 0.3  # airplane: a single class
    p[[281, 282, 283, 284, 285, 286]] = 0.05  # cat: same total mass spread over six classes
    p[p == 0] = 0.4 / (p == 0).sum()
    space = L.get_label_space("16-class")
    scores = space.scores(_logits_from_probs(p))[0]
    names = list(space.class_names)
    assert scores[names.index("airplane")].item() == pytest.approx(0.3, rel=1e-5)
    assert scores[names.index("cat")].item() == pytest.approx(0.05, rel=1e-5)
    assert names[int(scores.argmax())] == "airplane"  # the mean, not the sum, decides
    assert space.targets([282]) == {names.index("cat")}


def test_subset_spaces_mask_logits():
    logits = torch.zeros(1, 1000)
    logits[0, 0] = 10.0  # tench: not an ImageNet-R class
    r = L.get_label_space("imagenet-r")
    r_index = [g[0] for g in r.groups]
    assert 0 not in r_index and len(r_index) == 200
    logits[0, r_index[7]] = 5.0
    scores = r.scores(logits)
    assert scores.shape == (1, 200) and int(scores.argmax()) == 7
    assert float(scores.sum()) == pytest.approx(1.0)
    x = L.get_label_space("ximagenet-12")
    assert [g[0] for g in x.groups] == [44, 46, 124, 147, 153, 277, 393, 405, 479, 480, 486, 928]
    assert x.targets([0]) == set() and x.targets([153]) == {4}
    assert L.get_label_space("imagenet-a").num_classes == 200


def test_toonnet_classes_without_imagenet_counterpart():
    space = L.get_label_space("toonnet")
    assert space.num_classes == 12
    empty = {n for n, g in zip(space.class_names, space.groups) if not g}
    assert empty == {"android robot", "tree", "cloud"}
    scores = space.scores(torch.zeros(2, 1000))
    assert torch.isnan(scores[:, [space.class_names.index(n) for n in empty]]).all()
    # the cartoon cat scores through the WordNet hyponyms of cat (281-287)
    assert space.targets([287]) == {space.class_names.index("cat")}


def test_output_mapping_by_wnid_name_and_background():
    names = L.imagenet_names()
    assert (L.output_to_imagenet({i: n for i, n in enumerate(names)}, 1000) == np.arange(1000)).all()
    wnids = L.imagenet_wnids()
    shuffled = {0: wnids[5], 1: wnids[3]}
    mapping = L.output_to_imagenet(shuffled, 2, allow_partial=True)
    assert mapping.tolist() == [5, 3]
    with pytest.raises(L.UnmappableLabels, match="only 2 of the 1000"):
        L.output_to_imagenet(shuffled, 2)
    bg = L.output_to_imagenet(None, 1001)
    assert bg[0] == -1 and bg[1] == 0
    logits = torch.arange(1001, dtype=torch.float32).unsqueeze(0)
    assert torch.equal(L.to_imagenet_logits(logits, bg)[0], torch.arange(1, 1001, dtype=torch.float32))
    partial = L.to_imagenet_logits(torch.tensor([[1.0, 2.0]]), mapping)
    assert partial[0, 5] == 1.0 and partial[0, 3] == 2.0 and torch.isinf(partial[0, 0])
    with pytest.raises(L.UnmappableLabels):
        L.output_to_imagenet({i: f"LABEL_{i}" for i in range(10)}, 10)


def test_duplicate_imagenet_names_resolved_by_position():
    assert L.label_to_imagenet("crane", 134) == 134 and L.label_to_imagenet("crane", 517) == 517
    assert L.label_to_imagenet("crane") is None
    assert L.label_to_imagenet("tiger cat") == 282 and L.label_to_imagenet("n01440764") == 0


def test_summarize_derives_corruptions_from_registry(monkeypatch):
    """Configs registered as <corruption>_<severity> in group imagenet_c feed mCE and severity curves."""
    from shift_hub import registry

    for sev in (1, 2):
        spec = registry.ShiftSpec(name=f"fog_{sev}", family="corruptions", fn=None, description="", citation="",
                                  severity=sev, group="imagenet_c")
        monkeypatch.setitem(registry.REGISTRY, spec.name, spec)

    def rows_of(config, hits, conf=0.9):  # one row per image i0..i3, paired across configs by id
        return [{"config": config, "image_id": f"i{i}", "scorable": True, "correct": hit, "correct5": True,
                 "confidence": conf, "label_space": "imagenet-1k", "targets": [1]} for i, hit in enumerate(hits)]

    rows = (rows_of("clean", [True, True, True, False]) + rows_of("fog_1", [True, True, False, False])
            + rows_of("fog_2", [False] * 4))
    out = M.summarize(rows, ["clean", "fog_1", "fog_2"])
    per = out["per_config"]
    assert per["clean"]["top1"] == 0.75 and per["fog_1"]["top1"] == 0.5
    assert per["fog_1"]["drop"]["abs"] == pytest.approx(0.25) and per["fog_1"]["drop"]["rel"] == pytest.approx(1 / 3)
    c = out["summary"]["imagenet_c"]
    assert c["per_corruption"]["fog"]["mean_error"] == pytest.approx(0.75)
    assert c["mce"] == pytest.approx(0.75 / 0.819324)
    assert c["relative_mce"] == pytest.approx((0.75 - 0.25) / (0.819324 - 0.4348))
    assert out["summary"]["accuracy_by_severity"]["fog"] == {"1": 0.5, "2": 0.0}


def test_report_outputs(tmp_path):
    from shift_hub.evaluation import report

    scored = {"per_config": {"clean": {"n": 2, "n_scored": 2, "n_unscorable": 0, "label_space": "imagenet-1k",
                                       "top1": 0.5, "top5": 1.0, "ece": 0.1, "severity": None}},
              "summary": {}}
    results = report.build_results({"id": "m", "adapter": "timm"}, {"source": "dir", "split": "validation"},
                                   ["clean"], scored)
    table = report.markdown_table(results)
    assert "| clean | imagenet-1k | 2 | 50.00 | 100.00 | - | - | 10.00 |" in table
    import yaml

    index = yaml.safe_load(report.model_index_yaml(results))["model-index"][0]
    assert index["name"] == "m"
    assert index["results"][0]["dataset"]["config"] == "clean"
    assert index["results"][0]["metrics"][0]["value"] == 50.0
    paths = report.write_outputs(results, [], tmp_path)
    assert paths["accuracy_per_shift"].is_file()


def test_registry_label_space_falls_back_for_imagenet_photos():
    from shift_hub.evaluation.runner import _registry_space

    assert _registry_space("toon_ius", [[282], [967], [872]]).name == "imagenet-1k"  # mostly outside ToonNet
    assert _registry_space("toon_ius", [[282], [385], []]).name == "toonnet"  # cat, elephant, a cloud
    assert _registry_space("blur_bg", [[44], [46]]).name == "ximagenet-12"
    assert _registry_space("clean", [[0]]).name == "imagenet-1k"


def test_torchvision_category_names_map_to_standard_order():
    """torchvision's 1000 short names (with 'Cardigan' the corgi and 'cardigan' the sweater) map by position."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    mapping = L.output_to_imagenet(dict(enumerate(_IMAGENET_CATEGORIES)), 1000)
    assert (mapping == np.arange(1000)).all()
    assert L.label_to_imagenet("Cardigan", 264) == 264 and L.label_to_imagenet("cardigan", 474) == 474


def test_label_space_for_configs():
    assert L.label_space_for("clean").name == "imagenet-1k"
    assert L.label_space_for("blur_bg").name == "ximagenet-12"  # family ximagenet in the registry
    assert L.label_space_for("imagenet-r").name == "imagenet-r"  # not in the registry: by name
    assert L.label_space_for("imagenet_a").name == "imagenet-a"
    assert L.label_space_for("imagenet_sketch").name == "imagenet-1k"


def test_1001_way_head_with_background_and_duplicate_names_maps_to_standard_order():
    import numpy as np

    from shift_hub import classes
    from shift_hub.evaluation.labels import output_to_imagenet

    names = [classes.lemmas()[w].split(",")[0] for w in classes.wnids()]  # short names: 'crane' twice
    id2label = {0: "background", **{i + 1: n for i, n in enumerate(names)}}
    mapping = output_to_imagenet(id2label, 1001)
    assert mapping[0] == -1 and (mapping[1:] == np.arange(1000)).all()

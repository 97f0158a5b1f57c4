"""ImageNet-P scored by `evaluate` (issue 27): flip probability and top-5 distance from the stored frames, by the
protocol code the robustness suite uses, with intervals; damaged sequences left out whole and said; mFR / mT5D
with a reference; the eval.yaml tasks; the same numbers from a folder, from `datasets` and from the CLI."""
import json

import datasets
import numpy as np
import pytest
from conftest import linear_stub

from shift_hub.evaluation import api, protocols
from shift_hub.evaluation.runner import DataError

CONFIGS = ["clean", "imagenet_p_brightness", "imagenet_p_gaussian_noise", "imagenet_p_translate"]


def _stub():
    """A fixed linear net: its flips are what they are; the tests are about how they are counted."""
    return linear_stub()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from shift_hub.generate import generate

    out = tmp_path_factory.mktemp("p")
    generate(CONFIGS, "samples", out, limit=3, progress=False)
    return out


@pytest.fixture(scope="module")
def scored(folder, tmp_path_factory):
    return api.evaluate(_stub(), folder, out=tmp_path_factory.mktemp("res"), num_workers=0, bootstrap=200,
                        plots=False)


def _by_sequence(rows, config):
    seqs: dict = {}
    for r in rows:
        if r["config"] == config:
            sequence, _, k = r["image_id"].rpartition("#")
            seqs.setdefault(sequence, {})[int(k)] = r
    return seqs


def test_flip_probability_and_top5_distance_restate_the_papers_definitions(scored):
    p = scored.results["summary"]["imagenet_p"]
    for config, noise in (("imagenet_p_gaussian_noise", True), ("imagenet_p_brightness", False),
                          ("imagenet_p_translate", False)):
        seqs = _by_sequence(scored.rows, config)
        assert len(seqs) == 3 and all(len(f) == (41 if "translate" in config else 31) for f in seqs.values())
        flips, dists = [], []
        for frames in seqs.values():
            preds = [frames[k]["pred"] for k in sorted(frames)]
            top5 = [frames[k]["top5"] for k in sorted(frames)]
            pairs = [(0, k) for k in range(1, len(preds))] if noise else [(k - 1, k) for k in range(1, len(preds))]
            flips.append(np.mean([preds[a] != preds[b] for a, b in pairs]))
            # top-5 distance: sum over ranks i of |i - rank of that class after (6 if not in the top 5)|
            dists.append(np.mean([sum(abs(i - (top5[b].index(c) + 1 if c in top5[b] else 6))
                                      for i, c in enumerate(top5[a], 1)) for a, b in pairs]))
        entry = p["per_config"][config]
        assert entry["sequences"] == 3 and entry["incomplete"] == []
        assert entry["flip_probability"] == pytest.approx(np.mean(flips))
        assert entry["top5_distance"] == pytest.approx(np.mean(dists))
        assert entry["compared_to"] == ("first frame" if noise else "previous frame")
        ci = entry["ci"]["flip_probability"]
        assert ci["ci_low"] <= entry["flip_probability"] <= ci["ci_high"]
    means = [p["per_config"][c]["flip_probability"] for c in CONFIGS[1:]]
    assert p["mean_flip_probability"] == pytest.approx(np.mean(means)) and p["complete"] is False
    assert p["intervals"]["images"] == 3 and "mfr" not in p and "AlexNet reference" in p["note"]


def test_sequences_stay_out_of_the_per_config_accuracies_and_the_table_shows_them(scored):
    results = scored.results
    assert list(results["metrics"]) == ["clean"]  # frame accuracies are no ImageNet-P number
    assert sorted(results["data"]["sequence_configs"]) == CONFIGS[1:]
    assert results["summary"]["intervals"]["images"] == 3  # clean's interval resamples its 3 images, not frames
    table = scored.markdown()
    assert "| imagenet_p_translate | 3 | 123 | previous frame |" in table
    assert "mean flip probability" in table and "over the 3 of 10 benchmark perturbations present" in table


def test_the_suite_protocol_code_gives_the_same_numbers(scored):
    """One implementation: the suite's scorer over the same per-frame rows agrees with evaluate's."""
    from shift_hub.evaluation.suite import score_perturbations

    expected, rows = {}, []
    for config in CONFIGS[1:]:
        part = "imagenet-p/" + config[len("imagenet_p_"):]
        seqs = _by_sequence(scored.rows, config)
        expected[part] = [(s, len(f)) for s, f in seqs.items()]
        rows += [{**r, "config": part} for r in scored.rows if r["config"] == config]
    suite = score_perturbations(rows, expected)
    ours = scored.results["summary"]["imagenet_p"]
    for config in CONFIGS[1:]:
        name = config[len("imagenet_p_"):]
        assert suite["per_perturbation"][name]["flip_probability"] == ours["per_config"][config]["flip_probability"]
        assert suite["per_perturbation"][name]["top5_distance"] == ours["per_config"][config]["top5_distance"]
    assert suite["mean_flip_probability"] == ours["mean_flip_probability"]


def test_a_datasets_load_of_the_folder_scores_the_same(folder, scored):
    ds = datasets.load_dataset(str(folder), "imagenet_p_brightness", split="validation")
    again = api.evaluate(_stub(), ds, ["imagenet_p_brightness"], num_workers=0, bootstrap=0)
    entry = again.results["summary"]["imagenet_p"]["per_config"]["imagenet_p_brightness"]
    assert entry["flip_probability"] == scored.results["summary"]["imagenet_p"]["per_config"][
        "imagenet_p_brightness"]["flip_probability"]
    assert again.results["metrics"] == {}  # only a sequence config: scored, not refused as "nothing scored"


def test_a_sequence_with_a_wrong_frame_count_is_left_out_whole_and_said(folder):
    ds = datasets.load_dataset(str(folder), "imagenet_p_brightness", split="validation")
    raw = ds.cast_column("frames", datasets.List(datasets.Image(decode=False)))
    damaged = raw.map(lambda row, i: {"frames": row["frames"][:30] if i == 1 else row["frames"]}, with_indices=True)
    out = api.evaluate(_stub(), damaged, ["imagenet_p_brightness"], num_workers=0, bootstrap=0)
    entry = out.results["summary"]["imagenet_p"]["per_config"]["imagenet_p_brightness"]
    bad = ds["image_id"][1]
    assert entry["sequences"] == 2 and entry["incomplete"] == [bad]
    reasons = out.results["unreadable"]["imagenet_p_brightness"]["images"]
    assert len(reasons) == 31 and "holds 30 frames where the config has 31" in reasons[0]["reason"]
    assert "+1 incomplete, left out" in out.markdown()


def test_mfr_and_mt5d_divide_by_the_reference_and_a_bad_reference_fails_in_one_line(folder, tmp_path):
    ref = {"flip_probability": {"brightness": 0.05, "translate": 0.1, "gaussian_noise": 0.2},
           "top5_distance": {"brightness": 1.0, "translate": 2.0, "gaussian_noise": 3.0}}
    path = tmp_path / "alexnet.json"
    path.write_text(json.dumps(ref))
    out = api.evaluate(_stub(), folder, CONFIGS[1:], num_workers=0, bootstrap=100, p_reference=str(path))
    p = out.results["summary"]["imagenet_p"]
    fp = {c[len("imagenet_p_"):]: e["flip_probability"] for c, e in p["per_config"].items()}
    assert p["mfr"] == pytest.approx(np.mean([fp[k] / ref["flip_probability"][k] for k in fp]))
    assert "mfr" in p["ci"] and "mFR" in out.markdown()
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="bad.json") as exc:
        api.evaluate(_stub(), folder, CONFIGS[1:], p_reference=str(tmp_path / "bad.json"))
    assert "\n" not in str(exc.value)


def test_difficulty_2_compares_frames_two_apart(folder):
    out = api.evaluate(_stub(), folder, ["imagenet_p_translate"], num_workers=0, bootstrap=0, p_difficulty=2)
    entry = out.results["summary"]["imagenet_p"]["per_config"]["imagenet_p_translate"]
    preds = [[f[k]["pred"] for k in sorted(f)] for f in _by_sequence(out.rows, "imagenet_p_translate").values()]
    assert entry["flip_probability"] == pytest.approx(protocols.flip_probability(preds, False, 2))
    assert entry["compared_to"] == "frame 2 earlier"
    with pytest.raises(DataError, match="p_difficulty must be 1, 2 or 3"):
        api.evaluate(_stub(), folder, ["imagenet_p_translate"], p_difficulty=4)


def test_eval_yaml_has_the_imagenet_p_tasks_and_no_top1_task_per_sequence_config():
    from shift_hub.evaluation.eval_results import task_value
    from shift_hub.hub import eval_yaml
    from shift_hub.registry import groups

    ids = [t for t, _, _ in eval_yaml.catalogue()]
    assert "imagenet_p_fp" in ids and "imagenet_p_t5d" in ids
    assert not [t for t in ids if t.startswith("imagenet_p_") and t.endswith("_top1")]
    ten = groups()["imagenet_p"]
    tasks = {t.id: t for t in eval_yaml.tasks_for(["clean", *ten])}
    assert tasks["imagenet_p_t5d"].to_dict()["metric"]["unit"] == "rank positions"
    per = {c: {"sequences": 5, "flip_probability": 0.1 + i / 100, "top5_distance": 1.0} for i, c in enumerate(ten)}
    results = {"metrics": {}, "summary": {"imagenet_p": {"difficulty": 1, "per_config": per}}}
    assert task_value(tasks["imagenet_p_fp"], results) == round(100 * np.mean([e["flip_probability"]
                                                                              for e in per.values()]), 2)
    assert task_value(tasks["imagenet_p_t5d"], results) == 1.0
    del per[ten[3]]
    assert task_value(tasks["imagenet_p_fp"], results) is None  # every config of the task, or no value
    results["summary"]["imagenet_p"]["difficulty"] = 2
    assert task_value(tasks["imagenet_p_t5d"], {"summary": {"imagenet_p": {"difficulty": 2, "per_config": {
        c: {"sequences": 5, "top5_distance": 1.0} for c in ten}}}}) is None  # the task is difficulty 1


def test_the_cli_scores_sequences_of_a_folder(folder, tmp_path, capsys):
    from shift_hub.cli import main

    code = main(["evaluate", "efficientnet_lite0", "--data", str(folder), "--configs", "imagenet_p_brightness",
                 "--limit", "1", "--num-workers", "0", "--bootstrap", "50", "--no-plots", "--quiet",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| imagenet_p_brightness | 1 | 31 | previous frame |" in printed
    assert "| config | label space |" not in printed  # no empty per-image table for sequences only
    assert "ImageNet-P ± : half-width of the 95 % interval" in printed
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["summary"]["imagenet_p"]["per_config"]["imagenet_p_brightness"]["frames"] == 31


def test_a_subset_keeps_whole_sequences_of_its_images(folder, tmp_path):
    ids = datasets.load_dataset(str(folder), "imagenet_p_translate", split="validation")["image_id"]
    (tmp_path / "ids.txt").write_text(f"{ids[2]}\n{ids[0]}\n")
    out = api.evaluate(_stub(), folder, ["clean", "imagenet_p_translate"], num_workers=0, bootstrap=0,
                       subset=str(tmp_path / "ids.txt"))
    entry = out.results["summary"]["imagenet_p"]["per_config"]["imagenet_p_translate"]
    assert entry["sequences"] == 2 and entry["frames"] == 82
    assert sorted({r["image_id"].rpartition("#")[0] for r in out.rows if r["config"] != "clean"}) == sorted([ids[0], ids[2]])


def test_the_suites_mp4_reader_and_the_mp4_configs_give_the_same_flip_probability(tmp_path, one_thread):
    """Our sequences encoded as the release (--p-encoding mp4), exported to its layout and scored by
    `--suite robustness` from the videos, give evaluate's numbers on the configs: same frames, one protocol."""
    pytest.importorskip("av")
    from shift_hub.evaluation.suite import run_suite
    from shift_hub.generate import generate
    from shift_hub.video import export_release

    configs = ["imagenet_p_gaussian_noise", "imagenet_p_brightness", "imagenet_p_translate"]
    generate(configs, "samples", tmp_path / "data", limit=2, progress=False, p_encoding="mp4")
    export_release(tmp_path / "data", tmp_path / "root" / "imagenet-p")
    suite = run_suite(_stub(), tmp_path / "root", num_workers=0)["sets"]["imagenet-p"]
    ours = api.evaluate(_stub(), tmp_path / "data", num_workers=0, bootstrap=0).results["summary"]["imagenet_p"]
    for config in configs:
        name = config[len("imagenet_p_"):]
        theirs, mine = suite["per_perturbation"][name], ours["per_config"][config]
        assert (theirs["sequences"], theirs["frames"]) == (mine["sequences"], mine["frames"])
        assert theirs["flip_probability"] == mine["flip_probability"]
        assert theirs["top5_distance"] == mine["top5_distance"]
    assert suite["mean_flip_probability"] == ours["mean_flip_probability"]
    assert any(e["flip_probability"] > 0 for e in ours["per_config"].values())  # the stub does flip: not vacuous


def test_a_generated_folder_under_the_suite_root_scores_its_sequences_as_sequences(folder, tmp_path):
    import shutil

    from shift_hub.evaluation.suite import markdown, run_suite

    root = tmp_path / "root"
    shutil.copytree(folder, root / "generated")
    results = run_suite(_stub(), root, num_workers=0)
    g = next(iter(results["generated"].values()))
    assert list(g["metrics"]) == ["clean"]  # no frame top-1 as if it were a config's accuracy
    assert g["summary"]["imagenet_p"]["per_config"]["imagenet_p_translate"]["frames"] == 123
    assert "generated/imagenet_p_translate | vs previous frame | 123 frames | FP % / T5D |" in markdown(results)


def test_a_label_space_override_does_not_reach_imagenet_p_and_is_said(folder, scored):
    out = api.evaluate(_stub(), folder, ["clean", "imagenet_p_brightness"], num_workers=0, bootstrap=0,
                       label_space="imagenet-r")
    p = out.results["summary"]["imagenet_p"]
    mine, before = p["per_config"]["imagenet_p_brightness"], scored.results["summary"]["imagenet_p"]["per_config"][
        "imagenet_p_brightness"]
    assert mine["label_space"] == "imagenet-1k" and mine["flip_probability"] == before["flip_probability"]
    assert "does not apply to ImageNet-P" in p["label_space_note"] and "does not apply" in out.markdown()
    assert out.results["metrics"]["clean"]["label_space"] == "imagenet-r"  # the override still holds elsewhere


def test_a_dataset_is_scored_as_the_config_its_rows_name(folder):
    ds = datasets.load_dataset(str(folder), "imagenet_p_gaussian_noise", split="validation")
    with pytest.raises(DataError, match="rows are config 'imagenet_p_gaussian_noise', not 'imagenet_p_brightness'"):
        api.evaluate(_stub(), ds, ["imagenet_p_brightness"], num_workers=0, bootstrap=0)
    both = datasets.concatenate_datasets([ds, datasets.load_dataset(str(folder), "imagenet_p_brightness",
                                                                     split="validation")])
    with pytest.raises(DataError, match="holds rows of 2 configs"):
        api.evaluate(_stub(), both, None, num_workers=0, bootstrap=0)
    entry = api.evaluate(_stub(), ds, None, num_workers=0, bootstrap=0).results["summary"]["imagenet_p"]
    assert entry["per_config"]["imagenet_p_gaussian_noise"]["compared_to"] == "first frame"


def test_the_suite_scores_a_generated_folder_at_its_difficulty(folder, tmp_path):
    import shutil

    from shift_hub.evaluation.suite import run_suite

    shutil.copytree(folder, tmp_path / "root" / "generated")
    results = run_suite(_stub(), tmp_path / "root", num_workers=0, p_difficulty=2)
    p = next(iter(results["generated"].values()))["summary"]["imagenet_p"]
    assert p["difficulty"] == 2 and p["per_config"]["imagenet_p_translate"]["compared_to"] == "frame 2 earlier"

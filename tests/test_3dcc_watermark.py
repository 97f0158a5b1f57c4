"""3DCC's image-space corruptions and ImageNet-W: fidelity to the originals, determinism, metrics, tasks.

The originals are restated step by step in bench/reference_3dcc_watermark.py (create_non3d.py and imagenet-w's
AddWatermark: PIL in, PIL out, the global np.random stream). Deterministic parts (posterize, the watermark
composite) must give the same bytes on real photos; the noises must too when handed the original's own draws
(`LegacyDraws`), and with our per-image generator their change per severity must have the original's mean and
spread across seeds. Tests that need ImageNet-W's font skip without the `watermark` extra; the missing-extra
error is tested by hiding the package.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import digests, jpeg_bytes, list_source
from test_generate import ListSource, bad_inputs  # picklable, for the worker pool
from shift_hub import cli, registry
from shift_hub import generate as engine
from shift_hub.evaluation import eval_results, html_report, leaderboard, metrics, report
from shift_hub.hub import eval_yaml
from shift_hub.imaging import apply_geometry
from shift_hub.shifts import corruptions_3dcc as c3
from shift_hub.shifts import watermark as wm

ROOT = Path(__file__).resolve().parents[1]
NOISES = ("iso_noise", "low_light")
CONFIGS_3DCC = [f"{n}_{s}" for n in registry.IMAGENET_3DCC_2D_CORRUPTIONS for s in c3.SEVERITIES]


def _reference():
    spec = importlib.util.spec_from_file_location("reference_3dcc_watermark",
                                                  ROOT / "bench" / "reference_3dcc_watermark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _reference()


def _has_font() -> bool:
    try:
        wm.font_path()
    except FileNotFoundError:
        return False
    return True


needs_font = pytest.mark.skipif(not _has_font(), reason="ImageNet-W's font is not installed "
                                "(pip install 'shift-hub[watermark]')")


class LegacyDraws:
    """The Generator methods our noises call, answered by the legacy np.random stream the original used."""

    def __init__(self, seed: int):
        self.state = np.random.RandomState(seed)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self.state.normal(loc, scale, size)

    def poisson(self, lam=1.0, size=None):
        return self.state.poisson(lam, size)


@pytest.fixture(scope="module")
def crops() -> dict[str, np.ndarray]:
    """Real photos (scikit-image) through resize 256 / centre crop 224, as the configs see them."""
    import skimage.data

    return {name: apply_geometry(np.asarray(getattr(skimage.data, name)())[..., :3], registry.STANDARD)
            for name in ("chelsea", "coffee", "astronaut", "rocket")}


@pytest.fixture
def global_stream():
    """The original draws from the global np.random stream: seed it per call, restore it after the test."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


# --- deterministic parts against the original's formula ----------------------------------------------------

@pytest.mark.parametrize("severity", c3.SEVERITIES)
def test_color_quant_is_pil_posterize_to_6_minus_severity_bits(crops, severity):
    bits = 6 - severity
    for name, crop in crops.items():
        ours = c3.color_quant(crop, None, severity)
        assert np.array_equal(ours, np.asarray(ref.color_quant(Image.fromarray(crop), severity))), name
        mask = ~(2 ** (8 - bits) - 1)  # posterize's table, restated: i & mask for every level i
        assert np.array_equal(ours, np.array([i & mask for i in range(256)], dtype=np.uint8)[crop]), name
        assert len(np.unique(ours)) <= 2 ** bits


def test_the_watermark_composite_is_pillows_alpha_composite_on_real_photos(crops):
    """The restated integer arithmetic against Image.alpha_composite, for any layer colour and alpha (no font)."""
    rng = np.random.default_rng(0)
    for name, crop in crops.items():
        layer = rng.integers(0, 256, (224, 224, 4), dtype=np.uint8)
        layer[..., 3][rng.random((224, 224)) < 0.3] = 0  # transparent pixels keep the image's
        expected = Image.alpha_composite(Image.fromarray(crop).convert("RGBA"), Image.fromarray(layer, "RGBA"))
        box = wm.Layer(0, 224, 0, 224, layer[..., :3].astype(np.uint32), layer[..., 3:].astype(np.uint32))
        assert np.array_equal(wm._composite(crop, box), np.asarray(expected.convert("RGB"))), name


@needs_font
def test_watermark_is_imagenet_ws_pipeline_on_real_photos(crops):
    original = ref.Watermark(str(wm.font_path()), 224)
    for name, crop in crops.items():
        ours = wm.watermark(crop, None)
        assert np.array_equal(ours, np.asarray(original(Image.fromarray(crop)))), name
        changed = np.any(ours != crop, axis=2)
        rows, cols = np.nonzero(changed)
        assert 80 <= rows.min() and rows.max() < 140 and cols.min() < 10, name  # at (0.01 w, 0.4 h)
        assert np.all(ours[changed].astype(int) >= crop[changed]), name  # white text only brightens


@needs_font
def test_watermark_matches_the_imagenet_w_package_itself(crops):
    pytest.importorskip("imagenet_w")
    from imagenet_w import AddWatermark
    from torchvision.transforms.functional import to_tensor

    add = AddWatermark(224)
    for name, crop in crops.items():
        theirs = (add(to_tensor(Image.fromarray(crop))) * 255).round().byte().permute(1, 2, 0).numpy()
        assert np.array_equal(wm.watermark(crop, None), theirs), name


@needs_font
@pytest.mark.parametrize("side", [384, 300])
def test_watermark_font_size_follows_imagenet_ws_table(crops, side):
    assert wm.font_size_for(224) == 36 and wm.font_size_for(518) == 84 and wm.font_size_for(300) == int(300 / 6.22)
    big = np.asarray(Image.fromarray(crops["coffee"]).resize((side, side), Image.BILINEAR))
    original = ref.Watermark(str(wm.font_path()), side)
    assert np.array_equal(wm.watermark(big, None), np.asarray(original(Image.fromarray(big))))


# --- the random parts: the original's own draws, then its law -------------------------------------------

@pytest.mark.parametrize("name", NOISES)
def test_noises_replay_the_original_bit_for_bit_with_its_draws(crops, global_stream, name):
    for photo in ("chelsea", "rocket"):
        crop = crops[photo]
        for severity in c3.SEVERITIES:
            seed = 100 * severity + len(photo)
            np.random.seed(seed)
            expected = np.asarray(getattr(ref, name)(Image.fromarray(crop), severity))
            ours = getattr(c3, name)(crop, LegacyDraws(seed), severity)
            assert ours.dtype == np.uint8 and np.array_equal(ours, expected), (name, photo, severity)


def _change_stats(outputs: list[np.ndarray], crop: np.ndarray) -> tuple[float, float]:
    diffs = [o.astype(np.float64) - crop for o in outputs]
    return float(np.mean([d.mean() for d in diffs])), float(np.mean([d.std() for d in diffs]))


@pytest.mark.parametrize("name", NOISES)
def test_noises_have_the_originals_change_per_severity_across_seeds(crops, global_stream, name):
    crop = crops["coffee"]
    seeds = range(4)
    for severity in c3.SEVERITIES:
        ours = [getattr(c3, name)(crop, np.random.default_rng([seed, severity]), severity) for seed in seeds]
        theirs = []
        for seed in seeds:
            np.random.seed(1000 + seed)
            theirs.append(np.asarray(getattr(ref, name)(Image.fromarray(crop), severity)))
        (mean, spread), (ref_mean, ref_spread) = _change_stats(ours, crop), _change_stats(theirs, crop)
        assert abs(spread - ref_spread) <= 0.01 * ref_spread, (name, severity, spread, ref_spread)
        assert abs(mean - ref_mean) <= 0.01 * ref_spread, (name, severity, mean, ref_mean)
        assert not np.array_equal(ours[0], ours[1])  # the pattern does change with the seed


def test_severities_order_the_corruptions(crops):
    crop = crops["astronaut"]
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    levels = [len(np.unique(c3.color_quant(crop, None, s))) for s in c3.SEVERITIES]
    noise = [np.std(c3.iso_noise(crop, rng(), s).astype(float) - crop) for s in c3.SEVERITIES]
    light = [c3.low_light(crop, rng(), s).mean() for s in c3.SEVERITIES]
    assert levels == sorted(levels, reverse=True) and noise == sorted(noise) and light == sorted(light, reverse=True)


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5, 3), (130, 90, 3)])
def test_any_size_and_a_constant_image(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    flat = np.full(shape, 77, dtype=np.uint8)
    for name in registry.IMAGENET_3DCC_2D_CORRUPTIONS:
        for img in (image, flat):
            out = getattr(c3, name)(img, np.random.default_rng(1), 5)
            assert out.shape == img.shape and out.dtype == np.uint8, name
    # the script divides by zero on a constant image; here it goes black, then gets the fixed noise
    assert c3.low_light(flat, np.random.default_rng(1), 1).mean() < 10


def test_draws_come_only_from_the_given_generator(crops):
    before = np.random.get_state()[1].copy()
    for name in NOISES:
        a = getattr(c3, name)(crops["coffee"], np.random.default_rng(7), 3)
        assert np.array_equal(a, getattr(c3, name)(crops["coffee"], np.random.default_rng(7), 3))
    assert np.array_equal(np.random.get_state()[1], before)


# --- the font: a missing extra is one line naming it ------------------------------------------------------

def _hide_imagenet_w(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(wm.importlib.util, "find_spec",
                        lambda name, *a: None if name == "imagenet_w" else real(name, *a))


def test_a_missing_watermark_extra_is_one_line_naming_it(monkeypatch, tmp_path, capsys):
    _hide_imagenet_w(monkeypatch)
    with pytest.raises(FileNotFoundError) as info:
        wm.check_font({"font": None})
    message = str(info.value)
    assert "\n" not in message and "pip install 'shift-hub[watermark]'" in message and "not installed" in message
    out = tmp_path / "out"
    assert cli.main(["generate", "watermark", "--source", "samples", "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "watermark" in err and "shift-hub[watermark]" in err, err
    assert not list(out.glob("*/*.parquet"))


def test_a_bad_font_path_or_file_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="--set font=PATH"):
        wm.check_font({"font": str(tmp_path / "missing.otf")})
    junk = tmp_path / "junk.otf"
    junk.write_bytes(b"not a font")
    with pytest.raises(OSError, match="cannot be read") as info:
        wm.check_font({"font": str(junk)})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("setting", ["opacity=1.5", "x_pos=-0.1", "font_size=0", "y_pos=nan", "font="])
def test_bad_watermark_values_are_one_line_and_write_nothing(tmp_path, capsys, setting):
    out = tmp_path / "out"
    assert cli.main(["generate", "watermark", "--set", setting, "--out", str(out), "--limit", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and setting.split("=")[0] in err and "must be" in err, err
    assert not out.exists()


# --- the registry, generation, determinism ------------------------------------------------------------------

def test_registry_entries_and_groups():
    group = registry.groups()["imagenet_3dcc_2d"]
    assert group == CONFIGS_3DCC and registry.expand(["imagenet_3dcc_2d"]) == CONFIGS_3DCC
    for name in CONFIGS_3DCC:
        spec = registry.get(name)
        assert spec.geometry == registry.STANDARD and spec.encoding == registry.Encoding(quality=75)
        assert spec.params == {"severity": spec.severity} and "CC BY-NC 4.0" in spec.description
        assert spec.load_fn() is getattr(c3, name.rsplit("_", 1)[0])
    spec = registry.get("watermark")
    assert spec.encoding.format == "PNG" and spec.preflight and "CC BY-NC 4.0" in spec.description
    assert set(CONFIGS_3DCC) <= set(registry.expand(["all-cpu"])) and "watermark" not in registry.expand(["all-cpu"])


def test_generated_configs_load_and_the_card_states_licence_citation_and_deviations(tmp_path):
    import datasets

    configs = ["color_quant_2", "iso_noise_5", "low_light_1"] + (["watermark"] if _has_font() else [])
    engine.generate(configs, "samples", tmp_path, limit=3, progress=False)
    for config in configs:
        rows = datasets.load_dataset(str(tmp_path), config, split="validation")
        assert len(rows) == 3 and rows[0]["image"].size == (224, 224), config
    card = (tmp_path / "README.md").read_text()
    assert "cc-by-nc-4.0" in card and "non-commercial" in card
    assert card.count("@inproceedings{kar20223dcc") == 1
    assert card.count("archives were not at hand to check their file format") == 1  # one text for the 15 configs
    if _has_font():
        assert card.count("@inproceedings{li2023whacamole") == 1 and "Drawn on the stored 224 crop" in card


def test_bytes_identical_across_worker_counts_and_order(tmp_path):
    import skimage.data

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket()]
    items = [(f"img{i}", i, jpeg_bytes(np.asarray(p)[..., :3])) for i, p in enumerate(photos)]
    configs = ["color_quant_1", "iso_noise_3", "low_light_4"] + (["watermark"] if _has_font() else [])
    engine.generate(configs, ListSource(items), tmp_path / "a", num_proc=1, shard_size=2, progress=False)
    engine.generate(configs, ListSource(items[::-1]), tmp_path / "b", num_proc=2, shard_size=2, progress=False)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert len(a) == 2 * len(configs) and a == b


@needs_font
def test_watermark_is_independent_of_thread_counts(crops):
    """The 3DCC configs are in test_faults_determinism's CPU set; the watermark (it needs the font) is not."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    spec = registry.get("watermark")
    before = torch.get_num_threads(), cv2.getNumThreads()
    outputs = []
    for n in (1, 4):
        torch.set_num_threads(n)
        cv2.setNumThreads(n)
        with threadpool_limits(n):
            outputs.append([engine.shift_image(spec, crop, 0, name) for name, crop in crops.items()])
    torch.set_num_threads(before[0])
    cv2.setNumThreads(before[1])
    assert outputs[0] == outputs[1]


def test_bad_images_are_converted_or_skipped_for_the_new_configs(tmp_path):
    items = [(name, 1, data) for name, data in bad_inputs().items()]
    configs = ["color_quant_5", "low_light_5"] + (["watermark"] if _has_font() else [])
    reports = engine.generate(configs, list_source(items), tmp_path, progress=False)
    for config in configs:
        skipped = {s["image_id"] for s in reports[config].skipped}
        assert skipped == {"truncated", "corrupt", "tiny", "bomb"}, config


def test_on_the_fly_bytes_equal_generated_bytes(tmp_path):
    import datasets

    from shift_hub.imaging import decode
    from shift_hub.sources import open_source

    configs = ["iso_noise_2", "low_light_3", "color_quant_4"] + (["watermark"] if _has_font() else [])
    engine.generate(configs, "samples", tmp_path, limit=2, seed=3, progress=False)
    source = open_source("samples")
    raw = {ex.image_id: decode(source.read(ex))[0] for ex in engine.plan_examples(source, limit=2)}
    for config in configs:
        rows = datasets.load_dataset(str(tmp_path), config, split="validation")
        for row in rows.cast_column("image", datasets.Image(decode=False)):
            expected = engine.shift_image(registry.get(config), raw[row["image_id"]], 3, row["image_id"])
            assert row["image"]["bytes"] == expected, (config, row["image_id"])


# --- metrics: the IN-W gap and the carton gap -------------------------------------------------------------

def _row(config: str, image_id: str, target: int, pred: int, space: str = "imagenet-1k") -> dict:
    return {"config": config, "image_id": image_id, "severity": 0, "labels": [target], "targets": [target],
            "pred": pred, "pred_name": str(pred), "top5": [pred], "confidence": 0.5, "correct": pred == target,
            "correct5": pred == target, "scorable": True, "label_space": space}


def _rows(configs=("clean", "watermark")) -> list[dict]:
    """Four carton images and four others. Clean: 3 of 4 cartons right, 2 of 4 others right, one predicted
    carton. Watermark: all 4 cartons right, 1 of 4 others right, three others predicted carton."""
    clean = [(478, 478), (478, 478), (478, 478), (478, 1), (5, 5), (6, 6), (7, 478), (8, 9)]
    marked = [(478, 478), (478, 478), (478, 478), (478, 478), (5, 5), (6, 478), (7, 478), (8, 478)]
    table = {"clean": clean, "watermark": marked}
    return [_row(c, f"im{i}", t, p) for c in configs for i, (t, p) in enumerate(table[c])]


def test_gaps_by_hand():
    summary = metrics.summarize(_rows(), ["clean", "watermark"], bootstrap=0)["summary"]
    w = summary["watermark"]
    assert w["images"] == 8 and w["carton_images"] == 4 and "shared_only" not in w
    assert w["in_w_gap"] == pytest.approx(5 / 8 - 5 / 8)
    assert w["carton_gap"] == pytest.approx(4 / 4 - 3 / 4)  # ImageNet-W's carton gap: carton-class accuracy
    assert w["carton_prediction_gap"] == pytest.approx(7 / 8 - 4 / 8)  # share of all images predicted carton


def test_gaps_carry_paired_intervals_that_hold_the_estimate():
    w = metrics.summarize(_rows(), ["clean", "watermark"], bootstrap=200)["summary"]["watermark"]
    for key in ("in_w_gap", "carton_gap", "carton_prediction_gap"):
        ci = w["ci"][key]
        assert ci["ci_low"] <= w[key] <= ci["ci_high"], key
    assert w["ci"]["carton_prediction_gap"]["ci_low"] > 0  # every resample shifts predictions to carton here


def test_gaps_are_absent_without_clean_never_computed_against_something_else():
    rows = _rows(("watermark",)) + [_row("gaussian_noise_3", f"im{i}", 5, 5) for i in range(8)]
    summary = metrics.summarize(rows, ["gaussian_noise_3", "watermark"], bootstrap=50)["summary"]
    assert "watermark" not in summary
    assert metrics.watermark_gaps(_rows(("watermark",)), []) is None
    assert "watermark_gap" not in [t.id for t in eval_yaml.tasks_for(["watermark", "gaussian_noise_3"])]


def test_carton_gap_absent_without_carton_images_and_outside_imagenet_1k():
    rows = [r for r in _rows() if r["targets"] != [478]]
    w = metrics.summarize(rows, ["clean", "watermark"], bootstrap=0)["summary"]["watermark"]
    assert "carton_gap" not in w and w["carton_images"] == 0
    assert w["carton_prediction_gap"] == pytest.approx(3 / 4 - 1 / 4)
    other = [{**r, "label_space": "toonnet"} for r in _rows()]
    w = metrics.summarize(other, ["clean", "watermark"], bootstrap=0)["summary"]["watermark"]
    assert set(w) == {"images", "label_space", "in_w_gap"}


def test_gaps_are_on_the_images_both_configs_hold():
    rows = [r for r in _rows() if not (r["config"] == "clean" and r["image_id"] == "im7")]
    w = metrics.summarize(rows, ["clean", "watermark"], bootstrap=0)["summary"]["watermark"]
    assert w["images"] == 7 and w["shared_only"] and w["in_w_gap"] == pytest.approx(5 / 7 - 5 / 7)


def test_other_corruption_groups_stay_out_of_the_imagenet_c_summary(monkeypatch):
    """`imagenet_c_bar` starts with "imagenet_c" but has no AlexNet reference: it was counted as ImageNet-C."""
    bar = registry.ShiftSpec(name="fake_bar_3", family="corruptions", fn=None, description="x", citation="@x{}",
                             severity=3, group="imagenet_c_bar")
    monkeypatch.setitem(registry.REGISTRY, bar.name, bar)
    configs = ["clean", "iso_noise_3", "color_quant_1", "fake_bar_3"]
    rows = [_row(c, f"im{i}", 5, 5 if i else 6) for c in configs for i in range(4)]
    summary = metrics.summarize(rows, configs, bootstrap=0)["summary"]
    assert "imagenet_c" not in summary and summary["accuracy_by_severity"]["iso_noise"] == {"3": 0.75}
    assert summary["accuracy_by_severity"]["fake_bar"] == {"3": 0.75}


def _results(summary: dict, per: dict) -> dict:
    return report.build_results({"id": "org/model"}, {"source": "x", "kind": "local"}, list(per),
                                {"per_config": per, "summary": summary})


def test_table_and_report_show_the_gaps():
    scored = metrics.summarize(_rows(), ["clean", "watermark"], bootstrap=100)
    results = _results(scored["summary"], scored["per_config"])
    table = report.markdown_table(results)
    assert "IN-W gap +0.00 ±" in table and "carton gap +25.00 ±" in table and "predicted carton +37.50" in table
    tiles = {t["label"]: t for t in html_report._summary(results)}
    assert tiles["IN-W gap"]["value"].startswith("+0.00 ±") and tiles["carton gap"]["value"].startswith("+25.00")
    assert tiles["predicted carton"]["value"].startswith("+37.50")
    results = _results({}, {k: v for k, v in scored["per_config"].items() if k == "watermark"})
    assert "IN-W gap" not in report.markdown_table(results)
    assert "IN-W gap" not in {t["label"] for t in html_report._summary(results)}


# --- eval.yaml tasks, .eval_results and the leaderboard ---------------------------------------------------

def test_eval_yaml_tasks_for_the_new_configs(monkeypatch):
    present = ["clean", "watermark", "color_quant_1", "low_light_5"]
    tasks = {t.id: t for t in eval_yaml.tasks_for(present)}
    assert tasks["imagenet_3dcc_2d_top1"].configs == ("color_quant_1", "low_light_5")
    assert tasks["watermark_top1"].configs == ("watermark",)
    assert tasks["watermark_gap"].configs == ("clean", "watermark") and tasks["watermark_gap"].higher_is_better
    assert not any(t.startswith(("color_quant", "low_light")) for t in tasks)  # the group is scored as a whole
    doc = eval_yaml.parse(eval_yaml.dump(eval_yaml.build(present)))
    assert {"imagenet_3dcc_2d_top1", "watermark_top1", "watermark_gap"} <= {t["id"] for t in doc["tasks"]}
    # ImageNet-C-bar's task follows its registry group (filled by its own entries)
    grouped = {**registry.groups(), "imagenet_c_bar": ["c_bar_fake_1", "c_bar_fake_2"]}
    monkeypatch.setattr(registry, "groups", lambda: grouped)
    bar = {t.id: t for t in eval_yaml.tasks_for(["c_bar_fake_2"])}
    assert bar["imagenet_c_bar_top1"].configs == ("c_bar_fake_2",) and "c_bar_fake_2_top1" not in bar


def test_task_values_and_leaderboard_read_the_paired_gap(tmp_path):
    scored = metrics.summarize(_rows(), ["clean", "watermark"], bootstrap=0)
    results = _results(scored["summary"], scored["per_config"])
    values = eval_results.task_values(results)
    assert values == {"clean_top1": 62.5, "watermark_top1": 62.5, "watermark_gap": 0.0}
    board = leaderboard.build_leaderboard([results, {**results, "model": {"id": "org/other"}}])
    assert "watermark_gap" in [t.id for t in board.tasks] and "watermark_gap" not in [t.id for t in board.shift_tasks]
    bad = {**results, "summary": {"watermark": {"in_w_gap": "big"}}}
    assert "summary.watermark.in_w_gap is" in leaderboard.results_problem(bad)
    assert eval_results.task_values({**results, "summary": {}}) == {"clean_top1": 62.5, "watermark_top1": 62.5}

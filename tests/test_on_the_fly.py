"""Shifts applied at evaluation time give the stored configs' bytes and the same scores."""
import datasets
import pytest

from shift_hub.evaluation.on_the_fly import open_on_the_fly
from shift_hub.evaluation.runner import DataError
from shift_hub.generate import generate

CONFIGS = ["gaussian_noise_3", "glass_blur_1", "motion_blur_2", "drawing", "toon_ius"]


def test_on_the_fly_images_are_the_stored_bytes(tmp_path):
    generate(["clean", *CONFIGS], "samples", tmp_path, limit=3, progress=False)
    _, parts = open_on_the_fly("samples", CONFIGS, limit=3)
    assert [p.name for p in parts] == ["clean", *CONFIGS]
    for part in parts:
        stored = datasets.load_dataset(str(tmp_path), part.name, split="validation")
        stored = stored.cast_column("image", datasets.Image(decode=False))
        assert stored["image_id"] == part.image_ids
        assert [r["image"]["bytes"] for r in stored] == [part.dataset[i]["image"]["bytes"] for i in range(3)]


def test_evaluation_on_the_fly_matches_the_generated_folder(tmp_path):
    import shift_hub

    stored = shift_hub.evaluate("efficientnet_lite0", "samples", ["gaussian_noise_3"], limit=2, out=tmp_path / "a",
                                plots=False, num_workers=0)
    live = shift_hub.evaluate("efficientnet_lite0", "samples", ["gaussian_noise_3"], limit=2, on_the_fly=True,
                              plots=False, num_workers=0)
    assert live.metrics["gaussian_noise_3"]["top1"] == stored.metrics["gaussian_noise_3"]["top1"]
    assert [(r["image_id"], r["pred"], r["top5"]) for r in live.rows] == [
        (r["image_id"], r["pred"], r["top5"]) for r in stored.rows]


def test_gpu_and_mask_configs_are_refused_on_the_fly():
    with pytest.raises(DataError, match="cannot run on the fly"):
        open_on_the_fly("samples", ["cartoon"])

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


# --- one decode per image for all configs (issue 23) ----------------------------------------------------

SIX = ["gaussian_noise_3", "contrast_2", "pixelate_1", "drawing", "toon_ius", "jpeg_compression_4"]


def _tiny_model():
    """A seeded two-layer net over 32x32 inputs whose numbers change with the batch size, as a real model's can
    (kernels are picked by shape): an image forwarded in a batch of another size gets another confidence."""
    import numpy as np
    import torch

    from shift_hub.evaluation.models import Classifier

    class BatchSized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.Flatten(),
                                           torch.nn.Linear(8 * 15 * 15, 1000))

        def forward(self, x):
            return self.net(x) * (1 + len(x) / 64)

    def transform(image):
        arr = np.asarray(image.resize((32, 32)), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    return Classifier(name="tiny", adapter="stub", module=BatchSized().eval(), transform=transform)


@pytest.fixture
def decodes(monkeypatch):
    """Image ids on_the_fly decodes, counted from the moment the fixture is used."""
    from shift_hub.evaluation import on_the_fly

    calls, real = [], on_the_fly.decode

    def counting(data, name="<bytes>"):
        calls.append(name)
        return real(data, name)

    monkeypatch.setattr(on_the_fly, "decode", counting)
    return calls


def test_each_image_is_decoded_once_for_all_its_configs(decodes):
    from shift_hub.evaluation.runner import run

    _, parts = open_on_the_fly("samples", SIX)
    images = len(parts[0].image_ids)
    opened = len(decodes)  # the readability check at open: one per image
    assert images == opened == 8 and len(parts) == 7
    batch_size = 5  # 56 items: a short last batch, which holds the config-by-config run's last items
    rows = run(_tiny_model(), parts, batch_size=batch_size, num_workers=0)
    assert len(rows) == images * len(parts)
    loaded = decodes[opened:]
    assert len(loaded) <= images + batch_size  # not images x configs (56)
    assert len(set(loaded)) == images


def test_on_the_fly_rows_and_results_equal_the_stored_folders_for_any_batch_size(tmp_path, one_thread):
    """Loaded image by image, scored config by config: every field of every row, in the same order."""
    import json

    import shift_hub

    generate(["clean", *SIX[:3]], "samples", tmp_path / "data", limit=5, progress=False)
    model = _tiny_model()
    for batch_size in (3, 7, 32):
        options = dict(limit=5, plots=False, num_workers=0, batch_size=batch_size, bootstrap=20)
        one, two = tmp_path / f"stored{batch_size}", tmp_path / f"live{batch_size}"
        stored = shift_hub.evaluate(model, tmp_path / "data", out=one, **options)
        live = shift_hub.evaluate(model, "samples", SIX[:3], on_the_fly=True, out=two, **options)
        assert live.rows == stored.rows
        assert (two / "predictions.jsonl").read_bytes() == (one / "predictions.jsonl").read_bytes()
        a, b = (json.loads((d / "results.json").read_text()) for d in (one, two))
        assert a["metrics"] == b["metrics"] and a["summary"] == b["summary"]


def test_on_the_fly_configs_are_loaded_image_by_image_in_batches_of_the_folders_sizes():
    from shift_hub.evaluation.runner import _batches, loading_order

    _, parts = open_on_the_fly("samples", SIX[:3], limit=5)
    index = loading_order(parts)
    assert index[:5] == [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1)]  # every config of image 0, then image 1
    by_config = sorted(index)
    batches = _batches(index, 6)  # 20 items: three of 6, then the folder run's last 2
    assert [len(b) for b in batches] == [6, 6, 6, 2]
    assert [index[p] for p in batches[-1]] == by_config[-2:]
    assert sorted(p for b in batches for p in b) == list(range(20))


def _in_place(image, rng, **params):
    image[...] = 255 - image  # writes into the array it was given
    return image


def test_a_shift_that_works_in_place_cannot_reach_the_next_config(monkeypatch):
    from pathlib import Path

    from shift_hub.evaluation.on_the_fly import ShiftedImages
    from shift_hub.registry import REGISTRY, ShiftSpec

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    spec = ShiftSpec(name="test_in_place", family="test", fn="test_on_the_fly:_in_place", description="t",
                     citation="@misc{x}")
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    _, alone = open_on_the_fly("samples", ["clean"], limit=2)
    _, both = open_on_the_fly("samples", ["test_in_place"], limit=2)  # clean is always included
    shifted, clean = both[1].dataset, both[0].dataset
    assert isinstance(shifted, ShiftedImages) and shifted.source_images is clean.source_images
    for r in range(2):  # the in-place shift first, then clean on the same held image
        assert shifted[r]["image"]["bytes"] != clean[r]["image"]["bytes"] == alone[0].dataset[r]["image"]["bytes"]

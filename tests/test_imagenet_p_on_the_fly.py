"""ImageNet-P scored on the fly (issue 27 item 4): each sequence is made in the loader, one item per frame, and
gives the frames, the per-frame rows and the flip-probability summary of the generated folder; each source
image is decoded once and each sequence made once per process."""
import json

import numpy as np
import pytest
from conftest import linear_stub

from shift_hub import cli
from shift_hub.evaluation import api, on_the_fly
from shift_hub.evaluation.on_the_fly import open_on_the_fly
from shift_hub.evaluation.runner import _batches, loading_order, open_data, run

CONFIGS = ["clean", "imagenet_p_brightness", "imagenet_p_gaussian_noise", "imagenet_p_translate"]
SEED = 3
ITEMS = 2 + 2 * 31 + 2 * 31 + 2 * 41  # clean, then the frames of two images' sequences


def _stub():
    """A fixed linear net over 8x8 inputs whose numbers change with the batch size, as a real model's can: an
    item forwarded in a batch of another size than the folder's run gets another confidence."""
    import torch

    class BatchSized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000))

        def forward(self, x):
            return self.net(x) * (1 + len(x) / 64)

    return linear_stub(BatchSized())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from shift_hub.generate import generate

    out = tmp_path_factory.mktemp("p")
    generate(CONFIGS, "samples", out, limit=2, seed=SEED, progress=False, card=False)
    return out


def _frames(part) -> list[bytes]:
    return [part.dataset[i]["image"]["bytes"] for i in range(len(part.dataset))]


def test_on_the_fly_frames_are_the_stored_frames_and_carry_the_same_sequences(folder):
    _, stored = open_data(folder, CONFIGS)
    _, live = open_on_the_fly("samples", CONFIGS[1:], seed=SEED, limit=2)
    assert [p.name for p in live] == CONFIGS
    for a, b in zip(live, stored):
        assert (a.image_ids, a.labels, a.severities, a.sequences) == (b.image_ids, b.labels, b.severities, b.sequences)
        assert a.space.name == b.space.name
        assert _frames(a) == _frames(b), a.name
    assert [n for _, n in live[3].sequences] == [41, 41] and live[1].image_ids[31].endswith("#000")
    _, other = open_on_the_fly("samples", ["imagenet_p_gaussian_noise"], seed=SEED + 1, limit=2)
    assert _frames(other[1])[0] == _frames(live[2])[0]  # frame 0 is the crop, no draw
    assert _frames(other[1])[1] != _frames(live[2])[1]  # the noise frames come from the seed


@pytest.mark.parametrize("workers, batch_size", [(0, 7), (2, 32)])
def test_on_the_fly_scores_and_rows_equal_the_generated_folders(folder, tmp_path, one_thread, workers, batch_size):
    options = dict(num_workers=workers, batch_size=batch_size, bootstrap=20, seed=SEED, plots=False)
    model = _stub()
    stored = api.evaluate(model, folder, CONFIGS, out=tmp_path / "stored", **options)
    live = api.evaluate(model, "samples", CONFIGS[1:], on_the_fly=True, limit=2, out=tmp_path / "live", **options)
    p = live.results["summary"]["imagenet_p"]
    assert sorted(p["per_config"]) == sorted(CONFIGS[1:]) and all(
        e["sequences"] == 2 and e["incomplete"] == [] for e in p["per_config"].values())
    assert p == stored.results["summary"]["imagenet_p"]
    assert live.rows == stored.rows and len(live.rows) == ITEMS
    assert (tmp_path / "live" / "predictions.jsonl").read_bytes() == \
        (tmp_path / "stored" / "predictions.jsonl").read_bytes()
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("stored", "live"))
    assert a["metrics"] == b["metrics"] and a["summary"] == b["summary"]
    assert b["data"]["sequence_configs"] == CONFIGS[1:]


def test_the_loader_walks_each_image_through_every_config_frame_by_frame():
    _, parts = open_on_the_fly("samples", CONFIGS[1:], seed=SEED, limit=2)
    index = loading_order(parts)
    first = [(0, 0), *((1, k) for k in range(31)), *((2, k) for k in range(31)), *((3, k) for k in range(41))]
    assert index[: len(first)] == first  # image 0 in every config, its frames in order, then image 1
    assert index[len(first)] == (0, 1) and index[len(first) + 1] == (1, 31)
    assert sorted(index) == [(c, r) for c, part in enumerate(parts) for r in range(len(part.dataset))]
    batches = _batches(index, 7)  # 208 items: a short last batch of the folder run's last 5
    assert [index[p] for p in batches[-1]] == sorted(index)[-5:]


@pytest.fixture
def counted(monkeypatch):
    """(image ids decoded, (config, image id) shifted) by on_the_fly, from the moment the fixture is used."""
    decodes, shifts = [], []
    real_decode, real_shift = on_the_fly.decode, on_the_fly.apply_shift

    def decode(data, name="<bytes>"):
        decodes.append(name)
        return real_decode(data, name)

    def apply_shift(spec, arr, seed, image_id, **extra):
        shifts.append((spec.name, image_id))
        return real_shift(spec, arr, seed, image_id, **extra)

    monkeypatch.setattr(on_the_fly, "decode", decode)
    monkeypatch.setattr(on_the_fly, "apply_shift", apply_shift)
    return decodes, shifts


def test_each_source_image_is_decoded_once_and_each_sequence_made_once(counted):
    decodes, shifts = counted
    _, parts = open_on_the_fly("samples", CONFIGS[1:], seed=SEED, limit=2)
    opened = len(decodes)  # the readability check at open: one per image
    ids = [i for i, _ in parts[1].sequences]
    assert opened == 2 and not shifts
    rows = run(_stub(), parts, batch_size=16, num_workers=0)
    assert len(rows) == ITEMS
    assert sorted(decodes[opened:]) == sorted(ids)  # not once per config, nor once per frame
    assert sorted(shifts) == sorted((c, i) for c in CONFIGS for i in ids)  # one sequence per (config, image)


def test_the_imagenet_p_group_opens_on_the_fly_with_every_sequence():
    _, parts = open_on_the_fly("samples", ["imagenet_p"], limit=1)
    assert len(parts) == 11 and parts[0].name == "clean" and not parts[0].sequences
    assert {p.name: p.sequences[0][1] for p in parts[1:]}["imagenet_p_translate"] == 41
    assert all(len(p.dataset) == len(p.image_ids) == sum(n for _, n in p.sequences) for p in parts[1:])


def test_the_cli_scores_sequences_on_the_fly_writing_no_data(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["evaluate", "efficientnet_lite0", "--data", "samples", "--on-the-fly", "--configs",
                     "imagenet_p_brightness", "--limit", "1", "--num-workers", "0", "--bootstrap", "50", "--no-plots",
                     "--quiet", "--out", str(out)])
    assert code == 0
    assert "| imagenet_p_brightness | 1 | 31 | previous frame |" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    entry = results["summary"]["imagenet_p"]["per_config"]["imagenet_p_brightness"]
    assert entry["frames"] == 31 and entry["sequences"] == 1
    assert results["data"]["sequence_configs"] == ["imagenet_p_brightness"]
    assert not list(out.rglob("*.parquet")) and not list(tmp_path.glob("*/data"))  # nothing generated

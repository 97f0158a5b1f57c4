"""Decode once, write many (issue 23): every config of a job group is made from one decode per image, each
with its own copy of the array, and resume, kills and completed configs behave as for one config alone."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import digests, jpeg_bytes, photo
from shift_hub import engines, generate as engine, imaging, planning
from shift_hub.jobs import JobGroup
from shift_hub.registry import REGISTRY, ShiftSpec, expand, get
from shift_hub.sources import Example, Source

CONFIGS = ["clean", "gaussian_noise_2", "glass_blur_1", "pixelate_3", "clean_full"]


class ListSource(Source):
    name = "list"

    def __init__(self, n: int = 5):
        self.items = [(f"img{i:02d}", i, jpeg_bytes(photo(i))) for i in range(n)]

    def examples(self):
        for i, (image_id, label, _) in enumerate(self.items):
            yield Example(image_id, (label,), i)

    def read(self, example):
        return self.items[example.locator][2]


@pytest.fixture
def decodes(monkeypatch):
    calls = []
    real = imaging.decode

    def counting(data, name="<bytes>"):
        calls.append(name)
        return real(data, name)

    monkeypatch.setattr(imaging, "decode", counting)
    return calls


def test_one_decode_per_image_for_every_config(tmp_path, decodes):
    reports = engine.generate(CONFIGS, ListSource(5), tmp_path / "out", shard_size=2, progress=False)
    assert len(decodes) == 5  # not 5 x 5
    assert all(r.written == 5 for r in reports.values())
    assert all(set(r.stages) >= {"decode", "shift", "encode", "write"} for r in reports.values())
    engine.generate(["clean"], ListSource(5), tmp_path / "alone", shard_size=2, progress=False)
    assert digests(tmp_path / "alone") == {k: v for k, v in digests(tmp_path / "out").items() if k.startswith("clean/")}


def test_a_completed_config_is_not_made_again_when_others_are_added(tmp_path, decodes):
    engine.generate(CONFIGS[:2], ListSource(4), tmp_path / "out", shard_size=2, progress=False)
    before = digests(tmp_path / "out")
    decodes.clear()
    reports = engine.generate(CONFIGS, ListSource(4), tmp_path / "out", shard_size=2, progress=False)
    assert reports["clean"].written == 0 and reports["gaussian_noise_2"].written == 0
    assert reports["glass_blur_1"].written == 4
    assert len(decodes) == 4
    assert {k: v for k, v in digests(tmp_path / "out").items() if k in before} == before


def _in_place(image, rng, **params):
    image[...] = 255 - image  # writes into the array it was given
    return image


def test_a_shift_that_works_in_place_cannot_reach_the_next_config(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    spec = ShiftSpec(name="test_in_place", family="test", fn="test_decode_once:_in_place", description="t",
                     citation="@misc{x}")
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    engine.generate(["test_in_place", "clean"], ListSource(3), tmp_path / "both", progress=False, card=False)
    engine.generate(["clean"], ListSource(3), tmp_path / "alone", progress=False, card=False)
    assert digests(tmp_path / "both")["clean/validation-00000-of-00001.parquet"] == \
        digests(tmp_path / "alone")["clean/validation-00000-of-00001.parquet"]


def test_a_run_killed_inside_a_group_leaves_whole_shards_and_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    from shift_hub import rows

    engine.generate(CONFIGS, ListSource(6), tmp_path / "ref", shard_size=3, progress=False)
    real = rows.apply_shift
    calls = []

    def dying(spec, *a, **kw):
        calls.append(spec.name)
        if len(calls) == 5 * 3 + 7:  # inside the second group (images 3..5), some configs done for its first image
            raise KeyboardInterrupt
        return real(spec, *a, **kw)

    monkeypatch.setattr(rows, "apply_shift", dying)
    with pytest.raises(KeyboardInterrupt):
        engine.generate(CONFIGS, ListSource(6), tmp_path / "out", shard_size=3, progress=False)
    out = tmp_path / "out"
    assert not list(out.glob("*/.*tmp*"))  # the second group's writers left nothing
    assert sorted(p.name for p in out.glob("clean/*.parquet")) == ["validation-00000-of-00002.parquet"]
    monkeypatch.setattr(rows, "apply_shift", real)
    reports = engine.generate(CONFIGS, ListSource(6), out, shard_size=3, progress=False)
    assert all(r.written == 3 for r in reports.values())  # only the missing shards
    assert digests(out) == digests(tmp_path / "ref")


def _plan(n_images: int, shard_size: int, configs) -> list:
    examples = [Example(f"img{i:05d}", (i % 1000,), i) for i in range(n_images)]
    return [j for name in expand(list(configs))
            for j in planning.plan_jobs(get(name), examples, Path("/nowhere"), 0, get(name).encoding, shard_size, "t")]


def test_groups_share_image_ranges_and_stay_within_the_buffer_budget():
    jobs = _plan(2500, 1000, ["imagenet_c", "imagenet_c_extra", "clean", "drawing", "cartoon"])
    groups = planning.group_jobs(jobs)
    assert sorted(j.path for g in groups for j in g.jobs) == sorted(j.path for j in jobs)
    for g in groups:
        assert len({tuple(e.image_id for e in j.examples) for j in g.jobs}) == 1
        assert any(j.spec.batched for j in g.jobs) is (len(g.jobs) == 1 and g.jobs[0].spec.batched)
        assert sum(planning.row_group_bytes(j) for j in g.jobs) <= planning.GROUP_BUFFER_BYTES or len(g.jobs) == 1
    plain = [g for g in groups if not g.jobs[0].spec.batched]
    assert len(plain) < len([j for j in jobs if not j.spec.batched]) / 20  # 97 CPU configs share few decodes


@pytest.mark.parametrize("workers", [1, 2, 8])
def test_groups_are_cut_for_the_workers_deterministically(workers):
    groups = planning.group_jobs(_plan(100, 1000, ["imagenet_c", "imagenet_c_extra"]))
    parts = engines.spread(groups, workers)
    assert sorted(j.path for g in parts for j in g.jobs) == sorted(j.path for g in groups for j in g.jobs)
    assert len(groups) == 2  # 95 configs' open row groups exceed one group's buffer budget
    assert parts == groups if workers == 1 else 2 < len(parts) <= 2 * workers + 2  # each part decodes each image once
    assert engines.spread(groups, workers) == parts  # the plan decides
    loads = [sum(engines.job_cost(g) for g in p) for p in engines.assign(parts, workers)]
    assert max(loads) <= 1.25 * sum(loads) / workers
    order = expand(["imagenet_c", "imagenet_c_extra"])
    for g in parts:  # plan order inside a part
        assert [j.config for j in g.jobs] == sorted((j.config for j in g.jobs), key=order.index)


def test_two_workers_write_the_bytes_of_one(tmp_path):
    engine.generate(CONFIGS, ListSource(4), tmp_path / "one", shard_size=4, progress=False, card=False)
    engine.generate(CONFIGS, ListSource(4), tmp_path / "two", shard_size=4, num_proc=2, progress=False, card=False)
    assert digests(tmp_path / "one") == digests(tmp_path / "two")


def test_a_group_of_one_is_the_single_config_path():
    job = _plan(3, 10, ["clean"])[0]
    assert planning.group_jobs([job]) == [JobGroup((job,))]
    assert np.isfinite(engines.job_cost(JobGroup((job,))))


def test_a_source_that_cannot_reach_the_workers_fails_in_one_line_instead_of_hanging(tmp_path):
    from conftest import list_source

    source = list_source([(f"img{i}", i, jpeg_bytes(photo(i))) for i in range(2)])  # a local class: no pickle
    with pytest.raises(engine.GenerationError, match="cannot be sent to worker processes.*--num-proc 1"):
        engine.generate(["clean"], source, tmp_path / "out", shard_size=1, num_proc=2, progress=False)
    assert not list((tmp_path / "out").glob("*/*.parquet"))


def test_sequence_configs_are_budgeted_by_their_frames():
    """A row of an ImageNet-P config holds 31-41 frames: two such configs' open row groups exceed a group's
    budget, so each runs alone instead of twenty sharing one group's memory."""
    groups = planning.group_jobs(_plan(10, 1000, ["imagenet_p", "clean"]))
    sequences = [g for g in groups if any(j.spec.frames for j in g.jobs)]
    assert sequences and all(len([j for j in g.jobs if j.spec.frames]) == 1 for g in sequences)

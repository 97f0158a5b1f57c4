"""Shards are the bytes the engine wrote before issue 23 (decode once, write many): pinned sha256 of twelve
configs' shards over assorted inputs (sizes, grey, alpha, a truncated file) and of one shard with several
row groups and skips inside them. A change that moves one byte of any stored config fails here."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow
import pytest

import pinned_shards  # tests/pinned_shards.py

PINS = json.loads((Path(__file__).parent / "fixtures" / "pinned_shards.json").read_text())


@pytest.mark.parametrize("num_proc", [1, 2])
def test_shards_are_the_pinned_bytes(tmp_path, num_proc):
    made = pinned_shards.make(tmp_path / "out", num_proc=num_proc)
    assert sorted(made) == sorted(PINS["shards"])
    assert {k: v["content"] for k, v in made.items()} == {k: v["content"] for k, v in PINS["shards"].items()}
    if pyarrow.__version__ == PINS["pyarrow"]:  # the file also records the writer's version
        assert {k: v["file"] for k, v in made.items()} == {k: v["file"] for k, v in PINS["shards"].items()}


def test_the_long_shard_spans_row_groups_with_skips(tmp_path):
    import pyarrow.parquet as pq

    pinned_shards.make(tmp_path / "out")
    f = pq.ParquetFile(next((tmp_path / "out" / "long" / "clean").glob("*.parquet")))
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == [100, 100, 33]

"""Sources yield lightweight Examples (id, ImageNet-1k labels, locator, boxes); `open_source` parses a spec.

Spec strings: `samples`, `devkit:ROOT`, `folders:ROOT`, `hf:ID_OR_PATH`, or a bare path whose layout
is recognised.
"""
from __future__ import annotations

from pathlib import Path

from .base import Example, Source, SourceError
from .devkit import Devkit
from .folders import Folders
from .hf import HFDataset
from .samples import Samples

__all__ = ["Example", "Source", "SourceError", "open_source", "Devkit", "Folders", "HFDataset", "Samples"]


def open_source(spec: str, **options) -> Source:
    kind, sep, rest = spec.partition(":")
    if spec == "samples":
        return Samples()
    if sep and kind == "devkit":
        return Devkit(rest, devkit=options.get("devkit"), exclude_blacklist=options.get("exclude_blacklist", False),
                      boxes=options.get("boxes"))
    if sep and kind == "folders":
        return Folders(rest)
    if sep and kind == "hf":
        return _hf(rest, options)
    path = Path(spec)
    if path.is_dir():
        if (path / "val").is_dir() and ((path / "data").is_dir() or options.get("devkit")):
            return open_source(f"devkit:{spec}", **options)
        if any(d.is_dir() and d.name.startswith("n") and d.name[1:].isdigit() for d in path.iterdir()):
            return Folders(path)
        return _hf(spec, options)
    if path.suffix == ".parquet":
        return _hf(spec, options)
    if path.exists() or spec.startswith((".", "/")):
        raise SourceError(f"{spec}: not a recognised source layout; use devkit:ROOT, folders:ROOT or hf:PATH")
    if "/" not in spec:
        raise SourceError(f"{spec}: no such folder or file, and not a source name (samples, devkit:ROOT, "
                          "folders:ROOT, hf:ID_OR_PATH); for a Hub dataset without an organisation use hf:NAME")
    return _hf(spec, options)  # a Hub dataset id: org/name


def _hf(path: str, options: dict) -> HFDataset:
    keys = ("split", "config", "image_column", "label_column", "id_column")
    return HFDataset(path, **{k: options[k] for k in keys if options.get(k) is not None})

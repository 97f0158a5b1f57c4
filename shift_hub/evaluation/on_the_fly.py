"""Shifts applied at evaluation time: a source's images through any CPU config, nothing written to disk.

Each item is made by `generate.shift_image`, the function the engine writes with, so a model sees
byte-for-byte the images the stored config would hold (tested).
"""
from __future__ import annotations

from ..generate import GenerationError, _preflight, plan_examples, shift_image
from ..imaging import BadImage, decode
from ..registry import MASKS, expand, get
from ..sources import Example, Source, SourceError, open_source
from .runner import ConfigData, DataError, _registry_space


class ShiftedImages:
    """A picklable, list-like view: item r is {"image": {"bytes": ...}} for example r, shifted on access."""

    def __init__(self, spec, source: Source, examples: list[tuple[Example, str]], seed: int):
        self.spec, self.source, self.examples, self.seed = spec, source, examples, seed

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, r: int) -> dict:
        example, _ = self.examples[r]
        image, _ = decode(self.source.read(example), example.image_id)
        return {"image": {"bytes": shift_image(self.spec, image, self.seed, example.image_id), "path": None}}


def open_on_the_fly(source: Source | str, configs, *, seed: int = 0, limit: int | None = None,
                    label_space=None) -> tuple[dict, list[ConfigData]]:
    """(description, one ConfigData per config) shifting `source` on the fly; `clean` always included."""
    if isinstance(source, str):
        source = open_source(source)
    names = expand(["clean", *(configs or ["all-cpu"])])
    specs = [get(n) for n in names]
    unsupported = [s.name for s in specs if s.batched or MASKS in s.needs]
    if unsupported:
        raise DataError(f"{', '.join(unsupported)} cannot run on the fly (GPU models or object masks): "
                        "generate them with `shift-hub generate` and evaluate the folder")
    try:
        _preflight(specs)  # pattern files and the like, checked before any image is read
    except GenerationError as exc:
        raise DataError(str(exc)) from None
    usable = []
    for example in plan_examples(source, limit):  # bad images are left out once, for every config
        try:
            decode(source.read(example), example.image_id)
        except (BadImage, SourceError):
            continue
        usable.append((example, example.image_id))
    if not usable:
        raise DataError(f"{source.describe()}: no readable images")
    labels = [list(e.labels) for e, _ in usable]
    ids = [i for _, i in usable]
    parts = [ConfigData(s.name, ShiftedImages(s, source, usable, seed), label_space or _registry_space(s.name, labels),
                        labels, ids, [s.severity or 0] * len(usable)) for s in specs]
    return {"source": source.describe(), "kind": "on-the-fly", "seed": seed}, parts

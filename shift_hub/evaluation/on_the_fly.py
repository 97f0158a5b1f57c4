"""Shifts applied at evaluation time: a source's images through any CPU config, nothing written to disk.

Each item is made as the engine writes it (geometry, `rows.apply_shift`, encoding), so a model sees
byte-for-byte the images the stored config would hold (tested). The loader walks these configs image by
image, and each process decodes a source image once and brings it to each distinct geometry once for all
its configs, as `generate` does; every config shifts its own copy of that array. An ImageNet-P config
(ShiftSpec.frames) is one item per frame: its sequence is made once per image and process, and its frames are
encoded as the stored `frames` column encodes them (`rows.encode_output`), so they are those bytes.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import imaging
from ..imaging import BadImage, decode
from ..jobs import GenerationError
from ..planning import plan_examples, preflight
from ..registry import MASKS, Geometry, expand, get
from ..rows import apply_shift, encode_output, split_columns, through_geometry
from ..sources import Example, Source, SourceError, open_source
from .frame_rows import FRAMES_COLUMN, FrameImages, registry_frame_count, sequence_space, spread
from .runner import ConfigData, DataError, _registry_space

KEEP_IMAGES = 2  # source images a process holds (their geometry outputs): consecutive items share one image


class SourceImages:
    """The usable source images, each decoded on demand and brought to every geometry the configs use, shared
    by the configs of one on-the-fly run. At most KEEP_IMAGES images are held, as geometry outputs (the
    decoded array is dropped), so memory stays bounded; a pickled copy (a DataLoader worker's) starts empty."""

    def __init__(self, source: Source, examples: list[tuple[Example, str]], geometries: list[Geometry]):
        self.source, self.examples = source, examples
        self.geometries = list(dict.fromkeys(geometries))
        self._held: OrderedDict = OrderedDict()  # row -> {geometry: array through it, or the BadImage it raised}

    def __len__(self) -> int:
        return len(self.examples)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_held": OrderedDict()}

    def shaped(self, r: int, geometry: Geometry) -> np.ndarray:
        """Image r through `geometry`; shared by every config with that geometry, so never change it in place."""
        out = self._image(r)[geometry]
        if isinstance(out, BadImage):
            raise out
        return out

    def _image(self, r: int) -> dict:
        if r in self._held:
            self._held.move_to_end(r)
            return self._held[r]
        example, _ = self.examples[r]
        arr, _ = decode(self.source.read(example), example.image_id)
        self._held[r] = {g: through_geometry(arr, g) for g in self.geometries}
        del arr
        while len(self._held) > KEEP_IMAGES:
            self._held.popitem(last=False)
        return self._held[r]


class ShiftedImages:
    """A picklable, list-like view: item r is {"image": {"bytes": ...}} for example r, shifted on access.

    `source_images` is what the evaluation loader looks for: configs sharing it are walked image-major."""

    def __init__(self, spec, source_images: SourceImages, seed: int):
        self.spec, self.source_images, self.seed = spec, source_images, seed

    def __len__(self) -> int:
        return len(self.source_images)

    def __getitem__(self, r: int) -> dict:
        example, _ = self.source_images.examples[r]
        shaped = self.source_images.shaped(r, self.spec.geometry).copy()  # a shift may work in place
        out = apply_shift(self.spec, shaped, self.seed, example.image_id)
        data = imaging.encode(np.ascontiguousarray(out), self.spec.encoding)
        return {"image": {"bytes": data, "path": None}}

    def source_row(self, r: int) -> int:
        """The source image item r is made from (the loader walks items in source-image order)."""
        return r


class ShiftedSequences(FrameImages):
    """A sequence config's frames, made on access: item i is {"image": frame k of example r's sequence}, the
    frames stored rows are spread into (`frame_rows`), so the evaluation scores both alike. Items are walked
    frame by frame, and the sequence last made is kept (FrameImages holds the row last read): one shift per
    image and process. `source_row` and `source_images` are what the loader orders items by."""

    def __init__(self, spec, source_images: SourceImages, seed: int, length: int):
        super().__init__(_Sequences(spec, source_images, seed), [length] * len(source_images),
                         f"on-the-fly config {spec.name!r}")
        self.source_images = source_images

    def source_row(self, i: int) -> int:
        return self.index[i][0]


class _Sequences:
    """Row r is {"frames": the stored cells of example r's sequence}: geometry, shift and the encoding of
    `generate`'s rows (PNG frames; an mp4 folder's decoded frames are not reproduced on the fly)."""

    def __init__(self, spec, source_images: SourceImages, seed: int):
        self.spec, self.source_images, self.seed = spec, source_images, seed

    def __getitem__(self, r: int) -> dict:
        example, _ = self.source_images.examples[r]
        shaped = self.source_images.shaped(r, self.spec.geometry).copy()  # a shift may work in place
        out, columns = split_columns(self.spec, apply_shift(self.spec, shaped, self.seed, example.image_id))
        _, columns = encode_output(self.spec, example, out, self.spec.encoding, columns)
        return {FRAMES_COLUMN: columns[FRAMES_COLUMN]}


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
    uncounted = [s.name for s in specs if s.frames and registry_frame_count(s.name) is None]
    if uncounted:  # its items are frames: their number must be known before any sequence is made
        raise DataError(f"{', '.join(uncounted)} cannot run on the fly (a sequence config whose frame count the "
                        "registry does not give): generate it with `shift-hub generate` and evaluate the folder")
    try:
        preflight(specs)  # pattern files and the like, checked before any image is read
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
    images = SourceImages(source, usable, [s.geometry for s in specs])  # one decode per image for every config
    parts = [_part(s, images, seed, label_space or _registry_space(s.name, labels), labels, ids) for s in specs]
    return {"source": source.describe(), "kind": "on-the-fly", "seed": seed}, parts


def _part(spec, images: SourceImages, seed: int, space, labels: list, ids: list) -> ConfigData:
    """One config's ConfigData; a sequence config's, as runner builds a stored one: one item per frame, with
    frame ids, frame labels and its `sequences`, so `evaluate` scores it by flip probability the same way."""
    if not spec.frames:
        return ConfigData(spec.name, ShiftedImages(spec, images, seed), space, labels, ids,
                          [spec.severity or 0] * len(ids))
    length = registry_frame_count(spec.name)
    frame_ids, frame_labels, sequences = spread(ids, labels, [length] * len(ids))
    return ConfigData(spec.name, ShiftedSequences(spec, images, seed, length), sequence_space(), frame_labels,
                      frame_ids, [0] * len(frame_ids), sequences=tuple(sequences))

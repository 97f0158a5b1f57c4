"""Any Hugging Face dataset with an image and a label column: a Hub id, a local folder or parquet files.

Labels are mapped to ImageNet-1k indices through the label feature's names (WNIDs or the
standard lemma strings); a label set that cannot be mapped is refused rather than guessed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .. import classes
from .base import Example, Source, SourceError, read_file


def _label_mapper(feature, column: str, where: str):
    names = getattr(feature, "names", None)
    if names is None:
        return lambda v: int(v)  # plain integers: taken as ImageNet-1k indices (checked below)
    wnid_index = classes.wnid_to_index()
    lemma_index = {lemma: classes.index_of(w) for w, lemma in classes.lemmas().items() if w in wnid_index}
    short_index = {n.lower(): i for i, n in enumerate(classes.names())}
    table = []
    for name in names:
        idx = wnid_index.get(name, lemma_index.get(name, short_index.get(str(name).lower())))
        if idx is None:
            raise SourceError(f"{where}: label {name!r} of column {column!r} is not an ImageNet-1k class "
                              "(WNID or class name); pass --label-column with ImageNet labels")
        table.append(idx)
    return lambda v: table[int(v)]


class HFDataset(Source):
    name = "hf"

    def __init__(self, path: str, split: str = "validation", config: str | None = None,
                 image_column: str = "image", label_column: str = "label", id_column: str | None = None):
        self.path, self.split, self.config = path, split, config
        self.image_column, self.label_column, self.id_column = image_column, label_column, id_column
        self._ds = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_ds"] = None
        return state

    def dataset(self):
        if self._ds is None:
            import datasets

            p = Path(self.path)
            try:
                if p.is_file() or (p.is_dir() and not (p / "README.md").exists() and list(p.glob("*.parquet"))):
                    files = [str(p)] if p.is_file() else sorted(str(f) for f in p.glob("*.parquet"))
                    ds = datasets.load_dataset("parquet", data_files={self.split: files}, split=self.split)
                else:
                    ds = datasets.load_dataset(self.path, self.config, split=self.split)
            except (OSError, ValueError) as exc:  # ConnectionError (an OSError) when a Hub id is unreachable
                hint = "" if "/" in self.path else "; no local folder or file has that name either"
                raise SourceError(f"{self.path}: cannot load as a Hugging Face dataset ({exc}){hint}") from None
            for col in (self.image_column, self.label_column):
                if col not in ds.column_names:
                    raise SourceError(f"{self.path}: no column {col!r} (columns: {ds.column_names}); "
                                      "name the right one with --image-column / --label-column")
            self._ds = ds.cast_column(self.image_column, datasets.Image(decode=False))
        return self._ds

    def examples(self) -> Iterator[Example]:
        ds = self.dataset()
        label_feature = ds.features[self.label_column]
        inner = getattr(label_feature, "feature", label_feature)  # Sequence / List of ClassLabel
        to_index = _label_mapper(inner, self.label_column, self.path)
        columns = [self.label_column] + ([self.id_column] if self.id_column else [])
        meta = ds.select_columns(columns)
        has_all = "labels" in ds.column_names and self.label_column == "label"
        all_labels = ds["labels"] if has_all else None
        for row, rec in enumerate(meta):
            value = rec[self.label_column]
            values = value if isinstance(value, (list, tuple)) else ([] if value is None or value == -1 else [value])
            labels = tuple(to_index(v) for v in values)
            if all_labels is not None and all_labels[row]:
                labels = labels + tuple(i for i in all_labels[row] if i not in labels)
            if any(not 0 <= i < 1000 for i in labels):
                raise SourceError(f"{self.path}: row {row} has label {labels} outside ImageNet-1k's 0..999")
            image_id = str(rec[self.id_column]) if self.id_column else f"{self.split}-{row:08d}"
            yield Example(image_id, labels, row)

    def read(self, example: Example) -> bytes:
        cell = self.dataset()[int(example.locator)][self.image_column]
        if cell.get("bytes"):
            return cell["bytes"]
        if cell.get("path"):
            return read_file(cell["path"])
        raise SourceError("empty image cell (neither bytes nor a path)")  # stored next to the image id

    def describe(self) -> str:
        name = Path(self.path).name if Path(self.path).exists() else self.path  # a Hub id, or a local folder's name
        return f"Hugging Face dataset {name}" + (f" ({self.config})" if self.config else "") + f", split {self.split}"

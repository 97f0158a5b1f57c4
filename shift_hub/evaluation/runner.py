"""Batched evaluation of one model over the configs of a generated folder or a Hub dataset repo.

Decoding and the model's own preprocessing run in torch DataLoader workers over ALL configs at
once (one loader, so there is no pipeline restart between configs) while the main process runs
the forward pass. One result row is kept per image, so every metric is recomputable later.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .frame_rows import (FRAMES_COLUMN, FrameImages, is_sequence_config, registry_frame_count, sequence_space,
                         spread)
from .labels import LabelSpace, get_label_space, is_identity, label_space_for, to_imagenet_logits

SPLIT = "validation"


class DataError(ValueError):
    """The data cannot be scored: no labels, no rows, unknown config, unreadable source."""


class UnreadableConfig(DataError):
    """A config whose shards cannot be read (truncated, zero bytes, not parquet): left out and reported."""

    def __init__(self, config: str, entries: list[dict]):
        self.config, self.entries = config, entries  # [{"file": ..., "reason": ...}]
        where = "; ".join(f"{e['file']}: {e['reason']}" if e.get("file") else e["reason"] for e in entries)
        super().__init__(f"config {config!r} cannot be read ({where})")


@dataclass
class ConfigData:
    name: str
    dataset: object  # datasets.Dataset with the image column not decoded
    space: LabelSpace
    labels: list  # per row: list of valid ImageNet-1k indices
    image_ids: list
    severities: list
    extra_spaces: tuple = ()  # baselines (clean) are also scored in the other configs' label spaces
    fingerprints: tuple = ()  # local folders: "config/shard:fingerprint" of exactly the files scored
    incomplete: tuple = ()  # local folders: the planned shards missing (scored on those present, and said)
    sequences: tuple = ()  # ImageNet-P: (sequence id, frames) per stored row; the items are its frames


# ----------------------------------------------------------------------------------------------
# opening data
# ----------------------------------------------------------------------------------------------

def _local_configs(root: Path) -> list[str]:
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.parquet")))
    return _registry_order(found)


def _registry_order(names: list[str]) -> list[str]:
    """clean first, then registry order, then the rest alphabetically: tables read the same every run."""
    from ..registry import REGISTRY

    order = {name: i for i, name in enumerate(REGISTRY)}
    return sorted(names, key=lambda n: (n != "clean", order.get(n, len(order)), n))


def _load_local(root: Path, config: str, split: str) -> "LocalConfig":
    """The config's rows read from its shard files themselves, never from a `datasets` cache: that cache
    is keyed by the folder's name, so a folder regenerated in place, or another folder of the same name,
    would be scored with old rows. Each file is pinned (inode, size, mtime) when opened; a shard replaced
    while it is being scored stops the run instead of mixing rows."""
    folder_ = root / config
    files = sorted(folder_.glob(f"{split}-*.parquet")) or sorted(folder_.glob("*.parquet"))
    if not files:
        raise DataError(f"{root}: no parquet shards for config {config!r} (have: {', '.join(_local_configs(root)) or 'none'})")
    bad = _bad_shards(root, files, full=False)  # zero-byte or truncated: caught before reading rows
    if bad:
        raise UnreadableConfig(config, bad)
    incomplete = _check_shard_set(root, config, files)
    try:
        return LocalConfig(root, config, files, incomplete)
    except Exception as exc:
        if not _is_read_error(exc):
            raise
        raise UnreadableConfig(config, _bad_shards(root, files, full=True)
                               or [{"file": None, "reason": _reason(exc)}]) from None


def _check_shard_set(root: Path, config: str, files: list[Path]) -> list[str]:
    """Problems of a shift_hub config's shard set: missing shards are returned (the config is scored on
    what is there and marked incomplete); shards of mixed runs or settings are refused (unreadable)."""
    from .. import folder

    if not all(folder.readable_fingerprint(f) for f in files):
        return []  # parquet written by another program: no planned shard set to check against
    check = folder.check_config(root, config)
    if not check.problems:
        return []
    missing = folder.only_missing(check)
    if missing is None:
        raise UnreadableConfig(config, [{"file": None, "reason": " ".join(check.problems[0].split())}])
    return [missing]


_SMALL_COLUMNS = ("label", "labels", "image_id", "severity")  # read at open; images only on demand


class LocalConfig:
    """One config of a local folder: its small columns read at once, its images read on demand."""

    def __init__(self, root: Path, config: str, files: list[Path], incomplete: list[str]):
        import pyarrow.parquet as pq

        self.name, self.files, self.incomplete = config, [str(f) for f in files], incomplete
        self.pins = [_pin(f) for f in files]
        tables = []
        for path in files:
            names = pq.ParquetFile(path).schema_arrow.names
            if "image" not in names:
                raise DataError(f"config {config!r} has no `image` column (columns: {', '.join(names)})")
            tables.append(pq.read_table(path, columns=[c for c in _SMALL_COLUMNS if c in names]))
        self.columns = {}
        for name in tables[0].column_names if tables else []:
            self.columns[name] = [v for t in tables for v in t.column(name).to_pylist()]
        if [_pin(f) for f in files] != self.pins:
            raise DataError(f"{root / config}: shards were replaced while being opened (another generate run?): "
                            "rerun evaluate when the folder is complete")
        self.column_names = list(self.columns) + ["image"]
        self.images = ShardImages(self.files, self.pins, [t.num_rows for t in tables])
        has_frames = all(FRAMES_COLUMN in pq.ParquetFile(f).schema_arrow.names for f in files)
        self.frames = ShardImages(self.files, self.pins, [t.num_rows for t in tables], FRAMES_COLUMN) \
            if has_frames else None
        self.fingerprints = [f"{config}/{Path(f).name}:{_fingerprint_of(f)}" for f in files]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, column: str) -> list:
        return self.columns[column]


def _pin(path) -> tuple:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _fingerprint_of(path) -> str:
    """The shard's shift_hub fingerprint, or for foreign parquet a hash of its size and footer."""
    import hashlib

    from .. import folder

    found = folder.readable_fingerprint(path)
    if found:
        return found
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    return "sha256:" + hashlib.sha256(f"{os.path.getsize(path)}:{meta.num_rows}:{meta.serialized_size}:"
                                      f"{meta.schema}".encode()).hexdigest()


class ShardImages:
    """The `image` (or another column's) cells of a config's shards by row number, one row group in memory
    per process."""

    def __init__(self, files: list[str], pins: list[tuple], rows: list[int], column: str = "image"):
        self.files, self.pins, self.column = files, pins, column
        self.starts = np.cumsum([0, *rows]).tolist()
        self.count = self.starts[-1]
        self._group = (None, None, None, None)  # (file index, first row, last row, cells)

    def __len__(self) -> int:
        return self.count

    def head(self, n: int) -> "ShardImages":
        """The first n rows only (`--limit`)."""
        import copy

        out = copy.copy(self)
        out.count = min(n, self.count)
        return out

    def __getitem__(self, r: int) -> dict:
        import bisect

        import pyarrow.parquet as pq

        f = bisect.bisect_right(self.starts, r) - 1
        local = r - self.starts[f]
        index, first, last, cells = self._group
        if index != f or not first <= local < last:
            path = self.files[f]
            if _pin(path) != self.pins[f]:
                raise DataError(f"{path} was replaced while it was being scored (another generate run?): "
                                "rerun evaluate when the folder is complete")
            meta = pq.ParquetFile(path)
            group, first = 0, 0
            while first + meta.metadata.row_group(group).num_rows <= local:
                first += meta.metadata.row_group(group).num_rows
                group += 1
            cells = meta.read_row_group(group, columns=[self.column]).column(self.column).to_pylist()
            last = first + len(cells)
            self._group = (f, first, last, cells)
        return {self.column: cells[local - first]}


def _bad_shards(root: Path, files: list[Path], full: bool) -> list[dict]:
    """{file, reason} for each shard pyarrow cannot open (its footer) or, with `full`, cannot read through."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = []
    for path in files:
        try:
            pq.read_table(path) if full else pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            bad.append({"file": str(path.relative_to(root)), "reason": _reason(exc)})
    return bad


def _is_read_error(exc: BaseException) -> bool:
    """Errors that mean a file could not be read, as opposed to a wrong request (unknown config, no split)."""
    import pyarrow as pa
    from datasets.exceptions import DatasetGenerationError

    return isinstance(exc, (DatasetGenerationError, pa.ArrowException, OSError))


def _reason(exc: BaseException) -> str:
    """`Type: first line`, of the underlying error when `datasets` wrapped it."""
    from datasets.exceptions import DatasetGenerationError

    if isinstance(exc, DatasetGenerationError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\s*<_io\.\w+ object at 0x[0-9a-f]+>", "", str(exc)).strip()  # no memory addresses
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


def _load_hub(repo: str, config: str, split: str, revision: str | None):
    import datasets

    try:
        return datasets.load_dataset(repo, config, split=split, revision=revision)
    except ValueError as exc:
        if "split" not in str(exc).lower():
            raise
        whole = datasets.load_dataset(repo, config, revision=revision)
        if len(whole) != 1:
            raise DataError(f"{repo}/{config} has splits {list(whole)}; pick one with split=") from None
        return next(iter(whole.values()))


def _hub_configs(repo: str, revision: str | None) -> list[str]:
    import datasets

    return _registry_order(list(datasets.get_dataset_config_names(repo, revision=revision)))


def _row_labels(dataset) -> list[list[int]]:
    """All valid ImageNet labels per row: `labels` if present (multi-label sets), else [label]."""
    columns = dataset.column_names
    if "labels" in columns:
        multi = dataset["labels"]
        if "label" in columns:
            single = dataset["label"]
            return [list(m) if m else ([s] if s is not None and s >= 0 else []) for m, s in zip(multi, single)]
        return [list(m or []) for m in multi]
    if "label" in columns:
        return [[s] if s is not None and s >= 0 else [] for s in dataset["label"]]
    raise DataError(f"dataset has no `label` or `labels` column (columns: {', '.join(columns)}); "
                    "a dataset without labels cannot be scored")


def _prepare(name: str, dataset, space: LabelSpace | None, limit: int | None) -> ConfigData:
    if isinstance(dataset, LocalConfig):
        return _prepare_local(dataset, space, limit)
    import datasets

    if "image" not in dataset.column_names:
        raise DataError(f"config {name!r} has no `image` column (columns: {', '.join(dataset.column_names)})")
    labels = _row_labels(dataset)
    if len(dataset) == 0:
        raise DataError(f"config {name!r} is empty: nothing to evaluate")
    if limit:
        dataset = dataset.select(range(min(limit, len(dataset))))
        labels = labels[: len(dataset)]
    if isinstance(dataset.features["image"], datasets.Image):
        dataset = dataset.cast_column("image", datasets.Image(decode=False))
    ids = dataset["image_id"] if "image_id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    sev = dataset["severity"] if "severity" in dataset.column_names else [0] * len(dataset)
    if is_sequence_config(name, dataset.column_names):
        if FRAMES_COLUMN not in dataset.column_names:
            raise DataError(f"config {name!r} is an ImageNet-P sequence config without its `frames` column "
                            f"(columns: {', '.join(dataset.column_names)}); regenerate it with shift-hub generate")
        frames = dataset.cast_column(FRAMES_COLUMN, datasets.List(datasets.Image(decode=False)))
        part = ConfigData(name, None, space or _registry_space(name, labels), labels, list(ids), [0] * len(ids))
        return _as_frames(part, frames.select_columns([FRAMES_COLUMN]), f"config {name!r}")
    dataset = dataset.select_columns(["image"])
    return ConfigData(name, dataset, space or _registry_space(name, labels), labels, list(ids),
                      [int(s or 0) for s in sev])


def _as_frames(part: ConfigData, rows, where: str) -> ConfigData:
    """A sequence config's part with one item per frame (`frame_rows`); `rows[s]` holds row s's frames."""
    import dataclasses

    n = registry_frame_count(part.name)
    lengths = [n] * len(part.image_ids) if n else [len(rows[s][FRAMES_COLUMN] or []) for s in range(len(part.image_ids))]
    ids, labels, sequences = spread(part.image_ids, part.labels, lengths)
    return dataclasses.replace(part, dataset=FrameImages(rows, lengths, where), labels=labels, image_ids=ids,
                               severities=[0] * len(ids), sequences=tuple(sequences), space=sequence_space())


def _prepare_local(config: "LocalConfig", space: LabelSpace | None, limit: int | None) -> ConfigData:
    labels = _row_labels(config)
    if len(config) == 0:
        from .. import folder

        if all(folder.readable_fingerprint(f) for f in config.files):  # shift_hub's shards: left out and said
            raise UnreadableConfig(config.name, [{"file": None, "reason": "empty: every planned image was skipped "
                                                  "when it was generated (its card section says why)"}])
        raise DataError(f"config {config.name!r} is empty: nothing to evaluate")
    images = config.images.head(limit) if limit else config.images
    n = len(images)
    ids = config["image_id"][:n] if "image_id" in config.columns else [str(i) for i in range(n)]
    sev = config["severity"][:n] if "severity" in config.columns else [0] * n
    labels = labels[:n]
    part = ConfigData(config.name, images, space or _registry_space(config.name, labels), labels, list(ids),
                      [int(s or 0) for s in sev])
    part.fingerprints, part.incomplete = config.fingerprints, config.incomplete
    if is_sequence_config(config.name, ["frames"] if config.frames is not None else []):
        if config.frames is None:
            raise UnreadableConfig(config.name, [{"file": None, "reason": "an ImageNet-P sequence config whose shards "
                                                  "have no `frames` column: regenerate it with shift-hub generate"}])
        return _as_frames(part, config.frames, f"{Path(config.files[0]).parent}")
    return part


def _registry_space(name: str, labels: list) -> LabelSpace:
    """The registry's label space for the config, unless the data are not that benchmark's images:
    when most labelled rows (e.g. ImageNet val photos run through a ToonNet filter) fall outside the
    restricted space, scoring there would drop them, so ImageNet-1k is used instead."""
    space = label_space_for(name)
    if space.name == "imagenet-1k":
        return space
    labelled = [row for row in labels if row]
    outside = sum(1 for row in labelled if not space.targets(row))
    if labelled and outside * 2 > len(labelled):
        return get_label_space(None)
    return space


def label_space_fallbacks(parts: list[ConfigData], override: str | None = None) -> dict[str, str]:
    """{config: why} for each config scored in another label space than the registry names for it, so
    the table, the report and results.json say so instead of a silent fallback."""
    notes = {}
    for part in parts:
        meant = label_space_for(part.name)
        if part.space.name == meant.name:
            continue
        if override:
            notes[part.name] = f"scored in {part.space.name} as --label-space asked, not its own {meant.name}"
            continue
        labelled = [row for row in part.labels if row]
        outside = sum(1 for row in labelled if not meant.targets(row))
        notes[part.name] = (f"scored in {part.space.name}, not {meant.name}: {outside} of {len(labelled)} labelled "
                            f"images have no class in {meant.name} (they are not that benchmark's images)")
    return notes


def open_data(data, configs=None, *, split: str = SPLIT, revision: str | None = None,
              label_space: str | None = None, limit: int | None = None,
              unreadable: dict | None = None, subset=None, held: list | None = None) -> tuple[dict, list[ConfigData]]:
    """(description of the source, one ConfigData per config) from a folder, a Hub id or a Dataset.

    With an `unreadable` dict, a config whose shards cannot be read is left out and recorded there
    ({config: {"files": [{file, reason}]}}) so the others are still scored; without, it raises.
    `subset` (a `subsets.Subset`) keeps each config's rows of its images, all of them or SubsetError.
    Configs that hold no images to classify (ShiftSpec.scored False: in9_fg_mask) are never among the parts:
    with a `held` list they are opened into it (for a score that reads them), else not opened; either way
    `source["unscored_configs"]` names them.
    """
    import datasets

    space = get_label_space(label_space) if label_space else None
    if isinstance(data, datasets.Dataset):
        name = (configs or [None])[0] or (data["config"][0] if "config" in data.column_names and len(data) else "data")
        _check_named_rows(data, name)
        if not is_scored(name):
            raise DataError(f"{name}: no images to classify (ImageNet-9's foreground masks); pass an image config")
        part = _prepare(name, data, space, None if subset else limit)
        return {"source": "in-memory dataset", "split": split}, [_restrict(part, subset, limit, "in-memory dataset")
                                                                 if subset is not None else part]
    text = str(data)
    root = Path(text)
    if root.is_dir():
        available = _local_configs(root)
        loader = lambda c: _load_local(root, c, split)  # noqa: E731
        source = {"source": str(root.resolve()), "kind": "local", "split": split}
    elif root.exists():
        raise DataError(f"{text} is a file; pass the dataset folder (the one holding <config>/ subfolders)")
    else:
        try:
            available = _hub_configs(text, revision)
        except Exception as exc:
            raise DataError(f"cannot open {text!r}: not a local folder and not a readable Hub dataset "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        loader = lambda c: _load_hub(text, c, split, revision)  # noqa: E731
        source = {"source": text, "kind": "hub", "split": split, "revision": revision}
    if not available:
        raise DataError(f"{text}: no configs found (expected <config>/{split}-*.parquet)")
    wanted = _select(configs, available)
    unscored = [c for c in wanted if not is_scored(c)]
    if unscored:
        wanted = [c for c in wanted if c not in unscored]
        source["unscored_configs"] = unscored
        if not wanted:
            raise DataError(f"{', '.join(unscored)}: no images to classify (ImageNet-9's foreground masks, read by "
                            "--backgrounds-challenge with in9_original and in9_only_bg_t); name image configs too, "
                            "e.g. --configs backgrounds")
    parts = []
    with _quiet_datasets():  # one "Generating validation split" bar per config is noise; ours counts images
        _open_each(wanted, loader, space, None if subset else limit, unreadable, parts)
        if held is not None:
            _open_each(unscored, loader, space, None if subset else limit, unreadable, held)
    if subset is not None:  # the subset's rows first, then the first `limit` of them
        parts = [_restrict(p, subset, limit, text) for p in parts]
        if held is not None:
            held[:] = [_restrict(p, subset, limit, text) for p in held]
    if not parts:
        from .report import describe_unreadable

        raise DataError(f"{text}: no config could be read: {describe_unreadable(unreadable)}")
    incomplete = {p.name: list(p.incomplete) for p in parts if p.incomplete}
    if incomplete:  # scored on the shards present, and said in the table, the report and results.json
        source["incomplete"] = incomplete
    return source, parts


def _check_named_rows(data, name: str) -> None:
    """An in-memory dataset is scored as the config its rows name: the name picks the label space, and for
    ImageNet-P the protocol (noise against frame 0, others frame to frame) and the frame count, so rows of another
    config, or of several, under `name` would be a silently wrong number."""
    if "config" not in data.column_names or not len(data):
        return
    held = sorted({str(c) for c in data["config"]})
    if len(held) > 1:
        raise DataError(f"the dataset holds rows of {len(held)} configs ({_shown(held)}): score one at a time "
                        "(ds.filter(lambda r: r['config'] == NAME), or load one config)")
    if held[0] != name:
        raise DataError(f"the dataset's rows are config {held[0]!r}, not {name!r}: pass configs=[{held[0]!r}] "
                        "(or none), so it is scored in its own label space and protocol")


def is_scored(config: str) -> bool:
    """Whether a config's images are classified (all but the registry's `scored=False` entries, in9_fg_mask)."""
    from ..registry import REGISTRY

    spec = REGISTRY.get(config)
    return spec is None or spec.scored


def _restrict(part: ConfigData, subset, limit: int | None, where: str) -> ConfigData:
    """The part's rows of `subset`'s images (SubsetError when the config lacks one), the first `limit` of them."""
    import dataclasses

    from ..subsets import keep_rows, restrict_rows

    fix = f"generate the folder with --subset {subset.name} from a source that holds them all"
    if part.sequences:  # the subset picks sequences (source images), each kept with all its frames
        seq_ids = [i for i, _ in part.sequences]
        first = np.cumsum([0, *(n for _, n in part.sequences)])
        seq_labels = [part.labels[first[s]] for s in range(len(seq_ids))]
        rows = keep_rows(seq_ids, seq_labels, subset, f"{where} config {part.name}", fix)[:limit]
        ids, labels, sequences = spread([seq_ids[r] for r in rows], [seq_labels[r] for r in rows],
                                        [part.sequences[r][1] for r in rows])
        return dataclasses.replace(part, dataset=part.dataset.select(rows), labels=labels, image_ids=ids,
                                   severities=[0] * len(ids), sequences=tuple(sequences))
    rows = keep_rows(part.image_ids, part.labels, subset, f"{where} config {part.name}", fix)[:limit]
    return dataclasses.replace(part, dataset=restrict_rows(part.dataset, rows), labels=[part.labels[r] for r in rows],
                               image_ids=[part.image_ids[r] for r in rows], severities=[part.severities[r] for r in rows])


def _open_each(wanted, loader, space, limit, unreadable, parts) -> None:
    for config in wanted:
        try:
            parts.append(_prepare(config, _checked_load(loader, config), space, limit))
        except UnreadableConfig as exc:
            if unreadable is None:
                raise
            unreadable.setdefault(config, {})["files"] = exc.entries


class _quiet_datasets:
    """`datasets` progress bars off for a block, restored after (a library user may want them elsewhere)."""

    def __enter__(self):
        import datasets

        self.was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()

    def __exit__(self, *exc):
        import datasets

        if self.was_enabled:
            datasets.enable_progress_bars()


def _checked_load(loader, config: str):
    try:
        return loader(config)
    except DataError:
        raise
    except Exception as exc:
        if _is_read_error(exc):  # e.g. a Hub shard that is damaged: this config is unreadable, not the run
            raise UnreadableConfig(config, [{"file": None, "reason": _reason(exc)}]) from None
        if not isinstance(exc, ValueError):
            raise
        if "no data" in str(exc):  # datasets' message for a split with zero rows
            raise DataError(f"config {config!r} is empty: nothing to evaluate") from None
        raise DataError(f"cannot load config {config!r}: {exc}") from None


def _select(configs, available: list[str]) -> list[str]:
    """The configs asked for, by every name `generate` takes (a config, a shift's severities such as
    `gaussian_noise`, a group, `all-cpu`), that the data holds; a name matching nothing lists the nearest."""
    if not configs:
        return available
    from ..registry import REGISTRY, UnknownConfig, expand, groups, nearest

    out: list[str] = []
    for name in configs:
        if name in ("all", "all-cpu") or name in available:
            items = available if name in ("all", "all-cpu") and name not in available else [name]
        else:
            try:
                wanted = expand([name])
            except UnknownConfig:
                near = nearest(name, [*available, *groups(), *{n.rsplit("_", 1)[0] for n in REGISTRY}])
                raise DataError(f"config {name!r} is not in the data and not a known config, shift or group"
                                + (f"; nearest: {', '.join(near)}" if near else "")
                                + f" (the data holds {_shown(available)}; `shift-hub list` names every config)") from None
            items = [c for c in wanted if c in available]
            if not items:
                raise DataError(f"{name!r} names {len(wanted)} config(s), none of them in the data "
                                f"({_shown(available)})")
        out.extend(i for i in items if i not in out)
    return out


def _shown(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------

def decode_image(value):
    """datasets Image value (bytes and/or path) -> RGB PIL image."""
    from PIL import Image

    if isinstance(value, (bytes, bytearray)):  # a plain binary column (parquet written by another program)
        image = Image.open(io.BytesIO(value))
    elif isinstance(value, dict):
        if value.get("bytes"):
            image = Image.open(io.BytesIO(value["bytes"]))
        else:
            image = Image.open(value["path"])
    else:
        image = value
    return image.convert("RGB")


class _Images:
    """Map-style dataset over every (config, row) pair; workers decode and preprocess."""

    def __init__(self, parts: list[ConfigData], preprocess):
        self.parts = [p.dataset for p in parts]
        self.preprocess = preprocess
        self.index = loading_order(parts)

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        """(tensor, i, None), or (None, i, reason) for an image that cannot be decoded: reported, not fatal."""
        c, r = self.index[i]
        try:
            image = decode_image(self.parts[c][r]["image"])
        except Exception as exc:  # truncated, garbage or unsupported bytes
            return None, i, _reason(exc)
        return self.preprocess(image), i, None


def loading_order(parts: list[ConfigData]) -> list[tuple[int, int]]:
    """(config, row) pairs in the order they are loaded: config by config, except configs shifted on the fly
    from one source (datasets sharing a `source_images`), walked image by image so that consecutive items
    share the image's decode: ordered by (source image, config, row), the source image of a row being the
    dataset's `source_row(row)` (an ImageNet-P config has one row per frame), else the row itself. Rows are put
    back config by config at the end of `run`."""
    shared = {id(getattr(p.dataset, "source_images", None)) for p in parts}
    if len(parts) > 1 and len(shared) == 1 and getattr(parts[0].dataset, "source_images", None) is not None:
        by_image: dict[int, list[tuple[int, int]]] = {}
        for c, part in enumerate(parts):
            source_row = getattr(part.dataset, "source_row", None)
            for r in range(len(part.dataset)):
                by_image.setdefault(source_row(r) if source_row else r, []).append((c, r))
        return [pair for image in sorted(by_image) for pair in by_image[image]]
    return [(c, r) for c, part in enumerate(parts) for r in range(len(part.dataset))]


def _collate(items):
    """(stacked tensors or None, their positions, [(position, reason)] of the undecodable ones)."""
    import torch

    good = [(x, i) for x, i, _ in items if x is not None]
    failed = [(i, reason) for x, i, reason in items if x is None]
    batch = torch.stack([x for x, _ in good]) if good else None
    return batch, torch.tensor([i for _, i in good], dtype=torch.long), failed


def pick_device(device: str | None = None):
    """Requested device, else the accelerate state's device (GPU when present), else CPU."""
    import torch

    if device:
        try:
            chosen = torch.device(device)
        except (RuntimeError, ValueError):
            raise DataError(f"device {device!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise DataError(f"device {device}: no CUDA GPU is visible here; use cpu or leave it out")
        if chosen.type == "mps" and not torch.backends.mps.is_available():
            raise DataError(f"device {device}: no Apple MPS device here; use cpu or leave it out")
        return chosen
    state = distributed_state()  # under accelerate/torchrun: this rank's GPU (or the CPU)
    if state is not None:
        return state.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus - 1))


def _yield_to_forward(_worker_id: int) -> None:
    """On a CPU-only run the forward pass owns the cores; decoding fills the gaps (lower priority),
    so the model's OpenMP threads are not preempted mid-barrier by the loader."""
    try:
        os.nice(5)
    except OSError:
        pass


def make_loader(parts: list[ConfigData], preprocess, batch_size: int, num_workers: int, pin_memory: bool = False,
                cpu_forward: bool = False, rank: int = 0, world: int = 1):
    """Batches of `batch_size` in loading order (`_batches`); with `world` processes, this rank takes every
    world-th batch, so each batch holds exactly the images it holds in a one-process run (same logits, same rows)."""
    import torch

    dataset = _Images(parts, preprocess)
    batches = _batches(dataset.index, batch_size)[rank::world]
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=False, prefetch_factor=4 if num_workers else None, collate_fn=_collate,
        worker_init_fn=_yield_to_forward if cpu_forward and num_workers else None,
    )


def _batches(index: list[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Positions of `index` in batches, in loading order, every image forwarded in a batch of the size it has
    when loaded config by config (a model's numbers can change with the batch size): full batches, then the
    short last batch holding exactly the items, in the order, of the config-by-config run."""
    plan = sorted(range(len(index)), key=index.__getitem__)  # config by config
    short = len(index) % batch_size
    last = plan[len(plan) - short:] if short else []
    held_back = set(last)
    body = [p for p in range(len(index)) if p not in held_back]
    return [body[s : s + batch_size] for s in range(0, len(body), batch_size)] + ([last] if last else [])


def distributed_state():
    """accelerate's state under `accelerate launch`/torchrun with more than one process, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from ..engines import distributed_state as accelerate_state
    from ..jobs import GenerationError

    try:
        return accelerate_state()
    except GenerationError as exc:
        raise DataError(str(exc)) from None


def is_main_process() -> bool:
    """Whether this process writes results and prints (always, outside a multi-process launch)."""
    return int(os.environ.get("RANK", "0")) == 0


def run(classifier, parts: list[ConfigData], *, batch_size: int = 32, num_workers: int | None = None,
        device: str | None = None, amp: bool = False, progress: bool = False,
        unreadable: dict | None = None) -> list[dict]:
    """Score every image of every config; return one row per image.

    An image that cannot be decoded gets no row: with an `unreadable` dict it is recorded there
    ({config: {"images": [{image_id, reason}]}}) and the run goes on; without, it raises DataError.
    """
    import torch

    state = distributed_state()
    dev = pick_device(device)
    classifier.to(dev)
    spaces = {p.space.name: p.space for p in parts}
    for part in parts:
        if part.name in ("clean", "clean_full"):
            part.extra_spaces = tuple(s for n, s in spaces.items() if n != part.space.name)
    workers = default_workers() if num_workers is None else num_workers
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    loader = make_loader(parts, classifier.preprocess, batch_size, workers, pin_memory=dev.type == "cuda",
                         cpu_forward=dev.type == "cpu", rank=rank, world=world)
    index = loader.dataset.index
    mapping = None if is_identity(classifier.imagenet_index) else classifier.imagenet_index
    rows: list[dict] = []
    failures: list = []
    positions_done: list[int] = []
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(index), unit="img", desc=f"evaluate {classifier.name}"
                   + (f" (rank 0 of {world})" if world > 1 else ""))
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16 if dev.type == "cpu" else torch.float16) if amp else None
    with torch.inference_mode():
        for batch, positions, failed in loader:
            failures.extend(failed)
            if bar is not None:
                bar.update(len(failed) * world)
            if batch is None:
                continue
            batch = batch.to(dev, non_blocking=True)
            if autocast is not None:
                with autocast:
                    logits = classifier.forward(batch)
            else:
                logits = classifier.forward(batch)
            in1k = to_imagenet_logits(logits.float(), mapping)
            rows.extend(_score_batch(parts, index, positions.tolist(), in1k))
            positions_done.extend(positions.tolist())
            if bar is not None:
                bar.update(len(positions) * world)
    if bar is not None:
        bar.close()
    pairs = list(zip(positions_done, rows))
    if state is not None:  # every rank gets every row: the same list as one process makes
        from accelerate.utils import gather_object

        pairs, failures = gather_object(pairs), gather_object(failures)
    in_plan = lambda item: index[item[0]]  # noqa: E731  (config, row): config by config, whatever the loading order
    _note_failed(parts, index, sorted(failures, key=in_plan), unreadable)
    return [row for _, row in sorted(pairs, key=in_plan)]


def _note_failed(parts: list[ConfigData], index, failed: list, unreadable: dict | None) -> None:
    for position, reason in failed:
        c, r = index[position]
        entry = {"image_id": parts[c].image_ids[r], "reason": reason}
        if unreadable is None:
            raise DataError(f"config {parts[c].name!r}: image {entry['image_id']} cannot be decoded ({reason})")
        unreadable.setdefault(parts[c].name, {}).setdefault("images", []).append(entry)


def _score_batch(parts: list[ConfigData], index, positions: list[int], in1k) -> list[dict]:
    """Rows of one batch, grouped by config so each group is scored in its own label space."""
    out: list[dict] = [None] * len(positions)  # type: ignore[list-item]
    by_config: dict[int, list[int]] = {}
    for j, p in enumerate(positions):
        by_config.setdefault(index[p][0], []).append(j)
    for c, js in by_config.items():
        part = parts[c]
        space = part.space
        probs = space.scores(in1k[js]).cpu().numpy()
        safe = np.where(np.isnan(probs), -np.inf, probs)
        top5 = np.argsort(-safe, axis=1, kind="stable")[:, :5]
        for k, j in enumerate(js):
            r = index[positions[j]][1]
            targets = space.targets(part.labels[r])
            pred = int(top5[k, 0])
            out[j] = {
                "config": part.name,
                "image_id": part.image_ids[r],
                "severity": part.severities[r],
                "labels": [int(x) for x in part.labels[r]],
                "targets": sorted(targets),
                "pred": pred,
                "pred_name": space.class_names[pred],
                "top5": [int(x) for x in top5[k]],
                "confidence": float(safe[k, pred]),
                "correct": bool(targets) and pred in targets,
                "correct5": bool(targets) and bool(targets & set(int(x) for x in top5[k])),
                "scorable": bool(targets),
                "label_space": space.name,
            }
        for extra in part.extra_spaces:
            eprobs = extra.scores(in1k[js]).cpu().numpy()
            epred = np.argmax(np.where(np.isnan(eprobs), -np.inf, eprobs), axis=1)
            for k, j in enumerate(js):
                targets = extra.targets(part.labels[index[positions[j]][1]])
                out[j].setdefault("other_spaces", {})[extra.name] = {
                    "pred": int(epred[k]), "correct": bool(targets) and int(epred[k]) in targets,
                    "scorable": bool(targets)}
    return out

"""Batched evaluation of one model over the configs of a generated folder or a Hub dataset repo.

Decoding and the model's own preprocessing run in torch DataLoader workers over ALL configs at
once (one loader, so there is no pipeline restart between configs) while the main process runs
the forward pass. One result row is kept per image, so every metric is recomputable later.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .labels import LabelSpace, get_label_space, is_identity, label_space_for, to_imagenet_logits

SPLIT = "validation"


class DataError(ValueError):
    """The data cannot be scored: no labels, no rows, unknown config, unreadable source."""


@dataclass
class ConfigData:
    name: str
    dataset: object  # datasets.Dataset with the image column not decoded
    space: LabelSpace
    labels: list  # per row: list of valid ImageNet-1k indices
    image_ids: list
    severities: list
    extra_spaces: tuple = ()  # baselines (clean) are also scored in the other configs' label spaces


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


def _load_local(root: Path, config: str, split: str):
    import datasets

    folder = root / config
    files = sorted(folder.glob(f"{split}-*.parquet")) or sorted(folder.glob("*.parquet"))
    if not files:
        raise DataError(f"{root}: no parquet shards for config {config!r} (have: {', '.join(_local_configs(root)) or 'none'})")
    if (root / "README.md").is_file():
        try:
            return datasets.load_dataset(str(root), config, split=split)
        except (ValueError, KeyError):  # README without this config: read the shards directly
            pass
    return datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)


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
    dataset = dataset.select_columns(["image"])
    return ConfigData(name, dataset, space or _registry_space(name, labels), labels, list(ids),
                      [int(s or 0) for s in sev])


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


def open_data(data, configs=None, *, split: str = SPLIT, revision: str | None = None,
              label_space: str | None = None, limit: int | None = None) -> tuple[dict, list[ConfigData]]:
    """(description of the source, one ConfigData per config) from a folder, a Hub id or a Dataset."""
    import datasets

    space = get_label_space(label_space) if label_space else None
    if isinstance(data, datasets.Dataset):
        name = (configs or [None])[0] or (data["config"][0] if "config" in data.column_names and len(data) else "data")
        return {"source": "in-memory dataset", "split": split}, [_prepare(name, data, space, limit)]
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
    return source, [_prepare(c, _checked_load(loader, c), space, limit) for c in wanted]


def _checked_load(loader, config: str):
    try:
        return loader(config)
    except DataError:
        raise
    except ValueError as exc:
        if "no data" in str(exc):  # datasets' message for a split with zero rows
            raise DataError(f"config {config!r} is empty: nothing to evaluate") from None
        raise DataError(f"cannot load config {config!r}: {exc}") from None


def _select(configs, available: list[str]) -> list[str]:
    if not configs:
        return available
    from ..registry import groups

    out: list[str] = []
    grouped = groups()
    for name in configs:
        if name == "all-cpu" or name == "all":
            items = available
        elif name in grouped:
            items = [c for c in grouped[name] if c in available]
        else:
            if name not in available:
                raise DataError(f"config {name!r} not in the data (have: {', '.join(available)})")
            items = [name]
        out.extend(i for i in items if i not in out)
    if not out:
        raise DataError(f"none of {configs} present in the data (have: {', '.join(available)})")
    return out


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------

def decode_image(value):
    """datasets Image value (bytes and/or path) -> RGB PIL image."""
    from PIL import Image

    if isinstance(value, dict):
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
        self.index = [(c, r) for c, part in enumerate(parts) for r in range(len(part.dataset))]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        c, r = self.index[i]
        return self.preprocess(decode_image(self.parts[c][r]["image"])), i


def pick_device(device: str | None = None):
    """Requested device, else the accelerate state's device (GPU when present), else CPU."""
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise DataError(f"--device {device}: no CUDA GPU is visible here; use --device cpu or leave it out")
        return torch.device(device)
    try:
        from accelerate import PartialState

        return PartialState().device
    except Exception:
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
                cpu_forward: bool = False):
    import torch

    dataset = _Images(parts, preprocess)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=False, prefetch_factor=4 if num_workers else None,
        worker_init_fn=_yield_to_forward if cpu_forward and num_workers else None,
    )


def run(classifier, parts: list[ConfigData], *, batch_size: int = 32, num_workers: int | None = None,
        device: str | None = None, amp: bool = False, progress: bool = False) -> list[dict]:
    """Score every image of every config; return one row per image."""
    import torch

    dev = pick_device(device)
    classifier.to(dev)
    spaces = {p.space.name: p.space for p in parts}
    for part in parts:
        if part.name in ("clean", "clean_full"):
            part.extra_spaces = tuple(s for n, s in spaces.items() if n != part.space.name)
    workers = default_workers() if num_workers is None else num_workers
    loader = make_loader(parts, classifier.preprocess, batch_size, workers, pin_memory=dev.type == "cuda",
                         cpu_forward=dev.type == "cpu")
    index = loader.dataset.index
    mapping = None if is_identity(classifier.imagenet_index) else classifier.imagenet_index
    rows: list[dict] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(index), unit="img", desc=f"evaluate {classifier.name}")
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16 if dev.type == "cpu" else torch.float16) if amp else None
    with torch.inference_mode():
        for batch, positions in loader:
            batch = batch.to(dev, non_blocking=True)
            if autocast is not None:
                with autocast:
                    logits = classifier.forward(batch)
            else:
                logits = classifier.forward(batch)
            in1k = to_imagenet_logits(logits.float(), mapping)
            rows.extend(_score_batch(parts, index, positions.tolist(), in1k))
            if bar is not None:
                bar.update(len(positions))
    if bar is not None:
        bar.close()
    return rows


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

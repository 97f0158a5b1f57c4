"""ImageNet-1k metadata read from the files timm ships (never typed by hand), and class subsets.

timm is located with `find_spec`, not imported, so reading class names does not import torch.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

# XImageNet-12 (Li et al. 2024): each of its 12 classes is a single ImageNet-1k class.
XIMAGENET12_WNIDS = (
    "n01689811", "n01693334", "n01985128", "n02066245", "n02085936", "n02119022",
    "n02607072", "n02692877", "n02974003", "n02977058", "n02992211", "n07614500",
)


@lru_cache(maxsize=None)
def _info_dir() -> Path:
    spec = find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ImageNet class metadata is read from timm's shipped files: `pip install timm`")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"


def _lines(name: str) -> list[str]:
    return [line.strip() for line in (_info_dir() / name).read_text().splitlines() if line.strip()]


@lru_cache(maxsize=None)
def wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WNIDs in the standard (sorted) index order."""
    ids = tuple(_lines("imagenet_synsets.txt"))
    if len(ids) != 1000:
        raise RuntimeError(f"expected 1000 synsets in timm's imagenet_synsets.txt, found {len(ids)}")
    return ids


@lru_cache(maxsize=None)
def wnid_to_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(wnids())}


@lru_cache(maxsize=None)
def lemmas() -> dict[str, str]:
    """WNID -> comma-separated lemmas, e.g. 'tabby, tabby cat'."""
    out = {}
    for line in _lines("imagenet_synset_to_lemma.txt"):
        wnid, _, lemma = line.partition("\t")
        out[wnid] = lemma
    return out


@lru_cache(maxsize=None)
def names() -> tuple[str, ...]:
    """Short readable name per index: the first lemma."""
    table = lemmas()
    return tuple(table[w].split(",")[0].strip() for w in wnids())


def index_of(wnid: str) -> int:
    try:
        return wnid_to_index()[wnid]
    except KeyError:
        raise KeyError(f"{wnid!r} is not one of the 1000 ImageNet-1k WNIDs") from None


@lru_cache(maxsize=None)
def subset(name: str) -> tuple[int, ...]:
    """ImageNet-1k indices of a named subset: imagenet_r, imagenet_a (200 each), ximagenet12."""
    if name in ("imagenet_r", "imagenet_a"):
        return tuple(int(x) for x in _lines(f"{name}_indices.txt"))
    if name == "ximagenet12":
        return tuple(index_of(w) for w in XIMAGENET12_WNIDS)
    raise KeyError(f"unknown class subset {name!r}; known: {', '.join(SUBSETS)}")


SUBSETS = ("imagenet_r", "imagenet_a", "ximagenet12")


@lru_cache(maxsize=None)
def real_labels() -> tuple[tuple[int, ...], ...]:
    """ReaL labels (Beyer et al. 2020) for the 50,000 validation images in file order; some are empty."""
    return tuple(tuple(x) for x in json.loads((_info_dir() / "imagenet_real_labels.json").read_text()))

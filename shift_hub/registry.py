"""The one table of shift configs. CLI choices, builder configs, cards and tests all read REGISTRY.

A config is one (shift, parameters, severity) combination as a `datasets` config name. The
transform itself lives in `shift_hub.shifts.<family>` and is named here as "module:function" so
that listing the registry imports no heavy dependency (torch, OpenCV) until a shift actually runs.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Mapping

# Needs a config may declare; the CLI and tests use them to decide what can run where.
GPU, WEIGHTS, MASKS = "gpu", "weights", "masks"


@dataclass(frozen=True)
class Geometry:
    """How an image is sized before the shift, as the original dataset was made."""

    resize_shorter: int | None = None  # resize so the shorter side is this (bilinear, as torchvision)
    center_crop: int | None = None  # then center-crop a square of this side
    max_shorter: int | None = None  # cap the shorter side (INTER_AREA), never upscale
    crop_multiple: int | None = None  # crop from the top-left to multiples of this

    def describe(self) -> str:
        parts = []
        if self.resize_shorter:
            parts.append(f"resize shorter side to {self.resize_shorter}")
        if self.center_crop:
            parts.append(f"center crop {self.center_crop}x{self.center_crop}")
        if self.max_shorter:
            parts.append(f"cap shorter side at {self.max_shorter} (INTER_AREA)")
        if self.crop_multiple:
            parts.append(f"crop from top-left to multiples of {self.crop_multiple}")
        return ", ".join(parts) or "full resolution"


STANDARD = Geometry(resize_shorter=256, center_crop=224)
FULL = Geometry()


@dataclass(frozen=True)
class Encoding:
    """How the shifted image is stored. PNG is lossless and can be forced for any config."""

    format: str = "JPEG"
    quality: int | None = 95
    optimize: bool = False

    def describe(self) -> str:
        if self.format == "PNG":
            return "PNG (lossless)"
        return f"JPEG quality {self.quality}" + (" (optimized)" if self.optimize else "")


PNG = Encoding(format="PNG", quality=None)


@dataclass(frozen=True)
class ShiftSpec:
    name: str  # the datasets config name
    family: str  # module under shift_hub.shifts
    fn: str | None  # "module:function" taking (image uint8 HxWx3, rng, **params); None = identity
    description: str
    citation: str  # BibTeX of the paper that defined the shift
    params: Mapping = field(default_factory=dict)
    severity: int | None = None
    geometry: Geometry = STANDARD
    encoding: Encoding = Encoding()
    needs: frozenset = frozenset()
    group: str | None = None  # e.g. "imagenet_c": lets the CLI expand one name into many configs
    deviation: str | None = None  # how this differs from the published dataset, if it does
    channels: int = 3  # 4 for RGBA outputs
    # GPU families: `fn(**params)` is a factory called once per worker, returning a callable
    # `(images: list[uint8 HxWx3], rngs: list[Generator]) -> list[uint8 array]` run on batches.
    batched: bool = False

    def load_fn(self) -> Callable | None:
        if self.fn is None:
            return None
        module, _, attr = self.fn.partition(":")
        return getattr(importlib.import_module(module), attr)


IMAGENET_BIBTEX = """@article{russakovsky2015imagenet,
  title={ImageNet Large Scale Visual Recognition Challenge},
  author={Russakovsky, Olga and Deng, Jia and Su, Hao and Krause, Jonathan and Satheesh, Sanjeev and Ma, Sean and Huang, Zhiheng and Karpathy, Andrej and Khosla, Aditya and Bernstein, Michael and Berg, Alexander C. and Fei-Fei, Li},
  journal={International Journal of Computer Vision},
  volume={115}, number={3}, pages={211--252}, year={2015}
}"""

_CLEAN = [
    ShiftSpec(
        name="clean",
        family="clean",
        fn=None,
        description="The source images under the standard preprocessing (shorter side 256, center crop "
        "224): the baseline every accuracy drop is measured against.",
        citation=IMAGENET_BIBTEX,
        encoding=Encoding(quality=95),
    ),
    ShiftSpec(
        name="clean_full",
        family="clean",
        fn=None,
        description="The source images at full resolution, re-encoded as JPEG quality 95: the baseline for "
        "full-resolution shifts (cartoon, drawing) stored the same way.",
        citation=IMAGENET_BIBTEX,
        geometry=FULL,
        encoding=Encoding(quality=95),
    ),
]

# Each family contributes its entries here; nothing else enumerates shifts.
REGISTRY: dict[str, ShiftSpec] = {spec.name: spec for spec in [*_CLEAN]}


def get(name: str) -> ShiftSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown shift config {name!r}; `shift-hub list` shows the {len(REGISTRY)} known ones") from None


def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in REGISTRY.values():
        if spec.group:
            out.setdefault(spec.group, []).append(spec.name)
    return out


def expand(names: list[str]) -> list[str]:
    """Config names, with group names (e.g. `imagenet_c`) and `all-cpu` expanded, order kept, no repeats."""
    out: list[str] = []
    grouped = groups()
    for name in names:
        if name == "all-cpu":
            items = [s.name for s in REGISTRY.values() if not s.needs]
        elif name in grouped:
            items = grouped[name]
        else:
            items = [get(name).name]
        out.extend(i for i in items if i not in out)
    return out

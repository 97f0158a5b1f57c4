"""Dataset cards rendered from `cards/` with huggingface_hub's DatasetCard, from what is on disk.

The card is rebuilt from the shard footers every time, so its `configs:` block always lists every
config present in the folder, and its statistics are those of the files themselves.
"""
from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

from .. import __version__
from ..registry import REGISTRY


def template_path() -> str:
    return str(files("shift_hub.cards") / "dataset_card.md")


def render_card(out: str | Path, repo_hint: str | None = None):
    from huggingface_hub import DatasetCard, DatasetCardData

    from ..generate import SPLIT, summary

    out = Path(out)
    stats = summary(out)
    if not stats:
        raise FileNotFoundError(f"{out}: no generated configs (expected <config>/{SPLIT}-*.parquet)")
    configs, noncommercial = [], []
    for name, s in stats.items():
        spec = REGISTRY.get(name)
        configs.append({
            "name": name, "family": spec.family if spec else "?", "description": spec.description if spec else "",
            "params": dict(spec.params) if spec and spec.params else "none",
            "geometry": spec.geometry.describe() if spec else "?",
            "encoding": "PNG (lossless)" if s["encoding"]["format"] == "PNG" else f"JPEG quality {s['encoding']['quality']}",
            "seed": s["seed"], "written": s["written"], "skipped": s["skipped"], "converted": s["converted"],
            "deviation": spec.deviation if spec else None, "citation": spec.citation if spec else "",
        })
        if spec and "non-commercial" in (spec.deviation or "").lower():
            noncommercial.append(name)
    data = DatasetCardData(
        license="other",
        license_name="imagenet-terms-of-access",
        task_categories=["image-classification"],
        pretty_name="shift_hub ImageNet distribution shifts",
        tags=["distribution-shift", "robustness", "imagenet", "shift_hub"],
        configs=[{"config_name": c["name"], "data_files": [{"split": SPLIT, "path": f"{c['name']}/{SPLIT}-*.parquet"}]}
                 for c in configs],
    )
    sources = sorted({s["source"] for s in stats.values()})
    return DatasetCard.from_template(
        data, template_path=template_path(), version=__version__, source="; ".join(sources),
        repo_hint=repo_hint or out.name, first_config=configs[0]["name"], configs=configs,
        noncommercial=", ".join(noncommercial), ids_sha256=_ids_sha256(out),
    )


def _ids_sha256(out: Path) -> str:
    """Hash of the sorted image-id list shared by the configs (per-shard hashes combined)."""
    from ..generate import SPLIT, shard_metadata

    h = hashlib.sha256()
    first = next(iter(sorted(p.parent for p in out.glob(f"*/{SPLIT}-*.parquet"))))
    for path in sorted(first.glob(f"{SPLIT}-*.parquet")):
        h.update(shard_metadata(path)["ids_sha256"].encode())
    return h.hexdigest()


def write_card(out: str | Path, repo_hint: str | None = None) -> Path:
    card = render_card(out, repo_hint)
    path = Path(out) / "README.md"
    tmp = path.with_name(".README.md.tmp")
    tmp.write_text(str(card))
    tmp.replace(path)
    return path

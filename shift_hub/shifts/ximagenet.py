"""XImageNet-12 background scenarios (Li et al., CVPR-W 2024): the object kept, its background changed.

Every function takes the image, the per-image generator and `mask` (bool HxW, True on the object,
already through the config's geometry), as the engine hands them. Parameters follow the
XImageNet-12 code: GaussianBlur 15x15 sigma 3; hue ranges on OpenCV's 0-180 scale; rand_bg's
saturating `cv2.addWeighted(bg, 1, fg, 1, 0)`. `ai_bg` is a batched SDXL inpainting factory.
"""
from __future__ import annotations

import os

import numpy as np

BLUR_KSIZE, BLUR_SIGMA = 15, 3.0
# OpenCV 8-bit hue (0-180) ranges XImageNet-12 draws one background hue from; red wraps around 0.
HUE_RANGES = {"red": ((0, 29), (150, 180)), "green": ((30, 89),), "blue": ((90, 149),)}


def _mask(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The bool mask as 0/1 uint8 (a view, no copy), the form OpenCV's masked copies take."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    return mask.view(np.uint8)


def _blurred(image: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (ksize, ksize), sigma)


def blur_bg(image: np.ndarray, rng: np.random.Generator, *, mask: np.ndarray, ksize: int = BLUR_KSIZE,
            sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The whole image blurred, then the object's own pixels put back."""
    import cv2

    return cv2.copyTo(image, _mask(mask, image), _blurred(image, ksize, sigma))


def blur_obj(image: np.ndarray, rng: np.random.Generator, *, mask: np.ndarray, ksize: int = BLUR_KSIZE,
             sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The object blurred (with its surroundings bleeding in, as blurring the whole image does); background kept."""
    import cv2

    return cv2.copyTo(_blurred(image, ksize, sigma), _mask(mask, image), image.copy())


def draw_hue(rng: np.random.Generator, color: str) -> int:
    """One hue for the image: a sub-range first (red has two), then an integer in it, ends included."""
    ranges = HUE_RANGES[color]
    lo, hi = ranges[int(rng.integers(len(ranges)))] if len(ranges) > 1 else ranges[0]
    return int(rng.integers(lo, hi + 1))


def color_bg(image: np.ndarray, rng: np.random.Generator, *, mask: np.ndarray, color: str) -> np.ndarray:
    """Background hue set to one constant (red/green/blue), or saturation set to 0 (grey); S and V kept."""
    import cv2

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    if color == "grey":
        hsv[..., 1] = 0
    elif color in HUE_RANGES:
        hsv[..., 0] = draw_hue(rng, color)
    else:
        raise ValueError(f"color must be one of {sorted(HUE_RANGES)} or 'grey', not {color!r}")
    return cv2.copyTo(image, _mask(mask, image), cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))


def seg_img(image: np.ndarray, rng: np.random.Generator, *, mask: np.ndarray) -> np.ndarray:
    """RGBA: the image's RGB untouched, alpha 255 on the object and 0 elsewhere (stored as PNG)."""
    import cv2

    out = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    out[..., 3] = _mask(mask, image) * np.uint8(255)
    return out


def seg_img_rgb(image: np.ndarray, rng: np.random.Generator, *, mask: np.ndarray) -> np.ndarray:
    """The object on black, for models that take RGB only."""
    import cv2

    return cv2.bitwise_and(image, image, mask=_mask(mask, image))


def rand_bg(image: np.ndarray, rng: np.random.Generator, *, mask: np.ndarray, background_provider,
            composite: str = "add") -> np.ndarray:
    """The object on black, resized to a background photo of another class, and combined with it.

    composite="add" is XImageNet-12's `cv2.addWeighted(bg, 1, fg, 1, 0)`: a saturating sum, so the
    object is brightened by the background behind it. composite="alpha" pastes the object over the
    background instead (mask resized with nearest neighbour). The output has the background's size.
    """
    import cv2

    background = background_provider(rng)
    h, w = background.shape[:2]
    foreground = cv2.resize(seg_img_rgb(image, rng, mask=mask), (w, h))  # bilinear, as published
    if composite == "add":
        return cv2.addWeighted(background, 1, foreground, 1, 0)
    if composite == "alpha":
        inside = cv2.resize(_mask(mask, image), (w, h), interpolation=cv2.INTER_NEAREST)
        return cv2.copyTo(foreground, inside, background.copy())
    raise ValueError(f"composite must be 'add' or 'alpha', not {composite!r}")


# --- ai_bg: SDXL inpainting of the background ---------------------------------------------------------

DEFAULT_INPAINT_MODEL = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
PROMPT = "a high-resolution photograph of a {name} {scene}, natural lighting, sharp focus, realistic"
NEGATIVE_PROMPT = ("text, watermark, logo, frame, border, cartoon, drawing, painting, blurry, low quality, "
                   "deformed, extra {name}, duplicate")
# XImageNet-12 did not publish its prompts: these scenes are ours, plausible settings for each class.
SCENES = {
    "n01689811": ("on a sunlit rock among dry grass", "on a fallen log in a forest", "on sandy ground near shrubs"),
    "n01693334": ("on a mossy stone wall", "among green leaves in a garden", "on a warm rock in the sun"),
    "n01985128": ("in a shallow stream over pebbles", "on the muddy bank of a pond", "in clear water among reeds"),
    "n02066245": ("in the open ocean under a grey sky", "near a rocky coastline", "in calm blue sea water"),
    "n02085936": ("on a living room carpet", "on green grass in a park", "on a sofa by a window"),
    "n02119022": ("in a snowy meadow", "at the edge of a forest", "in tall autumn grass"),
    "n02607072": ("among the tentacles of a sea anemone", "over a colourful coral reef", "in a reef aquarium"),
    "n02692877": ("in a blue sky with white clouds", "above a city skyline", "over green countryside"),
    "n02974003": ("on an asphalt road", "in a parking lot", "on a gravel driveway"),
    "n02977058": ("in a bank lobby", "on a city street wall", "inside a shopping mall"),
    "n02992211": ("on a concert stage", "in a music room with wooden floor", "in an orchestra rehearsal hall"),
    "n07614500": ("on a cafe table", "held in front of a sunny beach", "on a kitchen counter"),
}
GENERIC_SCENES = ("outdoors in daylight", "indoors in a room", "in a natural environment", "in an urban setting")


def prompts_for(labels, rng: np.random.Generator) -> tuple[str, str]:
    """A class-aware (prompt, negative prompt); the scene is drawn with the image's generator."""
    from .. import classes

    if labels:
        wnid = classes.wnids()[labels[0]]
        name = classes.names()[labels[0]]
    else:
        wnid, name = "", "object"
    scenes = SCENES.get(wnid, GENERIC_SCENES)
    scene = scenes[int(rng.integers(len(scenes)))]
    return PROMPT.format(name=name, scene=scene), NEGATIVE_PROMPT.format(name=name)


# SDXL's training buckets at 1024 (width, height): images go to the one nearest in aspect ratio, so a
# batch of photos of similar shape shares one pipeline call.
SDXL_BUCKETS = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344),
                (1536, 640), (640, 1536))


def working_size(height: int, width: int, resolution: int = 1024) -> tuple[int, int]:
    """(h, w) of the SDXL bucket nearest the image's aspect ratio, scaled to `resolution`, multiples of 8."""
    aspect = np.log(width / height)
    bw, bh = min(SDXL_BUCKETS, key=lambda b: abs(np.log(b[0] / b[1]) - aspect))
    scale = resolution / 1024
    return max(8, int(round(bh * scale / 8)) * 8), max(8, int(round(bw * scale / 8)) * 8)


class WeightsMissing(RuntimeError):
    """The inpainting checkpoint is not available locally; the message says how to provide it."""


def locate_model(model_id: str) -> str:
    """A local folder or an already-downloaded Hub id; never downloads (nothing half-written on failure)."""
    from pathlib import Path

    how = (f"Download it first (`hf download {model_id}`, then it is found in the Hugging Face cache) or "
           "pass a local copy saved with save_pretrained: `shift-hub generate ai_bg --inpaint-model /path/to/folder`")
    path = Path(model_id).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise WeightsMissing(f"{path}: no model_index.json; not a diffusers pipeline folder. {how}")
        return str(path)
    if model_id.startswith((".", "/", "~")):
        raise WeightsMissing(f"SDXL inpainting weights: {model_id} does not exist. {how}")
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        raise WeightsMissing(f"SDXL inpainting weights {model_id!r}: huggingface_hub is missing. {how}") from None
    cached = try_to_load_from_cache(model_id, "model_index.json")
    if not isinstance(cached, str):
        raise WeightsMissing(f"SDXL inpainting weights {model_id!r} are not available locally. {how}")
    return str(Path(cached).parent)


class BackgroundInpainter:
    """Batched SDXL inpainting of everything but the object; the object's pixels are pasted back unchanged."""

    def __init__(self, model_id: str = DEFAULT_INPAINT_MODEL, steps: int = 30, guidance_scale: float = 7.5,
                 strength: float = 0.99, resolution: int = 1024, device: str | None = None, dtype: str | None = None):
        try:
            import torch
            from diffusers import StableDiffusionXLInpaintPipeline
        except ImportError:
            raise WeightsMissing("ai_bg needs diffusers: `pip install 'shift-hub[sdxl]'` "
                                 "(or `pip install 'diffusers>=0.27'`)") from None
        self.torch = torch
        if device is None and torch.cuda.is_available():  # one GPU per process under accelerate / torchrun
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', torch.cuda.current_device()))}"
        self.device = device or "cpu"
        half = torch.float16 if self.device.startswith("cuda") else torch.float32
        torch_dtype = getattr(torch, dtype) if dtype else half
        self.pipe = StableDiffusionXLInpaintPipeline.from_pretrained(locate_model(model_id), torch_dtype=torch_dtype)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps, self.guidance_scale, self.strength, self.resolution = steps, guidance_scale, strength, resolution

    def __call__(self, images: list[np.ndarray], rngs: list[np.random.Generator], masks: list[np.ndarray],
                 labels: list[tuple[int, ...]]) -> list[np.ndarray]:
        from PIL import Image

        # per image, in this order: the scene, then the diffusion seed
        drawn = []
        for rng, lab in zip(rngs, labels):
            prompt, negative = prompts_for(lab, rng)
            drawn.append((prompt, negative, int(rng.integers(2**31 - 1))))
        outs: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(working_size(*img.shape[:2], self.resolution), []).append(i)
        for (h, w), idx in groups.items():  # one pipeline call per working size
            result = self.pipe(
                prompt=[drawn[i][0] for i in idx], negative_prompt=[drawn[i][1] for i in idx],
                image=[Image.fromarray(images[i]).resize((w, h), Image.BICUBIC) for i in idx],
                mask_image=[_background_mask(masks[i]).resize((w, h), Image.NEAREST) for i in idx],
                height=h, width=w, num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
                strength=self.strength, output_type="np",
                generator=[self.torch.Generator("cpu").manual_seed(drawn[i][2]) for i in idx],
            ).images
            for i, gen in zip(idx, result):
                gen = np.clip(np.rint(np.asarray(gen, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
                back = np.asarray(Image.fromarray(gen).resize(images[i].shape[1::-1], Image.BICUBIC))
                outs[i] = np.where(np.asarray(masks[i], bool)[..., None], images[i], back)
        return outs


def _background_mask(mask: np.ndarray):
    """The inpainting mask: white where the pipeline repaints (the background), black on the object."""
    from PIL import Image

    return Image.fromarray((~np.asarray(mask, bool)).astype(np.uint8) * 255)


def ai_bg(**params) -> BackgroundInpainter:
    """Factory the engine calls once per worker (batched spec)."""
    return BackgroundInpainter(**params)

"""ImageNet-Cartoon: the White-box Cartoonization generator (Wang & Yu, CVPR 2020) in torch, batched.

ImageNet-Cartoon (Salvador & Oberman, 2022) ran the release's TF1 `unet_generator` and guided filter
on each validation image: BGR scaled to [-1, 1], shorter side capped at 720 and cropped to multiples
of 8 (the config's geometry), output `clip((y + 1) * 127.5)` truncated to uint8, JPEG quality 95.
Matching it in torch needs three TF details: 'SAME' padding on the stride-2 convolutions pads
(0, 1) on even sizes, TF1 `resize_bilinear` maps output pixel i to input i * in / out (no half-pixel
centres), and the guided filter's box filter divides by the count of valid neighbours.

`cartoon(**params)` is the registry's factory (`batched=True`): called once per worker, it loads the
weights and returns a callable over lists of images, which groups same-size images into batches
and runs them in half precision on CUDA.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .whitebox_convert import MissingWeights, resolve_weights  # noqa: F401  (re-exported for callers)

GUIDED_RADIUS, GUIDED_EPS = 1, 5e-3  # cartoonize.py: guided_filter(input_photo, network_out, r=1, eps=5e-3)
LEAKY_SLOPE = 0.2  # tf.nn.leaky_relu's default alpha
SIZE_MULTIPLE = 4  # two stride-2 stages and two x2 upsamplings: skips line up only on multiples of 4


# --- TensorFlow semantics ---
def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding TF's 'SAME' uses: output ceil(size / stride), extra pixel at the end."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _tf1_axis(in_size: int, out_size: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scale = in_size / out_size
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale
    lo = src.floor()
    frac = src - lo
    lo = lo.long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    return lo, hi, frac


def _double(x: torch.Tensor, dim: int) -> torch.Tensor:
    """TF1 bilinear x2 along `dim`: out[2k] = in[k], out[2k+1] = in[k] + (in[k+1] - in[k]) / 2, edge clamped.
    Slicing instead of gathers: the same arithmetic, several times faster on CPU."""
    n = x.shape[dim]
    nxt = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim) if n > 1 else x
    return torch.stack([x, x + (nxt - x) * 0.5], dim + 1).flatten(dim, dim + 1)


def tf1_resize_bilinear(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """TF1 `tf.image.resize_bilinear` (align_corners=False, no half-pixel centres) on NCHW tensors."""
    if out_h == 2 * x.shape[-2] and out_w == 2 * x.shape[-1]:  # the generator's case; width first, as TF
        return _double(_double(x, x.dim() - 1), x.dim() - 2)
    y_lo, y_hi, y_frac = _tf1_axis(x.shape[-2], out_h, x.device)
    x_lo, x_hi, x_frac = _tf1_axis(x.shape[-1], out_w, x.device)
    x_frac = x_frac.to(x.dtype)
    y_frac = y_frac.to(x.dtype)[:, None]

    def along_width(rows: torch.Tensor) -> torch.Tensor:
        left, right = rows.index_select(-1, x_lo), rows.index_select(-1, x_hi)
        return left + (right - left) * x_frac

    top = along_width(x.index_select(-2, y_lo))
    bottom = along_width(x.index_select(-2, y_hi))
    return top + (bottom - top) * y_frac


class TFConv2d(nn.Conv2d):
    """A conv with TF 'SAME' padding: symmetric for stride 1 (odd kernels), size-dependent for stride 2."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=kernel // 2 if stride == 1 else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] != 1:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = tf_same_padding(x.shape[-2], k, s)
            left, right = tf_same_padding(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = TFConv2d(channels, channels, 3)
        self.conv2 = TFConv2d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), LEAKY_SLOPE))


class WhiteBoxGenerator(nn.Module):
    """`unet_generator(channel=32, num_blocks=4)` of the release; 1,467,075 parameters.

    Input and output: BGR in [-1, 1], NCHW, height and width multiples of 4. Attribute names map
    one-to-one onto the TF variable scopes (`whitebox_convert.TF_TO_TORCH`).
    """

    def __init__(self, channel: int = 32, num_blocks: int = 4):
        super().__init__()
        c = channel
        self.head = TFConv2d(3, c, 7)
        self.down1 = TFConv2d(c, c, 3, stride=2)
        self.down1_expand = TFConv2d(c, 2 * c, 3)
        self.down2 = TFConv2d(2 * c, 2 * c, 3, stride=2)
        self.down2_expand = TFConv2d(2 * c, 4 * c, 3)
        self.blocks = nn.Sequential(*[ResBlock(4 * c) for _ in range(num_blocks)])
        self.bottleneck = TFConv2d(4 * c, 2 * c, 3)
        self.up1 = TFConv2d(2 * c, 2 * c, 3)
        self.up1_reduce = TFConv2d(2 * c, c, 3)
        self.up2 = TFConv2d(c, c, 3)
        self.tail = TFConv2d(c, 3, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, LEAKY_SLOPE)  # noqa: E731
        x0 = act(self.head(x))
        x1 = act(self.down1_expand(act(self.down1(x0))))
        x2 = act(self.down2_expand(act(self.down2(x1))))
        x2 = act(self.bottleneck(self.blocks(x2)))
        x3 = tf1_resize_bilinear(x2, 2 * x2.shape[-2], 2 * x2.shape[-1])
        x3 = act(self.up1_reduce(act(self.up1(x3 + x1))))
        x4 = tf1_resize_bilinear(x3, 2 * x3.shape[-2], 2 * x3.shape[-1])
        return self.tail(act(self.up2(x4 + x0)))


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> torch.Tensor:
    """Per-channel guided filter (He et al.) as the release computes it: (2r+1)^2 box means over the
    valid neighbours only (TF's zero-padded box sum divided by the box sum of ones)."""

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, 2 * r + 1, stride=1, padding=r, count_include_pad=False)

    mean_x, mean_y = mean(guide), mean(src)
    cov_xy = mean(guide * src) - mean_x * mean_y
    var_x = mean(guide * guide) - mean_x * mean_x
    a = cov_xy / (var_x + eps)
    b = mean_y - a * mean_x
    return mean(a) * guide + mean(b)


# --- loading and running ---
def default_device() -> torch.device:
    """This process's GPU (LOCAL_RANK under `accelerate launch`/torchrun), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return torch.device("cpu")


def load_generator(weights=None, device=None, half: bool | None = None) -> WhiteBoxGenerator:
    """The generator with the release's weights (see `whitebox_convert.resolve_weights` for `weights`)."""
    device = torch.device(device) if device is not None else default_device()
    return _prepare(WhiteBoxGenerator(), resolve_weights(weights), device, half)


def _prepare(model: WhiteBoxGenerator, tensors, device, half) -> WhiteBoxGenerator:
    if tensors is not None:
        state = {k: torch.from_numpy(np.asarray(v)) for k, v in tensors.items()}
        model.load_state_dict(state, strict=True)
    half = device.type == "cuda" if half is None else half
    model = model.to(device=device, dtype=torch.float16 if half else torch.float32).eval()
    model = model.to(memory_format=torch.channels_last)  # faster convs on cuDNN (fp16) and oneDNN alike
    return model.requires_grad_(False)


class Cartoonizer:
    """Callable `(images, rngs) -> images` over uint8 RGB arrays; deterministic, so `rngs` is unused.

    Same-size images go through the network together, at most `batch_pixels` pixels per batch.
    Sizes that are not multiples of 4 (never the case under the config's geometry) are edge-padded
    and the output cropped back.
    """

    def __init__(self, model: WhiteBoxGenerator, batch_pixels: int | None = None):
        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.batch_pixels = batch_pixels or (2**24 if self.device.type == "cuda" else 2**20)

    def __call__(self, images: list[np.ndarray], rngs=None) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            groups[image.shape].append(i)
        for (h, w, _), ids in groups.items():
            per_batch = max(1, self.batch_pixels // (h * w))
            for start in range(0, len(ids), per_batch):
                chunk = ids[start : start + per_batch]
                for i, result in zip(chunk, self._run_halving(np.stack([images[i] for i in chunk]))):
                    out[i] = result
        return out  # type: ignore[return-value]

    def _run_halving(self, batch: np.ndarray) -> np.ndarray:
        """`run_batch`, retried in halves when the GPU runs out of memory (huge or many images)."""
        try:
            return self.run_batch(batch)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(batch) // 2
            return np.concatenate([self._run_halving(batch[:half]), self._run_halving(batch[half:])])

    @torch.inference_mode()
    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 RGB cartoons."""
        if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
            raise ValueError(f"expected (N, H, W, 3) uint8 RGB, got {batch.shape} {batch.dtype}")
        h, w = batch.shape[1:3]
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        x = x.flip(-1).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # RGB->BGR as cv2.imread gives, [-1, 1]
        pad_h, pad_w = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
        net_in = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        net_in = net_in.to(self.dtype).contiguous(memory_format=torch.channels_last)
        y = self.model(net_in)[..., :h, :w].float()
        y = guided_filter(x, y)
        y = ((y + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8)  # astype(uint8) after clip: truncation
        return y.flip(1).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def check_weights(params: dict) -> None:
    """Registry preflight: the generator weights are found (MissingWeights says how to get them)."""
    resolve_weights(params.get("weights"))


def cartoon(weights=None, batch_pixels: int | None = None, device=None, half: bool | None = None) -> Cartoonizer:
    """Registry factory for `cartoon`: raises `MissingWeights` (saying how to get them) before any work."""
    return Cartoonizer(load_generator(weights, device=device, half=half), batch_pixels=batch_pixels)


def random_cartoonizer(seed: int = 0, device="cpu", batch_pixels: int | None = None) -> Cartoonizer:
    """The same pipeline with seeded random weights: for tests and benchmarks without the checkpoint."""
    gen = torch.Generator().manual_seed(seed)
    model = WhiteBoxGenerator()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return Cartoonizer(_prepare(model, None, torch.device(device), None), batch_pixels=batch_pixels)


def split_for_this_process(items: list) -> list:
    """This process's contiguous share of `items` under `accelerate launch` or torchrun (all when alone).

    `cpu=True` without CUDA matters: a bare `PartialState()` on a CPU-only machine ignores WORLD_SIZE
    and gives every process everything.
    """
    from accelerate import PartialState

    with PartialState(cpu=not torch.cuda.is_available()).split_between_processes(list(items)) as mine:
        return list(mine)

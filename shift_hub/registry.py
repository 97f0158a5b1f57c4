"""The one table of shift configs. CLI choices, builder configs, cards and tests all read REGISTRY.

A config is one (shift, parameters, severity) combination as a `datasets` config name. The
transform itself lives in `shift_hub.shifts.<family>` and is named here as "module:function" so
that listing the registry imports no heavy dependency (torch, OpenCV) until a shift actually runs.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .params import BadParameter, Param, describe_params, validate

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
    # The defaults, a plain dict. In the registry each value is written as a `Param` (type, range, choices
    # next to the default); __post_init__ moves those declarations to `param_specs`, keeping `params` plain.
    params: Mapping = field(default_factory=dict)
    severity: int | None = None
    geometry: Geometry = STANDARD
    encoding: Encoding = Encoding()
    needs: frozenset = frozenset()
    group: str | None = None  # e.g. "imagenet_c": lets the CLI expand one name into many configs
    deviation: str | None = None  # how this differs from the published dataset, if it does
    # The Hub licence id of something the images are made with that restricts them (e.g. "cc-by-nc-4.0"), and
    # what it covers: the card's licence section says "made with <licence_of> released under <licence>".
    # None: read a "CC BY-..." mention in the description (the weights of older entries).
    licence: str | None = None
    licence_of: str = "model weights"
    channels: int = 3  # 4 for RGBA outputs
    # GPU families: `fn(**params)` is a factory called once per worker, returning a callable
    # `(images: list[uint8 HxWx3], rngs: list[Generator]) -> list[uint8 array]` run on batches.
    batched: bool = False
    # "module:function" called with the params before anything is written: raises OSError/ValueError
    # (a missing weights or pattern file) so a run fails at once, not after hours of other configs.
    preflight: str | None = None
    # "module:function" (example, image, mask) -> None for configs that keep only some images (ImageNet-9's
    # selection rules): called on the decoded source image with mask=None before any mask is made, then with the
    # object mask; raises imaging.BadImage to skip the image with its reason.
    select: str | None = None
    # String columns this config's rows carry beyond the standard ones (e.g. ("partner_id",)); the shift then
    # returns (image, {column: value}). Configs that declare none keep the standard schema, byte for byte.
    extra_columns: tuple[str, ...] = ()
    # A sequence config (ImageNet-P): the shift returns a list of frames; the row's `image` is frame 0 (so every
    # reader of `image` still works) and its `frames` column holds all of them. Other configs keep their schema.
    frames: bool = False
    # False for a config that holds no images to classify (in9_fg_mask, the Backgrounds Challenge's foreground
    # masks): never scored as top-1, no per-config accuracy or eval.yaml task; evaluate reads it where a score needs it.
    scored: bool = True
    # key -> Param: each parameter's declared type and domain (see shift_hub/params.py); every registry
    # parameter has one (tests/test_params.py), overrides are validated against it (validate_overrides).
    param_specs: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        declared = {k: v for k, v in self.params.items() if isinstance(v, Param)}
        if declared:
            object.__setattr__(self, "params", {k: v.default if isinstance(v, Param) else v
                                                for k, v in self.params.items()})
            object.__setattr__(self, "param_specs", {**self.param_specs, **declared})

    def param(self, key: str) -> Param:
        """The declaration of `key` (KeyError if not a parameter); undeclared keys of entries made outside
        the registry get an unchecked Param(kind="any")."""
        default = self.params[key]
        return self.param_specs.get(key) or Param("any", default)

    def load_fn(self) -> Callable | None:
        return load(self.fn)


def load(target: str | None) -> Callable | None:
    """The callable a registry entry names as "module:function" (fn, preflight, select), or None."""
    if not target:
        return None
    module, _, attr = target.partition(":")
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

# ---- ImageNet-C (issue 4): 15 corruptions + 4 extras x 5 severities --------------------------------
# Functions and parameter tables: shift_hub/shifts/corruptions.py. Fidelity: tests/test_corruptions.py.

IMAGENET_C_BIBTEX = """@inproceedings{hendrycks2019benchmarking,
  title={Benchmarking Neural Network Robustness to Common Corruptions and Perturbations},
  author={Hendrycks, Dan and Dietterich, Thomas},
  booktitle={International Conference on Learning Representations},
  year={2019}
}"""
IMAGENET_C_ENCODING = Encoding(quality=85, optimize=True)  # make_imagenet_c.py: save(quality=85, optimize=True)
_IC_RANDOM = ("Random draws come from the per-image generator (seed, config, image id) instead of the original's "
              "global MT19937 stream, in the original's order, shapes and distributions: the pattern differs per "
              "image, its law does not (replaying the original's own draws reproduces its output, tested).")
_IC_MAGICK = ("The original ran ImageMagick's MotionBlurImage through Wand; this restates it in NumPy (taps, "
              "weights, edge replication, Q16 rounding then 8-bit truncation), no ImageMagick at run time: "
              "identical to Wand 0.7.2 / ImageMagick 6.9.11-60 Q16 on the fixture image at all five severities "
              "with the same draws. imagecorruptions 1.1.2 re-implements the kernel but truncates the unrounded "
              "sum (0.1-0.3% of values one grey level lower).")
# name: (group, title, what it does, deviation from the published data or from imagecorruptions 1.1.2)
IMAGENET_C_CORRUPTIONS: dict[str, tuple[str, str, str, str | None]] = {
    "gaussian_noise": ("imagenet_c", "Gaussian noise", "additive Gaussian noise", _IC_RANDOM),
    "shot_noise": ("imagenet_c", "Shot noise", "Poisson (photon-count) noise", _IC_RANDOM),
    "impulse_noise": ("imagenet_c", "Impulse noise", "salt-and-pepper noise (skimage random_noise 's&p')", _IC_RANDOM),
    "defocus_blur": ("imagenet_c", "Defocus blur", "convolution with an anti-aliased disk", None),
    "glass_blur": ("imagenet_c", "Glass blur", "Gaussian blur, local pixel shuffling, Gaussian blur again",
                   _IC_RANDOM + " The original's 'swap' is a one-way copy (NumPy view aliasing); kept, in the "
                   "same sequential order, computed without the per-pixel Python loop."),
    "motion_blur": ("imagenet_c", "Motion blur", "one-sided motion blur at a random angle in [-45, 45] degrees",
                    _IC_RANDOM + " " + _IC_MAGICK),
    "zoom_blur": ("imagenet_c", "Zoom blur", "average of centre zooms (scipy zoom, order 1)", None),
    "snow": ("imagenet_c", "Snow", "motion-blurred snow flakes over a brightened image",
             _IC_RANDOM + " " + _IC_MAGICK + " Unlike imagecorruptions, the flake layer is "
             "cast to 8 bits before the blur, as the original's PNG round trip did."),
    "frost": ("imagenet_c", "Frost", "a random crop of a frost photograph blended over the image",
              _IC_RANDOM + " Quirk kept: only the first five of the six photographs are ever drawn (randint(5)). "
              "imagecorruptions 1.1.2 rescales the photograph by 1.1 (bicubic) before cropping; the original, and "
              "this, crops it unscaled (photographs are only scaled up for images larger than them, never at 224)."),
    "fog": ("imagenet_c", "Fog", "plasma-fractal (diamond-square) fog", _IC_RANDOM),
    "brightness": ("imagenet_c", "Brightness", "HSV value raised", None),
    "contrast": ("imagenet_c", "Contrast", "values pulled towards the per-channel means", None),
    "elastic_transform": ("imagenet_c", "Elastic transform", "random affine warp, then smooth elastic displacement",
                          _IC_RANDOM + " Parameters follow make_imagenet_c.py (the '244' table with its random "
                          "affine step); imagecorruptions 1.1.2 uses a different table (no affine, sigma 1% of the "
                          "side, alpha 12.5-30). The affine warp reproduces OpenCV 3/4's fixed-point warpAffine "
                          "(1/32-pixel table weights) on any OpenCV, since OpenCV 5 changed it."),
    "pixelate": ("imagenet_c", "Pixelate", "BOX downsampling then BOX upsampling",
                 "None from the published data; imagecorruptions 1.1.2 upsamples with NEAREST, the original "
                 "(and this) with BOX."),
    "jpeg_compression": ("imagenet_c", "JPEG compression", "JPEG re-encoding at quality 25-7",
                         "Encoded by the installed Pillow/libjpeg-turbo, which may differ from the 2018 build's "
                         "quantisation at the margins."),
    "speckle_noise": ("imagenet_c_extra", "Speckle noise", "multiplicative Gaussian noise", _IC_RANDOM),
    "gaussian_blur": ("imagenet_c_extra", "Gaussian blur", "Gaussian blur (skimage.filters.gaussian)", None),
    "spatter": ("imagenet_c_extra", "Spatter", "water drops (severities 1-3) or mud splashes (4-5)", _IC_RANDOM),
    "saturate": ("imagenet_c_extra", "Saturate", "HSV saturation scaled and shifted", None),
}


def _imagenet_c() -> list[ShiftSpec]:
    specs = []
    for name, (group, title, what, deviation) in IMAGENET_C_CORRUPTIONS.items():
        where = "the 15 ImageNet-C corruptions" if group == "imagenet_c" else "the 4 extra ImageNet-C corruptions"
        for severity in range(1, 6):
            specs.append(ShiftSpec(
                name=f"{name}_{severity}",
                family="corruptions",
                fn=f"shift_hub.shifts.corruptions:{name}",
                description=f"ImageNet-C {title}, severity {severity} of 5 ({where}): {what}. Resize 256, centre "
                "crop 224, corrupt, JPEG quality 85, with make_imagenet_c.py's parameters.",
                citation=IMAGENET_C_BIBTEX,
                params={"severity": Param(int, severity, min=1, max=5, fixed=True,
                                          help="ImageNet-C severity")},
                severity=severity,
                geometry=STANDARD,
                encoding=IMAGENET_C_ENCODING,
                group=group,
                deviation=deviation,
            ))
    return specs


_IMAGENET_C = _imagenet_c()

# --- cartoon family (issue 7): ImageNet-Cartoon's White-box generator, and a weight-free look-alike ---
SALVADOR_BIBTEX = """@inproceedings{salvador2022imagenetcartoon,
  title={ImageNet-Cartoon and ImageNet-Drawing: two domain shift datasets for ImageNet},
  author={Salvador, Tiago and Oberman, Adam M.},
  booktitle={ICML 2022 Workshop on Shift Happens},
  year={2022}
}"""
_CARTOON_BIBTEX = SALVADOR_BIBTEX + """
@inproceedings{wang2020whitebox,
  title={Learning to Cartoonize Using White-box Cartoon Representations},
  author={Wang, Xinrui and Yu, Jinze},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages={8090--8099},
  year={2020}
}"""

_CARTOON = [
    ShiftSpec(
        name="cartoon",
        family="cartoon",
        fn="shift_hub.shifts.cartoon:cartoon",
        description="ImageNet-Cartoon: each image cartoonized by the White-box Cartoonization generator "
        "(official checkpoint model-33999, run in torch) and its guided filter (r 1, eps 5e-3), on BGR in "
        "[-1, 1], output clipped to uint8.",
        citation=_CARTOON_BIBTEX,
        params={"weights": Param("path", None, nullable=True,
                                 help="--weights: a .safetensors file, the converted folder or a Hub repo id; "
                                 "null: $SHIFT_HUB_WHITEBOX, else the file `shift-hub convert-whitebox` writes")},
        preflight="shift_hub.shifts.cartoon:check_weights",
        geometry=Geometry(max_shorter=720, crop_multiple=8),
        encoding=Encoding(quality=95),
        needs=frozenset({GPU, WEIGHTS}),
        batched=True,
        deviation="Same network, weights and preprocessing, run in torch instead of TF 1.12 (half precision on "
        "CUDA), so pixels can differ by rounding; JPEG written by PIL instead of cv2.imwrite (both libjpeg, "
        "quality 95). The weights are CC BY-NC-SA 4.0: the generated data inherits non-commercial, "
        "share-alike terms.",
    ),
    ShiftSpec(
        name="cartoon_classic",
        family="cartoon",
        fn="shift_hub.shifts.cartoon_classic:cartoon_classic",
        # declared here, not only in the module, so that it enters the shards' fingerprint: folders made with
        # the earlier 2 MP value are refused on resume instead of mixing two segmentations
        params={"segment_max_pixels": Param(int, 1_000_000, min=65_536, help="images above this many pixels "
                                            "are segmented on an area-averaged copy of this size (bounds memory)")},
        description="A weight-free cartoon from White-box Cartoonization's hand-made representations: a "
        "self-guided-filter surface blended with Felzenszwalb superpixels in adaptive colours, with dark "
        "contours where the superpixel colours jump.",
        citation=_CARTOON_BIBTEX,
        geometry=FULL,
        encoding=Encoding(quality=95),
        deviation="Images above 1 megapixel are segmented (Felzenszwalb, segment colours) on an area-averaged "
        "1-megapixel copy to bound memory. Not ImageNet-Cartoon: no trained generator is involved. It borrows the "
        "representations "
        "White-box trains towards, so it resembles but does not reproduce ImageNet-Cartoon; use `cartoon` "
        "(needs the official weights) for the published dataset.",
    ),
]

# ---- drawing (ImageNet-Drawing) and toon (ToonNet): issue 5 -----------------------------------------

PENCIL_BIBTEX = """@inproceedings{lu2012combining,
  title={Combining Sketch and Tone for Pencil Drawing Production},
  author={Lu, Cewu and Xu, Li and Jia, Jiaya},
  booktitle={International Symposium on Non-Photorealistic Animation and Rendering (NPAR)},
  pages={65--73}, year={2012}
}
""" + SALVADOR_BIBTEX

TOONNET_BIBTEX = """@inproceedings{zhou2018toonnet,
  title={ToonNet: a cartoon image dataset and a DNN-based semantic classification system},
  author={Zhou, Yanqing and Jin, Yongxu and Luo, Anqi and Chan, Szeyu and Xiao, Xiangyun and Yang, Xubo},
  booktitle={Proceedings of the 16th ACM SIGGRAPH International Conference on Virtual-Reality Continuum and its Applications in Industry (VRCAI)},
  year={2018}, doi={10.1145/3284398.3284403}
}"""

_PENCIL_CALL = dict(  # shift_hub/shifts/drawing.py: pencil_drawing (defaults = PUBLISHED_CALL there)
    kernel_size=Param(int, 8, min=1, max=128, help="line kernel half-length: the kernel is (2k+1) px square"),
    stroke_width=Param(int, 0, min=0, max=128, help="extra rows either side of the 1 px line"),
    directions=Param(int, 8, min=1, max=128, help="stroke directions (180/n degrees apart)"),
    gradient=Param(str, "sobel", choices=("sobel", "forward"), help="sobel: 5x5 Sobel; forward: the port's differences"),
    w_group=Param(int, 2, choices=(0, 1, 2), help="the port's tone weight group (2: bright 2, mild 22, dark 76)"),
    stroke_darkness=Param(float, 2.0, min=0, min_exclusive=True, max=10, help="exponent of the stroke map"),
    tone_darkness=Param(float, 1.5, min=0, min_exclusive=True, max=10, help="exponent of the texture"),
    smoothness=Param(str, "port", choices=("port", "paper"), help="port: its 1-D operator; paper: the 2-D gradient"),
    lam=Param(float, 0.2, min=0, min_exclusive=True, max=100, help="texture smoothness weight lambda"),
)
_PATTERN_HELP = ("a pencil pattern image path, or a published pattern's file name (or I, II, III, IV) found in "
                 "$SHIFT_HUB_DRAWING_PATTERNS; null or 'synthetic': the synthetic texture")
_PENCIL_HOW = (
    "Colour pencil drawing of Lu, Xu & Jia (NPAR 2012) as imagenet-shift made ImageNet-Drawing with the "
    "image2pencil-drawing port, at full resolution: only Y of YUV is redrawn, as stroke map squared times "
    "texture (pencil pattern stretched to the image, beta solved with lambda 0.2, raised to 1.5), chroma "
    "kept, clipped to [0, 1], JPEG quality 95. Stroke map: 5x5 Sobel magnitude of Y, 17x17 line kernel in "
    "8 directions (the call's stroke_width=1 never took effect in the port, so lines are 1 px: "
    "stroke_width=0 here). Tone: the port's weight group 2 (bright 2, mild 22, dark 76 x 0.01), "
    "sigma_b 9, u_a 105, u_b 225, mu_d 90, sigma_d 11, histogram matching with the port's quirks. The "
    "texture system is the port's (lambda (I + D D^T), D a 1-pixel forward difference along rows), solved "
    "exactly; smoothness='paper' gives the paper's 2-D gradient. Matches a literal re-run of the port "
    "(bench/pencil_reference.py) to within 1 grey level."
)
_PENCIL_VARIANTS = [  # (config, pattern file, dataset it regenerates)
    ("drawing_pattern_i", "drawing-pattern-I.jpg", "ImageNet-Drawing"),
    ("drawing_pattern_ii", "drawing-pattern-II.jpg", "ImageNet-Drawing-II"),
    ("drawing_pattern_iii", "drawing-pattern-III.png", "ImageNet-Drawing-III"),
    ("drawing_pattern_iv", "drawing-pattern-IV.jpg", "ImageNet-Drawing-IV"),
]

_DRAWING = [
    ShiftSpec(
        name="drawing",
        family="drawing",
        fn="shift_hub.shifts.drawing:pencil_drawing",
        description="ImageNet-Drawing's pipeline with a SYNTHETIC pencil texture (the published patterns "
        "cannot ship). " + _PENCIL_HOW + " Pass `pattern` (a path) to use a real pattern file, or use the "
        "drawing_pattern_* configs.",
        citation=PENCIL_BIBTEX,
        params=dict(pattern=Param("path", None, nullable=True, help=_PATTERN_HELP), **_PENCIL_CALL),
        preflight="shift_hub.shifts.drawing:check_pattern",
        geometry=FULL,
        encoding=Encoding(quality=95),
        deviation="Not the published ImageNet-Drawing: the pencil texture is synthesised deterministically "
        "(fixed seed; strokes and paper grain matched to pattern I's mean 0.676 and spread 0.073) instead "
        "of imagenet-shift's pattern I photograph, so textures differ pixel for pixel while strokes, tone "
        "and colour follow the published pipeline. Flat or near-black images, where the port wrote NaN, "
        "get no strokes / a floored tone instead.",
    ),
    *[
        ShiftSpec(
            name=name,
            family="drawing",
            fn="shift_hub.shifts.drawing:pencil_drawing",
            description=f"{dataset}: " + _PENCIL_HOW + f" Pattern {file}, which the package cannot ship: "
            "put imagenet-shift's src-imagenet-drawing/drawing-patterns folder (from "
            "taldatech/image2pencil-drawing) in $SHIFT_HUB_DRAWING_PATTERNS.",
            citation=PENCIL_BIBTEX,
            params=dict(pattern=Param("path", file, nullable=True, help=_PATTERN_HELP), **_PENCIL_CALL),
            preflight="shift_hub.shifts.drawing:check_pattern",
            geometry=FULL,
            encoding=Encoding(quality=95),
            needs=frozenset({WEIGHTS}),  # an external file, like model weights: not in `all-cpu`
            group="imagenet_drawing",
            deviation="Pixels can differ by 1 grey level from a run of the port where its CG stopped at "
            "tolerance 1e-6 (we solve exactly); images are decoded with PIL rather than OpenCV.",
        )
        for name, file, dataset in _PENCIL_VARIANTS
    ],
]

_TOON = [
    ShiftSpec(
        name="toon_handdrawn",
        family="toon",
        fn="shift_hub.shifts.toon:toon_handdrawn",
        description="ToonNet's hand-drawing stylization filter (Zhou et al., VRCAI 2018) at full resolution: "
        "SLIC superpixels on colour and location (one per ~900 px, compactness 12; segmented on a copy at most "
        "1024 px long), each filled with a "
        "synthetic greyscale pencil hatching rotated by a random angle (per-image rng), the hatching darkened "
        "to the pixel's lightness, segment borders drawn as pencil outlines (strength 0.35), and the "
        "segment's mean chroma mapped back onto the pencil luminance. JPEG quality 95.",
        citation=TOONNET_BIBTEX,
        params=dict(  # shift_hub/shifts/toon.py: toon_handdrawn (defaults = HANDDRAWN there)
            segment_area=Param(int, 900, min=1, help="pixels per SLIC superpixel"),
            compactness=Param(float, 12.0, min=0, min_exclusive=True, max=1000, help="SLIC colour-vs-location trade-off"),
            max_segments=Param(int, 4000, min=1, help="at most this many superpixels"),
            segment_max_side=Param(int, 1024, min=32, help="segment a copy at most this long (px); smaller is flat"),
            outline_strength=Param(float, 0.35, min=0, max=1, help="darkness of segment borders (0: none)"),
            chroma_strength=Param(float, 1.0, min=0, max=2, help="1: the segment's mean chroma, 0: grey pencil"),
        ),
        geometry=FULL,
        encoding=Encoding(quality=95),
        group="toonnet",
        deviation="ToonNet published neither code, parameters nor its stylised images: the segmentation, "
        "texture, tone mapping and every number here are our choices following the paper's description. "
        "ToonNet's 3-D routes (cel-shaded 3-D model renders, MagicToon 2D-3D-2D) are out of scope.",
    ),
    ShiftSpec(
        name="toon_ius",
        family="toon",
        fn="shift_hub.shifts.toon:toon_ius",
        description="ToonNet's Inputs Unified Stylization (Zhou et al., VRCAI 2018) at full resolution "
        "(filtered at most 1024 px on the long side, scaled back nearest): mean-shift filtering (spatial 8, "
        "colour 24), HSV masks for background (S < 40 and V > 205 of 255: painted white) and outlines "
        "(V < 48: black), then regions grown breadth-first from the most saturated unassigned pixel over "
        "4-neighbours of close hue (12 degrees, value within 40), or close value (28) for grey seeds, light "
        "unmasked pixels (V >= 190) joining any region; each region takes its mean filtered colour. "
        "Deterministic. JPEG quality 95.",
        citation=TOONNET_BIBTEX,
        params=dict(  # shift_hub/shifts/toon.py: toon_ius (defaults = IUS there); HSV values are 8-bit
            work_max_side=Param(int, 1024, min=32, help="filter a copy at most this long (px); smaller is flat"),
            spatial_radius=Param(int, 8, min=0, max=100, help="mean-shift window (px)"),
            colour_radius=Param(int, 24, min=0, max=255, help="mean-shift colour window (8-bit units)"),
            background_max_saturation=Param(int, 40, min=0, max=255, help="background: saturation below this ..."),
            background_min_value=Param(int, 205, min=0, max=255, help="... and value above this"),
            outline_max_value=Param(int, 48, min=0, max=255, help="outline: value below this"),
            chromatic_min_saturation=Param(int, 40, min=0, max=255, help="below: grey, grown by value"),
            hue_tolerance=Param(int, 6, min=0, max=90, help="OpenCV hue units (0-179, circular)"),
            value_band=Param(int, 40, min=0, max=255, help="colour regions: value within this of the seed's"),
            value_tolerance=Param(int, 28, min=0, max=255, help="grey regions: value within this of the seed's"),
            light_min_value=Param(int, 190, min=0, max=255, help="unmasked pixels this light join any region"),
            max_regions=Param(int, 600, min=0, help="regions grown at most; leftovers keep the mean-shift colour"),
            region_colour=Param(str, "mean", choices=("mean", "seed"), help="a region's mean colour, or its seed's"),
        ),
        geometry=FULL,
        encoding=Encoding(quality=95),
        group="toonnet",
        deviation="ToonNet published neither code nor parameters: thresholds, mean-shift radii, the value "
        "band that keeps light and shade apart, the region colour (mean rather than the seed's) and the "
        "working-size cap are our choices following the paper's description. ToonNet's 3-D routes are out "
        "of scope.",
    ),
]

# ---- XImageNet-12 backgrounds (issue 6): the object kept, the background changed ----------------------
# Functions: shift_hub/shifts/ximagenet.py; masks: shift_hub/masks.py. Tests: tests/test_ximagenet.py.
XIMAGENET12_BIBTEX = """@inproceedings{li2024ximagenet,
  title={{XIMAGENET}-12: An Explainable Visual Benchmark Dataset for Model Robustness Evaluation},
  author={Li, Qiang and Zhang, Dan and Lei, Shengzhao and Zhao, Xun and Li, WeiWei and Kamnoedboon, Porawit and Dong, Junhao and Li, Shuyan},
  booktitle={Synthetic Data for Computer Vision Workshop @ CVPR 2024},
  year={2024},
  url={https://openreview.net/forum?id=4tbbxtGwou}
}"""

_XIMAGENET_MASKS = ("The object mask comes from polygon annotations (--polygons: LabelMe / V7 / COCO JSON or "
                    "mask PNGs, as XImageNet-12's own masks were drawn), a segmentation model (--mask-model), or "
                    "the ILSVRC boxes refined by OpenCV GrabCut (5 iterations on a copy at most 512 px on its longer side, seeded per image)")
_XIMAGENET_MASK_DEVIATION = ("XImageNet-12 used hand-drawn polygon masks; with ILSVRC boxes the mask is GrabCut's, "
                             "a coarser object outline, unless polygons are given.")


def _background_color(color: str) -> Param:
    return Param(str, color, choices=("red", "green", "blue", "grey"), fixed=True,
                 help="the background colour; choose another color_bg_* config to change it")


def _ximagenet12() -> list[ShiftSpec]:
    fn = "shift_hub.shifts.ximagenet:"
    common = dict(family="ximagenet", citation=XIMAGENET12_BIBTEX, geometry=FULL, encoding=Encoding(quality=95),
                  needs=frozenset({MASKS}), group="ximagenet12")
    hues = {"red": "[0,29] or [150,180] (one of the two ranges first, then a hue in it)", "green": "[30,89]",
            "blue": "[90,149]"}
    blur = dict(ksize=Param(int, 15, odd=True, min=1, max=255, help="OpenCV GaussianBlur kernel side"),
                sigma=Param(float, 3.0, min=0, max=100, help="Gaussian sigma (0: from ksize, as OpenCV)"))
    specs = [
        ShiftSpec(name="blur_bg", fn=fn + "blur_bg", params=dict(blur),
                  description="Blurred background: the image blurred with a 15x15 Gaussian (sigma 3, OpenCV) "
                  "outside the object mask, the object's pixels unchanged, at full resolution. " + _XIMAGENET_MASKS + ".",
                  deviation=_XIMAGENET_MASK_DEVIATION, **common),
        ShiftSpec(name="blur_obj", fn=fn + "blur_obj", params=dict(blur),
                  description="Blurred object: the object region replaced by the 15x15 Gaussian blur (sigma 3) "
                  "of the whole image, the background unchanged. " + _XIMAGENET_MASKS + ".",
                  deviation=_XIMAGENET_MASK_DEVIATION, **common),
    ]
    for color, text in hues.items():
        specs.append(ShiftSpec(
            name=f"color_bg_{color}", fn=fn + "color_bg", params=dict(color=_background_color(color)),
            description=f"{color.capitalize()} background: in HSV (OpenCV, hue 0-180) the background's hue is set to "
            f"one constant per image drawn from {text}, saturation and value kept; the object unchanged. "
            + _XIMAGENET_MASKS + ".", deviation=_XIMAGENET_MASK_DEVIATION, **common))
    specs += [
        ShiftSpec(name="color_bg_grey", fn=fn + "color_bg", params=dict(color=_background_color("grey")),
                  description="Grey background: the background's HSV saturation set to 0 (each pixel becomes "
                  "its HSV value, the maximum of R, G, B), the object unchanged. " + _XIMAGENET_MASKS + ".",
                  deviation="XImageNet-12 reports a Color_grey scenario but its published code has no grey "
                  "variant: this definition (saturation 0) is ours. " + _XIMAGENET_MASK_DEVIATION, **common),
        ShiftSpec(name="seg_img", fn=fn + "seg_img",
                  description="Segmented image: RGBA PNG whose alpha is 255 on the object and 0 on the "
                  "background (RGB untouched underneath), as XImageNet-12's transparent images. "
                  + _XIMAGENET_MASKS + ".", deviation=_XIMAGENET_MASK_DEVIATION, channels=4,
                  **{**common, "encoding": PNG}),
        ShiftSpec(name="seg_img_rgb", fn=fn + "seg_img_rgb",
                  description="Segmented image on black: the object's pixels, everything else black (RGB), "
                  "for models that take no alpha. " + _XIMAGENET_MASKS + ".",
                  deviation="An RGB companion to seg_img; XImageNet-12 made such images as the input of its "
                  "random-background step. " + _XIMAGENET_MASK_DEVIATION, **common),
        ShiftSpec(name="rand_bg", fn=fn + "rand_bg", params=dict(composite=Param(
                      str, "add", choices=("add", "alpha"), help="add: the published saturating sum; alpha: paste")),
                  description="Random real background: the object on black, resized (bilinear) to a photo "
                  "of another class of the source drawn with the image's generator (class first, then image; "
                  "the photo keeps its own object), and combined with cv2.addWeighted(bg, 1, fg, 1, 0), the "
                  "saturating sum XImageNet-12 published. The output has the background photo's size. "
                  + _XIMAGENET_MASKS + ".",
                  deviation="XImageNet-12 took backgrounds from one fixed unrelated class folder; here they "
                  "come from the other classes of the source being generated. composite='alpha' (not in the "
                  "registry) pastes the object instead of adding it. " + _XIMAGENET_MASK_DEVIATION, **common),
        ShiftSpec(name="ai_bg", fn=fn + "ai_bg",
                  params=dict(
                      model_id=Param("path", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                                     help="SDXL inpainting Hub id or local folder (--inpaint-model replaces it)"),
                      steps=Param(int, 30, min=1, max=1000, help="denoising steps"),
                      guidance_scale=Param(float, 7.5, min=0, max=50, help="classifier-free guidance"),
                      strength=Param(float, 0.99, min=0, min_exclusive=True, max=1,
                                     help="how much of the background is repainted"),
                      resolution=Param(int, 1024, choices=(512, 768, 1024),
                                       help="SDXL bucket scale (1024: its training size)")),
                  description="AI-generated background: everything outside the object mask regenerated by SDXL "
                  "inpainting (diffusers StableDiffusionXLInpaintPipeline, diffusers/stable-diffusion-xl-1.0-"
                  "inpainting-0.1 unless --inpaint-model says otherwise; 30 steps, guidance 7.5, strength 0.99) "
                  "at the SDXL training size nearest the photo's aspect ratio (1024x1024, 1152x896, 1216x832, "
                  "1344x768, 1536x640 or their transposes), resized back, the object's "
                  "pixels pasted back unchanged. Prompt: 'a high-resolution photograph of a {class name} {scene}, "
                  "natural lighting, sharp focus, realistic', the scene one of three per XImageNet-12 class "
                  "(four generic ones otherwise; lists in shift_hub/shifts/ximagenet.py: SCENES), negative "
                  "prompt 'text, watermark, logo, frame, border, cartoon, drawing, painting, blurry, low quality, "
                  "deformed, extra {class name}, duplicate'. Per image the generator for (seed, config, image id) "
                  "draws the scene index, then the diffusion seed (integers below 2**31-1) of a CPU torch "
                  "Generator, so every prompt and seed is recoverable. " + _XIMAGENET_MASKS + ".",
                  deviation="XImageNet-12 did not publish its prompts, model settings or seeds (it names SDXL and "
                  "Stable Diffusion 1.5/2.0): the prompts, scenes and settings are ours. "
                  + _XIMAGENET_MASK_DEVIATION, batched=True,
                  **{**common, "needs": frozenset({MASKS, GPU, WEIGHTS})}),
    ]
    return specs


_XIMAGENET12 = _ximagenet12()

# ---- ImageNet-C-bar (issue 25) ------------------------------------------------------------------------
# Functions: shift_hub/shifts/imagenet_c_bar.py. Fidelity: tests/test_imagenet_c_bar.py.
# Speed: bench/bench_corruptions_bar.py.
MINTUN_BIBTEX = """@inproceedings{mintun2021interaction,
  title={On Interaction Between Augmentations and Corruptions in Natural Corruption Robustness},
  author={Mintun, Eric and Kirillov, Alexander and Xie, Saining},
  booktitle={Advances in Neural Information Processing Systems},
  volume={34},
  year={2021}
}"""
_CBAR_RANDOM = ("Random draws come from the per-image generator (seed, config, image id) instead of the original's "
                "global np.random stream and the RandomState(seed) it seeded per image for the pattern's own numbers: "
                "each draw keeps its role, order, shape and distribution (the seed draw itself has no counterpart), "
                "so the pattern differs per image, its law does not (replaying the original's draws reproduces its "
                "output, tested).")
# name: (title, what it does, the five levels of imagenet_c_bar.csv, deviation from the published data)
IMAGENET_C_BAR_CORRUPTIONS: dict[str, tuple[str, str, tuple[float, ...], str]] = {
    "caustic_refraction": ("Caustic refraction", "the image refracted through, and lit by, a rippled-glass caustic "
                           "pattern", (2.35, 3.2, 4.9, 6.6, 9.15),
                           _CBAR_RANDOM + " The refraction vector is computed in closed form from the original's "
                           "angles (it inverted a rotation matrix): the same vector to far below its 3-decimal "
                           "rounding. The sample is taken in float64, as the original's code does under NumPy 2; "
                           "under the NumPy 1.19 it ran with, interior pixels were sampled in float32 (with NumPy "
                           "1.24's same casting, 5 values in 2.3 million one grey level apart)."),
    "inverse_sparkles": ("Inverse sparkles", "white everywhere but a starburst-shaped hole around a random centre",
                         (1.0, 2.0, 4.0, 9.0, 10.0), _CBAR_RANDOM),
    "sparkles": ("Sparkles", "five white starbursts at random centres", (1.0, 2.0, 3.0, 5.0, 6.0), _CBAR_RANDOM),
    "perlin_noise": ("Perlin noise", "Perlin turbulence blended over the image", (4.6, 5.2, 5.8, 7.6, 8.8),
                     _CBAR_RANDOM + " Quirk kept: a lattice gradient drawn as (0, 0) normalises to NaN (about 1 "
                     "image in 1,000) and the pixels that use it come out black, as NumPy's cast of NaN gave the "
                     "original."),
    "blue_noise_sample": ("Blue noise sample", "pixels kept where a blue-noise field exceeds a threshold, black "
                          "elsewhere", (0.8, 1.6, 2.4, 4.0, 5.6), _CBAR_RANDOM),
    "plasma_noise": ("Plasma noise", "an iterated domain-warp colour field blended over the image",
                     (4.75, 7.0, 8.5, 9.25, 10.0), _CBAR_RANDOM),
    "checkerboard_cutout": ("Checkerboard cutout", "cells of a rotated checkerboard greyed out at random",
                            (2.0, 3.0, 4.0, 5.0, 6.0), _CBAR_RANDOM),
    "cocentric_sine_waves": ("Cocentric sine waves", "concentric rings with a wobbling radius added to the image",
                             (3.0, 5.0, 8.0, 9.0, 10.0), _CBAR_RANDOM),
    "single_frequency_greyscale": ("Single-frequency greyscale", "a plane grey sine wave added to the image",
                                   (1.0, 1.5, 2.0, 4.5, 5.0), _CBAR_RANDOM),
    "brownish_noise": ("Brownish noise", "low-frequency Fourier noise added per channel", (1.0, 2.0, 3.0, 4.0, 5.0),
                       _CBAR_RANDOM),
}


def _imagenet_c_bar() -> list[ShiftSpec]:
    specs = []
    for name, (title, what, levels, deviation) in IMAGENET_C_BAR_CORRUPTIONS.items():
        for severity, level in enumerate(levels, start=1):
            specs.append(ShiftSpec(
                name=f"{name}_{severity}",
                family="imagenet_c_bar",
                fn=f"shift_hub.shifts.imagenet_c_bar:{name}",
                description=f"ImageNet-C-bar {title}, severity {severity} of 5 (the 10 ImageNet-C-bar corruptions): "
                f"{what}. Resize 256, centre crop 224, corrupt, JPEG quality 85, as make_imagenet_c_bar.py, with "
                "corrupt.py's parameters at this severity's level in imagenet_c_bar.csv.",
                citation=MINTUN_BIBTEX,
                params={"level": Param(float, level, min=0, max=10, fixed=True,
                                       help="the original's severity value for this config (imagenet_c_bar.csv, "
                                       "0-10 scale)")},
                severity=severity,
                geometry=STANDARD,
                encoding=IMAGENET_C_ENCODING,
                group="imagenet_c_bar",
                deviation=deviation,
            ))
    return specs


_IMAGENET_C_BAR = _imagenet_c_bar()

# ---- 3DCC's image-space corruptions (issue 25) --------------------------------------------------------
# Functions and tables: shift_hub/shifts/corruptions_3dcc.py. Fidelity: tests/test_3dcc_watermark.py.
KAR_3DCC_BIBTEX = """@inproceedings{kar20223dcc,
  title={3D Common Corruptions and Data Augmentation},
  author={Kar, O{\\u{g}}uzhan Fatih and Yeo, Teresa and Atanov, Andrei and Zamir, Amir},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2022}
}"""
_3DCC_ENCODING = Encoding(quality=75)  # create_non3d.py saves under the source's name: PIL's JPEG default for .JPEG
_3DCC_HOW = ("Resize 256, centre crop 224, corrupt, JPEG quality 75 (PIL's default, what the script's save under "
             "ImageNet's .JPEG names writes). The 3DCC code is CC BY-NC 4.0: the data is for non-commercial use only.")
# one text for the three shifts, so the card lists it once
_3DCC_DEVIATION = ("iso_noise and low_light draw from the per-image generator (seed, config, image id) instead of the "
                   "global np.random stream, in the script's order, shapes and laws (a Poisson count per value, then "
                   "Gaussian noise): the pattern differs per image, its law does not (given the script's own draws "
                   "the output is the script's bit for bit, tested). low_light maps a constant image, on which the "
                   "script divides by zero and fails, to black before the noise. The published ImageNet-3DCC "
                   "archives were not at hand to check their file format.")
# name: (title, what it does)
IMAGENET_3DCC_2D_CORRUPTIONS: dict[str, tuple[str, str]] = {
    "color_quant": ("Color quantization", "each channel posterized to 6 - severity bits (5, 4, 3, 2, 1; PIL "
                    "ImageOps.posterize), deterministic"),
    "iso_noise": ("ISO noise", "Poisson photon noise at 25 photons per unit intensity (at every severity), then "
                  "Gaussian electronic noise of std 0.7 x (0.08, 0.12, 0.18, 0.26, 0.38) on [0, 1], truncated to 8 bits"),
    "low_light": ("Low light", "the image's [min, max] mapped to [0, c] with gamma 2 (imadjust), c = (0.6, 0.5, "
                  "0.4, 0.3, 0.2), then fixed Poisson-Gaussian noise (120 photons per unit intensity, std 0.018, "
                  "the script's third noise level at every severity), truncated to 8 bits"),
}


def _imagenet_3dcc_2d() -> list[ShiftSpec]:
    specs = []
    for name, (title, what) in IMAGENET_3DCC_2D_CORRUPTIONS.items():
        for severity in range(1, 6):
            specs.append(ShiftSpec(
                name=f"{name}_{severity}",
                family="corruptions_3dcc",
                fn=f"shift_hub.shifts.corruptions_3dcc:{name}",
                description=f"3DCC {title}, severity {severity} of 5 (an image-space corruption of 3D Common "
                f"Corruptions, create_3dcc/create_non3d.py): {what}. " + _3DCC_HOW,
                citation=KAR_3DCC_BIBTEX,
                params={"severity": Param(int, severity, min=1, max=5, fixed=True, help="3DCC severity")},
                severity=severity,
                geometry=STANDARD,
                encoding=_3DCC_ENCODING,
                group="imagenet_3dcc_2d",
                deviation=_3DCC_DEVIATION,
                licence="cc-by-nc-4.0",
                licence_of="3DCC's code (create_non3d.py)",
            ))
    return specs


_IMAGENET_3DCC_2D = _imagenet_3dcc_2d()

# ---- ImageNet-W (issue 25) ------------------------------------------------------------------------------
# Function: shift_hub/shifts/watermark.py; the font comes with `pip install 'shift-hub[watermark]'`.
WHAC_A_MOLE_BIBTEX = """@inproceedings{li2023whacamole,
  title={A Whac-A-Mole Dilemma: Shortcuts Come in Multiples Where Mitigating One Amplifies Others},
  author={Li, Zhiheng and Evtimov, Ivan and Gordo, Albert and Hazirbas, Caner and Hassner, Tal and Canton Ferrer, Cristian and Xu, Chenliang and Ibrahim, Mark},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2023}
}"""

_WATERMARK = [
    ShiftSpec(
        name="watermark",
        family="watermark",
        fn="shift_hub.shifts.watermark:watermark",
        description="ImageNet-W: the watermark text 捷径捷径捷径 drawn in white at opacity 0.5 (alpha 128), anchored at "
        "(0.01 w, 0.4 h), in Source Han Serif SC ExtraLight at 36 px (imagenet-w's size for a 224 crop; 62 / 82 / "
        "84 px for 384 / 512 / 518, else int(side / 6.22)) and alpha-composited over the 224 centre crop of the "
        "256-resized image, as imagenet-w's AddWatermark; PNG, so the composited pixels are stored exactly. "
        "Scored with the IN-W gap (top-1 on watermark minus clean) and the carton gap (ImageNet-W's: accuracy on "
        "the images of class 478 carton, watermark minus clean). The font ships in the imagenet-w package: "
        "pip install 'shift-hub[watermark]'. ImageNet-W is CC BY-NC 4.0: the generated data is for "
        "non-commercial use only.",
        citation=WHAC_A_MOLE_BIBTEX,
        params=dict(
            text=Param(str, "捷径捷径捷径", help="the watermark text (ImageNet-W's: 'shortcut' three times)"),
            opacity=Param(float, 0.5, min=0, max=1, help="text alpha = round(opacity x 255)"),
            x_pos=Param(float, 0.01, min=0, max=1, help="left of the text, as a fraction of the width"),
            y_pos=Param(float, 0.4, min=0, max=1, help="top of the text, as a fraction of the height"),
            font_size=Param(int, None, nullable=True, min=1, max=4096,
                            help="px; null: imagenet-w's size for the image width (36 at 224)"),
            font=Param("path", None, nullable=True,
                       help="a font file; null: Source Han Serif SC ExtraLight from the imagenet-w package"),
        ),
        preflight="shift_hub.shifts.watermark:check_font",
        geometry=STANDARD,
        encoding=PNG,
        needs=frozenset({WEIGHTS}),  # the font is an external file (an optional extra): not in `all-cpu`
        licence="cc-by-nc-4.0",
        licence_of="ImageNet-W's package (its font and code)",
        deviation="Drawn on the stored 224 crop; ImageNet-W draws it on each model's own crop (at the table's font "
        "size), so a model with another input size sees this 224 watermark resized. Glyphs are rasterised by the "
        "installed Pillow/FreeType, as running imagenet-w with it would (older builds may differ at glyph edges). "
        "The clean baseline is stored as JPEG quality 95, the watermark losslessly, so the IN-W gap carries "
        "clean's JPEG loss (about a tenth of a point).",
    ),
]

# ---- The Backgrounds Challenge, ImageNet-9 (issue 26) -------------------------------------------------
# Functions and selection: shift_hub/shifts/backgrounds.py; classes: classes.py (IN9_*), label space: evaluation/labels.py; masks:
# shift_hub/masks.py. Fidelity: tests/test_backgrounds.py.
XIAO_BIBTEX = """@inproceedings{xiao2021noise,
  title={Noise or Signal: The Role of Image Backgrounds in Object Recognition},
  author={Xiao, Kai Yuanqing and Engstrom, Logan and Ilyas, Andrew and Madry, Aleksander},
  booktitle={International Conference on Learning Representations},
  year={2021}
}"""


@dataclass(frozen=True)
class ShiftGeometry(Geometry):
    """A geometry the shift applies itself, after the steps that need the whole photo and its box (ImageNet-9
    blacks out, tiles and segments at full resolution, then resizes): the engine hands the shift the source image
    as decoded, and `applied` says what the stored image went through."""

    applied: str = ""

    def describe(self) -> str:
        return self.applied


_IN9_GEOMETRY = ShiftGeometry(applied="at full resolution, then resize shorter side to 256 (NEAREST), center crop "
                              "224x224, as the Backgrounds Challenge's released test images")
_IN9_SELECTION = (
    "Images kept, in every variant alike, as the original generator (main.py) chose them: an ImageNet-9 class, "
    "exactly one box, the box covering at most 90% of the 224 crop of the 256-resized (NEAREST) image and at least "
    "half of its resized area inside that crop, and a GrabCut mask (5 iterations, initialised with the box, on the "
    "full image) covering at least 10% of the box; any other image is skipped with its reason.")
# how the image configs are stored, said differently for the mask config (tests/test_backgrounds_challenge.py)
_IN9_STORED = ("stored once as JPEG 75 (PIL's default, what main.py saved with), where the release cropped main.py's "
               "full-size JPEGs")
_IN9_DEVIATION = (
    "Regenerated from ILSVRC-2012 val and its boxes with the operations of the original generator, not the frozen "
    "download: every selected val image is kept (the published IN-9 has 450 per class chosen by its authors); "
    "GrabCut is the shared mask pipeline's (initialised with the box as a mask, whose last row and column the "
    "original's rectangle leaves out; seeded per image where the original's draws were unseeded and retried; "
    "--polygons or --mask-model replace it); the crop is made from the exact pixels and stored once as JPEG 75 (PIL's "
    "default, what main.py saved with), where the release cropped main.py's full-size JPEGs; the label space keeps "
    "368 classes derived from WordNet 3.0 (the published 370 hold two more wheeled vehicles, which could not be "
    "identified here).")
_IN9_MASK_PARAMS = dict(
    grabcut_iterations=Param(int, 5, min=1, max=100, help="GrabCut iterations (the original's 5)"),
    grabcut_max_side=Param(int, 0, min=0, help="GrabCut on a copy at most this many px on its longer side, the mask "
                           "scaled back (at least 64); 0: the full image, as the original"),
)
# config -> (title, what its image is)
IN9_VARIANTS: dict[str, tuple[str, str]] = {
    "in9_original": ("Original", "the image itself"),
    "in9_only_bg_b": ("Only-BG-B", "the image with its box blacked out"),
    "in9_only_bg_t": ("Only-BG-T", "the image with its box filled by tiling the widest background strip beside "
                      "the box (the left or right strip, full height, or the top or bottom one, full width, whichever "
                      "is larger; a tie goes to the top or bottom strip, and between two equal strips to the right or bottom one), "
                      "tiled from the top-left corner"),
    "in9_no_fg": ("No-FG", "the image with the object's mask blacked out"),
    "in9_only_fg": ("Only-FG", "the object alone on black: the image times its mask"),
}
# config -> (title, which partner's background, the `relation` parameter)
IN9_MIXED: dict[str, tuple[str, str, str]] = {
    "in9_mixed_same": ("Mixed-Same", "another selected image of the same IN-9 class", "same"),
    "in9_mixed_rand": ("Mixed-Rand", "a selected image of a random IN-9 class (drawn uniformly among the classes "
                       "the plan holds, then an image)", "rand"),
    "in9_mixed_next": ("Mixed-Next", "a selected image of the next IN-9 class (fish is followed by dog; a class the "
                       "plan lacks is passed over)", "next"),
}


def _backgrounds() -> list[ShiftSpec]:
    fn = "shift_hub.shifts.backgrounds:"
    common = dict(family="backgrounds", citation=XIAO_BIBTEX, geometry=_IN9_GEOMETRY, encoding=Encoding(quality=75),
                  needs=frozenset({MASKS}), group="backgrounds", select=fn + "select")
    specs = [ShiftSpec(name=name, fn=fn + name.removeprefix("in9_"), params=dict(_IN9_MASK_PARAMS),
                       description=f"ImageNet-9 {title} (the Backgrounds Challenge): {what}, {_IN9_GEOMETRY.applied}. "
                       + _IN9_SELECTION + " Scored in the IN-9 label space (nine classes; a 1000-way model's top-1 "
                       "mapped to its class, 'none' never right).", deviation=_IN9_DEVIATION, **common)
             for name, (title, what) in IN9_VARIANTS.items()]
    for name, (title, partner, relation) in IN9_MIXED.items():
        specs.append(ShiftSpec(
            name=name, fn=fn + "mixed",
            params=dict(relation=Param(str, relation, choices=("same", "rand", "next"), fixed=True,
                                       help="whose background: choose another in9_mixed_* config to change it"),
                        **_IN9_MASK_PARAMS),
            description=f"ImageNet-9 {title} (the Backgrounds Challenge): the object (the image times its mask, "
            "resized shorter side 256 NEAREST and center-cropped 256) pasted wherever it is not pure black onto the "
            f"Only-BG-T image of {partner}, resized and cropped alike; then center crop 224. The partner is drawn "
            "with the image's generator (seed, config, image id) among the planned images that pass the selection, "
            "never the image itself; its id is the row's `partner_id`. " + _IN9_SELECTION + " Scored in the IN-9 "
            "label space; the BG-gap is top-1 on in9_mixed_same minus on in9_mixed_rand.",
            deviation=_IN9_DEVIATION + " Partners come from our generator, not main.py's np.random draw from the "
            "class folder (which could pick the image itself).",
            extra_columns=("partner_id",), **common))
    specs.append(ShiftSpec(
        name="in9_fg_mask", fn=fn + "fg_mask", params=dict(_IN9_MASK_PARAMS), scored=False, channels=1,
        description="ImageNet-9 foreground masks (the Backgrounds Challenge release's fg_mask): the object mask "
        f"in9_only_fg and in9_no_fg are made with, {_IN9_GEOMETRY.applied}, stored losslessly as one grey channel "
        "(255 object, 0 background), one row per in9_original image. Not a classification config: never scored "
        "as top-1; `shift-hub evaluate --backgrounds-challenge N` composites each in9_original foreground through "
        "it onto in9_only_bg_t backgrounds (the challenge score). " + _IN9_SELECTION,
        deviation=_IN9_DEVIATION.replace(_IN9_STORED, "stored losslessly as a PNG of 0/255 (the release stores "
                                         "each 224x224 mask as a .npy of 0/1)"),
        **{**common, "encoding": PNG}))
    return specs


_BACKGROUNDS = _backgrounds()

# ---- ImageNet-P (issue 27) -----------------------------------------------------------------------------
SEQUENCES = "sequences"  # a need: ImageNet-P's 31-frame rows are generated on request, never by `all-cpu`
_P_GEOMETRY = Geometry(resize_shorter=256)  # each frame is center-cropped to 224 by the shift itself
_P_DRAWS = ("random draws come from our generator per (seed, config, image id, frame), not torch's or NumPy's "
            "global state.")
P_STORAGE = {  # --p-encoding -> how the stored frames differ from the release's x264 videos
    "png": "Frames are stored as lossless PNG, where the release is x264 video (its compression is not reproduced)",
    "mp4": "Frames are x264-decoded: each sequence is encoded with the release's ffmpeg settings (libx264 -crf 20, "
           "-tune grain for the noise perturbations; preset veryslow, yuv444p, 1 fps; plus x264's cpu-independent, "
           "so the bytes do not change from run to run) by the libx264 PyAV bundles ({encoder}), not the authors' "
           "ffmpeg build, so the videos (the `video` column) differ in bytes from the release's; `frames` are each "
           "video as OpenCV decodes it, what the ImageNet-P reader sees",
}


def p_deviation(p_encoding: str = "png", encoder: str = "") -> str:
    """ImageNet-P's deviation from the release under `--p-encoding` (an mp4 folder's card names the encoder)."""
    return f"{P_STORAGE[p_encoding].format(encoder=encoder)}; {_P_DRAWS}"


_P_DEVIATION = p_deviation("png")
# config suffix -> (function, params, what frame i is, frame count, group); the group says which of the original's
# sets it is: the test perturbations, their harder difficulties, or the validation perturbations
IMAGENET_P_SEQUENCES: dict[str, tuple[str, dict, str, int, str]] = {
    "gaussian_noise": ("gaussian_noise", dict(sigma=0.03), "frame 0 the crop, frame i > 0 the crop plus fresh "
                       "Gaussian noise of std {sigma} (ToTensor scale), clamped", 31, "imagenet_p"),
    "gaussian_noise_2": ("gaussian_noise", dict(sigma=0.05), "as gaussian_noise with std {sigma} (difficulty 2)",
                         31, "imagenet_p_harder"),
    "gaussian_noise_3": ("gaussian_noise", dict(sigma=0.08), "as gaussian_noise with std {sigma} (difficulty 3)",
                         31, "imagenet_p_harder"),
    "shot_noise": ("shot_noise", dict(rate=300.0), "frame 0 the crop, frame i > 0 fresh Poisson(x * {rate}) / {rate}",
                   31, "imagenet_p"),
    "shot_noise_2": ("shot_noise", dict(rate=120.0), "as shot_noise with rate {rate} (difficulty 2)", 31,
                     "imagenet_p_harder"),
    "shot_noise_3": ("shot_noise", dict(rate=60.0), "as shot_noise with rate {rate} (difficulty 3)", 31,
                     "imagenet_p_harder"),
    "motion_blur": ("motion_blur", dict(radius=10, sigma=3.0), "frame i the crop motion-blurred (ImageMagick's "
                    "MotionBlurImage as Wand ran it, our equivalent; radius {radius}, sigma {sigma}) at angle "
                    "(i - 30) * 4", 31, "imagenet_p"),
    "zoom_blur": ("zoom_blur", dict(step=0.004), "frame i the mean of the crops of the 256 image zoomed by "
                  "1 + {step} * j, j = 0..i (bilinear); frame 0 the crop", 31, "imagenet_p"),
    "snow": ("snow", dict(radius=14, sigma=4.0), "one snow layer per sequence, motion-blurred (radius {radius}, "
             "sigma {sigma}) at angle i * 4 - 150 over the whitened crop: the snow moves", 31, "imagenet_p"),
    "brightness": ("brightness", dict(percent=2), "frame i the crop with its HSV value shifted by (i - 15) * "
                   "{percent} / 100", 31, "imagenet_p"),
    "translate": ("translate", dict(pixels=20), "frame i the 256 image shifted right by i - {pixels} px "
                  "(nearest), then cropped", 41, "imagenet_p"),
    "rotate": ("rotate", dict(degrees=15), "frame i the 256 image rotated clockwise by i - {degrees} degrees "
               "(bilinear, torchvision 0.2's affine), then cropped", 31, "imagenet_p"),
    "tilt": ("tilt", dict(degrees=15), "frame i the 256 image tilted by i - {degrees} degrees about both axes "
             "(the original's homography, cv2.warpPerspective), then cropped", 31, "imagenet_p"),
    "scale": ("scale", dict(start=40.0, step=2.5), "frame i the 256 image zoomed by (i * {step} + {start}) / 100 "
              "about its centre (bilinear), then cropped", 31, "imagenet_p"),
    "speckle_noise": ("speckle_noise", dict(scale=0.05), "frame 0 the crop, frame i > 0 the crop x plus x times "
                      "fresh Gaussian noise of std {scale}", 31, "imagenet_p_extra"),
    "speckle_noise_2": ("speckle_noise", dict(scale=0.10), "as speckle_noise with std {scale} (difficulty 2)", 31,
                        "imagenet_p_extra"),
    "speckle_noise_3": ("speckle_noise", dict(scale=0.15), "as speckle_noise with std {scale} (difficulty 3)", 31,
                        "imagenet_p_extra"),
    "gaussian_blur": ("gaussian_blur", dict(start=0.25, step=0.035), "frame i the crop Gaussian-blurred with sigma "
                      "{start} + {step} * i (skimage's gaussian, truncate 6)", 31, "imagenet_p_extra"),
    "spatter": ("spatter", dict(loc=0.65, scale=0.27, sigma=3.7, threshold=0.69), "one liquid layer per sequence "
                "(N({loc}, {scale}) blurred with sigma {sigma}, below {threshold} dropped) drawn as pale turquoise "
                "water over the crop, dripping down one step a frame", 31, "imagenet_p_extra"),
    "shear": ("shear", dict(degrees=15), "frame i the 256 image sheared by i - {degrees} degrees (bilinear, "
              "torchvision 0.2's affine), then cropped", 31, "imagenet_p_extra"),
}
_P_PARAM_HELP = "choose another imagenet_p_* config to change it"


def _imagenet_p() -> list[ShiftSpec]:
    specs = []
    kinds = {"imagenet_p": "test", "imagenet_p_harder": "harder test", "imagenet_p_extra": "validation"}
    for suffix, (fn, params, what, count, group) in IMAGENET_P_SEQUENCES.items():
        specs.append(ShiftSpec(
            name=f"imagenet_p_{suffix}", family="imagenet_p", fn=f"shift_hub.shifts.imagenet_p:{fn}",
            description=f"ImageNet-P {suffix} ({kinds[group]} perturbation), a sequence of "
            f"{count} 224x224 frames from the image resized to shorter side 256: " + what.format(**params)
            + ". Each frame is center-cropped 224 as the original. The paper scores it by flip probability and top-5 "
            "distance.",
            citation=IMAGENET_C_BIBTEX, geometry=_P_GEOMETRY, encoding=PNG, frames=True,
            params={k: Param(type(v), v, fixed=True, help=_P_PARAM_HELP) for k, v in params.items()},
            needs=frozenset({SEQUENCES}), group=group,
            deviation=_P_DEVIATION))
    return specs


_IMAGENET_P = _imagenet_p()

# Each family contributes its entries here; nothing else enumerates shifts.
REGISTRY: dict[str, ShiftSpec] = {spec.name: spec for spec in [*_CLEAN, *_IMAGENET_C, *_CARTOON, *_DRAWING, *_TOON,
                                                               *_XIMAGENET12, *_IMAGENET_C_BAR, *_IMAGENET_3DCC_2D,
                                                               *_WATERMARK, *_BACKGROUNDS, *_IMAGENET_P]}


class UnknownConfig(KeyError):
    """A config name the registry does not hold; the message says where to look."""

    def __str__(self) -> str:
        return str(self.args[0])


def get(name: str) -> ShiftSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        near = nearest(name, [*REGISTRY, *groups(), *{n.rsplit("_", 1)[0] for n in REGISTRY}])
        raise UnknownConfig(f"unknown shift config {name!r}" + (f"; nearest: {', '.join(near)}" if near else "")
                            + f"; `shift-hub list` shows the {len(REGISTRY)} known ones") from None


def nearest(name: str, names, n: int = 5) -> list[str]:
    """The few known names closest to a mistyped one, for error messages (never the whole list)."""
    import difflib

    return difflib.get_close_matches(name, sorted(set(names)), n=n, cutoff=0.6)


def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in REGISTRY.values():
        if spec.group:
            out.setdefault(spec.group, []).append(spec.name)
    return out


def _severities_of(shift: str) -> list[str]:
    return [s.name for s in REGISTRY.values() if s.severity is not None and s.name == f"{shift}_{s.severity}"]


def expand(names: list[str]) -> list[str]:
    """Config names with groups (`imagenet_c`), bare shifts (`gaussian_noise` = its 5 severities) and `all-cpu`
    expanded, order kept, no repeats."""
    out: list[str] = []
    grouped = groups()
    for name in names:
        if name == "all-cpu":
            items = [s.name for s in REGISTRY.values() if not s.needs]
        elif name in grouped:
            items = grouped[name]
        elif name not in REGISTRY and _severities_of(name):
            items = _severities_of(name)
        else:
            items = [get(name).name]
        out.extend(i for i in items if i not in out)
    return out


def _shown_list(names: list[str], limit: int = 8) -> str:
    if len(names) <= limit:
        return repr(names)
    return repr(names[:limit])[:-1] + f", ... (+{len(names) - limit} more)]"


def validate_overrides(specs: list[ShiftSpec], overrides: Mapping) -> dict[str, dict]:
    """Per chosen config name, its overrides checked against its declared Params and coerced (only the keys
    that config has; {} for a config none applies to). Nothing is run or imported beyond the registry.

    Raises BadParameter (a ValueError, one line) on a key no chosen config has, on `severity` (or another
    parameter fixed by the config name) and on any value outside its declared type, range or choices, naming
    the flag (`--set KEY=VALUE`, `--weights X`), the config(s), the key and what is expected.
    """
    overrides = dict(overrides or {})
    names = [s.name for s in specs]
    if "severity" in overrides:
        value = overrides["severity"]
        shifts = [s.name[: -len(f"_{s.severity}")] for s in specs if s.severity is not None]
        example = f"{shifts[0]}_{value}" if shifts and isinstance(value, int) and not isinstance(value, bool) \
            and 1 <= value <= 5 else "gaussian_noise_5"
        shown = json.dumps(value, default=str)
        raise BadParameter(f"--set severity={shown}: severity is part of the config name: choose e.g. {example}, "
                           f"not --set severity={shown}", configs=tuple(names), key="severity", value=value, flag="--set")
    unused = sorted(set(overrides) - {k for spec in specs for k in spec.params}, key=str)
    if unused:
        raise BadParameter(f"parameter(s) {unused!r} are not parameters of {_shown_list(names)}; "
                           "`shift-hub list --params CONFIG` shows each config's parameters",
                           configs=tuple(names), key=str(unused[0]), value=overrides[unused[0]])
    out: dict[str, dict] = {spec.name: {} for spec in specs}
    errors: list[BadParameter] = []
    for key, value in overrides.items():
        # configs sharing one declaration are checked once, so an error names them together
        by_param: list[tuple[Param, list[ShiftSpec]]] = []
        for spec in specs:
            if key in spec.params:
                param = spec.param(key)
                same = next((g for p, g in by_param if p == param), None)
                if same is None:
                    by_param.append((param, [spec]))
                else:
                    same.append(spec)
        for param, group in by_param:
            try:
                checked = validate([s.name for s in group], key, value, param)
            except BadParameter as exc:
                errors.append(exc)
                continue
            for spec in group:
                out[spec.name][key] = checked
    if errors:
        first = errors[0]
        raise BadParameter("; ".join(str(e) for e in errors), configs=first.configs, key=first.key,
                           value=first.value, flag=first.flag)
    return out


def shown_needs(spec: ShiftSpec) -> str:
    """What a config needs before it runs, as `list` shows it. The drawing_pattern_* and watermark configs carry
    WEIGHTS (an external file, so not in `all-cpu`), but what the user supplies is a pencil pattern or a font."""
    file = "pattern" if "pattern" in spec.params else "font" if "font" in spec.params else None
    shown = file if file and "weights" not in spec.params else None
    return ",".join(sorted(shown if n == WEIGHTS and shown else n for n in spec.needs)) or "-"


def describe(spec: ShiftSpec) -> list[str]:
    """`KEY = DEFAULT  (type/range; help)` per parameter of `spec`, for `shift-hub list --params`."""
    return describe_params(spec.params, spec.param_specs)


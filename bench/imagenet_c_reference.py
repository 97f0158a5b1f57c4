"""The ImageNet-C reference, run INSIDE the old-stack venv that `make_imagenet_c_reference.py` builds.

It imports `imagecorruptions` 1.1.2 (numpy<1.25, scikit-image 0.19.3) and, for the five corruptions
where that package departs from `make_imagenet_c.py` (the script that made the published data),
re-states the original algorithm with the original's own libraries: ImageMagick's motion blur through
Wand (motion_blur, snow), PIL BOX upsampling (pixelate), no frost rescaling (frost) and the original
elastic table with its random affine step (elastic_transform).

Commands (paths are plain files; nothing here imports shift_hub, which needs a modern stack):
  fixtures INPUT.png OUT.npz OUT.json   reference outputs (cropped) + noise statistics for every config
  time INPUT.png [INPUT.png ...] OUT.json   seconds per corruption (5 severities) for imagecorruptions
  pipeline OUTDIR OUT.json INPUT [INPUT ...]  make_imagenet_c.py's loop end to end (19x5 configs): per config,
                                            every image opened, resized 256, centre-cropped 224, corrupted
                                            with imagecorruptions and saved as JPEG 85 under OUTDIR
"""
from __future__ import annotations

import ctypes
import io
import json
import os
import sys
import time
import warnings

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
warnings.simplefilter("ignore")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

cv2.setNumThreads(1)

NAMES = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
         "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
         "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate"]
CROP = (slice(0, 64), slice(0, 64))  # stored part of each 224x224 reference output (two borders + interior)


def seed_for(name: str, severity: int) -> int:
    return 1000 + 10 * NAMES.index(name) + severity


# ---- the original's behaviour where imagecorruptions 1.1.2 differs --------------------------------

def _magick_motion_blur(arr: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """MagickMotionBlurImage on a PNG round trip, as make_imagenet_c.py called it through Wand."""
    from wand.api import library
    from wand.image import Image as WandImage

    library.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double, ctypes.c_double, ctypes.c_double)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    with WandImage(blob=buf.getvalue()) as wimg:
        library.MagickMotionBlurImage(wimg.wand, radius, sigma, angle)
        blob = wimg.make_blob()
    out = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr.ndim == 2:
        return out if out.ndim == 2 else out[..., 0]
    return out[..., ::-1] if out.ndim == 3 else np.stack([out] * 3, axis=2)


def original_motion_blur(img, severity):
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    angle = np.random.uniform(-45, 45)
    return np.clip(_magick_motion_blur(np.asarray(img), radius, sigma, angle), 0, 255)


def original_snow(img, severity):
    from imagecorruptions.corruptions import clipped_zoom

    loc, scale, zoom, thr, radius, sigma, blend = [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)][severity - 1]
    x = np.asarray(img, dtype=np.float32) / 255.0
    layer = np.random.normal(size=x.shape[:2], loc=loc, scale=scale)
    layer = clipped_zoom(layer[..., None], zoom)[: x.shape[0], : x.shape[1]]
    layer[layer < thr] = 0
    flakes = (np.clip(layer.squeeze(), 0, 1) * 255).astype(np.uint8)
    flakes = _magick_motion_blur(flakes, radius, sigma, np.random.uniform(-135, -45)) / 255.0
    flakes = flakes[..., None]
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + flakes + np.rot90(flakes, k=2), 0, 1) * 255


def original_frost(img, severity):
    import imagecorruptions

    a, b = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)][severity - 1]
    idx = np.random.randint(5)
    folder = os.path.join(os.path.dirname(imagecorruptions.__file__), "frost")
    name = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"][idx]
    photo = cv2.imread(os.path.join(folder, name))
    x = np.asarray(img)
    top = np.random.randint(0, photo.shape[0] - x.shape[0])
    left = np.random.randint(0, photo.shape[1] - x.shape[1])
    crop = photo[top : top + x.shape[0], left : left + x.shape[1]][..., [2, 1, 0]]
    return np.clip(a * x + b * crop, 0, 255)


def original_pixelate(img, severity):
    c = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
    w, h = img.size
    return np.asarray(img.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX))


def original_elastic(img, severity):
    from scipy.ndimage import map_coordinates
    from skimage.filters import gaussian

    alpha, sigma, affine = [(244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
                            (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
                            (244 * 0.12, 244 * 0.01, 244 * 0.02)][severity - 1]
    x = np.asarray(img, dtype=np.float32) / 255.0
    h, w = x.shape[:2]
    centre = np.float32((h, w)) // 2
    third = min(h, w) // 3
    src = np.float32([centre + third, [centre[0] + third, centre[1] - third], centre - third])
    dst = src + np.random.uniform(-affine, affine, size=src.shape).astype(np.float32)
    x = cv2.warpAffine(x, cv2.getAffineTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(np.random.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha)
    dy = (gaussian(np.random.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha)
    dx, dy = dx.astype(np.float32)[..., None], dy.astype(np.float32)[..., None]
    cols, rows, chans = np.meshgrid(np.arange(w), np.arange(h), np.arange(x.shape[2]))
    coords = (np.reshape(rows + dy, (-1, 1)), np.reshape(cols + dx, (-1, 1)), np.reshape(chans, (-1, 1)))
    return np.clip(map_coordinates(x, coords, order=1, mode="reflect").reshape(x.shape), 0, 1) * 255


ORIGINAL = {"motion_blur": original_motion_blur, "snow": original_snow, "frost": original_frost,
            "pixelate": original_pixelate, "elastic_transform": original_elastic}


def reference(name: str):
    """(function, provenance) for the fixture: the original's behaviour."""
    if name in ORIGINAL:
        return ORIGINAL[name], "make_imagenet_c.py re-stated with its own libraries (Wand/ImageMagick, PIL, cv2, skimage)"
    from imagecorruptions import corruptions

    return getattr(corruptions, name), "imagecorruptions 1.1.2"


def _versions() -> dict:
    import PIL
    import scipy
    import skimage

    out = {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
           "scikit-image": skimage.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__}
    try:
        from importlib.metadata import version

        out["imagecorruptions"] = version("imagecorruptions")
        import wand.version

        out["wand"] = wand.version.VERSION
        out["imagemagick"] = wand.version.MAGICK_VERSION
    except Exception as exc:  # noqa: BLE001 - report, the fixtures for Wand corruptions will fail anyway
        out["wand"] = f"unavailable: {exc}"
    return out


def cmd_fixtures(input_png: str, out_npz: str, out_json: str) -> None:
    img = Image.open(input_png).convert("RGB")
    base = np.asarray(img).astype(np.float64)
    arrays, meta = {}, {"crop": [[CROP[0].start, CROP[0].stop], [CROP[1].start, CROP[1].stop]],
                        "versions": _versions(), "configs": {}}
    for name in NAMES:
        fn, provenance = reference(name)
        for severity in range(1, 6):
            np.random.seed(seed_for(name, severity))
            out = np.uint8(fn(img.copy(), severity))  # make_imagenet_c.py's cast before saving
            diff = out.astype(np.float64) - base
            key = f"{name}_{severity}"
            arrays[key] = np.ascontiguousarray(out[CROP])
            meta["configs"][key] = {"seed": seed_for(name, severity), "reference": provenance,
                                    "diff_mean": diff.mean(axis=(0, 1)).tolist(),
                                    "diff_std": diff.std(axis=(0, 1)).tolist()}
    np.savez_compressed(out_npz, **arrays)
    with open(out_json, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def cmd_time(inputs: list[str], out_json: str) -> None:
    """CPU seconds (one thread) per corruption, all five severities, summed over the inputs (imagecorruptions 1.1.2)."""
    from imagecorruptions import corruptions

    images = [Image.open(p).convert("RGB") for p in inputs]
    np.random.seed(0)
    times = {}
    for name in NAMES:
        fn = getattr(corruptions, name)
        for severity in range(1, 6):  # warm-up: lazy imports, first-call caches
            fn(images[0], severity)
        start = time.process_time()
        for img in images:
            for severity in range(1, 6):
                np.uint8(fn(img, severity))
        times[name] = time.process_time() - start
    with open(out_json, "w") as f:
        json.dump({"seconds": times, "images": len(images), "versions": _versions()}, f, indent=1)


def _resize_crop(img):
    """torchvision's Resize(256) + CenterCrop(224) on a PIL image, as make_imagenet_c.py's transform."""
    w, h = img.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    top, left = int(round((h - 224) / 2.0)), int(round((w - 224) / 2.0))
    return img.crop((left, top, left + 224, top + 224))


def cmd_pipeline(out_dir: str, out_json: str, inputs: list[str]) -> None:
    """Wall and CPU seconds of the original loop: one decode per image per config, as the published script."""
    from imagecorruptions import corruptions

    np.random.seed(0)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for name in NAMES:
        fn = getattr(corruptions, name)
        for severity in range(1, 6):
            folder = os.path.join(out_dir, name, str(severity))
            os.makedirs(folder, exist_ok=True)
            for path in inputs:
                img = _resize_crop(Image.open(path).convert("RGB"))
                out = np.uint8(fn(img, severity))
                Image.fromarray(out).save(os.path.join(folder, os.path.basename(path)), quality=85, optimize=True)
    with open(out_json, "w") as f:
        json.dump({"wall": time.perf_counter() - start_wall, "cpu": time.process_time() - start_cpu,
                   "images": len(inputs), "configs": 5 * len(NAMES), "versions": _versions()}, f, indent=1)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "fixtures":
        cmd_fixtures(*args)
    elif command == "time":
        cmd_time(args[:-1], args[-1])
    elif command == "pipeline":
        cmd_pipeline(args[0], args[1], args[2:])
    else:
        raise SystemExit(__doc__)

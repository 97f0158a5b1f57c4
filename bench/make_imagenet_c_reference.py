"""Build the old-stack reference venv and write the ImageNet-C reference fixtures the tests compare against.

`imagecorruptions` 1.1.2 no longer imports on a modern stack (pkg_resources, skimage `multichannel`,
`np.float_`), so it runs in its own venv: Python 3.10, numpy<1.25, scikit-image 0.19.3, plus Wand for the
original's ImageMagick motion blur (needs Debian's ImageMagick: `apt-get install imagemagick`).

    python bench/make_imagenet_c_reference.py                # venv at /tmp/icref, fixtures in tests/
    python bench/make_imagenet_c_reference.py --venv DIR --python /path/to/python3.10

Writes tests/fixtures/imagenet_c/{input.png, reference.npz, reference.json}: the 224x224 input (chelsea
after the standard resize 256 / centre crop 224), a 64x64 corner of every reference output and, per config,
the seed and the mean/std of (output - input) over the whole image.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "imagenet_c"
WORKER = REPO / "bench" / "imagenet_c_reference.py"
PINS = ["numpy<1.25", "scikit-image==0.19.3", "scipy<1.12", "Pillow<10", "imagecorruptions==1.1.2", "Wand"]


def find_python310() -> str:
    for candidate in [shutil.which("python3.10"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python")))]:
        if candidate and subprocess.run([candidate, "-V"], capture_output=True).returncode == 0:
            return candidate
    raise SystemExit("need a Python 3.10 interpreter for numpy<1.25 / scikit-image 0.19.3 (pass --python)")


def ensure_venv(venv: Path, python: str | None) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([python or find_python310(), "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    check = "import imagecorruptions, skimage, wand.image; print(skimage.__version__)"
    subprocess.run([str(py), "-c", check], check=True)
    return py


def reference_input() -> np.ndarray:
    """The fixture image: a real photo under ImageNet-C's own geometry (resize 256, centre crop 224)."""
    import skimage.data

    from shift_hub.imaging import apply_geometry
    from shift_hub.registry import STANDARD

    return apply_geometry(skimage.data.chelsea(), STANDARD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/icref"))
    parser.add_argument("--python", help="interpreter for the venv (Python 3.10)")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    args = parser.parse_args()
    py = ensure_venv(args.venv, args.python)
    args.out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(reference_input()).save(args.out / "input.png", optimize=True)
    subprocess.run([str(py), str(WORKER), "fixtures", str(args.out / "input.png"),
                    str(args.out / "reference.npz"), str(args.out / "reference.json")], check=True)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({size / 1e3:.0f} kB)")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()

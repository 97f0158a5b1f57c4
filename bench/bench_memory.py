"""Peak memory of the full-resolution shifts on one 24-megapixel photo, each in a fresh process.

A 6000x4000 JPEG (quality 95) is made from a sample photo scaled up; each shift then runs in its own
child process exactly as the engine handles one image (decode, geometry, shift, JPEG encode, through
`shift_hub.generate.shift_image`), and the child's peak resident set (ru_maxrss from wait4) is printed
next to the goal. The child also reports its peak before the shift (imports + decoded image), so the
shift's own share is visible. One thread everywhere, as engine workers run.

    .venv/bin/python bench/bench_memory.py [--shifts drawing toon_handdrawn toon_ius cartoon_classic]
        [--size 6000x4000] [--goal-gb 1.5]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIFTS = ("drawing", "toon_handdrawn", "toon_ius", "cartoon_classic")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

CHILD = r"""
import json, resource, sys, time
import cv2
cv2.setNumThreads(1)
from shift_hub import registry
from shift_hub.generate import shift_image
from shift_hub.imaging import decode
data = open(sys.argv[2], "rb").read()
image, _ = decode(data)
spec = registry.get(sys.argv[1])
spec.load_fn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
out = shift_image(spec, image, 0, "bench_memory")
print(json.dumps({"before_kb": before, "seconds": time.perf_counter() - t0, "jpeg_bytes": len(out)}))
"""


def make_photo(path: Path, width: int, height: int) -> None:
    """A sample photo (skimage's chelsea) cropped to the aspect and scaled up bicubically, JPEG 95."""
    import cv2
    import numpy as np
    from PIL import Image
    from skimage import data

    photo = data.chelsea()
    h, w = photo.shape[:2]
    aspect = width / height
    cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
    crop = photo[(h - ch) // 2: (h - ch) // 2 + ch, (w - cw) // 2: (w - cw) // 2 + cw]
    big = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(big).save(path, "JPEG", quality=95)


def run_child(name: str, photo: Path) -> dict:
    """Start the child and reap it with wait4, which returns its own resource usage (peak RSS)."""
    env = {**os.environ, **ONE_THREAD}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", CHILD, name, str(photo)], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"{name} failed:\n{err.read()[-3000:]}")
        return {**json.loads(out.read().strip().splitlines()[-1]), "peak_kb": usage.ru_maxrss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shifts", nargs="+", default=list(SHIFTS))
    parser.add_argument("--size", default="6000x4000")
    parser.add_argument("--goal-gb", type=float, default=1.5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    os.chdir(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        make_photo(photo, width, height)
        print(f"{width}x{height} ({width * height / 1e6:.0f} MP) JPEG 95 from skimage chelsea; one process per "
              f"shift: decode + shift + encode (shift_image); goal: peak RSS <= {args.goal_gb:.2f} GB (10^9 bytes)")
        print(f"{'shift':16s} {'peak GB':>8s} {'before GB':>9s} {'shift s':>8s} {'goal':>6s}")
        for name in args.shifts:
            r = run_child(name, photo)
            peak, before = r["peak_kb"] * 1024 / 1e9, r["before_kb"] * 1024 / 1e9  # kB (KiB) -> GB
            ok = "ok" if peak <= args.goal_gb else "OVER"
            print(f"{name:16s} {peak:8.2f} {before:9.2f} {r['seconds']:8.1f} {ok:>6s}", flush=True)


if __name__ == "__main__":
    main()

"""ImageNet-C-bar corruptions (Mintun, Kirillov & Xie, NeurIPS 2021) as pure functions `fn(image, rng, level)`.

The ten corruptions and five levels per corruption are those of `imagenet_c_bar.csv` in
facebookresearch/augmentation-corruption (`imagenet_c_bar/`, MIT), listed in
registry.IMAGENET_C_BAR_CORRUPTIONS; `level` is the original's "severity" on its 0-10 scale (a config's
severity 1-5 is its rank in that list). Parameters follow `corrupt.py`, scaled with the image side as there
(the original's `im_size`, 224 after make_imagenet_c_bar.py's resize 256 / centre crop 224).

Draws. Each function draws from `rng` what the original drew from NumPy's global stream, in the same order,
with the same distribution and role (a frequency, a phase, a centre, a ray count). Where the original drew a
`seed` and then the pattern's own numbers from `RandomState(seed)` (ray lengths, Perlin tables, Fourier
phases, the checkerboard's cells), those numbers are drawn from `rng` too, at the place the original used
them; the seed draw itself has no counterpart. Fed the original's numbers (tests/test_imagenet_c_bar.py
replays them), each function gives the original's output.

Arithmetic. Every per-pixel formula of the original is evaluated on whole arrays with the same operations in
the same order (so casts, truncations and the original's quirks come out alike): the checkerboard's cell
lookup truncates towards zero while its parity uses the floor (and negative cells index the grid from its
end), sparkles re-read the image as float32 between their five passes, a Perlin gradient drawn as (0, 0)
normalises to NaN and the pixels that use it come out black (NumPy's cast of NaN on x86). Caustic refraction
computes its refraction vector in closed form and samples in float64: see `caustic_refraction`.

Images that are not square (never in the registry, whose geometry gives 224x224) use the longer side as the
original's `im_size`; fields the original built as a whole square (the Fourier noises) are built on that
square and cut to the image.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

# ---- parameter tables ----------------------------------------------------------------------------------------
# Each config's level (imagenet_c_bar.csv) is its `level` parameter: registry.IMAGENET_C_BAR_CORRUPTIONS.

# the constants of corrupt.py (per corruption, in the order it uses them)
SPARKLE_COUNT = 5  # sparkles per image
SPARKLE_RAYS = (50, 200)  # ray count, integers in [50, 200)
SPARKLE_AMOUNT = 50  # "amount": 50 makes the fall-off exponent (100 - amount) / 50 = 1
RAY_JITTER = 25  # "randomness": ray length = radius * (1 + 25 % * N(0, 1))
PERLIN_OCTAVES = 16.0  # turbulence sums octaves 1, 2, 4, 8, 16
PERLIN_TABLE = 256  # lattice period B; the gradient table holds 2B + 2 entries
CAUSTIC_ETA = 4.0  # refractive index of the caustic "lens"
CAUSTIC_SOFTENING = 1  # sigma of the Gaussian that smooths the caustic pattern
LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights the original's luma uses
GREY = 128  # checkerboard cut-out colour
WHITE = 255.0  # sparkle colour


def _scaled(level: float, maximum: float) -> float:
    """The original's float_parameter: level on its 0-10 scale mapped onto [0, maximum]."""
    return float(level) * maximum / 10.0


@lru_cache(maxsize=8)
def _axes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices as a column (h, 1) and column indices as a row (1, w), float64, read-only."""
    rows = np.arange(h, dtype=np.float64)[:, None]
    cols = np.arange(w, dtype=np.float64)[None, :]
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def _side(image: np.ndarray) -> int:
    return max(image.shape[:2])


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """`np.clip(x, 0, 255).astype(np.uint8)`, the original's last step (truncation), in place on a temporary."""
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


# ---- the corruptions --------------------------------------------------------------------------------------

def single_frequency_greyscale(image, rng, level: float) -> np.ndarray:
    """A plane grey sine wave added to every channel. Draws: a frequency in [-pi, pi), a second one no larger
    in magnitude, their order (a permutation of two), a phase in [0, 2 pi)."""
    h, w = image.shape[:2]
    major = rng.uniform(-np.pi, np.pi)
    minor = rng.uniform(-abs(major), abs(major))
    freq = np.array([major, minor])[rng.permutation(2)]
    phase = rng.uniform(0, 2 * np.pi)
    rows, cols = _axes(h, w)
    wave = cols * freq[0] + rows * freq[1]  # x * f0 + y * f1 + phase, x the column
    wave += phase
    np.sin(wave, out=wave)
    wave *= _scaled(level, 196)
    return _to_uint8(image + wave[..., None])


def cocentric_sine_waves(image, rng, level: float) -> np.ndarray:
    """Rings around a random centre, their radius wobbling with the angle. Draws: the centre (x, y) in
    [0, side)^2, the angular frequency in [0, 10), the wobble amplitude and the ring width in [0, side / 10)."""
    h, w = image.shape[:2]
    side = _side(image)
    centre = rng.uniform(0, side, size=2)
    freq = rng.uniform(0, 10)
    amplitude = rng.uniform(0, side / 10)
    ring_width = rng.uniform(0, side / 10)
    rows, cols = _axes(h, w)
    dx, dy = cols - centre[0], rows - centre[1]
    angle = np.arctan2(dx, dy)  # arctan2(x - x0, y - y0), as written
    angle *= freq
    radius = np.sqrt(dx**2 + dy**2)
    np.sin(angle, out=angle)
    angle *= amplitude
    radius += angle
    np.remainder(radius, ring_width, out=radius)
    radius /= ring_width
    radius -= 0.5
    radius *= _scaled(level, 128)
    return _to_uint8(image + radius[..., None])


def plasma_noise(image, rng, level: float) -> np.ndarray:
    """An iterated domain-warp ("plasma") colour field blended over the image. Draws: the time in [0, 6 pi),
    the iteration count in {4, 5, 6}, the sharpness in [0.5, 1), the scale in [0.075, 0.2) x side."""
    h, w = image.shape[:2]
    time = rng.uniform(0.0, 6 * np.pi)
    iterations = int(rng.integers(4, 7))
    sharpness = rng.uniform(0.5, 1.0)
    scale = rng.uniform(0.075, 0.2) * _side(image)
    intensity = _scaled(level, 64)
    rows, cols = _axes(h, w)
    x = np.broadcast_to(cols / scale, (h, w)).copy()
    y = np.broadcast_to(rows / scale, (h, w)).copy()
    state = np.array([1.0, 1.0, 1.0, 0.0])  # the original's `i`: frequency, time divisor, amplitude divisor, offset
    for _ in range(iterations):
        shift = time / state[1]
        r0 = np.cos(y * state[0] - state[3] + shift) / state[2]
        r1 = np.sin(x * state[0] - state[3] + shift) / state[2]
        x += r0 + (-r1) * 0.3  # r += [-r1, r0] * 0.3, both from the same r
        y += r1 + r0 * 0.3
        state *= np.array([1.93, 1.15, 2.25 - sharpness, time * state[1]])
    noise = np.empty((h, w, 3))
    np.sin(x - time, out=noise[..., 0])
    np.sin((x + y + np.sin(time)) * 0.5, out=noise[..., 1])
    np.sin(y + time, out=noise[..., 2])
    noise *= intensity
    out = (1 - intensity / 255) * image
    out += noise
    return _to_uint8(out)


def caustic_refraction(image, rng, level: float) -> np.ndarray:
    """The image seen through a rippled glass whose caustic pattern also lights it. Draws: the pattern's time
    in [0.5, 2) and its period in [0.75, 1.25) x side.

    The pattern's luma gradient tilts a surface normal; the view ray refracts through it (index 4) and
    samples the image, displaced by up to level / 20 x side pixels (the displacement rounded to 3
    decimals, as the original), bilinearly with black outside; the gradient then adds light and shade.
    The original refracted each ray by building a rotation matrix from cross products and inverting it;
    the same vector is (n_x, n_y) * (cos(phi) - sin(phi) * n_z / |(n_x, n_y)|), computed here from the
    original's angles, equal up to rounding far below the 3-decimal step. The sample is taken in float64,
    as the original's code computes it under NumPy 2 (under the NumPy 1.19 it was run with, value-based
    casting took interior pixels in float32: run under NumPy 1.24's same casting, the reference differed
    from this in 5 values of 2.3 million, by one grey level).
    """
    from scipy.ndimage import gaussian_filter

    h, w = image.shape[:2]
    side = _side(image)
    time = rng.uniform(0.5, 2.0)
    period = rng.uniform(0.75, 1.25) * side
    lens_scale = _scaled(level, 0.5 * side)
    lighting = _scaled(level, 2.0)
    pattern = _caustic_pattern(h, w, time, period)
    # the original smooths the three equal channels as one (h, w, 3) volume: its last-axis pass is kept
    pattern = gaussian_filter(np.repeat(pattern[..., None], 3, axis=2), sigma=CAUSTIC_SOFTENING)
    luma = _luma(pattern)
    north, south, west, east = _neighbours(luma)
    normal_x, normal_y = east - west, south - north
    displacement = _refraction(normal_x, normal_y, lens_scale)
    rows, cols = _axes(h, w)
    out = _bilinear_zero(np.asarray(image, np.float32) / 255, rows + displacement[0], cols + displacement[1])
    out += ((north - south) * lighting)[..., None]
    out += ((east - west) * lighting)[..., None]
    np.clip(out, 0, 1, out=out)
    out *= 255
    return out.astype(np.uint8)


def _caustic_pattern(h: int, w: int, time: float, period: float) -> np.ndarray:
    """The caustic brightness in [0, 1] at each pixel: five iterations of the original's fold, then
    clip(|1.17 - c ** 1.4| ** 8)."""
    rows, cols = _axes(h, w)
    p0 = np.broadcast_to(np.remainder(rows / period, 1) * 6.28318530718 - 250, (h, w))
    p1 = np.broadcast_to(np.remainder(cols / period, 1) * 6.28318530718 - 250, (h, w))
    i0, i1 = p0, p1
    c = np.ones((h, w))
    inten = 0.005
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for n in range(5):
            t = time * (1.0 - (3.5 / (n + 1)))
            i0, i1 = (p0 + (np.cos(t - i0) + np.sin(t + i1)), p1 + (np.sin(t - i1) + np.cos(t + i0)))
            length = np.sqrt((p0 / (np.sin(i0 + t) / inten)) ** 2 + (p1 / (np.cos(i1 + t) / inten)) ** 2)
            c += 1.0 / length
        c /= 5.0
        c = 1.17 - c**1.4
        return np.clip(np.abs(c) ** 8.0, 0, 1)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """dot(pixel, LUMA), summed left to right."""
    out = rgb[..., 0] * LUMA[0]
    out += rgb[..., 1] * LUMA[1]
    out += rgb[..., 2] * LUMA[2]
    return out


def _neighbours(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The original's (north, south, west, east): luma at (y, x-1), (y, x+1), (y-1, x), (y+1, x), 0 outside."""
    pad = np.pad(luma, 1)
    return pad[1:-1, :-2], pad[1:-1, 2:], pad[:-2, 1:-1], pad[2:, 1:-1]


def _refraction(normal_x: np.ndarray, normal_y: np.ndarray, lens_scale: float) -> np.ndarray:
    """(2, h, w) displacement (rows, columns): the ray (0, 0, 1) refracted through the unit normal
    (gx, gy, 1) / |.| with index CAUSTIC_ETA, times lens_scale, rounded to 3 decimals; no refraction where
    the normal is within 1e-3 of the ray (the original returned the incident ray there)."""
    norm = np.sqrt(normal_x * normal_x + normal_y * normal_y + 1.0)
    n0, n1, n2 = normal_x / norm, normal_y / norm, 1.0 / norm
    angle = np.arccos(n2)
    out_angle = np.arcsin(np.sin(angle) / CAUSTIC_ETA)
    tilt = np.sqrt(n0 * n0 + n1 * n1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.cos(out_angle) - np.sin(out_angle) * n2 / tilt
    factor = np.where(np.abs(n2) >= 1.0 - 1e-3, 0.0, factor)
    vector = np.stack([n0 * factor, n1 * factor])
    vector *= lens_scale
    return np.round(vector, 3)


def _bilinear_zero(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The original's bilinear_interpolation at (rows, cols), corners outside the image read as 0, in its
    arithmetic: weights (1 - p + floor(p)) and ((1 - (floor(p) + 1)) + p), summed per row pair then per column."""
    h, w = image.shape[:2]
    top, left = np.floor(rows), np.floor(cols)
    wu = 1.0 - cols + left  # weight of column u = floor(col)
    wd = 1.0 - (left + 1) + cols  # of column d = u + 1
    wl = 1.0 - rows + top  # of row l = floor(row)
    wr = 1.0 - (top + 1) + rows  # of row r = l + 1
    l, u = top.astype(np.intp), left.astype(np.intp)
    padded = np.zeros((h + 2, w + 2, image.shape[2]), dtype=np.float64)
    padded[1:-1, 1:-1] = image
    pixels = padded.reshape(-1, image.shape[2])
    # every out-of-range corner reads the zero border: clamp indices into [-1, n], shift by one, flatten
    li, ri = (np.clip(l, -1, h) + 1) * (w + 2), (np.clip(l + 1, -1, h) + 1) * (w + 2)
    ui, di = np.clip(u, -1, w) + 1, np.clip(u + 1, -1, w) + 1
    wu, wd, wl, wr = (x[..., None] for x in (wu, wd, wl, wr))
    upper = pixels.take(li + ui, axis=0) * wu + pixels.take(li + di, axis=0) * wd
    lower = pixels.take(ri + ui, axis=0) * wu + pixels.take(ri + di, axis=0) * wd
    upper *= wl
    lower *= wr
    upper += lower
    return upper


def sparkles(image, rng, level: float) -> np.ndarray:
    """Five white starbursts. Draws: the five centres (row, column) in [0, side)^2, their ray counts in
    [50, 200), then for each sparkle in turn one N(0, 1) per ray (its length: radius * (1 + 0.25 N), at
    least 1). The radius is level / 100 x side for all five."""
    h, w = image.shape[:2]
    side = _side(image)
    centres = rng.uniform(0, side, size=(SPARKLE_COUNT, 2))
    radius = np.array([_scaled(level, 0.1)] * SPARKLE_COUNT) * side
    rays = rng.integers(SPARKLE_RAYS[0], SPARKLE_RAYS[1], size=SPARKLE_COUNT)
    out = image
    for k in range(SPARKLE_COUNT):
        jitter = rng.standard_normal(int(rays[k]))
        lengths = np.maximum(1, radius[k] + RAY_JITTER / 100.0 * radius[k] * jitter)
        weight = _starburst(h, w, centres[k], radius[k], lengths, SPARKLE_AMOUNT)
        value = out.astype(np.float32).astype(np.float64)  # each pass re-reads the image as float32
        out = value + weight[..., None] * (WHITE - value)
    return _to_uint8(out)


def inverse_sparkles(image, rng, level: float) -> np.ndarray:
    """The image seen through one starburst-shaped hole in white, its edge sharper at higher levels.
    Draws: the centre (row, column) in [0.25, 0.75) x side, the ray count in [50, 200), then one N(0, 1)
    per ray (length: side / 4 x (1 + 0.25 N))."""
    h, w = image.shape[:2]
    side = _side(image)
    centre = rng.uniform(0.25, 0.75, size=2) * side
    radius = 0.25 * side
    amount = 100 - _scaled(level, 65)
    rays = int(rng.integers(SPARKLE_RAYS[0], SPARKLE_RAYS[1]))
    lengths = radius + RAY_JITTER / 100.0 * radius * rng.standard_normal(rays)
    weight = _starburst(h, w, centre, radius, lengths, amount)[..., None]
    value = np.asarray(image, np.float32).astype(np.float64)
    return _to_uint8(WHITE + weight * (value - WHITE))


def _starburst(h: int, w: int, centre: np.ndarray, radius: float, lengths: np.ndarray, amount: float) -> np.ndarray:
    """The original's sparkle kernel: per pixel, the ray length interpolated at its angle (rays spread evenly
    from angle -pi), g = (length^2 / (distance^2 + 1e-4)) ** ((100 - amount) / 50), weighted by
    1 - (f - 1/2)^2 across each ray (f the position between two rays); clipped to [0, 1]."""
    rows, cols = _axes(h, w)
    d_row, d_col = rows - centre[0], cols - centre[1]
    dist = np.sqrt(d_row * d_row + d_col * d_col)
    angle = np.arctan2(d_col, d_row)
    count = len(lengths)
    d = (angle + np.pi) / (2 * np.pi) * count
    ray = d.astype(np.intp)  # int(d): d >= 0
    f = d - ray
    if radius != 0:
        here = lengths[ray % count]
        length = here + f * (lengths[(ray + 1) % count] - here)
        g = length**2 / (dist**2 + 1e-4)
        exponent = (100 - amount) / 50.0
        if exponent != 1.0:
            g = g**exponent
        f -= 0.5
        f = 1 - f**2
        f *= g
    return np.clip(f, 0, 1, out=f)


def perlin_noise(image, rng, level: float) -> np.ndarray:
    """Perlin turbulence (octaves 1-16 at a 32-pixel lattice for 224 px) blended over the image with weight
    level / 20. Draws: the 2B + 2 lattice gradients (two integers in [0, 2^31) each, taken mod 2B and centred),
    then the B swaps that shuffle the lattice permutation (an integer in [0, 2^31) each, mod B)."""
    h, w = image.shape[:2]
    step = 1.0 / (32 * _side(image) / 224)  # the original's matrix diag(1, 1) / (32 im_size / 224)
    alpha = _scaled(level, 0.50)
    perm, grads = _perlin_tables(rng)
    rows, cols = np.arange(h) * step, np.arange(w) * step  # turbulence(x = row / 32, y = column / 32)
    with np.errstate(invalid="ignore"):
        turbulence = np.zeros((h, w))
        octave = 1.0
        while octave <= PERLIN_OCTAVES:
            turbulence += np.abs(_perlin_grid(perm, grads, octave * rows, octave * cols)) / octave
            octave *= 2
        field = np.clip(0.5 * turbulence + 0.5, 0, 1.0)
        out = (1 - alpha) * np.asarray(image, np.float32) + (255 * alpha * field)[..., None]
        np.clip(out, 0, 255, out=out)
        np.nan_to_num(out, copy=False, nan=0.0)  # a NaN gradient's pixels: 0, as the original's cast gave
    return out.astype(np.uint8)


def _perlin_tables(rng) -> tuple[np.ndarray, np.ndarray]:
    """The lattice permutation (2B + 2 entries) and unit gradients (2B + 2, 2), drawn and laid out as the
    original's PerlinNoiseGenerator: gradients first, then swaps from position B - 1 down to 0, then the
    first B + 2 entries repeated after the first B."""
    b = PERLIN_TABLE
    raw = rng.integers(0, 2**31, size=(2 * b + 2, 2))
    grads = (raw % (2 * b) - b) / b
    with np.errstate(invalid="ignore"):  # a (0, 0) draw becomes NaN, as the original's normalise
        grads = grads / np.sqrt(grads[:, 0] ** 2 + grads[:, 1] ** 2)[:, None]
    swaps = rng.integers(0, 2**31, size=b) % b
    perm = list(range(2 * b + 2))
    for i, j in zip(range(b - 1, -1, -1), swaps.tolist()):
        perm[i], perm[j] = perm[j], perm[i]
    perm = np.array(perm)
    perm[b : 2 * b] = perm[:b]
    perm[2 * b :] = perm[:2]  # entries B + B and B + B + 1 copy B and B + 1, which now hold the first two
    grads[b : 2 * b] = grads[:b]
    grads[2 * b :] = grads[:2]
    return perm, grads


def _lattice(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis: the lattice cells either side of t + 16 B (mod B), the offsets from them, the s-curve."""
    b = PERLIN_TABLE
    t = t + 16 * b
    cell0 = t.astype(np.intp) % b  # int(t): t > 0
    offset0 = np.remainder(t, 1)
    return cell0, (cell0 + 1) % b, offset0, offset0 - 1.0, offset0**2 * (3.0 - 2.0 * offset0)


def _perlin_grid(perm: np.ndarray, grads: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Classic 2-D gradient noise (the original's PerlinNoiseGenerator.noise) times 1.5 at every (x[r], y[c]),
    an (len(x), len(y)) array. Everything that depends on one coordinate only is computed once per row or
    column; the arithmetic per point is the original's."""
    bx0, bx1, rx0, rx1, sx = (a[:, None] for a in _lattice(x))
    by0, by1, ry0, ry1, sy = (a[None, :] for a in _lattice(y))
    i, j = perm.take(bx0), perm.take(bx1)
    b00, b10, b01, b11 = perm.take(i + by0), perm.take(j + by0), perm.take(i + by1), perm.take(j + by1)
    gx, gy = np.ascontiguousarray(grads[:, 0]), np.ascontiguousarray(grads[:, 1])
    u = rx0 * gx.take(b00) + ry0 * gy.take(b00)
    v = rx1 * gx.take(b10) + ry0 * gy.take(b10)
    a = u + sx * (v - u)
    u = rx0 * gx.take(b01) + ry1 * gy.take(b01)
    v = rx1 * gx.take(b11) + ry1 * gy.take(b11)
    bottom = u + sx * (v - u)
    return 1.5 * (a + sy * (bottom - a))


def blue_noise_sample(image, rng, level: float) -> np.ndarray:
    """The image kept where a blue-noise field (power rising with frequency) exceeds level * 0.3 - 2.5
    standard deviations, black elsewhere. Draws: the field's Fourier phases (see `_fourier_noise`)."""
    h, w = image.shape[:2]
    threshold = _scaled(level, 3.0) - 2.5
    noise = _fourier_noise(rng, _side(image), "blue")[:h, :w]
    return np.where((noise > threshold)[..., None], image, np.uint8(0)).astype(np.uint8)


def brownish_noise(image, rng, level: float) -> np.ndarray:
    """A low-frequency noise field (power 1 / (f^2 + 1)) per channel, level * 6.4 grey levels per standard
    deviation, added to the image. Draws: three fields' Fourier phases in turn (see `_fourier_noise`)."""
    h, w = image.shape[:2]
    side = _side(image)
    noise = np.stack([_fourier_noise(rng, side, "brown")[:h, :w] for _ in range(3)], axis=2)
    noise *= _scaled(level, 64)
    return _to_uint8(image + noise)


@lru_cache(maxsize=4)
def _spectrum(side: int, kind: str) -> np.ndarray:
    """The Fourier amplitude at each frequency before the shift to the corner: the distance r of (x, y) from
    (side / 2, side / 2) for blue noise, 1 / (r^2 + 1) for brownish noise. Read-only."""
    rows, cols = _axes(side, side)
    centre = side / 2
    r = np.sqrt((cols - centre) ** 2 + (rows - centre) ** 2)
    out = r if kind == "blue" else 1 / (r**2 + 1)
    out.setflags(write=False)
    return out


def _fourier_noise(rng, side: int, kind: str) -> np.ndarray:
    """A (side, side) noise field of unit standard deviation: the spectrum with phases uniform in [0, 2 pi),
    drawn for the left half and mirrored (both axes reversed) onto the right, with a middle column of its own
    (mirrored top to bottom, zero in the centre) for odd sides, shifted by side // 2 on both axes, the real
    part of its inverse FFT."""
    from scipy import fft

    phases = rng.uniform(0, 2 * np.pi, size=(side, side // 2))
    if side % 2 == 0:
        phases = np.concatenate((phases, phases[::-1, ::-1]), axis=1)
    else:
        middle = rng.uniform(0, 2 * np.pi, size=(side // 2, 1))
        middle = np.concatenate((middle, np.array([[0.0]]), middle[::-1, :]), axis=0)
        phases = np.concatenate((phases, middle, phases[::-1, ::-1]), axis=1)
    amplitude = _spectrum(side, kind)
    spectrum = np.empty((side, side), dtype=np.complex128)
    spectrum.real = amplitude * np.cos(phases)
    spectrum.imag = amplitude * np.sin(phases)
    spectrum = np.roll(spectrum, (side // 2, side // 2), axis=(0, 1))
    noise = fft.ifft2(spectrum).real
    with np.errstate(invalid="ignore", divide="ignore"):
        return noise / np.std(noise)


def checkerboard_cutout(image, rng, level: float) -> np.ndarray:
    """A rotated checkerboard whose dark cells are cut out (grey) with probability level / 10 each.
    Draws: the angle in [0, 2 pi), the cell size in [0.1, 0.25) x side (at least 1 px), then the cells'
    uniforms on a (4 side // size)^2 grid."""
    h, w = image.shape[:2]
    side = _side(image)
    angle = rng.uniform(0, 2 * np.pi)
    size = max(rng.uniform(0.1, 0.25) * side, 1)
    fraction = _scaled(level, 1.0)
    cells = int(4 * side // size)
    cut = rng.uniform(size=(cells, cells)) < fraction
    rows, cols = _axes(h, w)
    cos, sin = np.cos(angle), np.sin(angle)
    nx = (cos * rows + sin * cols) / size
    ny = (-sin * rows + cos * cols) / size
    light = np.remainder(nx, 2).astype(np.intp) != np.remainder(ny, 2).astype(np.intp)
    # int() truncates towards zero and a negative index counts from the grid's end, as the original's lookup
    keep = light | ~cut[nx.astype(np.intp), ny.astype(np.intp)]
    return np.where(keep[..., None], image, np.uint8(GREY)).astype(np.uint8)


CORRUPTIONS = ("caustic_refraction", "inverse_sparkles", "sparkles", "perlin_noise", "blue_noise_sample",
               "plasma_noise", "checkerboard_cutout", "cocentric_sine_waves", "single_frequency_greyscale",
               "brownish_noise")
__all__ = [*CORRUPTIONS, "CORRUPTIONS"]

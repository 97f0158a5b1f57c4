"""ImageNet-C-bar as its original computes it, restated pixel by pixel in plain NumPy: the formula check for
tests/test_imagenet_c_bar.py and the baseline of bench/bench_corruptions_bar.py.

The original is facebookresearch/augmentation-corruption, `imagenet_c_bar/corrupt.py` (MIT): each corruption
draws its parameters from NumPy's global stream (`sample`), some of them a seed for a `RandomState` that draws
the pattern's own numbers, then evaluates a Python function at every pixel of the 224 x 224 image and builds
the result with `np.array` of nested lists. This file restates those algorithms in that same shape (one Python
call per pixel on small NumPy arrays, the same NumPy calls inside), so its outputs are the original's and its
run time stands for the original's. It is not shift_hub's code and nothing in shift_hub imports it.

`sample(name, state, level, im_size)` draws a parameter dict from `state` (a RandomState: the original's global
stream), `transform(name, image, params, im_size, pixels=None)` applies it: the whole uint8 image, or with
`pixels` (a list of (row, column)) only the output values there, for corruptions computed pixel by pixel.
`OriginalDraws` (the global stream, recording), `original_draws` and `Replay` hand the original's numbers to
shift_hub's functions in the order they draw them: the formula check of the tests and of the bench.
"""
from __future__ import annotations

import numpy as np
from scipy.fftpack import ifft2
from scipy.ndimage import gaussian_filter

LUMA = np.array([0.2126, 0.7152, 0.0722])


def scaled(level: float, maximum: float) -> float:
    """The original's float_parameter."""
    return float(level) * maximum / 10.


# ---- parameter draws, in the original's order ------------------------------------------------------------

def sample(name: str, state, level: float, im_size: int = 224) -> dict:
    return SAMPLERS[name](state, level, im_size)


def _sample_single_frequency(state, level, im_size):
    magnitude = state.uniform(low=-np.pi, high=np.pi)
    second = state.uniform(low=-abs(magnitude), high=abs(magnitude))
    order = state.permutation(2)
    phase = state.uniform(low=0, high=2 * np.pi)
    return {"freq": np.array([magnitude, second])[order], "phase": phase, "intensity": scaled(level, 196),
            "order": order}


def _sample_cocentric(state, level, im_size):
    offset = state.uniform(low=0, high=im_size, size=2)
    freq = state.uniform(low=0, high=10)
    amplitude = state.uniform(low=0, high=im_size / 10)
    ring_width = state.uniform(low=0, high=im_size / 10)
    return {"offset": offset, "freq": freq, "amplitude": amplitude, "ring_width": ring_width,
            "intensity": [scaled(level, 128)] * 3}


def _sample_plasma(state, level, im_size):
    time = state.uniform(low=0.0, high=6 * np.pi)
    iterations = state.randint(low=4, high=7)
    sharpness = state.uniform(low=0.5, high=1.0)
    scale_draw = state.uniform(low=0.075, high=0.2)
    return {"time": time, "iterations": iterations, "sharpness": sharpness, "scale": scale_draw * im_size,
            "intensity": scaled(level, 64), "scale_draw": scale_draw}


def _sample_caustic(state, level, im_size):
    time = state.uniform(low=0.5, high=2.0)
    size_draw = state.uniform(low=0.75, high=1.25)
    return {"time": time, "size": size_draw * im_size, "eta": 4.0, "lens_scale": scaled(level, 0.5 * im_size),
            "lighting": scaled(level, 2.0), "softening": 1, "size_draw": size_draw}


def _sample_sparkles(state, level, im_size):
    centers = state.uniform(low=0, high=im_size, size=(5, 2))
    radii = np.array([scaled(level, 0.1) for _ in range(5)]) * im_size
    seed = state.randint(low=0, high=2**32)
    nrays = state.randint(low=50, high=200, size=5)
    return {"centers": centers, "radii": radii, "amounts": np.array([50] * 5), "randomness": 25, "seed": seed,
            "nrays": nrays}


def _sample_inverse_sparkles(state, level, im_size):
    center = state.uniform(low=0.25, high=0.75, size=2)
    seed = state.randint(low=0, high=2**32)
    rays = state.randint(low=50, high=200)
    return {"center": center * im_size, "radius": 0.25 * im_size, "amount": 100 - scaled(level, 65),
            "randomness": 25, "seed": seed, "rays": rays, "center_draw": center}


def _sample_perlin(state, level, im_size):
    return {"step": np.array([[1, 0], [0, 1]]) / (32 * im_size / 224), "turbulence": 16.0, "gain": 0.5,
            "bias": 0.5, "alpha": scaled(level, 0.50), "seed": state.randint(low=0, high=2**32)}


def _sample_seed_only(key, maximum, offset=0.0):
    def draw(state, level, im_size):
        return {"seed": state.randint(low=0, high=2**32), key: scaled(level, maximum) - offset}
    return draw


def _sample_checkerboard(state, level, im_size):
    angle = state.uniform(low=0, high=2 * np.pi)
    scale_draw = state.uniform(low=0.1, high=0.25)
    scale = np.maximum(scale_draw * im_size, 1)
    seed = state.randint(low=0, high=2**32)
    return {"angle": angle, "scales": (scale, scale), "fraction": scaled(level, 1.0), "seed": seed,
            "scale_draw": scale_draw}


# ---- the per-pixel transforms ----------------------------------------------------------------------------

def transform(name: str, image: np.ndarray, params: dict, im_size: int = 224, pixels=None) -> np.ndarray:
    return TRANSFORMS[name](image, params, im_size, pixels)


def _every(im_size, pixels):
    """The pixels to evaluate: all, row by row, or the given ones."""
    return [(y, x) for y in range(im_size) for x in range(im_size)] if pixels is None else list(pixels)


def _assemble(values, im_size, pixels) -> np.ndarray:
    """Per-pixel results as the original's nested-list array (all pixels), or as a (n, 3) array (some)."""
    if pixels is None:
        return np.array([values[y * im_size:(y + 1) * im_size] for y in range(im_size)])
    return np.array(values)


def _single_frequency(image, params, im_size, pixels):
    freq, phase = params["freq"], params["phase"]
    values = [np.clip(image[y, x] + params["intensity"] * np.sin(x * freq[0] + y * freq[1] + phase), 0, 255)
              for y, x in _every(im_size, pixels)]
    return _assemble(values, im_size, pixels).astype(np.uint8)


def cocentric_value(y, x, offset, freq, amplitude, ring_width):
    angle = np.arctan2(x - offset[0], y - offset[1]) * freq
    distance = ((np.sqrt((x - offset[0]) ** 2 + (y - offset[1]) ** 2) + np.sin(angle) * amplitude)
                % ring_width) / ring_width
    return distance - 1 / 2


def _cocentric(image, params, im_size, pixels):
    values = []
    for y, x in _every(im_size, pixels):
        v = cocentric_value(y, x, params["offset"], params["freq"], params["amplitude"], params["ring_width"])
        values.append(np.clip(image[y, x] + np.array([k * v for k in params["intensity"]]), 0, 255))
    return _assemble(values, im_size, pixels).astype(np.uint8)


def plasma_value(y, x, time, iterations, sharpness, scale):
    x, y = x / scale, y / scale
    state = np.array([1.0, 1.0, 1.0, 0.0])
    for _ in range(iterations):
        r = np.array([np.cos(y * state[0] - state[3] + time / state[1]),
                      np.sin(x * state[0] - state[3] + time / state[1])]) / state[2]
        r += np.array([-r[1], r[0]]) * 0.3
        x += r[0]
        y += r[1]
        state *= np.array([1.93, 1.15, (2.25 - sharpness), time * state[1]])
    return [np.sin(x - time), np.sin((x + y + np.sin(time)) * 0.5), np.sin(y + time)]


def _plasma(image, params, im_size, pixels):
    k = params["intensity"]
    values = []
    for y, x in _every(im_size, pixels):
        noise = np.array(plasma_value(y, x, params["time"], params["iterations"], params["sharpness"],
                                      params["scale"]))
        values.append(np.clip((1 - k / 255) * image[y, x] + k * noise, 0, 255))
    return _assemble(values, im_size, pixels).astype(np.uint8)


def caustic_value(y, x, time, size):
    """The caustic pattern's brightness at one pixel (before smoothing)."""
    p = (np.array([y, x]) / size % 1) * 6.28318530718 - 250
    i = p.copy()
    c = 1.0
    for n in range(5):
        t = time * (1.0 - (3.5 / (n + 1)))
        i = p + np.array([np.cos(t - i[0]) + np.sin(t + i[1]), np.sin(t - i[1]) + np.cos(t + i[0])])
        c += 1.0 / np.sqrt((p[0] / (np.sin(i[0] + t) / 0.005)) ** 2 + (p[1] / (np.cos(i[1] + t) / 0.005)) ** 2)
    c /= 5.0
    c = 1.17 - c ** 1.4
    return np.clip(np.abs(c) ** 8.0, 0, 1)


def caustic_pattern(params, im_size):
    """The whole smoothed pattern, three equal channels, as the original filters it."""
    rows = [[np.array([caustic_value(y, x, params["time"], params["size"])] * 3) for x in range(im_size)]
            for y in range(im_size)]
    return gaussian_filter(np.array(rows), sigma=params["softening"])


def _refracted(normal, eta):
    """The ray (0, 0, 1) through the surface of unit normal `normal`, by the rotation-matrix construction."""
    incident = np.array([0.0, 0.0, 1.0])
    if np.abs(np.dot(incident, normal)) >= 1.0 - 1e-3:
        return incident
    out_angle = np.arcsin(np.sin(np.arccos(np.dot(incident, normal))) / eta)
    spectator = np.cross(incident, normal)
    spectator /= np.linalg.norm(spectator)
    rotation = np.stack((normal, np.cross(normal, spectator), spectator), axis=0)
    return np.matmul(np.linalg.inv(rotation), np.array([np.cos(out_angle), np.sin(out_angle), 0.0]))


def _luma_at(field, y, x):
    inside = 0 <= y < field.shape[0] and 0 <= x < field.shape[1]
    return np.dot(field[y, x, :] if inside else np.array([0.0, 0.0, 0]), LUMA)


def bilinear(image, point):
    """The original's bilinear sample, corners outside the image read as 0."""
    l, u = int(np.floor(point[0])), int(np.floor(point[1]))
    r, d = l + 1, u + 1

    def at(a, b):
        return image[a, b, :] if 0 <= a < image.shape[0] and 0 <= b < image.shape[1] else np.array([0, 0, 0])
    upper = at(l, u) * (1.0 - point[1] + u) + at(l, d) * (1.0 - d + point[1])
    lower = at(r, u) * (1.0 - point[1] + u) + at(r, d) * (1.0 - d + point[1])
    return upper * (1.0 - point[0] + l) + lower * (1.0 - r + point[0])


def refract_value(y, x, image_unit, pattern, eta, lens_scale, lighting):
    """One output pixel in [0, 1] given the smoothed pattern and the float32 image in [0, 1]."""
    north, south = _luma_at(pattern, y, x - 1), _luma_at(pattern, y, x + 1)
    west, east = _luma_at(pattern, y - 1, x), _luma_at(pattern, y + 1, x)
    normal = np.array([east - west, south - north, 1.0])
    normal = normal / np.linalg.norm(normal)
    vector = np.round(_refracted(normal, eta) * lens_scale, 3)
    out = bilinear(image_unit, np.array([y, x]) + vector[0:2])
    out += (north - south) * lighting
    out += (east - west) * lighting
    return np.clip(out, 0, 1)


def _caustic(image, params, im_size, pixels, pattern=None):
    pattern = caustic_pattern(params, im_size) if pattern is None else pattern
    unit = image.astype(np.float32) / 255
    values = [refract_value(y, x, unit, pattern, params["eta"], params["lens_scale"], params["lighting"])
              for y, x in _every(im_size, pixels)]
    return np.clip((_assemble(values, im_size, pixels) * 255).astype(np.uint8), 0, 255)


def sparkle_value(point, value, center, radius, ray_lengths, amount, color, inverse=False):
    rays = len(ray_lengths)
    dp = point - center
    dist = np.linalg.norm(dp)
    d = (np.arctan2(dp[1], dp[0]) + np.pi) / (2 * np.pi) * rays
    i = int(d)
    f = d - i
    if radius != 0:
        length = ray_lengths[i % rays] + f * (ray_lengths[(i + 1) % rays] - ray_lengths[i % rays])
        g = (length ** 2 / (dist ** 2 + 1e-4)) ** ((100 - amount) / 50.0)
        f -= 0.5
        f = 1 - f ** 2
        f *= g
    f = np.clip(f, 0, 1)
    return color + f * (value - color) if inverse else value + f * (color - value)


def _sparkles(image, params, im_size, pixels):
    state = np.random.RandomState(seed=params["seed"])
    where = _every(im_size, pixels)
    values = [image[y, x] for y, x in where]
    color = np.array([255, 255, 255])
    for center, rays, amount, radius in zip(params["centers"], params["nrays"], params["amounts"], params["radii"]):
        lengths = [max(1, radius + params["randomness"] / 100.0 * radius * state.randn()) for _ in range(rays)]
        values = [sparkle_value(np.array([y, x]), v.astype(np.float32), center, radius, lengths, amount, color)
                  for (y, x), v in zip(where, values)]
    return np.clip(_assemble(values, im_size, pixels), 0, 255).astype(np.uint8)


def _inverse_sparkles(image, params, im_size, pixels):
    state = np.random.RandomState(seed=params["seed"])
    radius = params["radius"]
    lengths = [radius + params["randomness"] / 100.0 * radius * state.randn() for _ in range(params["rays"])]
    color = np.array([255, 255, 255])
    values = [sparkle_value(np.array([y, x]), image[y, x, :].astype(np.float32), params["center"], radius, lengths,
                            params["amount"], color, inverse=True) for y, x in _every(im_size, pixels)]
    return np.clip(_assemble(values, im_size, pixels), 0, 255).astype(np.uint8)


class Perlin:
    """Gradient noise with a 256-entry lattice, tables drawn from a RandomState as the original's generator."""

    def __init__(self, state):
        b = 256
        self.b, self.n = b, 16 * b
        self.g = np.array([self._unit((state.randint(low=0, high=2**31, size=2) % (2 * b) - b) / b)
                           for _ in range(2 * b + 2)])
        self.p = np.arange(2 * b + 2)
        for i in np.arange(b - 1, -1, -1):
            j = state.randint(low=0, high=2**31) % b
            self.p[i], self.p[j] = self.p[j], self.p[i]
        for i in range(b + 2):
            self.p[b + i] = self.p[i]
            self.g[b + i, :] = self.g[i, :]

    @staticmethod
    def _unit(v):
        with np.errstate(invalid="ignore"):
            return v / np.linalg.norm(v)

    def noise(self, x, y):
        def lattice(t):
            t = t + self.n
            cell = int(t) % self.b
            return cell, (cell + 1) % self.b, t % 1, t % 1 - 1.0
        bx0, bx1, rx0, rx1 = lattice(x)
        by0, by1, ry0, ry1 = lattice(y)
        i, j = self.p[bx0], self.p[bx1]
        g, p = self.g, self.p
        b00, b10, b01, b11 = p[i + by0], p[j + by0], p[i + by1], p[j + by1]
        sx, sy = rx0 ** 2 * (3.0 - 2.0 * rx0), ry0 ** 2 * (3.0 - 2.0 * ry0)
        top = rx0 * g[b00, 0] + ry0 * g[b00, 1]
        top = top + sx * (rx1 * g[b10, 0] + ry0 * g[b10, 1] - top)
        bottom = rx0 * g[b01, 0] + ry1 * g[b01, 1]
        bottom = bottom + sx * (rx1 * g[b11, 0] + ry1 * g[b11, 1] - bottom)
        return 1.5 * (top + sy * (bottom - top))

    def turbulence(self, x, y, octaves):
        total, f = 0.0, 1.0
        while f <= octaves:
            total += np.abs(self.noise(f * x, f * y)) / f
            f = f * 2
        return total


def _perlin(image, params, im_size, pixels):
    gen = Perlin(np.random.RandomState(seed=params["seed"]))
    out = []
    with np.errstate(invalid="ignore"):
        for y, x in _every(im_size, pixels):
            point = np.matmul(np.array([y, x]), params["step"])
            f = params["gain"] * gen.turbulence(point[0], point[1], params["turbulence"]) + params["bias"]
            noise = np.clip(np.array([f, f, f]), 0, 1.0)
            out.append((1 - params["alpha"]) * image[y, x].astype(np.float32) + 255 * params["alpha"] * noise)
        return np.nan_to_num(np.clip(_assemble(out, im_size, pixels), 0, 255)).astype(np.uint8)


def blue_power(im_size):
    c = im_size / 2
    return np.array([[np.linalg.norm(np.array([x, y]) - c) for x in range(im_size)] for y in range(im_size)])


def brown_power(im_size):
    c = im_size / 2
    return np.array([[1 / (np.linalg.norm(np.array([x, y]) - c) ** 2 + 1) for x in range(im_size)]
                     for y in range(im_size)])


def fourier_noise(state, im_size, power):
    """Unit-variance noise: `power` with random phases (mirrored), shifted by half, real part of ifft2."""
    phases = state.uniform(low=0, high=2 * np.pi, size=(im_size, im_size // 2))
    if im_size % 2 == 0:
        phases = np.concatenate((phases, phases[::-1, ::-1]), axis=1)
    else:
        middle = state.uniform(low=0, high=2 * np.pi, size=(im_size // 2, 1))
        middle = np.concatenate((middle, np.array([[0.0]]), middle[::-1, :]), axis=0)
        phases = np.concatenate((phases, middle, phases[::-1, ::-1]), axis=1)
    spectrum = power * (np.cos(phases) + np.sin(phases) * 1j)
    spectrum = np.roll(np.roll(spectrum, im_size // 2, axis=0), im_size // 2, axis=1)
    noise = np.real(ifft2(spectrum))
    return noise / np.std(noise)


def _blue_noise_sample(image, params, im_size, pixels, power=None):
    power = blue_power(im_size) if power is None else power
    mask = fourier_noise(np.random.RandomState(seed=params["seed"]), im_size, power) > params["threshold"]
    return np.clip(image * mask.reshape(im_size, im_size, 1), 0, 255).astype(np.uint8)


def _brownish(image, params, im_size, pixels, power=None):
    state = np.random.RandomState(seed=params["seed"])
    noise = np.stack([fourier_noise(state, im_size, brown_power(im_size) if power is None else power)
                      for _ in range(3)], axis=2)
    return np.clip(image + params["intensity"] * noise, 0, 255).astype(np.uint8)


def _checkerboard(image, params, im_size, pixels):
    s0, s1 = params["scales"]
    state = np.random.RandomState(seed=params["seed"])
    grid = state.uniform(size=(int(4 * im_size // s0), int(4 * im_size // s1))) < params["fraction"]
    a = params["angle"]
    values = []
    for y, x in _every(im_size, pixels):
        nx = (np.cos(a) * y + np.sin(a) * x) / s0
        ny = (-np.sin(a) * y + np.cos(a) * x) / s1
        kept = (int(nx % 2) != int(ny % 2)) or not grid[int(nx), int(ny)]
        values.append(image[y, x, :] if kept else np.array([128, 128, 128]))
    return np.clip(_assemble(values, im_size, pixels), 0, 255).astype(np.uint8)


# ---- replaying the original's numbers into shift_hub's functions -----------------------------------------

class OriginalDraws:
    """The original's global np.random calls (uniform, randint, permutation), recording each value handed out."""

    def __init__(self, seed: int):
        self.state = np.random.RandomState(seed)
        self.draws: list = []

    def _keep(self, value):
        self.draws.append(value)
        return value

    def uniform(self, *args, **kwargs):
        return self._keep(self.state.uniform(*args, **kwargs))

    def randint(self, *args, **kwargs):
        return self._keep(self.state.randint(*args, **kwargs))

    def permutation(self, n):
        return self._keep(self.state.permutation(n))


def original_draws(name: str, draws: list, params: dict, im_size: int = 224) -> list:
    """The original's numbers in the order our function draws them: its global draws without the seed, then
    what it drew from RandomState(seed) (ray lengths, Perlin tables, Fourier phases, cells) where it used them."""
    if name == "sparkles":
        centres, seed, rays = draws
        state = np.random.RandomState(seed)
        return [centres, rays, *[np.array([state.randn() for _ in range(n)]) for n in rays]]
    if name == "inverse_sparkles":
        centre, seed, rays = draws
        state = np.random.RandomState(seed)
        return [centre, rays, np.array([state.randn() for _ in range(rays)])]
    if name == "perlin_noise":
        state = np.random.RandomState(draws[0])
        gradients = np.array([state.randint(low=0, high=2**31, size=2) for _ in range(2 * 256 + 2)])
        return [gradients, np.array([state.randint(low=0, high=2**31) for _ in range(256)])]
    if name in ("blue_noise_sample", "brownish_noise"):
        state = np.random.RandomState(draws[0])
        fields = 3 if name == "brownish_noise" else 1
        return [state.uniform(low=0, high=2 * np.pi, size=(im_size, im_size // 2)) for _ in range(fields)]
    if name == "checkerboard_cutout":
        angle, size, seed = draws
        cells = int(4 * im_size // params["scales"][0])
        return [angle, size, np.random.RandomState(seed).uniform(size=(cells, cells))]
    return list(draws)


class Replay:
    """The Generator methods our corruptions call, answered with given numbers in order; each request's kind, shape
    and range must fit the number it gets (a role mix-up fails here)."""

    def __init__(self, draws: list):
        self.draws = list(draws)

    def _next(self, size):
        assert self.draws, "asked for more numbers than the original drew"
        value = self.draws.pop(0)
        shape = () if size is None else tuple(np.atleast_1d(size))
        assert np.shape(value) == shape, (np.shape(value), shape)
        return value

    def uniform(self, low=0.0, high=1.0, size=None):
        value = self._next(size)
        assert np.all((low <= np.asarray(value)) & (np.asarray(value) <= high)), (low, high, value)
        return value

    def integers(self, low, high=None, size=None):
        value = self._next(size)
        assert np.all((low <= np.asarray(value)) & (np.asarray(value) < high)), (low, high, value)
        return value

    def standard_normal(self, size=None):
        return self._next(size)

    def permutation(self, n):
        value = self._next(n)
        assert sorted(np.asarray(value).tolist()) == list(range(n))
        return value


SAMPLERS = {
    "caustic_refraction": _sample_caustic,
    "inverse_sparkles": _sample_inverse_sparkles,
    "sparkles": _sample_sparkles,
    "perlin_noise": _sample_perlin,
    "blue_noise_sample": _sample_seed_only("threshold", 3.0, 2.5),
    "plasma_noise": _sample_plasma,
    "checkerboard_cutout": _sample_checkerboard,
    "cocentric_sine_waves": _sample_cocentric,
    "single_frequency_greyscale": _sample_single_frequency,
    "brownish_noise": _sample_seed_only("intensity", 64),
}
TRANSFORMS = {
    "caustic_refraction": _caustic,
    "inverse_sparkles": _inverse_sparkles,
    "sparkles": _sparkles,
    "perlin_noise": _perlin,
    "blue_noise_sample": _blue_noise_sample,
    "plasma_noise": _plasma,
    "checkerboard_cutout": _checkerboard,
    "cocentric_sine_waves": _cocentric,
    "single_frequency_greyscale": _single_frequency,
    "brownish_noise": _brownish,
}
PER_PIXEL = {"caustic_refraction", "inverse_sparkles", "sparkles", "perlin_noise", "plasma_noise",
             "checkerboard_cutout", "cocentric_sine_waves", "single_frequency_greyscale"}

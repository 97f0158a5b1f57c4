"""A literal, slow re-implementation of the pencil-drawing port imagenet-shift called.

Written from reading taldatech/image2pencil-drawing (as vendored in imagenet-shift's
src-imagenet-drawing) step by step, with the same library calls and the same data flow: scipy
convolve2d for each of the 8 line kernels twice, a full H x W x 8 response stack, per-value Python
loops for the tone histogram, a sparse system built with spdiags and solved by conjugate gradient
(tol 1e-6, 60 iterations). It exists to check `shift_hub.shifts.drawing` against and to time the
speed-up; it is not part of the package. Only the scipy keyword changed (`tol` became `rtol`).
"""
from __future__ import annotations

import numpy as np
from scipy import signal, sparse
from scipy.sparse.linalg import cg
from skimage import color, exposure, filters, io, transform

import cv2


def reference_stroke_map(img, kernel_size=8, stroke_width=1, directions=8, gradient_method=1):
    h, w = img.shape
    if gradient_method:
        sx = cv2.Sobel(img, cv2.CV_64F, 1, 0, ksize=5)
        sy = cv2.Sobel(img, cv2.CV_64F, 0, 1, ksize=5)
        g = np.sqrt(sx**2 + sy**2)
    else:
        gx = np.zeros_like(img)
        gx[:, : w - 1] = img[:, 1:] - img[:, : w - 1]
        gy = np.zeros_like(img)
        gy[: h - 1, :] = img[1:, :] - img[: h - 1, :]
        g = np.sqrt(gx**2 + gy**2)
    side = 2 * kernel_size + 1
    line = np.zeros((side, side))
    line[kernel_size + 1, :] = 1
    responses = np.zeros((h, w, directions))
    for d in range(directions):
        responses[:, :, d] = signal.convolve2d(g, transform.rotate(line, d * 180 / directions), mode="same")
    best = np.argmax(responses, axis=2)
    classified = np.zeros_like(responses)
    for d in range(directions):
        classified[:, :, d] = g * (best == d)
    if not stroke_width:  # the port's guard: a non-zero width never widens the line
        for k in range(1, stroke_width + 1):
            line[kernel_size + 1 - k, :] = 1
            line[kernel_size + 1 + k, :] = 1
    summed = np.zeros_like(classified)
    for d in range(directions):
        summed[:, :, d] = signal.convolve2d(classified[:, :, d], transform.rotate(line, d * 180 / directions), mode="same")
    s = np.sum(summed, axis=2)
    s = (s - s.min()) / (s.max() - s.min())
    return 1 - s


def reference_tone_map(img, w_group=2):
    weights = np.array([[11, 37, 52], [29, 29, 42], [2, 22, 76]])[w_group]
    sigma_b, u_a, u_b, mu_d, sigma_d = 9, 105, 225, 90, 11
    p = np.zeros(256)
    for v in range(256):
        bright = (1 / sigma_b) * np.exp(-(255 - v) / sigma_b)
        mild = 1 / (u_b - u_a) if u_a <= v <= u_b else 0
        dark = (1 / np.sqrt(2 * np.pi * sigma_d)) * np.exp(-((v - mu_d) ** 2) / (2 * sigma_d**2))
        p[v] = weights[0] * bright + weights[1] * mild + weights[2] * dark * 0.01
    target = np.cumsum(p / np.sum(p))
    hist = exposure.histogram(img, nbins=256)  # a (counts, bin centres) tuple, summed as one array below
    source = np.cumsum(hist / np.sum(hist))
    lut = np.zeros(256)
    for v in range(256):
        lut[v] = np.argmin(np.abs(target - source[v]))
    tone = (lut / 256)[(255 * img).astype(int)]
    return filters.gaussian(tone, sigma=np.sqrt(2))


def reference_texture(img, pattern, tone, lam=0.2):
    h, w = img.shape
    n = h * w
    stretched = cv2.resize(pattern, (w, h), interpolation=cv2.INTER_CUBIC)
    log_h = np.log(stretched.reshape(n, 1))
    log_j = np.log(cv2.resize(tone, (w, h), interpolation=cv2.INTER_CUBIC).reshape(n, 1))
    log_h_diag = sparse.spdiags(log_h.ravel(), 0, n, n)
    e = np.ones((n, 1))
    pair = np.concatenate((-e, e), axis=1)
    dx = sparse.spdiags(pair.T, [0, n], n, n)
    dy = sparse.spdiags(pair.T, [0, 1], n, n)
    a = lam * (dx @ dx.T + dy @ dy.T) + log_h_diag.T @ log_h_diag
    b = log_h_diag.T @ log_j
    beta = cg(a, b, rtol=1e-6, maxiter=60)[0]
    return np.power(stretched, beta.reshape(h, w))


def reference_pencil_drawing(rgb_uint8, pattern_path, kernel_size=8, stroke_width=1, directions=8,
                             gradient_method=1, w_group=2, stroke_darkness=2, tone_darkness=1.5,
                             pattern=None):
    """imagenet-shift's convert_image minus file I/O: uint8 RGB in, uint8 RGB out."""
    yuv = color.rgb2yuv(rgb_uint8)
    y = yuv[:, :, 0]
    s = reference_stroke_map(y, kernel_size, stroke_width, directions, gradient_method) ** stroke_darkness
    j = reference_tone_map(y, w_group)
    texture = pattern if pattern is not None else io.imread(pattern_path, as_gray=True)
    t = reference_texture(y, texture, j) ** tone_darkness
    yuv[:, :, 0] = s * t
    out = exposure.rescale_intensity(color.yuv2rgb(yuv), in_range=(0, 1))
    out = exposure.rescale_intensity(out, in_range=(0, 1))
    return np.clip(out * 255, 0, 255).astype(np.uint8)

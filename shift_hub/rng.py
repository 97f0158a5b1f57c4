"""The only source of randomness: one generator per (seed, config, image id).

Seeding from a hash of the triple (never from worker index or position) is what makes the
output byte-identical whatever the number of workers or the order images are processed in.
"""
from __future__ import annotations

import hashlib

import numpy as np


def generator(seed: int, config: str, image_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{int(seed)}\x00{config}\x00{image_id}".encode()).digest()
    entropy = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

"""Shift families: pure functions `fn(image: uint8 HxWx3 RGB, rng: np.random.Generator, **params) -> uint8 array`."""

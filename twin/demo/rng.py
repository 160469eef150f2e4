"""Seeded random streams: one independent generator per (seed, purpose, part), whatever the order of work."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *labels: str | int) -> np.random.Generator:
    """A generator fixed by ``seed`` and the labels, e.g. ``rng_for(42, "hydrant", tile)``."""
    words = [int(seed) & 0xFFFFFFFF]
    for label in labels:
        words.append(zlib.crc32(label.encode()) if isinstance(label, str) else int(label) & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(words))

"""Independent random streams derived from one configured seed."""

from __future__ import annotations

import zlib

import numpy as np

STREAMS = ("init", "order", "noise")


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for `stream`, a pure function of (seed, stream name).

    Streams are separated so that, e.g., changing the noise level leaves the initial weights
    and the data order of a run unchanged.
    """
    key = zlib.crc32(stream.encode())
    return int(np.random.SeedSequence([int(seed), key]).generate_state(1, np.uint64)[0] >> np.uint64(1))

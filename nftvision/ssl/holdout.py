"""The tokens kept out of training, chosen by a seeded hash of (collection, token id).

A hash rather than a random draw: the same token is held out whatever else a folder holds, in
what order it is read, or on which machine, so a benchmark can name the held-out tokens without
the training run's file list.
"""

from __future__ import annotations

import hashlib

HOLDOUT_SEED = 7
HOLDOUT_FRACTION = 0.15


def is_held_out(
    collection: str,
    token_id: str | int,
    *,
    seed: int = HOLDOUT_SEED,
    fraction: float = HOLDOUT_FRACTION,
) -> bool:
    """True for the ``fraction`` of tokens that training never sees (stable per seed)."""
    digest = hashlib.sha256(f"{seed}:{collection}:{token_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction

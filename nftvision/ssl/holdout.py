"""The tokens kept out of training, chosen by a seeded hash of (collection, token id).

A hash rather than a random draw: the same token is held out whatever else a folder holds, in
what order it is read, or on which machine, so a benchmark can name the held-out tokens without
the training run's file list.
"""

from __future__ import annotations

import hashlib

HOLDOUT_SEED = 7
HOLDOUT_FRACTION = 0.15

# Stored collections (mainnet contracts) whose tokens the shipped weights met under their
# dataset's name: the same token is held out whether it is read from the dataset or the store.
DATASET_NAMES = {
    "0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb": "cryptopunks",
    "0x23581767a106ae21c074b2276d25e5c3e136a68b": "moonbirds",
}


def holdout_name(collection: str) -> str:
    """The name that decides a stored collection's hold-out: its dataset's, else its address."""
    return DATASET_NAMES.get(collection.lower(), collection.lower())


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

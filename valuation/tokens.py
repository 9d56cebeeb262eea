"""What is known about a collection's tokens regardless of time: traits, rarity, similarity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from valuation.rarity import TRAIT_COUNT, RarityTable, Traits, compute_rarity

__all__ = ["TokenSpace"]


class TokenSpace:
    """Token ids with their trait indicators, rarity and a similarity measure.

    Similarity is the centred cosine of image embeddings where both tokens have one (pooled CNN
    features are all positive, so raw cosines crowd near 1), and the Jaccard index of the two
    trait sets otherwise.
    """

    def __init__(
        self,
        attributes: Mapping[int, Traits],
        embeddings: Mapping[int, Sequence[float] | np.ndarray] | None = None,
        *,
        min_trait_count: int = 5,
        group_by: str | None = None,
    ) -> None:
        self.rarity: RarityTable = compute_rarity(attributes)
        self.ids = np.array(sorted(self.rarity.traits), dtype=np.int64)
        self.index = {int(t): i for i, t in enumerate(self.ids)}
        n = len(self.ids)
        pairs = sorted(
            {(name, value) for own in self.rarity.traits.values() for name, value in own.items()}
        )
        col = {p: j for j, p in enumerate(pairs)}
        self.pairs = pairs
        onehot = np.zeros((n, len(pairs)), dtype=np.float32)
        for tok, own in self.rarity.traits.items():
            i = self.index[tok]
            for name, value in own.items():
                onehot[i, col[(name, value)]] = 1.0
        # Jaccard works on the real traits; the trait-count meta trait would double count them
        real = np.array([name != TRAIT_COUNT for name, _ in pairs])
        self._sets = onehot[:, real]
        self._set_sizes = self._sets.sum(axis=1)
        # regression features: pairs common enough to estimate a premium for
        common = onehot.sum(axis=0) >= min_trait_count
        self.feature_names = [
            f"{name}={value}" for (name, value), c in zip(pairs, common, strict=True) if c
        ]
        self.trait_features = onehot[:, common]
        self.scores = np.array([self.rarity.scores[int(t)] for t in self.ids])
        self.ranks = np.array([self.rarity.ranks[int(t)] for t in self.ids], dtype=float)
        # the group trait's indicators (a punk's type) for the liquidity model; the rarity
        # table's names are normalised, so the trait's is too
        self.group_by = group_by
        group = (group_by or "").strip().lower()
        type_cols = [j for j, (name, _) in enumerate(pairs) if group and name == group]
        self.type_features = onehot[:, type_cols]
        self.type_names = [pairs[j][1] for j in type_cols]
        self._emb: np.ndarray | None = None
        self._has_emb = np.zeros(n, dtype=bool)
        if embeddings:
            dim = len(next(iter(embeddings.values())))
            emb = np.zeros((n, dim), dtype=np.float32)
            for tok, vec in embeddings.items():
                at = self.index.get(int(tok))
                if at is not None:
                    emb[at] = np.asarray(vec, dtype=np.float32)
                    self._has_emb[at] = True
            centre = emb[self._has_emb].mean(axis=0)
            emb = np.where(self._has_emb[:, None], emb - centre, 0.0)
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            self._emb = (emb / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, token_id: int) -> int:
        i = self.index.get(int(token_id))
        if i is None:
            raise KeyError(f"token {token_id} is not in the collection's attributes")
        return i

    def similarity(self, i: int) -> np.ndarray:
        """Similarity of token at position ``i`` to every token, in [-1, 1] (1 = itself)."""
        inter = self._sets @ self._sets[i]
        union = self._set_sizes + self._set_sizes[i] - inter
        sim = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)
        if self._emb is not None and self._has_emb[i]:
            cos = self._emb @ self._emb[i]
            sim = np.where(self._has_emb, cos, sim)
        return np.asarray(sim, dtype=float)

"""Self-supervised features learned from NFT art itself (the ``nft-ssl-v1`` extractor).

Pixel art is a few flat colours on a flat background, so each training image is kept as an
index map over its own palette (:mod:`~nftvision.ssl.palette`, index 0 = background). Views for
contrastive learning recolour that palette, swap the background, shift and flip
(:mod:`~nftvision.ssl.augment`): two views of one token share only their *shapes*, which is what
a small CNN (:mod:`~nftvision.ssl.model`) learns to match with an NT-Xent loss
(:mod:`~nftvision.ssl.train`). No trait label is read while training; a fixed, seeded share of
every collection is held out (:mod:`~nftvision.ssl.holdout`) so evaluations run on tokens the
network never saw.
"""

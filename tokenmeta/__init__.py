"""Everything a token points at, fetched safely: URI normalisation, CIDs, guarded IPFS, HTTP,
Arweave and data: fetching with byte and time limits, metadata JSON parsing, and media sniffing and
decoding under pixel caps. Pure: it knows nothing of the chain, the database or the queue.

The public face: ``resolve.Resolver`` and ``resolve.resolve_many`` (URI → metadata → verified
image), ``uri.parse_token_uri``, ``metadata.parse_metadata``, ``media.decode_media`` and the
error tree in ``errors``.
"""

"""The local stack the demo, the tests and the benchmarks run on: an embedded Postgres with
pgvector and an embedded Redis (``embedded``), anvil and the compiled demo contracts
(``chaintools``), and a loopback IPFS gateway over content we add ourselves (``ipfs_gateway``).
Production points nftwatch at real services instead; nothing here is used then."""

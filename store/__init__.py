"""The Postgres side: the schema and every query the other parts run. Nothing else in the
project writes SQL; everyone calls a named function here.

    models        the SQLAlchemy 2 tables (pgvector columns, NUMERIC(78) token ids)
    records       the chain event records the decoder builds and ``chain`` records
    db            engines, sessions, migrations
    chain/        recording a batch of events in one transaction, reorg rollback, checkpoints
    tokens        collections, token rows and the metadata state machine, dead letters
    vectors       media bytes, embeddings, per-extractor pgvector indexes, kNN comparables
    outbox        work written with the events, handed to the broker by the dispatcher
    market        sales: the valuation model's, a token's, a collection's statistics
    listings      on-chain listings with their valuations, the stream's position, exports
    valuations    stored valuations
    keys          API keys (their SHA-256 only)
    ops           the operator's reads: clock, ping, follow position, queue depths, demo counts
    locks         the follower's advisory leader lock

It imports nothing of ours.
"""

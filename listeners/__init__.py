"""The chain side: everything that talks to a node and turns its logs into records.

    rpc           the one JSON-RPC seam: logs, blocks, receipts, contract reads (eth_call,
                  batched, Multicall3 through ``worker.contract_reads``), one error family with
                  Retry-After
    errors        that family: ``ListenerError`` → ``Retryable`` / ``Permanent``
    logs          raw logs read by hand: topics, words, the state of one decoding pass
    decode        logs → ``store.records``: transfers of 721, 1155 and 2309 here, and the
                  markets' handlers joined by topic layout
    markets/      one module per marketplace (CryptoPunks, Seaport, Blur, Blend, LooksRare,
                  X2Y2, Sudoswap) and the registry that builds the ``eth_getLogs`` filters
    feeds/        off-chain listings: the OpenSea Stream API
    pipeline      fetch → decode → record, one batch
    follower      the head follower, exact through reorgs
    heads         reorg detection by block hash
    backfill      replaying a block range, adaptive, checkpointed and resumable
    inferred      sales no market announces (a paid transfer, a paid mint)
    leader        one leading follower per chain (a Postgres advisory lock)

It imports ``store`` and nothing else of ours.
"""

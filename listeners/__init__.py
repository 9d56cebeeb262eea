"""The chain side: everything that talks to a node and turns its logs into records.

    rpc           the one JSON-RPC seam: logs, blocks, contract reads (eth_call, batched,
                  Multicall3 through ``worker.contract_reads``), one error family with Retry-After
    errors        that family: ``ListenerError`` → ``Retryable`` / ``Permanent``
    decode        logs → ``store.records`` (transfers of 721, 1155, 2309 and punks; sales, listings)
    pipeline      fetch → decode → record, one batch
    follower      the head follower, exact through reorgs
    heads         reorg detection by block hash
    backfill      replaying a block range, adaptive, checkpointed and resumable
    inferred      finding NFT contracts in "all" mode
    leader        one leading follower per chain (a Postgres advisory lock)

It imports ``store`` and nothing else of ours.
"""

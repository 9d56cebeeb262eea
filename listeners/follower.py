"""The head follower: new blocks in order, parent-hash continuity checked against ``blocks``,
reorgs rolled back to the common ancestor and the new branch ingested.

Every block the follower passes is stored (with or without events), so the hash chain it checks
has no holes. The checkpoint ``follow:{chain_id}`` holds the last block ingested and its hash; it
moves in the same transaction as the events. ``confirmations`` keeps the follower that many
blocks behind the head (0 = at the tip, relying on rollback).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from listeners.backfill import add_inferred_sales, fetch_logs, record_decoded
from listeners.decode import WETH, decode_logs
from listeners.errors import ListenerError, Retryable
from listeners.heads import HeadWatcher
from listeners.rpc import Rpc
from store.chain import block_hashes, get_checkpoint, rollback_to, set_checkpoint
from store.records import BlockHeader

log = logging.getLogger(__name__)


@dataclass
class FollowerStats:
    blocks: int = 0
    reorgs: int = 0
    deepest_reorg: int = 0
    polls: int = 0


class Follower:
    def __init__(
        self,
        rpc: Rpc,
        session_factory: sessionmaker[Session],
        chain_id: int,
        addresses: list[str] | None,
        confirmations: int = 0,
        *,
        start_block: int | None = None,
        max_blocks_per_poll: int = 500,
        max_reorg_depth: int = 1_000,
        legacy_contracts: frozenset[str] = frozenset(),
        weth_contracts: frozenset[str] = frozenset({WETH}),
        ws_url: str | None = None,
        ws_safety_poll: float = 15.0,
    ) -> None:
        self.rpc = rpc
        self.sessions = session_factory
        self.chain_id = chain_id
        self.addresses = [a.lower() for a in addresses] if addresses else None
        self.nft_contracts = frozenset(self.addresses) if self.addresses else None
        self.confirmations = confirmations
        self.start_block = start_block
        self.max_blocks = max(1, max_blocks_per_poll)
        self.max_reorg_depth = max_reorg_depth
        self.legacy_contracts = legacy_contracts
        self.weth_contracts = frozenset(a.lower() for a in weth_contracts)
        self.ws_url = ws_url
        self.ws_safety_poll = ws_safety_poll
        self.heads: HeadWatcher | None = None
        self.checkpoint = f"follow:{chain_id}"
        self.stats = FollowerStats()

    def _position(self) -> tuple[int, str | None]:
        """(last ingested block, its hash); before the first run: the block before the start."""
        with self.sessions() as s:
            cp = get_checkpoint(s, self.checkpoint)
        if cp is not None:
            return cp
        if self.start_block is not None:
            return self.start_block - 1, None
        return self.rpc.get_block_number() - self.confirmations - 1, None

    def poll_once(self) -> int:
        """Ingest the blocks that appeared since the last poll; returns how many were ingested."""
        self.stats.polls += 1
        head = self.rpc.get_block_number() - self.confirmations
        last, last_hash = self._position()
        if last_hash is not None and last >= 0:
            node = self.rpc.get_block(last)
            if node is None or node.hash != last_hash:
                last, last_hash = self._handle_reorg(last)
        if head <= last:
            return 0
        end = min(head, last + self.max_blocks)
        numbers = list(range(last + 1, end + 1))
        got = self.rpc.get_blocks(numbers)
        headers = [got[n] for n in numbers if n in got]
        if len(headers) != len(numbers):
            raise Retryable(f"node lacks headers in {last + 1}-{end}")
        prev = last_hash
        for h in headers:
            if prev is not None and h.parent_hash != prev:
                # The chain changed between reading the head and the headers: next poll sorts it.
                raise Retryable(f"block {h.number} does not extend {prev}")
            prev = h.hash
        logs = fetch_logs(self.rpc, last + 1, end, self.addresses, self.chain_id)
        by_hash = {h.hash for h in headers}
        if any(lg["blockHash"].lower() not in by_hash for lg in logs):
            raise Retryable(f"logs of {last + 1}-{end} come from another branch")
        decoded = decode_logs(
            logs,
            legacy_contracts=self.legacy_contracts,
            nft_contracts=self.nft_contracts,
            chain_id=self.chain_id,
        )
        add_inferred_sales(self.rpc, decoded, self.nft_contracts, self.weth_contracts)
        with self.sessions.begin() as s:
            record_decoded(
                s, self.chain_id, headers, decoded, self.checkpoint, end, headers[-1].hash
            )
        self.stats.blocks += len(headers)
        return len(headers)

    def _handle_reorg(self, last: int) -> tuple[int, str | None]:
        """Walk back from ``last`` to the highest block whose stored hash the node still has,
        roll everything above it back; returns the new position."""
        floor = max(-1, last - self.max_reorg_depth)
        n = last
        ancestor: tuple[int, str | None] | None = None
        window = 32
        while n > floor and ancestor is None:
            lo = max(floor + 1, n - window + 1)
            numbers = list(range(lo, n + 1))
            with self.sessions() as s:
                stored = block_hashes(s, self.chain_id, numbers)
            node = self.rpc.get_blocks([k for k in numbers if k in stored])
            for k in reversed(numbers):
                h: BlockHeader | None = node.get(k)
                if k in stored and h is not None and h.hash == stored[k]:
                    ancestor = (k, stored[k])
                    break
                if k not in stored:
                    # Below what the follower stored: nothing to compare, take it as the fork.
                    ancestor = (k, None)
                    break
            n = lo - 1
        if ancestor is None:
            raise ListenerError(f"reorg deeper than {self.max_reorg_depth} blocks at {last}")
        depth = last - ancestor[0]
        log.warning("chain %s: reorg of %d blocks above %d", self.chain_id, depth, ancestor[0])
        with self.sessions.begin() as s:
            rollback_to(s, self.chain_id, ancestor[0])

            set_checkpoint(s, self.checkpoint, self.chain_id, ancestor[0], ancestor[1])
        self.stats.reorgs += 1
        self.stats.deepest_reorg = max(self.stats.deepest_reorg, depth)
        return ancestor

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Poll until ``stop`` is set; retryable errors are logged and retried next interval.

        With ``ws_url``, a new head wakes the follower at once; while subscribed it polls only
        every ``ws_safety_poll`` seconds, else (socket down) every ``interval``."""
        wake = threading.Event()
        watcher_thread: threading.Thread | None = None
        if self.ws_url:
            self.heads = HeadWatcher(self.ws_url, wake)
            watcher_thread = threading.Thread(
                target=self.heads.run, args=(stop,), name="new-heads", daemon=True
            )
            watcher_thread.start()
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    ingested = self.poll_once()
                except Retryable as exc:
                    log.warning("chain %s: %s (will retry)", self.chain_id, exc)
                    ingested = 0
                if ingested < self.max_blocks:
                    subscribed = self.heads is not None and self.heads.connected.is_set()
                    self._sleep(stop, wake, self.ws_safety_poll if subscribed else interval)
        finally:
            if watcher_thread is not None:
                watcher_thread.join(timeout=5)

    @staticmethod
    def _sleep(stop: threading.Event, wake: threading.Event, seconds: float) -> None:
        """Until ``seconds`` pass, a new head arrives or ``stop`` is set."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or wake.wait(min(left, 0.25)):
                return

"""The token merge survives another transaction inserting the same token row meanwhile (the punk
importer is not a chain writer and takes no advisory lock): the batch commits and the stored row
carries both writers' columns."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from listeners.decode import ZERO
from store.chain import record_batch
from store.records import BlockHeader, TransferEvent

CHAIN = 7
NFT = "0x" + "c4" * 20


def _waiting_on_a_transaction(engine: Any) -> bool:
    with engine.connect() as c:
        return bool(
            c.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks "
                    "WHERE locktype = 'transactionid' AND NOT granted)"
                )
            ).scalar()
        )


def test_merge_falls_back_to_upsert_when_a_token_row_appears_concurrently(db_url: str) -> None:
    engine = create_engine(db_url)
    factory = sessionmaker(engine)
    header = BlockHeader(1, "0x" + "11" * 32, "0x" + "00" * 32, 1_700_000_000)
    owner = "0x" + "22" * 20
    mint = TransferEvent(
        1, header.hash, "0x" + "33" * 32, 0, 0, NFT, 9, ZERO, owner, 1, "erc721", True
    )
    # another writer inserts the token row and holds its transaction open
    other = engine.connect()
    other.begin()
    other.execute(
        text(
            "INSERT INTO tokens (chain_id, contract, token_id, transfer_count, sale_count, "
            "metadata_status, attempts, token_uri) "
            "VALUES (:c, :a, 9, 0, 0, 'ok', 0, 'ipfs://imported')"
        ),
        {"c": CHAIN, "a": NFT},
    )
    errors: list[BaseException] = []

    def record() -> None:
        try:
            with factory.begin() as s:
                record_batch(s, CHAIN, [header], [mint], [], [], [], None, None, None)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    writer = threading.Thread(target=record)
    writer.start()
    deadline = time.monotonic() + 10
    while not _waiting_on_a_transaction(engine) and time.monotonic() < deadline:
        time.sleep(0.05)  # the merge's insert waits for the other transaction's row
    other.commit()
    other.close()
    writer.join(10)
    assert not writer.is_alive() and errors == []
    with engine.connect() as c:
        row = c.execute(
            text(
                "SELECT owner, minted_block, transfer_count, token_uri FROM tokens "
                "WHERE chain_id = :c AND contract = :a AND token_id = 9"
            ),
            {"c": CHAIN, "a": NFT},
        ).one()
    engine.dispose()
    assert tuple(row) == (owner, 1, 0, "ipfs://imported")

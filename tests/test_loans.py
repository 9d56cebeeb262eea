"""A token's liens, folded from their loan events: the real mainnet repayment of Azuki #1527's
lien, recorded through the backfill's own path, and a lien's life from taken to seized."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from listeners.backfill import record_decoded
from listeners.decode import decode_logs
from store.loans import token_liens
from store.models import Loan
from store.records import BlockHeader

FIXTURE = Path(__file__).parent / "fixtures" / "mainnet_17173049_17173050.json"
AZUKI = "0xed5af388653567af2f388e6224dc7c4b3241c544"


def test_the_real_repayment_of_azuki_1527s_lien(sessions: sessionmaker[Session]) -> None:
    recording = json.loads(FIXTURE.read_text())
    headers = [
        BlockHeader(b["number"], b["hash"], b["parent_hash"], b["timestamp"])
        for b in recording["blocks"]
    ]
    decoded = decode_logs(recording["logs"], chain_id=1)
    with sessions.begin() as s:
        record_decoded(s, 1, headers, decoded, None, None, None)
    with sessions() as s:
        [lien] = token_liens(s, 1, AZUKI, 1527)
    assert (lien.protocol, lien.lien_id, lien.status) == ("blend", 593, "repaid")
    assert lien.lender == "0x020ca66c30bec2c4fe3861a94e4db4a498a35872"
    assert lien.borrower == "0x14faf662e4631189d7c5e32d13391cd9fa06d68a"
    assert lien.repaid_wei == 14_711_652_057_108_540_428  # 14.71 ETH paid back to the lender
    assert lien.ended_at is not None and lien.taken_at is None  # taken before these blocks


def _event(n: int, kind: str, token: int | None, **kw: object) -> Loan:
    return Loan(
        chain_id=1,
        block_number=100 + n,
        block_hash=f"0x{n:064x}",
        tx_hash=f"0x{n + 500:064x}",
        log_index=0,
        block_time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=n),
        protocol="blend",
        lien_id=Decimal(7),
        kind=kind,
        contract=AZUKI,
        token_id=None if token is None else Decimal(token),
        **kw,
    )


def test_a_lien_from_taken_through_refinance_to_seizure(sessions: sessionmaker[Session]) -> None:
    lender, other, borrower = ("0x" + c * 40 for c in "abc")
    with sessions.begin() as s:
        s.add_all(
            [
                _event(
                    1,
                    "taken",
                    9,
                    lender=lender,
                    borrower=borrower,
                    principal_wei=Decimal(5 * 10**18),
                    rate_bps=Decimal(1200),
                ),
                _event(2, "auction", None),
                _event(
                    3,
                    "refinanced",
                    None,
                    lender=other,
                    principal_wei=Decimal(6 * 10**18),
                    rate_bps=Decimal(900),
                ),
            ]
        )
    with sessions() as s:
        [lien] = token_liens(s, 1, AZUKI, 9)
    assert (lien.status, lien.lender, lien.borrower) == ("active", other, borrower)
    assert (lien.principal_wei, lien.rate_bps, lien.events) == (6 * 10**18, 900, 3)
    with sessions.begin() as s:
        s.add(_event(4, "seized", None))
    with sessions() as s:
        [lien] = token_liens(s, 1, AZUKI, 9)
        assert token_liens(s, 1, AZUKI, 10) == []
    assert lien.status == "seized" and lien.ended_at == dt.datetime(2024, 1, 5, tzinfo=dt.UTC)

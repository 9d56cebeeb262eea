"""Blur Blend, peer-to-peer loans against NFTs, paid in Blur Pool ETH.

Every event is unindexed (one topic, static words):

- ``LoanOfferTaken(bytes32 offerHash, uint256 lienId, address collection, address lender,
  address borrower, uint256 loanAmount, uint256 rate, uint256 tokenId, uint256 auctionDuration)``
- ``Repay(uint256 lienId, address collection)``
- ``StartAuction(uint256 lienId, address collection)``
- ``Refinance(uint256 lienId, address collection, address newLender, uint256 newAmount,
  uint256 newRate, uint256 newAuctionDuration)``
- ``Seize(uint256 lienId, address collection)``
- ``BuyLocked(uint256 lienId, address collection, address buyer, address seller,
  uint256 tokenId)``

Each becomes a :class:`LoanEvent` (the fields an event does not name are None). ``BuyLocked`` is
also a sale of the collateral, from the borrower to the buyer. When the same transaction
filled a Blur Exchange order for that token, that fill is the sale (it has the price and fees)
and takes the Blend parties; otherwise the price is what the buyer paid in Blur Pool ETH in the
transaction. Either way one sale, never two.

Source: the verified Blend (proxy 0x2946…a20b), ``IBlend``'s events.
"""

from __future__ import annotations

from listeners.logs import DecodeContext, Handler, Log, addr, topic, uint, words
from listeners.markets.base import BLUR_POOL, Deployment, Market
from store.records import LoanEvent, SaleEvent

NAME = "blend"
BLEND = "0x29469395eaf6f95920e59f858042f0e28d98a20b"

LOAN_OFFER_TAKEN = topic(
    "LoanOfferTaken(bytes32,uint256,address,address,address,uint256,uint256,uint256,uint256)"
)
REPAY = topic("Repay(uint256,address)")
START_AUCTION = topic("StartAuction(uint256,address)")
REFINANCE = topic("Refinance(uint256,address,address,uint256,uint256,uint256)")
SEIZE = topic("Seize(uint256,address)")
BUY_LOCKED = topic("BuyLocked(uint256,address,address,address,uint256)")


def _loan(
    d: DecodeContext,
    lien_id: int,
    kind: str,
    contract: str,
    token_id: int | None = None,
    lender: str | None = None,
    borrower: str | None = None,
    principal: int | None = None,
    rate: int | None = None,
    duration: int | None = None,
) -> LoanEvent:
    return LoanEvent(
        block_number=d.block_number,
        block_hash=d.block_hash,
        tx_hash=d.tx_hash,
        log_index=d.log_index,
        protocol=NAME,
        lien_id=lien_id,
        kind=kind,
        contract=contract,
        token_id=token_id,
        lender=lender,
        borrower=borrower,
        principal_wei=principal,
        rate_bps=rate,
        auction_duration=duration,
    )


def _words(log: Log, count: int) -> list[str] | None:
    w = words(log["data"])
    return w if len(w) >= count else None


def loan_offer_taken(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    w = _words(log, 9)
    if w is None:
        return False
    contract = addr(w[2])
    if d.keeps(contract):
        d.loans.append(
            _loan(
                d,
                uint(w[1]),
                "taken",
                contract,
                token_id=uint(w[7]),
                lender=addr(w[3]),
                borrower=addr(w[4]),
                principal=uint(w[5]),
                rate=uint(w[6]),
                duration=uint(w[8]),
            )
        )
    return True


def refinance(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    w = _words(log, 6)
    if w is None:
        return False
    contract = addr(w[1])
    if d.keeps(contract):
        d.loans.append(
            _loan(
                d,
                uint(w[0]),
                "refinanced",
                contract,
                lender=addr(w[2]),
                principal=uint(w[3]),
                rate=uint(w[4]),
                duration=uint(w[5]),
            )
        )
    return True


def _lien_only(kind: str) -> Handler:
    def handle(d: DecodeContext, log: Log, topics: list[str]) -> bool:
        w = _words(log, 2)
        if w is None:
            return False
        contract = addr(w[1])
        if d.keeps(contract):
            d.loans.append(_loan(d, uint(w[0]), kind, contract))
        return True

    handle.__name__ = handle.__qualname__ = kind
    handle.__doc__ = f"An event that names only the lien: ``{kind}``."
    return handle


repay = _lien_only("repaid")
start_auction = _lien_only("auction")
seize = _lien_only("seized")


def buy_locked(d: DecodeContext, log: Log, topics: list[str]) -> bool:
    """``BuyLocked``: the loan's end by a purchase; the sale is settled by :func:`finish`."""
    w = _words(log, 5)
    if w is None:
        return False
    contract = addr(w[1])
    if not d.keeps(contract):
        return True
    buyer, seller, token_id = addr(w[2]), addr(w[3]), uint(w[4])
    loan = _loan(d, uint(w[0]), "bought", contract, token_id=token_id, borrower=seller)
    d.loans.append(loan)
    d.scratch.setdefault(NAME, []).append((loan, buyer, seller))
    return True


def finish(d: DecodeContext) -> None:
    """One sale per ``BuyLocked``: the same transaction's exchange fill of that token, given the
    Blend parties, or else a sale at what the buyer paid in Blur Pool ETH."""
    pending: list[tuple[LoanEvent, str, str]] = d.scratch.pop(NAME, [])
    for loan, buyer, seller in pending:
        fill = next(
            (
                s
                for s in d.sales
                if s.tx_hash == loan.tx_hash
                and s.contract == loan.contract
                and s.token_id == loan.token_id
                and s.marketplace != NAME
            ),
            None,
        )
        if fill is not None:
            fill.buyer, fill.seller, fill.marketplace = buyer, seller, NAME
            continue
        paid = sum(
            p.amount
            for p in d.payments
            if p.tx_hash == loan.tx_hash and p.token == BLUR_POOL and p.sender == buyer
        )
        d.sales.append(
            SaleEvent(
                block_number=loan.block_number,
                block_hash=loan.block_hash,
                tx_hash=loan.tx_hash,
                log_index=loan.log_index,
                batch_index=0,
                contract=loan.contract,
                token_id=loan.token_id or 0,
                seller=seller,
                buyer=buyer,
                price_wei=paid,
                currency="BLUR_POOL",
                marketplace=NAME,
            )
        )
    if pending:
        d.sales.sort(key=lambda s: (s.block_number, s.log_index, s.batch_index))


MARKET = Market(
    name=NAME,
    # The proxy's first block: Blend launched on 1 May 2023; an earlier bound.
    deployments=(Deployment(BLEND, 17_165_000),),
    handlers={
        (LOAN_OFFER_TAKEN, 1): loan_offer_taken,
        (REPAY, 1): repay,
        (START_AUCTION, 1): start_auction,
        (REFINANCE, 1): refinance,
        (SEIZE, 1): seize,
        (BUY_LOCKED, 1): buy_locked,
    },
    payment_tokens=frozenset({BLUR_POOL}),
    finish=finish,
)

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

Each becomes a :class:`LoanEvent` (the fields an event does not name are None). The rest is
read from the transaction by the finishing pass, as Blend settles a lien's end: the debt goes
to the lender first, then the surplus to the borrower (Blur Pool transfers). So a ``Repay``
gets its lender and ``repaid_wei``; when Blend itself pays out, the borrower sold the collateral
into a Blur bid (``takeBid``: Repay, then the exchange's fill with Blend as the sell order's
trader), and that fill's seller becomes the borrower. ``BuyLocked`` (preceded by its lien's
``Repay``) is a sale from the borrower to the buyer at what the buyer paid in Blur Pool ETH
(fees, debt and surplus); should an exchange fill of the token share the transaction, that fill
is the sale and takes the Blend parties. One sale either way, never two. In the buy-to-borrow
flows Blend is the buy order's trader of a Blur fill; that fill's buyer becomes the borrower of
the lien taken in the same transaction.

Source: the verified Blend (proxy 0x2946…a20b), ``IBlend``'s events.
"""

from __future__ import annotations

from listeners.logs import DecodeContext, Handler, Log, Payment, addr, topic, uint, words
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
        d.scratch.setdefault(NAME, []).append((d.loans[-1], d.contract, None))
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
            loan = _loan(d, uint(w[0]), kind, contract)
            d.loans.append(loan)
            if kind == "repaid":
                d.scratch.setdefault(NAME, []).append((loan, d.contract, None))
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
    d.scratch.setdefault(NAME, []).append((loan, d.contract, buyer))
    return True


def _window(d: DecodeContext, loan: LoanEvent, emitter: str) -> list[Payment]:
    """The Blur Pool payments that settle ``loan``'s lien: after its event, before the next
    Blend event of another lien in the transaction, not into Blend itself."""
    later = [
        e.log_index
        for e in d.loans
        if e.tx_hash == loan.tx_hash and e.log_index > loan.log_index and e.lien_id != loan.lien_id
    ]
    end = min(later, default=None)
    return [
        p
        for p in d.payments
        if p.tx_hash == loan.tx_hash
        and p.token == BLUR_POOL
        and p.log_index > loan.log_index
        and (end is None or p.log_index < end)
        and p.receiver != emitter
    ]


def _settle_repay(d: DecodeContext, loan: LoanEvent, emitter: str) -> None:
    """``Repay`` names only the lien: the lender is the first payee after it (every flow that
    ends a lien pays the debt first, then the surplus to the borrower), and when Blend itself
    pays out (a Blur bid taken on the collateral) the next payee is the borrower, who is the
    seller of that fill rather than Blend (and the token it sold is the lien's collateral)."""
    window = _window(d, loan, emitter)
    if not window:
        return
    lender = window[0].receiver
    loan.lender = lender
    loan.repaid_wei = sum(p.amount for p in window if p.receiver == lender)
    rest = [p for p in window if p.receiver != lender]
    if rest and rest[0].sender == emitter:
        loan.borrower = rest[0].receiver
        for s in d.sales:
            if s.tx_hash == loan.tx_hash and s.contract == loan.contract and s.seller == emitter:
                s.seller = loan.borrower
                if loan.token_id is None:  # the collateral is the token Blend sold
                    loan.token_id = s.token_id


def _settle_borrow(d: DecodeContext, loan: LoanEvent, emitter: str) -> None:
    """Buy-to-borrow: Blend bought the collateral through the exchange for the borrower (the buy
    order's trader is Blend), so the fill's buyer is the borrower."""
    for s in d.sales:
        if (
            s.tx_hash == loan.tx_hash
            and s.contract == loan.contract
            and s.token_id == loan.token_id
            and s.buyer == emitter
        ):
            s.buyer = loan.borrower or s.buyer


def _settle_purchase(d: DecodeContext, loan: LoanEvent, emitter: str, buyer: str) -> None:
    """One sale per ``BuyLocked``: the same transaction's exchange fill of that token, given the
    Blend parties, or else a sale at what the buyer paid in Blur Pool ETH (fees, the debt to
    the lender and the surplus to the borrower)."""
    seller = loan.borrower or ""
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
        return
    repay = next(
        (
            e
            for e in d.loans
            if e.tx_hash == loan.tx_hash and e.lien_id == loan.lien_id and e.kind == "repaid"
        ),
        None,
    )
    lender = repay.lender if repay is not None else None
    if repay is not None:
        loan.lender, loan.repaid_wei = repay.lender, repay.repaid_wei
    paid = [p for p in d.payments if p.tx_hash == loan.tx_hash and p.token == BLUR_POOL]
    price = sum(p.amount for p in paid if p.sender == buyer)
    fees = sum(p.amount for p in paid if p.sender == buyer and p.receiver not in (lender, seller))
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
            price_wei=price,
            currency="BLUR_POOL",
            marketplace=NAME,
            fees_wei=fees,
        )
    )
    d.sales.sort(key=lambda s: (s.block_number, s.log_index, s.batch_index))


def finish(d: DecodeContext) -> None:
    """Settle what the events leave to their transaction: repayments' lender and amount, the
    seller of a bid taken on collateral, and the sale of each purchase out of a loan."""
    pending: list[tuple[LoanEvent, str, str | None]] = d.scratch.pop(NAME, [])
    for loan, emitter, buyer in pending:  # in log order: a Repay before its BuyLocked
        if loan.kind == "taken":
            _settle_borrow(d, loan, emitter)
        elif buyer is None:
            _settle_repay(d, loan, emitter)
        else:
            _settle_purchase(d, loan, emitter, buyer)


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

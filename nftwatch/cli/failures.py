"""``nftwatch failures`` lists the dead letters (tokens whose metadata or image failed for good)
and ``nftwatch retry`` re-drives them through the outbox, so the service's dispatcher sends them
to the workers like any other resolve work."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Annotated

import typer
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from nftwatch.cli.app import cli
from nftwatch.cli.common import JsonFlag, _print_json, _settings, _token_args
from store import outbox
from store.models import FetchFailure, Token

# A dead letter: resolving failed permanently or ran out of attempts, or the metadata resolved
# but its image did not (status ok with an error recorded).
_DEAD = or_(
    Token.metadata_status == "failed",
    and_(Token.metadata_status == "ok", Token.error_class.is_not(None)),
)


@dataclass(frozen=True)
class DeadLetter:
    chain_id: int
    contract: str
    token_id: str
    status: str
    stage: str | None
    error_class: str | None
    message: str | None
    attempts: int
    uri: str | None
    failed_at: dt.datetime | None


def dead_letters(session: Session, limit: int = 50) -> list[DeadLetter]:
    """The most recent dead letters with their last recorded failure."""
    tokens = session.scalars(
        select(Token).where(_DEAD).order_by(Token.updated_at.desc()).limit(limit)
    )
    out = []
    for t in tokens:
        last = session.scalars(
            select(FetchFailure)
            .where(
                FetchFailure.chain_id == t.chain_id,
                FetchFailure.contract == t.contract,
                FetchFailure.token_id == t.token_id,
            )
            .order_by(FetchFailure.id.desc())
            .limit(1)
        ).first()
        out.append(
            DeadLetter(
                chain_id=t.chain_id,
                contract=t.contract,
                token_id=str(t.token_id),
                status=t.metadata_status,
                stage=last.stage if last is not None else None,
                error_class=t.error_class,
                message=t.error_message,
                attempts=last.attempts if last is not None else t.attempts,
                uri=last.uri if last is not None else t.token_uri,
                failed_at=last.created_at if last is not None else t.updated_at,
            )
        )
    return out


def redrive(
    session: Session,
    *,
    token: tuple[str, int] | None = None,
    chain_id: int | None = None,
) -> int:
    """Queue a fresh resolve of one token (any status), or of every dead letter when ``token``
    is None; their attempts start again. Returns how many were queued."""
    query = select(Token.chain_id, Token.contract, Token.token_id)
    if token is not None:
        query = query.where(Token.contract == token[0], Token.token_id == Decimal(token[1]))
    else:
        query = query.where(_DEAD)
    if chain_id is not None:
        query = query.where(Token.chain_id == chain_id)
    rows = session.execute(query.with_for_update()).all()
    run = uuid.uuid4().hex[:12]
    for chain, contract, token_id in rows:
        session.execute(
            update(Token)
            .where(Token.chain_id == chain, Token.contract == contract, Token.token_id == token_id)
            .values(metadata_status="pending", attempts=0, next_retry_at=None)
        )
        outbox.enqueue(
            session,
            "resolve",
            "resolve",
            {"chain_id": chain, "contract": contract, "token_id": str(token_id)},
            dedupe_key=f"redrive:{chain}:{contract}:{token_id}:{run}",
        )
    return len(rows)


@cli.command()
def failures(
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List dead letters: tokens whose metadata or image failed for good.

    Example: nftwatch failures --json
    """
    from nftwatch.runtime import open_resources

    with open_resources(_settings()) as res, res.factory() as session:
        letters = dead_letters(session, limit)
    if as_json:
        _print_json([_jsonable(asdict(d)) for d in letters])
        return
    if not letters:
        typer.echo("no dead letters")
        return
    for d in letters:
        typer.echo(
            f"{d.chain_id} {d.contract} {d.token_id}  {d.status}/{d.stage or '-'}  "
            f"{d.error_class}  attempts={d.attempts}  {d.uri or '-'}\n    {d.message or ''}"
        )


@cli.command()
def retry(
    contract: Annotated[str | None, typer.Argument(help="Contract address.")] = None,
    token_id: Annotated[str | None, typer.Argument(help="Token id (decimal).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    chain_id: Annotated[int | None, typer.Option(help="Only this chain.")] = None,
) -> None:
    """Re-drive dead letters through the outbox (a running `nftwatch run` sends them on).

    Example: nftwatch retry 0xb47e3cd837ddf8e4c57f05d70ab865de6e193bbb 7804 (or --all)
    """
    from nftwatch.runtime import open_resources

    if all_ == (contract is not None):
        raise typer.BadParameter("give either --all or CONTRACT TOKEN_ID")
    token = None
    if contract is not None:
        if token_id is None:
            raise typer.BadParameter("CONTRACT needs a TOKEN_ID")
        token = _token_args(contract, token_id)
    with open_resources(_settings()) as res, res.factory.begin() as session:
        queued = redrive(session, token=token, chain_id=chain_id)
    if token is not None and not queued:
        typer.echo(f"no such token: {contract} {token_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"queued {queued} token{'s' if queued != 1 else ''} for resolving")


def _jsonable(data: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in data.items()}

"""API keys: only their SHA-256 is stored."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import (
    ApiKey,
)


def add_api_key(session: Session, name: str, key_sha256: str) -> None:
    session.add(ApiKey(name=name, key_sha256=key_sha256))


def active_key_hashes(session: Session) -> list[str]:
    return list(session.scalars(select(ApiKey.key_sha256).where(ApiKey.revoked_at.is_(None))))


def api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, name: str) -> bool:
    done = session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]

"""Who may knock: the service's keys, in the ledger's database, stored hashed.

Four kinds of key, each bound to one subject:

- `person`: a responder (a registry person id). Their actions carry that id as the actor,
  whatever the request body says; the engine still decides whether the person may act.
- `gateway`: a sensor gateway (a gateway id the registry's sensors name). It may publish the
  alarms of its own sensors only.
- `client`: an Open311 application (the GeoReport `api_key`), named by its operator.
- `rating`: a one-time link for the caller of a closed case (谁呼谁评, 一事一评): bound to
  the case and to the caller's id, spent by the one rating it allows.

A key is `mh_` and 32 random bytes (url-safe base64); only its SHA-256 is kept, so a copy of
the database lets nobody in. A key's id (the first 12 hex digits of its digest) names it
for `minhu tokens revoke` and in lists; a revoked key is refused at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Engine, String, insert, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from streams.drivers.ledger import UtcDateTime

Kind = Literal["person", "gateway", "client", "rating"]
KINDS: tuple[Kind, ...] = get_args(Kind)
PREFIX = "mh_"


class _Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime}  # noqa: RUF012 (SQLAlchemy's own form)


class TokenRow(_Base):
    __tablename__ = "service_tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the key
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    case_id: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()  # a rating link, once spent


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid key lets its holder be."""

    id: str
    kind: Kind
    subject: str
    case_id: str | None


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class Tokens:
    """The keys, on the ledger's SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _Base.metadata.create_all(engine)

    def issue(self, kind: Kind, subject: str, case_id: str | None = None) -> str:
        """A new key for `subject`; the key itself is shown once, here, and never stored."""
        if kind not in KINDS:
            raise ValueError(f"no such kind of key: {kind!r} (one of {', '.join(KINDS)})")
        key = PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(TokenRow).values(
                    digest=digest_of(key),
                    kind=kind,
                    subject=subject,
                    case_id=case_id,
                    issued_at=datetime.now(UTC),
                )
            )
        return key

    def check(self, key: str | None, kind: Kind) -> Grant | None:
        """The grant of a live key of this kind, or None (no key, unknown, revoked, spent)."""
        if not key or not key.startswith(PREFIX) or len(key) > 200:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(TokenRow.digest, TokenRow.subject, TokenRow.case_id).where(
                    TokenRow.digest == digest_of(key),
                    TokenRow.kind == kind,
                    TokenRow.revoked_at.is_(None),
                    TokenRow.used_at.is_(None),
                )
            ).first()
        if row is None:
            return None
        return Grant(row.digest[:12], kind, row.subject, row.case_id)

    def spend(self, key: str) -> bool:
        """Mark a one-time key used; False if it was already (or is unknown or revoked)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(TokenRow)
                .where(
                    TokenRow.digest == digest_of(key),
                    TokenRow.revoked_at.is_(None),
                    TokenRow.used_at.is_(None),
                )
                .values(used_at=datetime.now(UTC))
            )
        return bool(done.rowcount == 1)

    def revoke(self, key_id: str) -> int:
        """Revoke the live keys whose id (digest prefix, at least 8 hex digits) is `key_id`;
        how many were revoked."""
        if len(key_id) < 8 or any(c not in "0123456789abcdef" for c in key_id):
            raise ValueError("a key id is at least 8 lower-case hex digits, as listed")
        with self.engine.begin() as conn:
            done = conn.execute(
                update(TokenRow)
                .where(TokenRow.digest.startswith(key_id), TokenRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return int(done.rowcount)

    def listing(self) -> list[dict[str, str | None]]:
        """Every key but the rating links: id, kind, subject, issued, revoked."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TokenRow)
                .where(TokenRow.kind != "rating")
                .order_by(TokenRow.kind, TokenRow.subject, TokenRow.issued_at)
            ).all()
        return [
            {
                "id": r.digest[:12],
                "kind": r.kind,
                "subject": r.subject,
                "issued_at": r.issued_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in rows
        ]

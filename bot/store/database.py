"""Engine and sessions for the store (SQLAlchemy 2.0-style API on 1.4)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.store.models import Base


class StoreUnavailableError(RuntimeError):
    """The database could not be reached or written."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created when missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, future=True, pool_pre_ping=True)


@lru_cache(maxsize=8)
def session_factory(url: str) -> "sessionmaker[Session]":
    """A session factory for ``url``, with the tables created on first use."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, future=True, expire_on_commit=False)

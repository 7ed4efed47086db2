"""Engine, migrations and sessions for the store (SQLAlchemy 2.0-style API on 1.4)."""
from __future__ import annotations

import fcntl
import hashlib
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed 64-bit number: every Deskmate process migrating a PostgreSQL
# database takes this advisory lock, so only one of them runs the migrations.
MIGRATION_LOCK_KEY = 0x6465736B6D617465  # "deskmate"

SQLITE_BUSY_TIMEOUT_MS = 30_000


class StoreError(RuntimeError):
    """Base of the store's own errors."""


class StoreUnavailableError(StoreError):
    """The database could not be reached or written."""


class StoreIntegrityError(StoreError):
    """The database refused the data (a constraint such as a foreign key or a unique value)."""


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Turn SQLAlchemy errors raised while doing ``action`` into the store's own errors."""
    try:
        yield
    except IntegrityError as error:
        logger.error("store: could not %s: the database refused it (%s)", action, error.orig.__class__.__name__)
        raise StoreIntegrityError(f"could not {action}: {error.orig}") from error
    except SQLAlchemyError as error:
        logger.error("store: could not %s: %s", action, error.__class__.__name__)
        raise StoreUnavailableError(f"could not {action}: the database is unavailable") from error


def _md5_hex(text: Optional[str]) -> Optional[str]:
    """PostgreSQL's md5(text): the hex MD5 of the UTF-8 text (NULL for NULL)."""
    return None if text is None else hashlib.md5(str(text).encode("utf-8"), usedforsecurity=False).hexdigest()


def _configure_sqlite(engine: Engine) -> None:
    """Make a SQLite file safe to share between processes (action server, CLI, tests)."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when transactions begin
        # (the module's own handling defers BEGIN and breaks transactional DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL never corrupts and survives a process crash; only a
        # power cut may lose the last commits. FULL fsyncs every commit, which
        # cost the gateway most of a turn. PostgreSQL is the durable setting.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()
        # PostgreSQL's md5(text) (hex), which SQLite lacks: the agents' queue searches visitor labels with it.
        dbapi_connection.create_function("md5", 1, _md5_hex, deterministic=True)

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that
        # reads and then writes fails with "database is locked" when another
        # process wrote in between, whatever the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created when missing."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        # SQLAlchemy 1.4 opens a new SQLite connection per transaction by default
        # (NullPool), re-running every PRAGMA: most of a store call. Keep them; the
        # pool hands a connection to one thread at a time, so sharing is safe.
        engine = create_engine(
            url, future=True, poolclass=QueuePool, pool_size=5, max_overflow=10,
            connect_args={"check_same_thread": False},
        )
    else:
        engine = create_engine(url, future=True, pool_pre_ping=True)
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def _alembic_config(url: str, connection: Connection) -> "Config":
    """Alembic's configuration, built in code (the project has no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser interpolates '%': URL-encoded options (e.g. search_path) must be escaped.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _upgrade(engine: Engine, url: str) -> None:
    from alembic import command

    # One transaction for the lock and every migration: on PostgreSQL a
    # failed migration leaves nothing behind, and the lock is released at
    # commit, once the new schema is visible to the process that waited.
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        command.upgrade(_alembic_config(url, connection), "head")


@contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """SQLite's stand-in for PostgreSQL's advisory lock: one migrating process at a time.

    Processes starting together on a brand-new file otherwise race on its
    first switch to WAL, which SQLite refuses with "database is locked"
    without waiting for the busy timeout.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        yield
        return
    lock_path = Path(f"{parsed.database}.migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema; safe to call repeatedly and concurrently.

    Raises StoreUnavailableError when the database cannot be reached.
    """
    engine = make_engine(url)
    try:
        with store_errors("migrate the database"), _sqlite_migration_lock(url):
            _upgrade(engine, url)
    finally:
        engine.dispose()


def current_revision(url: str) -> Optional[str]:
    """The schema revision the database at ``url`` is at (None before any migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with store_errors("read the schema revision"), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest schema revision this code knows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "bot/store/migrations has no revision"
    return head


class Store:
    """One process's handle on Deskmate's database: an engine and its session factory, built once.

    Every store function takes it as its first argument. It never migrates:
    the schema is brought up to date once, at start-up (``migrate``: `make
    run`, the gateway's start, `python -m bot db upgrade`, the test fixtures).
    ``url`` is a SQLAlchemy URL (``sqlite:///path`` or ``postgresql://...``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions: "sessionmaker[Session]" = sessionmaker(self.engine, future=True, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """The backend's name: "sqlite" or "postgresql"."""
        return str(self.engine.dialect.name)

    def session(self) -> Session:
        """A new session (use ``with store.session() as s, s.begin():`` for a transaction)."""
        return self._sessions()

    def dispose(self) -> None:
        """Close every pooled connection (at the end of the process, or of a test)."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)!r})"

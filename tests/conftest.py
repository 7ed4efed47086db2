"""Shared fixtures: the trained model, a running bot on free ports, sample articles."""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from bot.launcher import BotProcesses, StartupError
from bot.settings import PROJECT_ROOT, Settings
from bot.store.database import Store, migrate
from bot.store.seed import seed_demo_customers
from bot.training.checks import free_port, next_saturday_morning  # noqa: F401 (tests import free_port from here)
from bot.training.models import ensure_model

REQUIRE_SERVICES = os.environ.get("DESKMATE_REQUIRE_SERVICES") == "1"

# The gateways tests start receive no e-mail unless a test gives them a port (tests/test_mail.py):
# the default, 2525, belongs to a `make run` on the same machine.
os.environ.setdefault("DESKMATE_SMTP_INBOUND_PORT", "0")


# A database nobody answers at: the store must fail fast with StoreUnavailableError.
UNREACHABLE_DATABASE_URL = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"

POSTGRES_URL = os.environ.get("DESKMATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DESKMATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(reason: str) -> None:
    """Skip with ``reason``; under DESKMATE_REQUIRE_SERVICES=1 (CI), fail instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store: a SQLite file, and PostgreSQL when it is reachable (required in CI)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_schema("t") as schema:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A new, empty schema in the test PostgreSQL (dropped afterwards); skips (fails in CI) when it is down."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(POSTGRES_URL, future=True)
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        engine.dispose()
        service_missing(f"PostgreSQL not reachable at {POSTGRES_URL}: {error.orig}")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (keys the tests make are per conversation, so a shared database is fine); skips
    (fails in CI) when it is down."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as error:
        service_missing(f"Redis not reachable at {REDIS_URL}: {error}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The empty store of ``database_url``, migrated (as every process's start-up does)."""
    migrate(database_url)
    handle = Store(database_url)
    yield handle
    handle.dispose()


@pytest.fixture
def unreachable_store() -> Iterator[Store]:
    """A store on UNREACHABLE_DATABASE_URL: building it succeeds (the engine connects lazily), every call fails."""
    handle = Store(UNREACHABLE_DATABASE_URL)
    yield handle
    handle.dispose()


@pytest.fixture(scope="session")
def project_settings() -> Settings:
    """Settings as the project runs them (kb/, var/)."""
    return Settings()


@pytest.fixture(scope="session")
def trained_model(project_settings: Settings) -> Path:
    """The project's trained model, shared by every test (trained once when none matches the data)."""
    return ensure_model(project_settings)


@pytest.fixture(scope="session")
def bot_kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of kb/ the running bot serves, so tests may edit answers."""
    target = tmp_path_factory.mktemp("kb") / "kb"
    shutil.copytree(PROJECT_ROOT / "kb", target)
    return target


@pytest.fixture(scope="session")
def bot_nlu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of data/nlu/ for the running gateway, so the lead console's edits never touch the repo."""
    target = tmp_path_factory.mktemp("nlu") / "nlu"
    shutil.copytree(PROJECT_ROOT / "data" / "nlu", target)
    return target


# The running test bot's clock is injected (DESKMATE_FIXED_NOW), not mocked:
# a Saturday morning, so out-of-hours replies are what the business plans get.
BOT_CLOCK = next_saturday_morning(datetime.now(timezone.utc))


@pytest.fixture(scope="session")
def bot_database_url(tmp_path_factory: pytest.TempPathFactory, project_settings: Settings) -> str:
    """The store the running bot's actions write to, private to this test run: migrated, demo customers seeded."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'deskmate.db'}"
    migrate(url)
    store = Store(url)
    seed_demo_customers(store, project_settings.demo_customers_file, BOT_CLOCK)
    store.dispose()
    return url


@pytest.fixture(scope="session")
def bot_store(bot_database_url: str) -> Iterator[Store]:
    """The running bot's store, as this test process sees it."""
    store = Store(bot_database_url)
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def running_bot(
    project_settings: Settings, trained_model: Path, bot_kb_dir: Path, bot_nlu_dir: Path, bot_database_url: str
) -> Iterator[BotProcesses]:
    """The Rasa server and action server, started once for the session on free ports."""
    tracker_url = f"sqlite:///{bot_database_url.rsplit('/', 1)[0].replace('sqlite:///', '')}/tracker.db"
    bot = BotProcesses(
        project_settings.copy(update={"tracker_database_url": tracker_url}),
        rasa_port=free_port(),
        action_port=free_port(),
        log_dir=project_settings.var_dir / "test-logs",
        extra_env={
            "DESKMATE_KB_DIR": str(bot_kb_dir),
            "DESKMATE_NLU_DIR": str(bot_nlu_dir),
            "DESKMATE_DATABASE_URL": bot_database_url,
            "DESKMATE_FIXED_NOW": BOT_CLOCK.isoformat(),
        },
    )
    try:
        bot.start(trained_model)
    except StartupError as error:
        bot.stop()
        pytest.fail(f"the bot did not start: {error} (logs in {bot.log_dir})")
    yield bot
    bot.stop()


@pytest.fixture
def bot_settings(running_bot: BotProcesses, bot_kb_dir: Path, bot_nlu_dir: Path, bot_database_url: str) -> Settings:
    """Settings matching the running bot (its URL, kb and nlu copies, and store)."""
    return Settings(rasa_url=running_bot.rasa_url, kb_dir=bot_kb_dir, nlu_dir=bot_nlu_dir, database_url=bot_database_url)


# What a copy of the project needs to train, check and serve a model (the code stays where it is).
PROJECT_COPY_ITEMS = (
    "config.yml", "domain.yml", "credentials.yml", "endpoints.yml",
    "data", "kb", "actions", "tests/stories", "tests/eval",
)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the Rasa project (data, kb, config, test stories, eval set, actions) to change freely.

    Its var/spacy is a link to the project's built spaCy pipeline (config.yml names it relatively).
    """
    root = tmp_path / "project"
    for item in PROJECT_COPY_ITEMS:
        source, target = PROJECT_ROOT / item, root / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    (root / "var").mkdir()
    (root / "var" / "spacy").symlink_to(PROJECT_ROOT / "var" / "spacy", target_is_directory=True)
    return root


def project_copy_settings(root: Path, project_settings: Settings, **overrides: object) -> Settings:
    """Settings for a project copy: its kb/, var/ and files; the project's Rasa token (to reach the test bot)."""
    values: dict = dict(
        project_root=root,
        kb_dir=root / "kb",
        var_dir=root / "var",
        entity_patterns_file=root / "kb" / "entity_patterns.yml",
        support_policy_file=root / "kb" / "support_policy.yml",
        demo_customers_file=root / "kb" / "demo_customers.yml",
        rasa_token=project_settings.resolved_rasa_token(),
        database_url=f"sqlite:///{root / 'var' / 'deskmate.db'}",
    )
    values.update(overrides)
    return Settings(**values)


AGENT_PASSWORD = "correct horse battery"
AGENT_EMAIL = "maria@support.example"


@pytest.fixture(scope="session")
def agent_maria(bot_store: Store) -> str:
    """A staff account (agent Maria) in the running bot's store."""
    from bot.store.staff import add_staff

    add_staff(bot_store, AGENT_EMAIL, "Maria", "agent", AGENT_PASSWORD, BOT_CLOCK)
    return AGENT_EMAIL


@pytest.fixture
def gateway_settings(bot_settings: Settings, agent_maria: str) -> Settings:
    """The gateway in front of the running test bot, sharing its store and clock (as in production)."""
    return bot_settings.copy(update={"fixed_now": BOT_CLOCK.isoformat()})


@pytest.fixture
def bot_down_settings(gateway_settings: Settings) -> Settings:
    """The same gateway with nothing listening where the bot should be."""
    return gateway_settings.copy(update={"rasa_url": f"http://127.0.0.1:{free_port()}", "outage_seconds": 1.0})

"""Deskmate's own database (SQLAlchemy, schema by Alembic migrations): the single source of truth.

- ``database``: the ``Store`` (engine and sessions, one per process), ``migrate(url)``, the store's errors;
- ``customers``: who a visitor is and their plan; ``seed``: the demo customers; ``staff``: accounts;
- ``messages``: every message of a conversation; ``tickets``: handoff tickets and their events;
- ``feedback``: verdicts on answers and ratings; ``inbox``: leads' decisions; ``retrain_jobs``.

Every public function takes the ``Store`` first and returns plain frozen
records, never live ORM rows; an unreachable database raises
``StoreUnavailableError``.
"""

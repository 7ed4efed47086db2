"""Deskmate's own database (SQLAlchemy, schema by Alembic migrations).

- ``database``: engines, ``migrate(url)``, ``session_factory(url)``, the store's errors;
- ``customers``: who a visitor is and their plan; ``seed``: the demo customers;
- ``tickets``: human handoff tickets and their events; ``feedback``: verdicts on answers.

Every public function takes the database URL first and returns plain frozen
records, never live ORM rows (``feedback`` excepted, as before); an
unreachable database raises ``StoreUnavailableError``.
"""

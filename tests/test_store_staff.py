"""Staff accounts: scrypt-hashed passwords, sign-in refused for a wrong password, an unknown or a disabled account."""
from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime, timezone
from typing import Callable, Dict

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import bot.store.staff as staff_module
from bot.store.database import Store, StoreUnavailableError
from bot.store.models import Staff
from bot.store.staff import (
    StaffExistsError,
    StaffNotFoundError,
    StaffRecord,
    add_staff,
    authenticate,
    get_staff,
    hash_password,
    set_disabled,
    set_password,
    verify_password,
)

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


def stored_hash(store: Store, email: str) -> str:
    with store.session() as session:
        return session.scalars(select(Staff.password_hash).where(Staff.email == email)).one()


def test_the_right_password_signs_in(store: Store) -> None:
    added = add_staff(store, " Maria@Support.Example ", "Maria", "agent", PASSWORD, NOW)
    assert (added.email, added.name, added.role, added.disabled, added.created_at) == (
        "maria@support.example", "Maria", "agent", False, NOW
    )
    assert authenticate(store, "maria@support.example", PASSWORD) == added
    assert authenticate(store, "MARIA@support.example ", PASSWORD) == added
    assert get_staff(store, "Maria@Support.Example") == added


def test_a_wrong_password_an_unknown_email_and_a_disabled_account_are_refused(store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    add_staff(store, "lead@support.example", "Lee", "lead", PASSWORD, NOW)
    assert authenticate(store, "maria@support.example", PASSWORD + "!") is None
    assert authenticate(store, "maria@support.example", PASSWORD.upper()) is None
    assert authenticate(store, "maria@support.example", "") is None
    assert authenticate(store, "nobody@support.example", PASSWORD) is None

    add_staff(store, "lena@support.example", "Lena", "lead", PASSWORD, NOW)  # the team keeps an enabled lead
    disabled = set_disabled(store, "lead@support.example", True, NOW)
    assert disabled.disabled and get_staff(store, "lead@support.example") == disabled
    assert authenticate(store, "lead@support.example", PASSWORD) is None
    set_disabled(store, "lead@support.example", False, NOW)
    assert authenticate(store, "lead@support.example", PASSWORD) is not None


def test_the_hash_is_scrypt_self_describing_and_salted(store: Store) -> None:
    add_staff(store, "ann@support.example", "Ann", "agent", PASSWORD, NOW)
    add_staff(store, "bo@support.example", "Bo", "agent", PASSWORD, NOW)
    ann, bo = stored_hash(store, "ann@support.example"), stored_hash(store, "bo@support.example")
    assert PASSWORD not in ann and ann != PASSWORD
    assert ann != bo, "the same password hashes differently for two people"
    scheme, n, r, p, salt, key = ann.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(key)) == 32
    expected = hashlib.scrypt(PASSWORD.encode(), salt=base64.b64decode(salt), n=16384, r=8, p=1, dklen=32)
    assert base64.b64decode(key) == expected
    assert not any(PASSWORD in str(value) for value in vars(get_staff(store, "ann@support.example")).values())
    assert "password_hash" not in StaffRecord.__dataclass_fields__


def test_a_duplicate_email_is_refused_whatever_its_case(store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    with pytest.raises(StaffExistsError):
        add_staff(store, "MARIA@support.example", "Other Maria", "lead", "another password", NOW)
    assert get_staff(store, "maria@support.example").name == "Maria"  # type: ignore[union-attr]
    assert authenticate(store, "maria@support.example", PASSWORD) is not None


def test_the_database_refuses_a_duplicate_even_when_code_skips_the_check(store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    with store.session() as session:
        session.add(Staff(email="maria@support.example", name="M", role="agent", password_hash="x", created_at=NOW))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_race_lost_to_another_process_is_reported_as_existing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    # The other process's row is invisible to this one's check, not to the unique constraint.
    def blind_check(*columns: object) -> object:
        query = select(*columns)
        return query.where(Staff.id < 0) if columns[0] is Staff.id else query

    monkeypatch.setattr(staff_module, "select", blind_check)
    with pytest.raises(StaffExistsError):
        add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)


@pytest.mark.parametrize(
    "email, name, role, password, problem",
    [
        ("maria@support.example", "Maria", "agent", "nine char", "10 characters"),
        ("maria@support.example", "Maria", "agent", "", "10 characters"),
        ("maria@support.example", "Maria", "admin", PASSWORD, "role"),
        ("maria", "Maria", "agent", PASSWORD, "e-mail"),
        ("maria@support.example", "  ", "agent", PASSWORD, "name"),
        ("maria@support.example", "M" * 121, "agent", PASSWORD, "at most 120"),  # refused, never cut (break test)
    ],
)
def test_invalid_accounts_are_refused(store: Store, email: str, name: str, role: str, password: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        add_staff(store, email, name, role, password, NOW)
    assert get_staff(store, email) is None


def test_a_ten_character_password_is_long_enough(store: Store) -> None:
    add_staff(store, "ann@support.example", "Ann", "agent", "0123456789", NOW)
    assert authenticate(store, "ann@support.example", "0123456789") is not None


def test_a_new_password_replaces_the_old_one(store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    with pytest.raises(ValueError, match="10 characters"):
        set_password(store, "maria@support.example", "too short", NOW)
    set_password(store, "Maria@support.example", "a brand new secret", NOW)
    assert authenticate(store, "maria@support.example", PASSWORD) is None
    assert authenticate(store, "maria@support.example", "a brand new secret") is not None
    with pytest.raises(StaffNotFoundError):
        set_password(store, "nobody@support.example", "a brand new secret", NOW)
    with pytest.raises(StaffNotFoundError):
        set_disabled(store, "nobody@support.example", True, NOW)


def test_a_hash_with_older_parameters_verifies_and_is_upgraded(store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    salt = b"0123456789abcdef"
    old_key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**12, r=8, p=1, dklen=32)
    old = f"scrypt$4096$8$1${base64.b64encode(salt).decode()}${base64.b64encode(old_key).decode()}"
    with store.session() as session, session.begin():
        session.scalars(select(Staff)).one().password_hash = old

    assert authenticate(store, "maria@support.example", "wrong password") is None
    assert stored_hash(store, "maria@support.example") == old, "only a verified password is re-hashed"
    assert authenticate(store, "maria@support.example", PASSWORD) is not None
    upgraded = stored_hash(store, "maria@support.example")
    assert upgraded.startswith("scrypt$16384$8$1$") and verify_password(PASSWORD, upgraded)


def test_an_unusable_stored_hash_refuses_the_sign_in(store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    for corrupt in ("plain text", "scrypt$3$8$1$AAAA$AAAA", "scrypt$16384$8$1$***$AAAA", "bcrypt$x$y$z$a$b"):
        with store.session() as session, session.begin():
            session.scalars(select(Staff)).one().password_hash = corrupt
        assert authenticate(store, "maria@support.example", PASSWORD) is None


def test_an_unknown_email_costs_a_key_derivation_too(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)
    derivations = []
    real = staff_module._scrypt
    monkeypatch.setattr(staff_module, "_scrypt", lambda *args: derivations.append(args[2]) or real(*args))
    for email, password in [
        ("maria@support.example", PASSWORD), ("maria@support.example", "wrong password"), ("nobody@x.example", PASSWORD)
    ]:
        derivations.clear()
        authenticate(store, email, password)
        assert derivations == [staff_module.CURRENT_PARAMETERS], email


def test_timing_does_not_tell_which_emails_exist(store: Store) -> None:
    add_staff(store, "maria@support.example", "Maria", "agent", PASSWORD, NOW)

    def best_of(email: str) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            authenticate(store, email, "wrong password")
            times.append(time.perf_counter() - start)
        return min(times)

    known, unknown = best_of("maria@support.example"), best_of("nobody@support.example")
    assert unknown > 0.5 * known, (known, unknown)


def test_hash_password_never_repeats_itself() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password("nope, not it", first)


CALLS: Dict[str, Callable[[Store], object]] = {
    "add_staff": lambda store: add_staff(store, "a@b.example", "A", "agent", PASSWORD, NOW),
    "get_staff": lambda store: get_staff(store, "a@b.example"),
    "authenticate": lambda store: authenticate(store, "a@b.example", PASSWORD),
    "set_password": lambda store: set_password(store, "a@b.example", PASSWORD, NOW),
    "set_disabled": lambda store: set_disabled(store, "a@b.example", True, NOW),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_unreachable_database_raises_store_unavailable(name: str, unreachable_store: Store) -> None:
    with pytest.raises(StoreUnavailableError):
        CALLS[name](unreachable_store)

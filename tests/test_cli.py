"""The operator's commands: staff accounts, demo customers and their tokens, migrations."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict

from bot.identity import verify_token
from bot.settings import PROJECT_ROOT, Settings
from bot.store.database import Store
from bot.store.sign_ins import failures_since, record_attempt
from bot.store.staff import authenticate, set_totp


def run_cli(env: Dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True, cwd=PROJECT_ROOT,
        env={**os.environ, **env}, timeout=120,
    )


def cli_env(tmp_path: Path) -> Dict[str, str]:
    return {"DESKMATE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "DESKMATE_VAR_DIR": str(tmp_path / "var")}


def test_staff_add_creates_an_account_that_can_sign_in_and_refuses_a_duplicate(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli(env, "db", "upgrade").returncode == 0  # the store is migrated at start-up, never by a command
    added = run_cli(env, "staff", "add", "Maria@Lumio.example", "--role", "agent", "--name", "Maria",
                    "--password-stdin", stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert "maria@lumio.example (agent)" in added.stdout
    store = Store(env["DESKMATE_DATABASE_URL"])
    try:
        assert authenticate(store, "maria@lumio.example", "a long enough password").name == "Maria"
    finally:
        store.dispose()
    again = run_cli(env, "staff", "add", "maria@lumio.example", "--role", "lead", "--name", "M",
                    "--password-stdin", stdin="another password!\n")
    assert again.returncode == 2 and "cannot add" in again.stderr


def test_a_short_password_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    result = run_cli(cli_env(tmp_path), "staff", "add", "x@lumio.example", "--role", "agent", "--name", "X",
                     "--password-stdin", stdin="short\n")
    assert result.returncode == 2 and "10 characters" in result.stderr


def test_demo_seed_then_token_names_the_customer(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli(env, "db", "upgrade").returncode == 0
    seeded = run_cli(env, "demo", "seed")
    assert seeded.returncode == 0 and "premium@demo.example" in seeded.stdout
    token = run_cli(env, "demo", "token", "premium@demo.example")
    assert token.returncode == 0, token.stderr
    secret = Settings(var_dir=tmp_path / "var").resolved_identity_secret()
    assert verify_token(secret, token.stdout.strip()).customer_key == "premium@demo.example"
    unknown = run_cli(env, "demo", "token", "nobody@demo.example")
    assert unknown.returncode == 1 and "demo seed" in unknown.stderr


def test_staff_accounts_are_listed_disabled_enabled_and_their_passwords_changed(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    added = run_cli(env, "staff", "add", "ann@lumio.example", "--role", "agent", "--name", "Ann",
                    "--password-stdin", stdin="first password here\n")
    assert added.returncode == 0, added.stderr
    assert "ann@lumio.example" in run_cli(env, "staff", "list").stdout
    # A bad address is named before any password is asked for; with no terminal, a clear message, no traceback.
    bad = run_cli(env, "staff", "add", "bad-email", "--role", "agent", "--name", "Bad")
    assert bad.returncode == 2 and "not a valid e-mail address" in bad.stderr and "Traceback" not in bad.stderr
    no_tty = run_cli(env, "staff", "add", "bo@lumio.example", "--role", "agent", "--name", "Bo")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr and "Traceback" not in no_tty.stderr
    assert run_cli(env, "staff", "disable", "ann@lumio.example").returncode == 0
    assert "(disabled)" in run_cli(env, "staff", "list").stdout
    store = Store(env["DESKMATE_DATABASE_URL"])
    try:
        assert authenticate(store, "ann@lumio.example", "first password here") is None
        assert run_cli(env, "staff", "enable", "ann@lumio.example").returncode == 0
        changed = run_cli(env, "staff", "password", "ann@lumio.example", "--password-stdin", stdin="second password here\n")
        assert changed.returncode == 0, changed.stderr
        assert authenticate(store, "ann@lumio.example", "first password here") is None
        assert authenticate(store, "ann@lumio.example", "second password here").name == "Ann"
    finally:
        store.dispose()
    missing = run_cli(env, "staff", "disable", "nobody@lumio.example")
    assert missing.returncode == 2 and "nobody@lumio.example" in missing.stderr
    no_name = run_cli(env, "staff", "add", "bo@lumio.example", "--role", "agent", "--password-stdin", stdin="x" * 12 + "\n")
    assert no_name.returncode == 2 and "--name" in no_name.stderr


def test_staff_unlock_clears_an_emails_or_an_addresss_failed_sign_ins(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli(env, "db", "upgrade").returncode == 0
    store = Store(env["DESKMATE_DATABASE_URL"])
    now = datetime.now(timezone.utc)
    try:
        for n in range(3):
            record_attempt(store, "ann@lumio.example", "203.0.113.9", now)
            record_attempt(store, f"user{n}@lumio.example", "198.51.100.7", now)
        by_email = run_cli(env, "staff", "unlock", "Ann@Lumio.example")
        assert by_email.returncode == 0 and "3 failed sign-in(s) forgotten" in by_email.stdout
        by_address = run_cli(env, "staff", "unlock", "--address", "198.51.100.7")
        assert by_address.returncode == 0 and "3 failed sign-in(s) forgotten" in by_address.stdout
        assert failures_since(store, "ann@lumio.example", "198.51.100.7", now - timedelta(hours=1))[:2] == (0, 0)
    finally:
        store.dispose()


def test_staff_reset_2fa_lets_someone_who_lost_their_phone_set_it_up_again(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli(env, "staff", "add", "ann@lumio.example", "--role", "agent", "--name", "Ann",
                   "--password-stdin", stdin="first password here\n").returncode == 0
    store = Store(env["DESKMATE_DATABASE_URL"])
    try:
        set_totp(store, "ann@lumio.example", "JBSWY3DPEHPK3PXP", ["aaaa-bbbb"], datetime.now(timezone.utc))
        reset = run_cli(env, "staff", "reset-2fa", "Ann@Lumio.example")
        assert reset.returncode == 0 and "two-step sign-in is off" in reset.stdout
        assert authenticate(store, "ann@lumio.example", "first password here").totp_enabled is False
        assert run_cli(env, "staff", "reset-2fa", "nobody@lumio.example").returncode == 2
    finally:
        store.dispose()


INVALID_EMAILS = ["ann..lee@lumio.example", "ann@lumio..example", "ann@localhost", "ann lee@lumio.example",
                  "ann@lu_mio.example", "<ann>@lumio.example"]


def test_staff_add_refuses_an_address_that_is_not_one(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    for email in INVALID_EMAILS[:3]:
        refused = run_cli(env, "staff", "add", email, "--role", "agent", "--name", "Ann",
                          "--password-stdin", stdin="a long enough password\n")
        assert refused.returncode == 2 and "not a valid e-mail address" in refused.stderr, (email, refused.stderr)
    assert run_cli(env, "staff", "list").stdout.strip() == ""


def test_the_last_enabled_lead_is_never_disabled_or_demoted_from_the_command_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    for email, role in (("lee@lumio.example", "lead"), ("ann@lumio.example", "agent")):
        added = run_cli(env, "staff", "add", email, "--role", role, "--name", "X", "--password-stdin",
                        stdin="a long enough password\n")
        assert added.returncode == 0, added.stderr
    for command in (("disable", "lee@lumio.example"), ("role", "lee@lumio.example", "agent")):
        refused = run_cli(env, "staff", *command)
        assert refused.returncode == 2 and "only enabled lead" in refused.stderr, refused.stderr
    listed = run_cli(env, "staff", "list").stdout
    assert "lee@lumio.example                lead" in listed and "(disabled)" not in listed
    # With a second lead, the first may go; then the second is the last one.
    assert run_cli(env, "staff", "role", "ann@lumio.example", "lead").returncode == 0
    assert run_cli(env, "staff", "disable", "lee@lumio.example").returncode == 0
    assert run_cli(env, "staff", "role", "ann@lumio.example", "agent").returncode == 2
    assert run_cli(env, "staff", "role", "lee@lumio.example", "agent").returncode == 0  # disabled: not a lead who counts

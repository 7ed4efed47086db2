"""Commands about the store: migrations, the demo customers, staff accounts, and the leads' report."""
from __future__ import annotations

import argparse
import getpass
import sys
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from bot.settings import get_settings
from bot.store.audit import audit
from bot.store.database import Store, StoreError


def with_store(command: Callable[[argparse.Namespace, Store], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``command`` with the process's store, migrated at the command's start; StoreError exits 1."""

    def run(args: argparse.Namespace) -> int:
        from bot.store.database import migrate

        url = get_settings().resolved_database_url()
        try:
            migrate(url)
        except StoreError as error:
            print(f"could not reach or migrate the database: {error}", file=sys.stderr)
            return 1
        store = Store(url)
        try:
            return command(args, store)
        except StoreError as error:
            print(f"the database failed: {error}", file=sys.stderr)
            return 1
        finally:
            store.dispose()

    return run


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrate Deskmate's store to the newest schema."""
    from bot.store.database import current_revision, migrate

    url = get_settings().resolved_database_url()
    try:
        migrate(url)
        print(f"database at schema {current_revision(url)}")
    except StoreError as error:
        print(f"could not migrate the database: {error}", file=sys.stderr)
        return 1
    return 0


@with_store
def cmd_demo_seed(args: argparse.Namespace, store: Store) -> int:
    """Create or update the demo customers (idempotent)."""
    from bot.store.seed import SeedFileError, seed_demo_customers

    try:
        customers = seed_demo_customers(store, get_settings().demo_customers_file, datetime.now(timezone.utc))
    except SeedFileError as error:
        print(f"cannot read the demo customers: {error}", file=sys.stderr)
        return 2
    for customer in customers:
        print(f"  {customer.email:<28} {customer.plan:<10} {customer.status}")
    return 0


@with_store
def cmd_demo_token(args: argparse.Namespace, store: Store) -> int:
    """Print a signed identity token for a demo customer."""
    from bot.identity import issue_token
    from bot.store.customers import find_customer

    customer = find_customer(store, args.email)
    if customer is None:
        print(f"no customer {args.email!r}; run `python -m bot demo seed` first", file=sys.stderr)
        return 1
    print(issue_token(get_settings().resolved_identity_secret(), customer.email, ttl=timedelta(hours=args.hours)))
    return 0


def _cli_actor() -> str:
    """Who acts from the command line, for the audit trail."""
    return f"cli:{getpass.getuser()}"


def _new_password(args: argparse.Namespace) -> str:
    """The password from stdin (``--password-stdin``) or asked twice on the terminal; ValueError when they
    differ or there is no terminal to ask on."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise ValueError("no terminal to ask for the password on: pipe it in with --password-stdin")
    password = getpass.getpass(f"Password for {args.email} (at least 10 characters): ")
    if getpass.getpass("Again: ") != password:
        raise ValueError("the passwords differ; nothing was changed")
    return password


@with_store
def cmd_staff_add(args: argparse.Namespace, store: Store) -> int:
    """Create a staff account; the password is read from the terminal (or stdin with --password-stdin)."""
    from bot.store.staff import StaffExistsError, add_staff, checked_staff_email

    try:
        checked_staff_email(args.email)  # before asking for a password that would be thrown away
        password = _new_password(args)
        staff = add_staff(
            store, args.email, args.name, args.role, password, datetime.now(timezone.utc),
        )
    except (ValueError, StaffExistsError) as error:
        print(f"cannot add {args.email}: {error}", file=sys.stderr)
        return 2
    audit(store, _cli_actor(), "staff_add", datetime.now(timezone.utc), staff.email, detail={"role": staff.role})
    print(f"added {staff.email} ({staff.role})")
    return 0


@with_store
def cmd_staff_list(args: argparse.Namespace, store: Store) -> int:
    """Print every staff account: e-mail, role, name, and whether it is disabled."""
    from bot.store.staff import list_staff

    for staff in list_staff(store):
        print(f"  {staff.email:<32} {staff.role:<6} {staff.name}{'  (disabled)' if staff.disabled else ''}")
    return 0


@with_store
def cmd_staff_password(args: argparse.Namespace, store: Store) -> int:
    """Set a new password for a staff account."""
    from bot.store.staff import StaffNotFoundError, set_password

    now = datetime.now(timezone.utc)
    try:
        staff = set_password(store, args.email, _new_password(args), now)
    except (ValueError, StaffNotFoundError) as error:
        print(f"cannot change the password of {args.email}: {error}", file=sys.stderr)
        return 2
    audit(store, _cli_actor(), "staff_password", now, staff.email)
    print(f"password of {staff.email} changed; its sessions are ended")
    return 0


@with_store
def cmd_staff_role(args: argparse.Namespace, store: Store) -> int:
    """Make a staff account an agent or a lead (its sessions end at once); the only enabled lead stays a lead."""
    from bot.store.staff import StaffNotFoundError, set_role

    now = datetime.now(timezone.utc)
    try:
        staff = set_role(store, args.email, args.role, now)
    except (ValueError, StaffNotFoundError) as error:
        print(f"cannot change the role of {args.email}: {error}", file=sys.stderr)
        return 2
    audit(store, _cli_actor(), "staff_role", now, staff.email, detail={"role": staff.role})
    print(f"{staff.email} is now {staff.role}; its sessions are ended")
    return 0


@with_store
def cmd_staff_unlock(args: argparse.Namespace, store: Store) -> int:
    """Clear an e-mail's (or, with --address, a client address's) failed sign-ins: sign-in works again at once."""
    from bot.store.sign_ins import clear_address_failures, clear_failures

    now = datetime.now(timezone.utc)
    if args.address:
        cleared = clear_address_failures(store, args.target.strip())
        audit(store, _cli_actor(), "unlock", now, args.target.strip(), detail={"failures": cleared, "kind": "address"})
    else:
        cleared = clear_failures(store, args.target)
        audit(store, _cli_actor(), "unlock", now, args.target.strip().lower(), detail={"failures": cleared})
    print(f"{args.target}: {cleared} failed sign-in(s) forgotten")
    return 0


@with_store
def cmd_staff_disable(args: argparse.Namespace, store: Store) -> int:
    """Disable (``staff disable``) or re-enable (``staff enable``) a staff account's sign-in; the only enabled
    lead is never disabled (LastLeadError)."""
    from bot.store.staff import LastLeadError, StaffNotFoundError, set_disabled

    now = datetime.now(timezone.utc)
    try:
        staff = set_disabled(store, args.email, args.disable, now)
    except LastLeadError as error:
        print(f"cannot disable {args.email}: {error}", file=sys.stderr)
        return 2
    except StaffNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    audit(store, _cli_actor(), "staff_disable" if staff.disabled else "staff_enable", now, staff.email)
    print(f"{staff.email} {'disabled (its sessions are ended)' if staff.disabled else 'enabled'}")
    return 0


@with_store
def cmd_staff_reset_second_factor(args: argparse.Namespace, store: Store) -> int:
    """Turn off someone's two-step sign-in (a lost phone and lost recovery codes): they sign in with the
    password alone and set it up again (at once, if the team requires it)."""
    from bot.store.staff import StaffNotFoundError, set_totp

    now = datetime.now(timezone.utc)
    try:
        staff = set_totp(store, args.email, None, [], now)
    except StaffNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    audit(store, _cli_actor(), "second_factor_off", now, staff.email, detail={"reset": True})
    print(f"{staff.email}: two-step sign-in is off; they set it up again at /agent/security")
    return 0


@with_store
def cmd_report(args: argparse.Namespace, store: Store) -> int:
    """Print the support leads' figures per UTC day and in total (text, csv or json)."""
    from bot.reports import render, report_with_requests

    try:
        since = date.fromisoformat(args.since) if args.since else None
        until = date.fromisoformat(args.until) if args.until else None
        report = report_with_requests(store, since, until)
    except ValueError as error:
        print(f"cannot make the report: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(report, args.format))
    return 0


def add_commands(commands: Any) -> None:
    """Register this module's sub-commands on ``commands`` (argparse sub-parsers)."""
    db = commands.add_parser("db", help="Deskmate's database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema").set_defaults(handler=cmd_db_upgrade)

    demo = commands.add_parser("demo", help="the demo tenant").add_subparsers(dest="demo_command", required=True)
    demo.add_parser("seed", help="create or update the demo customers").set_defaults(handler=cmd_demo_seed)
    token = demo.add_parser("token", help="print a signed identity token for a customer")
    token.add_argument("email", help="the customer's e-mail, e.g. premium@demo.example")
    token.add_argument("--hours", type=float, default=12, help="how long the token is valid (default 12)")
    token.set_defaults(handler=cmd_demo_token)

    staff = commands.add_parser("staff", help="staff accounts").add_subparsers(dest="staff_command", required=True)
    staff_add = staff.add_parser("add", help="add an agent or a lead")
    staff_add.add_argument("email")
    staff_add.add_argument("--role", choices=("agent", "lead"), required=True)
    staff_add.add_argument("--name", required=True, help="the name visitors see, e.g. Maria (never the e-mail)")
    staff_add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    staff_add.set_defaults(handler=cmd_staff_add)
    staff.add_parser("list", help="list the staff accounts").set_defaults(handler=cmd_staff_list)
    password = staff.add_parser("password", help="set a new password")
    password.add_argument("email")
    password.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    password.set_defaults(handler=cmd_staff_password)
    for verb, disable in (("disable", True), ("enable", False)):
        toggle = staff.add_parser(verb, help=f"{verb} an account's sign-in")
        toggle.add_argument("email")
        toggle.set_defaults(handler=cmd_staff_disable, disable=disable)
    role = staff.add_parser("role", help="make an account an agent or a lead")
    role.add_argument("email")
    role.add_argument("role", choices=("agent", "lead"))
    role.set_defaults(handler=cmd_staff_role)
    reset = staff.add_parser("reset-2fa", help="turn off someone's two-step sign-in (lost phone and recovery codes)")
    reset.add_argument("email")
    reset.set_defaults(handler=cmd_staff_reset_second_factor)
    unlock = staff.add_parser("unlock", help="let an e-mail (or a client address) sign in again after too many failures")
    unlock.add_argument("target", metavar="EMAIL_OR_ADDRESS")
    unlock.add_argument("--address", action="store_true", help="TARGET is a client address (IP), not an e-mail")
    unlock.set_defaults(handler=cmd_staff_unlock)

    report = commands.add_parser("report", help="figures for the support leads, per UTC day and in total")
    report.add_argument("--since", help="first day, YYYY-MM-DD (default: everything)")
    report.add_argument("--until", help="last day, YYYY-MM-DD, inclusive (default: everything)")
    report.add_argument("--format", choices=("text", "csv", "json"), default="text", help="output (default: text)")
    report.set_defaults(handler=cmd_report)

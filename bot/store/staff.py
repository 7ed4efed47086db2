"""Staff accounts of the agent inbox: agents and leads, with scrypt-hashed passwords.

A password hash is stored self-describing, ``scrypt$<n>$<r>$<p>$<salt>$<key>``
(salt and key in base64), so the parameters can change later: a hash made
with other parameters still verifies, and is replaced by one with the
current parameters at the next successful sign-in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.customers import normalise_email
from bot.store.database import Store, StoreError, StoreIntegrityError, store_errors
from bot.protocol import TicketStatus
from bot.store.models import STAFF_ROLES, Staff, StaffSession, Ticket, TicketEvent

logger = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 10
SCHEME = "scrypt"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Bounds for parameters read back from the database: enough for any sane
# future setting, small enough that a corrupt row cannot exhaust memory.
MAX_SCRYPT_MEMORY = 1 << 30
# RFC 5321's limit on a whole address (a forward-path of 256 less the angle brackets).
MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 120  # a display name: shown to visitors, on one line of the queue


class StaffExistsError(StoreError):
    """A staff account with that e-mail already exists."""


class StaffNotFoundError(StoreError, LookupError):
    """No staff account has that e-mail."""


class InvalidStaffEmailError(ValueError):
    """The e-mail of a new staff account is not a valid address; the message says why."""


class StaffChangeRefusedError(ValueError):
    """The change to a staff account is not allowed; the message says why."""


class LastLeadError(StaffChangeRefusedError):
    """The change would leave the team without an enabled lead: nobody could manage the team or the console."""


@dataclass(frozen=True)
class StaffRecord:
    """A stored staff account (a plain copy, without the password hash or second-factor secrets)."""

    id: int
    email: str
    name: str
    role: str
    created_at: datetime
    disabled: bool
    totp_enabled: bool = False


class _ScryptParameters(NamedTuple):
    n: int
    r: int
    p: int


CURRENT_PARAMETERS = _ScryptParameters(SCRYPT_N, SCRYPT_R, SCRYPT_P)


def _scrypt(password: str, salt: bytes, parameters: _ScryptParameters, length: int) -> bytes:
    n, r, p = parameters
    # OpenSSL refuses more than 32 MiB unless told: allow what these parameters need.
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A new self-describing scrypt hash of ``password`` with a random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, CURRENT_PARAMETERS, KEY_BYTES)
    n, r, p = CURRENT_PARAMETERS
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


class _ParsedHash(NamedTuple):
    parameters: _ScryptParameters
    salt: bytes
    key: bytes


def _parse_hash(stored: str) -> _ParsedHash:
    """The parts of a stored hash; ValueError when it is not one this module can verify."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("not a scrypt$n$r$p$salt$key hash")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error) as error:
        raise ValueError(f"malformed scrypt hash: {error}") from error
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * r * (n + p) > MAX_SCRYPT_MEMORY:
        raise ValueError(f"unusable scrypt parameters n={n} r={r} p={p}")
    if not salt or not key:
        raise ValueError("scrypt hash without salt or key")
    return _ParsedHash(_ScryptParameters(n, r, p), salt, key)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (compared in constant time); ValueError for a malformed hash."""
    parsed = _parse_hash(stored)
    candidate = _scrypt(password, parsed.salt, parsed.parameters, len(parsed.key))
    return hmac.compare_digest(candidate, parsed.key)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash of a random password, verified against when the e-mail is unknown.

    Answering "no such account" then costs the same key derivation as
    checking a real password. Made on first use, not at import.
    """
    return hash_password(secrets.token_urlsafe(16))


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def checked_staff_email(email: str) -> str:
    """``email`` as stored (trimmed, lower-cased) if it is a valid address; InvalidStaffEmailError otherwise.

    The syntax is checked by email-validator (RFC 5322 and 6531, as mail
    servers accept it), without DNS: staff may work at a domain this server
    cannot look up.
    """
    email = normalise_email(email)
    if not email:
        raise InvalidStaffEmailError("the e-mail address is empty")
    if len(email) > MAX_EMAIL_CHARS:
        raise InvalidStaffEmailError(f"the e-mail address is {len(email)} characters; at most {MAX_EMAIL_CHARS}")
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidStaffEmailError(f"{email!r} is not a valid e-mail address: {error}") from None
    return email


def staff_record(row: Staff) -> StaffRecord:
    """A plain, frozen copy of a staff row, without its password hash."""
    return StaffRecord(
        id=row.id, email=row.email, name=row.name, role=row.role, created_at=row.created_at, disabled=row.disabled,
        totp_enabled=bool(row.totp_secret),
    )


def add_staff(store: Store, email: str, name: str, role: str, password: str, now: datetime) -> StaffRecord:
    """Create a staff account (``role`` agent or lead); the e-mail is stored trimmed and lower-cased.

    Raises ValueError on invalid input (InvalidStaffEmailError for an address
    that is not one; a password needs at least 10 characters), StaffExistsError when the e-mail already has an account,
    StoreUnavailableError when the database cannot be written.
    """
    email = checked_staff_email(email)
    name = name.strip()
    if not name:
        raise ValueError(f"{email}: name is empty")
    if len(name) > MAX_NAME_CHARS:
        # Visitors see it ("<name> joined the conversation"): refused, never cut.
        raise ValueError(f"the name is {len(name)} characters; at most {MAX_NAME_CHARS}")
    if role not in STAFF_ROLES:
        raise ValueError(f"{email}: role {role!r} is not one of {', '.join(STAFF_ROLES)}")
    _check_password(password)
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    password_hash = hash_password(password)
    with store_errors("add a staff account"):
        try:
            with store.session() as session, session.begin():
                if session.scalars(select(Staff.id).where(Staff.email == email)).first() is not None:
                    raise StaffExistsError(f"{email} already has a staff account")
                row = Staff(email=email, name=name, role=role, password_hash=password_hash, created_at=now, disabled=False)
                session.add(row)
                session.flush()
                record = staff_record(row)
        except IntegrityError as error:
            # Another process added the same e-mail in between, or the database refused the row.
            if get_staff(store, email) is not None:
                raise StaffExistsError(f"{email} already has a staff account") from error
            raise StoreIntegrityError(f"staff account {email} could not be added: {error.orig}") from error
    logger.info("store: staff account %s (%s) added", record.email, record.role)
    return record


def get_staff(store: Store, email: str) -> Optional[StaffRecord]:
    """The staff account with that e-mail (any case), or None."""
    query = select(Staff).where(Staff.email == normalise_email(email))
    with store_errors("look up a staff account"), store.session() as session:
        row = session.scalars(query).first()
        return staff_record(row) if row is not None else None


def change_account(
    store: Store, email: str, action: str, apply: Callable[[Staff], Optional[str]], now: datetime,
    end_sessions: Optional[str] = None,
) -> StaffRecord:
    """Lock the account of ``email``, apply the change and, when ``end_sessions`` (or ``apply``'s return
    value) names why, end every session of it in the same transaction; the account.

    The one rule every change of an account obeys, from the console and the
    command line alike: the team keeps at least one enabled lead. Every enabled
    lead's row is locked first (always in id order, so two changes cannot
    deadlock), then the account's; a change that would leave no enabled lead
    (demoting or disabling the last one; any future deletion must come here
    too) raises LastLeadError and changes nothing, so two leads demoting each
    other at once cannot lock everyone out. Raises StaffNotFoundError.
    """
    email = normalise_email(email)
    with store_errors(action), store.session() as session, session.begin():
        leads = session.scalars(
            select(Staff.id).where(Staff.role == "lead", Staff.disabled.is_(False)).order_by(Staff.id).with_for_update()
        ).all()
        row = session.scalars(select(Staff).where(Staff.email == email).with_for_update()).first()
        if row is None:
            raise StaffNotFoundError(f"no staff account for {email}")
        reason = apply(row) or end_sessions
        if row.id in leads and len(leads) == 1 and not (row.role == "lead" and not row.disabled):
            # Raised inside the transaction: the change is rolled back.
            raise LastLeadError(
                f"{email} is the only enabled lead: make another account a lead first, "
                "or nobody could manage the team"
            )
        if reason:
            session.execute(
                update(StaffSession)
                .where(StaffSession.staff_id == row.id, StaffSession.ended_at.is_(None))
                .values(ended_at=now, end_reason=reason)
            )
        if row.disabled:
            _release_tickets(session, row.email, now)
        session.flush()
        return staff_record(row)


def _release_tickets(session: Session, email: str, now: datetime) -> None:
    """A disabled account's open tickets go back to the queue (unclaimed, event "released"): nobody
    would answer them, and a claimed ticket alerts only its assignee."""
    held = session.scalars(
        select(Ticket).where(Ticket.assignee == email, Ticket.status == TicketStatus.ASSIGNED.value).with_for_update()
    ).all()
    for ticket in held:
        ticket.assignee = None
        ticket.status = TicketStatus.OPEN.value
        session.add(TicketEvent(ticket_id=ticket.id, kind="released", actor="system", at=now,
                                detail={"from": email, "why": "account disabled"}))


def set_password(store: Store, email: str, password: str, now: datetime) -> StaffRecord:
    """Replace the account's password and end its sessions (they must sign in again).

    Raises ValueError for a short password, StaffNotFoundError.
    """
    _check_password(password)
    password_hash = hash_password(password)

    def apply(row: Staff) -> None:
        row.password_hash = password_hash

    record = change_account(store, email, "set a staff password", apply, now, end_sessions="password changed")
    logger.info("store: password of %s changed; its sessions ended", record.email)
    return record


def set_role(store: Store, email: str, role: str, now: datetime) -> StaffRecord:
    """Make the account an agent or a lead; its sessions end at once.

    Raises ValueError (LastLeadError: demoting the only enabled lead), StaffNotFoundError.
    """
    if role not in STAFF_ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(STAFF_ROLES)}")

    def apply(row: Staff) -> None:
        row.role = role

    record = change_account(store, email, "change a staff role", apply, now, end_sessions="role changed")
    logger.info("store: %s is now %s; its sessions ended", record.email, role)
    return record


def set_disabled(store: Store, email: str, disabled: bool, now: datetime) -> StaffRecord:
    """Disable (or re-enable) the account: a disabled account cannot sign in, and its sessions end at once.

    Raises LastLeadError (disabling the only enabled lead), StaffNotFoundError.
    """

    def apply(row: Staff) -> None:
        row.disabled = disabled

    record = change_account(
        store, email, "change a staff account", apply, now, end_sessions="account disabled" if disabled else None
    )
    logger.info("store: staff account %s %s", email, "disabled" if disabled else "enabled")
    return record


def _upgrade_hash(store: Store, staff_id: int, old_hash: str, password: str) -> None:
    """Re-hash a verified password made with older parameters (best effort: a failure only logs)."""
    new_hash = hash_password(password)
    try:
        with store_errors("upgrade a password hash"), store.session() as session, session.begin():
            row = session.get(Staff, staff_id, with_for_update=True)
            # Unless the password changed meanwhile.
            if row is not None and row.password_hash == old_hash:
                row.password_hash = new_hash
    except StoreError:
        logger.warning("store: could not upgrade the password hash of staff account %s", staff_id)


def authenticate(store: Store, email: str, password: str) -> Optional[StaffRecord]:
    """The account if ``password`` is right for ``email`` and it is not disabled; None otherwise.

    An unknown e-mail costs the same key derivation as a real check, so
    timing does not tell which e-mails have accounts. Raises
    StoreUnavailableError when the database cannot be read.
    """
    query = select(Staff).where(Staff.email == normalise_email(email))
    with store_errors("sign a staff member in"), store.session() as session:
        row = session.scalars(query).first()
        stored = row.password_hash if row is not None else None
        record = staff_record(row) if row is not None else None
    if stored is None or record is None:
        verify_password(password, _dummy_hash())
        return None
    try:
        parsed = _parse_hash(stored)
        matches = verify_password(password, stored)
    except ValueError as error:
        logger.error("store: staff account %s has an unusable password hash (%s): sign-in refused", record.id, error)
        verify_password(password, _dummy_hash())
        return None
    if not matches or record.disabled:
        return None
    if parsed.parameters != CURRENT_PARAMETERS or len(parsed.key) != KEY_BYTES:
        _upgrade_hash(store, record.id, stored, password)
    return record


def list_staff(store: Store) -> List[StaffRecord]:
    """Every staff account, by e-mail. Raises StoreUnavailableError."""
    with store_errors("list the staff accounts"), store.session() as session:
        return [staff_record(row) for row in session.scalars(select(Staff).order_by(Staff.email))]


def staff_names(store: Store, emails: Iterable[str]) -> Dict[str, str]:
    """Display names of the staff accounts among ``emails`` (what a visitor may be told), by e-mail."""
    wanted = sorted({normalise_email(email) for email in emails if email})
    if not wanted:
        return {}
    query = select(Staff.email, Staff.name).where(Staff.email.in_(wanted))
    with store_errors("read staff names"), store.session() as session:
        return {email: name for email, name in session.execute(query)}


def recovery_code_hash(code: str) -> str:
    """How a recovery code is stored: SHA-256 of the code without spaces or dashes, lower-cased.

    The codes are long random strings, so a fast hash is enough (a password needs scrypt; these do not).
    """
    return hashlib.sha256("".join(code.split()).replace("-", "").lower().encode("utf-8")).hexdigest()


def set_totp(store: Store, email: str, secret: Optional[str], recovery_codes: Sequence[str], now: datetime) -> StaffRecord:
    """Turn the second factor on (``secret``, base32, and the recovery codes, stored hashed) or off (None).

    Raises StaffNotFoundError.
    """
    hashes = [recovery_code_hash(code) for code in recovery_codes]

    def apply(row: Staff) -> None:
        row.totp_secret = secret
        row.recovery_codes = hashes if secret else None
        row.totp_last_step = None

    return change_account(store, email, "set a staff second factor", apply, now)


def totp_secret(store: Store, staff_id: int) -> Optional[str]:
    """The account's TOTP secret (base32), or None without a second factor."""
    with store_errors("read a second factor"), store.session() as session:
        row = session.get(Staff, staff_id)
        return row.totp_secret if row is not None else None


def claim_totp_step(store: Store, staff_id: int, step: int) -> bool:
    """Use up the TOTP time step ``step`` (Unix seconds // interval) of a code that matched.

    False when a code of this step or a later one was used already (a replay,
    RFC 6238 section 5.2); atomic across gateway processes (one conditional
    UPDATE). Raises StoreUnavailableError.
    """
    query = (
        update(Staff)
        .where(Staff.id == staff_id, or_(Staff.totp_last_step.is_(None), Staff.totp_last_step < step))
        .values(totp_last_step=step)
    )
    with store_errors("use an authenticator code"), store.session() as session, session.begin():
        return bool(session.execute(query).rowcount)


def use_recovery_code(store: Store, staff_id: int, code: str) -> bool:
    """Whether ``code`` is one of the account's unused recovery codes; a used one is struck off."""
    wanted = recovery_code_hash(code)
    with store_errors("use a recovery code"), store.session() as session, session.begin():
        row = session.scalars(select(Staff).where(Staff.id == staff_id).with_for_update()).first()
        codes = list(row.recovery_codes or []) if row is not None else []
        if wanted not in codes:
            return False
        codes.remove(wanted)
        row.recovery_codes = codes
        return True

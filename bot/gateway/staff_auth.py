"""Staff sign-in: guessing slowed and stopped, sessions the server controls, an optional second factor.

- The cookie (aiohttp-session, encrypted, HttpOnly, SameSite=Strict; Secure and
  ``__Host-`` prefixed behind HTTPS) carries only a random session token and the
  CSRF token. The session itself is a store row (bot/store/sessions.py): every
  request reads it and the account as they are now, so sign-out, a disabled
  account, a role or password change, and the idle and absolute time-outs end
  it at once, in every gateway process.
- Failed sign-ins are counted per e-mail typed and per client address in the
  store (bot/store/sign_ins.py), each attempt *before* it is checked, so
  parallel guesses count too: past a few each answer is slower, then the
  e-mail (or address) is locked for a while; the message is the same whether
  or not the account exists. Failures and locks are logged (never a password)
  and audited; a lead can unlock an e-mail or an address.
- With a second factor (TOTP, pyotp) the password step leads to a code step;
  each authenticator code works once, a recovery code works once instead. A lead may require it for all staff:
  then an account without one can only reach /agent/security until it has one.

Every form and every state-changing API call carries the session's CSRF token.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any, Dict, NamedTuple, Optional, Tuple

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from bot.gateway.clients import client_address
from bot.gateway.keys import CLOCK, SETTINGS, STORE
from bot.settings import Settings
from bot.store.audit import audit
from bot.store.database import StoreError
from bot.store.sessions import current_session, end_session, start_session
from bot.gateway.second_factor import code_step
from bot.store.sign_ins import failures_since, forget_attempt, record_attempt
from bot.store.staff import StaffRecord, authenticate, claim_totp_step, get_staff, totp_secret, use_recovery_code
from bot.store.team import REQUIRE_TOTP, team_setting

logger = logging.getLogger(__name__)

TOKEN_KEY = "token"
PENDING_KEY = "pending"  # the password was right; the second factor is due (staff id, e-mail, when)
CSRF_KEY = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
STAFF_REQUEST_KEY = "deskmate.staff"
PENDING_SECONDS = 300
MAX_DELAY_SECONDS = 30
WRONG = "Wrong e-mail or password."
UNAVAILABLE = "Sign-in is unavailable right now (database). Please try again shortly."


async def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, made on first use."""
    session = await get_session(request)
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(session[CSRF_KEY])


async def check_csrf(request: web.Request, submitted: object) -> None:
    """Refuse a state change without the session's CSRF token (403)."""
    session = await get_session(request)
    expected = session.get(CSRF_KEY)
    if not expected or not submitted or not secrets.compare_digest(str(submitted), str(expected)):
        raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")


def _timeouts(settings: Settings) -> Tuple[timedelta, timedelta]:
    return timedelta(minutes=settings.staff_idle_minutes), timedelta(hours=settings.staff_session_hours)


def staff_view(staff: StaffRecord, needs_second_factor: bool = False) -> Dict[str, Any]:
    """The signed-in staff member as handlers and templates use them."""
    return {"id": staff.id, "email": staff.email, "name": staff.name, "role": staff.role,
            "totp_enabled": staff.totp_enabled, "needs_second_factor": needs_second_factor}


async def signed_in_staff(request: web.Request) -> Optional[Dict[str, Any]]:
    """The signed-in staff member ({id, email, name, role, ...}) as the store says now, or None.

    Read once per request. A session that ended (sign-out, disabled account,
    role or password change, time-out) is dropped from the cookie.
    """
    if STAFF_REQUEST_KEY in request:
        cached: Optional[Dict[str, Any]] = request[STAFF_REQUEST_KEY]
        return cached
    session = await get_session(request)
    token = session.get(TOKEN_KEY)
    staff: Optional[Dict[str, Any]] = None
    if isinstance(token, str):
        settings, store = request.app[SETTINGS], request.app[STORE]
        found = await asyncio.to_thread(current_session, store, token, request.app[CLOCK](), *_timeouts(settings))
        if found is None:
            session.pop(TOKEN_KEY, None)
        else:
            record = found[1]
            required = not record.totp_enabled and bool(await asyncio.to_thread(team_setting, store, REQUIRE_TOTP, False))
            staff = staff_view(record, needs_second_factor=required)
    request[STAFF_REQUEST_KEY] = staff
    return staff


async def require_staff(request: web.Request, api: bool, setup_ok: bool = False) -> Dict[str, Any]:
    """The signed-in staff member; else 401 (API) or a redirect to sign-in (pages).

    While the team requires a second factor this account lacks, only the
    security page (``setup_ok``) opens: other pages redirect there, APIs 403.
    """
    staff = await signed_in_staff(request)
    if staff is None:
        if api:
            raise web.HTTPUnauthorized(text='{"error": "sign in first"}', content_type="application/json")
        raise web.HTTPFound("/agent/login")
    if staff["needs_second_factor"] and not setup_ok:
        if api:
            raise web.HTTPForbidden(text='{"error": "set up two-step sign-in first, at /agent/security"}',
                                    content_type="application/json")
        raise web.HTTPFound("/agent/security")
    return staff


async def require_lead(request: web.Request, api: bool) -> Dict[str, Any]:
    """The signed-in support lead; else 401/redirect (not signed in) or 403 (signed in, not a lead)."""
    staff = await require_staff(request, api)
    if staff.get("role") != "lead":
        if api:
            raise web.HTTPForbidden(text='{"error": "support leads only"}', content_type="application/json")
        raise web.HTTPForbidden(text="This page is for support leads. Ask a lead to change your role.")
    return staff


def home_for(staff: Dict[str, Any]) -> str:
    """Where a staff member lands after signing in: leads on their console, agents in the inbox."""
    return "/lead" if staff.get("role") == "lead" else "/agent"


def _address(request: web.Request) -> str:
    return client_address(request, request.app[SETTINGS].trust_forwarded_for)


async def _audit(request: web.Request, actor: str, action: str, target: Optional[str] = None, **detail: Any) -> None:
    """Add to the audit trail; a store failure is logged, never a reason to fail the request."""
    try:
        await asyncio.to_thread(audit, request.app[STORE], actor, action, request.app[CLOCK](), target,
                                _address(request), detail or None)
    except StoreError:
        logger.error("audit: could not record %s by %s", action, actor)


async def audit_staff_action(request: web.Request, staff: Dict[str, Any], action: str, target: str, **detail: Any) -> None:
    """Record what a signed-in staff member did (claims, resolves, decisions, retraining ...)."""
    await _audit(request, str(staff["email"]), action, target, **detail)


async def _login_form(request: web.Request, error: Optional[str], email: str, status: int,
                      template: str = "agent_login.html") -> web.Response:
    context = {"csrf_token": await csrf_token(request), "error": error, "email": email}
    return aiohttp_jinja2.render_template(template, request, context, status=status)


async def login_page(request: web.Request) -> web.Response:
    """The sign-in form."""
    staff = await signed_in_staff(request)
    if staff:
        raise web.HTTPFound(home_for(staff))
    return await _login_form(request, None, "", 200)


class Attempt(NamedTuple):
    """A sign-in attempt already counted as failed: ``delay`` seconds before checking it, or ``locked``."""

    id: int
    delay: float
    locked: Optional[str]  # "email" or "address" when this attempt may not be checked at all


async def _open_attempt(request: web.Request, email: str) -> Attempt:
    """Count the attempt first, then decide how long to make it wait (or refuse it) from the counts.

    Counting before checking is what makes parallel guesses see each other:
    the n-th of a burst sees n, so at most ``sign_in_lock_failures`` can be
    checked in a window. Delay: 0 for the first ``sign_in_free_failures``
    failures, then 1, 2, 4 ... seconds, at most ``MAX_DELAY_SECONDS``.
    Raises StoreError.
    """
    settings, store, now = request.app[SETTINGS], request.app[STORE], request.app[CLOCK]()
    address = _address(request)
    attempt_id = await asyncio.to_thread(record_attempt, store, email, address, now)
    since = now - timedelta(minutes=settings.sign_in_window_minutes)
    by_email, by_address, _latest = await asyncio.to_thread(failures_since, store, email, address, since)
    # Both counts include this attempt: "locked" means that many failures came before it.
    locked = ("email" if by_email > settings.sign_in_lock_failures
              else "address" if by_address > settings.sign_in_address_lock_failures else None)
    if locked:
        await asyncio.to_thread(forget_attempt, store, attempt_id)  # refused unchecked: not one more failure
    over = by_email - 1 - settings.sign_in_free_failures
    return Attempt(attempt_id, 0 if over < 0 else min(2 ** over, MAX_DELAY_SECONDS), locked)


async def _refuse(request: web.Request, email: str, reason: str) -> web.Response:
    """A failed sign-in (already counted): logged (never the password), audited; the same words for every account."""
    logger.warning("staff sign-in failed for %r from %s (%s)", email[:100], _address(request), reason)
    await _audit(request, email[:320] or "(empty)", "sign_in_failed", email[:320], reason=reason)
    return await _login_form(request, WRONG, email, 401)


async def _locked(request: web.Request, email: str, lock: str, template: str = "agent_login.html") -> web.Response:
    minutes = request.app[SETTINGS].sign_in_window_minutes
    address = _address(request)
    logger.warning("staff sign-in refused for %r from %s: %s locked after repeated failures", email[:100], address, lock)
    await _audit(request, email[:320] or "(empty)", "sign_in_locked", email[:320], lock=lock)
    if lock == "address":
        message = (f"Too many failed sign-ins from your network. Try again in {minutes} minutes, "
                   "or ask a support lead to unlock your network's address.")
    else:
        message = (f"Too many failed sign-ins. Try again in {minutes} minutes, "
                   "or ask a support lead to unlock the account.")
    return await _login_form(request, message, email, 429, template)


async def _finish(request: web.Request, staff: StaffRecord) -> web.Response:
    """A new session (a fresh cookie and token: no fixation), audited; off to the staff member's page."""
    store, now = request.app[STORE], request.app[CLOCK]()
    token = await asyncio.to_thread(start_session, store, staff.id, _address(request),
                                    request.headers.get("User-Agent"), now)
    session = await new_session(request)
    session[TOKEN_KEY] = token
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    await _audit(request, staff.email, "sign_in", staff.email)
    raise web.HTTPFound(home_for({"role": staff.role}))


async def login(request: web.Request) -> web.Response:
    """The password step: slowed, then locked, after repeated failures; then the second factor or the session."""
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    store = request.app[STORE]
    try:
        attempt = await _open_attempt(request, email)
        if attempt.locked:
            return await _locked(request, email, attempt.locked)
        if attempt.delay:
            await asyncio.sleep(attempt.delay)
        staff = await asyncio.to_thread(authenticate, store, email, password)
        if staff is None:
            return await _refuse(request, email, "wrong e-mail or password, or a disabled account")
        await asyncio.to_thread(forget_attempt, store, attempt.id)
        if staff.totp_enabled:
            session = await new_session(request)
            session[PENDING_KEY] = {"id": staff.id, "email": staff.email, "at": request.app[CLOCK]().isoformat()}
            session[CSRF_KEY] = secrets.token_urlsafe(32)
            raise web.HTTPFound("/agent/login/code")
        return await _finish(request, staff)
    except StoreError:
        return await _login_form(request, UNAVAILABLE, email, 503)


def _pending(session: Session, now: datetime) -> Optional[Dict[str, Any]]:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    try:
        started = datetime.fromisoformat(str(pending.get("at")))
    except ValueError:
        return None
    return pending if (now - started).total_seconds() <= PENDING_SECONDS else None


async def code_page(request: web.Request) -> web.Response:
    """The second step: the authenticator's code (or a recovery code)."""
    if _pending(await get_session(request), request.app[CLOCK]()) is None:
        raise web.HTTPFound("/agent/login")
    return await _login_form(request, None, "", 200, "agent_login_code.html")


async def code(request: web.Request) -> web.Response:
    """Check the second factor; a wrong code counts as a failed sign-in of that account."""
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    session = await get_session(request)
    pending = _pending(session, request.app[CLOCK]())
    if pending is None:
        raise web.HTTPFound("/agent/login")
    store, email, staff_id = request.app[STORE], str(pending["email"]), int(pending["id"])
    entered = "".join(str(form.get("code") or "").split())
    try:
        attempt = await _open_attempt(request, email)
        if attempt.locked:
            session.pop(PENDING_KEY, None)
            return await _locked(request, email, attempt.locked)
        if attempt.delay:
            await asyncio.sleep(attempt.delay)
        step = code_step(await asyncio.to_thread(totp_secret, store, staff_id), entered)
        replayed = step is not None and not await asyncio.to_thread(claim_totp_step, store, staff_id, step)
        valid = step is not None and not replayed
        if step is None and entered:
            valid = await asyncio.to_thread(use_recovery_code, store, staff_id, entered)
        staff = await asyncio.to_thread(get_staff, store, email)
        if not valid or staff is None or staff.disabled:
            logger.warning("staff second factor failed for %r from %s%s", email, _address(request),
                           " (a code used before)" if replayed else "")
            await _audit(request, email, "second_factor_failed", email, **({"replayed": True} if replayed else {}))
            message = ("That code was used already. Wait for the next one." if replayed
                       else "That code is not right (or too old). Try the current one.")
            return await _login_form(request, message, "", 401, "agent_login_code.html")
        await asyncio.to_thread(forget_attempt, store, attempt.id)
        session.pop(PENDING_KEY, None)
        return await _finish(request, staff)
    except StoreError:
        return await _login_form(request, UNAVAILABLE, "", 503, "agent_login_code.html")


async def logout(request: web.Request) -> web.Response:
    """Sign out (POST with the CSRF token): the session ends on the server, not only in this browser."""
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    session = await get_session(request)
    token = session.get(TOKEN_KEY)
    staff = await signed_in_staff(request)
    if isinstance(token, str):
        try:
            await asyncio.to_thread(end_session, request.app[STORE], token, "signed out", request.app[CLOCK]())
        except StoreError:
            logger.error("staff sign-out: the session could not be ended in the store")
    if staff:
        await _audit(request, str(staff["email"]), "sign_out", str(staff["email"]))
    session.invalidate()
    raise web.HTTPFound("/agent/login")


def add_auth_routes(app: web.Application) -> None:
    """Register sign-in (password, then the second factor) and sign-out."""
    app.router.add_get("/agent/login", login_page)
    app.router.add_post("/agent/login", login)
    app.router.add_get("/agent/login/code", code_page)
    app.router.add_post("/agent/login/code", code)
    app.router.add_post("/agent/logout", logout)

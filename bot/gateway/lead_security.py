"""The lead's staff page (/lead/security): staff accounts (bot.gateway.lead_staff), two-step sign-in for all,
locked sign-ins, the audit trail.

Leads only. The audit trail is filtered by period (UTC days), who and what,
newest first, and downloads as CSV with every cell spreadsheet-safe.
"""
from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from bot.gateway.errors import PeriodError
from bot.gateway.keys import CLOCK, SETTINGS, STORE
from bot.gateway.lead_range import query_day
from bot.gateway.staff_auth import CSRF_FIELD, audit_staff_action, check_csrf, csrf_token, require_lead
from bot.reports.render import safe_cell
from bot.store.audit import ACTIONS, AuditRecord, audit_events
from bot.store.models import STAFF_ROLES
from bot.store.staff import list_staff
from bot.store.sign_ins import clear_address_failures, clear_failures, locked_addresses, locked_emails
from bot.store.team import REQUIRE_TOTP, set_team_setting, team_setting

SHOWN_EVENTS = 500
CSV_EVENTS = 100_000
AUDIT_CSV_HEADER = ("at", "actor", "action", "target", "address", "detail")


def _filters(request: web.Request) -> Tuple[Optional[date], Optional[date], str, str]:
    """``since``, ``until`` (ISO dates, optional), ``actor`` and ``action`` from the query; PeriodError (400)."""
    since, until = query_day(request, "since"), query_day(request, "until")
    if since and until and since > until:
        raise PeriodError(f"the start ({since}) is after the end ({until})")
    action = request.query.get("action", "")
    if action and action not in ACTIONS:
        raise PeriodError(f"unknown action {action[:40]!r}")
    return since, until, request.query.get("actor", "")[:320], action


async def security_page(
    request: web.Request, message: Optional[str] = None, status: int = 200, error: Optional[str] = None,
    secret: Optional[str] = None,
) -> web.Response:
    """Staff accounts, two-step sign-in for all, locked sign-ins with their unlock buttons, and the audit trail.

    ``message``: what was just done; ``error``: why it was not; ``secret``: a
    temporary password to show once (never stored or logged).
    """
    staff = await require_lead(request, api=False)
    settings, store, now = request.app[SETTINGS], request.app[STORE], request.app[CLOCK]()
    try:
        since, until, actor, action = _filters(request)
    except PeriodError as problem:
        since = until = None
        actor = action = ""
        error, status = f"Cannot show that: {problem}.", 400
    accounts = await asyncio.to_thread(list_staff, store)
    window = timedelta(minutes=settings.sign_in_window_minutes)
    events = await asyncio.to_thread(audit_events, store, since, until, actor or None, action or None, SHOWN_EVENTS)
    context: Dict[str, Any] = {
        "staff": staff, "csrf_token": await csrf_token(request), "message": message, "error": error,
        "secret": secret, "accounts": accounts, "roles": STAFF_ROLES,
        "require_totp": bool(await asyncio.to_thread(team_setting, store, REQUIRE_TOTP, False)),
        "locked": await asyncio.to_thread(locked_emails, store, now - window, settings.sign_in_lock_failures),
        "lock_failures": settings.sign_in_lock_failures, "window": settings.sign_in_window_minutes,
        "locked_addresses": await asyncio.to_thread(locked_addresses, store, now - window,
                                                    settings.sign_in_address_lock_failures),
        "address_lock_failures": settings.sign_in_address_lock_failures,
        "events": events, "capped": len(events) >= SHOWN_EVENTS, "actions": ACTIONS,
        "since": since.isoformat() if since else "", "until": until.isoformat() if until else "",
        "actor": actor, "action": action,
        "query": urlencode({k: v for k, v in request.query.items() if k in ("since", "until", "actor", "action")}),
    }
    return aiohttp_jinja2.render_template("lead_security.html", request, context, status=status)


async def show(request: web.Request) -> web.Response:
    return await security_page(request)


async def require_totp(request: web.Request) -> web.Response:
    """Turn "two-step sign-in required for all staff" on or off."""
    staff = await require_lead(request, api=False)
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    required = form.get("required") == "yes"
    await asyncio.to_thread(set_team_setting, request.app[STORE], REQUIRE_TOTP, required)
    await audit_staff_action(request, staff, "team_setting", REQUIRE_TOTP, value=required)
    return await security_page(request, "Two-step sign-in is now required for all staff." if required
                               else "Two-step sign-in is now optional.")


async def unlock(request: web.Request) -> web.Response:
    """Forget an e-mail's failed sign-ins: it may sign in again at once."""
    staff = await require_lead(request, api=False)
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    email = str(form.get("email") or "").strip().lower()[:320]
    cleared = await asyncio.to_thread(clear_failures, request.app[STORE], email)
    await audit_staff_action(request, staff, "unlock", email, failures=cleared)
    return await security_page(request, f"{email} may sign in again.")


async def unlock_address(request: web.Request) -> web.Response:
    """Forget a client address's failed sign-ins: everyone behind it may sign in again at once."""
    staff = await require_lead(request, api=False)
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    address = str(form.get("address") or "").strip()[:64]
    cleared = await asyncio.to_thread(clear_address_failures, request.app[STORE], address)
    await audit_staff_action(request, staff, "unlock", address, failures=cleared, kind="address")
    return await security_page(request, f"Sign-ins from {address} are allowed again.")


def audit_csv(events: Any) -> str:
    """The audit trail as CSV, newest first; every cell spreadsheet-safe (``safe_cell``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_CSV_HEADER)
    for event in events:
        assert isinstance(event, AuditRecord)
        detail = "; ".join(f"{key}: {value}" for key, value in (event.detail or {}).items())
        writer.writerow([safe_cell(cell) for cell in (
            event.at.isoformat(), event.actor, event.action, event.target or "", event.address or "", detail)])
    return out.getvalue()


async def download(request: web.Request) -> web.Response:
    """The filtered audit trail as a CSV file."""
    await require_lead(request, api=True)
    since, until, actor, action = _filters(request)
    events = await asyncio.to_thread(audit_events, request.app[STORE], since, until, actor or None, action or None, CSV_EVENTS)
    return web.Response(
        text=audit_csv(events), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="deskmate-audit.csv"'},
    )


def add_security_routes(app: web.Application) -> None:
    """Register the lead's staff security page, its forms and the audit download."""
    app.router.add_get("/lead/security", show)
    app.router.add_post("/lead/security/require-totp", require_totp)
    app.router.add_post("/lead/security/unlock", unlock)
    app.router.add_post("/lead/security/unlock-address", unlock_address)
    app.router.add_get("/lead/audit.csv", download)
    from bot.gateway.lead_staff import add_staff_routes  # it renders this page

    add_staff_routes(app)

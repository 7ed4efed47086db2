"""Staff accounts on the lead's security page (/lead/security): list, add, change role, disable or enable,
and a new temporary password (bot.lead.staff_admin holds the rules).

Forms post to ``/lead/staff/add`` and ``/lead/staff/change`` (CSRF token in
the form) and answer with the page itself, saying what was done or why not
(400 for a refused change, 404 for an unknown account). A new account or a
reset password gets a random temporary password, shown once on that page
for the lead to hand over; it is never stored in clear or logged.
``GET /lead/api/staff`` lists the accounts as JSON.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict

from aiohttp import web

from bot.gateway.keys import CLOCK, STORE
from bot.gateway.lead_security import security_page
from bot.gateway.staff_auth import CSRF_FIELD, audit_staff_action, check_csrf, require_lead
from bot.lead.staff_admin import StaffChangeRefusedError, change_staff, temporary_password
from bot.store.staff import StaffExistsError, StaffNotFoundError, StaffRecord, add_staff, list_staff

CHANGES = ("role", "disable", "enable", "password")


def account_view(account: StaffRecord) -> Dict[str, Any]:
    """An account as the console lists it (no secrets)."""
    return {
        "email": account.email, "name": account.name, "role": account.role, "disabled": account.disabled,
        "two_step": account.totp_enabled, "created_at": account.created_at.isoformat(),
    }


async def staff_api(request: web.Request) -> web.Response:
    """Every staff account: ``{staff: [{email, name, role, disabled, two_step, created_at}]}``."""
    await require_lead(request, api=True)
    accounts = await asyncio.to_thread(list_staff, request.app[STORE])
    return web.json_response({"staff": [account_view(a) for a in accounts]})


async def add_account(request: web.Request) -> web.Response:
    """Add an agent or a lead with a temporary password shown once."""
    lead = await require_lead(request, api=False)
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    email = str(form.get("email") or "").strip()[:320]
    name = str(form.get("name") or "").strip()
    role = str(form.get("role") or "")
    password = temporary_password()
    try:
        account = await asyncio.to_thread(add_staff, request.app[STORE], email, name, role, password, request.app[CLOCK]())
    except StaffExistsError as error:
        return await security_page(request, error=f"Not added: {error}.", status=409)
    except ValueError as error:
        return await security_page(request, error=f"Not added: {error}.", status=400)
    await audit_staff_action(request, lead, "staff_add", account.email, role=account.role)
    return await security_page(
        request, f"Added {account.email} ({account.role}). Their temporary password is below: give it to them in "
                 "person; it is shown only now.", secret=password,
    )


async def change_account(request: web.Request) -> web.Response:
    """Change an account's role, disable or enable it, or give it a new temporary password."""
    lead = await require_lead(request, api=False)
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    email = str(form.get("email") or "").strip()[:320]
    change = str(form.get("change") or "")
    if change not in CHANGES:
        return await security_page(request, error=f"Unknown change {change[:40]!r}.", status=400)
    role = str(form.get("role") or "") if change == "role" else None
    password = temporary_password() if change == "password" else None
    disabled = {"disable": True, "enable": False}.get(change)
    try:
        account = await asyncio.to_thread(
            change_staff, request.app[STORE], lead["email"], email, request.app[CLOCK](),
            role=role, disabled=disabled, password=password,
        )
    except StaffNotFoundError as error:
        return await security_page(request, error=f"Not changed: {error}.", status=404)
    except (StaffChangeRefusedError, ValueError) as error:
        return await security_page(request, error=f"Not changed: {error}.", status=400)
    if change == "role":
        await audit_staff_action(request, lead, "staff_role", account.email, role=account.role)
        message = f"{account.email} is now {'a lead' if account.role == 'lead' else 'an agent'}; their sessions ended."
    elif change == "password":
        await audit_staff_action(request, lead, "staff_password", account.email)
        message = (f"New temporary password for {account.email} below: give it to them in person; it is shown "
                   "only now. Their sessions ended.")
    else:
        await audit_staff_action(request, lead, "staff_disable" if account.disabled else "staff_enable", account.email)
        message = (f"{account.email} is disabled: they cannot sign in, and their sessions ended." if account.disabled
                   else f"{account.email} may sign in again.")
    return await security_page(request, message, secret=password)


def add_staff_routes(app: web.Application) -> None:
    """Register the staff account forms and API."""
    app.router.add_get("/lead/api/staff", staff_api)
    app.router.add_post("/lead/staff/add", add_account)
    app.router.add_post("/lead/staff/change", change_account)

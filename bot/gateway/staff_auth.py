"""Staff sign-in for the agent inbox: encrypted session cookies, CSRF tokens, sign-out.

Passwords are checked by the store (scrypt). The session cookie is
encrypted and signed (aiohttp-session, Fernet), HttpOnly, SameSite=Strict,
and Secure when DESKMATE_SECURE_COOKIES is on. Every form and every state-
changing API call carries the session's CSRF token.
"""
from __future__ import annotations

import asyncio
import secrets
from typing import Any, Dict, Optional

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from bot.gateway.keys import STORE
from bot.store.database import StoreError
from bot.store.staff import authenticate

STAFF_KEY = "staff"
CSRF_KEY = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


async def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, made on first use."""
    session = await get_session(request)
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return session[CSRF_KEY]


async def check_csrf(request: web.Request, submitted: object) -> None:
    """Refuse a state change without the session's CSRF token (403)."""
    session = await get_session(request)
    expected = session.get(CSRF_KEY)
    if not expected or not submitted or not secrets.compare_digest(str(submitted), str(expected)):
        raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")


async def signed_in_staff(request: web.Request) -> Optional[Dict[str, Any]]:
    """The signed-in staff member ({email, name, role}), or None."""
    session = await get_session(request)
    staff = session.get(STAFF_KEY)
    return staff if isinstance(staff, dict) else None


async def require_staff(request: web.Request, api: bool) -> Dict[str, Any]:
    """The signed-in staff member; else 401 (API) or a redirect to sign-in (pages)."""
    staff = await signed_in_staff(request)
    if staff is None:
        if api:
            raise web.HTTPUnauthorized(text='{"error": "sign in first"}', content_type="application/json")
        raise web.HTTPFound("/agent/login")
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


async def login_page(request: web.Request) -> web.Response:
    """The sign-in form."""
    staff = await signed_in_staff(request)
    if staff:
        raise web.HTTPFound(home_for(staff))
    context = {"csrf_token": await csrf_token(request), "error": None, "email": ""}
    return aiohttp_jinja2.render_template("agent_login.html", request, context)


async def login(request: web.Request) -> web.Response:
    """Check the form; on success a fresh session (no fixation) and the inbox."""
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    try:
        staff = await asyncio.to_thread(authenticate, request.app[STORE], email, password)
        error = None if staff else "Wrong e-mail or password."
    except StoreError:
        staff, error = None, "Sign-in is unavailable right now (database). Please try again shortly."
    if staff is None:
        context = {"csrf_token": await csrf_token(request), "error": error, "email": email}
        return aiohttp_jinja2.render_template("agent_login.html", request, context, status=401)
    session = await new_session(request)
    session[STAFF_KEY] = {"email": staff.email, "name": staff.name, "role": staff.role}
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    raise web.HTTPFound(home_for(session[STAFF_KEY]))


async def logout(request: web.Request) -> web.Response:
    """Sign out (POST with the CSRF token)."""
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPFound("/agent/login")


def add_auth_routes(app: web.Application) -> None:
    """Register sign-in and sign-out."""
    app.router.add_get("/agent/login", login_page)
    app.router.add_post("/agent/login", login)
    app.router.add_post("/agent/logout", logout)

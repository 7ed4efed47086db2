"""A staff member's sign-in security page (/agent/security): setting up or turning off two-step sign-in.

The authenticator secret is made here (pyotp), shown as a QR code drawn in
the gateway (segno, an SVG data URI: no CDN) and as text, and saved only
once a code from the app proves it was set up; then eight recovery codes are
shown, once. While the team requires two-step sign-in it cannot be turned off.
"""
from __future__ import annotations

import asyncio
import secrets
from typing import Any, Dict, List, Optional

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot.gateway.keys import CLOCK, STORE
from bot.gateway.staff_auth import (
    CSRF_FIELD,
    audit_staff_action,
    check_csrf,
    csrf_token,
    home_for,
    require_staff,
)
from bot.gateway.second_factor import code_step
from bot.store.staff import claim_totp_step, set_totp, totp_secret
from bot.store.team import REQUIRE_TOTP, team_setting

SETUP_KEY = "totp_setup"
ISSUER = "Deskmate"
RECOVERY_CODES = 8


def recovery_codes() -> List[str]:
    """Eight fresh one-time codes, e.g. ``k3x9-p2m7-q8w4`` (60 bits each)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return ["-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3)) for _ in range(RECOVERY_CODES)]


def qr_data_uri(secret: str, email: str) -> str:
    """The authenticator app's otpauth:// link as a QR code (an SVG data URI, drawn here)."""
    import pyotp
    import segno

    link = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    return str(segno.make(link, error="m").svg_data_uri(scale=5))


async def _page(request: web.Request, staff: Dict[str, Any], status: int = 200, **context: Any) -> web.Response:
    required = bool(await asyncio.to_thread(team_setting, request.app[STORE], REQUIRE_TOTP, False))
    values = {"staff": staff, "csrf_token": await csrf_token(request), "required": required, "home": home_for(staff),
              "message": None, "error": None, "setup_secret": None, "qr": None, "recovery_codes": None, **context}
    return aiohttp_jinja2.render_template("agent_security.html", request, values, status=status)


async def security_page(request: web.Request) -> web.Response:
    """Whether two-step sign-in is on, and the button to set it up."""
    staff = await require_staff(request, api=False, setup_ok=True)
    return await _page(request, staff)


async def begin(request: web.Request) -> web.Response:
    """A new secret for this browser's session (not saved until confirmed), its QR code and text."""
    staff = await require_staff(request, api=False, setup_ok=True)
    await check_csrf(request, (await request.post()).get(CSRF_FIELD))
    import pyotp

    secret = pyotp.random_base32()
    (await get_session(request))[SETUP_KEY] = secret
    return await _page(request, staff, setup_secret=secret, qr=qr_data_uri(secret, str(staff["email"])))


async def confirm(request: web.Request) -> web.Response:
    """Save the secret once the app's code matches; show the recovery codes once."""
    staff = await require_staff(request, api=False, setup_ok=True)
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    session = await get_session(request)
    secret = session.get(SETUP_KEY)
    if not isinstance(secret, str):
        return await _page(request, staff, 400, error="Start the set-up again.")
    step = code_step(secret, form.get("code"))
    if step is None:
        return await _page(request, staff, 400, error="That code does not match. Try the current one.",
                           setup_secret=secret, qr=qr_data_uri(secret, str(staff["email"])))
    codes = recovery_codes()
    await asyncio.to_thread(set_totp, request.app[STORE], str(staff["email"]), secret, codes, request.app[CLOCK]())
    await asyncio.to_thread(claim_totp_step, request.app[STORE], int(staff["id"]), step)  # this code is spent
    session.pop(SETUP_KEY, None)
    await audit_staff_action(request, staff, "second_factor_on", str(staff["email"]))
    return await _page(request, {**staff, "totp_enabled": True, "needs_second_factor": False},
                       message="Two-step sign-in is on.", recovery_codes=codes)


async def turn_off(request: web.Request) -> web.Response:
    """Turn two-step sign-in off with a current code (not while the team requires it)."""
    staff = await require_staff(request, api=False, setup_ok=True)
    form = await request.post()
    await check_csrf(request, form.get(CSRF_FIELD))
    store = request.app[STORE]
    if await asyncio.to_thread(team_setting, store, REQUIRE_TOTP, False):
        return await _page(request, staff, 409, error="Your team requires two-step sign-in: it stays on.")
    step = code_step(await asyncio.to_thread(totp_secret, store, int(staff["id"])), form.get("code"))
    if step is None:
        return await _page(request, staff, 400, error="That code is not right.")
    if not await asyncio.to_thread(claim_totp_step, store, int(staff["id"]), step):
        return await _page(request, staff, 400, error="That code was used already. Wait for the next one.")
    await asyncio.to_thread(set_totp, store, str(staff["email"]), None, [], request.app[CLOCK]())
    await audit_staff_action(request, staff, "second_factor_off", str(staff["email"]))
    return await _page(request, {**staff, "totp_enabled": False}, message="Two-step sign-in is off.")


def add_security_routes(app: web.Application) -> None:
    """Register the security page and its forms."""
    app.router.add_get("/agent/security", security_page)
    app.router.add_post("/agent/security/totp/begin", begin)
    app.router.add_post("/agent/security/totp/confirm", confirm)
    app.router.add_post("/agent/security/totp/off", turn_off)

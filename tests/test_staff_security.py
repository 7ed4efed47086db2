"""Staff sign-in that can be trusted, through the real pages and APIs, on SQLite and PostgreSQL.

Guessing slowed and stopped (and a lead's unlock), sessions the server
controls (sign-out, a disabled account, a role or password change, time-outs),
the second factor, and the audit trail of what staff do.
"""
from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.gateway.app import make_app
from bot.protocol import ClosedHow
from bot.settings import Settings
from bot.store.audit import audit_events
from bot.store.database import Store
from bot.store.messages import record_message
from bot.store.staff import add_staff, set_disabled, set_password, set_role
from bot.store.tickets import TicketRequest, open_ticket
from tests.socket_client import socket_client

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"
AGENT, LEAD = "ann@support.example", "lee@support.example"


class Clock:
    """The gateway's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def team(store: Store) -> Store:
    add_staff(store, AGENT, "Ann", "agent", PASSWORD, NOW)
    add_staff(store, LEAD, "Lee", "lead", PASSWORD, NOW)
    return store


def settings_for(store: Store, tmp_path: Path, **overrides: Any) -> Settings:
    values: Dict[str, Any] = dict(database_url=store.url, rasa_url="http://127.0.0.1:9", var_dir=tmp_path / "var",
                                  sign_in_free_failures=1, sign_in_lock_failures=4)
    values.update(overrides)
    return Settings(**values)


def run(settings: Settings, clock: Clock, body: Callable[[Callable[[], Awaitable[TestClient]]], Awaitable[None]]) -> None:
    """Run ``body`` with a factory of browsers (clients with their own cookies) on one in-process gateway."""

    async def main() -> None:
        server = TestServer(make_app(settings, clock=clock))
        await server.start_server()
        clients: List[TestClient] = []

        async def browser() -> TestClient:
            client = TestClient(server)
            await client.start_server()
            clients.append(client)
            return client

        try:
            await body(browser)
        finally:
            for client in clients:
                await client.close()
            await server.close()

    asyncio.run(main())


async def form_token(client: TestClient, path: str) -> str:
    page = await (await client.get(path)).text()
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


async def sign_in(client: TestClient, email: str, password: str = PASSWORD, address: Optional[str] = None) -> Any:
    """Post the sign-in form; ``address``: the client address a trusted proxy reports (X-Forwarded-For)."""
    headers = {"X-Forwarded-For": address} if address else {}
    token = await form_token(client, "/agent/login")
    return await client.post("/agent/login", data={"email": email, "password": password, "csrf_token": token},
                             allow_redirects=False, headers=headers)


async def inbox_csrf(client: TestClient) -> str:
    page = await (await client.get("/agent")).text()
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def actions_of(store: Store) -> List[str]:
    return [event.action for event in reversed(audit_events(store))]


def test_guessing_is_slowed_then_locked_the_same_for_every_email_and_a_lead_unlocks(
    team: Store, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(team, tmp_path)

    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        guesser = await browser()
        answers = []
        for attempt in range(4):
            started = time.monotonic()
            response = await sign_in(guesser, AGENT, f"guess number {attempt}")
            answers.append((response.status, "Wrong e-mail or password." in await response.text(), time.monotonic() - started))
        assert [(status, wrong) for status, wrong, _ in answers] == [(401, True)] * 4
        assert answers[2][2] >= 1.0 and answers[3][2] >= 2.0, "past the free failures, each answer waits longer"
        locked = await sign_in(guesser, AGENT, PASSWORD)  # even the right password, while locked
        assert locked.status == 429 and "Too many failed sign-ins" in await locked.text()
        assert (await guesser.get("/agent/api/queue")).status == 401

        # An e-mail with no account is answered and locked exactly the same way.
        stranger = [await sign_in(guesser, "nobody@support.example", "whatever it is") for _ in range(5)]
        assert [r.status for r in stranger] == [401, 401, 401, 401, 429]

        lead = await browser()
        assert (await sign_in(lead, LEAD)).status == 302
        page = await (await lead.get("/lead/security")).text()
        assert AGENT in page and "nobody@support.example" in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        assert (await lead.post("/lead/security/unlock", data={"email": AGENT, "csrf_token": token})).status == 200
        assert (await sign_in(guesser, AGENT)).status == 302
        assert (await guesser.get("/agent/api/queue")).status == 200

    run(settings, clock, body)
    actions = actions_of(team)
    assert actions.count("sign_in_failed") == 8 and actions.count("sign_in_locked") == 2
    assert "unlock" in actions and actions.count("sign_in") == 2
    assert all("guess" not in str(event.detail) for event in audit_events(team)), "never a password"


def test_a_burst_of_parallel_guesses_gets_no_more_checks_than_the_lock_allows(
    team: Store, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(team, tmp_path)  # locked after 4 failures

    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        guessers = [await browser() for _ in range(12)]
        tokens = [await form_token(g, "/agent/login") for g in guessers]
        answers = await asyncio.gather(*(
            g.post("/agent/login", data={"email": AGENT, "password": f"parallel guess {i}", "csrf_token": t},
                   allow_redirects=False)
            for i, (g, t) in enumerate(zip(guessers, tokens))
        ))
        statuses = [a.status for a in answers]
        assert set(statuses) <= {401, 429} and statuses.count(401) <= 4, statuses
        # Then one by one until locked: checked guesses (401) add up to the lock's 4, burst included.
        for attempt in range(6):
            status = (await sign_in(guessers[0], AGENT, f"sequential guess {attempt}")).status
            if status == 429:
                break
            statuses.append(status)
        assert statuses.count(401) == 4, statuses
        assert (await sign_in(guessers[0], AGENT)).status == 429, "locked, the right password included"

    run(settings, clock, body)


def test_a_locked_network_address_is_told_as_such_and_a_lead_can_unlock_it(
    team: Store, tmp_path: Path, clock: Clock
) -> None:
    # Behind a proxy that reports each client (X-Forwarded-For): guesses at many e-mails lock the address.
    settings = settings_for(team, tmp_path, sign_in_lock_failures=10, sign_in_address_lock_failures=3,
                            trust_forwarded_for=True)
    sprayer, office = "203.0.113.9", "198.51.100.7"

    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        guesser = await browser()
        for n in range(3):
            assert (await sign_in(guesser, f"user{n}@support.example", "spring2026!", address=sprayer)).status == 401
        locked = await sign_in(guesser, AGENT, address=sprayer)
        assert locked.status == 429 and "from your network" in await locked.text()
        assert (await sign_in(await browser(), AGENT, address=office)).status == 302, "other addresses are not locked"

        lead = await browser()
        assert (await sign_in(lead, LEAD, address=office)).status == 302
        page = await (await lead.get("/lead/security")).text()
        assert 'data-testid="locked-addresses"' in page and sprayer in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        unlocked = await lead.post("/lead/security/unlock-address", data={"address": sprayer, "csrf_token": token})
        after = await unlocked.text()
        assert unlocked.status == 200 and f"Sign-ins from {sprayer} are allowed again" in after
        assert 'data-testid="locked-addresses"' not in after
        assert (await sign_in(guesser, AGENT, address=sprayer)).status == 302

    run(settings, clock, body)
    assert any(e.action == "unlock" and e.target == sprayer for e in audit_events(team))


def test_sign_out_ends_the_session_on_the_server_a_copied_cookie_included(team: Store, tmp_path: Path, clock: Clock) -> None:
    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        ann = await browser()
        assert (await sign_in(ann, AGENT)).status == 302
        thief = await browser()
        thief.session.cookie_jar.update_cookies({c.key: c.value for c in ann.session.cookie_jar})
        assert (await thief.get("/agent/api/queue")).status == 200
        token = await inbox_csrf(ann)
        await ann.post("/agent/logout", data={"csrf_token": token}, allow_redirects=False)
        assert (await thief.get("/agent/api/queue")).status == 401
        assert (await ann.get("/agent/api/queue")).status == 401
        # Signing in again makes a new session (a new token: no fixation).
        before = {c.key: c.value for c in ann.session.cookie_jar}
        assert (await sign_in(ann, AGENT)).status == 302
        assert {c.key: c.value for c in ann.session.cookie_jar} != before

    run(settings_for(team, tmp_path), clock, body)


def test_a_disabled_agents_open_tab_and_socket_are_cut_off_within_seconds(team: Store, tmp_path: Path, clock: Clock) -> None:
    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        ann = await browser()
        assert (await sign_in(ann, AGENT)).status == 302
        cookie = "; ".join(f"{c.key}={c.value}" for c in ann.session.cookie_jar)
        sio = socket_client()
        cut = asyncio.Event()
        sio.on("disconnect", lambda *args: cut.set(), namespace="/agent")
        await sio.connect(str(ann.make_url("/")), namespaces=["/agent"], transports=["websocket"], headers={"Cookie": cookie})
        assert (await ann.get("/agent/api/queue")).status == 200
        set_disabled(team, AGENT, True, clock())
        assert (await ann.get("/agent/api/queue")).status == 401, "the open tab's next call is refused at once"
        await asyncio.wait_for(cut.wait(), 10)  # the socket, within seconds
        await sio.disconnect()

    run(settings_for(team, tmp_path), clock, body)


def test_a_demoted_lead_or_a_changed_password_ends_the_session_at_once(team: Store, tmp_path: Path, clock: Clock) -> None:
    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        lee = await browser()
        assert (await sign_in(lee, LEAD)).status == 302
        assert (await lee.get("/lead", allow_redirects=False)).status == 200
        add_staff(team, "lena@support.example", "Lena", "lead", PASSWORD, clock())  # the team keeps a lead
        set_role(team, LEAD, "agent", clock())
        assert (await lee.get("/lead", allow_redirects=False)).status == 302, "signed out at once"
        assert (await sign_in(lee, LEAD)).status == 302
        assert (await lee.get("/lead", allow_redirects=False)).status == 403, "now an agent"
        set_password(team, LEAD, "a completely new one", clock())
        assert (await lee.get("/agent/api/queue")).status == 401

    run(settings_for(team, tmp_path), clock, body)


def test_sessions_end_after_the_idle_and_the_absolute_time_outs(team: Store, tmp_path: Path, clock: Clock) -> None:
    settings = settings_for(team, tmp_path, staff_idle_minutes=10, staff_session_hours=1)

    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        ann = await browser()
        assert (await sign_in(ann, AGENT)).status == 302
        for _ in range(5):  # busy: every 9 minutes, for 45 minutes
            clock.now += timedelta(minutes=9)
            assert (await ann.get("/agent/api/queue")).status == 200
        clock.now += timedelta(minutes=16)  # past the hour, though never idle for 10 minutes
        assert (await ann.get("/agent/api/queue")).status == 401
        assert (await sign_in(ann, AGENT)).status == 302
        clock.now += timedelta(minutes=11)  # idle
        assert (await ann.get("/agent/api/queue")).status == 401

    run(settings, clock, body)


def test_behind_https_the_cookie_is_secure_and_host_prefixed(team: Store, tmp_path: Path, clock: Clock) -> None:
    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        ann = await browser()
        response = await ann.get("/agent/login")  # the first page that sets the staff cookie (its CSRF token)
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-deskmate_staff=") and "Secure" in cookie and "Path=/" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Domain" not in cookie

    run(settings_for(team, tmp_path, secure_cookies=True), clock, body)


async def set_up_totp(client: TestClient) -> tuple:
    """Turn two-step sign-in on through the security page; (the secret, the recovery codes)."""
    token = await form_token(client, "/agent/security")
    page = await (await client.post("/agent/security/totp/begin", data={"csrf_token": token})).text()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    assert 'src="data:image/svg+xml' in page, "the QR code is drawn by the gateway (no CDN)"
    wrong = await client.post("/agent/security/totp/confirm", data={"code": "000000", "csrf_token": token})
    assert wrong.status == 400
    # The previous step's code (still within the drift allowed): the code signing in next is a newer one.
    done = await (await client.post("/agent/security/totp/confirm",
                                    data={"code": pyotp.TOTP(secret).at(time.time() - 30), "csrf_token": token})).text()
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done)
    assert len(codes) == 8
    return secret, codes


def test_two_step_sign_in_is_checked_and_a_recovery_code_works_once(team: Store, tmp_path: Path) -> None:
    clock = Clock()
    clock.now = datetime.now(timezone.utc)  # TOTP codes follow the real time

    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        ann = await browser()
        assert (await sign_in(ann, AGENT)).status == 302
        secret, codes = await set_up_totp(ann)
        await ann.post("/agent/logout", data={"csrf_token": await inbox_csrf(ann)})

        step = await sign_in(ann, AGENT)
        assert step.status == 302 and step.headers["Location"] == "/agent/login/code"
        assert (await ann.get("/agent/api/queue")).status == 401, "the password alone opens nothing"
        token = await form_token(ann, "/agent/login/code")
        bad = await ann.post("/agent/login/code", data={"code": "123456", "csrf_token": token}, allow_redirects=False)
        assert bad.status == 401
        current = pyotp.TOTP(secret).now()
        good = await ann.post("/agent/login/code", data={"code": current, "csrf_token": token}, allow_redirects=False)
        assert good.status == 302 and (await ann.get("/agent/api/queue")).status == 200

        # A code seen over a shoulder (or replayed from a log) does not work a second time (RFC 6238, 5.2).
        thief = await browser()
        assert (await sign_in(thief, AGENT)).headers["Location"] == "/agent/login/code"
        token = await form_token(thief, "/agent/login/code")
        replay = await thief.post("/agent/login/code", data={"code": current, "csrf_token": token}, allow_redirects=False)
        assert replay.status == 401 and "used already" in await replay.text()
        assert (await thief.get("/agent/api/queue")).status == 401

        for attempt in ("first", "second"):
            await ann.post("/agent/logout", data={"csrf_token": await inbox_csrf(ann)})
            await sign_in(ann, AGENT)
            token = await form_token(ann, "/agent/login/code")
            used = await ann.post("/agent/login/code", data={"code": codes[0], "csrf_token": token}, allow_redirects=False)
            assert used.status == (302 if attempt == "first" else 401), attempt

    run(settings_for(team, tmp_path, sign_in_free_failures=5, sign_in_lock_failures=20), clock, body)
    actions = actions_of(team)
    assert "second_factor_on" in actions and actions.count("second_factor_failed") == 3


def test_a_lead_can_require_two_step_sign_in_for_all_staff(team: Store, tmp_path: Path) -> None:
    clock = Clock()
    clock.now = datetime.now(timezone.utc)

    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        lee = await browser()
        await sign_in(lee, LEAD)
        token = await form_token(lee, "/lead/security")
        assert (await lee.post("/lead/security/require-totp", data={"required": "yes", "csrf_token": token})).status == 200

        ann = await browser()
        assert (await sign_in(ann, AGENT)).status == 302
        assert (await ann.get("/agent", allow_redirects=False)).headers["Location"] == "/agent/security"
        assert (await ann.get("/agent/api/queue")).status == 403
        assert 'data-testid="totp-required"' in await (await ann.get("/agent/security")).text()
        await set_up_totp(ann)
        assert (await ann.get("/agent/api/queue")).status == 200
        off = await ann.post("/agent/security/totp/off", data={"code": "000000", "csrf_token": await inbox_csrf(ann)})
        assert off.status == 409, "required: it stays on"

    run(settings_for(team, tmp_path), clock, body)


def test_every_staff_action_is_in_the_audit_trail_and_its_csv_is_spreadsheet_safe(
    team: Store, tmp_path: Path, clock: Clock
) -> None:
    for number in (1, 2, 3):
        open_ticket(team, TicketRequest(f"web:audit-{number}", "free", "normal", "requested", NOW), NOW)
    miss = record_message(team, "web:audit-miss", "visitor", "do you sell hoodies", NOW, {"metadata": {}})
    record_message(team, "web:audit-miss", "bot", "Not sure", NOW, {"metadata": {"deskmate": {"type": "rephrase", "article_ids": []}}})

    async def body(browser: Callable[[], Awaitable[TestClient]]) -> None:
        typo = await browser()
        await sign_in(typo, '=HYPERLINK("http://evil.example")', "nope nope nope")
        ann = await browser()
        await sign_in(ann, AGENT)
        headers = {"X-CSRF-Token": await inbox_csrf(ann)}
        queue = await (await ann.get("/agent/api/queue")).json()
        first, second, third = sorted(t["id"] for t in queue["tickets"])
        assert (await ann.post(f"/agent/api/tickets/{first}/claim", headers=headers)).status == 200
        assert (await ann.post(f"/agent/api/tickets/{first}/reply", json={"text": "hi"}, headers=headers)).status == 200
        assert (await ann.post(f"/agent/api/tickets/{first}/resolve", headers=headers)).status == 200
        assert (await ann.post(f"/agent/api/tickets/{second}/handback", headers=headers)).status == 200
        assert (await ann.post(f"/agent/api/tickets/{first}/resolve", headers=headers)).status == 409  # not done: not audited
        await ann.post("/agent/logout", data={"csrf_token": headers["X-CSRF-Token"]})

        lee = await browser()
        await sign_in(lee, LEAD)
        page = await (await lee.get("/lead")).text()
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        decided = await lee.post(f"/lead/api/misses/{miss.id}", json={"action": "dismiss", "text": "do you sell hoodies"},
                                 headers={"X-CSRF-Token": csrf})
        assert decided.status == 200
        shown = await (await lee.get("/lead/security", params={"actor": AGENT})).text()
        assert "claim" in shown and "hand_back" in shown and LEAD not in shown.split("Audit trail", 1)[1].split("</table>")[0]
        download = await lee.get("/lead/audit.csv")
        rows = list(csv.reader(io.StringIO(await download.text())))
        assert rows[0] == ["at", "actor", "action", "target", "address", "detail"]
        cells = [cell for row in rows[1:] for cell in row]
        assert "'=HYPERLINK(\"http://evil.example\")" in cells
        assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in cells)

    run(settings_for(team, tmp_path), clock, body)
    events = list(reversed(audit_events(team)))
    summary = [(e.actor, e.action, e.target) for e in events]
    assert (AGENT, "claim", f"#{first_id(summary, 'claim')}") in summary
    actions = [e.action for e in events]
    for action in ("sign_in_failed", "sign_in", "claim", "reply", "resolve", "hand_back", "sign_out", "decide_miss"):
        assert action in actions, action
    assert actions.count("resolve") == 1
    assert all(e.address for e in events if e.action.startswith("sign_in")), "from where"


def first_id(summary: List[tuple], action: str) -> Optional[str]:
    target = next(t for _, a, t in summary if a == action)
    return target.lstrip("#") if target else None

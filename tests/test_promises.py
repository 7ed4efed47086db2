"""Promises from facts (issue 13 point 3): who is signed in, the queue ahead, honest words, the on-call alerts.

The store's part runs on SQLite and PostgreSQL. Gateways are real aiohttp servers (two instances on
one database, as several gateway processes share one), agents sign in and open the inbox socket,
visitors use the widget socket; the on-call webhook is a real aiohttp server on 127.0.0.1. The clock
is injected (``ManualClock``: the tests move it; nothing is mocked), so a retry "30 s later" and an
interval "15 min later" happen when the test says so, not by sleeping.
"""
from __future__ import annotations

import asyncio
import email
import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent
from typing import Any, Dict, List, Optional

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import fixed_clock
from bot.gateway.app import make_app
from bot.gateway.keys import ONCALL
from bot.handoff.messages import ticket_messages
from bot.handoff.policy import PolicyError, SupportPolicy
from bot.handoff.service import HandoffService, Visitor
from bot.identity import TOKEN_METADATA_KEY, Identity, issue_token
from bot.protocol import TicketReason
from bot.settings import PROJECT_ROOT, Settings
from bot.store.database import Store
from bot.store.messages import conversation_messages
from bot.store.oncall import alerts_for_ticket
from bot.store.presence import agent_connected, agents_online, gateway_stopped, heartbeat
from bot.store.staff import add_staff
from bot.store.tickets import TicketRequest, open_ticket, queue_ahead, unanswered_tickets
from tests.conftest import BOT_CLOCK, free_port
from tests.conversation import Widget, new_sender, sign_in, until
from tests.socket_client import socket_client

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)  # a Saturday night: only the always-staffed plan has agents due
PASSWORD = "correct horse battery"
INES, MARIA = "ines@support.example", "maria@support.example"
TTL = timedelta(seconds=30)
POLICY = SupportPolicy.load(PROJECT_ROOT / "kb" / "support_policy.yml")
SECRET = "a-shared-secret-of-at-least-32-bytes!!"


class ManualClock:
    """A clock the test moves (injected into the gateways like the real one)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def move_to(self, at: datetime) -> None:
        self.at = at


# --- the store: presence and the queue --------------------------------------------------------------


def test_each_agent_counts_once_on_any_gateway_until_their_presence_expires(store: Store) -> None:
    add_staff(store, INES, "Ines", "agent", PASSWORD, T0)
    add_staff(store, MARIA, "Maria", "agent", PASSWORD, T0)
    assert agents_online(store, T0) == 0
    agent_connected(store, "gateway-a", "s1", INES, T0, TTL)
    agent_connected(store, "gateway-b", "s2", INES, T0, TTL)  # a second tab, on another gateway
    agent_connected(store, "gateway-b", "s3", MARIA, T0, TTL)
    assert agents_online(store, T0) == 2
    # Gateway B refreshes its sockets; A says nothing any more (killed): A's row runs out, B's do not.
    heartbeat(store, "gateway-b", {"s3": MARIA}, T0 + timedelta(seconds=20), TTL)
    assert agents_online(store, T0 + timedelta(seconds=29)) == 2  # Ines still through A's row
    assert agents_online(store, T0 + timedelta(seconds=31)) == 1  # only Maria, whose gateway keeps her
    gateway_stopped(store, "gateway-b")
    assert agents_online(store, T0 + timedelta(seconds=31)) == 0


def ticket(store: Store, conversation: str, priority: str, at: datetime, due: timedelta = timedelta(minutes=5)) -> int:
    plan = "premium" if priority == "high" else "free"
    return open_ticket(store, TicketRequest(conversation, plan, priority, "requested", at + due), at).ticket.id


def test_the_queue_ahead_counts_waiting_tickets_of_the_same_or_a_higher_priority(store: Store) -> None:
    ticket(store, "c-high-1", "high", T0)
    ticket(store, "c-normal-1", "normal", T0)
    ticket(store, "c-high-2", "high", T0)
    normal = open_ticket(store, TicketRequest("c-normal-2", "free", "normal", "requested", T0 + timedelta(days=2)), T0).ticket
    high = open_ticket(store, TicketRequest("c-high-3", "premium", "high", "requested", T0 + timedelta(minutes=5)), T0).ticket
    assert queue_ahead(store, high) == 2  # the two high tickets before it; normal ones are behind it
    assert queue_ahead(store, normal) == 3  # both high ones and the normal one before it
    assert [t.conversation_id for t in unanswered_tickets(store, ["high"])] == ["c-high-1", "c-high-2", "c-high-3"]


def test_an_alert_is_taken_by_one_gateway_at_a_time_and_dropped_once_its_ticket_is_answered(store: Store) -> None:
    from bot.store.oncall import alert_failed, claim_due_alerts, note_alert
    from bot.store.tickets import record_agent_reply

    number = ticket(store, "c-1", "high", T0)
    assert note_alert(store, number, 0, "no_agent_online", T0) is True
    assert note_alert(store, number, 0, "due_soon", T0) is False  # the interval is taken
    lease = timedelta(seconds=60)
    [taken] = claim_due_alerts(store, "gateway-a", T0, lease)
    assert claim_due_alerts(store, "gateway-b", T0, lease) == []  # A holds it
    # A stopped mid-send: once its lease has passed, B takes it.
    [again] = claim_due_alerts(store, "gateway-b", T0 + lease, lease)
    assert again.id == taken.id
    assert alert_failed(store, taken.id, "gateway-a", 1, "late", T0, T0) is False  # A no longer holds it
    assert alert_failed(store, taken.id, "gateway-b", 1, "HTTP 500", T0 + lease, T0 + lease) is True
    record_agent_reply(store, number, INES, T0 + lease)
    assert claim_due_alerts(store, "gateway-a", T0 + 2 * lease, lease) == []  # answered: not sent any more


def test_an_alerts_e_mail_is_queued_once_even_when_its_gateway_lost_the_lease_mid_send(store: Store) -> None:
    # CI once mailed an alert twice: the test's clock jumped past gateway A's lease while A was queueing
    # the e-mail, so B took the alert, still not noted as mailed, and queued it again.
    from bot.store.oncall import PreparedMail, claim_due_alerts, note_alert, queue_alert_mail
    from bot.store.models import OutgoingMail
    from sqlalchemy import func, select

    number = ticket(store, "c-2", "high", T0)
    assert note_alert(store, number, 0, "due_soon", T0) is True
    lease = timedelta(seconds=60)
    [held_by_a] = claim_due_alerts(store, "gateway-a", T0, lease)
    [held_by_b] = claim_due_alerts(store, "gateway-b", T0 + lease, lease)  # A paused past its lease
    mail = [PreparedMail("oncall@example.org", f"Ticket #{number} is due soon", "...")]
    assert queue_alert_mail(store, held_by_a.id, "gateway-a", mail, T0 + lease) is False  # no longer A's
    assert queue_alert_mail(store, held_by_b.id, "gateway-b", mail, T0 + lease) is True
    assert queue_alert_mail(store, held_by_b.id, "gateway-b", mail, T0 + lease) is False  # mailed already
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(OutgoingMail)) == 1


# --- the promise at handoff (the action server's service, on the store) -----------------------------


def premium_visitor(store: Store) -> Visitor:
    from bot.store.customers import find_customer
    from bot.store.seed import seed_demo_customers

    seed_demo_customers(store, PROJECT_ROOT / "kb" / "demo_customers.yml", T0)
    customer = find_customer(store, "premium@demo.example")
    assert customer is not None and customer.plan == "premium"
    return Visitor(Identity(customer_key=customer.email, reason="verified"), customer)


def test_premium_is_promised_minutes_only_when_an_agent_is_signed_in_and_free(store: Store) -> None:
    visitor = premium_visitor(store)
    service = HandoffService(store, SECRET, POLICY, fixed_clock(T0))

    nobody = service.open_ticket("c-1", visitor, TicketReason.REQUESTED)
    [message] = ticket_messages(nobody, POLICY)
    assert message["response"] == "utter_ticket_opened_priority_no_agent"  # "No agent is online right now ..."
    assert message["json_message"]["deskmate"]["promise"] == "no_agent"
    assert message["json_message"]["deskmate"]["agents_online"] == 0

    add_staff(store, INES, "Ines", "agent", PASSWORD, T0)
    agent_connected(store, "gateway-a", "s1", INES, T0, TTL)
    # One agent online, one premium ticket (c-1) already waiting before this one: no "within 5 minutes".
    busy = service.open_ticket("c-2", visitor, TicketReason.REQUESTED)
    [message] = ticket_messages(busy, POLICY)
    assert message["response"] == "utter_ticket_opened_priority_busy"
    assert (message["agents"], message["ahead"]) == (1, 1)

    add_staff(store, MARIA, "Maria", "agent", PASSWORD, T0)
    agent_connected(store, "gateway-b", "s2", MARIA, T0, TTL)
    # Two agents signed in; c-1 answered, so only c-2 waits ahead: one of them is free for this one.
    store_reply(store, nobody.ticket.id if nobody.ticket else 0)
    free = service.open_ticket("c-3", visitor, TicketReason.REQUESTED)
    [message] = ticket_messages(free, POLICY)
    assert message["response"] == "utter_ticket_opened_priority" and message["reply_time"] == "5 minutes"
    assert message["json_message"]["deskmate"]["queue_ahead"] == 1


def store_reply(store: Store, ticket_id: int) -> None:
    from bot.store.tickets import record_agent_reply

    record_agent_reply(store, ticket_id, INES, T0)


def test_without_on_call_people_the_no_agent_promise_does_not_claim_an_alert(store: Store, tmp_path: Path) -> None:
    text = (PROJECT_ROOT / "kb" / "support_policy.yml").read_text().split("\non_call:")[0]
    (tmp_path / "policy.yml").write_text(text)
    policy = SupportPolicy.load(tmp_path / "policy.yml")
    assert policy.on_call is None
    service = HandoffService(store, SECRET, policy, fixed_clock(T0))
    [message] = ticket_messages(service.open_ticket("c-1", premium_visitor(store), TicketReason.REQUESTED), policy)
    assert message["response"] == "utter_ticket_opened_priority_no_agent_no_on_call"


@pytest.mark.parametrize("section, problem", [
    ("on_call: {}", "name someone to alert"),
    ("on_call: {email: [not-an-address]}", "is not an e-mail address"),
    ("on_call: {webhook: 'ftp://x.example/hook'}", r"is not an http\(s\) URL"),
    ("on_call: {email: a@b.example, repeat_every: {weeks: 1}}", "unknown unit"),
    ("on_call: {email: a@b.example, retries: -1}", "on_call.retries"),
    ("on_call: {email: a@b.example, priorities: [urgent]}", "on_call.priorities"),
    ("on_call: {email: a@b.example, pager: yes}", "unknown key"),
])
def test_a_broken_on_call_section_is_refused_by_name(tmp_path: Path, section: str, problem: str) -> None:
    base = (PROJECT_ROOT / "kb" / "support_policy.yml").read_text().split("\non_call:")[0]
    (tmp_path / "support_policy.yml").write_text(base + "\n" + section + "\n")
    with pytest.raises(PolicyError, match=problem):
        SupportPolicy.load(tmp_path / "support_policy.yml")
    from bot.kb.check import check_kb

    kb = tmp_path / "kb"
    shutil.copytree(PROJECT_ROOT / "kb", kb)
    shutil.copy(tmp_path / "support_policy.yml", kb / "support_policy.yml")
    assert any(re.search(problem, str(found)) and "support_policy.yml" in str(found) for found in check_kb(kb))


# --- two gateways on one database ------------------------------------------------------------------


@dataclass
class Hook:
    """The on-call webhook: a real aiohttp server on 127.0.0.1 that answers 500 to the first POST."""

    bodies: List[Dict[str, Any]] = field(default_factory=list)
    statuses: List[int] = field(default_factory=list)
    fail_first: int = 1

    async def receive(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.text()))
        status = 500 if len(self.bodies) <= self.fail_first else 200
        self.statuses.append(status)
        return web.json_response({"ok": status == 200}, status=status)


def gateway_settings_for(store: Store, tmp_path: Path, webhook: Optional[str], presence_ttl: float = 3600) -> Settings:
    """Gateways over ``store`` with no bot behind them and a policy whose on-call has ``webhook`` (else an
    e-mail address). Presence lasts ``presence_ttl`` seconds: an hour by default, so that the tests' clock
    jumps never outrun the heartbeats (which follow the clock only every 0.2 s)."""
    kb = tmp_path / "kb"
    if not kb.exists():
        shutil.copytree(PROJECT_ROOT / "kb", kb)
    base = (PROJECT_ROOT / "kb" / "support_policy.yml").read_text().split("\non_call:")[0]
    who = f"webhook: {webhook}" if webhook else "email: [oncall@example.org]"
    (kb / "support_policy.yml").write_text(base + dedent(f"""
        on_call:
          {who}
          warn_before: {{minutes: 2}}
          repeat_every: {{minutes: 15}}
          retries: 3
          retry_after: {{seconds: 30}}
        """))
    assert SupportPolicy.load(kb / "support_policy.yml").on_call is not None
    return Settings(
        database_url=store.url, rasa_url="http://127.0.0.1:9", kb_dir=kb, project_root=tmp_path,
        support_policy_file=kb / "support_policy.yml", oncall_check_seconds=0.05, presence_heartbeat_seconds=0.2,
        resume_window_minutes=0, presence_ttl_seconds=presence_ttl, var_dir=tmp_path / "var", mail_poll_seconds=0.1,
    )


async def two_gateways(settings: Settings, clock: ManualClock) -> List[TestClient]:
    clients = []
    for _ in range(2):
        client = TestClient(TestServer(make_app(settings, clock=clock)))
        await client.start_server()
        clients.append(client)
    return clients


async def rounds_pass(clients: List[TestClient], count: int = 3) -> None:
    """Wait until every gateway's on-call watch has finished ``count`` more rounds."""
    start = [client.server.app[ONCALL].rounds for client in clients]
    await until(lambda: all(c.server.app[ONCALL].rounds >= s + count for c, s in zip(clients, start)),
                f"{count} on-call rounds on every gateway")


async def agent_socket(client: TestClient, email: str) -> Any:
    """Sign ``email`` in on this gateway and open the inbox's live socket, as the inbox page does."""
    await sign_in(client, PASSWORD, email)
    cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
    sio = socket_client()
    await sio.connect(str(client.make_url("/")), namespaces=["/agent"], transports=["websocket"], headers={"Cookie": cookie})
    return sio


def test_an_agent_signed_in_on_either_gateway_counts_for_every_gateway(store: Store, tmp_path: Path) -> None:
    add_staff(store, INES, "Ines", "agent", PASSWORD, T0)
    add_staff(store, MARIA, "Maria", "agent", PASSWORD, T0)
    settings = gateway_settings_for(store, tmp_path, None, presence_ttl=TTL.total_seconds())
    clock = ManualClock(T0)
    # What the action server reads when it makes a promise: the same store, its own process's service.
    service = HandoffService(store, SECRET, POLICY, clock)

    async def run() -> None:
        a, b = await two_gateways(settings, clock)
        sockets = []
        try:
            sockets.append(await agent_socket(a, INES))
            await until(lambda: agents_online(store, clock()) == 1, "Ines present through gateway A")
            sockets.append(await agent_socket(b, MARIA))
            await until(lambda: agents_online(store, clock()) == 2, "Maria present through gateway B")
            # Heartbeats keep them while the clock moves past the first expiry.
            clock.move_to(T0 + TTL + timedelta(seconds=5))
            await until(lambda: agents_online(store, clock()) == 2, "both kept by their gateways' heartbeats")
            outcome = service.open_ticket("c-1", premium_visitor(store), TicketReason.REQUESTED)
            assert outcome.agents_online == 2
            await sockets[0].disconnect()  # Ines closes the inbox
            await until(lambda: agents_online(store, clock()) == 1, "Ines gone at once")
            await b.close()  # gateway B stops: its agents stop counting
            await until(lambda: agents_online(store, clock()) == 0, "gateway B's agents gone at shutdown")
        finally:
            for sio in sockets:
                await sio.disconnect()
            await a.close()
            await b.close()

    asyncio.run(run())


def test_on_call_webhook_is_retried_and_sent_once_per_ticket_and_interval_by_two_gateways(
    store: Store, tmp_path: Path
) -> None:
    hook = Hook()
    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook.receive)
    clock = ManualClock(T0)

    async def run() -> None:
        server = TestServer(hook_app, host="127.0.0.1", port=free_port())
        await server.start_server()
        settings = gateway_settings_for(store, tmp_path, str(server.make_url("/hook")))
        gateways = await two_gateways(settings, clock)
        try:
            number = ticket(store, "c-premium", "high", T0)  # nobody signed in, premium: in danger now
            await until(lambda: len(hook.bodies) == 1, "the first alert")
            await rounds_pass(gateways)
            assert hook.statuses == [500]  # failed, and not tried again before its retry time, by either gateway

            clock.move_to(T0 + timedelta(seconds=30))
            await until(lambda: len(hook.bodies) == 2, "the retry")
            await rounds_pass(gateways)
            assert hook.statuses == [500, 200]
            first = hook.bodies[1]
            assert first == {
                "ticket": number, "number": f"#{number}", "priority": "high", "plan": "premium",
                "sla_due_at": (T0 + timedelta(minutes=5)).isoformat(), "opened_at": T0.isoformat(),
                "reason": "no_agent_online", "interval": 0, "agents_online": 0,
            }

            # Still the first interval: nothing more, whatever happens (the due time passes too).
            for minutes in (3, 6, 14):
                clock.move_to(T0 + timedelta(minutes=minutes))
                await rounds_pass(gateways)
            assert hook.statuses == [500, 200]

            clock.move_to(T0 + timedelta(minutes=15))  # the next interval: one more alert
            await until(lambda: len(hook.bodies) == 3, "the second interval's alert")
            await rounds_pass(gateways, 5)
            assert hook.statuses == [500, 200, 200] and hook.bodies[2]["interval"] == 1
            alerts = alerts_for_ticket(store, number)
            assert [(a.slot, a.attempts, a.sent_at is not None) for a in alerts] == [(0, 2, True), (1, 1, True)]
        finally:
            for client in gateways:
                await client.close()
            await server.close()

    asyncio.run(run())


def test_the_waiting_visitor_is_told_once_when_the_due_time_is_about_to_pass(
    store: Store, tmp_path: Path, redis_url: str
) -> None:
    add_staff(store, INES, "Ines", "agent", PASSWORD, T0)
    # Several gateways share live delivery through Redis (README, "Scale-out"): the visitor's widget is on A,
    # and the notice may come from either.
    settings = gateway_settings_for(store, tmp_path, None).copy(update={"redis_url": redis_url})
    clock = ManualClock(T0)

    async def run() -> None:
        a, b = await two_gateways(settings, clock)
        widget = Widget(str(a.make_url("/")))
        inbox = None
        try:
            session = await widget.open()
            inbox = await agent_socket(b, INES)  # an agent is signed in, but nobody replies
            number = ticket(store, session, "high", T0)
            await rounds_pass([a, b])
            clock.move_to(T0 + timedelta(minutes=2, seconds=59))  # due in 2 min 1 s: not yet
            await rounds_pass([a, b])
            clock.move_to(T0 + timedelta(minutes=3, seconds=1))  # less than warn_before (2 min) left
            notice = await widget.next("bot_uttered")
            assert notice["metadata"]["deskmate"] == {
                "type": "due_soon", "ticket": number, "sla_due_at": (T0 + timedelta(minutes=5)).isoformat(), "on_call": True,
            }
            assert "nobody from the team has replied" in notice["text"] and "alerted the on-call team" in notice["text"]
            clock.move_to(T0 + timedelta(minutes=6))
            await rounds_pass([a, b])
            stored = [m for m in conversation_messages(store, session) if (m.payload or {}).get("metadata", {}).get("deskmate", {}).get("type") == "due_soon"]
            assert len(stored) == 1 and stored[0].sender == "system"
            assert widget.received.empty()  # told once, by one gateway
            # The due time neared with an agent signed in: the on-call people are alerted, by e-mail here,
            # once (the demo's outbound mail writes it to var/outbox/).
            assert [a.reason for a in alerts_for_ticket(store, number)] == ["due_soon"]
            outbox = tmp_path / "var" / "outbox"
            await until(lambda: outbox.is_dir() and any(outbox.glob("*.eml")), "the alert's e-mail")
            await rounds_pass([a, b])
            mails = [email.message_from_bytes(path.read_bytes()) for path in outbox.glob("*.eml")]
            assert [(m["To"], f"#{number}" in m["Subject"]) for m in mails] == [("oncall@example.org", True)]

            # A message while waiting is acknowledged: it is with the team.
            await widget.say("hello? anyone there?")
            ack = await widget.next("bot_uttered")
            assert ack["metadata"]["deskmate"] == {"type": "with_team", "ticket": number}
        finally:
            if inbox is not None:
                await inbox.disconnect()
            await widget.close()
            await a.close()
            await b.close()

    asyncio.run(run())


# --- through the real bot: the action server makes the promise from the store's facts -----------------


async def say(client: TestClient, settings: Settings, sender: str, text: str, token: str) -> List[Dict[str, Any]]:
    """``POST /api/messages`` as a signed-in customer; the replies."""
    response = await client.post(
        "/api/messages", json={"sender": sender, "message": text, "metadata": {TOKEN_METADATA_KEY: token}},
        headers={"Authorization": f"Bearer {settings.resolved_api_token()}"},
    )
    assert response.status == 200, await response.text()
    return list((await response.json())["messages"])


def test_a_premium_visitor_is_promised_minutes_only_while_an_agent_is_signed_in(
    gateway_settings: Settings, bot_store: Store
) -> None:
    from tests.conversation import handoff_of, start, texts

    token = issue_token(gateway_settings.resolved_identity_secret(), "premium@demo.example")

    async def run() -> None:
        client = await start(gateway_settings)
        inbox = None
        try:
            assert agents_online(bot_store, BOT_CLOCK) == 0
            alone = new_sender()
            replies = await say(client, gateway_settings, alone, "i want to talk to a person", token)
            handoff = handoff_of(replies)
            assert handoff is not None and handoff["promise"] == "no_agent" and handoff["agents_online"] == 0
            words = texts(replies)
            assert "No agent is online right now" in words and "alerting the on-call team" in words
            assert "An agent will join" not in words
            # "hello? anyone there?" is answered: the message is with the team.
            [ack] = await say(client, gateway_settings, alone, "hello? anyone there?", token)
            assert ack["metadata"]["deskmate"]["type"] == "with_team"
            assert "I've added your message" in ack["text"]

            # Maria opens the inbox and answers every premium ticket waiting (this one and any before it).
            csrf = await sign_in(client)
            cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
            inbox = socket_client()
            await inbox.connect(str(client.make_url("/")), namespaces=["/agent"], transports=["websocket"],
                                headers={"Cookie": cookie})
            await until(lambda: agents_online(bot_store, BOT_CLOCK) == 1, "Maria present")
            for waiting in unanswered_tickets(bot_store, ["high"]):
                answered = await client.post(f"/agent/api/tickets/{waiting.id}/reply", json={"text": "I'm here."},
                                             headers={"X-CSRF-Token": csrf})
                assert answered.status == 200
            replies = await say(client, gateway_settings, new_sender(), "i want to talk to a person", token)
            handoff = handoff_of(replies)
            assert handoff is not None and (handoff["promise"], handoff["agents_online"], handoff["queue_ahead"]) == (
                "priority", 1, 0)
            assert "An agent will join this chat within 5 minutes" in texts(replies)
        finally:
            if inbox is not None:
                await inbox.disconnect()
            await client.close()
        await until(lambda: agents_online(bot_store, BOT_CLOCK) == 0, "Maria gone once the inbox closed")

    asyncio.run(run())


def test_one_customers_tickets_page_the_on_call_people_one_at_a_time(store: Store, tmp_path: Path) -> None:
    """A customer (or a leaked token) opening many conversations at once does not flood the on-call people:
    their earliest-due unanswered ticket pages; the next only once that one is answered."""
    from bot.store.customers import find_customer
    from bot.store.seed import seed_demo_customers
    from bot.store.tickets import record_agent_reply

    seed_demo_customers(store, PROJECT_ROOT / "kb" / "demo_customers.yml", T0)
    customer = find_customer(store, "premium@demo.example")
    assert customer is not None
    hook = Hook(fail_first=0)
    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook.receive)
    clock = ManualClock(T0)

    async def run() -> None:
        server = TestServer(hook_app, host="127.0.0.1", port=free_port())
        await server.start_server()
        gateways = await two_gateways(gateway_settings_for(store, tmp_path, str(server.make_url("/hook"))), clock)
        try:
            numbers = [
                open_ticket(store, TicketRequest(f"c-flood-{index}", "premium", "high", "requested",
                                                 T0 + timedelta(minutes=5, seconds=index), customer_id=customer.id), T0).ticket.id
                for index in range(6)
            ]
            other = ticket(store, "c-someone-else", "high", T0)  # another customer's ticket still pages
            await until(lambda: len(hook.bodies) == 2, "one alert for the customer, one for the other ticket")
            await rounds_pass(gateways, 5)
            assert sorted(body["ticket"] for body in hook.bodies) == sorted([numbers[0], other])
            record_agent_reply(store, numbers[0], INES, T0)  # answered: the customer's next ticket pages
            await until(lambda: len(hook.bodies) == 3, "the customer's next ticket")
            await rounds_pass(gateways, 5)
            assert hook.bodies[2]["ticket"] == numbers[1] and len(hook.bodies) == 3
        finally:
            for client in gateways:
                await client.close()
            await server.close()

    asyncio.run(run())


@pytest.mark.parametrize("promise, told", [("priority", True), ("no_agent", False)])
def test_a_visitor_promised_an_agent_is_told_when_every_agent_has_left(
    store: Store, tmp_path: Path, promise: str, told: bool
) -> None:
    from bot.store.messages import record_message

    add_staff(store, INES, "Ines", "agent", PASSWORD, T0)
    clock = ManualClock(T0)

    async def run() -> None:
        gateway = TestClient(TestServer(make_app(gateway_settings_for(store, tmp_path, None), clock=clock)))
        await gateway.start_server()
        widget = Widget(str(gateway.make_url("/")))
        agent = None
        try:
            agent = await agent_socket(gateway, INES)
            await until(lambda: agents_online(store, clock()) == 1, "Ines signed in")
            conversation = await widget.open()
            number = ticket(store, conversation, "high", T0)
            record_message(store, conversation, "bot", "An agent will join within 5 minutes.", T0,
                           {"metadata": {"deskmate": {"type": "handoff", "ticket": number, "promise": promise}}})
            await rounds_pass([gateway])
            await agent.disconnect()  # the only agent leaves
            agent = None
            await until(lambda: alerts_for_ticket(store, number), "the on-call alert")
            await rounds_pass([gateway])
            notices = [m.text for m in conversation_messages(store, conversation) if m.sender == "system"]
            if told:
                assert len(notices) == 1 and "nobody from the team is online right now" in notices[0]
                assert "nobody from the team is online" in (await widget.next("bot_uttered"))["text"]
            else:
                assert notices == []  # they were told so when the ticket opened
        finally:
            if agent is not None:
                await agent.disconnect()
            await widget.close()
            await gateway.close()

    asyncio.run(run())

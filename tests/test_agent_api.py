"""The inbox's ticket JSON carries the first agent reply's time, which is what stops its countdown (issue 13).

An in-process gateway over a store on SQLite and PostgreSQL, no bot behind it (the inbox needs none),
its clock fixed at NOW: the first reply is stamped NOW.
"""
from __future__ import annotations

import asyncio
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest

from bot.settings import PROJECT_ROOT, Settings
from bot.store.agent_queue import visitor_label
from bot.store.database import Store
from bot.store.messages import conversation_messages, record_message
from bot.store.staff import add_staff
from bot.store.tickets import TicketRequest, get_ticket, open_ticket
from tests.conversation import sign_in, start
from tests.socket_client import socket_client

NOW = datetime(2026, 11, 7, 14, 2, tzinfo=timezone.utc)
AGENT = "ines@support.example"
PASSWORD = "correct horse battery"


@pytest.fixture
def inbox_settings(store: Store, tmp_path: Path) -> Settings:
    """A gateway over ``store`` with agent Ines, its clock at NOW, no bot listening."""
    add_staff(store, AGENT, "Ines", "agent", PASSWORD, NOW)
    shutil.copytree(PROJECT_ROOT / "kb", tmp_path / "kb")
    return Settings(database_url=store.url, fixed_now=NOW.isoformat(), rasa_url="http://127.0.0.1:9",
                    kb_dir=tmp_path / "kb", project_root=tmp_path)


def ticket_for(store: Store, name: str, due: datetime) -> int:
    opened = due - timedelta(minutes=5)
    record_message(store, name, "visitor", "my payment failed", opened, {"metadata": {}})
    return open_ticket(store, TicketRequest(name, "premium", "high", "requested", due), opened).ticket.id


def test_the_ticket_json_carries_the_first_reply_time_and_the_socket_says_to_reread_it(
    inbox_settings: Settings, store: Store
) -> None:
    in_time = ticket_for(store, "web:in-time", NOW + timedelta(minutes=2))
    late = ticket_for(store, "web:late", NOW - timedelta(minutes=3))

    async def run() -> None:
        client = await start(inbox_settings)
        sio = socket_client()
        events: List[Dict[str, Any]] = []
        changed = asyncio.Event()

        def on_change(data: Dict[str, Any]) -> None:
            events.append(data)
            changed.set()

        sio.on("ticket_message", on_change, namespace="/agent")
        try:
            csrf = await sign_in(client, PASSWORD, AGENT)
            cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
            await sio.connect(str(client.make_url("/")), namespaces=["/agent"], transports=["websocket"],
                              headers={"Cookie": cookie})

            async def ticket(number: int) -> Dict[str, Any]:
                response = await client.get(f"/agent/api/tickets/{number}")
                assert response.status == 200
                return (await response.json())["ticket"]

            async def queued() -> Dict[int, Dict[str, Any]]:
                return {t["id"]: t for t in (await (await client.get("/agent/api/queue")).json())["tickets"]}

            before = await ticket(in_time)
            assert before["first_agent_reply_at"] is None and before["overdue"] is False
            assert before["sla_due_at"] == (NOW + timedelta(minutes=2)).isoformat()
            assert (await queued())[late]["overdue"] is True

            headers = {"X-CSRF-Token": csrf}
            for number in (in_time, late):
                reply = await client.post(f"/agent/api/tickets/{number}/reply", json={"text": "On it."},
                                          headers=headers)
                assert reply.status == 200, await reply.text()
                # The reply's own answer carries it (the replying agent's view stops at once) ...
                assert (await reply.json())["ticket"]["first_agent_reply_at"] == NOW.isoformat()
                # ... and every open inbox is told to re-read that ticket (ticket_message: the row and the view).
                await asyncio.wait_for(changed.wait(), 10)
                assert {"ticket": number} in events
                changed.clear()

            for view in (await ticket(in_time), (await queued())[in_time]):
                assert view["first_agent_reply_at"] == NOW.isoformat() and view["overdue"] is False
            for view in (await ticket(late), (await queued())[late]):
                # Replied 3 minutes after its due time: no longer overdue, and the times show it was late.
                assert view["first_agent_reply_at"] == NOW.isoformat() and view["overdue"] is False
                assert view["sla_due_at"] == (NOW - timedelta(minutes=3)).isoformat()

            # A second reply does not move the first reply's time.
            again = await client.post(f"/agent/api/tickets/{in_time}/reply", json={"text": "Done."}, headers=headers)
            assert again.status == 200
            assert (await again.json())["ticket"]["first_agent_reply_at"] == NOW.isoformat()
            stored = get_ticket(store, in_time)
            assert stored is not None and stored.first_agent_reply_at == NOW
        finally:
            await sio.disconnect()
            await client.close()

    asyncio.run(run())


# ---- Issue 14: unread markers, the latest message, filters, search, paging, history and reopening ----

COLLEAGUE = "omar@support.example"


async def queue_json(client: Any, **params: Any) -> Dict[str, Any]:
    response = await client.get("/agent/api/queue", params={k: str(v) for k, v in params.items()})
    assert response.status == 200, await response.text()
    return await response.json()


def rows_by_id(data: Dict[str, Any]) -> Dict[int, Dict[str, Any]]:
    return {t["id"]: t for t in data["tickets"]}


def test_unread_is_per_agent_and_the_row_shows_the_latest_message_live(inbox_settings: Settings, store: Store) -> None:
    from tests.conversation import Widget

    add_staff(store, COLLEAGUE, "Omar", "agent", PASSWORD, NOW)
    visitor_conversation = "0123456789abcdef0123456789ab4f2a"  # a widget's conversation id
    watched = ticket_for(store, visitor_conversation, NOW + timedelta(minutes=2))
    other = ticket_for(store, "web:other", NOW + timedelta(minutes=3))

    async def run() -> None:
        client = await start(inbox_settings)
        colleague = await start(inbox_settings.copy())
        sio = socket_client()
        told = asyncio.Event()
        sio.on("ticket_message", lambda data: told.set() if data == {"ticket": watched} else None, namespace="/agent")
        base = str(client.make_url("/"))
        widget = Widget(base)
        try:
            csrf = await sign_in(client, PASSWORD, AGENT)
            colleague_csrf = await sign_in(colleague, PASSWORD, COLLEAGUE)
            cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
            await sio.connect(base, namespaces=["/agent"], transports=["websocket"], headers={"Cookie": cookie})

            data = await queue_json(client)
            rows = rows_by_id(data)
            # Never opened: the visitor's message is unread, and both tickets (nobody's) want attention.
            assert rows[watched]["unread"] == 1 and rows[other]["unread"] == 1
            assert rows[watched]["latest_message"]["text"] == "my payment failed"
            assert rows[watched]["latest_message"]["from"] == "visitor"
            assert rows[watched]["customer_label"] == visitor_label(visitor_conversation)  # anonymous: stable, readable
            assert re.fullmatch(r"Visitor [0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}", rows[watched]["customer_label"])
            assert {a["id"] for a in data["attention"]} == {watched, other}

            # Ines opens the ticket and her inbox says what it showed.
            messages = (await (await client.get(f"/agent/api/tickets/{watched}")).json())["messages"]
            seen = await client.post(f"/agent/api/tickets/{watched}/seen", json={"up_to": messages[-1]["id"]},
                                     headers={"X-CSRF-Token": csrf})
            assert seen.status == 200 and (await seen.json())["seen"] == messages[-1]["id"]
            data = await queue_json(client)
            assert rows_by_id(data)[watched]["unread"] == 0
            assert [a["id"] for a in data["attention"]] == [other]
            # Omar has not read it: unread is each agent's own.
            assert rows_by_id(await queue_json(colleague))[watched]["unread"] == 1

            # The visitor writes again through the widget: the inboxes are told live, and the row changes.
            await widget.open(visitor_conversation)
            await widget.say("It failed again, card ending 4242")
            await asyncio.wait_for(told.wait(), 10)
            data = await queue_json(client)
            row = rows_by_id(data)[watched]
            assert row["unread"] == 1 and row["latest_message"]["text"] == "It failed again, card ending 4242"
            attention = {a["id"]: a for a in data["attention"]}
            assert attention[watched]["latest_text"] == "It failed again, card ending 4242"

            # Omar claims the other ticket: still shown unread to Ines, but no longer hers to be alerted about.
            claimed = await colleague.post(f"/agent/api/tickets/{other}/claim", headers={"X-CSRF-Token": colleague_csrf})
            assert claimed.status == 200
            data = await queue_json(client)
            assert rows_by_id(data)[other]["unread"] == 1 and other not in {a["id"] for a in data["attention"]}

            # Ines replies: the row's latest message is hers now, and the "waiting for the visitor" filter has it.
            reply = await client.post(f"/agent/api/tickets/{watched}/reply", json={"text": "Refunded, sorry!"},
                                      headers={"X-CSRF-Token": csrf})
            assert reply.status == 200
            row = rows_by_id(await queue_json(client))[watched]
            assert row["latest_message"]["from"] == "agent" and row["latest_message"]["author"] == AGENT
            assert [t["id"] for t in (await queue_json(client, filter="waiting"))["tickets"]] == [watched]

            # A mark never moves back, and names no message past the conversation's newest.
            newest = (await (await client.get(f"/agent/api/tickets/{watched}")).json())["messages"][-1]["id"]
            ahead = await client.post(f"/agent/api/tickets/{watched}/seen", json={"up_to": newest + 1000},
                                      headers={"X-CSRF-Token": csrf})
            assert (await ahead.json())["seen"] == newest
            back = await client.post(f"/agent/api/tickets/{watched}/seen", json={"up_to": 0}, headers={"X-CSRF-Token": csrf})
            assert (await back.json())["seen"] == newest
            for bad in ({"up_to": "3"}, {"up_to": -1}, {"up_to": True}, [], {}):
                refused = await client.post(f"/agent/api/tickets/{watched}/seen", json=bad, headers={"X-CSRF-Token": csrf})
                assert refused.status == 400, bad
            assert (await client.post("/agent/api/tickets/99999/seen", json={"up_to": 1},
                                      headers={"X-CSRF-Token": csrf})).status == 404
            assert (await client.post(f"/agent/api/tickets/{watched}/seen", json={"up_to": 1})).status == 403
        finally:
            await widget.close()
            await sio.disconnect()
            await colleague.close()
            await client.close()

    asyncio.run(run())


def test_filters_search_and_paging_happen_on_the_server(inbox_settings: Settings, store: Store) -> None:
    from bot.store.tickets import assign_ticket

    numbers = []
    for i in range(30):
        conversation = f"web:page-{i:02d}"
        record_message(store, conversation, "visitor", f"question number {i}", NOW - timedelta(minutes=30))
        premium = i % 10 == 0
        due = NOW + timedelta(minutes=i - 5)  # the first five are overdue
        request = TicketRequest(conversation, "premium" if premium else "free", "high" if premium else "normal",
                                "requested", due)
        numbers.append(open_ticket(store, request, NOW - timedelta(minutes=30)).ticket.id)
    record_message(store, "web:page-07", "visitor", "I want my money back", NOW - timedelta(minutes=20))
    assign_ticket(store, numbers[3], AGENT, NOW)
    assign_ticket(store, numbers[4], "someone@support.example", NOW)

    async def run() -> None:
        client = await start(inbox_settings)
        try:
            await sign_in(client, PASSWORD, AGENT)
            first = await queue_json(client, per_page=10)
            assert first["total"] == 30 and first["pages"] == 3 and len(first["tickets"]) == 10
            # Priority first (3 premium), then by due time.
            assert [t["id"] for t in first["tickets"][:3]] == [numbers[0], numbers[10], numbers[20]]
            third = await queue_json(client, per_page=10, page=3)
            seen = {t["id"] for t in first["tickets"]} | {t["id"] for t in (await queue_json(client, per_page=10, page=2))["tickets"]}
            assert not seen & {t["id"] for t in third["tickets"]} and len(seen | {t["id"] for t in third["tickets"]}) == 30
            assert first["filter_counts"] == {"all": 30, "mine": 1, "unclaimed": 28, "overdue": 5, "premium": 3, "waiting": 0}
            assert [t["id"] for t in (await queue_json(client, filter="mine"))["tickets"]] == [numbers[3]]
            overdue = (await queue_json(client, filter="overdue"))["tickets"]
            assert {t["id"] for t in overdue} == set(numbers[:5]) and all(t["overdue"] for t in overdue)
            assert {t["id"] for t in (await queue_json(client, filter="premium"))["tickets"]} == {numbers[0], numbers[10], numbers[20]}
            assert (await queue_json(client, filter="unclaimed"))["total"] == 28

            # Search: the text anyone wrote (any case), the ticket number, the visitor's label.
            money = await queue_json(client, q="MONEY back")
            assert [t["id"] for t in money["tickets"]] == [numbers[7]]
            assert money["tickets"][0]["latest_message"]["text"] == "I want my money back"  # the latest, not the first
            assert numbers[12] in {t["id"] for t in (await queue_json(client, q=f"#{numbers[12]}"))["tickets"]}
            label = visitor_label("web:page-21")
            for term in (label, label.lower(), label.split()[1].replace("-", ""), label.split()[1][:9]):
                assert [t["id"] for t in (await queue_json(client, q=term))["tickets"]] == [numbers[21]], term
            assert (await queue_json(client, q="100%_"))["total"] == 0  # LIKE's wildcards are taken literally
            combined = await queue_json(client, q="question number 2", filter="premium")
            assert [t["id"] for t in combined["tickets"]] == [numbers[20]]

            for bad in ({"filter": "everything"}, {"view": "archived"}, {"page": "0"}, {"page": "x"},
                        {"per_page": "1000"}, {"q": "x" * 201}):
                response = await client.get("/agent/api/queue", params=bad)
                assert response.status == 400, bad
                assert "error" in await response.json()
        finally:
            await client.close()

    asyncio.run(run())


def test_resolved_tickets_are_a_history_that_can_be_opened_and_reopened(inbox_settings: Settings, store: Store) -> None:
    from tests.conversation import Widget

    conversation = "fedcba9876543210fedcba9876543210"
    number = ticket_for(store, conversation, NOW + timedelta(minutes=2))

    async def run() -> None:
        client = await start(inbox_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            csrf = await sign_in(client, PASSWORD, AGENT)
            headers = {"X-CSRF-Token": csrf}
            early = await client.post(f"/agent/api/tickets/{number}/reopen", headers=headers)
            assert early.status == 409  # not resolved
            assert (await client.post(f"/agent/api/tickets/{number}/resolve", headers=headers)).status == 200
            assert number not in rows_by_id(await queue_json(client))
            history = await queue_json(client, view="resolved")
            assert [t["id"] for t in history["tickets"]] == [number] and history["tickets"][0]["resolved_at"]
            assert (await client.get(f"/agent/api/tickets/{number}")).status == 200  # it opens

            await widget.open(conversation)
            await widget.next("deskmate_history")
            reopened = await client.post(f"/agent/api/tickets/{number}/reopen", headers=headers)
            assert reopened.status == 200, await reopened.text()
            ticket = (await reopened.json())["ticket"]
            assert ticket["status"] == "assigned" and ticket["assignee"] == AGENT and ticket["resolved_at"] is None
            told = await widget.next("bot_uttered")
            assert told["text"] == "Ines reopened your request (#%d). This conversation is with our support team again." % number
            assert AGENT not in str(told)  # the visitor sees the display name only
            assert number in rows_by_id(await queue_json(client))
            assert (await queue_json(client, view="resolved"))["total"] == 0
            # The visitor's next message goes to the team (the ticket's row), not to the bot (none listens here).
            await widget.say("thanks for coming back")
            for _ in range(100):
                latest = rows_by_id(await queue_json(client))[number]["latest_message"]
                if latest["text"] == "thanks for coming back":
                    break
                await asyncio.sleep(0.1)
            assert latest["text"] == "thanks for coming back" and latest["from"] == "visitor"
            assert widget.received.empty()  # nothing from a bot
            assert (await client.post(f"/agent/api/tickets/{number}/reopen", headers=headers)).status == 409
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_internal_notes_stay_with_staff_and_are_marked_as_such(inbox_settings: Settings, store: Store) -> None:
    from bot.store.messages import conversation_messages
    from tests.conversation import Widget

    conversation = "00112233445566778899aabbccddeeff"
    number = ticket_for(store, conversation, NOW + timedelta(minutes=2))

    async def run() -> None:
        client = await start(inbox_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            csrf = await sign_in(client, PASSWORD, AGENT)
            await widget.open(conversation)
            await widget.next("deskmate_history")
            note = "Customer is the CEO's brother: refund without asking <b>twice</b>"
            added = await client.post(f"/agent/api/tickets/{number}/notes", json={"text": note},
                                      headers={"X-CSRF-Token": csrf})
            assert added.status == 201, await added.text()
            stored = (await added.json())["note"]
            assert stored["text"] == note and stored["author"] == AGENT and stored["author_name"] == "Ines"
            detail = await (await client.get(f"/agent/api/tickets/{number}")).json()
            assert [n["text"] for n in detail["notes"]] == [note]
            assert note not in [m["text"] for m in detail["messages"]]  # a note is not a message

            # The visitor sees none of it: nothing live, not in the history a widget gets, not in the store's
            # conversation (which the e-mailed replies are made of).
            await asyncio.sleep(0.5)
            assert widget.received.empty()
            await widget.close()
            again = Widget(str(client.make_url("/")))
            await again.open(conversation)
            history = await again.next("deskmate_history")
            assert "CEO" not in str(history)
            await again.close()
            assert all("CEO" not in m.text for m in conversation_messages(store, conversation))

            for bad in ({"text": "   "}, {"text": "x" * 4001}, {"text": 3}, []):
                assert (await client.post(f"/agent/api/tickets/{number}/notes", json=bad,
                                          headers={"X-CSRF-Token": csrf})).status == 400, bad
            assert (await client.post("/agent/api/tickets/424242/notes", json={"text": "hi"},
                                      headers={"X-CSRF-Token": csrf})).status == 404
            assert (await client.post(f"/agent/api/tickets/{number}/notes", json={"text": "hi"})).status == 403
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_leads_manage_saved_replies_and_agents_read_them(inbox_settings: Settings, store: Store) -> None:
    lead = "lee@support.example"
    add_staff(store, lead, "Lee", "lead", PASSWORD, NOW)

    async def run() -> None:
        agent_client, lead_client = await start(inbox_settings), await start(inbox_settings.copy())
        try:
            agent_csrf = await sign_in(agent_client, PASSWORD, AGENT)
            lead_csrf = await sign_in(lead_client, PASSWORD, lead)
            lead_headers = {"X-CSRF-Token": lead_csrf}
            created = await lead_client.post("/agent/api/saved-replies", headers=lead_headers,
                                             json={"title": "Refund on its way", "text": "Your refund is on its way: 3-5 days."})
            assert created.status == 201, await created.text()
            reply_id = (await created.json())["saved_reply"]["id"]
            # An agent reads them, and may not change them.
            listed = await (await agent_client.get("/agent/api/saved-replies")).json()
            assert [(r["title"], r["text"]) for r in listed["saved_replies"]] == [("Refund on its way", "Your refund is on its way: 3-5 days.")]
            refused = await agent_client.post("/agent/api/saved-replies", headers={"X-CSRF-Token": agent_csrf},
                                              json={"title": "Mine", "text": "x"})
            assert refused.status == 403
            assert (await agent_client.delete(f"/agent/api/saved-replies/{reply_id}",
                                              headers={"X-CSRF-Token": agent_csrf})).status == 403

            duplicate = await lead_client.post("/agent/api/saved-replies", headers=lead_headers,
                                               json={"title": "refund  ON its way", "text": "again"})
            assert duplicate.status == 409 and "already" in (await duplicate.json())["error"]
            changed = await lead_client.put(f"/agent/api/saved-replies/{reply_id}", headers=lead_headers,
                                            json={"title": "Refund sent", "text": "Refunded today: 3-5 days to show."})
            assert changed.status == 200 and (await changed.json())["saved_reply"]["title"] == "Refund sent"
            for bad in ({"title": "", "text": "x"}, {"title": "t", "text": " "}, {"title": "t" * 101, "text": "x"}, {"title": 1}):
                assert (await lead_client.post("/agent/api/saved-replies", headers=lead_headers, json=bad)).status == 400, bad
            assert (await lead_client.put("/agent/api/saved-replies/999", headers=lead_headers,
                                          json={"title": "t", "text": "x"})).status == 404
            assert (await lead_client.delete("/agent/api/saved-replies/abc", headers=lead_headers)).status == 404
            assert (await lead_client.delete(f"/agent/api/saved-replies/{reply_id}", headers=lead_headers)).status == 204
            assert (await (await agent_client.get("/agent/api/saved-replies")).json())["saved_replies"] == []
            assert (await lead_client.delete(f"/agent/api/saved-replies/{reply_id}", headers=lead_headers)).status == 404
        finally:
            await agent_client.close()
            await lead_client.close()

    asyncio.run(run())


def test_the_article_picker_searches_answers_and_phrasings_not_only_titles(inbox_settings: Settings, store: Store) -> None:
    async def run() -> None:
        client = await start(inbox_settings)
        try:
            await sign_in(client, PASSWORD, AGENT)
            every = (await (await client.get("/agent/api/articles")).json())["articles"]
            titles = {a["id"]: a["title"] for a in every}
            assert not any("money" in t.lower() for t in titles.values())  # a title filter finds nothing ...
            found = (await (await client.get("/agent/api/articles", params={"q": "money back"})).json())["articles"]
            assert found and found[0]["id"] == "refund-policy", found  # ... the KB search does
            assert found[0]["body"] and 0 < found[0]["score"] <= 1
            assert [a["score"] for a in found] == sorted((a["score"] for a in found), reverse=True)
        finally:
            await client.close()

    asyncio.run(run())


def test_a_customers_other_open_tickets_merge_in_one_click_and_the_visitor_is_online_while_connected(
    inbox_settings: Settings, store: Store
) -> None:
    from decimal import Decimal

    from bot.store.customers import CustomerData, upsert_customer
    from bot.store.tickets import ticket_events
    from tests.conversation import Widget

    customer = upsert_customer(store, CustomerData("ana@demo.example", "Ana Lima", "premium", "monthly",
                                                   Decimal("14.99"), "EUR", "active"), NOW)
    first, second, third = ("aa" * 16, "bb" * 16, "cc" * 16)
    numbers = []
    for conversation, text in ((first, "charged twice"), (second, "still charged twice!"), (third, "hello?")):
        record_message(store, conversation, "visitor", text, NOW - timedelta(minutes=9))
        request = TicketRequest(conversation, "premium", "high", "requested", NOW + timedelta(minutes=5),
                                customer_id=customer.id, handover={"customer": {"name": "Ana Lima"}})
        numbers.append(open_ticket(store, request, NOW - timedelta(minutes=9)).ticket.id)
    stranger = ticket_for(store, "dd" * 16, NOW + timedelta(minutes=5))

    async def run() -> None:
        client = await start(inbox_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            csrf = await sign_in(client, PASSWORD, AGENT)
            headers = {"X-CSRF-Token": csrf}
            detail = await (await client.get(f"/agent/api/tickets/{numbers[0]}")).json()
            assert [t["id"] for t in detail["other_open_tickets"]] == numbers[1:]
            assert detail["other_open_tickets"][0]["latest_message"]["text"] == "still charged twice!"
            assert detail["visitor_online"] is False  # one gateway, no widget connected: offline
            assert (await (await client.get(f"/agent/api/tickets/{stranger}")).json())["other_open_tickets"] == []

            await widget.open(second)
            await widget.next("deskmate_history")
            assert (await (await client.get(f"/agent/api/tickets/{numbers[1]}")).json())["visitor_online"] is True

            merged = await client.post(f"/agent/api/tickets/{numbers[0]}/merge", json={"from": numbers[1]}, headers=headers)
            assert merged.status == 200, await merged.text()
            assert (await merged.json())["merged"]["status"] == "resolved"
            told = await widget.next("bot_uttered")
            assert told["text"].startswith(f"Your request #{numbers[1]} is now handled together with your other request #{numbers[0]}")
            assert AGENT not in str(told)
            detail = await (await client.get(f"/agent/api/tickets/{numbers[0]}")).json()
            assert [t["id"] for t in detail["other_open_tickets"]] == [numbers[2]]
            assert "> still charged twice!" in detail["notes"][0]["text"]  # the merged conversation, quoted
            assert [e.kind for e in ticket_events(store, numbers[1])][-1] == "merged"

            # Refused: a resolved ticket, itself, another customer's ticket, a bad body.
            for into, source, status in ((numbers[0], numbers[1], 409), (numbers[0], numbers[0], 409),
                                         (numbers[0], stranger, 409), (numbers[0], 99999, 404)):
                answer = await client.post(f"/agent/api/tickets/{into}/merge", json={"from": source}, headers=headers)
                assert answer.status == status, (into, source)
            assert (await client.post(f"/agent/api/tickets/{numbers[0]}/merge", json={"from": "2"},
                                      headers=headers)).status == 400
            assert (await client.get(f"/agent/api/tickets/{stranger}")).status == 200

            await widget.close()
            await asyncio.sleep(0.5)
            assert (await (await client.get(f"/agent/api/tickets/{numbers[2]}")).json())["visitor_online"] is False
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


# ---- Issue 14, break-test fixes: merge needs confirming for a colleague's ticket, unread on other tickets,
# the handover's count of unsure answers, the visitor's online mark following the widget at once ----

def _customer_tickets(store: Store, conversations: List[str]) -> List[int]:
    from decimal import Decimal

    from bot.store.customers import CustomerData, upsert_customer

    customer = upsert_customer(store, CustomerData("bea@demo.example", "Bea Ruiz", "premium", "monthly",
                                                   Decimal("14.99"), "EUR", "active"), NOW)
    numbers = []
    for conversation in conversations:
        record_message(store, conversation, "visitor", f"help with {conversation[:4]}", NOW - timedelta(minutes=9))
        request = TicketRequest(conversation, "premium", "high", "requested", NOW + timedelta(minutes=5),
                                customer_id=customer.id, handover={"customer": {"name": "Bea Ruiz"}})
        numbers.append(open_ticket(store, request, NOW - timedelta(minutes=9)).ticket.id)
    return numbers


def test_merging_a_colleagues_ticket_needs_confirming_and_other_tickets_show_what_is_unread(
    inbox_settings: Settings, store: Store
) -> None:
    from bot.store.tickets import assign_ticket, ticket_events

    add_staff(store, COLLEAGUE, "Omar", "agent", PASSWORD, NOW)
    kept, omars, free = _customer_tickets(store, ["a1" * 16, "b2" * 16, "c3" * 16])
    assign_ticket(store, omars, COLLEAGUE, NOW)

    async def run() -> None:
        client = await start(inbox_settings)
        try:
            csrf = await sign_in(client, PASSWORD, AGENT)
            headers = {"X-CSRF-Token": csrf}

            async def others() -> Dict[int, Dict[str, Any]]:
                detail = await (await client.get(f"/agent/api/tickets/{kept}")).json()
                return {t["id"]: t for t in detail["other_open_tickets"]}

            # Never opened by Ines: each other ticket's visitor message is unread (it said 0 before).
            assert {n: t["unread"] for n, t in (await others()).items()} == {omars: 1, free: 1}
            messages = (await (await client.get(f"/agent/api/tickets/{omars}")).json())["messages"]
            await client.post(f"/agent/api/tickets/{omars}/seen", json={"up_to": messages[-1]["id"]}, headers=headers)
            record_message(store, "b2" * 16, "visitor", "any news?", NOW)
            record_message(store, "b2" * 16, "visitor", "hello??", NOW)
            assert (await others())[omars]["unread"] == 2  # Ines's own count, as the queue shows it

            # Omar's ticket: refused until confirmed, and the refusal says why and how.
            refused = await client.post(f"/agent/api/tickets/{kept}/merge", json={"from": omars}, headers=headers)
            assert refused.status == 409
            error = (await refused.json())["error"]
            assert COLLEAGUE in error and "confirm" in error
            still = get_ticket(store, omars)
            assert still is not None and still.status == "assigned" and still.assignee == COLLEAGUE
            bad = await client.post(f"/agent/api/tickets/{kept}/merge", json={"from": omars, "confirm": "yes"},
                                    headers=headers)
            assert bad.status == 400
            confirmed = await client.post(f"/agent/api/tickets/{kept}/merge", json={"from": omars, "confirm": True},
                                          headers=headers)
            assert confirmed.status == 200, await confirmed.text()
            assert [e.kind for e in ticket_events(store, omars)][-1] == "merged"
            # A ticket nobody claimed (or her own) needs no confirming.
            assert (await client.post(f"/agent/api/tickets/{kept}/merge", json={"from": free},
                                      headers=headers)).status == 200
        finally:
            await client.close()

    asyncio.run(run())


def test_the_handover_says_how_many_times_the_bot_was_unsure(inbox_settings: Settings, store: Store) -> None:
    """A priority plan hands over at the first unsure answer, the others at the second in a row: the words
    count what the stored conversation shows, never "twice" by the reason alone."""
    guesses = {"intents": [{"name": "faq", "confidence": 0.9}], "articles": [{"article_id": "refund-policy", "confidence": 0.3}]}

    def unsure_ticket(conversation: str, plan: str, priority: str, suggestions_first: int, answered_before: bool) -> int:
        at = NOW - timedelta(minutes=5)
        if answered_before:
            record_message(store, conversation, "visitor", "how do i cancel", at)
            record_message(store, conversation, "bot", "Here's how ...", at, {"metadata": {"deskmate": {"type": "article", "article_id": "cancel-subscription"}}})
        for i in range(suggestions_first):
            record_message(store, conversation, "visitor", f"hmm {i}", at)
            record_message(store, conversation, "bot", "Is it one of these?", at, {"metadata": {"deskmate": {"type": "suggestions", "article_ids": ["refund-policy"], "guesses": guesses}}})
        record_message(store, conversation, "visitor", "money back for the thing", at)
        number = open_ticket(store, TicketRequest(conversation, plan, priority, "low_confidence", NOW + timedelta(minutes=5),
                                                  handover={"reason": "low_confidence"}), at).ticket.id
        record_message(store, conversation, "bot", "A person will help", at, {"metadata": {"deskmate": {"type": "handoff", "ticket": number, "guesses": guesses}}})
        return number

    premium = unsure_ticket("web:unsure-premium", "premium", "high", 0, answered_before=False)
    free = unsure_ticket("web:unsure-free", "free", "normal", 1, answered_before=False)
    # An unsure answer, then an answer that worked, then unsure again: one in a row when it handed over.
    reset = unsure_ticket("web:unsure-reset", "premium", "high", 0, answered_before=True)

    async def run() -> None:
        client = await start(inbox_settings)
        try:
            await sign_in(client, PASSWORD, AGENT)

            async def handover(number: int) -> Dict[str, Any]:
                return (await (await client.get(f"/agent/api/tickets/{number}")).json())["handover"]

            first = await handover(premium)
            assert first["unsure_in_a_row"] == 1 and len(first["failed_messages"]) == 1
            assert first["summary"] == "Bot unsure of one message: a priority plan is handed over at the first"
            assert "twice" not in first["summary"]
            second = await handover(free)
            assert second["unsure_in_a_row"] == 2 and second["summary"] == "Bot unsure twice in a row"
            assert (await handover(reset))["unsure_in_a_row"] == 1
        finally:
            await client.close()

    asyncio.run(run())


def test_the_visitor_online_mark_follows_the_widget_at_once(inbox_settings: Settings, store: Store) -> None:
    """The inboxes are told when the visitor of an open ticket comes or goes (their last widget closed),
    instead of finding out at the next re-read half a minute later."""
    from tests.conversation import Widget

    conversation = "0f" * 16
    number = ticket_for(store, conversation, NOW + timedelta(minutes=2))
    record_message(store, "1e" * 16, "visitor", "no ticket here", NOW)

    async def run() -> None:
        client = await start(inbox_settings)
        base = str(client.make_url("/"))
        sio = socket_client()
        told: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
        sio.on("visitor_presence", told.put_nowait, namespace="/agent")
        first, second, stranger = Widget(base), Widget(base), Widget(base)
        try:
            await sign_in(client, PASSWORD, AGENT)
            cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
            await sio.connect(base, namespaces=["/agent"], transports=["websocket"], headers={"Cookie": cookie})

            async def online() -> Any:
                return (await (await client.get(f"/agent/api/tickets/{number}")).json())["visitor_online"]

            await first.open(conversation)
            assert await asyncio.wait_for(told.get(), 5) == {"ticket": number, "online": True}
            await second.open(conversation)  # a second tab: still online, nothing new to tell
            await second.close()
            await asyncio.sleep(0.3)
            assert told.empty() and await online() is True
            await stranger.open("1e" * 16)  # a visitor without an open ticket: no inbox cares
            await first.close()
            assert await asyncio.wait_for(told.get(), 2) == {"ticket": number, "online": False}
            assert await online() is False
            await stranger.close()
            await asyncio.sleep(0.3)
            assert told.empty()
        finally:
            for widget in (first, second, stranger):
                await widget.close()
            await sio.disconnect()
            await client.close()

    asyncio.run(run())


def test_with_several_gateways_the_visitor_is_online_on_any_of_them(
    inbox_settings: Settings, store: Store, redis_url: str
) -> None:
    """Two gateways sharing Redis: a widget on one is online on the other (not "unknown"); closing it ends
    that at once; a gateway that stopped without saying so stops counting when its entry lapses."""
    import time

    from redis import Redis

    from bot.gateway.visitor_presence import KEY_PREFIX
    from tests.conversation import Widget

    conversation = "2d" * 16
    number = ticket_for(store, conversation, NOW + timedelta(minutes=2))
    settings = inbox_settings.copy(update={"redis_url": redis_url})

    async def run() -> None:
        here, there = await start(settings), await start(settings)
        widget = Widget(str(here.make_url("/")))
        redis = Redis.from_url(redis_url)
        try:
            await sign_in(there, PASSWORD, AGENT)

            async def online() -> Any:
                return (await (await there.get(f"/agent/api/tickets/{number}")).json())["visitor_online"]

            assert await online() is False
            await widget.open(conversation)
            assert await online() is True  # seen from the other gateway
            await widget.close()
            await asyncio.sleep(0.3)
            assert await online() is False  # at once, not after a heartbeat's time-out
            # A gateway killed with the widget connected: its entry counts until it lapses, then not.
            redis.hset(KEY_PREFIX + conversation, "killed-gateway", f"{time.time() + 1:.3f}")
            assert await online() is True
            await asyncio.sleep(1.2)
            assert await online() is False
        finally:
            redis.delete(KEY_PREFIX + conversation)
            redis.close()
            await widget.close()
            await there.close()
            await here.close()

    asyncio.run(run())


def test_anonymous_visitors_of_different_conversations_never_share_a_label(inbox_settings: Settings, store: Store) -> None:
    # Each pair had one label when it was the id's last four letters or digits ("Visitor IV10", "Visitor AB12" ...).
    pairs = [("api:v10", "api:iv10"), ("web:ab-12", "web:xab12"), ("api:shop/42", "api:shop-42"),
             ("0123456789abcdef0123456789ab4f2a", "fedcba9876543210fedcba9876544f2a")]
    numbers = {name: ticket_for(store, name, NOW + timedelta(minutes=5)) for pair in pairs for name in pair}

    async def run() -> None:
        client = await start(inbox_settings)
        try:
            await sign_in(client, PASSWORD, AGENT)
            rows = rows_by_id(await queue_json(client, per_page=100))
            labels = {name: rows[number]["customer_label"] for name, number in numbers.items()}
            assert len(set(labels.values())) == len(labels), labels
            for name, label in labels.items():
                assert label == visitor_label(name)  # stable: the same conversation, the same label
                found = (await queue_json(client, q=label))["tickets"]
                assert [t["id"] for t in found] == [numbers[name]], (name, label)
        finally:
            await client.close()

    asyncio.run(run())


def test_a_colleagues_ticket_is_taken_only_knowingly_and_a_late_resolve_is_refused(
    inbox_settings: Settings, store: Store
) -> None:
    """Break test: sending a reply took a colleague's ticket with no Undo, and a Resolve started on a free
    ticket went through after a colleague had claimed it during the undo time."""
    add_staff(store, COLLEAGUE, "Omar", "agent", PASSWORD, NOW)
    replied = ticket_for(store, "web:taken-by-reply", NOW + timedelta(minutes=2))
    resolved = ticket_for(store, "web:resolved-late", NOW + timedelta(minutes=3))

    async def run() -> None:
        client = await start(inbox_settings)
        colleague = await start(inbox_settings.copy())
        try:
            headers = {"X-CSRF-Token": await sign_in(client, PASSWORD, AGENT)}
            theirs = {"X-CSRF-Token": await sign_in(colleague, PASSWORD, COLLEAGUE)}
            for number in (replied, resolved):
                assert (await colleague.post(f"/agent/api/tickets/{number}/claim", headers=theirs)).status == 200

            refused = await client.post(f"/agent/api/tickets/{replied}/reply", json={"text": "hi"}, headers=headers)
            assert refused.status == 409 and COLLEAGUE in (await refused.json())["error"]
            assert get_ticket(store, replied).assignee == COLLEAGUE  # nothing sent, nothing taken
            assert not [m for m in conversation_messages(store, "web:taken-by-reply") if m.sender == "agent"]
            taken = await client.post(f"/agent/api/tickets/{replied}/reply", json={"text": "hi", "take_over": True},
                                      headers=headers)
            assert taken.status == 200 and get_ticket(store, replied).assignee == AGENT

            # Resolve as seen when it was nobody's: the colleague has it now, so it stays open.
            late = await client.post(f"/agent/api/tickets/{resolved}/resolve", json={"assignee": None}, headers=headers)
            assert late.status == 409 and COLLEAGUE in (await late.json())["error"]
            assert get_ticket(store, resolved).status == "assigned"
            # Resolving it knowing whose it is goes through.
            knowing = await client.post(f"/agent/api/tickets/{resolved}/resolve", json={"assignee": COLLEAGUE},
                                        headers=headers)
            assert knowing.status == 200 and get_ticket(store, resolved).status == "resolved"
        finally:
            await client.close()
            await colleague.close()

    asyncio.run(run())


def test_a_disabled_agents_claimed_tickets_go_back_to_the_queue(inbox_settings: Settings, store: Store) -> None:
    """Break test: a disabled agent's claimed tickets alerted nobody when their visitors wrote."""
    from bot.store.staff import set_disabled

    add_staff(store, COLLEAGUE, "Omar", "agent", PASSWORD, NOW)
    held = ticket_for(store, "web:held-by-omar", NOW + timedelta(minutes=2))

    async def run() -> None:
        client = await start(inbox_settings)
        colleague = await start(inbox_settings.copy())
        try:
            headers = {"X-CSRF-Token": await sign_in(client, PASSWORD, AGENT)}
            theirs = {"X-CSRF-Token": await sign_in(colleague, PASSWORD, COLLEAGUE)}
            assert (await colleague.post(f"/agent/api/tickets/{held}/claim", headers=theirs)).status == 200
            set_disabled(store, COLLEAGUE, True, NOW)
            ticket = get_ticket(store, held)
            assert ticket.assignee is None and ticket.status == "open"
            unclaimed = await queue_json(client, filter="unclaimed")
            assert held in [t["id"] for t in unclaimed["tickets"]]
            assert (await client.post(f"/agent/api/tickets/{held}/claim", headers=headers)).status == 200
        finally:
            await client.close()
            await colleague.close()

    asyncio.run(run())

"""What visitors really type and send cannot silence the bot, flood the agents, forge figures or leak staff details.

Through the real interfaces (the widget's socket, the JSON API) in front of
the running bot (trained model, action server, store).
"""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any, Dict, List

import aiohttp
import pytest
import socketio

from bot.identity import issue_token
from bot.launcher import BotProcesses
from bot.lead.misses import collect_misses
from bot.rasa_client import RasaClient
from bot.settings import Settings
from bot.store.database import Store
from bot.store.feedback import feedback_for
from bot.store.messages import conversation_messages
from bot.store.tickets import assign_ticket, tickets_for_conversation
from tests.conftest import free_port
from tests.conversation import Widget, sign_in, start, until
from tests.socket_client import socket_client

QUESTIONS = [  # phrasings of the articles themselves: the answer is certain, so its order shows
    ("how do i turn on subtitles", "subtitles-audio"),
    ("where can i find my invoices", "invoices"),
    ("redeem gift card", "gift-cards-promo"),
    ("how do i reset my password", "password-reset"),
    ("I was charged twice", "double-charge"),
    ("how do I cancel my subscription", "cancel-subscription"),
]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def api(client: Any, settings: Settings, sender: str, body: Any, raw: bool = False) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {settings.resolved_api_token()}", "Content-Type": "application/json"}
    data = body if raw else json.dumps(body)
    return await client.post("/api/messages", data=data, headers=headers)


def kinds(messages: List[Dict[str, Any]]) -> List[str]:
    return [(m.get("metadata") or {}).get("deskmate", {}).get("type", "") for m in messages]


async def replies_until_quiet(widget: Widget, quiet: float = 1.5, first_within: float = 30.0) -> List[Dict[str, Any]]:
    """A turn's replies: the first within ``first_within`` s, then the rest until ``quiet`` s without one."""
    said = [await widget.next("bot_uttered", timeout=first_within)]
    while True:
        try:
            said.append(await widget.next("bot_uttered", timeout=quiet))
        except asyncio.TimeoutError:
            return said


@pytest.mark.parametrize("command", ["/restart", "/back", "/session_start", "/restart@1.0", "/action_restart", "/"])
def test_rasa_commands_typed_by_a_visitor_are_words_and_never_silence_the_bot(
    gateway_settings: Settings, bot_store: Store, command: str
) -> None:
    async def body() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            await widget.say(command)  # first in the conversation
            first = await replies_until_quiet(widget)
            assert first and "handoff" not in kinds(first), first
            await widget.say("how do i turn on subtitles")
            answer = await widget.next("bot_uttered")
            assert answer["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
            await replies_until_quiet(widget)
            await widget.say(command)  # mid-conversation
            again = await replies_until_quiet(widget)
            assert again and "handoff" not in kinds(again)
            await widget.say("where can i find my invoices")
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["article_id"] == "invoices"
            assert tickets_for_conversation(bot_store, session) == []
            stored = [m.text for m in conversation_messages(bot_store, session) if m.sender == "visitor"]
            assert stored.count(command) == 2, "the visitor's words are stored as typed"
        finally:
            await widget.close()
            await client.close()

    run(body())


def test_the_start_payload_is_greeted_never_a_miss_or_a_ticket(
    gateway_settings: Settings, bot_store: Store
) -> None:
    premium = issue_token(gateway_settings.resolved_identity_secret(), "premium@demo.example")

    async def body() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            for _ in range(2):  # a widget re-sends its initPayload on reconnects
                await widget.sio.emit("user_uttered", {"message": "/get_started", "session_id": session,
                                                       "metadata": {"user_token": premium}})
                greeting = await replies_until_quiet(widget)
                assert greeting and greeting[0]["text"].startswith("Hi!")
            assert tickets_for_conversation(bot_store, session) == []
            misses = [m for m in collect_misses(bot_store) if m.conversation_id == session]
            assert misses == []
        finally:
            await widget.close()
            await client.close()

    run(body())


def test_forged_or_repeated_verdicts_count_once_and_only_for_an_answer_given(
    gateway_settings: Settings, bot_store: Store
) -> None:
    async def body() -> None:
        client = await start(gateway_settings)
        base = str(client.make_url("/"))
        tab, other_tab = Widget(base), Widget(base)
        try:
            session = await tab.open()
            await other_tab.open(session)
            await tab.say('/feedback_not_helpful{"article_id":"no-such-article"}')
            await replies_until_quiet(tab, 1.0)
            for _ in range(5):  # typed, not a button the bot offered: words, at most about an answer given
                await tab.say('/feedback_not_helpful{"article_id":"refund-policy"}')
                await replies_until_quiet(tab, 1.0)
            shown = [m.id for m in conversation_messages(bot_store, session) if kinds([m.payload or {}]) == ["article"]]
            verdicts = feedback_for(bot_store, session)
            assert all(v.answer_message_id in shown for v in verdicts) and len(verdicts) <= len(shown)
            assert "no-such-article" not in {v.article_id for v in verdicts}
            before = len(verdicts)

            await tab.say("where can i find my invoices")
            said = await replies_until_quiet(tab)
            yes = next(b["payload"] for m in said for b in m["quick_replies"] if b["title"] == "Yes")
            for widget in (tab, tab, tab, other_tab):  # three clicks, and "Yes" in a second tab
                await widget.say(yes)
            await replies_until_quiet(tab)
            rows = feedback_for(bot_store, session)[before:]
            assert [(r.article_id, r.helpful) for r in rows] == [("invoices", True)]
            no = yes.replace("feedback_helpful", "feedback_not_helpful")
            await tab.say(no)  # a later click changes it
            await replies_until_quiet(tab)
            assert [(r.article_id, r.helpful) for r in feedback_for(bot_store, session)[before:]] == [("invoices", False)]
        finally:
            await tab.close()
            await other_tab.close()
            await client.close()

    run(body())


def test_a_rating_nobody_asked_for_is_refused_and_a_ticket_is_rated_once(
    gateway_settings: Settings, bot_store: Store
) -> None:
    async def body() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            await widget.say("how do i turn on subtitles")
            await replies_until_quiet(widget)
            for ticket in (None, 1, 999999, "1", 1, 1):
                await widget.sio.emit("deskmate_rating", {"session_id": session, "ticket": ticket, "stars": 1})
                notice = await widget.next("bot_uttered")
                assert "nothing to rate" in notice["text"]
            assert [r for r in feedback_for(bot_store, session) if r.csat] == []

            await widget.say("i want to talk to a person")
            ticket = (await widget.next("bot_uttered"))["metadata"]["deskmate"]["ticket"]
            headers = {"X-CSRF-Token": await sign_in(client)}
            assert (await client.post(f"/agent/api/tickets/{ticket}/resolve", headers=headers)).status == 200
            await replies_until_quiet(widget)
            for stars in (1, 1, 1, 5):
                await widget.sio.emit("deskmate_rating", {"session_id": session, "ticket": ticket, "stars": stars})
                assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["type"] == "rating_recorded"
            assert [(r.csat, r.ticket_id) for r in feedback_for(bot_store, session) if r.csat] == [(5, ticket)]
        finally:
            await widget.close()
            await client.close()

    run(body())


def test_text_that_breaks_the_pipe_is_cleaned_stored_and_answered(gateway_settings: Settings, bot_store: Store) -> None:
    async def body() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            # A lone surrogate (a cut emoji) in raw JSON, and NUL and control characters.
            raw = '{"sender": "surrogate", "message": "cancel my plan \\ud83d"}'
            response = await api(client, gateway_settings, "surrogate", raw, raw=True)
            assert response.status == 200, await response.text()
            assert (await response.json())["messages"]
            stored = conversation_messages(bot_store, "api:surrogate")[0].text
            assert stored == "cancel my plan \ufffd"
            session = await widget.open()
            await widget.say("cancel\x00 my plan\x07 \ud83d")
            assert await replies_until_quiet(widget)
            assert conversation_messages(bot_store, session)[0].text == "cancel my plan \ufffd"
        finally:
            await widget.close()
            await client.close()

    run(body())


def test_a_burst_of_messages_is_stored_and_answered_in_order(gateway_settings: Settings, bot_store: Store) -> None:
    async def body() -> None:
        client = await start(gateway_settings)
        try:
            for trial in range(4):
                widget = Widget(str(client.make_url("/")))
                session = await widget.open()
                for text, _ in QUESTIONS:  # no wait between them: pasted, or a flaky connection catching up
                    await widget.say(text)
                answers = []
                while len(answers) < len(QUESTIONS):
                    message = await widget.next("bot_uttered", timeout=30)
                    if message["metadata"].get("deskmate", {}).get("type") == "article":
                        answers.append(message["metadata"]["deskmate"]["article_id"])
                assert answers == [article for _, article in QUESTIONS], f"trial {trial}"
                stored = [m.text for m in conversation_messages(bot_store, session) if m.sender == "visitor"]
                assert stored == [text for text, _ in QUESTIONS], f"trial {trial}"
                await widget.close()
        finally:
            await client.close()

    run(body())


def test_the_visitor_is_told_the_agents_name_never_the_e_mail(
    gateway_settings: Settings, bot_store: Store, agent_maria: str
) -> None:
    token = issue_token(gateway_settings.resolved_identity_secret(), "standard@demo.example")
    signed_in = {"user_token": token}

    async def body() -> List[Dict[str, Any]]:
        client = await start(gateway_settings)
        try:
            opened = await (await api(client, gateway_settings, "news-1", {
                "sender": "news-1", "message": "let me speak to an agent", "metadata": signed_in})).json()
            number = next(m["metadata"]["deskmate"]["ticket"] for m in opened["messages"]
                          if m["metadata"].get("deskmate", {}).get("type") == "handoff")
            assign_ticket(bot_store, number, agent_maria, datetime.fromisoformat(gateway_settings.fixed_now))
            # The same customer asks about their tickets from another conversation.
            asked = await api(client, gateway_settings, "news-2", {
                "sender": "news-2", "message": "any news on my ticket", "metadata": signed_in})
            return (await asked.json())["messages"]
        finally:
            await client.close()

    said = " ".join(m["text"] for m in run(body()))
    assert "with Maria" in said and agent_maria not in said and "@" not in said


def test_the_widget_socket_refuses_other_sites_and_the_staff_socket_refuses_all_but_its_own(
    gateway_settings: Settings,
) -> None:
    partner = "https://partner.example"
    settings = gateway_settings.copy(update={"allowed_origins": partner})

    async def body() -> None:
        client = await start(settings)
        base = str(client.make_url("/"))
        try:
            evil = Widget(base, headers={"Origin": "https://evil.example"})
            with pytest.raises(socketio.exceptions.ConnectionError):
                await evil.connect()
            for origin in (partner, base.rstrip("/")):
                welcome = Widget(base, headers={"Origin": origin})
                assert len(await welcome.open()) == 32
                await welcome.close()
            staff = socket_client()
            with pytest.raises(socketio.exceptions.ConnectionError):
                await staff.connect(base, namespaces=["/agent"], transports=["websocket"], headers={"Origin": partner})
        finally:
            await client.close()

    run(body())


def test_only_rasa_may_call_the_action_server(running_bot: BotProcesses) -> None:
    async def body() -> None:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running_bot.action_url}/health") as health:
                assert health.status == 200
            for headers in ({}, {"Authorization": "Bearer guessed"}):
                async with http.post(f"{running_bot.action_url}/webhook", json={"next_action": "action_request_human"},
                                     headers=headers) as refused:
                    assert refused.status == 401
            async with http.get(f"{running_bot.action_url}/actions") as listing:
                assert listing.status == 401

    run(body())


def test_only_the_gateway_may_talk_to_the_bot_behind_it(running_bot: BotProcesses, project_settings: Settings) -> None:
    """Another program on the machine cannot skip the gateway (its checks, limits, and the store) to reach the bot."""
    message = {"sender": "web:sneaky", "message": "put me through to a person please"}

    async def body() -> None:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer guessed"}):
                async with http.post(f"{running_bot.rasa_url}/webhooks/deskmate/webhook", json=message,
                                     headers=headers) as refused:
                    assert refused.status == 401
            async with http.post(f"{running_bot.rasa_url}/webhooks/rest/webhook", json=message) as stock:
                assert stock.status == 404, "Rasa's stock REST channel (no token) is not served"
        async with RasaClient(running_bot.rasa_url, project_settings.resolved_rasa_token()) as gateway:
            assert await gateway.send("web:allowed", "hello")

    run(body())


def test_over_the_rate_limits_visitors_are_told_to_slow_down_and_nothing_accepted_is_lost(
    gateway_settings: Settings, bot_store: Store
) -> None:
    settings = gateway_settings.copy(update={
        "rate_messages_per_conversation": "3/minute", "rate_messages_per_ip": "5/minute", "rate_new_conversations": "2/minute",
    })

    async def body() -> None:
        client = await start(settings)
        base = str(client.make_url("/"))
        try:
            answered = []
            for number in range(4):
                response = await api(client, settings, "burst", {"sender": "burst", "message": f"hello {number}"})
                answered.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1 and "wait" in (await response.json())["error"]
            assert answered == [200, 200, 200, 429]
            assert [m.text for m in conversation_messages(bot_store, "api:burst") if m.sender == "visitor"] == [
                "hello 0", "hello 1", "hello 2"]
            # Another conversation is not held back by the first one's burst.
            assert (await api(client, settings, "calm", {"sender": "calm", "message": "hi"})).status == 200

            first, second, third = Widget(base), Widget(base), Widget(base)
            await first.open()
            await second.open()
            await third.connect()
            await third.sio.emit("session_request", {"session_id": None})
            notice = await third.next("deskmate_notice")
            assert "Too many new conversations" in notice["text"] and notice["retry_after"] >= 1
            sent_with = {text: f"{number:032x}" for number, text in enumerate(("one", "two", "three", "four"))}
            for text, client_id in sent_with.items():
                await first.sio.emit("user_uttered", {"message": text, "session_id": first.session_id,
                                                      "client_id": client_id})
            said = await replies_until_quiet(first, 2.0)
            assert any("faster than I can read" in m["text"] for m in said)
            stored = [m.text for m in conversation_messages(bot_store, first.session_id) if m.sender == "visitor"]
            assert stored == ["one", "two", "three"]
            # "four", refused by its conversation's limit, did not use up the address's: 5 a minute, 3 used.
            for text in ("a", "b", "c"):
                await second.say(text)
            said = await replies_until_quiet(second, 2.0)
            assert any("faster than I can read" in m["text"] for m in said)
            assert [m.text for m in conversation_messages(bot_store, second.session_id) if m.sender == "visitor"] == [
                "a", "b"]
            # An id of the widget's own making that names no stored conversation is a new conversation too.
            forged = Widget(base)
            await forged.connect()
            await forged.sio.emit("session_request", {"session_id": uuid.uuid4().hex})
            notice = await forged.next("deskmate_notice")
            assert "Too many new conversations" in notice["text"]
            # A known conversation still comes back (a reload, a second tab).
            again = Widget(base)
            assert await again.open(first.session_id) == first.session_id
            # Over the limit, a message sent again that had arrived is only acknowledged: "send it again"
            # would make the visitor type a copy. One that had not arrived is refused, as before.
            for text in ("one", "four"):
                await again.sio.emit("user_uttered", {"message": text, "session_id": first.session_id,
                                                      "client_id": sent_with[text]})
                assert await again.next("deskmate_received") == {"client_id": sent_with[text]}
            said = await replies_until_quiet(again, 2.0)
            assert sum("faster than I can read" in m["text"] for m in said) == 1
            for widget in (first, second, third, forged, again):
                await widget.close()
        finally:
            await client.close()

    run(body())


def test_a_burst_from_a_widget_on_long_polling_arrives_whole(gateway_settings: Settings, bot_store: Store) -> None:
    async def body() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            # Long-polling, where websockets are blocked: what the widget queued goes in one POST.
            await widget.sio.connect(widget.base_url, transports=["polling"])
            await widget.sio.emit("session_request", {"session_id": None})
            conversation = await widget.next("session_confirm")
            for number in range(20):  # before the first POST went: one payload of 20 packets
                await widget.sio.emit("user_uttered", {"message": f"hello {number}", "session_id": conversation})
            await until(lambda: len([m for m in conversation_messages(bot_store, conversation)
                                     if m.sender == "visitor"]) == 20, "all 20 messages stored", timeout=60)
            stored = [m.text for m in conversation_messages(bot_store, conversation) if m.sender == "visitor"]
            assert stored == [f"hello {number}" for number in range(20)]
        finally:
            await widget.close()
            await client.close()

    run(body())


def test_one_visitors_burst_of_a_hundred_messages_does_not_starve_another_visitor(
    gateway_settings: Settings, bot_store: Store
) -> None:
    # Both visitors share this test's address: the per-address limit is lifted to see the rest alone.
    settings = gateway_settings.copy(update={"rate_messages_per_ip": "1000/minute"})

    async def body() -> None:
        client = await start(settings)
        base = str(client.make_url("/"))
        flooder, neighbour = Widget(base), Widget(base)
        try:
            flood = await flooder.open()
            await neighbour.open()
            for number in range(100):  # within a second, without waiting for answers
                await flooder.sio.emit("user_uttered", {"message": f"spam {number}", "session_id": flood})
            await neighbour.say("how do i turn on subtitles")
            answer = await neighbour.next("bot_uttered", timeout=60)
            assert answer["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
            # Answered while the flood was still being worked through in its own line: not starved.
            answered_then = [m for m in conversation_messages(bot_store, flood) if m.sender == "bot"]
            slow_down = answered = 0
            while True:
                try:
                    message = await flooder.next("bot_uttered", timeout=20)
                except asyncio.TimeoutError:
                    break
                if "faster than I can read" in message["text"]:
                    slow_down += 1
            accepted = [m.text for m in conversation_messages(bot_store, flood) if m.sender == "visitor"]
            answered = len({m.id for m in conversation_messages(bot_store, flood) if m.sender == "bot"})
            assert accepted == [f"spam {n}" for n in range(60)], "the first 60 are accepted, stored in order"
            assert slow_down == 40, "the other 40 are told to slow down, never silence"
            assert len(answered_then) < answered, "the neighbour did not wait for the whole flood"
        finally:
            await flooder.close()
            await neighbour.close()
            await client.close()

    run(body())


async def slow_rasa(target: str, delay: float) -> Any:
    """A stand-in for an overloaded Rasa server: every request reaches the real one ``delay`` s late."""
    from aiohttp import web

    async def forward(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        async with aiohttp.ClientSession() as http:
            async with http.request(request.method, f"{target}{request.path_qs}", data=await request.read(),
                                    headers={"Content-Type": request.content_type,
                                             "Authorization": request.headers.get("Authorization", "")}) as answer:
                return web.Response(body=await answer.read(), status=answer.status, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def test_a_busy_bot_is_not_an_outage_one_moment_then_the_answer_and_a_full_gateway_asks_to_retry(
    gateway_settings: Settings, bot_store: Store
) -> None:
    async def body() -> None:
        runner, url = await slow_rasa(gateway_settings.rasa_url, delay=3.0)
        settings = gateway_settings.copy(update={"rasa_url": url, "busy_notice_seconds": 1.0, "max_waiting_turns": 1})
        client = await start(settings)
        base = str(client.make_url("/"))
        patient, latecomer = Widget(base), Widget(base)
        try:
            session = await patient.open()
            await latecomer.open()
            await patient.say("how do i turn on subtitles")
            first = await patient.next("bot_uttered", timeout=10)
            assert first["metadata"]["deskmate"]["type"] == "busy" and "One moment" in first["text"]
            # The gateway holds as many messages as it may: a newcomer is asked to send again, nothing is stored.
            await latecomer.say("where can i find my invoices")
            refused = await latecomer.next("bot_uttered", timeout=10)
            assert "send your message again in a few seconds" in refused["text"]
            assert conversation_messages(bot_store, latecomer.session_id) == []
            answer = await patient.next("bot_uttered", timeout=30)
            assert answer["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
            assert tickets_for_conversation(bot_store, session) == [], "busy is not down: no ticket"
            busy = await api(client, settings, "busy-api", {"sender": "busy-api", "message": "hi"})
            assert busy.status == 200, "one at a time: the gateway takes the next message once the last is answered"
        finally:
            await patient.close()
            await latecomer.close()
            await client.close()
            await runner.cleanup()

    run(body())


def test_a_hung_rasa_server_holds_back_only_its_own_conversations(gateway_settings: Settings, bot_store: Store) -> None:
    from bot.rasa_servers import RasaServers

    async def body() -> None:
        runner, slow = await slow_rasa(gateway_settings.rasa_url, delay=6.0)
        urls = [slow, gateway_settings.rasa_url]
        settings = gateway_settings.copy(update={"rasa_url": ",".join(urls), "busy_notice_seconds": 1.0,
                                                 "max_waiting_turns": 1})
        ring = RasaServers(urls)
        client = await start(settings)
        base = str(client.make_url("/"))
        widgets: Dict[str, List[Widget]] = {slow: [], gateway_settings.rasa_url.rstrip("/"): []}
        try:
            while min(len(found) for found in widgets.values()) < 2:  # two conversations on each server
                widget = Widget(base)
                session = await widget.open()
                widgets[ring.ring(session)[0].base_url].append(widget)
            stuck, also_stuck = widgets[slow][:2]
            healthy = widgets[gateway_settings.rasa_url.rstrip("/")][0]
            await stuck.say("how do i turn on subtitles")
            assert (await stuck.next("bot_uttered", timeout=10))["metadata"]["deskmate"]["type"] == "busy"
            await also_stuck.say("where can i find my invoices")
            assert "send your message again" in (await also_stuck.next("bot_uttered", timeout=10))["text"]
            # The other server's conversations are not held back by the hung one's queue.
            await healthy.say("where can i find my invoices")
            answer = await healthy.next("bot_uttered", timeout=10)
            assert answer["metadata"]["deskmate"].get("article_id") == "invoices", answer
            assert (await stuck.next("bot_uttered", timeout=30))["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
        finally:
            for widget in [w for found in widgets.values() for w in found]:
                await widget.close()
            await client.close()
            await ring.close()
            await runner.cleanup()

    run(body())


def test_an_unreachable_redis_refuses_messages_plainly_and_accepts_nothing(gateway_settings: Settings, bot_store: Store) -> None:
    settings = gateway_settings.copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})

    async def body() -> None:
        client = await start(settings)
        widget = Widget(str(client.make_url("/")))
        try:
            response = await api(client, settings, "no-redis", {"sender": "no-redis", "message": "how do i cancel"})
            assert response.status == 503 and "error" in await response.json()
            session = await widget.open()
            await widget.say("how do i cancel")
            told = await widget.next("bot_uttered", timeout=15)
            assert "send it again" in told["text"]
            assert conversation_messages(bot_store, session) == [] and conversation_messages(bot_store, "api:no-redis") == []
        finally:
            await widget.close()
            await client.close()

    run(body())

"""The gateway: JSON API, the widget's socket.io channel, the agent inbox, and routing (real bot, real store)."""
from __future__ import annotations

import asyncio
from typing import Any, List, Tuple

import pytest
import socketio

from bot.settings import Settings
from bot.store.database import Store
from bot.store.feedback import feedback_for
from bot.store.messages import conversation_messages
from bot.store.tickets import record_visitor_message, tickets_for_conversation
from tests.conftest import AGENT_PASSWORD, BOT_CLOCK
from tests.conversation import Widget, new_sender, post_message, sign_in, start
from tests.socket_client import socket_client

def test_the_json_api_needs_its_token(gateway_settings: Settings) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        try:
            response = await client.post("/api/messages", json={"sender": "x", "message": "hi"})
            assert response.status == 401
        finally:
            await client.close()

    asyncio.run(run())


def test_the_json_api_relays_to_the_bot_and_stores_both_sides(gateway_settings: Settings, bot_store: Store) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        try:
            body = await post_message(client, gateway_settings, "shop-42", "you took my money twice this month")
            assert body["messages"][0]["metadata"]["deskmate"]["article_id"] == "double-charge"
            stored = conversation_messages(bot_store, body["conversation_id"])
            assert [m.sender for m in stored][:2] == ["visitor", "bot"]
            assert stored[0].text == "you took my money twice this month"
        finally:
            await client.close()

    asyncio.run(run())


def test_bot_down_the_visitor_is_told_the_message_kept_and_a_ticket_opened(bot_down_settings: Settings, bot_store: Store) -> None:
    async def run() -> None:
        client = await start(bot_down_settings)
        try:
            started = asyncio.get_running_loop().time()
            body = await post_message(client, bot_down_settings, "shop-7", "where is my refund")
            assert asyncio.get_running_loop().time() - started < 5
            [notice] = body["messages"]
            assert "isn't answering" in notice["text"] and notice["metadata"]["deskmate"]["type"] == "handoff"
            assert conversation_messages(bot_store, "api:shop-7")[0].text == "where is my refund"
            [ticket] = tickets_for_conversation(bot_store, "api:shop-7")
            assert ticket.reason == "bot_unavailable"
        finally:
            await client.close()

    asyncio.run(run())


def test_widget_session_gets_answers_and_its_history_after_a_reload(gateway_settings: Settings) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        base = str(client.make_url("/"))
        widget = Widget(base)
        try:
            session = await widget.open()
            assert len(session) == 32
            await widget.say("how do i turn on subtitles")
            answer = await widget.next("bot_uttered")
            assert answer["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
            await widget.close()
            reloaded = Widget(base)
            assert await reloaded.open(session) == session
            history = await reloaded.next("deskmate_history")
            assert [m["from"] for m in history["messages"]][:2] == ["visitor", "bot"]
            await reloaded.close()
        finally:
            await client.close()

    asyncio.run(run())


def test_a_message_sent_again_is_stored_once_and_one_its_stopped_gateway_never_answered_is_answered(
    gateway_settings: Settings, bot_store: Store
) -> None:
    """The widget sends a message again, with the same client_id, when its connection dropped before
    ``deskmate_received`` (its gateway may have stopped after storing it, or before)."""
    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            conversation = await widget.open()

            async def send(text: str, client_id: str) -> List[str]:
                """Send; the replies and receipts up to this message's deskmate_received, by name."""
                await widget.sio.emit("user_uttered", {"message": text, "session_id": conversation,
                                                       "client_id": client_id})
                events: List[str] = []
                while True:
                    event, data = await asyncio.wait_for(widget.received.get(), 30)
                    if event not in ("bot_uttered", "deskmate_received"):
                        continue  # e.g. the history sent on opening
                    events.append(event)
                    if event == "deskmate_received":
                        assert data == {"client_id": client_id.lower()}
                        return events

            def visitor_texts() -> List[str]:
                return [m.text for m in conversation_messages(bot_store, conversation) if m.sender == "visitor"]

            first = "a1" * 16
            assert set(await send("how do i turn on subtitles", first)) == {"bot_uttered", "deskmate_received"}
            # Sent again (the widget did not hear it was received): neither stored nor answered twice.
            assert await send("how do i turn on subtitles", first) == ["deskmate_received"]
            assert visitor_texts() == ["how do i turn on subtitles"]
            # A gateway stored this one and stopped before answering; the widget sends it again.
            stranded = "b2" * 16
            record_visitor_message(bot_store, conversation, "how do i cancel my subscription", BOT_CLOCK, stranded)
            assert set(await send("how do i cancel my subscription", stranded)) == {"bot_uttered", "deskmate_received"}
            stored = conversation_messages(bot_store, conversation)
            assert [m.text for m in stored if m.sender == "visitor"] == [
                "how do i turn on subtitles", "how do i cancel my subscription"]
            after = stored[[m.text for m in stored].index("how do i cancel my subscription") + 1:]
            assert [m.sender for m in after] and all(m.sender == "bot" for m in after)
            assert any(((m.payload or {}).get("metadata") or {}).get("deskmate", {}).get("article_id")
                       == "cancel-subscription" for m in after)
            # Stranded again, and the conversation went on before the widget sent it again: still answered.
            late = "c3" * 16
            record_visitor_message(bot_store, conversation, "how do i reset my password", BOT_CLOCK, late)
            assert set(await send("can i pay with paypal", "d4" * 16)) == {"bot_uttered", "deskmate_received"}
            assert set(await send("how do i reset my password", late)) == {"bot_uttered", "deskmate_received"}
            assert visitor_texts().count("how do i reset my password") == 1
            assert conversation_messages(bot_store, conversation)[-1].sender == "bot"
            # Upper-case hex is the same id.
            assert await send("how do i turn on subtitles", first.upper()) == ["deskmate_received"]
            # A message naming another conversation is refused, and said to be dealt with (not kept to send again).
            await widget.sio.emit("user_uttered", {"message": "hi", "session_id": "e5" * 16, "client_id": "f6" * 16})
            assert await widget.next("deskmate_received") == {"client_id": "f6" * 16}
            # Not the widget's id format: taken as a message without one (stored, answered, no receipt).
            await widget.sio.emit("user_uttered", {"message": "thanks", "session_id": conversation,
                                                   "client_id": "<script>"})
            assert await widget.next("bot_uttered")
            assert visitor_texts()[-1] == "thanks"
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_a_message_the_bot_saw_before_its_gateway_stopped_is_not_processed_twice(
    gateway_settings: Settings, bot_store: Store
) -> None:
    """A gateway stored a message, Rasa processed it, and the gateway stopped before storing the answer.
    Sent again by the widget, the message is answered from Rasa's tracker: the dialogue sees it once
    (else, e.g., one unclear message counts as two unsure turns and opens a ticket)."""
    import aiohttp

    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        rasa = gateway_settings.rasa_urls()[0]
        client_id = "7e" * 16
        try:
            conversation = await widget.open()
            record_visitor_message(bot_store, conversation, "how do i cancel my subscription", BOT_CLOCK, client_id)
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{rasa}/webhooks/deskmate/webhook", json={
                    "sender": conversation, "message": "how do i cancel my subscription", "message_id": client_id},
                        headers={"Authorization": f"Bearer {gateway_settings.resolved_rasa_token()}"}) as first:
                    assert first.status == 200
                    first_replies = await first.json()
                await widget.sio.emit("user_uttered", {"message": "how do i cancel my subscription",
                                                       "session_id": conversation, "client_id": client_id})
                answer = await widget.next("bot_uttered")
                await widget.next("deskmate_received")
                async with http.get(f"{rasa}/conversations/{conversation}/tracker",
                                    params={"token": gateway_settings.resolved_rasa_token()}) as tracker:
                    events = (await tracker.json())["events"]
            assert [e.get("message_id") for e in events if e["event"] == "user"] == [client_id]
            assert answer["text"] == first_replies[0]["text"]
            assert answer["metadata"]["deskmate"]["article_id"] == "cancel-subscription"
            stored = conversation_messages(bot_store, conversation)
            assert [m.sender for m in stored][0] == "visitor" and {m.sender for m in stored[1:]} == {"bot"}
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_a_second_tab_of_the_conversation_sees_the_visitors_question_before_its_answer(
    gateway_settings: Settings
) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        base = str(client.make_url("/"))
        writer, other = Widget(base), Widget(base)
        try:
            conversation = await writer.open()
            await other.open(conversation)
            await writer.say("how do i turn on subtitles")

            async def events_until_answer(widget: Widget) -> List[Tuple[str, Any]]:
                seen: List[Tuple[str, Any]] = []
                while not seen or seen[-1][0] != "bot_uttered":
                    event, data = await asyncio.wait_for(widget.received.get(), 30)
                    if event in ("bot_uttered", "deskmate_visitor_message"):
                        seen.append((event, data))
                return seen

            assert (await events_until_answer(other))[0] == (
                "deskmate_visitor_message", {"text": "how do i turn on subtitles"})
            # The tab that wrote it shows it already: it gets the answer alone.
            assert [event for event, _ in await events_until_answer(writer)] == ["bot_uttered"]
        finally:
            await writer.close()
            await other.close()
            await client.close()

    asyncio.run(run())


def test_a_visitor_reaches_only_their_own_conversation(gateway_settings: Settings, bot_store: Store) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        base = str(client.make_url("/"))
        alice, mallory = Widget(base), Widget(base)
        try:
            alice_session = await alice.open()
            await mallory.open()
            await mallory.say("this goes into alice's chat", session_id=alice_session)
            await asyncio.sleep(1)
            assert conversation_messages(bot_store, alice_session) == []
            # A made-up session id is never taken: the server issues its own.
            forged = Widget(base)
            assert await forged.open("1234") != "1234"
            await forged.close()
        finally:
            await alice.close()
            await mallory.close()
            await client.close()

    asyncio.run(run())


def test_a_signed_in_customers_conversation_is_shown_only_to_that_customer_or_their_e_mailed_link(
    gateway_settings: Settings,
) -> None:
    from datetime import timedelta

    from bot.identity import issue_token
    from bot.mail.addresses import chat_link_token

    token = issue_token(gateway_settings.resolved_identity_secret(), "premium@demo.example")
    other = issue_token(gateway_settings.resolved_identity_secret(), "standard@demo.example")

    async def reopen(base: str, request: dict) -> tuple:
        widget = Widget(base)
        await widget.connect()
        await widget.sio.emit("session_request", request)
        confirmed = await widget.next("session_confirm")
        first = await widget.next("deskmate_history" if confirmed == request["session_id"] else "bot_uttered")
        await widget.close()
        return confirmed, first

    async def run() -> None:
        client = await start(gateway_settings)
        base = str(client.make_url("/"))
        customer = Widget(base)
        try:
            conversation = await customer.open()
            await customer.sio.emit("user_uttered", {"message": "which plan am i on", "session_id": conversation,
                                                     "metadata": {"user_token": token}})
            await customer.next("bot_uttered", timeout=60)
            # The id alone (read off an old e-mail, say) opens a new conversation, with no history.
            for request in ({"session_id": conversation},
                            {"session_id": conversation, "metadata": {"user_token": other}}):
                confirmed, notice = await reopen(base, request)
                assert confirmed != conversation and "signed-in customer" in notice["text"]
            # The customer, signed in, gets it back; so does a link Deskmate e-mailed, while it is valid.
            link = chat_link_token(gateway_settings.resolved_mail_secret(), conversation, BOT_CLOCK + timedelta(days=1))
            for request in ({"session_id": conversation, "metadata": {"user_token": token}},
                            {"session_id": conversation, "resume": link}):
                confirmed, history = await reopen(base, request)
                assert confirmed == conversation
                assert "which plan am i on" in [m["text"] for m in history["messages"]]
        finally:
            await customer.close()
            await client.close()

    asyncio.run(run())


def test_only_signed_in_staff_reach_the_inbox(gateway_settings: Settings) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        try:
            assert (await client.get("/agent", allow_redirects=False)).status == 302
            assert (await client.get("/agent/api/queue")).status == 401
            assert (await client.post("/agent/api/tickets/1/claim")).status == 401
            page = await client.get("/agent/login")
            assert page.status == 200
            no_csrf = await client.post("/agent/login", data={"email": "maria@support.example", "password": AGENT_PASSWORD})
            assert no_csrf.status == 403
            with pytest.raises(AssertionError):
                await sign_in(client, password="wrong password!")
            csrf = await sign_in(client)
            assert (await client.get("/agent/api/queue")).status == 200
            assert (await client.post("/agent/api/tickets/1/claim")).status == 403  # no CSRF header
            out = await client.post("/agent/logout", data={"csrf_token": csrf}, allow_redirects=False)
            assert out.status == 302
            assert (await client.get("/agent/api/queue")).status == 401
        finally:
            await client.close()

    asyncio.run(run())


def test_agent_socket_refuses_a_visitor(gateway_settings: Settings) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        sio = socket_client()
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await sio.connect(str(client.make_url("/")), namespaces=["/agent"], transports=["websocket"])
        finally:
            await client.close()

    asyncio.run(run())


def test_live_handoff_agent_claims_replies_resolves_and_the_visitor_rates(gateway_settings: Settings, bot_store: Store) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            await widget.say("i want to talk to a human")
            handoff = (await widget.next("bot_uttered"))["metadata"]["deskmate"]
            assert handoff["type"] == "handoff"
            ticket = handoff["ticket"]

            csrf = await sign_in(client)
            queue = await (await client.get("/agent/api/queue")).json()
            assert ticket in [t["id"] for t in queue["tickets"]]
            headers = {"X-CSRF-Token": csrf}
            assert (await client.post(f"/agent/api/tickets/{ticket}/claim", headers=headers)).status == 200
            joined = await widget.next("bot_uttered")
            assert joined["metadata"]["deskmate"] == {"type": "agent_joined", "agent_name": "Maria", "ticket": ticket}

            # While the team has it, the visitor's words go to the agent, not the bot.
            await widget.say("my card was charged twice")
            await asyncio.sleep(1)
            detail = await (await client.get(f"/agent/api/tickets/{ticket}")).json()
            assert detail["messages"][-1]["text"] == "my card was charged twice"
            assert detail["handover"]["reason"] == "requested"

            reply = await client.post(f"/agent/api/tickets/{ticket}/reply", json={"text": "I'll refund it <b>now</b>"}, headers=headers)
            assert reply.status == 200
            said = await widget.next("bot_uttered")
            assert said["text"] == "I'll refund it <b>now</b>" and said["metadata"]["deskmate"]["agent_name"] == "Maria"

            assert (await client.post(f"/agent/api/tickets/{ticket}/resolve", headers=headers)).status == 200
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["type"] == "resolved"
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["type"] == "rating_request"
            await widget.sio.emit("deskmate_rating", {"session_id": session, "ticket": ticket, "stars": 5})
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["stars"] == 5
            assert [f.csat for f in feedback_for(bot_store, session)] == [5]

            # The bot is back.
            await widget.say("how do i turn on subtitles")
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_hand_back_returns_the_conversation_to_the_bot_and_articles_can_be_inserted(gateway_settings: Settings) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            await widget.open()
            await widget.say("put me through to a person please")
            ticket = (await widget.next("bot_uttered"))["metadata"]["deskmate"]["ticket"]
            csrf = await sign_in(client)
            articles = (await (await client.get("/agent/api/articles")).json())["articles"]
            assert len(articles) == 40 and {"id", "title", "body"} <= set(articles[0])
            headers = {"X-CSRF-Token": csrf}
            body = await (await client.post(f"/agent/api/tickets/{ticket}/handback", headers=headers)).json()
            assert body["ticket"]["status"] == "resolved"
            handed = await widget.next("bot_uttered")
            assert handed["metadata"]["deskmate"] == {"type": "resolved", "how": "handed_back", "ticket": ticket}
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["type"] == "rating_request"
            await widget.say("how do i turn on subtitles")
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
            again = await client.post(f"/agent/api/tickets/{ticket}/resolve", headers=headers)
            assert again.status == 409  # a closed ticket can't be closed twice
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_a_verified_token_travels_to_the_bot_and_a_forged_one_does_not(gateway_settings: Settings) -> None:
    from bot.identity import issue_token

    async def run() -> None:
        client = await start(gateway_settings)
        headers = {"Authorization": f"Bearer {gateway_settings.resolved_api_token()}"}
        try:
            for token, priority in (
                (issue_token(gateway_settings.resolved_identity_secret(), "premium@demo.example"), "high"),
                (issue_token("a-forged-secret-that-is-long-enough!!", "premium@demo.example"), "normal"),
            ):
                response = await client.post("/api/messages", headers=headers, json={
                    "sender": f"signed-{priority}", "message": "a real person please", "metadata": {"user_token": token},
                })
                handoff = [m["metadata"]["deskmate"] for m in (await response.json())["messages"] if m["metadata"]]
                assert handoff[0]["type"] == "handoff" and handoff[0]["priority"] == priority
        finally:
            await client.close()

    asyncio.run(run())


def test_rasas_tracker_keeps_no_token_that_opens_a_visitor_session(gateway_settings: Settings) -> None:
    import aiohttp
    import jwt

    from bot.identity import issue_token

    website_token = issue_token(gateway_settings.resolved_identity_secret(), "premium@demo.example")

    async def run() -> None:
        client = await start(gateway_settings)
        headers = {"Authorization": f"Bearer {gateway_settings.resolved_api_token()}"}
        sender = f"tracker-{new_sender()}"
        try:
            response = await client.post("/api/messages", headers=headers, json={
                "sender": sender, "message": "a real person please", "metadata": {"user_token": website_token}})
            assert response.status == 200
            # What Rasa's tracker store keeps of the message's metadata (read through Rasa's own API).
            rasa = gateway_settings.rasa_urls()[0]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{rasa}/conversations/api:{sender}/tracker",
                                    params={"token": gateway_settings.resolved_rasa_token()}) as answer:
                    events = (await answer.json())["events"]
            kept = [e["metadata"]["user_token"] for e in events if e["event"] == "user" and "user_token" in e.get("metadata", {})]
            assert kept and website_token not in kept
            claims = jwt.decode(kept[-1], options={"verify_signature": False})
            assert claims["aud"] == "deskmate-bot" and claims["sub"] == "premium@demo.example"
            assert claims["exp"] - claims["iat"] <= 15 * 60
            # Lifted from the tracker store, it names nobody to the gateway: a stranger stays anonymous.
            response = await client.post("/api/messages", headers=headers, json={
                "sender": f"thief-{new_sender()}", "message": "a real person please", "metadata": {"user_token": kept[-1]}})
            handoff = [m["metadata"]["deskmate"] for m in (await response.json())["messages"] if m["metadata"]]
            assert handoff[0]["type"] == "handoff" and handoff[0]["priority"] == "normal"
        finally:
            await client.close()

    asyncio.run(run())


def test_an_agent_reply_to_a_ticket_resolved_meanwhile_is_refused_before_the_visitor_sees_it(
    gateway_settings: Settings, bot_store: Store
) -> None:
    from bot.protocol import ClosedHow
    from bot.store.tickets import close_ticket

    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            await widget.say("let me talk to a human")
            ticket = (await widget.next("bot_uttered"))["metadata"]["deskmate"]["ticket"]
            headers = {"X-CSRF-Token": await sign_in(client)}
            # Another gateway process (or a colleague) resolves it between the agent's page load and the reply.
            close_ticket(bot_store, ticket, "agent:someone@support.example", BOT_CLOCK, ClosedHow.RESOLVED)
            stored_before = len(conversation_messages(bot_store, session))
            reply = await client.post(f"/agent/api/tickets/{ticket}/reply", json={"text": "on it!"}, headers=headers)
            assert reply.status == 409 and "resolved" in (await reply.json())["error"]
            with pytest.raises(asyncio.TimeoutError):
                await widget.next("bot_uttered", timeout=1.5)
            assert len(conversation_messages(bot_store, session)) == stored_before
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_the_visitor_never_receives_staff_e_mails_or_the_models_guesses(gateway_settings: Settings) -> None:
    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            await widget.say("problem with money and the tv thing")
            suggestions = await widget.next("bot_uttered")
            assert suggestions["metadata"]["deskmate"]["type"] in ("suggestions", "rephrase")
            await widget.say("i want a person")
            ticket = (await widget.next("bot_uttered"))["metadata"]["deskmate"]["ticket"]
            headers = {"X-CSRF-Token": await sign_in(client)}
            assert (await client.post(f"/agent/api/tickets/{ticket}/reply", json={"text": "Hello!"}, headers=headers)).status == 200
            # The agent sees the guesses the bot kept on its reply ...
            detail = await (await client.get(f"/agent/api/tickets/{ticket}")).json()
            assert detail["handover"]["failed_messages"][0]["text"] == "problem with money and the tv thing"
            assert detail["handover"]["failed_messages"][0]["articles"]
            # ... the visitor, live and after a reload, sees neither them nor the agent's e-mail.
            live = [suggestions] + [await widget.next("bot_uttered") for _ in range(2)]  # joined, reply
            reloaded = Widget(str(client.make_url("/")))
            await reloaded.open(session)
            history = (await reloaded.next("deskmate_history"))["messages"]
            await reloaded.close()
            seen = repr(live) + repr(history)
            assert "maria@support.example" not in seen and "guesses" not in seen and "confidence" not in seen
            assert "author" not in history[-1]
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_a_bot_that_hangs_is_given_up_on_after_the_timeout_and_a_person_follows_up(
    gateway_settings: Settings, bot_store: Store
) -> None:
    async def run() -> None:
        # A "Rasa" that accepts the connection and never answers.
        hung = await asyncio.start_server(lambda reader, writer: asyncio.sleep(3600), "127.0.0.1", 0)
        port = hung.sockets[0].getsockname()[1]
        settings = gateway_settings.copy(update={"rasa_url": f"http://127.0.0.1:{port}", "bot_timeout_seconds": 2.0})
        client = await start(settings)
        try:
            started = asyncio.get_running_loop().time()
            body = await post_message(client, settings, "hung-1", "how do I cancel")
            assert asyncio.get_running_loop().time() - started < 10
            [notice] = body["messages"]
            assert "isn't answering" in notice["text"] and notice["metadata"]["deskmate"]["type"] == "handoff"
            assert [t.reason for t in tickets_for_conversation(bot_store, "api:hung-1")] == ["bot_unavailable"]
        finally:
            await client.close()
            hung.close()

    asyncio.run(run())


def test_an_api_channel_fetches_the_agents_reply_and_the_terminal_chat_shows_it(gateway_settings: Settings) -> None:
    import sys

    from bot.settings import PROJECT_ROOT

    async def run() -> None:
        client = await start(gateway_settings)
        headers = {"Authorization": f"Bearer {gateway_settings.resolved_api_token()}"}
        try:
            body = await post_message(client, gateway_settings, "channel-7", "i want to talk to a human")
            ticket = next(m["metadata"]["deskmate"]["ticket"] for m in body["messages"] if "ticket" in m["metadata"].get("deskmate", {}))
            seen = await (await client.get("/api/messages", params={"sender": "channel-7"}, headers=headers)).json()
            last = seen["messages"][-1]["id"]
            csrf = await sign_in(client)
            await client.post(f"/agent/api/tickets/{ticket}/reply", json={"text": "Hello from Maria"}, headers={"X-CSRF-Token": csrf})
            new = await (await client.get("/api/messages", params={"sender": "channel-7", "after": str(last)}, headers=headers)).json()
            assert [m["text"] for m in new["messages"]] == ["Maria joined the conversation.", "Hello from Maria"]
            assert all("author" not in m for m in new["messages"])
            refused = await client.get("/api/messages", params={"sender": "channel-7", "after": "x"}, headers=headers)
            assert refused.status == 400 and "error" in await refused.json()
            assert (await client.get("/api/messages", params={"sender": "channel-7"})).status == 401

            # The terminal chat, through the same API, shows an answer and a pressed button's answer.
            chat = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "chat", "--url", str(client.make_url("")).rstrip("/"),
                cwd=PROJECT_ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(chat.communicate(b"how do i turn on subtitles\n1\n/quit\n"), 120)
            assert chat.returncode == 0, err.decode()
            text = out.decode()
            assert "subtitles" in text.lower() and "[1] Yes" in text and "Glad that helped" in text
        finally:
            await client.close()

    asyncio.run(run())


def test_an_answer_that_sends_the_visitor_to_the_team_carries_talk_to_a_person(gateway_settings: Settings, bot_store: Store) -> None:
    """Articles marked ``problem: true`` in kb/ (a double charge...) end with the button; plain answers don't."""
    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            await widget.open()
            await widget.say("how do i turn on subtitles")
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
            helpful = await widget.next("bot_uttered")
            assert [b["title"] for b in helpful["quick_replies"]] == ["Yes", "No"]

            await widget.say("you took my money twice this month")
            assert (await widget.next("bot_uttered"))["metadata"]["deskmate"]["article_id"] == "double-charge"
            helpful = await widget.next("bot_uttered")
            person = helpful["quick_replies"][-1]
            assert [b["title"] for b in helpful["quick_replies"]] == ["Yes", "No", "Talk to a person"]

            await widget.say(person["payload"])
            handoff = (await widget.next("bot_uttered"))["metadata"]["deskmate"]
            assert handoff["type"] == "handoff"
            [ticket] = tickets_for_conversation(bot_store, str(widget.session_id))
            assert ticket.reason == "requested"
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_a_visitor_who_comes_back_learns_what_the_team_sent_while_they_were_away(gateway_settings: Settings) -> None:
    """The widget says what it has shown (deskmate_seen); the history of a later visit counts what came after."""
    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            await widget.say("i want to talk to a human")
            ticket = (await widget.next("bot_uttered"))["metadata"]["deskmate"]["ticket"]
            await widget.sio.emit("deskmate_seen", {"session_id": session})
            await asyncio.sleep(0.5)
            await widget.close()  # the visitor leaves

            csrf = await sign_in(client)
            headers = {"X-CSRF-Token": csrf}
            assert (await client.post(f"/agent/api/tickets/{ticket}/claim", headers=headers)).status == 200
            reply = await client.post(f"/agent/api/tickets/{ticket}/reply", json={"text": "Found it, refunded."}, headers=headers)
            assert reply.status == 200

            back = Widget(str(client.make_url("/")))
            await back.open(session)
            history = await back.next("deskmate_history")
            assert history["unread"] == {"count": 2, "team_replied": True}  # "Maria joined" and the reply
            await back.sio.emit("deskmate_seen", {"session_id": session})
            await asyncio.sleep(0.5)
            await back.close()

            again = Widget(str(client.make_url("/")))
            await again.open(session)
            assert (await again.next("deskmate_history"))["unread"] == {"count": 0, "team_replied": False}
            # A flood of deskmate_seen from one socket is ignored past a few a second: others are still answered.
            for _ in range(500):
                await again.sio.emit("deskmate_seen", {"session_id": session})
            other = Widget(str(client.make_url("/")))
            await other.open()
            await other.say("how do i turn on subtitles")
            assert (await other.next("bot_uttered"))["metadata"]["deskmate"]["article_id"] == "subtitles-audio"
            await other.close()
            # A socket can only mark its own conversation as read.
            await again.sio.emit("deskmate_seen", {"session_id": "0" * 32})
            assert "another conversation" in (await again.next("bot_uttered"))["text"]
            await again.close()
        finally:
            await client.close()

    asyncio.run(run())


def test_a_new_conversation_opens_with_the_leads_greeting_and_starters_the_bot_can_answer(gateway_settings: Settings) -> None:
    """kb/welcome.yml's starters each get an article (a lead's starter that the bot can't answer is a dead end)."""
    from bot.kb.welcome import WELCOME_FILE, load_welcome

    welcome = load_welcome(gateway_settings.kb_dir / WELCOME_FILE)
    assert welcome.starters

    async def run() -> None:
        client = await start(gateway_settings)
        widget = Widget(str(client.make_url("/")))
        widget.sio.on("deskmate_welcome", widget._recorder("deskmate_welcome"))
        try:
            await widget.open()
            assert await widget.next("deskmate_welcome") == welcome.as_json()
            for starter in welcome.starters:
                await widget.say(starter)
                kinds = []
                while not kinds or kinds[-1] in ("busy", "article"):  # "one moment": the answer follows
                    reply = await widget.next("bot_uttered")
                    kinds.append(((reply.get("metadata") or {}).get("deskmate") or {}).get("type"))
                # The article, then "Was this helpful?"
                assert [kind for kind in kinds if kind != "busy"] == ["article", None], (starter, kinds)
            again = Widget(str(client.make_url("/")))
            again.sio.on("deskmate_welcome", again._recorder("deskmate_welcome"))
            await again.open(widget.session_id)
            await again.next("deskmate_history")  # an ongoing conversation gets its history, not the welcome
            assert all(event != "deskmate_welcome" for event, _ in list(again.received._queue))  # type: ignore[attr-defined]
            await again.close()
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())

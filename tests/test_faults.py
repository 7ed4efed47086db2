"""Faults on the real stack: a Rasa server, an action server, the database or a gateway process goes away.

A private stack (its own Rasa server, action server and gateway processes,
its store on PostgreSQL behind a TCP proxy the test can cut) so that killing
things disturbs no other test. Expected every time: every accepted message
is stored, the visitor is told plainly what happens, a ticket exists only
when a person must follow up, and the conversation goes back to the bot by
itself once the bot answers again, unless an agent has claimed it.
"""
from __future__ import annotations

import asyncio
import os
import selectors
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from bot.launcher import BotProcesses
from bot.settings import Settings
from bot.store.database import Store, migrate
from bot.store.messages import conversation_messages
from bot.store.seed import seed_demo_customers
from bot.store.tickets import assign_ticket, get_ticket, tickets_for_conversation
from tests.conftest import BOT_CLOCK, POSTGRES_URL, free_port, postgres_schema
from tests.conversation import Widget


# How long the bot may fail before a ticket opens (the default is 30 s; shorter here to keep the test short).
OUTAGE_SECONDS = 3


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 to ``target``; ``cut()`` drops every connection and refuses new ones until ``mend()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._up = threading.Event()
        self._stop = threading.Event()
        self._pairs: List[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: Optional[socket.socket] = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.mend()
        self._thread.start()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._up.is_set() or self._listener is None:
                time.sleep(0.05)
                continue
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select(timeout=0.5):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            for end in (client, server):
                end.close()

    def cut(self) -> None:
        self._up.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for end in self._pairs:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
            self._pairs = []

    def mend(self) -> None:
        self._listen()
        self._up.set()

    def close(self) -> None:
        self._stop.set()
        self.cut()


def kill(bot: BotProcesses, name: str) -> None:
    """SIGKILL one of the stack's processes (its whole process group), and wait for it."""
    process = bot.processes[name]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def stack(project_settings: Settings, trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """A private Rasa server, action server and gateway; the store on PostgreSQL behind a cuttable proxy."""
    from sqlalchemy.engine import make_url

    with postgres_schema("faults") as schema:
        yield from _stack(project_settings, trained_model, tmp_path_factory, schema, make_url(POSTGRES_URL))


def _stack(project_settings: Settings, trained_model: Path, tmp_path_factory: pytest.TempPathFactory, schema: str,
           target: Any) -> Iterator[Dict[str, Any]]:
    proxy = CuttableProxy(target.host or "127.0.0.1", target.port or 5432)
    url = f"{target.set(host='127.0.0.1', port=proxy.port).render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"
    migrate(url)
    store = Store(url)
    seed_demo_customers(store, project_settings.demo_customers_file, BOT_CLOCK)
    folder = tmp_path_factory.mktemp("faults")
    gateway_port = free_port()
    bot = BotProcesses(
        project_settings.copy(update={"tracker_database_url": f"sqlite:///{folder / 'tracker.db'}"}),
        rasa_port=free_port(), action_port=free_port(), log_dir=folder / "logs",
        extra_env={"DESKMATE_DATABASE_URL": url, "DESKMATE_FIXED_NOW": BOT_CLOCK.isoformat(),
                   "DESKMATE_OUTAGE_SECONDS": str(OUTAGE_SECONDS)},
    )
    try:
        bot.start(trained_model)
        bot.start_gateway("127.0.0.1", gateway_port)
        bot.wait_ready()
        yield {"bot": bot, "store": store, "proxy": proxy, "model": trained_model, "port": gateway_port}
    finally:
        bot.stop()
        store.dispose()
        proxy.close()


async def said(widget: Widget, quiet: float = 2.0) -> List[Dict[str, Any]]:
    """A turn's messages: the first within 30 s, the rest until ``quiet`` s pass without one."""
    messages = [await widget.next("bot_uttered", timeout=30)]
    while True:
        try:
            messages.append(await widget.next("bot_uttered", timeout=quiet))
        except asyncio.TimeoutError:
            return messages


def texts(messages: List[Dict[str, Any]]) -> str:
    return " ".join(m["text"] for m in messages)


def payloads(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [m["metadata"].get("deskmate", {}) for m in messages]


def test_rasa_killed_then_back_no_message_lost_and_unclaimed_conversations_return_to_the_bot(stack: Dict[str, Any]) -> None:
    bot, store = stack["bot"], stack["store"]

    async def body() -> None:
        alone, helped = Widget(bot.gateway_url), Widget(bot.gateway_url)
        try:
            for widget in (alone, helped):
                await widget.open()
                await widget.say("how do i turn on subtitles")
                # (On a loaded machine a "one moment" notice may come first.)
                assert "subtitles-audio" in [p.get("article_id") for p in payloads(await said(widget))]
            kill(bot, "rasa")
            for widget in (alone, helped):
                await widget.say("where can i find my invoices")
                told = await said(widget)
                assert "isn't answering" in texts(told) and "handoff" in [p.get("type") for p in payloads(told)]
            [alone_ticket] = tickets_for_conversation(store, alone.session_id)
            [helped_ticket] = tickets_for_conversation(store, helped.session_id)
            assert alone_ticket.reason == helped_ticket.reason == "bot_unavailable"
            assign_ticket(store, helped_ticket.id, "ann@support.example", BOT_CLOCK)  # an agent takes this one

            await alone.say("are you there?")  # added to the ticket while the bot is down
            assert "support team" in texts(await said(alone))
            await alone.close()  # the visitor leaves

            await asyncio.to_thread(bot.start_rasa, stack["model"])
            await asyncio.to_thread(bot.wait_ready)
            # Nobody writes: the gateway gives the unclaimed conversation back by itself and answers what it held.
            await wait_until(lambda: get_ticket(store, alone_ticket.id).status == "resolved", "the hand-back", 60)
            # The ticket is closed in the transaction that stores the held questions' answers: read at once.
            kept = conversation_messages(store, alone.session_id)
            after = kept[next(i for i, m in enumerate(kept) if "answering again" in m.text):]
            assert [m.text for m in kept if m.sender == "visitor"][-1] == "are you there?", "nobody wrote again"
            assert [m.text for m in after if m.text.startswith("You asked")] == [
                "You asked: “where can i find my invoices”", "You asked: “are you there?”"]
            assert "invoices" in [(m.payload or {}).get("metadata", {}).get("deskmate", {}).get("article_id")
                                  for m in after], "the question the outage held is answered"

            back = Widget(bot.gateway_url)
            await back.open(alone.session_id)
            await back.say("how do i reset my password")
            assert any(p.get("article_id") == "password-reset" for p in payloads(await said(back)))
            await back.close()
            await helped.say("how do i reset my password")
            await asyncio.sleep(2)
            assert get_ticket(store, helped_ticket.id).status == "assigned", "a claimed conversation stays with its agent"
            for widget, asked in ((alone, ["how do i turn on subtitles", "where can i find my invoices", "are you there?",
                                           "how do i reset my password"]),
                                  (helped, ["how do i turn on subtitles", "where can i find my invoices",
                                            "how do i reset my password"])):
                visitor = [m.text for m in conversation_messages(store, widget.session_id) if m.sender == "visitor"]
                assert visitor == asked
        finally:
            await alone.close()
            await helped.close()

    asyncio.run(body())


def test_the_action_server_killed_is_an_outage_told_plainly_and_the_bot_comes_back(stack: Dict[str, Any]) -> None:
    bot, store = stack["bot"], stack["store"]

    async def body() -> None:
        widget = Widget(bot.gateway_url)
        try:
            await widget.open()
            kill(bot, "actions")
            await widget.say("how do i turn on subtitles")
            first = await said(widget)
            # A first failure is not an outage yet: the message is kept and the visitor asked to send it again.
            assert "send it again" in texts(first) and tickets_for_conversation(store, widget.session_id) == []
            await asyncio.sleep(OUTAGE_SECONDS + 1)
            await widget.say("how do i turn on subtitles")
            told = await said(widget)
            assert "isn't answering" in texts(told), "failing for longer than the outage time: a person follows up"
            [ticket] = tickets_for_conversation(store, widget.session_id)
            assert ticket.reason == "bot_unavailable"
            # Small talk still works without the action server: no reason to hand back (and reopen on the next question).
            await widget.say("hello")
            await said(widget)
            assert get_ticket(store, ticket.id).status == "open"
            assert len(tickets_for_conversation(store, widget.session_id)) == 1
            bot.start_actions()
            await asyncio.to_thread(bot.wait_ready)
            await widget.say("how do i turn on subtitles")
            back = await said(widget)
            assert any(p.get("article_id") == "subtitles-audio" for p in payloads(back))
            assert get_ticket(store, ticket.id).status == "resolved"
        finally:
            await widget.close()

    asyncio.run(body())


def test_the_database_briefly_unreachable_loses_nothing_accepted_and_says_so(stack: Dict[str, Any]) -> None:
    bot, store, proxy = stack["bot"], stack["store"], stack["proxy"]

    async def body() -> None:
        widget = Widget(bot.gateway_url)
        try:
            await widget.open()
            await widget.say("how do i turn on subtitles")
            await said(widget)
            proxy.cut()
            await widget.say("where can i find my invoices")
            told = await said(widget)
            assert "couldn't receive your message" in texts(told) and "send it again" in texts(told)
            proxy.mend()
            await widget.say("where can i find my invoices")
            assert any(p.get("article_id") == "invoices" for p in payloads(await said(widget)))
            visitor = [m.text for m in conversation_messages(store, widget.session_id) if m.sender == "visitor"]
            assert visitor == ["how do i turn on subtitles", "where can i find my invoices"]
            assert tickets_for_conversation(store, widget.session_id) == [], "nobody needs to follow up"
        finally:
            proxy.mend() if proxy._listener is None else None
            await widget.close()

    asyncio.run(body())


def test_a_gateway_process_killed_loses_no_accepted_message_and_the_widget_picks_up_its_conversation(
    stack: Dict[str, Any]
) -> None:
    bot, store = stack["bot"], stack["store"]

    async def body() -> None:
        widget = Widget(bot.gateway_url)
        session = await widget.open()
        await widget.say("how do i turn on subtitles")
        await said(widget)
        kill(bot, "gateway")
        await widget.close()
        bot.start_gateway("127.0.0.1", stack["port"])
        await asyncio.to_thread(bot.wait_ready)
        back = Widget(bot.gateway_url)
        try:
            assert await back.open(session) == session
            history = (await back.next("deskmate_history"))["messages"]
            assert [m["from"] for m in history][:2] == ["visitor", "bot"]
            await back.say("where can i find my invoices")
            assert any(p.get("article_id") == "invoices" for p in payloads(await said(back)))
            assert [m.text for m in conversation_messages(store, session) if m.sender == "visitor"] == [
                "how do i turn on subtitles", "where can i find my invoices"]
        finally:
            await back.close()

    asyncio.run(body())


def test_a_message_a_killed_gateway_stored_but_never_answered_is_answered_when_a_gateway_starts(
    stack: Dict[str, Any]
) -> None:
    bot, store = stack["bot"], stack["store"]
    rasa_group = bot.processes["rasa"].pid

    async def body() -> None:
        widget = Widget(bot.gateway_url)
        session = await widget.open()
        os.killpg(rasa_group, signal.SIGSTOP)  # the bot is slow: the message waits for it ...
        try:
            await widget.say("how do i reset my password")
            await wait_until(lambda: [m.text for m in conversation_messages(store, session)] == ["how do i reset my password"],
                             "the message to be stored")
            kill(bot, "gateway")  # ... when its gateway dies
        finally:
            os.killpg(rasa_group, signal.SIGCONT)
        await widget.close()
        bot.start_gateway("127.0.0.1", stack["port"])
        await asyncio.to_thread(bot.wait_ready)

        def answered() -> bool:
            return any((m.payload or {}).get("metadata", {}).get("deskmate", {}).get("article_id") == "password-reset"
                       for m in conversation_messages(store, session) if m.sender == "bot")

        await wait_until(answered, "the new gateway to answer it, nobody asking again")
        back = Widget(bot.gateway_url)
        try:
            await back.open(session)
            history = (await back.next("deskmate_history"))["messages"]
            senders = [m["from"] for m in history]
            assert senders[0] == "visitor" and set(senders[1:]) == {"bot"}, senders
            assert [m.text for m in conversation_messages(store, session) if m.sender == "visitor"] == [
                "how do i reset my password"], "asked once"
            assert tickets_for_conversation(store, session) == []
        finally:
            await back.close()

    asyncio.run(body())


async def wait_until(condition: Any, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)

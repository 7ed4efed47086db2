"""Rasa's custom action calls reuse one kept-alive connection to the action server instead of opening one
per call (bot/rasa_plugins/action_connections.py), and still send and read what Rasa's own calls do."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Tuple

from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.rasa_plugins import action_connections
from bot.settings import PROJECT_ROOT
from tests.conftest import free_port

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))


async def action_server(seen: List[Tuple[Any, Dict[str, Any]]]) -> Tuple[web.AppRunner, str]:
    """A stand-in action server: records each call's client address and JSON, answers one slot event."""
    async def webhook(request: web.Request) -> web.Response:
        seen.append((request.transport.get_extra_info("peername") if request.transport else None,
                     {"headers": dict(request.headers), "body": await request.json()}))
        return web.json_response({"events": [{"event": "slot", "name": "awaiting_feedback", "value": False}],
                                  "responses": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/webhook"


def test_two_custom_actions_go_over_one_connection_with_rasas_headers_and_answers() -> None:
    action_connections.install()
    seen: List[Tuple[Any, Dict[str, Any]]] = []

    async def body() -> List[Any]:
        runner, url = await action_server(seen)
        endpoint = EndpointConfig(url, headers={"Authorization": "Bearer action-token"})
        tracker = DialogueStateTracker.from_events(
            "visitor-1", [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
                          UserUttered("hi", {"name": "greet", "confidence": 1.0})], DOMAIN.slots)
        nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
        try:
            results = []
            for name in ("action_answer_faq", "action_record_feedback"):
                results.append(await RemoteAction(name, endpoint).run(CollectingOutputChannel(), nlg, tracker, DOMAIN))
            return results
        finally:
            await action_connections.close_sessions()
            await runner.cleanup()

    results = asyncio.run(body())
    assert [r for r in results] == [[SlotSet("awaiting_feedback", False)]] * 2, "the answers are read as Rasa reads them"
    assert len(seen) == 2
    assert seen[0][0] == seen[1][0], "the second call reused the first one's connection (same client port)"
    assert all(call["headers"]["Authorization"] == "Bearer action-token" for _, call in seen)
    assert [call["body"]["next_action"] for _, call in seen] == ["action_answer_faq", "action_record_feedback"]


def test_a_kept_session_is_one_per_event_loop_and_settings_and_is_not_closed_by_leaving_it() -> None:
    action_connections.install()

    async def body() -> None:
        first, second = EndpointConfig("http://127.0.0.1:9/a"), EndpointConfig("http://127.0.0.1:9/b")
        other = EndpointConfig("http://127.0.0.1:9/a", headers={"Authorization": "Bearer x"})
        async with first.session() as kept:
            pass
        assert not kept.closed
        async with second.session() as again:
            assert again is kept, "same headers and auth: the same session (its connections are per host)"
        async with other.session() as different:
            assert different is not kept, "other headers: a session of their own"
        await action_connections.close_sessions()
        assert kept.closed and different.closed

    asyncio.run(body())
    asyncio.run(body())  # a new event loop gets new sessions, not the closed ones

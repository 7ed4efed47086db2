"""A Rasa input channel for the gateway: the REST channel, with every bot message kept whole.

Rasa's REST channel splits a text at blank lines into several messages and
sends a message's custom payload as one more message after them, so an
article answer with paragraphs arrives in pieces, its id on the last. The
gateway needs one message per bot utterance with its machine-readable
payload, as Rasa's socketio widgets get it. Named in credentials.yml (the
only channel there); it answers at /webhooks/deskmate/webhook on the Rasa
server (127.0.0.1 only), and only to a caller with the server's token
(``Authorization: Bearer``, the same token as Rasa's HTTP API): another
program on the machine cannot talk to the bot behind the gateway's back
(open tickets, skip the input checks and limits).

Unlike the REST channel it tells a failure from silence: when handling the
message fails (the action server is down, an action raised) it answers 503,
so the gateway knows the bot is in trouble; an empty list means the bot had
nothing to say. ``GET /webhooks/deskmate/`` is 200 only while the action
server answers too (503 otherwise): the gateway hands a conversation back
after an outage only to a whole bot.
"""
from __future__ import annotations

import logging
import secrets
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.rasa_client import answers
from bot.rasa_plugins import action_call, action_connections, action_validation
from bot.settings import Settings

logger = logging.getLogger(__name__)

# Loaded by the Rasa server (credentials.yml), so this is where the Rasa process gets its
# cheaper check of the action server's answers and its shorter calls to it, over kept connections.
action_validation.install()
action_call.install()
action_connections.install()


async def actions_answer(request: Request, timeout_seconds: float = 2.0) -> bool:
    """Whether the Rasa server's action server answers its health page (True when none is configured)."""
    endpoint = getattr(getattr(request.app.ctx, "agent", None), "action_endpoint", None)
    url = getattr(endpoint, "url", None)
    if not url:
        return True
    return await answers(url.rsplit("/", 1)[0] + "/health", timeout_seconds)


class WholeMessageCollector(CollectingOutputChannel):
    """Collects each bot message as one: text, buttons and custom payload together."""

    @classmethod
    def name(cls) -> Text:
        return "deskmate"

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        await self._persist_message(
            self._message(
                recipient_id,
                text=message.get("text"),
                image=message.get("image"),
                buttons=message.get("buttons") or message.get("quick_replies"),
                attachment=message.get("attachment"),
                custom=message.get("custom"),
            )
        )


class DeskmateInput(RestInput):
    """``POST /webhooks/deskmate/webhook`` with ``{sender, message, metadata}``; answers the whole messages."""

    @classmethod
    def name(cls) -> Text:
        return "deskmate"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("deskmate_webhook", __name__)

        @webhook.listener("after_server_stop")
        async def close_action_connections(*_: Any) -> None:
            await action_connections.close_sessions()
        # The launcher hands the Rasa server DESKMATE_RASA_TOKEN; else the one generated into var/.
        expected = f"Bearer {Settings().resolved_rasa_token()}"

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            # Whole only with its action server: without it Rasa still says "hello" but answers no question.
            if not await actions_answer(request):
                return response.json({"status": "the action server does not answer", "actions": False}, status=503)
            return response.json({"status": "ok", "actions": True})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
                return response.json({"error": "send the Rasa server's token: Authorization: Bearer TOKEN"}, status=401)
            collector = WholeMessageCollector()
            message = UserMessage(
                self._extract_message(request),
                collector,
                await self._extract_sender(request),
                input_channel=self.name(),
                metadata=self.get_metadata(request),
            )
            try:
                await on_new_message(message)
            except CancelledError:
                logger.error("deskmate channel: a message timed out")
                return response.json({"error": "the message timed out", "messages": collector.messages}, status=503)
            except Exception:  # noqa: BLE001 (told to the gateway: the bot failed, which is not "no answer")
                logger.exception("deskmate channel: a message failed")
                return response.json({"error": "the bot failed on this message", "messages": collector.messages},
                                     status=503)
            if not collector.messages and not await actions_answer(request):
                # Rasa logs a failed custom action and carries on with nothing to say: that is an outage.
                return response.json({"error": "the action server does not answer", "messages": []}, status=503)
            return response.json(collector.messages)

        return webhook

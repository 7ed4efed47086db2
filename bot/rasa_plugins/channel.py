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

A message may carry ``message_id`` (the id of its user event in the tracker)
and ``retry``: a gateway sending again a message whose first gateway stopped
mid-turn gets the replies the tracker already holds for it, and the
dialogue does not see the message twice.
"""
from __future__ import annotations

import logging
import secrets
from asyncio import CancelledError
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.shared.core.events import BotUttered, UserUttered
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


# The gateway's ids for messages (the widget's client_id): short, plain characters.
MESSAGE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


async def replies_already_given(request: Request, sender: Text, message_id: Text) -> Optional[List[Dict[Text, Any]]]:
    """The bot messages the tracker holds in answer to user message ``message_id`` (each as the dispatcher
    sent it: text, buttons, custom ...), or None when the tracker has no such message. Read under the
    conversation's lock, so a first attempt still running is finished first."""
    agent = request.app.ctx.agent
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.retrieve(sender)
    if tracker is None:
        return None
    found, said = False, []
    for event in tracker.events:
        if isinstance(event, UserUttered):
            if found:
                break
            found = event.message_id == message_id
        elif found and isinstance(event, BotUttered):
            said.append({"text": event.text, **(event.data or {})})
    return said if found else None


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
            sender = await self._extract_sender(request)
            message_id = request.json.get("message_id")
            message_id = message_id if isinstance(message_id, str) and MESSAGE_ID.match(message_id) else None
            if message_id is not None and request.json.get("retry") is True and isinstance(sender, str):
                # Sent again by a gateway (the one that sent it first stopped before storing the answer):
                # processed once, or the dialogue would count it twice (e.g. two unsure turns, a handoff).
                given = await replies_already_given(request, sender, message_id)
                if given is not None:
                    for reply in given:
                        await collector.send_response(sender, reply)
                    return response.json(collector.messages)
            message = UserMessage(
                self._extract_message(request),
                collector,
                sender,
                input_channel=self.name(),
                metadata=self.get_metadata(request),
                message_id=message_id,
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

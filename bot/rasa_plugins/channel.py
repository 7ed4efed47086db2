"""A Rasa input channel for the gateway: the REST channel, with every bot message kept whole.

Rasa's REST channel splits a text at blank lines into several messages and
sends a message's custom payload as one more message after them, so an
article answer with paragraphs arrives in pieces, its id on the last. The
gateway needs one message per bot utterance with its machine-readable
payload, as Rasa's socketio widgets get it. Named in credentials.yml; it
answers at /webhooks/deskmate/webhook on the Rasa server (127.0.0.1 only).
"""
from __future__ import annotations

import logging
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)


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

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
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
            except Exception:  # noqa: BLE001 (Rasa's REST channel does the same: answer what was said)
                logger.exception("deskmate channel: a message failed")
            return response.json(collector.messages)

        return webhook

"""The message contract: what travels between the action server, Rasa, the gateway, the store and the reports.

Every bot message that means something to a program carries a machine-readable
payload under one key, ``deskmate``: in Rasa's ``custom`` field on its way
from the action server, and under ``metadata`` in the widget's format (Rasa's
socketio ``bot_uttered`` shape) from the gateway on. The store keeps that
widget-format payload as JSON and copies its ``type`` and ``article_id`` into
the ``messages.kind`` / ``messages.article_id`` columns (migration 0005),
which the reports and the leads' inbox read.

The string values below are stored in the database and matched by the widget
and inbox scripts: never change one, only add.
"""
from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any, Dict, Final, FrozenSet, Iterable, List, Literal, Mapping, Optional, Tuple, TypedDict, Union, cast

PAYLOAD_KEY: Final = "deskmate"
# The retrieval intent whose responses are the knowledge base's articles: ``faq/<article id>``.
RETRIEVAL_INTENT = "faq"
# A widget conversation's id, its only key to the conversation: 128 random bits
# in hex, made by the gateway (bot/gateway/visitor_socket.py), never chosen by
# the visitor. Only such conversations have a chat an e-mail link can reopen.
WIDGET_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
# The id a widget gives each message it sends (``client_id``: 128 random bits in hex). A widget whose
# gateway went away before saying ``deskmate_received`` sends the message again with the same id;
# the store keeps one (bot/store/messages.py).
CLIENT_MESSAGE_ID = re.compile(r"^[0-9a-f]{32}$")
# The entity a button press names its article with: ``/faq{"article_id": "..."}``.
ARTICLE_ENTITY = "article_id"


class MessageKind(str, Enum):
    """The ``type`` of a ``deskmate`` payload (``messages.kind`` in the store)."""

    ARTICLE = "article"  # the answer to the question asked
    CONTACT = "contact"  # an article shown as the way to reach the team (a ticket could not open)
    SUGGESTIONS = "suggestions"  # not sure what was asked: the closest articles
    REPHRASE = "rephrase"  # nothing close: asked to say it another way
    RELATED = "related"  # after an answer that did not help: related articles
    HANDOFF = "handoff"  # the conversation was handed to the team (a ticket opened or found)
    NOTICE = "notice"  # the gateway tells the visitor something went wrong (bot down, no ticket)
    BUSY = "busy"  # the bot is busy: "one moment", the answer still comes
    WITH_TEAM = "with_team"  # a visitor message added to a waiting ticket was acknowledged
    DUE_SOON = "due_soon"  # the first-reply due time is about to pass and nobody has replied: said once
    AGENT_JOINED = "agent_joined"
    AGENT_MESSAGE = "agent_message"
    RESOLVED = "resolved"  # resolved or handed back (``how``)
    RATING_REQUEST = "rating_request"
    RATING_RECORDED = "rating_recorded"
    SUBSCRIPTION = "subscription"
    TICKETS = "tickets"
    EMAIL = "email"  # a visitor's e-mail reply, received into the conversation (bot/mail/inbound.py)
    CONTACT_SAVED = "contact_saved"  # the visitor left an e-mail address for the team's replies
    OUT_OF_SCOPE = "out_of_scope"  # refused: the question is not about the service
    OTHER_PRODUCT = "other_product"  # refused: the question is about another company's product (``product``)


# Bot replies to a visitor question: an answer or a fallback (the reports' denominator).
ANSWER_KINDS = (MessageKind.ARTICLE, MessageKind.SUGGESTIONS, MessageKind.REPHRASE)
# Replies meaning the bot could not answer the message before them.
FALLBACK_KINDS = (MessageKind.SUGGESTIONS, MessageKind.REPHRASE)
# Replies refusing the message before them as outside what the bot covers (the leads check them:
# a question about the service refused by mistake is otherwise invisible). Not answers: the reports'
# figures and the misses' other sources leave them out.
REFUSAL_KINDS = (MessageKind.OUT_OF_SCOPE, MessageKind.OTHER_PRODUCT)
# Messages the widget shows as notices of the conversation, not as someone's words.
SYSTEM_KINDS = (MessageKind.AGENT_JOINED, MessageKind.RESOLVED)


class TicketReason(str, Enum):
    """Why a conversation was handed to a person (``tickets.reason``)."""

    REQUESTED = "requested"
    LOW_CONFIDENCE = "low_confidence"
    PROBLEM = "premium_problem"
    NOT_HELPFUL = "not_helpful"
    BOT_UNAVAILABLE = "bot_unavailable"


class Sender(str, Enum):
    """Who wrote a stored message (``messages.sender``)."""

    VISITOR = "visitor"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class TicketStatus(str, Enum):
    """A ticket's state (``tickets.status``): open (waiting), assigned (an agent has it), resolved."""

    OPEN = "open"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


class Priority(str, Enum):
    """A ticket's priority, most urgent first (``tickets.priority``, from the support policy)."""

    HIGH = "high"
    NORMAL = "normal"


class InboxAction(str, Enum):
    """What a lead decided about a missed message (``inbox_decisions.action``)."""

    ARTICLE = "article"  # added as a phrasing of an article
    INTENT = "intent"  # added as an example of an intent
    NEW_ARTICLE = "new_article"  # a topic the knowledge base lacks
    DISMISS = "dismiss"


class ClosedHow(str, Enum):
    """How an agent closed a ticket (``resolved`` payload's ``how``)."""

    RESOLVED = "resolved"
    HANDED_BACK = "handed_back"


def values(members: Iterable[Enum]) -> Tuple[str, ...]:
    """The string values of an enum (or of some of its members), in order: for CHECK constraints and validation."""
    return tuple(member.value for member in members)


# ---- payloads ---------------------------------------------------------------


class IntentGuess(TypedDict):
    """One of the classifier's guesses for a message: an intent and its confidence (0..1)."""

    name: str
    confidence: float


class ArticleGuess(TypedDict):
    """One of the response selector's guesses for a message: an article and its confidence (0..1)."""

    article_id: str
    confidence: float


class Guesses(TypedDict):
    """What the model made of a message it could not answer: best intents and articles (at most three each)."""

    intents: List[IntentGuess]
    articles: List[ArticleGuess]


class ArticlePayload(TypedDict):
    """An article answered (``article``) or shown as the way to reach the team (``contact``)."""

    type: Literal["article", "contact"]
    article_id: str
    title: str


class _ChoicesRequired(TypedDict):
    type: Literal["suggestions", "rephrase", "related"]
    article_ids: List[str]


class ChoicesPayload(_ChoicesRequired, total=False):
    """Articles offered as buttons; ``guesses``: what the model made of the message (kept for the agent)."""

    guesses: Guesses


class _HandoffRequired(TypedDict):
    type: Literal["handoff"]
    ticket: int
    priority: str
    status: str
    sla_due_at: str  # ISO 8601, UTC
    created: bool  # False: the conversation already had this ticket


class HandoffPayload(_HandoffRequired, total=False):
    """The conversation was handed to the team; ``guesses`` when it replaced suggestions."""

    reply_time: str  # the first-reply target in words, e.g. "5 minutes"
    agents_working: bool  # the policy's hours: the plan's agents work now
    promise: str  # what the visitor was promised (bot.handoff.service.Promise), e.g. "no_agent"
    agents_online: int  # staff signed in to the inbox when the ticket opened
    queue_ahead: int  # tickets of the same or a higher priority waiting for a first reply before it
    guesses: Guesses
    # Whether the team's replies can reach the visitor by e-mail (else the widget offers to take an address).
    email_on_file: bool


class OutOfScopePayload(TypedDict):
    """The bot refused the question as not about the service (``utter_out_of_scope``)."""

    type: Literal["out_of_scope"]


class OtherProductPayload(TypedDict):
    """The bot refused the question as about another company's product: ``product`` is the name as
    kb/product_scope.yml lists it (never the visitor's text)."""

    type: Literal["other_product"]
    product: str


class NoticePayload(TypedDict):
    type: Literal["notice", "busy"]


class TicketNoticePayload(TypedDict):
    """Something happened to the visitor's ticket: their message was added to it, an agent joined or wrote."""

    type: Literal["with_team", "agent_joined", "agent_message", "contact_saved", "email"]
    ticket: int


class DueSoonPayload(TypedDict):
    """The ticket's first-reply due time (ISO 8601, UTC) is about to pass with nobody having replied;
    ``on_call``: whether on-call people are being alerted."""

    type: Literal["due_soon"]
    ticket: int
    sla_due_at: str
    on_call: bool


class AgentPayload(TypedDict):
    type: Literal["agent_joined", "agent_message"]
    agent_name: str  # the agent's display name: never an e-mail address
    ticket: int


class ResolvedPayload(TypedDict):
    type: Literal["resolved"]
    how: str  # a ClosedHow value
    ticket: int


class RatingRequestPayload(TypedDict):
    type: Literal["rating_request"]
    ticket: int


class RatingRecordedPayload(TypedDict):
    type: Literal["rating_recorded"]
    stars: int  # 1..5


class SubscriptionPayload(TypedDict):
    type: Literal["subscription"]
    plan: str
    status: str


class TicketSummary(TypedDict):
    id: int
    status: str


class TicketsPayload(TypedDict):
    type: Literal["tickets"]
    tickets: List[TicketSummary]


Payload = Union[
    ArticlePayload, ChoicesPayload, HandoffPayload, NoticePayload, TicketNoticePayload, DueSoonPayload, AgentPayload,
    ResolvedPayload, RatingRequestPayload, RatingRecordedPayload, SubscriptionPayload, TicketsPayload,
    OutOfScopePayload, OtherProductPayload,
]

# Keys of a payload the store keeps for staff but the visitor never receives.
INTERNAL_KEYS = ("guesses",)


# ---- messages ---------------------------------------------------------------


class Button(TypedDict):
    """A Rasa button: pressing it sends ``payload`` (``/intent{...}``) as the visitor's message."""

    title: str
    payload: str


class QuickReply(TypedDict):
    """A button in Rasa's socketio (widget) format."""

    content_type: str  # always "text"
    title: str
    payload: str


class WidgetMetadata(TypedDict, total=False):
    deskmate: Payload


class WidgetMessage(TypedDict):
    """A message as the widget receives it (``bot_uttered``) and as the store keeps its payload."""

    text: str
    quick_replies: List[QuickReply]
    metadata: WidgetMetadata


class RasaReply(TypedDict, total=False):
    """One bot message as Rasa's REST and ``deskmate`` channels answer it."""

    recipient_id: str
    text: str
    buttons: List[Button]
    image: str
    custom: Dict[str, Any]


class StoredPayload(TypedDict, total=False):
    """``messages.payload``: the widget message's machine-readable part."""

    quick_replies: List[QuickReply]
    metadata: WidgetMetadata


def widget_message(text: str, payload: Optional[Payload] = None, buttons: Optional[List[Button]] = None) -> WidgetMessage:
    """A message in the widget's format."""
    return {"text": text, "quick_replies": quick_replies(buttons), "metadata": _metadata(payload)}


def _metadata(payload: Optional[Mapping[str, Any]]) -> WidgetMetadata:
    metadata: WidgetMetadata = {}
    if payload:
        metadata[PAYLOAD_KEY] = cast(Payload, dict(payload))
    return metadata


def quick_replies(buttons: Optional[List[Button]]) -> List[QuickReply]:
    """Rasa buttons as socketio quick replies."""
    return [
        {"content_type": "text", "title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in buttons or []
    ]


def payload_of(message: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``deskmate`` payload of a widget-format message or stored payload (empty when it has none)."""
    metadata = message.get("metadata")
    payload = metadata.get(PAYLOAD_KEY) if isinstance(metadata, Mapping) else None
    return dict(payload) if isinstance(payload, Mapping) else {}


def rasa_payload(reply: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``deskmate`` payload of a Rasa reply (its ``custom`` field; empty when it has none)."""
    custom = reply.get("custom")
    payload = custom.get(PAYLOAD_KEY) if isinstance(custom, Mapping) else None
    return dict(payload) if isinstance(payload, Mapping) else {}


def kind_of(message: Mapping[str, Any]) -> Optional[MessageKind]:
    """The kind of a widget-format message (None for plain text or an unknown type)."""
    try:
        return MessageKind(payload_of(message).get("type"))
    except ValueError:
        return None


def from_rasa(replies: List[Mapping[str, Any]]) -> List[WidgetMessage]:
    """The ``deskmate`` channel's replies (one per bot message) in the widget's format; empty ones dropped."""
    messages: List[WidgetMessage] = []
    for reply in replies:
        payload = rasa_payload(reply)
        if not (reply.get("text") or reply.get("buttons") or payload):
            continue
        messages.append({
            "text": str(reply.get("text") or ""),
            "quick_replies": quick_replies(reply.get("buttons")),
            "metadata": _metadata(payload),
        })
    return messages


def for_visitor(message: Mapping[str, Any]) -> WidgetMessage:
    """A widget-format message without what is kept for staff only (the model's guesses)."""
    payload = {key: value for key, value in payload_of(message).items() if key not in INTERNAL_KEYS}
    return {
        "text": str(message.get("text") or ""),
        "quick_replies": list(message.get("quick_replies") or []),
        "metadata": _metadata(payload),
    }


def intent_payload(intent: str, **entities: str) -> str:
    """A button payload that Rasa reads as ``intent`` with ``entities``, e.g. ``/faq{"article_id":"x"}``."""
    return f"/{intent}{json.dumps(entities, separators=(',', ':'))}" if entities else f"/{intent}"


def article_intent(article_id: str) -> str:
    """The retrieval intent key of an article, e.g. ``faq/double-charge``."""
    return f"{RETRIEVAL_INTENT}/{article_id}"


def trained_article_ids(domain: Mapping[str, Any]) -> Optional[FrozenSet[str]]:
    """The ids of the articles a model was trained on, read from its domain (a dict as Rasa sends it).

    Each article is the response ``utter_faq/<id>`` in the model's domain
    (bot/rasa_plugins/kb_importer.py), and Rasa sends the serving model's
    domain with every action call. None when the domain lists no responses
    at all (a caller without a domain, or Rasa's selective domain): then
    nothing is known, and the caller decides.
    """
    responses = domain.get("responses") if isinstance(domain, Mapping) else None
    if not isinstance(responses, Mapping) or not responses:
        return None
    prefix = f"utter_{RETRIEVAL_INTENT}/"
    return frozenset(name[len(prefix):] for name in responses if isinstance(name, str) and name.startswith(prefix))


def article_id_from_intent_key(intent_response_key: str) -> Optional[str]:
    """``faq/double-charge`` -> ``double-charge``; anything else -> None."""
    prefix = f"{RETRIEVAL_INTENT}/"
    if intent_response_key and intent_response_key.startswith(prefix):
        return intent_response_key[len(prefix):]
    return None


def stored_payload(message: WidgetMessage) -> StoredPayload:
    """The part of a widget message the store keeps as ``messages.payload`` (its text is a column)."""
    return {"quick_replies": list(message["quick_replies"]), "metadata": message["metadata"]}


def widget_message_of(text: str, payload: Optional[Mapping[str, Any]]) -> WidgetMessage:
    """A stored message (its text and ``messages.payload``) back in the widget's format, as the visitor gets it."""
    stored = payload or {}
    return for_visitor({"text": text, "quick_replies": stored.get("quick_replies") or [], "metadata": stored.get("metadata") or {}})

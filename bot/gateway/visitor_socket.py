"""The widget's socket.io events: Rasa's socketio channel protocol, plus history, ratings and notices.

``session_request`` / ``session_confirm`` with session persistence (the
session id is the conversation id, kept by the widget across reloads),
``user_uttered`` in, ``bot_uttered`` out, as Rasa's own channel does, so
the stock rasa-webchat widget works unchanged. Deskmate's own widget also
gets ``deskmate_history`` after confirming a session (``{"messages": [...],
"unread": {"count", "team_replied"}}``: what came after the newest message
a widget showed), or on a conversation with no messages yet
``deskmate_welcome`` (``{"greeting", "starters"}``, kb/welcome.yml),
``deskmate_notice`` (``{"text", "retry_after"}``) when a new conversation
is refused for now, and may send ``deskmate_rating`` and
``deskmate_seen`` (``{"session_id"}``: it is open and visible, so all so far
is read) and ``deskmate_contact`` (``{"session_id", "email"}``: where to
e-mail the team's replies, answered by the event's ack). A ``session_request``
may carry ``resume`` (an e-mail link's signed token for that conversation).
A ``user_uttered`` may carry ``client_id`` (32 hex digits, the widget's id
for it): once the gateway has dealt with it, the socket gets
``deskmate_received`` (``{"client_id"}``); a widget that reconnects first
sends it again, and a message the conversation holds is not stored twice.
The conversation's other open widgets (another tab) get each stored visitor
message as ``deskmate_visitor_message`` (``{"text"}``).
A conversation belongs to the identity of its first message; a message with
another gets ``deskmate_restart`` (``{"text", "message"}``): the widget starts
a conversation of its own and sends the message there. Anything malformed gets a plain answer to
that socket alone; nothing a visitor sends is taken as a command.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Dict, Optional, Set

import socketio
from aiohttp import web

from bot.gateway.clients import client_address
from bot.gateway.hub import BOT_MESSAGE_EVENT
from bot.gateway.hub import AGENT_NAMESPACE, AGENTS_ROOM
from bot.gateway.keys import CLOCK, DESK, HANDOFF, LIMITS, ROUTER, SETTINGS, STORE, VISITORS, WELCOME
from bot.gateway.limits import RateLimitedError
from bot.gateway.router import NotYourConversationError, visitor_view
from bot.gateway.visitor_presence import VISITOR_PRESENCE_EVENT
from bot.handoff import texts
from bot.mail.addresses import ContactEmailError, checked_contact_email, conversation_of_link_token
from bot.protocol import CLIENT_MESSAGE_ID, WIDGET_SESSION_ID, widget_message
from bot.store.database import StoreError
from bot.store.owners import ANONYMOUS_OWNER, owner_of
from bot.store.tickets import open_ticket_for_conversation

logger = logging.getLogger(__name__)

# Anything but a session id the gateway made gets a fresh one.
SESSION_ID = WIDGET_SESSION_ID
CONVERSATION_KEY = "conversation_id"
ADDRESS_KEY = "address"
NOTICE_EVENT = "deskmate_notice"
SEEN_EVENT = "deskmate_seen"
SEEN_AT_KEY = "seen_at"
MIN_SEEN_INTERVAL_SECONDS = 0.4
WELCOME_EVENT = "deskmate_welcome"
CONTACT_EVENT = "deskmate_contact"
RESTART_EVENT = "deskmate_restart"
RECEIVED_EVENT = "deskmate_received"
LINK_REFUSED = (
    "That chat link has expired or isn't valid, so this is a new conversation. "
    "The team's replies are in your e-mail, and you can ask here again."
)
NOT_YOUR_CONVERSATION = "That conversation belongs to someone else, so I've started a new one for you."
SIGN_IN_TO_SEE = (
    "That conversation belongs to a signed-in customer, so this is a new one. "
    "Sign in on the website to see it again."
)


UNREADABLE_EVENT = "deskmate_unreadable"
MAX_MESSAGE_CHARS = 64 * 1024
TOO_BIG = "That message is far too long for me to receive. Please send your question in a few sentences."
NOT_YOURS = "That message names another conversation, so it was not sent."
NO_CONVERSATION = "The chat is still connecting. Please send your message again in a moment."
UNKNOWN = "I can't handle that. Please type your message in the chat."
UNREADABLE = "I couldn't read that message (it was damaged on the way). Please send it again."


class PacketJson:
    """The JSON module socket.io decodes packets with: a packet that is not JSON (or nested beyond what the
    parser follows) becomes the event ``deskmate_unreadable``, answered plainly, instead of an error in a log."""

    @staticmethod
    def dumps(value: Any, **options: Any) -> str:
        return json.dumps(value, **options)

    @staticmethod
    def loads(text: Any, **options: Any) -> Any:
        try:
            return json.loads(text, **options)
        except (ValueError, RecursionError):
            return [UNREADABLE_EVENT]


def _metadata(data: Dict[str, Any]) -> Dict[str, Any]:
    metadata = data.get("metadata") or data.get("customData") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return {}
    return metadata if isinstance(metadata, dict) else {}


def register_visitor_events(sio: socketio.AsyncServer, app: web.Application) -> None:
    """Attach the widget's events to the default namespace (services are read from ``app`` when an event comes)."""

    async def tell(sid: str, text: str) -> None:
        """A notice to this socket alone (not stored: it answers nothing the visitor said)."""
        await sio.emit(BOT_MESSAGE_EVENT, widget_message(text, {"type": "notice"}), room=sid)

    async def conversation_of(sid: str, data: Any) -> Optional[str]:
        """The conversation this socket confirmed, if the message names it; else None, and the socket is told."""
        try:
            session = await sio.get_session(sid)
        except KeyError:
            return None  # the socket closed while its event waited: nobody to answer
        conversation = session.get(CONVERSATION_KEY)
        claimed = data.get("session_id") if isinstance(data, dict) else None
        if conversation is None:
            await tell(sid, NO_CONVERSATION)
            return None
        if claimed is not None and claimed != conversation:
            logger.warning("gateway: a socket tried to write to a conversation it did not open")
            await tell(sid, NOT_YOURS)
            return None
        return str(conversation)

    async def presence_changed(conversation: str, online: Optional[bool]) -> None:
        """Tell every inbox that the visitor of ``conversation``'s open ticket came or went (none: nothing)."""
        try:
            ticket = await asyncio.to_thread(open_ticket_for_conversation, app[STORE], conversation)
        except StoreError:
            logger.error("gateway: a visitor's coming or going could not be told to the inbox (it re-reads it)")
            return
        if ticket is not None:
            await sio.emit(VISITOR_PRESENCE_EVENT, {"ticket": ticket.id, "online": online},
                           room=AGENTS_ROOM, namespace=AGENT_NAMESPACE)

    @sio.on("disconnect")
    async def disconnect(sid: str, reason: Any = None) -> None:
        # The visitor's last widget here closed: offline now (unless another gateway has one), not after
        # a timeout.
        conversation = await app[VISITORS].left(sid)
        if conversation is not None:
            online = await app[VISITORS].online(conversation)
            if online is not True:
                await presence_changed(conversation, online)

    @sio.on("connect")
    async def connect(sid: str, environ: Dict[str, Any], auth: Any = None) -> None:
        request = environ.get("aiohttp.request")
        address = client_address(request, app[SETTINGS].trust_forwarded_for) if request is not None else "unknown"
        await sio.save_session(sid, {ADDRESS_KEY: address})

    @sio.on("session_request")
    async def session_request(sid: str, data: Any = None, *_: Any) -> None:
        session = await sio.get_session(sid)
        requested = data.get("session_id") if isinstance(data, dict) else None
        resume = data.get("resume") if isinstance(data, dict) else None
        link_refused = linked = False
        if resume is not None:
            # Opened from an e-mail's link: only a link Deskmate signed, not yet expired, for this conversation.
            linked_to = conversation_of_link_token(app[SETTINGS].resolved_mail_secret(), resume, app[CLOCK]())
            if linked_to is None or linked_to != requested:
                requested, link_refused = None, True
            else:
                linked = True
        known = owner_refused = False
        if isinstance(requested, str) and SESSION_ID.match(requested):
            try:
                known = await app[ROUTER].known(requested)
                owner = await app[ROUTER].owner(requested) if known else None
            except StoreError:
                known, owner = True, None  # the store is away: the history read below says so
            if owner is not None and owner != ANONYMOUS_OWNER and not linked:
                # A signed-in customer's conversation shows its history only to that customer (or to a
                # link Deskmate e-mailed them): the id alone, e.g. read off an old e-mail's link, is not enough.
                presented = owner_of(app[HANDOFF].identity(_metadata(data) if isinstance(data, dict) else {}).customer_key)
                if presented != owner:
                    requested, known, owner_refused = None, False, True
        if not known:
            # A new conversation, also under an id of the widget's own making that names nothing stored
            # (else choosing ids would get around the limit).
            try:
                app[LIMITS].new_conversation(str(session.get(ADDRESS_KEY, "unknown")))
            except RateLimitedError as refused:
                await sio.emit(NOTICE_EVENT, {"text": str(refused), "retry_after": refused.retry_after}, room=sid)
                return
        if isinstance(requested, str) and SESSION_ID.match(requested):
            conversation = requested
        else:
            conversation = uuid.uuid4().hex
        await sio.save_session(sid, {**session, CONVERSATION_KEY: conversation})
        await sio.enter_room(sid, conversation)
        await sio.emit("session_confirm", conversation, room=sid)
        if await app[VISITORS].joined(sid, conversation):
            await presence_changed(conversation, True)
        if link_refused:
            await tell(sid, LINK_REFUSED)
        elif owner_refused:
            await tell(sid, SIGN_IN_TO_SEE)
        try:
            history = await app[ROUTER].history(conversation)
            unread = await app[ROUTER].unread(conversation) if history else None
        except StoreError:
            logger.error("gateway: the history of a conversation could not be read")
            return
        if not history:
            welcome = app[WELCOME].current()
            if welcome is not None:
                await sio.emit(WELCOME_EVENT, welcome.as_json(), room=sid)
        if history and unread is not None:
            await sio.emit("deskmate_history", {
                "messages": [visitor_view(m) for m in history],
                "unread": {"count": unread.count, "team_replied": unread.team_replied},
            }, room=sid)

    seen_later: Set[str] = set()  # sockets with a deskmate_seen waiting for its interval

    @sio.on(SEEN_EVENT)
    async def seen(sid: str, data: Any = None, *_: Any) -> None:
        """The widget is open and visible and shows the conversation: everything in it so far is read."""
        conversation = await conversation_of(sid, data)
        if conversation is None:
            return
        # The widget sends at most a couple a second; a burst from one socket (or a flood) is merged
        # into one mark per interval, so it costs the store one write, not one each.
        if sid in seen_later:
            return  # one mark is already due for this socket: it will cover this one
        try:
            session = await sio.get_session(sid)
        except KeyError:
            return  # the socket closed meanwhile
        wait = float(session.get(SEEN_AT_KEY, 0.0)) + MIN_SEEN_INTERVAL_SECONDS - time.monotonic()
        if wait > 0:
            # Too soon after the last: recorded once the interval is over, so the last mark of a burst
            # (e.g. sent as the visitor leaves) is never lost.
            seen_later.add(sid)
            await sio.sleep(wait)
            seen_later.discard(sid)
        try:
            await sio.save_session(sid, {**(await sio.get_session(sid)), SEEN_AT_KEY: time.monotonic()})
        except KeyError:
            pass  # the socket closed meanwhile; what it had shown still counts
        try:
            await app[ROUTER].mark_seen(conversation)
        except StoreError:
            logger.error("gateway: what a visitor has read could not be recorded")  # the badge may come back

    async def received(sid: str, client_id: Optional[str]) -> None:
        """Tell the widget a message it sent with ``client_id`` was dealt with (stored and answered, or
        refused with a reason it was told): it stops keeping it to send again."""
        if client_id is not None:
            await sio.emit(RECEIVED_EVENT, {"client_id": client_id}, room=sid)

    @sio.on("user_uttered")
    async def user_uttered(sid: str, data: Any = None, *_: Any) -> None:
        raw_id = data.get("client_id") if isinstance(data, dict) else None
        # Upper-case hex is the same id (a UUID's hex often is); anything else: a message without one.
        client_id = raw_id.lower() if isinstance(raw_id, str) and CLIENT_MESSAGE_ID.match(raw_id.lower()) else None
        conversation = await conversation_of(sid, data)
        if conversation is None:
            await received(sid, client_id)
            return
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            await tell(sid, texts.TEXT_ONLY)
            await received(sid, client_id)
            return
        if len(data["message"]) > MAX_MESSAGE_CHARS:
            await tell(sid, TOO_BIG)  # not accepted: the JSON API's 64 kB body limit, in characters
            await received(sid, client_id)
            return
        address = (await sio.get_session(sid)).get(ADDRESS_KEY)
        metadata = _metadata(data)
        # A conversation belongs to the identity of its first message (bot/store/owners.py).
        owner = owner_of(app[HANDOFF].identity(metadata).customer_key)
        restart = notice = None
        try:
            # The replies go to every open widget of the conversation, this one included.
            await app[ROUTER].visitor_message(conversation, data["message"], metadata, address=address, owner=owner,
                                              client_message_id=client_id, sender_sid=sid)
        except NotYourConversationError:
            # A link opened someone else's conversation, or the sign-in changed: nothing was stored; the
            # widget starts a conversation of its own and sends the message there.
            logger.warning("gateway: a message was refused: it came with another identity than its conversation's")
            restart = {"text": NOT_YOUR_CONVERSATION, "message": data["message"]}
        except RateLimitedError as refused:
            notice = str(refused)
            if client_id is not None and await _holds(conversation, client_id):
                notice = None  # sent again, and it had arrived: "send it again" would only make a copy
        except StoreError:
            logger.error("gateway: a visitor message could not be stored; the visitor was asked to send it again")
            notice = texts.NOT_RECEIVED
        # Before the restart, so that the widget does not send the message twice.
        await received(sid, client_id)
        if restart is not None:
            await sio.emit(RESTART_EVENT, restart, room=sid)
        elif notice is not None:
            await tell(sid, notice)

    async def _holds(conversation: str, client_id: str) -> bool:
        try:
            return await app[ROUTER].holds(conversation, client_id)
        except StoreError:
            return False

    @sio.on("deskmate_rating")
    async def rating(sid: str, data: Any = None, *_: Any) -> None:
        conversation = await conversation_of(sid, data)
        if conversation is None:
            return
        stars, ticket = (data.get("stars"), data.get("ticket")) if isinstance(data, dict) else (None, None)
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
            await tell(sid, "A rating is 1 to 5 stars.")
            return
        try:
            thanks = await app[DESK].rate(conversation, ticket, stars)
        except StoreError:
            await tell(sid, texts.NOT_RECEIVED)
            return
        if thanks is None:
            await tell(sid, texts.NOTHING_TO_RATE)
            return
        await app[ROUTER].hub.send_to_visitor(conversation, thanks)

    @sio.on(CONTACT_EVENT)
    async def contact(sid: str, data: Any = None, *_: Any) -> Dict[str, Any]:
        """The visitor leaves an e-mail address for the team's replies; the answer is the event's ack
        (``{"ok": true}`` or ``{"error": "..."}``), and every open widget gets the stored confirmation."""
        conversation = await conversation_of(sid, data)
        if conversation is None:
            return {"error": NO_CONVERSATION}
        settings = app[SETTINGS]
        own = (settings.mail_reply_domain, settings.mail_from.rpartition("@")[2])
        try:
            email = checked_contact_email(data.get("email") if isinstance(data, dict) else None, own)
            saved = await app[DESK].keep_contact(conversation, email)
        except ContactEmailError as refused:
            return {"error": str(refused)}
        except StoreError:
            logger.error("gateway: a visitor's e-mail address could not be stored")
            return {"error": texts.NOT_RECEIVED}
        if saved is None:
            return {"error": texts.NO_TICKET_FOR_CONTACT}
        await app[ROUTER].hub.send_to_visitor(conversation, saved)
        return {"ok": True, "email": email}  # to this socket only: the stored confirmation leaves it out

    @sio.on(UNREADABLE_EVENT)
    async def unreadable(sid: str, *_: Any) -> None:
        await tell(sid, UNREADABLE)

    @sio.on("*")
    async def anything_else(event: Any, sid: str, *_: Any) -> None:
        logger.info("gateway: a widget sent an event it has no use for: %r", str(event)[:40])
        await tell(sid, UNKNOWN)

"""Visitors' e-mail replies, received by an SMTP server the gateway runs (aiosmtpd), into their tickets.

Only ``reply+<ticket>-<tag>@<reply domain>`` recipients with a valid tag are
accepted (others: "550 no such recipient" at RCPT, before any content);
automatic replies (``Auto-Submitted`` other than "no") are accepted and
dropped. The new text (quoted history and signature stripped by
mail-parser-reply) is stored in the ticket's conversation as a visitor
message, a resolved ticket is opened again, and the agents' inboxes are told.
A store failure answers "451" so the sending server tries again later.
"""
from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any, Awaitable, Callable, Dict, List, Optional

from aiosmtpd.smtp import SMTP, Envelope, Session
from mailparser_reply import EmailReplyParser

from bot.clock import Clock
from bot.mail.addresses import ticket_of_reply_address
from bot.store.database import Store, StoreError
from bot.store.mail import InboundReply, take_inbound_reply

logger = logging.getLogger(__name__)

MAX_MAIL_BYTES = 1024 * 1024  # a reply with attachments beyond this is refused at DATA (552)
MAX_TEXT_CHARS = 4000  # what of a long reply is kept; the rest is cut with a note
# Languages whose reply headers ("On ... wrote:") and signatures are recognised.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "pt"]
CUT_NOTE = " […]"
NOTHING_NEW = "(an e-mail reply with no new text)"

Notify = Callable[[str, Dict[str, Any]], Awaitable[None]]


class _TextOfHtml(HTMLParser):
    """The visible text of an HTML body (for replies sent without a plain-text part)."""

    BREAKS = {"br", "p", "div", "li", "tr", "blockquote", "h1", "h2", "h3"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: List[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def body_text(message: EmailMessage) -> str:
    """The message's text: its plain-text part, else its HTML part's visible text ("" when neither)."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        parser = _TextOfHtml()
        parser.feed(content)
        content = html.unescape("".join(parser.parts))
    return content


def new_text(text: str) -> str:
    """What the visitor wrote in this reply: quoted history and signature removed, blank runs folded."""
    text = text.replace("\r\n", "\n")
    try:
        replies = EmailReplyParser(languages=REPLY_LANGUAGES).read(text=text).replies
    except Exception:  # noqa: BLE001 (a parser failure keeps the whole text rather than losing it)
        logger.warning("mail: a reply could not be split from its quoted history; keeping all of it")
        replies = []
    kept = (replies[0].body or replies[0].content) if replies else text
    kept = re.sub(r"\n{3,}", "\n\n", kept).strip()
    if len(kept) > MAX_TEXT_CHARS:
        kept = kept[: MAX_TEXT_CHARS - len(CUT_NOTE)].rstrip() + CUT_NOTE
    return kept


class ReplyHandler:
    """aiosmtpd's handler: checks recipients at RCPT, takes each accepted e-mail into its ticket."""

    def __init__(self, store: Store, secret: str, domain: str, clock: Clock, notify_agents: Optional[Notify] = None) -> None:
        self.store = store
        self._secret = secret
        self.domain = domain
        self._clock = clock
        self._notify = notify_agents

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: List[str]
    ) -> str:
        if ticket_of_reply_address(self._secret, self.domain, address) is None:
            logger.warning("mail: refused a recipient that is not a valid reply address")
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")
        message = BytesParser(policy=policy.default).parsebytes(data)
        assert isinstance(message, EmailMessage)
        automatic = str(message.get("Auto-Submitted", "no")).strip().lower()
        if automatic and automatic != "no":
            logger.info("mail: dropped an automatic reply (Auto-Submitted: %s)", automatic[:40])
            return "250 OK"
        message_id = str(message.get("Message-ID", "")).strip() or "sha256:" + hashlib.sha256(data).hexdigest()
        text = new_text(body_text(message)) or NOTHING_NEW
        tickets = {ticket_of_reply_address(self._secret, self.domain, rcpt) for rcpt in envelope.rcpt_tos}
        for ticket_id in sorted(t for t in tickets if t is not None):
            try:
                taken = await asyncio.to_thread(take_inbound_reply, self.store, message_id, ticket_id, text, self._clock())
            except StoreError:
                logger.error("mail: an e-mail reply could not be stored; the sending server will try again")
                return "451 4.3.0 Temporary failure, please try again later"
            if taken is not None:
                await self._taken(taken)
        return "250 OK"

    async def _taken(self, taken: InboundReply) -> None:
        logger.info("mail: an e-mail reply joined ticket %s%s", taken.ticket_id, " (reopened)" if taken.reopened else "")
        if self._notify is not None:
            await self._notify("ticket_message", {"ticket": taken.ticket_id})
            await self._notify("queue_changed", {"ticket": taken.ticket_id})


async def start_inbound_server(handler: ReplyHandler, host: str, port: int) -> asyncio.AbstractServer:
    """Listen for SMTP on ``host``:``port`` on the running loop (the gateway's). Raises OSError (port taken)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, data_size_limit=MAX_MAIL_BYTES, enable_SMTPUTF8=True, hostname=handler.domain),
        host=host, port=port,
    )

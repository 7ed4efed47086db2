"""Visitors' e-mail replies, received by an SMTP server the gateway runs (aiosmtpd), into their tickets.

Only ``reply+<ticket>-<tag>@<reply domain>`` recipients with a valid tag
(and ``postmaster@``, as RFC 5321 requires, read by nobody) are accepted;
others get "550 no such recipient" at RCPT, before any content. Automatic
mail (bounces, out-of-office replies, lists: RFC 3834's ``Auto-Submitted``,
a null sender, ``Precedence: bulk/junk/list/auto_reply``, Microsoft's and
others' auto-reply headers, ``List-Id``, delivery reports) is accepted and
dropped. The new text (cleaned as every visitor message is, quoted history
and signature stripped by mail-parser-reply, attachments named but not
kept) is stored in the ticket's conversation as a visitor message, a
resolved ticket is opened again, and the agents' inboxes are told. More
e-mails per ticket than the widget's per-conversation rate, or a store
failure, answer "451" so the sending server tries again later.
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
from bot.dialogue.input_check import clean_text
from bot.gateway.limits import RateLimitedError, RateLimits
from bot.mail.addresses import ticket_of_reply_address
from bot.store.database import Store, StoreError
from bot.store.mail import InboundReply, take_inbound_reply

logger = logging.getLogger(__name__)

MAX_MAIL_BYTES = 10 * 1024 * 1024  # a reply beyond this (with its attachments) is refused at DATA (552)
POSTMASTER = "postmaster"
AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id", "List-Unsubscribe")
MAX_TEXT_CHARS = 4000  # what of a long reply is kept; the rest is cut with a note
# Languages whose reply headers ("On ... wrote:") and signatures are recognised.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "pt"]
CUT_NOTE = " […]"
QUOTE_HEADER = re.compile(r"^(on|am|le|el|il|op)\b.*(wrote|schrieb|a écrit|escribió|ha scritto|schreef)\s*:?$", re.IGNORECASE)
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


def is_automatic(message: EmailMessage, mail_from: Optional[str]) -> bool:
    """Whether an e-mail was sent by a machine, not typed in answer (RFC 3834 and common practice)."""
    if mail_from is not None and mail_from.strip("<> ") == "":
        return True  # a bounce: the null reverse-path
    if str(message.get("Auto-Submitted", "no")).strip().lower() not in ("", "no"):
        return True
    if str(message.get("Precedence", "")).strip().lower() in AUTOMATIC_PRECEDENCE:
        return True
    if any(header in message for header in AUTO_REPLY_HEADERS):
        return True
    return message.get_content_type() == "multipart/report"


def attachment_note(message: EmailMessage) -> str:
    """A line naming the attachments of an e-mail, which the conversation does not keep ("" when none)."""
    names = [part.get_filename() or part.get_content_type() for part in message.iter_attachments()]
    if not names:
        return ""
    return f"[Attachments not kept: {', '.join(str(name)[:80] for name in names[:10])}]"


def new_text(text: str) -> str:
    """What the visitor wrote in this reply: cleaned as every visitor message, quoted history and
    signature removed, blank runs folded, cut at MAX_TEXT_CHARS with a mark."""
    text = clean_text(text)
    try:
        replies = EmailReplyParser(languages=REPLY_LANGUAGES).read(text=text).replies
    except Exception:  # noqa: BLE001 (a parser failure keeps the whole text rather than losing it)
        logger.warning("mail: a reply could not be split from its quoted history; keeping all of it")
        replies = []
    kept = (replies[0].body or replies[0].content) if replies else text
    lines = kept.split("\n")
    # A quote the parser left (a reply that is only "On ... wrote:" and the quote) is not new text.
    while lines and (lines[-1].lstrip().startswith(">") or not lines[-1].strip()):
        lines.pop()
    if lines and QUOTE_HEADER.match(lines[-1].strip()):
        lines.pop()
    kept = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if len(kept) > MAX_TEXT_CHARS:
        kept = kept[: MAX_TEXT_CHARS - len(CUT_NOTE)].rstrip() + CUT_NOTE
    return kept


class ReplyHandler:
    """aiosmtpd's handler: checks recipients at RCPT, takes each accepted e-mail into its ticket."""

    def __init__(
        self, store: Store, secret: str, domain: str, clock: Clock, notify_agents: Optional[Notify] = None,
        limits: Optional[RateLimits] = None,
    ) -> None:
        self.store = store
        self._secret = secret
        self.domain = domain
        self._clock = clock
        self._notify = notify_agents
        self._limits = limits

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: List[str]
    ) -> str:
        if address.strip("<>").lower() == f"{POSTMASTER}@{self.domain.lower()}":
            envelope.rcpt_tos.append(address)  # accepted (RFC 5321), then dropped at DATA
            return "250 OK"
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
        if is_automatic(message, envelope.mail_from):
            logger.info("mail: dropped an automatic e-mail (bounce, auto-reply or list)")
            return "250 OK"
        message_id = str(message.get("Message-ID", "")).strip() or "sha256:" + hashlib.sha256(data).hexdigest()
        text = "\n\n".join(part for part in (new_text(body_text(message)), attachment_note(message)) if part) or NOTHING_NEW
        tickets = {ticket_of_reply_address(self._secret, self.domain, rcpt) for rcpt in envelope.rcpt_tos}
        for ticket_id in sorted(t for t in tickets if t is not None):
            if self._limits is not None:
                try:
                    self._limits.message(f"mail:{ticket_id}", None)
                except RateLimitedError:
                    logger.warning("mail: too many e-mails for ticket %s; the sending server will try again", ticket_id)
                    return "451 4.7.1 Too many messages for this conversation, please try again later"
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

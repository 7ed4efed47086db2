"""The words and shape of the team's e-mails to a visitor (kb/email.yml), as ``EmailMessage``s.

Plain text and a simple HTML part; everything a person wrote is escaped in
the HTML (visitor and agent text is text). The subject carries the ticket
number; Reply-To is the ticket's signed reply address; the link reopens the
chat with its history (the widget reads ``#deskmate=<conversation>``).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from bot.store.messages import MessageRecord
from bot.yaml_files import read_yaml

EMAIL_FILE = "email.yml"
FIELDS = ("from_name", "subject", "intro", "link_text", "reply_hint", "signature")
MAX_FIELD_CHARS = 300


class EmailStyleError(ValueError):
    """kb/email.yml cannot be read or breaks a rule (the message names the file and the rule)."""


@dataclass(frozen=True)
class EmailStyle:
    """The business's wording (each 1-300 characters); ``subject`` holds ``{ticket}``."""

    from_name: str
    subject: str
    intro: str
    link_text: str
    reply_hint: str
    signature: str


def load_email_style(path: Path) -> EmailStyle:
    """Read and check kb/email.yml. Raises EmailStyleError."""
    raw = read_yaml(path, EmailStyleError, "the e-mail wording")
    if not isinstance(raw, dict):
        raise EmailStyleError(f"{path}: expected the keys {', '.join(FIELDS)}")
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise EmailStyleError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    values: Dict[str, str] = {}
    for name in FIELDS:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_FIELD_CHARS:
            raise EmailStyleError(f"{path}: '{name}' must be text of 1 to {MAX_FIELD_CHARS} characters")
        values[name] = value.strip()
    if "{ticket}" not in values["subject"]:
        raise EmailStyleError(f"{path}: 'subject' must contain {{ticket}} (the ticket number)")
    try:
        values["subject"].format(ticket="#1")
    except (KeyError, IndexError, ValueError) as error:
        raise EmailStyleError(f"{path}: 'subject' may use only {{ticket}}") from error
    return EmailStyle(**values)


@dataclass(frozen=True)
class Envelope:
    """Who an e-mail is from and to: ``sender`` (our address), ``to``, ``reply_to`` (the signed address)."""

    sender: str
    to: str
    reply_to: str
    message_domain: str
    # The Message-ID every e-mail of one ticket refers to, so mail programs show them as one thread.
    thread: Optional[str] = None


def _line(message: MessageRecord) -> str:
    deskmate: Dict[str, Any] = ((message.payload or {}).get("metadata") or {}).get("deskmate") or {}
    name = deskmate.get("agent_name")
    if deskmate.get("type") == "agent_message" and isinstance(name, str) and name:
        return f"{name}: {message.text}"
    return message.text


def conversation_email(
    style: EmailStyle, envelope: Envelope, ticket_number: str, messages: Sequence[MessageRecord],
    chat_link: Optional[str],
) -> EmailMessage:
    """The e-mail carrying ``messages`` (the team's, oldest first) of ticket ``ticket_number`` ("#42");
    ``chat_link`` (None: no chat to reopen, e.g. a JSON API conversation) reopens the chat."""
    lines = [_line(message) for message in messages]
    link = [f"{style.link_text}: {chat_link}"] if chat_link else []
    text = "\n\n".join([style.intro, *lines, *link, style.reply_hint, style.signature])
    paragraphs = "".join(f"<p>{html.escape(line).replace(chr(10), '<br>')}</p>" for line in lines)
    link_html = (f'<p><a href="{html.escape(chat_link, quote=True)}">{html.escape(style.link_text)}</a></p>'
                 if chat_link else "")
    body_html = (
        f"<p>{html.escape(style.intro)}</p>"
        f"<blockquote>{paragraphs}</blockquote>{link_html}"
        f"<p>{html.escape(style.reply_hint)}</p><p>{html.escape(style.signature)}</p>"
    )
    return prepared_email(envelope, style.subject.format(ticket=ticket_number), text, body_html, style.from_name)


def prepared_email(envelope: Envelope, subject: str, text: str, body_html: str | None, from_name: str) -> EmailMessage:
    """An e-mail of the given parts: plain text, and HTML as an alternative when given."""
    message = EmailMessage()
    message["From"] = formataddr((from_name, envelope.sender))
    message["To"] = envelope.to
    message["Reply-To"] = envelope.reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=envelope.message_domain)
    if envelope.thread:
        message["In-Reply-To"] = envelope.thread
        message["References"] = envelope.thread
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    if body_html is not None:
        message.add_alternative(f"<!doctype html><html><body>{body_html}</body></html>", subtype="html")
    return message

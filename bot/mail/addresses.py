"""Addresses of the mail channel: the signed reply address of a ticket, and the visitor's own address.

A reply address is ``reply+<ticket id>-<tag>@<reply domain>``: ``tag`` is the
first 130 bits of HMAC-SHA256(mail secret, "ticket:<id>"), in lower-case
base32 (26 characters), so it survives mail systems that change case, and
cannot be guessed or moved to another ticket without the secret.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime
from typing import Optional, Sequence

from email_validator import EmailNotValidError, validate_email

TAG_CHARS = 26
LINK_TOKEN = re.compile(rf"^(?P<conversation>[0-9a-f]{{32}})\.(?P<expires>[0-9]{{1,12}})\.(?P<tag>[a-z2-7]{{{TAG_CHARS}}})$")
REPLY_LOCAL = re.compile(rf"^reply\+(?P<ticket>[1-9][0-9]{{0,11}})-(?P<tag>[a-z2-7]{{{TAG_CHARS}}})$")


class ContactEmailError(ValueError):
    """The address a visitor gave cannot take e-mail; the message says why, in words for the visitor."""


def _signature(secret: str, message: str) -> str:
    """HMAC-SHA256 of ``message``, first 130 bits in lower-case base32 (``TAG_CHARS`` characters)."""
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:TAG_CHARS]


def _tag(secret: str, ticket_id: int) -> str:
    return _signature(secret, f"ticket:{ticket_id}")


def reply_address(secret: str, domain: str, ticket_id: int) -> str:
    """The address a ticket's e-mails are answered to, e.g. ``reply+42-abc…@support.example``."""
    return f"reply+{ticket_id}-{_tag(secret, ticket_id)}@{domain}"


def ticket_of_reply_address(secret: str, domain: str, address: str) -> Optional[int]:
    """The ticket id a reply address names, or None when it is not ours or its tag is forged."""
    local, _, host = address.strip().strip("<>").rpartition("@")
    if host.lower() != domain.lower():
        return None
    match = REPLY_LOCAL.match(local.lower())
    if match is None:
        return None
    ticket_id = int(match["ticket"])
    return ticket_id if hmac.compare_digest(match["tag"], _tag(secret, ticket_id)) else None


def checked_contact_email(text: object, own_domains: Sequence[str] = ()) -> str:
    """The normalised address a visitor typed (syntax checked, domain lower-cased, in ASCII; no DNS).

    An address at one of ``own_domains`` (the reply domain, our From address's domain) is refused:
    e-mail to ourselves would loop. Raises ContactEmailError with a visitor-facing reason.
    """
    if not isinstance(text, str) or not text.strip():
        raise ContactEmailError("Please type an e-mail address, like name@example.com.")
    if len(text) > 254:
        raise ContactEmailError("That e-mail address is too long.")
    try:
        checked = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ContactEmailError(f"That doesn't look like an e-mail address: {error}") from error
    if checked.ascii_email is None:
        # Not every mail server takes letters beyond ASCII before the @ (SMTPUTF8).
        raise ContactEmailError("Please give an address with plain letters (a-z, 0-9, . _ -) before the @.")
    address = str(checked.ascii_email)
    if address.rpartition("@")[2].lower() in {domain.lower() for domain in own_domains if domain}:
        raise ContactEmailError("That is one of our own addresses: please give yours.")
    return address


def _link_tag(secret: str, conversation_id: str, expires: int) -> str:
    return _signature(secret, f"chat:{conversation_id}:{expires}")


def chat_link_token(secret: str, conversation_id: str, expires: datetime) -> str:
    """``<conversation>.<expiry, Unix seconds>.<tag>``: what an e-mail's link hands the widget, so that
    only links Deskmate made, and only until ``expires``, open a conversation in another browser."""
    stamp = int(expires.timestamp())
    return f"{conversation_id}.{stamp}.{_link_tag(secret, conversation_id, stamp)}"


def conversation_of_link_token(secret: str, token: object, now: datetime) -> Optional[str]:
    """The conversation a chat-link token opens, or None when it is malformed, forged or expired."""
    if not isinstance(token, str):
        return None
    match = LINK_TOKEN.match(token)
    if match is None:
        return None
    stamp = int(match["expires"])
    if stamp < now.timestamp() or not hmac.compare_digest(match["tag"], _link_tag(secret, match["conversation"], stamp)):
        return None
    return match["conversation"]

"""The gateway's mail pump: sends the e-mails that are due, each by exactly one gateway, with retries.

Every ``mail_poll_seconds`` each gateway claims the due e-mails
(bot/store/mail.py). A conversation e-mail carries the team's messages that
no open widget has shown (the widget's ``deskmate_seen`` marks) and no
earlier e-mail carried; when there are none left (the visitor was back in
time) it is cancelled. A failed send waits ``mail_retry_seconds`` x 2^(try-1)
and is tried again, ``mail_max_attempts`` times in all (a permanent refusal,
an SMTP 5xx, at once); then it is marked failed and the agents' inbox is told (``ticket_message``), where the ticket
shows it.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Awaitable, Callable, Dict, Optional

from bot.clock import Clock
from bot.mail.addresses import chat_link_token, reply_address
from bot.mail.compose import EmailStyle, Envelope, conversation_email, prepared_email
from bot.mail.transport import MailDeliveryError, MailTransport
from bot.protocol import WIDGET_SESSION_ID
from bot.store.database import Store, StoreError
from bot.store.mail import (
    OutgoingMailRecord,
    claim_due_mail,
    mark_mail_cancelled,
    mark_mail_failed,
    mark_mail_retry,
    mark_mail_sent,
    unseen_team_messages,
)
from bot.store.tickets import get_ticket

logger = logging.getLogger(__name__)

# How long a claim holds before another gateway may take the e-mail (its sender stopped).
CLAIM_LEASE = timedelta(minutes=5)
SEEN_IN_CHAT = "shown in the chat before it was due"


@dataclass(frozen=True)
class MailPolicy:
    """From the settings: addresses, retries (``retry_seconds`` doubles each try) and the chat page."""

    sender: str
    reply_domain: str
    secret: str
    chat_page_url: str
    max_attempts: int
    retry_seconds: float
    link_days: int = 30

    def chat_link(self, conversation_id: str, now: datetime) -> Optional[str]:
        """The link that reopens the chat with its history for ``link_days`` (the widget hands the
        fragment's signed token to the gateway); None for a conversation no widget can open (e.g. the
        JSON API's ``api:...``)."""
        if not WIDGET_SESSION_ID.match(conversation_id):
            return None
        token = chat_link_token(self.secret, conversation_id, now + timedelta(days=self.link_days))
        return f"{self.chat_page_url.split('#', 1)[0]}#deskmate={token}"


Notify = Callable[[str, Dict[str, Any]], Awaitable[None]]


class MailPump:
    """Sends due e-mails from one gateway; ``run_once`` is one look, ``run`` looks every ``poll_seconds``."""

    def __init__(
        self, store: Store, transport: MailTransport, style: EmailStyle, policy: MailPolicy, clock: Clock,
        notify_agents: Optional[Notify] = None,
    ) -> None:
        self.store = store
        self.transport = transport
        self.style = style
        self.policy = policy
        self._clock = clock
        self._notify = notify_agents

    async def run(self, poll_seconds: float) -> None:
        """Look for due e-mails until cancelled; a store or relay problem is logged and tried again."""
        while True:
            try:
                await self.run_once()
            except StoreError:
                logger.error("mail: the store is unavailable; e-mails wait for the next look")
            except Exception:  # noqa: BLE001 (logged; the next look tries again)
                logger.exception("mail: sending due e-mails failed")
            await asyncio.sleep(poll_seconds)

    async def run_once(self) -> int:
        """Claim and send what is due now; returns how many e-mails were sent. Raises StoreError."""
        claimed = await asyncio.to_thread(claim_due_mail, self.store, self._clock(), CLAIM_LEASE)
        sent = 0
        for mail in claimed:
            sent += await self._send(mail)
        return sent

    async def _send(self, mail: OutgoingMailRecord) -> int:
        covers: Optional[int] = None
        ticket_id = mail.ticket_id
        if mail.kind == "conversation":
            built = await self._conversation(mail)
            if built is None:
                await asyncio.to_thread(mark_mail_cancelled, self.store, mail.id, SEEN_IN_CHAT)
                return 0
            message, covers = built
        else:
            envelope = Envelope(self.policy.sender, mail.to_address, self.policy.sender, self.policy.reply_domain)
            message = prepared_email(envelope, mail.subject or "", mail.body_text or "", mail.body_html, self.style.from_name)
        try:
            await self.transport.send(message)
        except MailDeliveryError as error:
            await self._failed(mail, str(error), error.permanent)
            return 0
        await asyncio.to_thread(mark_mail_sent, self.store, mail.id, self._clock(), covers)
        logger.info("mail: e-mail %s (ticket %s) handed to %s", mail.id, ticket_id, self.transport.description)
        return 1

    async def _conversation(self, mail: OutgoingMailRecord) -> Optional[tuple[EmailMessage, int]]:
        assert mail.ticket_id is not None, "a conversation e-mail belongs to a ticket"
        ticket = await asyncio.to_thread(get_ticket, self.store, mail.ticket_id)
        messages = await asyncio.to_thread(unseen_team_messages, self.store, mail)
        if ticket is None or not messages:
            return None
        # The address the ticket has now: a visitor who corrected it after the reply gets it there.
        envelope = Envelope(
            self.policy.sender, ticket.contact_email or mail.to_address,
            reply_address(self.policy.secret, self.policy.reply_domain, ticket.id), self.policy.reply_domain,
            thread=f"<ticket-{ticket.id}@{self.policy.reply_domain}>",
        )
        email = conversation_email(
            self.style, envelope, ticket.number, messages, self.policy.chat_link(ticket.conversation_id, self._clock())
        )
        return email, messages[-1].id

    async def _failed(self, mail: OutgoingMailRecord, error: str, permanent: bool = False) -> None:
        if permanent or mail.attempts >= self.policy.max_attempts:
            logger.error("mail: e-mail %s (ticket %s) failed for good after %d tries: %s",
                         mail.id, mail.ticket_id, mail.attempts, error)
            await asyncio.to_thread(mark_mail_failed, self.store, mail.id, error)
            if self._notify is not None and mail.ticket_id is not None:
                await self._notify("ticket_message", {"ticket": mail.ticket_id})
            return
        wait = self.policy.retry_seconds * 2 ** (mail.attempts - 1)
        logger.warning("mail: e-mail %s (ticket %s) not sent (try %d of %d), again in %.0f s: %s",
                       mail.id, mail.ticket_id, mail.attempts, self.policy.max_attempts, wait, error)
        await asyncio.to_thread(mark_mail_retry, self.store, mail.id, error, self._clock() + timedelta(seconds=wait))

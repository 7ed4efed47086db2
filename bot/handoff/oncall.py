"""Keeping promises: the on-call watch every gateway runs (bot/gateway/app.py, ``watch_promises``).

Each round (``OnCallWatch.round``) reads the tickets the support policy's ``on_call`` watches (their
priority listed, not resolved, no agent reply yet) and the agents signed in (bot/store/presence.py):

- a ticket whose first-reply due time is less than ``warn_before`` away (or past) gets a notice to the
  visitor, stored and sent live to their open widgets, once per ticket (``claim_due_notice``);
- a visitor promised an agent soon (promise "priority", "priority_busy" or "business") whose agents
  have all signed out is told so when the alert is raised (the same once-per-ticket notice);
- a ticket whose promise is in danger (nobody signed in while agents should be working for its plan,
  or the due time near or past) gets an alert for the current interval (``repeat_every`` since it
  opened): one row per ticket and interval in the store, whichever gateway notes it first;
- due alerts are taken under a lease (never by two gateways at once) and sent: a JSON POST to the
  webhook (aiohttp, the HTTP client the gateway already runs on) and e-mails to the on-call addresses
  (handed to the outbound mail): each once per alert, whatever the other's retries. A failure is tried
  again ``retry_after``, then twice as long each time, at most ``retries`` times; the retries live in
  the store, so another gateway finishes them if this one stops.

The clock is injected; nothing here sleeps: the gateway's loop calls ``round`` every few seconds.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable, List, Optional, Protocol, Sequence, Set

import aiohttp

from bot.clock import Clock
from bot.handoff import texts
from bot.handoff.policy import OnCall, SupportPolicy
from bot.protocol import DueSoonPayload, Sender, WidgetMessage, stored_payload, widget_message
from bot.store.database import Store
from bot.store.messages import handoff_promise
from bot.store.messages import NewMessage
from bot.store.oncall import (
    AlertRecord, PreparedMail, alert_failed, alert_posted, alert_sent, claim_due_alerts, note_alert, queue_alert_mail,
)
from bot.store.presence import agents_online
from bot.store.tickets import TicketRecord, claim_due_notice, unanswered_tickets

logger = logging.getLogger(__name__)

# Why an alert was raised (the webhook's ``reason``).
NO_AGENT_ONLINE = "no_agent_online"
DUE_SOON = "due_soon"
OVERDUE = "overdue"
WEBHOOK_TIMEOUT_SECONDS = 10.0
# How long a gateway holds an alert it is sending: longer than a webhook call can take.
LEASE = timedelta(seconds=60)


# Promises that counted on an agent signed in (bot.handoff.service.Promise values).
PROMISED_AN_AGENT = frozenset({"priority", "priority_busy", "business"})


class VisitorDelivery(Protocol):
    """Live delivery to a conversation's open widgets (the gateway's socket.io hub)."""

    async def send_to_visitor(self, conversation_id: str, message: WidgetMessage) -> None: ...


@dataclass(frozen=True)
class AlertMail:
    """An alert as an e-mail to the on-call addresses: plain text, the ticket number in the subject."""

    to: Sequence[str]
    subject: str
    text: str


# Queues an alert's e-mails with the outbound mail (bot/mail) for the gateway holding the alert: (alert id,
# gateway id, the e-mail, now) -> whether they were queued now (False: mailed already, or the lease was
# lost). Raises on failure (retried next round).
MailAlert = Callable[[int, str, AlertMail, datetime], Awaitable[bool]]


def outbound_mail(store: Store) -> MailAlert:
    """Alerts' e-mails through Deskmate's outbound mail (bot/mail: the SMTP relay, or var/outbox/ in the
    demo, with its own retries): one prepared e-mail per address, queued for the next gateway to send,
    in the same transaction that notes the alert mailed (``queue_alert_mail``), so never twice."""

    async def queue(alert_id: int, gateway_id: str, mail: AlertMail, now: datetime) -> bool:
        mails = [PreparedMail(address, mail.subject, mail.text) for address in mail.to]
        return await asyncio.to_thread(queue_alert_mail, store, alert_id, gateway_id, mails, now)

    return queue


@dataclass
class RoundResult:
    """What one round did: notices given, alerts noted (new intervals), deliveries sent and failed."""

    notices: int = 0
    noted: int = 0
    sent: int = 0
    failed: int = 0


def alert_reason(ticket: TicketRecord, policy: SupportPolicy, on_call: OnCall, online: int, now: datetime) -> Optional[str]:
    """Why ``ticket``'s promise is in danger at ``now`` with ``online`` agents signed in, or None.

    Nobody signed in counts only while agents should be working for the ticket's plan (the policy's
    hours): a business-hours ticket at night is not in danger until its due time nears.
    """
    if online == 0 and policy.is_open(ticket.plan, now):
        return NO_AGENT_ONLINE
    if now >= ticket.sla_due_at:
        return OVERDUE
    if now >= ticket.sla_due_at - on_call.warn_before:
        return DUE_SOON
    return None


def alert_slot(ticket: TicketRecord, on_call: OnCall, now: datetime) -> int:
    """The interval ``now`` falls in: whole ``repeat_every`` periods since the ticket opened (0 at first)."""
    return max(0, int((now - ticket.created_at) / on_call.repeat_every))


def webhook_body(alert: AlertRecord, agents: int) -> dict:
    """The JSON the webhook receives: ticket (number and "#N"), priority, plan, due time and opening
    (ISO 8601, UTC), reason (no_agent_online, due_soon or overdue), interval and agents signed in."""
    return {
        "ticket": alert.ticket_id,
        "number": f"#{alert.ticket_id}",
        "priority": alert.priority,
        "plan": alert.plan,
        "sla_due_at": alert.sla_due_at.isoformat(),
        "opened_at": alert.ticket_created_at.isoformat(),
        "reason": alert.reason,
        "interval": alert.slot,
        "agents_online": agents,
    }


def alert_mail(alert: AlertRecord, on_call: OnCall, policy: SupportPolicy) -> AlertMail:
    """The e-mail of an alert to the on-call addresses."""
    why = {
        NO_AGENT_ONLINE: "no agent is signed in to the inbox",
        DUE_SOON: "its first-reply due time is about to pass and nobody has replied",
        OVERDUE: "its first-reply due time has passed and nobody has replied",
    }.get(alert.reason, alert.reason)
    return AlertMail(
        to=on_call.emails,
        subject=f"[Deskmate] Ticket #{alert.ticket_id} ({alert.priority}) needs a person",
        text=(
            f"Ticket #{alert.ticket_id} ({alert.priority} priority, plan {alert.plan}) needs a person: {why}.\n"
            f"First reply due: {policy.describe_moment(alert.sla_due_at)}.\n"
            f"Opened: {policy.describe_moment(alert.ticket_created_at)}.\n\n"
            "Sign in to the agent inbox (/agent) to take it.\n"
        ),
    )


class OnCallWatch:
    """One gateway's watch over the promises made to visitors (see the module's docstring).

    ``gateway_id`` names this process in the store's leases; ``mail``: how an alert's e-mail is handed
    to the outbound mail (None: e-mail alerts are not sent, and a warning says so once).
    """

    def __init__(
        self, store: Store, policy: SupportPolicy, clock: Clock, delivery: VisitorDelivery, gateway_id: str,
        mail: Optional[MailAlert] = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self.delivery = delivery
        self.gateway_id = gateway_id
        self.mail = mail
        self.rounds = 0  # rounds completed (what tests wait for)
        self._session: Optional[aiohttp.ClientSession] = None
        self._warned_no_mail = False

    async def close(self) -> None:
        """Close the webhook's HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def round(self) -> RoundResult:
        """One look at every watched ticket, then send what is due. Raises StoreError (the caller logs
        it; the next round tries again)."""
        result = RoundResult()
        on_call = self.policy.on_call
        if on_call is None:
            self.rounds += 1
            return result
        now = self.clock()
        tickets = await asyncio.to_thread(unanswered_tickets, self.store, sorted(on_call.priorities))
        online = await asyncio.to_thread(agents_online, self.store, now) if tickets else 0
        paging: Set[int] = set()  # customers with an alerting ticket this round (tickets come earliest due first)
        for ticket in tickets:
            due_soon = now >= ticket.sla_due_at - on_call.warn_before
            if due_soon and ticket.due_notice_at is None and await self._due_notice(ticket, now):
                result.notices += 1
            reason = alert_reason(ticket, self.policy, on_call, online, now)
            if reason is None:
                continue
            if ticket.customer_id is not None:
                # One customer's tickets page one at a time, earliest due first: a customer (or a leaked
                # token) opening many conversations at once does not flood the on-call people.
                if ticket.customer_id in paging:
                    continue
                paging.add(ticket.customer_id)
            if await asyncio.to_thread(note_alert, self.store, ticket.id, alert_slot(ticket, on_call, now), reason, now):
                logger.warning("on-call: ticket #%s alerted (%s)", ticket.id, reason)
                result.noted += 1
                if (reason == NO_AGENT_ONLINE and ticket.due_notice_at is None and not due_soon
                        and await self._promised_an_agent(ticket) and await self._due_notice(ticket, now, left=True)):
                    result.notices += 1
        for alert in await asyncio.to_thread(claim_due_alerts, self.store, self.gateway_id, now, LEASE):
            if await self._send(alert, on_call, online, now):
                result.sent += 1
            else:
                result.failed += 1
        self.rounds += 1
        return result

    async def _promised_an_agent(self, ticket: TicketRecord) -> bool:
        """Whether the visitor was told an agent would come (a reply time counting on someone signed in)."""
        promise = await asyncio.to_thread(handoff_promise, self.store, ticket.conversation_id, ticket.id)
        return promise in PROMISED_AN_AGENT

    async def _due_notice(self, ticket: TicketRecord, now: datetime, left: bool = False) -> bool:
        """Tell the visitor, once per ticket, that the due time is about to pass (or, ``left``, that the
        agents they were promised have all gone); whether this call did."""
        on_call = self.policy.on_call
        alerted = on_call is not None and on_call.watches(ticket.priority)
        payload: DueSoonPayload = {
            "type": "due_soon", "ticket": ticket.id, "sla_due_at": ticket.sla_due_at.isoformat(), "on_call": alerted,
        }
        said = (texts.agents_left(ticket.number, alerted) if left
                else texts.due_soon(ticket.number, self.policy.describe_moment(ticket.sla_due_at), alerted))
        notice = widget_message(said, payload)
        stored = await asyncio.to_thread(
            claim_due_notice, self.store, ticket.id, now, NewMessage(Sender.SYSTEM.value, notice["text"], stored_payload(notice))
        )
        if stored is None:
            return False
        await self.delivery.send_to_visitor(ticket.conversation_id, notice)
        return True

    async def _send(self, alert: AlertRecord, on_call: OnCall, online: int, now: datetime) -> bool:
        """Deliver one alert this gateway holds; whether it went out (else it is tried again later)."""
        attempts = alert.attempts + 1
        errors: List[str] = []
        if on_call.emails and self.mail is None:
            if not self._warned_no_mail:
                logger.warning("on-call: no outbound mail is wired: alerts are not e-mailed to %s",
                               ", ".join(on_call.emails))
                self._warned_no_mail = True
            if not on_call.webhook:
                errors.append("mail: no outbound mail to send it with")
                attempts = on_call.retries + 1  # nothing to try again with
        if on_call.emails and alert.mailed_at is None:
            if self.mail is not None:
                try:
                    if not await self.mail(alert.id, self.gateway_id, alert_mail(alert, on_call, self.policy), now):
                        logger.info("on-call: alert for ticket #%s was mailed already or is no longer ours",
                                    alert.ticket_id)
                except Exception as error:  # noqa: BLE001 (any failure of the mail hand-over is retried)
                    errors.append(f"mail: {error.__class__.__name__}: {error}")
        if on_call.webhook and alert.posted_at is None:
            refused = await self._post(on_call.webhook, webhook_body(alert, online))
            if refused:
                errors.append(f"webhook: {refused}")
            else:
                await asyncio.to_thread(alert_posted, self.store, alert.id, now)
        if not errors:
            await asyncio.to_thread(alert_sent, self.store, alert.id, self.gateway_id, attempts, now)
            logger.info("on-call: alert for ticket #%s (interval %d) sent", alert.ticket_id, alert.slot)
            return True
        retry = attempts <= on_call.retries
        next_try = now + on_call.retry_after * (2 ** (attempts - 1)) if retry else None
        await asyncio.to_thread(alert_failed, self.store, alert.id, self.gateway_id, attempts, "; ".join(errors), next_try, now)
        if retry:
            logger.warning("on-call: alert for ticket #%s failed (try %d), again at %s: %s",
                           alert.ticket_id, attempts, next_try, "; ".join(errors))
        else:
            logger.error("on-call: alert for ticket #%s given up after %d tries: %s",
                         alert.ticket_id, attempts, "; ".join(errors))
        return False

    async def _post(self, url: str, body: dict) -> Optional[str]:
        """POST ``body`` as JSON to ``url``; None when it answered 2xx, else why not."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS))
        try:
            async with self._session.post(url, data=json.dumps(body),
                                          headers={"Content-Type": "application/json"}) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return f"{error.__class__.__name__}: {error}"

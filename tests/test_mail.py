"""E-mail as a second channel of a handed-off conversation (issue 13, point 1).

In-process gateways over a store on SQLite and PostgreSQL (no bot behind them: the mail channel needs
none), real sockets and a real SMTP relay on 127.0.0.1 (aiosmtpd), the gateway's own SMTP server for
replies, and the agents' JSON API. The gateways run on the real clock with short delays and retries.
"""
from __future__ import annotations

import asyncio
import email
import shutil
import smtplib
from email import policy
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.gateway.keys import MAIL
from bot.clock import utc_clock as real_clock
from bot.identity import issue_token
from bot.mail.addresses import (
    ContactEmailError,
    chat_link_token,
    checked_contact_email,
    reply_address,
    ticket_of_reply_address,
)
from bot.mail.inbound import new_text
from bot.settings import PROJECT_ROOT, Settings
from bot.store.database import Store
from bot.store.messages import conversation_messages
from bot.store.staff import add_staff
from bot.store.customers import find_customer
from bot.store.mail import ticket_mail
from bot.store.owners import claim_conversation, owner_of
from bot.store.seed import seed_demo_customers
from bot.store.tickets import TicketRequest, close_ticket, get_ticket, open_ticket, ticket_events
from bot.training.checks import free_port
from tests.conversation import Widget, sign_in, start, until
from tests.socket_client import socket_client

AGENT = "ines@support.example"
PASSWORD = "correct horse battery"
VISITOR_EMAIL = "anna@example.org"


class Relay:
    """A real SMTP server on 127.0.0.1 standing in for the business's relay: keeps what it accepts,
    and refuses the first ``fail_first`` e-mails (or all, with ``fail_always``) with ``failure``."""

    def __init__(self) -> None:
        self.received: List[EmailMessage] = []
        self.fail_first = 0
        self.fail_always = False
        self.failure = "451 4.3.0 Try again later"
        self.tries = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.tries += 1
        if self.fail_always or self.tries <= self.fail_first:
            return self.failure
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        return "250 OK"


@pytest.fixture
def relay() -> Any:
    relay = Relay()
    relay.controller.start()
    yield relay
    relay.controller.stop()


@pytest.fixture
def mail_settings(store: Store, tmp_path: Path, relay: Relay) -> Settings:
    """A gateway over ``store`` with agent Ines, no bot, the relay above, replies e-mailed at once."""
    add_staff(store, AGENT, "Ines", "agent", PASSWORD, real_clock())
    shutil.copytree(PROJECT_ROOT / "kb", tmp_path / "kb")
    return Settings(
        database_url=store.url, rasa_url="http://127.0.0.1:9", kb_dir=tmp_path / "kb", project_root=tmp_path,
        var_dir=tmp_path / "var", support_policy_file=tmp_path / "kb" / "support_policy.yml",
        smtp_relay_host="127.0.0.1", smtp_relay_port=relay.controller.port, smtp_relay_starttls=False,
        mail_delay_seconds=0, mail_poll_seconds=0.05, mail_retry_seconds=0.05, mail_max_attempts=3,
        smtp_inbound_port=free_port(), mail_reply_domain="help.example", mail_from="support@help.example",
        chat_page_url="https://www.example.com/help",
    )


def ticket_for(store: Store, conversation: str, contact: Optional[str] = None) -> int:
    request = TicketRequest(conversation, "anonymous", "normal", "requested", real_clock(), contact_email=contact)
    return open_ticket(store, request, real_clock()).ticket.id


async def agent(client: TestClient) -> Dict[str, str]:
    return {"X-CSRF-Token": await sign_in(client, PASSWORD, AGENT)}


async def reply(client: TestClient, headers: Dict[str, str], ticket: int, text: str, action: str = "reply") -> None:
    body = {"text": text} if action == "reply" else {}
    response = await client.post(f"/agent/api/tickets/{ticket}/{action}", json=body, headers=headers)
    assert response.status == 200, await response.text()


async def ticket_json(client: TestClient, ticket: int) -> Dict[str, Any]:
    response = await client.get(f"/agent/api/tickets/{ticket}")
    assert response.status == 200
    return await response.json()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


async def leave_address(widget: Widget, address: str) -> Dict[str, Any]:
    return await widget.sio.call("deskmate_contact", {"session_id": widget.session_id, "email": address}, timeout=10)


def test_an_anonymous_visitors_address_is_checked_kept_with_the_ticket_and_never_shown_to_visitors(
    mail_settings: Settings, store: Store
) -> None:
    async def run() -> None:
        client = await start(mail_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            conversation = await widget.open()
            # No ticket yet: nothing to e-mail about.
            assert "no open request" in (await leave_address(widget, VISITOR_EMAIL))["error"]
            number = ticket_for(store, conversation)
            for wrong in ("", "anna", "anna@", "anna@@example.org", "<script>@x.org", "a" * 300 + "@x.org"):
                answer = await leave_address(widget, wrong)
                assert "error" in answer and "ok" not in answer, wrong
            assert get_ticket(store, number).contact_email is None
            assert await leave_address(widget, " Anna@Example.ORG ") == {"ok": True, "email": "Anna@example.org"}
            assert get_ticket(store, number).contact_email == "Anna@example.org"
            # Every open widget gets the confirmation, without the address.
            confirmation = await widget.next("bot_uttered")
            assert confirmation["metadata"]["deskmate"]["type"] == "contact_saved"
            assert "example.org" not in str(confirmation)
            # The stored conversation, as a returning visitor gets it, does not carry it either.
            again = Widget(str(client.make_url("/")))
            await again.open(conversation)
            history = await again.next("deskmate_history")
            assert "example.org" not in str(history)
            await again.close()
            # Staff see it on the ticket.
            headers = await agent(client)
            assert (await ticket_json(client, number))["ticket"]["contact_email"] == "Anna@example.org"
            assert headers
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_a_reply_no_widget_showed_is_emailed_once_also_with_two_gateways(mail_settings: Settings, store: Store, relay: Relay) -> None:
    async def run() -> None:
        first, second = await start(mail_settings), await start(mail_settings.copy(update={"smtp_inbound_port": 0}))
        try:
            left = "0123456789abcdef0123456789abcdef"  # a widget's conversation
            number = ticket_for(store, left, VISITOR_EMAIL)
            headers = await agent(first)
            await reply(first, headers, number, "Your refund of <b>9.99</b> is on its way & should arrive soon.")
            await until(lambda: relay.received)
            await asyncio.sleep(1.0)  # both gateways have looked many times since
            assert len(relay.received) == 1
            sent = relay.received[0]
            assert sent["To"] == VISITOR_EMAIL
            assert f"#{number}" in sent["Subject"]
            assert ticket_of_reply_address(mail_settings.resolved_mail_secret(), "help.example", sent["Reply-To"]) == number
            body, page = text_of(sent), html_of(sent)
            assert "Ines: Your refund of <b>9.99</b> is on its way & should arrive soon." in body
            assert "&lt;b&gt;9.99&lt;/b&gt;" in page and "<b>9.99" not in page
            link = body.split("https://www.example.com/help#deskmate=", 1)[1].split()[0]
            assert link.startswith(f"{left}.")  # the conversation, with a signed expiry
            assert sent["References"] == f"<ticket-{number}@help.example>"  # one thread per ticket
            assert AGENT not in sent.as_string()  # staff appear by name only
            assert (await ticket_json(first, number))["emails"][0]["status"] == "sent"
            # Resolving it later sends the resolution, not the reply again.
            await reply(first, headers, number, "", action="resolve")
            await until(lambda: len(relay.received) == 2)
            assert "Your refund" not in text_of(relay.received[1]) and "resolved" in text_of(relay.received[1])
        finally:
            await first.close()
            await second.close()

    asyncio.run(run())


def test_two_gateways_looking_at_the_same_moment_send_each_email_once(
    mail_settings: Settings, store: Store, relay: Relay
) -> None:
    quiet = mail_settings.copy(update={"mail_poll_seconds": 3600, "smtp_inbound_port": 0})

    async def run() -> None:
        first, second = await start(quiet), await start(quiet)
        try:
            headers = await agent(first)
            numbers = [ticket_for(store, f"web:race-{index}", VISITOR_EMAIL) for index in range(12)]
            for number in numbers:
                await reply(first, headers, number, f"Answer for ticket {number}.")
            pumps = [first.app[MAIL], second.app[MAIL]]
            for _ in range(3):
                await asyncio.gather(*(pump.run_once() for pump in pumps for _ in range(2)))
            assert sorted(text_of(m).count("Answer for ticket") for m in relay.received) == [1] * 12
            assert sorted(int(m["Subject"].rsplit("#", 1)[1]) for m in relay.received) == numbers
        finally:
            await first.close()
            await second.close()

    asyncio.run(run())


def test_a_reply_an_open_widget_showed_is_not_emailed(mail_settings: Settings, store: Store, relay: Relay) -> None:
    async def run() -> None:
        client = await start(mail_settings.copy(update={"mail_delay_seconds": 1.5}))
        widget = Widget(str(client.make_url("/")))
        try:
            conversation = await widget.open()
            number = ticket_for(store, conversation, VISITOR_EMAIL)
            headers = await agent(client)
            await reply(client, headers, number, "Could you tell me the card's last four digits?")
            assert (await widget.next("bot_uttered"))["text"].startswith("Ines joined")
            await widget.next("bot_uttered")
            await widget.sio.emit("deskmate_seen", {"session_id": conversation})  # the chat is open and visible
            await until(lambda: get_json_status(store, number) == "cancelled")
            await asyncio.sleep(0.5)
            assert relay.received == []
            assert (await ticket_json(client, number))["emails"][0]["status"] == "cancelled"
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def get_json_status(store: Store, ticket: int) -> Optional[str]:
    from bot.store.mail import ticket_mail

    mail = ticket_mail(store, ticket)
    return mail[0].status if mail else None


def test_a_relay_failure_is_retried_and_a_final_failure_shows_in_the_inbox(
    mail_settings: Settings, store: Store, relay: Relay
) -> None:
    async def run() -> None:
        client = await start(mail_settings)
        inbox = socket_client()
        told: List[Dict[str, Any]] = []
        inbox.on("ticket_message", lambda data: told.append(data), namespace="/agent")
        try:
            headers = await agent(client)
            cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
            await inbox.connect(str(client.make_url("/")), namespaces=["/agent"], transports=["websocket"],
                                headers={"Cookie": cookie})
            relay.fail_first = 2
            retried = ticket_for(store, "api:retried", VISITOR_EMAIL)
            await reply(client, headers, retried, "Sorted.")
            await until(lambda: relay.received)
            assert relay.tries == 3 and len(relay.received) == 1
            sent = (await ticket_json(client, retried))["emails"][0]
            assert sent["status"] == "sent" and sent["attempts"] == 3
            assert "#deskmate=" not in text_of(relay.received[0])  # a JSON API conversation has no chat to reopen

            relay.fail_always = True  # 451: worth trying again, until the tries run out
            refused = ticket_for(store, "web:refused", VISITOR_EMAIL)
            await reply(client, headers, refused, "Sorted too.")
            await until(lambda: get_json_status(store, refused) == "failed")
            failed = (await ticket_json(client, refused))["emails"][0]
            assert failed["attempts"] == 3 and failed["last_error"].endswith("451 4.3.0 Try again later")
            await until(lambda: {"ticket": refused} in told)  # open inboxes re-read the ticket

            relay.failure = "554 5.7.1 Relay access denied"  # a permanent refusal: no point trying again
            denied = ticket_for(store, "web:denied", VISITOR_EMAIL)
            await reply(client, headers, denied, "Sorted three.")
            await until(lambda: get_json_status(store, denied) == "failed")
            failed = (await ticket_json(client, denied))["emails"][0]
            assert failed["attempts"] == 1 and "554 5.7.1 Relay access denied" in failed["last_error"]
        finally:
            await inbox.disconnect()
            await client.close()

    asyncio.run(run())


QUOTED_REPLY = """Thanks, I found the charge now. It was my partner's account.

Best regards,
Anna

On Mon, 30 Nov 2026 at 10:02, Lumio Support <support@help.example> wrote:
> Ines: Could you tell me the card's last four digits?
>
"""


def send_reply(settings: Settings, to: str, body: str, message_id: str) -> None:
    message = EmailMessage()
    message["From"] = VISITOR_EMAIL
    message["To"] = to
    message["Subject"] = "Re: your request"
    message["Message-ID"] = message_id
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", settings.smtp_inbound_port, timeout=10) as smtp:
        smtp.send_message(message)


def test_an_email_reply_joins_its_ticket_without_the_quoted_history_once(
    mail_settings: Settings, store: Store, relay: Relay
) -> None:
    async def run() -> None:
        client = await start(mail_settings)
        try:
            headers = await agent(client)
            number = ticket_for(store, "web:by-mail", VISITOR_EMAIL)
            await reply(client, headers, number, "Could you tell me the card's last four digits?")
            await reply(client, headers, number, "", action="resolve")
            await until(lambda: relay.received)
            reply_to = relay.received[-1]["Reply-To"]
            for _ in range(2):  # the same e-mail delivered twice (a lost acknowledgement) is taken in once
                await asyncio.to_thread(send_reply, mail_settings, reply_to, QUOTED_REPLY, "<r1@example.org>")
            texts = [m.text for m in conversation_messages(store, "web:by-mail") if m.sender == "visitor"]
            assert texts == ["Thanks, I found the charge now. It was my partner's account."]
            ticket = get_ticket(store, number)
            assert ticket.status == "assigned" and ticket.assignee == AGENT  # reopened, back with Ines
            assert "reopened" in [event.kind for event in ticket_events(store, number)]
            detail = await ticket_json(client, number)
            assert detail["messages"][-1]["text"].startswith("Thanks, I found the charge")
        finally:
            await client.close()

    asyncio.run(run())


def test_a_forged_or_foreign_reply_address_is_refused(mail_settings: Settings, store: Store) -> None:
    async def run() -> None:
        client = await start(mail_settings)
        try:
            secret = mail_settings.resolved_mail_secret()
            number = ticket_for(store, "web:target", VISITOR_EMAIL)
            other = ticket_for(store, "web:other", VISITOR_EMAIL)
            real = reply_address(secret, "help.example", number)
            local, domain = real.split("@")
            forged = [
                f"reply+{number}-{'a' * 26}@help.example",  # a guessed tag
                reply_address(secret, "help.example", other).replace(f"+{other}-", f"+{number}-"),  # another ticket's tag
                reply_address("not-the-secret", "help.example", number),
                f"{local}@elsewhere.example",
                f"support@{domain}",
            ]
            for address in forged:
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    await asyncio.to_thread(send_reply, mail_settings, address, "let me in", f"<{address}>")
            assert [m for m in conversation_messages(store, "web:target") if m.sender == "visitor"] == []
            # The real address works, in any letter case.
            await asyncio.to_thread(send_reply, mail_settings, real.upper(), "hello", "<ok@example.org>")
            assert [m.text for m in conversation_messages(store, "web:target") if m.sender == "visitor"] == ["hello"]
        finally:
            await client.close()

    asyncio.run(run())


def test_without_a_relay_mail_is_written_to_the_outbox(mail_settings: Settings, store: Store, caplog: Any) -> None:
    settings = mail_settings.copy(update={"smtp_relay_host": ""})

    async def run() -> None:
        client = await start(settings)
        try:
            number = ticket_for(store, "web:outbox", VISITOR_EMAIL)
            await reply(client, await agent(client), number, "Written to a file.")
            outbox = settings.var_dir / "outbox"
            files = await until(lambda: list(outbox.glob("*.eml")))
            message = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage) and "Written to a file." in text_of(message)
        finally:
            await client.close()

    asyncio.run(run())
    assert any("no SMTP relay is set" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("written, kept", [
    (QUOTED_REPLY, "Thanks, I found the charge now. It was my partner's account."),
    ("On Mon, 30 Nov 2026 at 10:02, Support <s@help.example> wrote:\n> old\n> stuff\n", ""),
    ("fine\x00 now\x07\r\n", "fine now"),
    ("Yes please.\n\n-- \nAnna Schmidt\nSent from my phone\n", "Yes please."),
    ("Ja, bitte.\n\nAm 30.11.2026 um 10:02 schrieb Lumio Support <support@help.example>:\n> Frage\n", "Ja, bitte."),
    ("no quote at all", "no quote at all"),
])
def test_the_new_text_of_a_reply_is_kept_without_quotes_and_signature(written: str, kept: str) -> None:
    assert new_text(written) == kept


def test_reply_address_tags_are_bound_to_ticket_and_secret() -> None:
    address = reply_address("s3cret", "help.example", 42)
    assert ticket_of_reply_address("s3cret", "help.example", address) == 42
    assert ticket_of_reply_address("s3cret", "HELP.example", address.upper()) == 42
    assert ticket_of_reply_address("other", "help.example", address) is None
    assert ticket_of_reply_address("s3cret", "help.example", address.replace("+42-", "+43-")) is None


@pytest.mark.parametrize("typed", ["", "   ", "anna", "anna@", "@example.org", "an na@example.org", 42, None])
def test_a_contact_address_that_cannot_take_mail_is_refused_in_words(typed: Any) -> None:
    with pytest.raises(ContactEmailError) as refused:
        checked_contact_email(typed)
    assert str(refused.value)


def test_a_signed_in_customers_ticket_carries_their_address(store: Store) -> None:
    from bot.handoff.policy import SupportPolicy
    from bot.handoff.service import HandoffService
    from bot.identity import issue_token
    from bot.protocol import TicketReason

    seed_demo_customers(store, PROJECT_ROOT / "kb" / "demo_customers.yml", real_clock())
    service = HandoffService(store, "x" * 32, SupportPolicy.load(PROJECT_ROOT / "kb" / "support_policy.yml"), real_clock)
    customer_email = "standard@demo.example"
    visitor = service.visitor({"user_token": issue_token("x" * 32, customer_email)})
    assert visitor.customer is not None
    outcome = service.open_ticket("web:signed-in", visitor, TicketReason.REQUESTED)
    assert outcome.ticket is not None and outcome.ticket.contact_email == visitor.customer.email
    anonymous = service.open_ticket("web:anonymous", service.visitor({}), TicketReason.REQUESTED)
    assert anonymous.ticket is not None and anonymous.ticket.contact_email is None


def test_a_chat_link_opens_its_conversation_only_signed_and_in_time(mail_settings: Settings) -> None:
    secret, now = mail_settings.resolved_mail_secret(), real_clock()
    conversation = "00112233445566778899aabbccddeeff"

    async def opened(resume: str) -> Tuple[str, List[str]]:
        widget = Widget(str(client.make_url("/")))
        await widget.connect()
        await widget.sio.emit("session_request", {"session_id": conversation, "resume": resume})
        confirmed = await widget.next("session_confirm")
        notices: List[str] = []
        try:
            notices.append((await widget.next("bot_uttered", timeout=1.0))["text"])
        except asyncio.TimeoutError:
            pass
        await widget.close()
        return confirmed, notices

    client: TestClient

    async def run() -> None:
        nonlocal client
        client = await start(mail_settings)
        try:
            good = chat_link_token(secret, conversation, now + timedelta(days=1))
            assert await opened(good) == (conversation, [])
            for bad in (
                chat_link_token(secret, conversation, now - timedelta(seconds=1)),  # expired
                chat_link_token("another secret", conversation, now + timedelta(days=1)),  # not ours
                chat_link_token(secret, "ffeeddccbbaa99887766554433221100", now + timedelta(days=1)),  # another's
                good[:-1] + ("a" if good[-1] != "a" else "b"),  # tampered
                "garbage",
            ):
                confirmed, notices = await opened(bad)
                assert confirmed != conversation and len(confirmed) == 32
                assert notices and "link has expired or isn't valid" in notices[0]
        finally:
            await client.close()

    asyncio.run(run())


def test_a_signed_in_visitor_lured_into_another_conversation_writes_in_a_new_one(
    mail_settings: Settings, store: Store
) -> None:
    """Session fixation: an attacker's conversation opened in a signed-in victim's widget (a link).
    The victim's message is refused there (nothing stored), and the widget is told to start its own."""
    token = issue_token(mail_settings.resolved_identity_secret(), "standard@demo.example")

    async def run() -> None:
        client = await start(mail_settings)
        attacker, victim = Widget(str(client.make_url("/"))), Widget(str(client.make_url("/")))
        restarts: "asyncio.Queue[Any]" = asyncio.Queue()
        victim.sio.on("deskmate_restart", restarts.put)
        try:
            conversation = await attacker.open()
            assert claim_conversation(store, conversation, owner_of(None), real_clock()) == owner_of(None)
            await victim.open(conversation)
            await victim.sio.emit("user_uttered", {"message": "what plan am I on", "session_id": conversation,
                                                  "metadata": {"user_token": token}})
            restart = await asyncio.wait_for(restarts.get(), 10)
            assert restart["message"] == "what plan am I on" and "belongs to someone else" in restart["text"]
            assert conversation_messages(store, conversation) == []
            # And the other way: no one without the customer's token writes in the customer's conversation.
            own = "ffeeddccbbaa99887766554433221100"
            claim_conversation(store, own, owner_of("standard@demo.example"), real_clock())
            intruder = Widget(str(client.make_url("/")))
            intruder_restarts: "asyncio.Queue[Any]" = asyncio.Queue()
            intruder.sio.on("deskmate_restart", intruder_restarts.put)
            await intruder.open(own)
            await intruder.say("hello from a forwarded link")
            await asyncio.wait_for(intruder_restarts.get(), 10)
            assert conversation_messages(store, own) == []
            await intruder.close()
        finally:
            await attacker.close()
            await victim.close()
            await client.close()

    asyncio.run(run())


def test_a_signed_in_customers_address_stays_and_our_own_addresses_are_refused(
    mail_settings: Settings, store: Store
) -> None:
    seed_demo_customers(store, PROJECT_ROOT / "kb" / "demo_customers.yml", real_clock())
    customer = find_customer(store, "standard@demo.example")
    assert customer is not None

    async def run() -> None:
        client = await start(mail_settings)
        widget = Widget(str(client.make_url("/")))
        try:
            conversation = await widget.open()
            request = TicketRequest(conversation, "standard", "normal", "requested", real_clock(),
                                    customer_id=customer.id, contact_email=customer.email)
            number = open_ticket(store, request, real_clock()).ticket.id
            answer = await leave_address(widget, "someoneelse@example.com")
            assert "account's e-mail address" in answer["error"]
            assert get_ticket(store, number).contact_email == customer.email
            for own in ("support@help.example", "postmaster@help.example", f"reply+{number}-{'a' * 26}@help.example"):
                assert "our own addresses" in (await leave_address(widget, own))["error"]
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_the_first_reply_keeps_its_due_time_and_goes_to_the_address_the_ticket_has_then(
    mail_settings: Settings, store: Store, relay: Relay
) -> None:
    async def run() -> None:
        client = await start(mail_settings.copy(update={"mail_delay_seconds": 1.5}))
        widget = Widget(str(client.make_url("/")))
        try:
            conversation = await widget.open()
            number = ticket_for(store, conversation)
            assert (await leave_address(widget, "first@example.org"))["ok"]
            headers = await agent(client)
            await reply(client, headers, number, "First.")
            due = ticket_mail(store, number)[0].next_attempt_at
            await reply(client, headers, number, "Second.")
            assert ticket_mail(store, number)[0].next_attempt_at == due  # later replies don't postpone it
            assert (await leave_address(widget, "second@example.org"))["ok"]
            await until(lambda: relay.received)
            assert relay.received[0]["To"] == "second@example.org"
            assert "First." in text_of(relay.received[0]) and "Second." in text_of(relay.received[0])
        finally:
            await widget.close()
            await client.close()

    asyncio.run(run())


def test_a_new_ticket_in_the_conversation_keeps_the_address_left_on_an_earlier_one(store: Store) -> None:
    first = ticket_for(store, "web:twice", VISITOR_EMAIL)
    close_ticket(store, first, "bot", real_clock())
    second = ticket_for(store, "web:twice")
    assert get_ticket(store, second).contact_email == VISITOR_EMAIL


@pytest.mark.parametrize("headers, sender", [
    ({"Auto-Submitted": "auto-replied"}, VISITOR_EMAIL),
    ({"Precedence": "bulk"}, VISITOR_EMAIL),
    ({"Precedence": "auto_reply"}, VISITOR_EMAIL),
    ({"X-Autoreply": "yes"}, VISITOR_EMAIL),
    ({"X-Auto-Response-Suppress": "All"}, VISITOR_EMAIL),
    ({"List-Id": "<news.example.org>"}, VISITOR_EMAIL),
    ({}, ""),  # a bounce: the null sender
])
def test_automatic_mail_is_accepted_and_dropped(
    mail_settings: Settings, store: Store, headers: Dict[str, str], sender: str
) -> None:
    async def run() -> None:
        client = await start(mail_settings)
        try:
            number = ticket_for(store, "web:auto", VISITOR_EMAIL)
            close_ticket(store, number, "bot", real_clock())
            message = EmailMessage()
            message["From"], message["Subject"] = VISITOR_EMAIL, "Out of office"
            for name, value in headers.items():
                message[name] = value
            message.set_content("I am away until Monday.")
            to = reply_address(mail_settings.resolved_mail_secret(), "help.example", number)

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", mail_settings.smtp_inbound_port, timeout=10) as smtp:
                    smtp.send_message(message, from_addr=sender, to_addrs=[to])

            await asyncio.to_thread(send)
            assert [m for m in conversation_messages(store, "web:auto") if m.sender == "visitor"] == []
            assert get_ticket(store, number).status == "resolved"  # not reopened
        finally:
            await client.close()

    asyncio.run(run())


def test_email_replies_are_cleaned_limited_and_name_their_attachments(mail_settings: Settings, store: Store) -> None:
    settings = mail_settings.copy(update={"rate_messages_per_conversation": "3/minute"})

    async def run() -> None:
        client = await start(settings)
        try:
            number = ticket_for(store, "web:flood", VISITOR_EMAIL)
            to = reply_address(settings.resolved_mail_secret(), "help.example", number)
            message = EmailMessage()
            message["From"], message["To"], message["Message-ID"] = VISITOR_EMAIL, to, "<att@example.org>"
            message.set_content("Here is\x00 the \x1b[31mscreenshot.")
            message.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="screen.png")

            def send(mail: EmailMessage) -> None:
                with smtplib.SMTP("127.0.0.1", settings.smtp_inbound_port, timeout=10) as smtp:
                    smtp.send_message(mail)

            await asyncio.to_thread(send, message)
            stored = [m.text for m in conversation_messages(store, "web:flood") if m.sender == "visitor"]
            assert stored == ["Here is the [31mscreenshot.\n\n[Attachments not kept: screen.png]"]
            for index in range(2):
                await asyncio.to_thread(send_reply, settings, to, f"more {index}", f"<more{index}@example.org>")
            with pytest.raises(smtplib.SMTPDataError) as refused:  # the 4th in a minute: "try again later"
                await asyncio.to_thread(send_reply, settings, to, "and more", "<more9@example.org>")
            assert refused.value.smtp_code == 451
            assert len([m for m in conversation_messages(store, "web:flood") if m.sender == "visitor"]) == 3
        finally:
            await client.close()

    asyncio.run(run())

"""Where outgoing e-mail goes: the configured SMTP relay, or var/outbox/ when none is set (the demo).

The relay is driven by the standard library's smtplib (in a worker thread):
STARTTLS when asked, then LOGIN/PLAIN with the configured user. Any refusal
or network error is a ``MailDeliveryError``; the caller decides to retry.
"""
from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from bot.settings import Settings


class MailDeliveryError(RuntimeError):
    """The relay refused the e-mail or could not be reached (the text says which, without secrets);
    ``permanent`` for a refusal that trying again cannot change (SMTP 5xx)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _said(answer: object) -> str:
    """The relay's words, as text (smtplib gives bytes)."""
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


class MailTransport(Protocol):
    """Hands one finished e-mail on; raises MailDeliveryError."""

    description: str

    async def send(self, message: EmailMessage) -> None: ...


class SmtpRelay:
    """An SMTP relay (host, port, STARTTLS, user and password from the settings)."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_relay_host
        self.port = settings.smtp_relay_port
        self.starttls = settings.smtp_relay_starttls
        self.user = settings.smtp_relay_user
        self._password = settings.smtp_relay_password
        self.timeout = settings.smtp_relay_timeout_seconds
        self.description = f"the SMTP relay at {self.host}:{self.port}"

    def _send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self._password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            raise MailDeliveryError(
                f"{self.description} refused it: {error.smtp_code} {_said(error.smtp_error)}", permanent=error.smtp_code >= 500
            ) from error
        except smtplib.SMTPRecipientsRefused as error:
            answers = list(error.recipients.values())
            code, said = answers[0] if answers else (550, b"")
            raise MailDeliveryError(
                f"{self.description} refused the recipient: {code} {_said(said)}", permanent=int(code) >= 500
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise MailDeliveryError(f"{self.description} could not be reached: {error.__class__.__name__}: {error}") from error

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send, message)


class OutboxFolder:
    """Writes each e-mail as an .eml file into a folder (var/outbox/): the demo's relay."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"the folder {folder}"

    def _write(self, message: EmailMessage) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{uuid.uuid4().hex}.eml"
            scratch = self.folder / f".{name}"
            scratch.write_bytes(message.as_bytes())
            scratch.rename(self.folder / name)
        except OSError as error:
            raise MailDeliveryError(f"could not write to {self.folder}: {error}") from error

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)


def transport_for(settings: Settings) -> MailTransport:
    """The relay when ``smtp_relay_host`` is set, else var/outbox/."""
    if settings.smtp_relay_host:
        return SmtpRelay(settings)
    return OutboxFolder(settings.var_dir / "outbox")

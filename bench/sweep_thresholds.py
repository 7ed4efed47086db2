"""Choose the answer thresholds by measurement on a dev set.

Parses every case once with the running bot's ``/model/parse`` (the trained
model's raw intent ranking and response-selector ranking), then replays the
bot's decision rule for a grid of thresholds and prints the eval figures
for each. Usage (with `make run` running):

    .venv/bin/python bench/sweep_thresholds.py tests/eval/dev.yml

The NLU fallback is replayed as Rasa's FallbackClassifier does it (intent
below the NLU threshold or within the ambiguity gap -> nlu_fallback); what
the bot then says is decided by the shipped function itself
(``Answerer.decide`` with an ``AnswerGate`` per setting): an article is
answered only for ``faq`` when its fused score (selector confidence +
search_weight x search similarity) is >= the answer threshold and leads the
runner-up by the margin.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.dialogue.answering import Answer, AnswerGate, Answerer, ParsedMessage  # noqa: E402
from bot.dialogue.input_check import input_problem  # noqa: E402
from bot.eval.cases import EvalCase, Outcome, load_cases  # noqa: E402
from bot.kb.search import SearchHit  # noqa: E402
from bot.rasa_client import RasaClient  # noqa: E402
from bot.settings import get_settings  # noqa: E402

NLU_THRESHOLDS = (0.3, 0.5, 0.7)
AMBIGUITY = (0.0, 0.1)
SEARCH_WEIGHTS = (0.0, 1.0, 2.0, 3.0)
ANSWER_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MARGINS = (0.0, 0.1, 0.2, 0.3)


async def parse_all(cases: List[EvalCase], url: str, token: str) -> List[Dict[str, Any]]:
    """NLU's reading of every case text (``/model/parse``)."""
    async with RasaClient(url, token) as client:
        return [await client.parse(case.text) for case in cases]


def raw_ranking(parse: Dict[str, Any]) -> List[Tuple[str, float]]:
    """The classifier's intent ranking without the fallback entries."""
    ranking = [(i["name"], float(i["confidence"])) for i in parse.get("intent_ranking") or []]
    return [(name, conf) for name, conf in ranking if name != "nlu_fallback"]


def replay(
    answerer: Answerer,
    parse: Dict[str, Any],
    hits: List[SearchHit],
    nlu: float,
    ambiguity: float,
    weight: float,
    answer: float,
    margin: float,
) -> Outcome:
    """What the bot would do with these thresholds (Rasa's fallback, then the bot's own decision)."""
    ranking = raw_ranking(parse)
    top, conf = ranking[0] if ranking else ("nlu_fallback", 0.0)
    second = ranking[1][1] if len(ranking) > 1 else 0.0
    unreadable = input_problem(parse.get("text") or "", answerer.settings.max_message_chars) is not None
    intent = "nlu_fallback" if unreadable or conf < nlu or conf - second < ambiguity else top
    parsed = ParsedMessage.from_parse_data({**parse, "intent": {"name": intent, "confidence": conf}})
    decision = answerer.decide(parsed, AnswerGate(weight, answer, margin), hits)
    article: Optional[str] = decision.article.id if isinstance(decision, Answer) else None
    return Outcome(intent=intent, article=article, handoff=False)


def score(cases: List[EvalCase], outcomes: List[Outcome]) -> Dict[str, float]:
    """Accuracy per kind, wrong-answer rate."""
    result: Dict[str, float] = {}
    for kind in ("article", "intent", "none"):
        passed = [c.passes(o) for c, o in zip(cases, outcomes) if c.kind == kind]
        result[kind] = sum(passed) / len(passed) if passed else float("nan")
    result["wrong"] = sum(c.is_wrong_answer(o) for c, o in zip(cases, outcomes)) / len(cases)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=15, help="print the best N settings")
    args = parser.parse_args()
    settings = get_settings()
    cases = load_cases(Path(args.file))
    parses = asyncio.run(parse_all(cases, settings.rasa_urls()[0], settings.resolved_rasa_token()))
    answerer = Answerer(settings)
    hits = [answerer.search(case.text, limit=answerer.search_limit()) for case in cases]
    rows = []
    grid = itertools.product(NLU_THRESHOLDS, AMBIGUITY, SEARCH_WEIGHTS, ANSWER_THRESHOLDS, MARGINS)
    for setting in grid:
        outcomes = [replay(answerer, p, h, *setting) for p, h in zip(parses, hits)]
        rows.append((setting, score(cases, outcomes)))
    meets = lambda s: s["article"] >= 0.92 and s["wrong"] <= 0.03 and s["none"] >= 0.90 and s["intent"] >= 0.90  # noqa: E731
    rows.sort(key=lambda row: (meets(row[1]), row[1]["wrong"] <= 0.03 and row[1]["none"] >= 0.9, row[1]["article"]), reverse=True)
    print(f"{len(cases)} cases; nlu ambiguity search_weight answer_threshold margin -> article intent none wrong (* meets targets)")
    for (nlu, amb, weight, answer, margin), s in rows[: args.top]:
        flag = "*" if meets(s) else " "
        print(
            f"{flag} {nlu:.2f} {amb:.2f} {weight:.1f} {answer:.2f} {margin:.2f} -> "
            f"article {s['article']:.1%} intent {s['intent']:.1%} none {s['none']:.1%} wrong {s['wrong']:.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

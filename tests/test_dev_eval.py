"""The dev eval set meets the accuracy targets (latency is reported, not asserted)."""
from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

from bot.eval.cases import load_cases
from bot.eval.runner import format_summary, run_cases, summarise
from bot.settings import PROJECT_ROOT, Settings

DEV_SET = PROJECT_ROOT / "tests" / "eval" / "dev.yml"


def test_dev_set_meets_the_accuracy_targets(bot_settings: Settings) -> None:
    cases = load_cases(DEV_SET)
    results = asyncio.run(run_cases(cases, bot_settings.rasa_url, bot_settings.resolved_rasa_token()))
    summary = summarise(cases, results)
    report = format_summary(summary)
    print(report)
    out = bot_settings.var_dir / "eval" / "dev.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": asdict(summary), "cases": [asdict(r) for r in results]}, indent=2))

    assert summary.accuracy["article"] >= 0.92, report
    assert summary.wrong_answer_rate <= 0.03, report
    assert summary.accuracy["none"] >= 0.90, report
    assert summary.accuracy["intent"] >= 0.90, report
    for intent, accuracy in summary.intent_accuracy.items():
        assert accuracy >= 0.80, f"intent {intent}: {accuracy:.0%}\n{report}"

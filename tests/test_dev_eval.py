"""The dev eval set stays at or above the floors in tests/eval/floors.yml (latency is reported, not asserted)."""
from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

from bot.eval.cases import load_cases
from bot.eval.runner import demo_user_tokens, format_summary, run_cases, summarise
from bot.settings import PROJECT_ROOT, Settings
from bot.training.checks import floor_failures, load_floors

DEV_SET = PROJECT_ROOT / "tests" / "eval" / "dev.yml"
# The same file and loader as `make check` (bot/training/checks.py), which also runs this eval.
FLOORS = PROJECT_ROOT / "tests" / "eval" / "floors.yml"


def test_dev_set_stays_above_the_accuracy_floors(bot_settings: Settings) -> None:
    floors = load_floors(FLOORS)
    cases = load_cases(DEV_SET)
    tokens = demo_user_tokens(bot_settings.demo_customers_file, bot_settings.resolved_identity_secret())
    results = asyncio.run(run_cases(cases, bot_settings.rasa_url, bot_settings.resolved_rasa_token(), user_tokens=tokens))
    summary = summarise(cases, results)
    report = format_summary(summary)
    print(report)
    out = bot_settings.var_dir / "eval" / "dev.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": asdict(summary), "cases": [asdict(r) for r in results]}, indent=2))

    failures = floor_failures(summary, floors)
    assert not failures, "\n".join(failures) + "\n" + report

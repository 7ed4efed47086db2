"""`python -m bot check` (make check): the floors file, and a model below raised floors fails with the reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from bot.eval.runner import Summary
from bot.settings import PROJECT_ROOT, Settings
from bot.training.checks import Floors, FloorsFileError, figure_checks, floor_failures, load_floors, wilson_interval


def test_the_floors_file_is_read_by_one_loader_for_make_check_and_the_tests(project_settings: Settings) -> None:
    assert project_settings.resolved_eval_floors_file() == PROJECT_ROOT / "tests" / "eval" / "floors.yml"
    floors = load_floors(project_settings.resolved_eval_floors_file())
    assert floors.article_accuracy_min == 0.92 and floors.wrong_answer_rate_max == 0.03


@pytest.mark.parametrize(
    "text, message",
    [
        ("article_accuracy_min: 0.9\n", "missing keys"),
        ("article_acuracy_min: 0.9\n", "unknown keys article_acuracy_min"),
        ("- 0.9\n", "expected a mapping"),
    ],
)
def test_a_broken_floors_file_is_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "floors.yml"
    path.write_text(text)
    with pytest.raises(FloorsFileError, match=message):
        load_floors(path)


def test_a_floor_must_be_a_fraction(tmp_path: Path) -> None:
    path = tmp_path / "floors.yml"
    path.write_text((PROJECT_ROOT / "tests" / "eval" / "floors.yml").read_text().replace("0.92", "92"))
    with pytest.raises(FloorsFileError, match="article_accuracy_min must be a number between 0 and 1"):
        load_floors(path)


def test_each_figure_below_its_floor_is_named() -> None:
    floors = Floors(0.92, 0.03, 0.9, 0.9, 0.9, 1.0)
    summary = Summary(
        cases=100,
        accuracy={"article": 0.5, "intent": 0.95, "handoff": 1.0, "none": 0.95},
        counts={"article": 60, "intent": 20, "handoff": 10, "none": 10},
        intent_accuracy={"greet": 1.0, "deny": 0.8},
        wrong_answer_rate=0.2,
        needless_tickets=0,
        p50_ms=10,
        p95_ms=20,
    )
    assert floor_failures(summary, floors) == [
        "article accuracy 50.0% is below the floor 92.0% (42.0 points short)",
        "wrong-answer rate 20.0% is above the ceiling 3.0% (17.0 points over)",
        # No case count (a summary from before they were kept): the per-intent floor is strict.
        "intent deny accuracy 80.0% is below the floor 90.0% (10.0 points short; case count unknown)",
    ]


def summary_with_intents(accuracy: Dict[str, float], counts: Dict[str, int]) -> Summary:
    return Summary(
        cases=300, accuracy={"article": 0.96, "intent": 0.97, "handoff": 1.0, "none": 1.0},
        counts={"article": 200, "intent": 60, "handoff": 22, "none": 18}, intent_accuracy=accuracy,
        wrong_answer_rate=0.003, needless_tickets=0, p50_ms=10, p95_ms=20, intent_counts=counts,
    )


def test_a_small_intent_sample_alone_does_not_veto_a_model() -> None:
    floors = Floors(0.92, 0.03, 0.9, 0.9, 0.9, 1.0)
    # The case: goodbye at 4 of 5 (80%) while everything else is better. 80% of 5 cases
    # is well within what a 90% intent scores by chance (Wilson 95% interval 38%-96%).
    better = summary_with_intents({"goodbye": 0.8, "greet": 1.0}, {"goodbye": 5, "greet": 12})
    assert floor_failures(better, floors) == []
    [goodbye] = [c for c in figure_checks(better, floors) if c.key == "intent:goodbye"]
    assert goodbye.passed and goodbye.cases == 5 and "too few cases to tell" in goodbye.note
    assert "38%-96%" in goodbye.note
    # 3 of 5 (60%) is below the floor beyond chance: vetoed, with the interval and the shortfall.
    worse = summary_with_intents({"goodbye": 0.6, "greet": 1.0}, {"goodbye": 5, "greet": 12})
    assert floor_failures(worse, floors) == [
        "intent goodbye accuracy 60.0% is below the floor 90.0% (30.0 points short; 5 cases, 95% interval 23%-88%)"
    ]
    # ... unless the current model did no better on the same cases: a candidate is not refused for that.
    assert floor_failures(worse, floors, {"per_intent_accuracy": {"goodbye": 0.6}}) == []
    assert "the current model: 80.0%" in floor_failures(worse, floors, {"per_intent_accuracy": {"goodbye": 0.8}})[0]
    # A large sample just under the floor is believed: 40 of 50 (80%), interval 67%-89%.
    many = summary_with_intents({"goodbye": 0.8}, {"goodbye": 50})
    assert len(floor_failures(many, floors)) == 1


def test_the_wilson_interval() -> None:
    low, high = wilson_interval(4, 5)
    assert (round(low, 3), round(high, 3)) == (0.376, 0.964)
    assert wilson_interval(5, 5)[1] == 1.0 and wilson_interval(0, 5)[0] == 0.0
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


def test_make_check_fails_with_the_reason_when_the_model_is_below_the_floors(
    trained_model: Path, tmp_path: Path
) -> None:
    """The real command on the project's model, with the article floor raised above what it reaches."""
    floors = tmp_path / "floors.yml"
    floors.write_text(
        (PROJECT_ROOT / "tests" / "eval" / "floors.yml").read_text().replace(
            "article_accuracy_min: 0.92", "article_accuracy_min: 1.0"
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--model", str(trained_model), "--floors", str(floors)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800,
    )
    print(result.stdout[-3000:])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("PASS  rasa data validate", "PASS  knowledge base check", "PASS  test stories", "FAIL  dev eval"):
        assert line in result.stdout
    assert "make check failed: dev eval failed: article accuracy" in result.stderr
    assert "is below the floor 100.0%" in result.stderr

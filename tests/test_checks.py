"""`python -m bot check` (make check): the floors file, and a model below raised floors fails with the reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.eval.runner import Summary
from bot.settings import PROJECT_ROOT, Settings
from bot.training.checks import Floors, FloorsFileError, floor_failures, load_floors


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
        "article accuracy 50.0% is below the floor 92.0%",
        "wrong-answer rate 20.0% is above the ceiling 3.0%",
        "intent deny accuracy 80.0% is below the floor 90.0%",
    ]


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

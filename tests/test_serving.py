"""`make run` serves only a model that passed the checks (bot/training/serving.py).

Training and the checks are faked here (each takes minutes and is covered by
tests/test_retrain.py and tests/test_checks.py with the real ones): the fakes
record what they were asked, so these tests see when `make run` trains,
checks, serves or refuses, and what it says.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from bot.settings import Settings
from bot.training.checks import CheckReport, CheckResult
from bot.training.models import model_name, models_dir, training_fingerprint
from bot.training.serving import (
    NoCheckedModelError,
    current_eval_sha,
    read_record,
    record_path,
    serving_model,
    write_record,
)
from tests.conftest import project_copy_settings

GOOD_FIGURES = {"cases": 290, "article_accuracy": 0.954, "wrong_answer_rate": 0.007, "per_intent_accuracy": {"goodbye": 1.0}}
FLOORS = {"article_accuracy_min": 0.92, "wrong_answer_rate_max": 0.03, "per_intent_accuracy_min": 0.9}


class Fakes:
    """A trainer that writes a stand-in archive, and checks that pass or fail as told."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trained: List[str] = []
        self.checked: List[str] = []
        self.baselines: List[Optional[Dict[str, Any]]] = []
        self.fail_with = ""
        self.lines: List[str] = []

    def train(self, settings: Settings, out_dir: Path, fingerprint: str) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / model_name(fingerprint)
        path.write_bytes(b"a model")
        self.trained.append(fingerprint)
        return path

    def check(self, settings: Settings, model: Path, baseline: Optional[Dict[str, Any]] = None) -> CheckReport:
        self.checked.append(model.name)
        self.baselines.append(baseline)
        eval_check = CheckResult("eval", "dev eval", "failed" if self.fail_with else "passed", self.fail_with)
        return CheckReport(
            model=model.name, checks=(CheckResult("validate", "rasa data validate", "passed"), eval_check),
            figures=GOOD_FIGURES, floors=FLOORS, eval_sha=current_eval_sha(settings),
        )

    def serve(self) -> Path:
        return serving_model(self.settings, echo=self.lines.append, trainer=self.train, checker=self.check)

    @property
    def said(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def fakes(project_copy: Path, project_settings: Settings) -> Fakes:
    return Fakes(project_copy_settings(project_copy, project_settings))


def add_phrasing(settings: Settings, text: str) -> None:
    path = next(settings.kb_dir.glob("**/gift-cards-promo.md"))
    path.write_text(path.read_text().replace("questions:\n", f"questions:\n  - {text}\n", 1))


def test_a_new_model_serves_only_after_passing_and_is_not_checked_again(fakes: Fakes) -> None:
    first = fakes.serve()
    assert fakes.trained == [training_fingerprint(fakes.settings)] and fakes.checked == [first.name]
    assert first.parent == models_dir(fakes.settings) and first.is_file()
    record = read_record(first)
    assert record is not None and record["passed"] and record["figures"] == GOOD_FIGURES
    assert "passed every check and serves visitors" in fakes.said
    assert not list((fakes.settings.var_dir / "candidates").glob("*.tar.gz"))  # moved, not copied

    again = fakes.serve()  # the next start: unchanged data, a passed record
    assert again == first and len(fakes.trained) == 1 and len(fakes.checked) == 1
    assert "no training needed" in fakes.lines[-1]

    add_phrasing(fakes.settings, "can my gran buy me a voucher")
    second = fakes.serve()
    assert second != first and len(fakes.trained) == 2
    # The candidate was compared with the model serving until then.
    assert fakes.baselines[-1] == {"model": first.name, "figures": GOOD_FIGURES, "eval_sha": record["eval_sha"]}


def test_a_refused_model_never_serves_and_the_last_good_one_does_saying_why(fakes: Fakes) -> None:
    good = fakes.serve()
    add_phrasing(fakes.settings, "do you sell gift vouchers in shops")
    fakes.fail_with = "intent goodbye accuracy 40.0% is below the floor 90.0% (50.0 points short; 5 cases)"
    fakes.lines.clear()
    served = fakes.serve()
    assert served == good
    refused = fakes.settings.var_dir / "refused" / model_name(training_fingerprint(fakes.settings))
    assert not list(models_dir(fakes.settings).glob(f"*{training_fingerprint(fakes.settings)}*"))
    assert [p.name for p in refused.parent.glob("*.tar.gz")] == [fakes.checked[-1]]
    assert json.loads(record_path(refused.parent / fakes.checked[-1]).read_text())["passed"] is False
    assert "NOT SERVING the model for the current data: dev eval failed: intent goodbye accuracy 40.0%" in fakes.said
    assert f"Serving the last model that passed the checks instead: {good.name}" in fakes.said
    assert "What to do:" in fakes.said

    # The next start with the same data says so at once: no training, no checks again.
    trained, checked = len(fakes.trained), len(fakes.checked)
    fakes.lines.clear()
    assert fakes.serve() == good
    assert (len(fakes.trained), len(fakes.checked)) == (trained, checked)
    assert "NOT SERVING" in fakes.said

    # The lead fixes the data: a new model is trained, checked and, passing, serves.
    fakes.fail_with = ""
    add_phrasing(fakes.settings, "a gift card for my niece")
    fixed = fakes.serve()
    assert fixed != good and fixed.parent == models_dir(fakes.settings) and len(fakes.trained) == trained + 1


def test_with_no_model_that_passed_nothing_serves(fakes: Fakes) -> None:
    fakes.fail_with = "article accuracy 80.0% is below the floor 92.0% (12.0 points short)"
    with pytest.raises(NoCheckedModelError, match="No earlier model has passed the checks"):
        fakes.serve()
    assert not list(models_dir(fakes.settings).glob("*.tar.gz"))


def test_an_unchecked_model_is_checked_once_and_again_when_the_floors_change(fakes: Fakes) -> None:
    # A model trained by `make train` (or before this release): it matches the data but has no record.
    folder = models_dir(fakes.settings)
    folder.mkdir(parents=True, exist_ok=True)
    unchecked = folder / model_name(training_fingerprint(fakes.settings))
    unchecked.write_bytes(b"a model")
    assert fakes.serve() == unchecked and fakes.trained == [] and fakes.checked == [unchecked.name]
    assert fakes.serve() == unchecked and len(fakes.checked) == 1
    # Raised floors: the serving model must pass them too.
    floors = fakes.settings.resolved_eval_floors_file()
    floors.write_text(floors.read_text().replace("article_accuracy_min: 0.92", "article_accuracy_min: 0.93"))
    assert fakes.serve() == unchecked and len(fakes.checked) == 2


def test_a_record_is_written_atomically_beside_its_model(tmp_path: Path) -> None:
    model = tmp_path / "20261130-000000-0123456789abcdef.tar.gz"
    model.write_bytes(b"m")
    report = CheckReport(model=model.name, checks=(CheckResult("kb", "knowledge base check", "failed", "2 problems"),))
    path = write_record(model, report)
    assert path == tmp_path / "20261130-000000-0123456789abcdef.checks.json"
    record = read_record(model)
    assert record is not None and record["passed"] is False and record["failed_check"] == "kb"
    assert "kb check" in record["advice"] and not list(tmp_path.glob(".*part"))

"""The Rasa project works as Rasa users expect: validate, importer, test stories."""
from __future__ import annotations

import subprocess
from pathlib import Path

from rasa.shared.importers.importer import TrainingDataImporter

from bot.kb.articles import load_articles
from bot.settings import PROJECT_ROOT, Settings
from bot.training.models import rasa_executable


def rasa(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [rasa_executable(), *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_rasa_reads_every_article_from_kb_as_a_retrieval_intent(project_settings: Settings) -> None:
    importer = TrainingDataImporter.load_from_config(
        str(PROJECT_ROOT / "config.yml"), str(PROJECT_ROOT / "domain.yml"), [str(PROJECT_ROOT / "data")]
    )
    nlu = importer.get_nlu_data()
    articles = load_articles(project_settings.kb_dir)
    keys = {m.get("intent_response_key") for m in nlu.intent_examples if m.get("intent") == "faq"}
    assert keys == {f"faq/{a.id}" for a in articles}
    assert set(nlu.responses) >= {f"utter_faq/{a.id}" for a in articles}
    assert "faq" in importer.get_domain().retrieval_intents


def test_rasa_data_validate_passes() -> None:
    result = rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_test_stories_pass_with_the_trained_model(trained_model: Path, tmp_path: Path) -> None:
    result = rasa(
        "test", "core", "--model", str(trained_model), "--stories", "tests/stories",
        "--fail-on-prediction-errors", "--out", str(tmp_path / "results"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

"""Models in models/: reused when the training data did not change, trained when it did, only a few kept."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.training.models import (
    all_models,
    ensure_model,
    matching_model,
    model_name,
    models_dir,
    prune_models,
    training_fingerprint,
)
from tests.conftest import project_copy_settings


@pytest.fixture
def copy_settings(project_copy: Path, project_settings: Settings) -> Settings:
    return project_copy_settings(project_copy, project_settings)


def article(settings: Settings, article_id: str) -> Path:
    return next(settings.kb_dir.glob(f"**/{article_id}.md"))


def fake_model(folder: Path, fingerprint: str, age_seconds: float) -> Path:
    """An archive named as a training would name it, ``age_seconds`` old."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / model_name(fingerprint, now=1_700_000_000 - age_seconds)
    path.write_bytes(b"not a real model")
    stamp = path.stat().st_mtime - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_the_fingerprint_follows_what_training_reads_and_ignores_answers(copy_settings: Settings) -> None:
    before = training_fingerprint(copy_settings)
    assert training_fingerprint(copy_settings) == before, "the same files give the same fingerprint"

    path = article(copy_settings, "gift-cards-promo")
    original = path.read_text()
    head, _, _body = original.partition("\n---\n")
    path.write_text(f"{head}\n---\nA new answer text: served from kb/ at run time, no training needed.\n")
    assert training_fingerprint(copy_settings) == before

    path.write_text(original.replace("questions:\n", "questions:\n  - can i pay with a voucher from the shop\n", 1))
    assert training_fingerprint(copy_settings) != before

    path.write_text(original)
    nlu = copy_settings.project_root / "data" / "nlu" / "chitchat.yml"
    nlu.write_text(nlu.read_text() + "\n")
    assert training_fingerprint(copy_settings) != before


def test_a_start_with_unchanged_data_reuses_the_newest_matching_model_without_training(copy_settings: Settings) -> None:
    folder = models_dir(copy_settings)
    fingerprint = training_fingerprint(copy_settings)
    older = fake_model(folder, fingerprint, age_seconds=600)
    newer = fake_model(folder, fingerprint, age_seconds=300)
    other = fake_model(folder, "0" * 16, age_seconds=10)
    assert matching_model(folder, fingerprint) == newer
    # No `rasa train` can run in this copy in the time of a unit test: reuse means no training.
    assert ensure_model(copy_settings) == newer
    assert all_models(folder)[-1] == newer, "the model in use becomes the newest"
    assert {older, other} <= set(all_models(folder))


def test_only_the_newest_models_are_kept_and_never_the_one_in_use(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    models = [fake_model(folder, f"{n:016x}", age_seconds=1000 - n * 100) for n in range(6)]
    in_use = models[0]  # the oldest
    deleted = prune_models(folder, keep=3, protect=[in_use])
    assert set(deleted) == set(models[1:3])
    assert set(all_models(folder)) == {in_use, *models[3:]}
    assert prune_models(folder, keep=0) and len(all_models(folder)) == 1, "at least one model always stays"


def test_ensure_model_prunes_to_the_setting(copy_settings: Settings) -> None:
    folder = models_dir(copy_settings)
    for n in range(5):
        fake_model(folder, f"{n:016x}", age_seconds=1000 - n)
    current = fake_model(folder, training_fingerprint(copy_settings), age_seconds=2000)
    ensure_model(copy_settings.copy(update={"models_to_keep": 2}))
    assert len(all_models(folder)) == 2 and current in all_models(folder)

"""Trained models in models/: reuse the one that matches the training data, train only when none does, keep a few.

``rasa train`` writes a new ~140 MB archive on every call, even when every
component comes from its cache. Deskmate names each model after a
fingerprint of everything training reads (``training_fingerprint``), so a
start with unchanged data reuses the newest model of that fingerprint at
once, and keeps only the newest ``settings.models_to_keep`` archives.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional

from bot.kb.articles import load_articles
from bot.settings import Settings

logger = logging.getLogger(__name__)

# What a model's name looks like: <UTC time>-<fingerprint>.tar.gz (Rasa's own names have no fingerprint).
MODEL_NAME = re.compile(r"^(?P<stamp>\d{8}-\d{6})-(?P<fingerprint>[0-9a-f]{16})\.tar\.gz$")
FINGERPRINT_CHARS = 16
# Code that shapes what `rasa train` produces, besides the data and the configuration.
TRAINING_CODE = ("bot/rasa_plugins/kb_importer.py", "bot/nlu/spacy_pipeline.py")


class TrainingError(RuntimeError):
    """`rasa train` failed, or left no model."""


def rasa_executable() -> str:
    """The ``rasa`` command of this virtual environment."""
    candidate = Path(sys.executable).with_name("rasa")
    return str(candidate) if candidate.exists() else "rasa"


def _files(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def training_fingerprint(settings: Settings) -> str:
    """A hex digest (16 chars) of everything `rasa train` reads for this project.

    config.yml, domain.yml, every file under data/, the knowledge base as the
    importer reads it (each article's id, title and questions: an answer's
    text is served from kb/ at run time and needs no training), the spaCy
    pipeline's entity patterns, the code in ``TRAINING_CODE`` and the Rasa
    version. Raises OSError when a file cannot be read, ArticleFormatError
    for a broken article.
    """
    import rasa

    root = settings.project_root
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("rasa", rasa.__version__.encode())
    for name in ("config.yml", "domain.yml"):
        add(name, (root / name).read_bytes())
    for path in _files(root / "data"):
        add(f"data/{path.relative_to(root / 'data')}", path.read_bytes())
    articles = sorted(load_articles(settings.kb_dir), key=lambda a: a.id)
    add("kb", json.dumps([[a.id, a.title, list(a.questions)] for a in articles]).encode())
    add("entity_patterns", settings.entity_patterns_file.read_bytes())
    code_root = Path(__file__).resolve().parent.parent.parent
    for name in TRAINING_CODE:
        add(name, (code_root / name).read_bytes())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def models_dir(settings: Settings) -> Path:
    """Where trained models live (``models/`` in the project)."""
    return settings.project_root / "models"


def model_name(fingerprint: str, now: Optional[float] = None) -> str:
    """The archive name of a model trained now for ``fingerprint``: ``<UTC time>-<fingerprint>.tar.gz``."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{fingerprint}.tar.gz"


def all_models(folder: Path) -> List[Path]:
    """Every model archive in ``folder``, oldest first (by modification time)."""
    return sorted(folder.glob("*.tar.gz"), key=lambda p: (p.stat().st_mtime, p.name)) if folder.is_dir() else []


def matching_model(folder: Path, fingerprint: str) -> Optional[Path]:
    """The newest model in ``folder`` trained for ``fingerprint``, if any."""
    matches = [p for p in all_models(folder) if (m := MODEL_NAME.match(p.name)) and m["fingerprint"] == fingerprint]
    return matches[-1] if matches else None


def latest_model(settings: Settings) -> Path:
    """The newest trained model under models/; raises TrainingError when there is none."""
    models = all_models(models_dir(settings))
    if not models:
        raise TrainingError("no trained model in models/: run `python -m bot train` (or `make run`)")
    return models[-1]


def prune_models(folder: Path, keep: int, protect: Iterable[Path] = ()) -> List[Path]:
    """Delete all but the newest ``keep`` (>= 1) models of ``folder`` (never one in ``protect``); the deleted."""
    protected = {p.resolve() for p in protect}
    models = all_models(folder)
    deleted = []
    for old in models[: max(0, len(models) - max(1, keep))]:
        if old.resolve() not in protected:
            old.unlink(missing_ok=True)
            deleted.append(old)
    return deleted


def train(settings: Settings, out_dir: Path, fingerprint: str, extra_args: Iterable[str] = ()) -> Path:
    """``rasa train`` into ``out_dir`` as ``<time>-<fingerprint>.tar.gz``; the model. Raises TrainingError.

    Rasa's cache under the project restores every component whose inputs did not change.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    name = model_name(fingerprint)
    command = [rasa_executable(), "train", "--out", str(out_dir), "--fixed-model-name", name[: -len(".tar.gz")],
               *extra_args]
    result = subprocess.run(command, cwd=settings.project_root)
    model = out_dir / name
    if result.returncode != 0 or not model.is_file():
        raise TrainingError(f"`rasa train` failed with exit code {result.returncode}")
    return model


def ensure_model(settings: Settings) -> Path:
    """The model for the project's data as it is now: the newest that matches, else a new one (trained here).

    Afterwards only the newest ``settings.models_to_keep`` models stay in
    models/. Raises TrainingError, OSError (unreadable data).
    """
    folder = models_dir(settings)
    fingerprint = training_fingerprint(settings)
    model = matching_model(folder, fingerprint)
    if model is not None:
        print(f"The model {model.name} matches the training data: no training needed.", flush=True)
        model.touch()  # the newest now, for `--no-train` starts and pruning
    else:
        print(f"Training a model for the current data (fingerprint {fingerprint}) ...", flush=True)
        model = train(settings, folder, fingerprint)
    for old in prune_models(folder, settings.models_to_keep, protect=[model]):
        print(f"Removed the old model {old.name} (keeping the newest {settings.models_to_keep}).", flush=True)
    return model

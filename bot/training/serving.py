"""Only a model that passed the checks serves visitors: check records, and the model `make run` starts.

Every model that the checks (bot/training/checks.py) have judged carries a
record beside it, ``<model>.checks.json``: the CheckReport's dict, when, and
the sha256 of the eval and floors files it was judged by. A record counts
as *passed* only while those files are unchanged (raising a floor means the
serving model must pass again).

``serving_model`` is what `make run` (``python -m bot run``) starts:

1. the model in models/ that matches the training data (kb/, data/, config:
   ``training_fingerprint``) if its record passed;
2. else, when none matches, it trains one (into var/candidates/), and when
   one matches without a record of these files, it checks it (about as long
   as `make check`'s dev eval); a model that passes is recorded and moved to
   models/ and serves;
3. a model that fails is moved to var/refused/ with its record (never served,
   never picked up again: the next start with the same data says so at once
   instead of training again), and the newest model whose record passed
   serves instead, with the reason and what to do printed. With none,
   NoCheckedModelError (`make run` stops with the reason).

Retraining from the console (bot/training/retrain.py) and `python -m bot
check` on a model in models/ write the same records.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional

from bot.settings import Settings
from bot.training.checks import CheckReport, advice_for, file_sha, run_checks
from bot.training.models import (
    TrainingError,
    all_models,
    matching_model,
    models_dir,
    prune_models,
    train,
    training_fingerprint,
)

RECORD_SUFFIX = ".checks.json"
MODEL_SUFFIX = ".tar.gz"

Echo = Callable[[str], None]
Trainer = Callable[[Settings, Path, str], Path]
Checker = Callable[..., CheckReport]


class NoCheckedModelError(TrainingError):
    """No model has passed the checks with the current eval and floors files: nothing may serve."""


def record_path(model: Path) -> Path:
    """Where ``model``'s check record lives: beside it, ``<name without .tar.gz>.checks.json``."""
    name = model.name[: -len(MODEL_SUFFIX)] if model.name.endswith(MODEL_SUFFIX) else model.name
    return model.with_name(name + RECORD_SUFFIX)


def current_eval_sha(settings: Settings) -> str:
    """sha256 of the eval and floors files the checks use now ("" when one cannot be read)."""
    return file_sha(settings.resolved_eval_file(), settings.resolved_eval_floors_file())


def write_record(model: Path, report: CheckReport, now: Optional[datetime] = None) -> Path:
    """Write ``model``'s check record atomically; its path. Raises OSError."""
    path = record_path(model)
    record = {**report.as_dict(), "checked_at": (now or datetime.now(timezone.utc)).isoformat()}
    scratch = path.with_name(f".{path.name}.{os.getpid()}.part")
    scratch.write_text(json.dumps(record, indent=1))
    os.replace(scratch, path)
    return path


def read_record(model: Path) -> Optional[Dict[str, Any]]:
    """``model``'s check record, or None (none, or unreadable)."""
    try:
        data = json.loads(record_path(model).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def passed_checks(settings: Settings, model: Path) -> bool:
    """Whether ``model`` passed the checks with the eval and floors files as they are now."""
    record = read_record(model)
    sha = current_eval_sha(settings)
    return bool(record and record.get("passed") and sha and record.get("eval_sha") == sha)


def last_good_model(settings: Settings, exclude: Iterable[Path] = ()) -> Optional[Path]:
    """The newest model in models/ that passed the checks with the current files (``passed_checks``)."""
    skip = {p.resolve() for p in exclude}
    good = [m for m in all_models(models_dir(settings)) if m.resolve() not in skip and passed_checks(settings, m)]
    return good[-1] if good else None


def baseline_for(settings: Settings, exclude: Iterable[Path] = ()) -> Optional[Dict[str, Any]]:
    """The current model's record to compare a candidate with: ``{model, figures, eval_sha}``, or None."""
    model = last_good_model(settings, exclude)
    record = read_record(model) if model is not None else None
    if not record or not record.get("figures"):
        return None
    return {"model": record.get("model"), "figures": record["figures"], "eval_sha": record.get("eval_sha", "")}


def _move(model: Path, folder: Path) -> Path:
    """Move ``model`` and its record into ``folder``; the model's new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.name
    if model.resolve() != target.resolve():
        record = record_path(model)
        shutil.move(str(model), target)
        if record.exists():
            shutil.move(str(record), record_path(target))
    return target


def prune_with_records(settings: Settings, keep: Path, echo: Echo) -> None:
    """Keep the newest ``settings.models_to_keep`` models (and ``keep``); records go with their models."""
    for old in prune_models(models_dir(settings), settings.models_to_keep, protect=[keep]):
        record_path(old).unlink(missing_ok=True)
        echo(f"Removed the old model {old.name} (keeping the newest {settings.models_to_keep}).")


def serving_model(
    settings: Settings, echo: Echo = print, trainer: Trainer = train, checker: Checker = run_checks,
) -> Path:
    """The model to serve visitors now (see the module's docstring); trains and checks as needed.

    ``trainer(settings, out_dir, fingerprint)`` and ``checker(settings, model,
    baseline=...)`` default to ``rasa train`` and the real checks. Raises
    NoCheckedModelError when no model may serve, TrainingError when training
    fails, OSError for unreadable data.
    """
    folder = models_dir(settings)
    refused_dir = settings.var_dir / "refused"
    fingerprint = training_fingerprint(settings)
    sha = current_eval_sha(settings)
    candidate = matching_model(folder, fingerprint)
    if candidate is not None and passed_checks(settings, candidate):
        echo(f"The model {candidate.name} matches the training data and passed the checks: no training needed.")
        candidate.touch()  # the newest now, for `--no-train` starts and pruning
        prune_with_records(settings, candidate, echo)
        return candidate
    record: Optional[Dict[str, Any]] = None
    if candidate is not None:
        known = read_record(candidate)
        if known and sha and known.get("eval_sha") == sha:
            record = known  # judged already by these files (and refused, since it did not pass above)
    else:
        earlier = matching_model(refused_dir, fingerprint)
        earlier_record = read_record(earlier) if earlier is not None else None
        if earlier is not None and earlier_record and earlier_record.get("eval_sha") == sha:
            candidate, record = earlier, earlier_record  # refused before for this very data: say so, don't retrain
        else:
            echo(f"Training a model for the current data (fingerprint {fingerprint}) ...")
            candidate = trainer(settings, settings.var_dir / "candidates", fingerprint)
    if record is None:
        echo(f"Checking {candidate.name} before it serves (validate, kb check, test stories, dev eval) ...")
        report = checker(settings, candidate, baseline=baseline_for(settings, exclude=[candidate]))
        echo(report.format())
        write_record(candidate, report)
        record = read_record(candidate) or report.as_dict()
    if record.get("passed"):
        served = _move(candidate, folder)
        served.touch()
        prune_with_records(settings, served, echo)
        echo(f"{served.name} passed every check and serves visitors.")
        return served
    refused = _move(candidate, refused_dir)
    reason = record.get("reason") or "a check failed"
    advice = record.get("advice") or advice_for(str(record.get("failed_check") or ""))
    good = last_good_model(settings)
    if good is None:
        raise NoCheckedModelError(
            f"the model for the current data ({refused.name}, kept in {refused_dir}) was refused: {reason}. "
            f"No earlier model has passed the checks, so none can serve. What to do: {advice}"
        )
    echo(
        f"NOT SERVING the model for the current data: {reason}.\n"
        f"  It is kept in {refused} (with its checks in {record_path(refused).name}).\n"
        f"  Serving the last model that passed the checks instead: {good.name}.\n"
        f"  What to do: {advice}"
    )
    good.touch()
    return good

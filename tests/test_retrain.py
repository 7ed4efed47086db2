"""Retraining: one job at a time; a model that breaks accuracy is refused and the old one keeps answering."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from ruamel.yaml import YAML

from bot.launcher import BotProcesses
from bot.settings import PROJECT_ROOT, Settings
from bot.store import retrain_jobs
from bot.store.database import Store, migrate
from bot.store.retrain_jobs import RetrainBusyError, finish, get_job, latest_job, start_job, update
from bot.training.serving import passed_checks, serving_model
from bot.training.retrain import TrainingProgress, start_retrain
from tests.conftest import free_port, project_copy_settings
from tests.conversation import deskmate_payloads, talk

# Both the job and `make train` read Rasa's cache of the project: unchanged components are restored, not trained.
RASA_CACHE = PROJECT_ROOT / ".rasa" / "cache"


# --- the job store: one running job at a time ------------------------------------------------


def test_only_one_job_runs_at_a_time(store: Store) -> None:
    first = start_job(store, "lead@lumio.example")
    assert (first.status, first.stage, first.progress) == ("running", "queued", 0)
    with pytest.raises(RetrainBusyError) as busy:
        start_job(store, "other-lead@lumio.example")
    assert busy.value.job is not None and busy.value.job.id == first.id
    assert f"job {first.id} is already running" in str(busy.value)

    update(store, first.id, stage="training", progress=40, detail={"message": "training DIETClassifier"})
    update(store, first.id, progress=30)  # progress never goes back
    job = get_job(store, first.id)
    assert job is not None and (job.stage, job.progress, job.detail["message"]) == ("training", 40, "training DIETClassifier")

    finish(store, first.id, "refused", detail={"reason": "dev eval failed"}, model_path="/tmp/m.tar.gz")
    second = start_job(store, "other-lead@lumio.example")
    assert second.id != first.id
    assert latest_job(store) == get_job(store, second.id)
    done = get_job(store, first.id)
    assert done is not None and (done.status, done.stage, done.model_path) == ("refused", "done", "/tmp/m.tar.gz")
    assert done.finished_at is not None and done.detail["reason"] == "dev eval failed"


def test_a_job_whose_process_died_does_not_block_the_next(store: Store) -> None:
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = start_job(store, "lead@lumio.example", detail={"pid": dead.pid, "host": socket.gethostname()})
    job = start_job(store, "lead@lumio.example")  # the orphan's process is gone: written off
    assert job.is_running
    gone = get_job(store, orphan.id)
    assert gone is not None and gone.status == "failed" and "stopped without finishing" in gone.detail["error"]

    # A job elsewhere (no pid here) that has not reported for longer than the limit is written off too.
    finish(store, job.id, "failed")
    silent = start_job(store, "lead@lumio.example", now=datetime.now(timezone.utc) - timedelta(minutes=30))
    assert latest_job(store).status == "failed"  # reading it writes it off
    assert get_job(store, silent.id).detail["error"].startswith("the job was given up")
    start_job(store, "lead@lumio.example")


def test_training_progress_follows_rasa_output() -> None:
    progress = TrainingProgress(["DIETClassifier", "ResponseSelector"])
    seen: List[Tuple[int, str]] = []
    lines = [
        "2026-11-23 21:10:21 INFO     rasa.cli.train  - Started validating domain and training data...",
        "INFO rasa.engine.training.hooks  - Restored component 'CountVectorsFeaturizer' from cache.",
        "INFO rasa.engine.training.hooks  - Starting to train component 'DIETClassifier'.",
        "Epochs:   0%|          | 0/100 [00:00<?, ?it/s]",
        "Epochs:  50%|#####     | 50/100 [00:10<00:10,  1.2s/it, t_loss=2.2, i_acc=0.99]",
        "INFO rasa.engine.training.hooks  - Finished training component 'DIETClassifier'.",
        "INFO rasa.engine.training.hooks  - Restored component 'ResponseSelector' from cache.",
        "Your Rasa model is trained and saved at '/x/models/m.tar.gz'.",
    ]
    for line in lines:
        if progress.feed(line):
            seen.append((progress.percent, progress.message))
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and percents[-1] == 100
    assert (27, "training DIETClassifier: epoch 50%") in seen  # 5 + 45 * 0.5
    assert (95, "ResponseSelector unchanged (from cache)") in seen


# --- the whole job, with real training, checks and the running test bot ----------------------


def live_status(bot: BotProcesses, settings: Settings) -> Dict[str, Any]:
    query = urllib.parse.urlencode({"token": settings.resolved_rasa_token()})
    with urllib.request.urlopen(f"{bot.rasa_url}/status?{query}", timeout=10) as response:
        return json.load(response)


def trim_eval_set(root: Path, every: int) -> int:
    """Keep every ``every``-th case of the copy's dev set (the checks' eval runs on a private bot: time)."""
    path = root / "tests" / "eval" / "dev.yml"
    data = YAML(typ="safe").load(path.read_text())
    data["cases"] = data["cases"][::every]
    path.write_text(json.dumps(data))  # JSON is YAML
    return len(data["cases"])


def wait_for_job(store: Store, job_id: int, timeout: float = 1500) -> Tuple[retrain_jobs.JobRecord, List[Tuple[str, int]]]:
    """Poll the job as the lead's page does until it ends; it and the (stage, progress) seen."""
    seen: List[Tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(store, job_id)
        assert job is not None
        if not seen or seen[-1] != (job.stage, job.progress):
            seen.append((job.stage, job.progress))
        if not job.is_running:
            return job, seen
        time.sleep(2)
    pytest.fail(f"retraining job {job_id} did not end within {timeout:.0f} s; seen {seen}")


def migrated_store(settings: Settings) -> Store:
    """The project copy's store, migrated as the gateway's start-up does (the job only writes to it)."""
    migrate(settings.resolved_database_url())
    return Store(settings.resolved_database_url())


def answers_with(settings: Settings, question: str) -> Any:
    [replies] = talk(settings, [question])
    return next((p.get("article_id") for p in deskmate_payloads(replies) if p.get("type") == "article"), None)


def test_a_change_that_breaks_accuracy_is_refused_and_the_old_model_keeps_answering(
    running_bot: BotProcesses, project_settings: Settings, project_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The change: one epoch for every classifier. Training takes seconds, accuracy collapses.
    config_path = project_copy / "config.yml"
    config_path.write_text(config_path.read_text().replace("epochs: 100", "epochs: 1"))
    assert "epochs: 100" not in config_path.read_text()
    trim_eval_set(project_copy, every=5)
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(RASA_CACHE))
    settings = project_copy_settings(project_copy, project_settings, rasa_url=running_bot.rasa_url)
    before = live_status(running_bot, settings)
    store = migrated_store(settings)
    try:
        job_id = start_retrain(settings, store, "lead@lumio.example")
        started = time.monotonic()
        job, seen = wait_for_job(store, job_id)
    finally:
        store.dispose()
    print(f"retraining job {job_id}: {job.status} after {time.monotonic() - started:.0f} s; progress seen: {seen}")

    log = (settings.var_dir / "retrain" / f"job-{job_id}.log").read_text(errors="replace")
    assert job.status == "refused", f"{job.detail}\n{log[-3000:]}"
    checks = job.detail["checks"]
    assert checks["failed_check"] == "eval"
    assert [c["status"] for c in checks["checks"]] == ["passed", "passed", "passed", "failed"]
    assert "article accuracy" in job.detail["reason"] and "below the floor 92.0%" in job.detail["reason"]
    assert checks["figures"]["article_accuracy"] < 0.92 and checks["floors"]["article_accuracy_min"] == 0.92
    assert "keeps answering" in job.detail["message"]
    stages = [stage for stage, _ in seen]
    assert "training" in stages and any(stage.startswith("checking: dev eval") for stage in stages)
    assert [p for _, p in seen] == sorted(p for _, p in seen)

    # The refused model is not where the next start looks, and the live bot still runs the old one.
    assert not list((project_copy / "models").glob("*.tar.gz"))
    assert Path(job.model_path).parent == settings.var_dir / "retrain" / f"job-{job_id}"
    after = live_status(running_bot, settings)
    assert (after["model_file"], after["model_id"]) == (before["model_file"], before["model_id"])
    assert answers_with(settings, "you took my money twice this month") == "double-charge"


def parse(bot: BotProcesses, settings: Settings, text: str) -> Dict[str, Any]:
    query = urllib.parse.urlencode({"token": settings.resolved_rasa_token()})
    request = urllib.request.Request(
        f"{bot.rasa_url}/model/parse?{query}", data=json.dumps({"text": text}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_a_job_that_passes_is_loaded_into_the_running_bot(
    project_settings: Settings, project_copy: Path, trained_model: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loading path, cheaply: one epoch (seconds to train) and the copy's floors lowered so that it passes.

    The live server is a Rasa server of its own (started from the project's
    model), so the session's test bot never serves the weak model.
    """
    config_path = project_copy / "config.yml"
    config_path.write_text(config_path.read_text().replace("epochs: 100", "epochs: 1"))
    floors = project_copy / "tests" / "eval" / "floors.yml"
    floors.write_text(
        "\n".join(f"{key}: {1.0 if key.endswith('_max') else 0.0}" for key in (
            "article_accuracy_min", "wrong_answer_rate_max", "none_accuracy_min", "intent_accuracy_min",
            "per_intent_accuracy_min", "handoff_accuracy_min",
        )) + "\n"
    )
    trim_eval_set(project_copy, every=25)
    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(RASA_CACHE))
    live = BotProcesses(
        project_settings.copy(update={"tracker_database_url": f"sqlite:///{tmp_path / 'live-tracker.db'}"}),
        rasa_port=free_port(), action_port=free_port(), log_dir=tmp_path / "live-logs",
    )
    store = None
    try:
        live.start_rasa(trained_model)
        settings = project_copy_settings(project_copy, project_settings, rasa_url=live.rasa_url)
        store = migrated_store(settings)
        job_id = start_retrain(settings, store, "lead@lumio.example")
        started = time.monotonic()
        live.wait_ready()
        before = live_status(live, settings)
        assert before["model_file"] == trained_model.name
        job, seen = wait_for_job(store, job_id)
        print(f"retraining job {job_id}: {job.status} after {time.monotonic() - started:.0f} s; progress seen: {seen}")

        log = (settings.var_dir / "retrain" / f"job-{job_id}.log").read_text(errors="replace")
        assert job.status == "loaded", f"{job.detail}\n{log[-3000:]}"
        assert job.progress == 100 and job.detail["checks"]["passed"]
        assert [c["status"] for c in job.detail["checks"]["checks"]] == ["passed"] * 4
        installed = Path(job.model_path)
        assert installed.parent == project_copy / "models" and installed.is_file()
        assert not list((settings.var_dir / "retrain" / f"job-{job_id}").glob("*.tar.gz"))  # moved, not kept twice
        after = live_status(live, settings)
        assert after["model_file"] == installed.name != before["model_file"]
        assert job.detail["live"]["model_id"] == after["model_id"] != before["model_id"]
        assert parse(live, settings, "hello")["intent"]["name"]  # the new model answers
        assert "now answering" in job.detail["message"]
        # Recorded as checked: the next `make run` serves it without checking it again (bot/training/serving.py).
        assert passed_checks(settings, installed) and serving_model(settings, echo=lambda line: None) == installed
    finally:
        if store is not None:
            store.dispose()
        live.stop()

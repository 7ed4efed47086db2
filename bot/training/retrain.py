"""Retraining: train a candidate model, check it, and load it into the running bot only if it passes.

``start_retrain`` (the gateway's "retrain" button) records a job and starts
``python -m bot retrain --job ID`` as a detached process (own session, log in
var/retrain/job-ID.log): the gateway never waits for it, and the job goes on
if the gateway restarts. ``python -m bot retrain`` runs a job in the
foreground. Either way ``run_job`` does the work:

1. ``rasa train --out var/retrain/job-ID/`` (a candidate folder, so a refused
   model is never picked up by ``latest_model`` at the next start; Rasa's
   cache under the project restores every component whose data and config
   did not change), its progress read from Rasa's output;
2. ``run_checks`` on the candidate (bot/training/checks.py);
3. refused: the job says which check failed and why, and the old model keeps
   serving; passed: the model is copied into models/, loaded into the
   running Rasa server (``PUT /model``), and ``GET /status`` must then report
   the new model's file and id.

The job always ends "loaded", "refused" or "failed" (with the error), and
refreshes its row every 30 s while it runs, so a job whose process died is
written off (bot/store/retrain_jobs.py) instead of blocking retraining forever.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ruamel.yaml import YAML

from bot.rasa_client import BotUnavailableError, RasaClient
from bot.settings import Settings
from bot.store import retrain_jobs
from bot.store.database import Store
from bot.store.retrain_jobs import HEARTBEAT_SECONDS, JobRecord
from bot.training.checks import ANSI, CHECK_TITLES, CheckReport, run_checks
from bot.training.environment import CODE_ROOT, child_env
from bot.training.serving import baseline_for, prune_with_records, write_record
from bot.training.models import (
    TrainingError,
    matching_model,
    model_name,
    models_dir,
    rasa_executable,
    training_fingerprint,
)

logger = logging.getLogger(__name__)

# The job's progress bar: training 0-60 %, the checks 60-95 %, loading 95-100 %.
TRAIN_SPAN = (0, 60)
CHECK_SPAN = (60, 95)
# Rasa components trained for a number of epochs (the long part of a training).
EPOCH_COMPONENTS = {"DIETClassifier", "ResponseSelector", "TEDPolicy", "UnexpecTEDIntentPolicy"}
KEEP_JOB_DIRS = 3

Echo = Callable[[str], None]


class LoadError(RuntimeError):
    """The running Rasa server did not take the new model."""


def job_dir(settings: Settings, job_id: int) -> Path:
    """Where job ``job_id`` trains its candidate model and keeps its checks' logs."""
    return settings.var_dir / "retrain" / f"job-{job_id}"


def job_log(settings: Settings, job_id: int) -> Path:
    """The detached job process's output."""
    return settings.var_dir / "retrain" / f"job-{job_id}.log"


def epoch_components(config_file: Path) -> List[str]:
    """The components of config.yml that train for epochs, in training order."""
    try:
        config = YAML(typ="safe").load(config_file.read_text()) or {}
    except OSError:
        return []
    names = [str(item.get("name")) for key in ("pipeline", "policies") for item in (config.get(key) or []) if isinstance(item, dict)]
    return [name for name in names if name in EPOCH_COMPONENTS]


class TrainingProgress:
    """Reads Rasa's training output line by line and estimates how far it is (0-100).

    Rasa logs "Starting to train component 'X'", "Restored component 'X' from
    cache" and "Finished training component 'X'"; DIETClassifier,
    ResponseSelector and TEDPolicy draw a tqdm bar "Epochs:  42%|...". Those
    components take nearly all of the time: each gets an equal share of 5-95 %.
    """

    COMPONENT = re.compile(r"(Starting to train|Finished training|Restored) component '(\w+)'")
    EPOCHS = re.compile(r"Epochs:\s+(\d+)%")

    def __init__(self, components: List[str]) -> None:
        self.components = components
        self.current: Optional[str] = None
        self.percent = 0
        self.message = "starting"

    def _span(self, name: str) -> Tuple[float, float]:
        share = 90 / len(self.components)
        index = self.components.index(name)
        return 5 + share * index, 5 + share * (index + 1)

    def feed(self, line: str) -> bool:
        """Read one line; whether the estimate or message changed."""
        before = (self.percent, self.message)
        if "Started validating domain and training data" in line:
            self.percent, self.message = max(self.percent, 1), "reading the training data"
        match = self.COMPONENT.search(line)
        if match:
            event, name = match.groups()
            self.current = name if event.startswith("Starting") else None
            if event.startswith("Starting"):
                self.message = f"training {name}"
            elif event == "Restored":
                self.message = f"{name} unchanged (from cache)"
            if name in self.components:
                start, end = self._span(name)
                self.percent = max(self.percent, int(start if event.startswith("Starting") else end))
        epochs = self.EPOCHS.search(line)
        if epochs and self.current in self.components:
            start, end = self._span(self.current)
            fraction = int(epochs.group(1)) / 100
            self.percent = max(self.percent, int(start + (end - start) * fraction))
            self.message = f"training {self.current}: epoch {epochs.group(1)}%"
        if "Your Rasa model is trained and saved" in line:
            self.percent, self.message = 100, "model saved"
        return (self.percent, self.message) != before


def train_candidate(settings: Settings, out_dir: Path, on_progress: Callable[[int, str], None]) -> Path:
    """``rasa train --out out_dir`` in the project, named after its training fingerprint; the new model.

    Raises TrainingError.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "train.log"
    parser = TrainingProgress(epoch_components(settings.project_root / "config.yml"))
    name = model_name(training_fingerprint(settings))
    process = subprocess.Popen(
        [rasa_executable(), "train", "--out", str(out_dir), "--fixed-model-name", name[: -len(".tar.gz")]],
        cwd=settings.project_root, env=child_env(settings),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    tail: List[str] = []
    pending = ""
    try:
        with log_path.open("wb") as log:
            while True:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                # tqdm redraws its bar with carriage returns: each redraw is a line here.
                parts = re.split(r"[\r\n]", pending + chunk.decode("utf-8", errors="replace"))
                pending = parts.pop()
                for line in parts:
                    clean = ANSI.sub("", line)
                    if clean.strip() and "Epochs:" not in clean:
                        tail = (tail + [clean.strip()])[-40:]
                    if parser.feed(clean):
                        on_progress(parser.percent, parser.message)
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        hits = [line for line in tail if "ERROR" in line or "Error" in line] or tail[-1:]
        raise TrainingError(f"`rasa train` failed (exit code {code}): {hits[-1][:300] if hits else 'no output'} (log: {log_path})")
    model = out_dir / name
    if not model.is_file():
        raise TrainingError(f"`rasa train` wrote no model into {out_dir} (log: {log_path})")
    return model


def model_id(model: Path) -> Optional[str]:
    """The id Rasa gave the model at training (``model_id`` in its metadata.json), which /status reports."""
    with tarfile.open(model, "r:gz") as archive:
        for member in archive.getmembers():
            if member.name.lstrip("./") == "metadata.json":
                handle = archive.extractfile(member)
                if handle is not None:
                    return json.load(handle).get("model_id")
    return None


def load_into_server(settings: Settings, model: Path, timeout: float = 900.0) -> Optional[Dict[str, Any]]:
    """Have every running Rasa server (``settings.rasa_urls()``) replace its model with ``model``;
    the first one's /status afterwards.

    None when no Rasa server answers (nothing to load into); a server that
    does not answer is skipped (it loads the newest model when it starts).
    Raises LoadError when a server refuses the model or then reports another one.
    """

    async def load(url: str) -> Optional[Dict[str, Any]]:
        async with RasaClient(url, settings.resolved_rasa_token(), timeout_seconds=10) as client:
            try:
                await client.status()
            except BotUnavailableError:
                return None
            try:
                await client.load_model(model, timeout_seconds=timeout)
                return await client.status()
            except BotUnavailableError as error:
                raise LoadError(f"the Rasa server at {url} did not take the model: {error}") from error

    expected = model_id(model)
    first: Optional[Dict[str, Any]] = None
    for url in settings.rasa_urls():
        live = asyncio.run(load(url))
        if live is None:
            continue
        if live.get("model_file") != model.name or (expected and live.get("model_id") != expected):
            raise LoadError(
                f"the Rasa server at {url} reports model {live.get('model_file')} ({live.get('model_id')}), "
                f"not {model.name} ({expected})"
            )
        first = first or live
    return first


def install_model(settings: Settings, candidate: Path) -> Path:
    """Copy the candidate into models/ (atomically, newest there), where ``latest_model`` finds it."""
    models = models_dir(settings)
    models.mkdir(parents=True, exist_ok=True)
    target = models / candidate.name
    scratch = models / f".{candidate.name}.{os.getpid()}.part"
    shutil.copyfile(candidate, scratch)
    os.replace(scratch, target)
    return target


def _prune_job_dirs(settings: Settings, keep: int = KEEP_JOB_DIRS) -> None:
    """Keep the candidate folders of the last ``keep`` jobs (a refused model stays there to look at)."""
    root = settings.var_dir / "retrain"
    dirs = sorted(
        (p for p in root.glob("job-*") if p.is_dir() and p.name[4:].isdigit()), key=lambda p: int(p.name[4:])
    )
    for old in dirs[: max(0, len(dirs) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


class _Heartbeat(threading.Thread):
    """Refreshes the job's row while it runs, so that it is not taken for dead."""

    def __init__(self, store: Store, job_id: int) -> None:
        super().__init__(daemon=True, name=f"retrain-heartbeat-{job_id}")
        self._store = store
        self._job_id = job_id
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(HEARTBEAT_SECONDS):
            try:
                retrain_jobs.update(self._store, self._job_id)
            except Exception:  # the next beat tries again
                logger.warning("retrain: heartbeat of job %s failed", self._job_id, exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()


class _Reporter:
    """Writes stage and progress to the job's row (at most once a second) and echoes them."""

    def __init__(self, store: Store, job_id: int, echo: Optional[Echo]) -> None:
        self.store = store
        self.job_id = job_id
        self.echo = echo
        self._last: Tuple[Optional[str], int, Optional[str]] = (None, -1, None)
        self._last_write = 0.0

    def __call__(self, stage: str, progress: int, message: str, force: bool = False) -> None:
        if (stage, progress, message) == self._last:
            return
        changed_stage = stage != self._last[0]
        if self.echo and (changed_stage or progress != self._last[1]):
            self.echo(f"[{progress:3d}%] {stage}: {message}")
        self._last = (stage, progress, message)
        now = time.monotonic()
        if force or changed_stage or now - self._last_write >= 1.0:
            self._last_write = now
            retrain_jobs.update(self.store, self.job_id, stage=stage, progress=progress, detail={"message": message})


def _scale(span: Tuple[int, int], percent: int) -> int:
    return int(span[0] + (span[1] - span[0]) * percent / 100)


def run_job(settings: Settings, store: Store, job_id: int, echo: Optional[Echo] = None) -> JobRecord:
    """Do retraining job ``job_id`` (already started with ``start_job``); the finished job."""
    work = job_dir(settings, job_id)
    report = _Reporter(store, job_id, echo)
    heartbeat = _Heartbeat(store, job_id)
    final: Optional[JobRecord] = None
    retrain_jobs.update(store, job_id, stage="starting", detail={"pid": os.getpid(), "host": socket.gethostname(), "dir": str(work)}
    )
    heartbeat.start()
    try:
        _prune_job_dirs(settings)
        # Nothing changed since a model was trained: check that one instead of training an identical twin.
        existing = matching_model(models_dir(settings), training_fingerprint(settings))
        if existing is not None:
            candidate = existing
            report("training", TRAIN_SPAN[1], f"the training data has not changed: checking {existing.name}", force=True)
        else:
            candidate = train_candidate(
                settings, work, lambda percent, message: report("training", _scale(TRAIN_SPAN, percent), message)
            )
            report("training", TRAIN_SPAN[1], f"trained {candidate.name}", force=True)

        def on_check(name: str, percent: int, message: str) -> None:
            report(f"checking: {CHECK_TITLES[name]}", _scale(CHECK_SPAN, percent), message)

        # The current model's figures beside the candidate's (and for the per-intent rule).
        baseline = baseline_for(settings, exclude=[candidate])
        checks: CheckReport = run_checks(settings, candidate, progress=on_check, work_dir=work / "check", baseline=baseline)
        if echo:
            echo(checks.format())
        if not checks.passed:
            final = retrain_jobs.finish(
                store, job_id, "refused",
                detail={
                    "checks": checks.as_dict(),
                    "reason": checks.reason,
                    "message": f"Not loaded: {checks.reason}. The current model keeps answering.",
                    "current_model": baseline.get("model") if baseline else None,
                },
                model_path=str(candidate),
            )
            return final
        report("loading", CHECK_SPAN[1], "copying the model into models/ and loading it into the running bot", force=True)
        installed = candidate if existing is not None else install_model(settings, candidate)
        write_record(installed, checks)  # `make run` serves it without checking it again
        try:
            live = load_into_server(settings, installed)
        except BaseException:
            if existing is None:
                installed.unlink(missing_ok=True)  # a model the server would not take must not start next time either
            raise
        if live is None:
            message = (
                f"{installed.name} passed every check and is in models/; no Rasa server answered at "
                f"{', '.join(settings.rasa_urls())}, so the bot uses it from its next start."
            )
        else:
            message = f"{installed.name} passed every check and is now answering."
        shutil.rmtree(work / "check", ignore_errors=True)
        if existing is None:
            candidate.unlink(missing_ok=True)  # the copy in models/ is the model now
        prune_with_records(settings, installed, echo=lambda line: None)
        final = retrain_jobs.finish(
            store, job_id, "loaded",
            detail={"checks": checks.as_dict(), "live": live, "message": message},
            model_path=str(installed),
        )
        return final
    except BaseException as error:
        what = "stopped" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "failed"
        logger.exception("retrain: job %s %s", job_id, what)
        final = retrain_jobs.finish(
            store, job_id, "failed",
            detail={"error": f"{type(error).__name__}: {error}", "message": f"Retraining {what}: {error}. The current model keeps answering."},
        )
        if isinstance(error, Exception):
            return final
        raise
    finally:
        heartbeat.stop()
        if final is None:  # pragma: no cover (every path above finishes the job)
            retrain_jobs.finish(store, job_id, "failed", detail={"error": "the job ended without a result"})
        if echo and final is not None:
            echo(f"job {job_id}: {final.status}: {final.detail.get('message', '')}")


def start_retrain(settings: Settings, store: Store, requested_by: str) -> int:
    """Record a retraining job and start it in a detached process; its id.

    Raises RetrainBusyError when a job is already running. Returns at once:
    follow the job with ``get_job(store, id)`` / ``latest_job(store)``.
    """
    job = retrain_jobs.start_job(store, requested_by)
    log = job_log(settings, job.id)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "retrain", "--job", str(job.id)],
                cwd=CODE_ROOT,
                env=child_env(settings),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped with the gateway's process group
                close_fds=True,
            )
    except BaseException as error:
        retrain_jobs.finish(store, job.id, "failed", detail={"error": f"could not start the job: {error}"})
        raise
    # Reap it when it ends, so that a finished job leaves no zombie behind.
    threading.Thread(target=process.wait, daemon=True, name=f"retrain-wait-{job.id}").start()
    retrain_jobs.update(store, job.id, detail={"pid": process.pid, "host": socket.gethostname(), "log": str(log)})
    return job.id


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that a stopped job still records its end."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, handler)

"""Retraining jobs: one row per "retrain" a lead asked for, and what became of it.

At most one job is "running" at a time, across every process and host: the
database refuses a second running row (a partial unique index), and
``start_job`` turns that refusal into RetrainBusyError. A job whose process
died without finishing (its pid is gone on this host, or it has not updated
its row for ``stale_after``) no longer counts as running: the next
``start_job`` (or a read of it) marks it "failed" and the new one starts.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.database import Store, StoreError, store_errors
from bot.store.models import RETRAIN_STATUSES, RetrainJob

logger = logging.getLogger(__name__)

FINAL_STATUSES = tuple(s for s in RETRAIN_STATUSES if s != "running")
# A running job's process refreshes its row at least this often (see bot/training/retrain.py).
HEARTBEAT_SECONDS = 30.0
# A running row not refreshed for this long belongs to a dead (or hung) process.
DEFAULT_STALE_AFTER = timedelta(minutes=5)


class RetrainBusyError(StoreError):
    """Another retraining job is running; ``job`` is that job."""

    def __init__(self, job: Optional["JobRecord"]) -> None:
        self.job = job
        if job is None:
            super().__init__("another retraining job is running")
        else:
            super().__init__(
                f"retraining job {job.id} is already running ({job.stage}, {job.progress}%, "
                f"asked for by {job.requested_by})"
            )


class JobNotFoundError(StoreError, LookupError):
    """No retraining job has that id."""


@dataclass(frozen=True)
class JobRecord:
    """A stored retraining job (a plain copy: no database session behind it)."""

    id: int
    status: str
    stage: str
    progress: int
    detail: Dict[str, Any]
    model_path: Optional[str]
    requested_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: Optional[datetime]

    @property
    def is_running(self) -> bool:
        return self.status == "running"


def _record(row: RetrainJob) -> JobRecord:
    return JobRecord(
        id=row.id,
        status=row.status,
        stage=row.stage,
        progress=row.progress,
        detail=dict(row.detail or {}),
        model_path=row.model_path,
        requested_by=row.requested_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # "pid (comm) S ...": the state follows the last ')'.
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale_reason(job: JobRecord, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER) -> Optional[str]:
    """Why a running job is dead and may be written off, or None while it may still be alive."""
    if not job.is_running:
        return None
    pid = job.detail.get("pid")
    if isinstance(pid, int) and job.detail.get("host") == socket.gethostname() and not pid_alive(pid):
        return f"its process ({pid}) stopped without finishing"
    if now - job.updated_at > stale_after:
        return f"its process has not reported for {int((now - job.updated_at).total_seconds() // 60)} minutes"
    return None


def _running_row(session: Session) -> Optional[RetrainJob]:
    return session.scalars(select(RetrainJob).where(RetrainJob.status == "running")).first()


def reap_stale(store: Store, stale_after: timedelta = DEFAULT_STALE_AFTER) -> Optional[JobRecord]:
    """Mark the running job "failed" when its process is dead; that job (as now stored), else None."""
    now = _now()
    with store_errors("check the running retraining job"), store.session() as session, session.begin():
        row = _running_row(session)
        if row is None:
            return None
        reason = stale_reason(_record(row), now, stale_after)
        if reason is None:
            return None
        row.status = "failed"
        row.detail = {**(row.detail or {}), "error": f"the job was given up: {reason}"}
        row.updated_at = now
        row.finished_at = now
        session.flush()
        record = _record(row)
    logger.warning("store: retraining job %s marked failed: %s", record.id, reason)
    return record


def start_job(
    store: Store,
    requested_by: str,
    now: Optional[datetime] = None,
    detail: Optional[Mapping[str, Any]] = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> JobRecord:
    """Insert a new "running" job (stage "queued", progress 0).

    Raises RetrainBusyError when another job is running (the database's
    unique index decides, so this holds across processes), after first
    writing off a running job whose process is dead.
    """
    if not requested_by.strip():
        raise ValueError("requested_by is empty")
    now = now or _now()
    for attempt in range(2):
        with store_errors("start a retraining job"):
            try:
                with store.session() as session, session.begin():
                    row = RetrainJob(
                        status="running", stage="queued", progress=0, detail=dict(detail or {}),
                        model_path=None, requested_by=requested_by, created_at=now, updated_at=now,
                    )
                    session.add(row)
                    session.flush()
                    record = _record(row)
            except IntegrityError:
                # Another job is running: unless its process is dead (then written off, and one more try).
                if attempt == 0 and reap_stale(store, stale_after) is not None:
                    continue
                with store.session() as session:
                    running = _running_row(session)
                    raise RetrainBusyError(_record(running) if running is not None else None) from None
        logger.info("store: retraining job %s started by %s", record.id, requested_by)
        return record
    raise AssertionError("unreachable")  # pragma: no cover


def update(
    store: Store,
    job_id: int,
    stage: Optional[str] = None,
    progress: Optional[int] = None,
    detail: Optional[Mapping[str, Any]] = None,
) -> JobRecord:
    """Record a running job's stage, progress (0-100, never going back) and ``detail`` keys (merged in).

    With no argument it only refreshes ``updated_at`` (the heartbeat).
    """
    with store_errors("update a retraining job"), store.session() as session, session.begin():
        row = session.get(RetrainJob, job_id)
        if row is None:
            raise JobNotFoundError(f"no retraining job {job_id}")
        if stage is not None:
            row.stage = stage[:40]
        if progress is not None:
            row.progress = max(row.progress, min(100, max(0, int(progress))))
        if detail:
            row.detail = {**(row.detail or {}), **dict(detail)}
        row.updated_at = _now()
        session.flush()
        return _record(row)


def finish(
    store: Store,
    job_id: int,
    status: str,
    detail: Optional[Mapping[str, Any]] = None,
    model_path: Optional[str] = None,
) -> JobRecord:
    """End a job: ``status`` loaded, refused or failed; ``detail`` keys are merged in."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(FINAL_STATUSES)}, got {status!r}")
    now = _now()
    with store_errors("finish a retraining job"), store.session() as session, session.begin():
        row = session.get(RetrainJob, job_id)
        if row is None:
            raise JobNotFoundError(f"no retraining job {job_id}")
        if row.status != "running":
            logger.warning("store: retraining job %s was already %s; recording %s", job_id, row.status, status)
        row.status = status
        row.stage = "done"
        if status == "loaded":
            row.progress = 100
        if detail:
            row.detail = {**(row.detail or {}), **dict(detail)}
        if model_path is not None:
            row.model_path = model_path
        row.updated_at = now
        row.finished_at = now
        session.flush()
        record = _record(row)
    logger.info("store: retraining job %s %s", job_id, status)
    return record


def latest_job(store: Store) -> Optional[JobRecord]:
    """The newest job (running or not), or None; a running job whose process died is reported failed."""
    reap_stale(store)
    with store_errors("read the retraining jobs"), store.session() as session:
        row = session.scalars(select(RetrainJob).order_by(RetrainJob.id.desc()).limit(1)).first()
        return _record(row) if row is not None else None


def get_job(store: Store, job_id: int) -> Optional[JobRecord]:
    """Job ``job_id``, or None; a running job whose process died is reported failed."""
    reap_stale(store)
    with store_errors("read a retraining job"), store.session() as session:
        row = session.get(RetrainJob, job_id)
        return _record(row) if row is not None else None

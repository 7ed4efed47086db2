"""The checks a model must pass before it serves: `python -m bot check`, and every retraining.

In order, stopping at the first failure:

1. ``rasa data validate --fail-on-warnings`` (domain, data and the kb importer's articles);
2. the knowledge base check (``python -m bot kb check``);
3. the test stories (``rasa test core --fail-on-prediction-errors``) with the model;
4. the dev eval (tests/eval/dev.yml) against a private action server and
   Rasa server with the model, on free ports, with a temporary store seeded
   with the demo customers and a temporary tracker store, and the clock
   stopped on a Saturday morning as in the tests; its figures must reach
   the floors of tests/eval/floors.yml (the file tests/test_dev_eval.py
   asserts too; ``load_floors`` reads it for both).

Nothing is written to the real store or tracker store.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple


from bot.eval.runner import Summary
from bot.rasa_client import BotUnavailableError
from bot.settings import Settings
from bot.training.environment import child_env
from bot.yaml_files import read_yaml

# progress(check name, percent of all the checks done (0-100), a short message)
ProgressCallback = Callable[[str, int, str], None]

# (name, title, share of the checks' time where it starts, where it ends)
CHECKS: Tuple[Tuple[str, str, int, int], ...] = (
    ("validate", "rasa data validate", 0, 10),
    ("kb", "knowledge base check", 10, 12),
    ("stories", "test stories", 12, 35),
    ("eval", "dev eval", 35, 100),
)
CHECK_TITLES = {name: title for name, title, _, _ in CHECKS}

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\([0-9A-Z]")


class FloorsFileError(ValueError):
    """The floors file is missing, unreadable or not in the expected format."""


@dataclass(frozen=True)
class Floors:
    """The least (or, for wrong answers, the most) each dev eval figure may be (tests/eval/floors.yml)."""

    article_accuracy_min: float
    wrong_answer_rate_max: float
    none_accuracy_min: float
    intent_accuracy_min: float
    per_intent_accuracy_min: float
    handoff_accuracy_min: float


def load_floors(path: Path) -> Floors:
    """Read a floors file; every field is required and is a fraction between 0 and 1."""
    data = read_yaml(path, FloorsFileError, "the floors file")
    if not isinstance(data, dict):
        raise FloorsFileError(f"{path}: expected a mapping of floors")
    names = [f.name for f in fields(Floors)]
    unknown = sorted(set(data) - set(names))
    missing = [name for name in names if name not in data]
    if unknown or missing:
        raise FloorsFileError(
            f"{path}: " + "; ".join(
                part for part in (
                    unknown and f"unknown keys {', '.join(unknown)}",
                    missing and f"missing keys {', '.join(missing)}",
                ) if part
            )
        )
    values: Dict[str, float] = {}
    for name in names:
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise FloorsFileError(f"{path}: {name} must be a number between 0 and 1, got {value!r}")
        values[name] = float(value)
    return Floors(**values)


def figures_of(summary: Summary) -> Dict[str, Any]:
    """The dev eval's figures the floors speak of (None where the set has no case of that kind)."""
    return {
        "cases": summary.cases,
        "article_accuracy": summary.accuracy.get("article"),
        "wrong_answer_rate": summary.wrong_answer_rate,
        "none_accuracy": summary.accuracy.get("none"),
        "intent_accuracy": summary.accuracy.get("intent"),
        "handoff_accuracy": summary.accuracy.get("handoff"),
        "per_intent_accuracy": dict(summary.intent_accuracy),
        "needless_tickets": summary.needless_tickets,
        "p50_ms": summary.p50_ms,
        "p95_ms": summary.p95_ms,
    }


def floor_failures(summary: Summary, floors: Floors) -> List[str]:
    """One line per figure that misses its floor (empty when all pass)."""
    failures: List[str] = []

    def at_least(label: str, value: Optional[float], floor: float) -> None:
        if value is not None and value < floor:
            failures.append(f"{label} {value:.1%} is below the floor {floor:.1%}")

    at_least("article accuracy", summary.accuracy.get("article"), floors.article_accuracy_min)
    if summary.wrong_answer_rate > floors.wrong_answer_rate_max:
        failures.append(
            f"wrong-answer rate {summary.wrong_answer_rate:.1%} is above the ceiling {floors.wrong_answer_rate_max:.1%}"
        )
    at_least("none accuracy", summary.accuracy.get("none"), floors.none_accuracy_min)
    at_least("intent accuracy", summary.accuracy.get("intent"), floors.intent_accuracy_min)
    at_least("handoff accuracy", summary.accuracy.get("handoff"), floors.handoff_accuracy_min)
    weak = sorted((accuracy, intent) for intent, accuracy in summary.intent_accuracy.items()
                  if accuracy < floors.per_intent_accuracy_min)
    if len(weak) == 1:
        at_least(f"intent {weak[0][1]} accuracy", weak[0][0], floors.per_intent_accuracy_min)
    elif weak:
        named = ", ".join(f"{intent} {accuracy:.1%}" for accuracy, intent in weak[:3])
        more = f" and {len(weak) - 3} more" if len(weak) > 3 else ""
        failures.append(f"{len(weak)} intents below the floor {floors.per_intent_accuracy_min:.1%}: {named}{more}")
    if summary.needless_tickets:
        failures.append(f"{summary.needless_tickets} needless ticket(s) (a non-premium visitor got the right article and a ticket)")
    return failures


@dataclass(frozen=True)
class CheckResult:
    """One check: "passed", "failed" or "skipped" (an earlier one failed), with the reason of a failure."""

    name: str
    title: str
    status: str
    reason: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class CheckReport:
    """Every check's result, and the dev eval's figures and floors (when it ran)."""

    model: str
    checks: Tuple[CheckResult, ...]
    figures: Dict[str, Any] = field(default_factory=dict)
    floors: Dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> Optional[CheckResult]:
        """The check that failed, if one did."""
        return next((check for check in self.checks if check.status == "failed"), None)

    @property
    def reason(self) -> str:
        """One line: why the model was refused ("" when it passed)."""
        failed = self.failed
        return f"{failed.title} failed: {failed.reason}" if failed else ""

    def as_dict(self) -> Dict[str, Any]:
        return {
            "model": self.model,
            "passed": self.passed,
            "failed_check": self.failed.name if self.failed else None,
            "reason": self.reason,
            "checks": [asdict(check) for check in self.checks],
            "figures": self.figures,
            "floors": self.floors,
        }

    def format(self) -> str:
        """The printed report."""
        lines = [f"Checks of {self.model}:"]
        for check in self.checks:
            mark = {"passed": "PASS", "failed": "FAIL", "skipped": "----"}[check.status]
            line = f"  {mark}  {check.title:<22}"
            if check.status == "skipped":
                line += " not run (an earlier check failed)"
            else:
                line += f" {check.seconds:5.0f} s"
            if check.reason:
                line += f"  {check.reason}"
            lines.append(line)
        if self.figures:
            lines.append(f"Dev eval figures ({self.figures['cases']} cases) against the floors:")
            rows = (
                ("article accuracy", "article_accuracy", "article_accuracy_min", ">="),
                ("wrong-answer rate", "wrong_answer_rate", "wrong_answer_rate_max", "<="),
                ("none accuracy", "none_accuracy", "none_accuracy_min", ">="),
                ("intent accuracy", "intent_accuracy", "intent_accuracy_min", ">="),
                ("handoff accuracy", "handoff_accuracy", "handoff_accuracy_min", ">="),
            )
            for label, key, floor_key, sense in rows:
                value = self.figures.get(key)
                if value is not None:
                    lines.append(f"  {label:<18} {value:7.1%}   (must be {sense} {self.floors[floor_key]:.1%})")
            worst = min(self.figures.get("per_intent_accuracy", {}).items(), key=lambda item: item[1], default=None)
            if worst:
                lines.append(
                    f"  weakest intent     {worst[1]:7.1%}   ({worst[0]}; every intent must be >= "
                    f"{self.floors['per_intent_accuracy_min']:.1%})"
                )
        lines.append("All checks passed." if self.passed else f"REFUSED: {self.reason}")
        return "\n".join(lines)


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def next_saturday_morning(now: datetime) -> datetime:
    """10:00 UTC on the next Saturday (the clock of the tests' bot: outside business hours)."""
    days = (5 - now.weekday()) % 7 or 7
    return (now + timedelta(days=days)).replace(hour=10, minute=0, second=0, microsecond=0)


def _last_lines(text: str, count: int = 15) -> List[str]:
    return [line for line in ANSI.sub("", text).splitlines() if line.strip()][-count:]


def _problem_line(text: str) -> str:
    """The most telling line of a failed Rasa command's output."""
    lines = _last_lines(text, 400)
    for marker in ("ERROR", "Error", "UserWarning", "Warning"):
        hits = [line.strip() for line in lines if marker in line]
        if hits:
            return hits[-1][:300]
    return lines[-1].strip()[:300] if lines else "(no output)"


class _Runner:
    """Runs the checks of one model, reporting progress."""

    def __init__(self, settings: Settings, model: Path, work_dir: Path, progress: Optional[ProgressCallback]) -> None:
        self.settings = settings
        self.model = model
        self.work_dir = work_dir
        self._progress = progress

    def report(self, name: str, fraction: float, message: str) -> None:
        if self._progress is None:
            return
        _, _, start, end = next(c for c in CHECKS if c[0] == name)
        self._progress(name, int(start + (end - start) * max(0.0, min(1.0, fraction))), message)

    def rasa(self, name: str, args: Sequence[str], timeout: float) -> Tuple[int, str]:
        from bot.launcher import rasa_executable

        log = self.work_dir / f"{name}.log"
        try:
            result = subprocess.run(
                [rasa_executable(), *args], cwd=self.settings.project_root, env=child_env(self.settings),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            output = error.output if isinstance(error.output, str) else (error.output or b"").decode(errors="replace")
            log.write_text(output)
            return -1, f"`rasa {args[0]}` took longer than {timeout:.0f} s (log: {log})"
        log.write_text(result.stdout)
        return result.returncode, result.stdout

    def validate(self) -> str:
        self.report("validate", 0, "rasa data validate --fail-on-warnings")
        code, output = self.rasa("validate", ["data", "validate", "--fail-on-warnings"], timeout=600)
        if code == 0:
            return ""
        return f"exit code {code}: {_problem_line(output)}"

    def kb(self) -> str:
        from bot.kb.check import check_kb

        self.report("kb", 0, f"checking {self.settings.kb_dir}")
        problems = check_kb(self.settings.kb_dir)
        if not problems:
            return ""
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{len(problems)} problem(s) in the knowledge base: {problems[0]}{more}"

    def stories(self) -> str:
        out = self.work_dir / "stories"
        self.report("stories", 0, "rasa test core --fail-on-prediction-errors")
        code, output = self.rasa(
            "stories",
            ["test", "core", "--model", str(self.model), "--stories", str(self.settings.project_root / "tests" / "stories"),
             "--fail-on-prediction-errors", "--out", str(out)],
            timeout=1200,
        )
        if code == 0:
            return ""
        failed = out / "failed_test_stories.yml"
        if failed.exists():
            count = sum(1 for line in failed.read_text().splitlines() if line.lstrip().startswith("- story:"))
            if count:
                return f"{count} test stor{'y' if count == 1 else 'ies'} failed (see {failed})"
        return f"exit code {code}: {_problem_line(output)}"

    def eval(self) -> Tuple[str, Dict[str, Any], Dict[str, float]]:
        from bot.eval.cases import EvalFileError, load_cases
        from bot.eval.runner import EvalSetupError, demo_user_tokens, run_cases, summarise
        from bot.launcher import BotProcesses, StartupError
        from bot.store.database import Store, StoreError, migrate
        from bot.store.seed import SeedFileError, seed_demo_customers

        settings = self.settings
        try:
            floors = load_floors(settings.resolved_eval_floors_file())
        except FloorsFileError as error:
            return str(error), {}, {}
        try:
            cases = load_cases(settings.resolved_eval_file())
        except (EvalFileError, OSError) as error:
            return f"cannot read the eval cases: {error}", {}, {}
        except Exception as error:  # the YAML parser's own errors
            return f"cannot read the eval cases {settings.resolved_eval_file()}: {error}".replace("\n", " "), {}, {}
        floors_dict = asdict(floors)
        clock = next_saturday_morning(datetime.now(timezone.utc))
        store_url = f"sqlite:///{self.work_dir / 'deskmate.db'}"
        private = settings.copy(
            update={"database_url": store_url, "tracker_database_url": f"sqlite:///{self.work_dir / 'tracker.db'}"}
        )
        try:
            migrate(store_url)
            store = Store(store_url)
            try:
                seed_demo_customers(store, settings.demo_customers_file, clock)
            finally:
                store.dispose()
        except (StoreError, SeedFileError) as error:
            return f"could not prepare the private store: {error}", {}, floors_dict
        bot = BotProcesses(
            private,
            rasa_port=free_port(),
            action_port=free_port(),
            log_dir=self.work_dir / "servers",
            extra_env=child_env(private, {"DESKMATE_FIXED_NOW": clock.isoformat()}),
        )
        self.report("eval", 0, "starting a private action server and Rasa server with the model")
        try:
            try:
                bot.start(self.model, timeout=600)
            except StartupError as error:
                log = self.work_dir / "servers" / "rasa.log"
                tail = " | ".join(_last_lines(log.read_text(errors="replace"), 3)) if log.exists() else ""
                return f"the model's bot did not start: {error} {tail}".strip(), {}, floors_dict
            self.report("eval", 0.25, f"running {len(cases)} cases")
            tokens = demo_user_tokens(settings.demo_customers_file, settings.resolved_identity_secret())

            def done(number: int, total: int) -> None:
                self.report("eval", 0.25 + 0.75 * number / total, f"{number}/{total} cases")

            try:
                results = asyncio.run(run_cases(
                    cases, bot.rasa_url, settings.resolved_rasa_token(), progress=done, user_tokens=tokens,
                    progress_every=10,
                ))
            except (BotUnavailableError, EvalSetupError) as error:
                return f"the eval could not run: {error}", {}, floors_dict
        finally:
            bot.stop()
        summary = summarise(cases, results)
        failures = floor_failures(summary, floors)
        return "; ".join(failures), figures_of(summary), floors_dict


def run_checks(
    settings: Settings,
    model_path: Path,
    progress: Optional[ProgressCallback] = None,
    work_dir: Optional[Path] = None,
) -> CheckReport:
    """Run every check on ``model_path`` in order, stopping at the first that fails.

    ``work_dir`` keeps the checks' logs and the private bot's store (default:
    a new folder under var/check/). Never raises for a failed check: read
    ``report.passed`` and ``report.reason``.
    """
    model_path = Path(model_path).resolve()
    if work_dir is None:
        work_dir = settings.var_dir / "check" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        work_dir.mkdir(parents=True, exist_ok=True)
        _prune(work_dir.parent, keep=5, current=work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    runner = _Runner(settings, model_path, work_dir, progress)
    results: List[CheckResult] = []
    figures: Dict[str, Any] = {}
    floors: Dict[str, float] = {}
    failed = False
    for name, title, _, _ in CHECKS:
        if failed:
            results.append(CheckResult(name, title, "skipped"))
            continue
        started = time.monotonic()
        if name == "eval":
            reason, figures, floors = runner.eval()
        else:
            reason = getattr(runner, name)()
        seconds = round(time.monotonic() - started, 1)
        results.append(CheckResult(name, title, "failed" if reason else "passed", reason, seconds))
        failed = bool(reason)
        runner.report(name, 1.0, f"{title}: {'FAILED' if failed else 'passed'}")
    for leftover in ("deskmate.db", "tracker.db"):
        for path in work_dir.glob(f"{leftover}*"):
            path.unlink(missing_ok=True)
    return CheckReport(model=model_path.name, checks=tuple(results), figures=figures, floors=floors)


def _prune(folder: Path, keep: int, current: Path) -> None:
    """Remove all but the ``keep`` newest run folders of ``folder`` (var/check/)."""
    runs = sorted((p for p in folder.iterdir() if p.is_dir() and p != current), key=lambda p: p.stat().st_mtime)
    for old in runs[: max(0, len(runs) - keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)

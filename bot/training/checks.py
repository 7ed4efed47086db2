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
import hashlib
import math
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field, fields, replace
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
        "per_intent_cases": dict(summary.intent_counts),
        "counts": dict(summary.counts),
        "needless_tickets": summary.needless_tickets,
        "p50_ms": summary.p50_ms,
        "p95_ms": summary.p95_ms,
    }


# 95 % two-sided: the z of the Wilson score interval for a per-intent accuracy.
WILSON_Z = 1.96


def wilson_interval(successes: int, cases: int, z: float = WILSON_Z) -> Tuple[float, float]:
    """The Wilson score interval (low, high, fractions 0..1) of ``successes`` out of ``cases``.

    Raises ValueError for ``cases`` < 1 or ``successes`` outside 0..cases.
    """
    if cases < 1 or not 0 <= successes <= cases:
        raise ValueError(f"need 0 <= successes <= cases and cases >= 1, got {successes}/{cases}")
    share = successes / cases
    denominator = 1 + z * z / cases
    centre = (share + z * z / (2 * cases)) / denominator
    half = z * math.sqrt(share * (1 - share) / cases + z * z / (4 * cases * cases)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class FigureCheck:
    """One dev eval figure against its floor (``sense`` "min") or ceiling ("max").

    ``key``: the figure's name in ``figures_of`` ("intent:<name>" for one
    intent); ``value`` and ``bound``: fractions 0..1; ``cases``: how many cases
    it is measured on (None: unknown); ``baseline``: the current model's
    figure on the same eval set (None: not measured); ``reason``: why it
    vetoes the model ("" when it passed); ``note``: why a figure short of its
    floor did not veto it (a per-intent figure only).
    """

    key: str
    label: str
    value: Optional[float]
    bound: float
    sense: str
    passed: bool
    cases: Optional[int] = None
    baseline: Optional[float] = None
    reason: str = ""
    note: str = ""


AGGREGATES = (
    ("article_accuracy", "article accuracy", "article_accuracy_min", "min", "article"),
    ("wrong_answer_rate", "wrong-answer rate", "wrong_answer_rate_max", "max", None),
    ("none_accuracy", "none accuracy", "none_accuracy_min", "min", "none"),
    ("intent_accuracy", "intent accuracy", "intent_accuracy_min", "min", "intent"),
    ("handoff_accuracy", "handoff accuracy", "handoff_accuracy_min", "min", "handoff"),
)


def _points(value: float, bound: float) -> str:
    return f"{abs(value - bound) * 100:.1f} points"


def figure_checks(summary: Summary, floors: Floors, baseline: Optional[Dict[str, Any]] = None) -> List[FigureCheck]:
    """Every figure against its floor, with the current model's figure beside it (``baseline``: its
    ``figures_of`` on the same eval set, or None).

    The aggregate figures (article, wrong answers, none, intent, handoff) must
    meet their floors. A single intent below the per-intent floor vetoes the
    model only when its sample says so: the upper end of the 95 % Wilson
    interval of its accuracy is below the floor too (4 of 5 right, 80 %, could
    well be a 90 % intent; 3 of 5 could not), and the current model did better
    on the same cases. Without a case count (an old summary) the floor is strict.
    """
    floor_values = asdict(floors)
    checks: List[FigureCheck] = []
    base = baseline or {}
    for key, label, floor_key, sense, kind in AGGREGATES:
        value = summary.wrong_answer_rate if key == "wrong_answer_rate" else summary.accuracy.get(kind or "")
        bound = floor_values[floor_key]
        cases = summary.cases if kind is None else summary.counts.get(kind)
        if value is None:
            continue
        passed = value <= bound if sense == "max" else value >= bound
        reason = ""
        if not passed:
            reason = (f"{label} {value:.1%} is above the ceiling {bound:.1%}" if sense == "max"
                      else f"{label} {value:.1%} is below the floor {bound:.1%}")
            reason += f" ({_points(value, bound)} {'over' if sense == 'max' else 'short'})"
        checks.append(FigureCheck(key, label, value, bound, sense, passed, cases, base.get(key), reason))
    bound = floors.per_intent_accuracy_min
    base_intents = base.get("per_intent_accuracy") or {}
    for intent, value in summary.intent_accuracy.items():
        cases = summary.intent_counts.get(intent)
        before = base_intents.get(intent)
        label = f"intent {intent} accuracy"
        check = FigureCheck(f"intent:{intent}", label, value, bound, "min", True, cases, before)
        if value < bound:
            interval = wilson_interval(round(value * cases), cases) if cases else None
            if interval is not None and interval[1] >= bound:
                check = replace(check, note=(
                    f"below the floor on {cases} cases, but its 95% interval ({interval[0]:.0%}-{interval[1]:.0%}) "
                    f"reaches {bound:.0%}: too few cases to tell"))
            elif before is not None and value >= before:
                check = replace(check, note=f"no lower than the current model's {before:.1%} on the same cases")
            else:
                detail = (f"{cases} cases, 95% interval {interval[0]:.0%}-{interval[1]:.0%}" if interval
                          else "case count unknown")
                if before is not None:
                    detail += f"; the current model: {before:.1%}"
                check = replace(check, passed=False, reason=(
                    f"{label} {value:.1%} is below the floor {bound:.1%} ({_points(value, bound)} short; {detail})"))
        checks.append(check)
    return checks


def floor_failures(summary: Summary, floors: Floors, baseline: Optional[Dict[str, Any]] = None) -> List[str]:
    """One line per figure that vetoes the model (empty when all pass); see ``figure_checks``."""
    checks = figure_checks(summary, floors, baseline)
    failures = [c.reason for c in checks if not c.passed and not c.key.startswith("intent:")]
    weak = sorted((c for c in checks if not c.passed and c.key.startswith("intent:")), key=lambda c: c.value or 0.0)
    if len(weak) == 1:
        failures.append(weak[0].reason)
    elif weak:
        named = ", ".join(f"{c.key[7:]} {c.value:.1%} ({c.cases or '?'} cases)" for c in weak[:3])
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
    # Each figure against its floor, with the current model's beside it (``figure_checks``).
    figure_checks: Tuple[FigureCheck, ...] = ()
    # The current model's record the figures were compared with ({model, figures}), when on the same eval set.
    baseline: Optional[Dict[str, Any]] = None
    # sha256 of the eval file and of the floors file the eval ran with ("" when it did not run).
    eval_sha: str = ""

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
            "figure_checks": [asdict(check) for check in self.figure_checks],
            "baseline": self.baseline,
            "eval_sha": self.eval_sha,
            "advice": advice_for(self.failed.name) if self.failed else "",
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
            for figure in self.figure_checks:
                if figure.note:
                    lines.append(f"  note: {figure.label} {figure.value or 0.0:.1%}: {figure.note}")
            if self.baseline:
                lines.append(f"  (compared with the current model {self.baseline.get('model')} on the same cases)")
            worst = min(self.figures.get("per_intent_accuracy", {}).items(), key=lambda item: item[1], default=None)
            if worst:
                lines.append(
                    f"  weakest intent     {worst[1]:7.1%}   ({worst[0]}; every intent must be >= "
                    f"{self.floors['per_intent_accuracy_min']:.1%})"
                )
        lines.append("All checks passed." if self.passed else f"REFUSED: {self.reason}")
        if not self.passed and self.failed is not None:
            lines.append(f"What to do: {advice_for(self.failed.name)}")
        return "\n".join(lines)


ADVICE = {
    "validate": "fix what `rasa data validate` names (a domain or data/ file; the last edits are the likely cause), "
                "then retrain.",
    "kb": "fix the article `python -m bot kb check` names, then retrain.",
    "stories": "a test story no longer passes: read the failed stories file named above; an example added to an "
               "intent may have moved it. Undo or reword the last phrasings (`git diff kb/ data/`), then retrain.",
    "eval": "the candidate is worse than the floors on the dev set. Compare its figures with the current model's: "
            "if one intent or kind of case fell, look at the phrasings added for it since the last good model "
            "(`git diff kb/ data/`), reword or remove those that overlap another article or intent, then retrain. "
            "The current model keeps answering meanwhile. The log: var/retrain/job-N.log.",
}


def advice_for(check: str) -> str:
    """What a lead can do when ``check`` (a CHECKS name) failed, in a sentence or two."""
    return ADVICE.get(check, "read the job's log, fix the cause, then retrain.")


def file_sha(*paths: Path) -> str:
    """sha256 (hex) of the files' contents together; "" when one cannot be read."""
    digest = hashlib.sha256()
    try:
        for path in paths:
            digest.update(path.read_bytes())
            digest.update(b"\0")
    except OSError:
        return ""
    return digest.hexdigest()


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

    def __init__(
        self, settings: Settings, model: Path, work_dir: Path, progress: Optional[ProgressCallback],
        baseline: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.work_dir = work_dir
        self._progress = progress
        self.baseline = baseline
        self.figure_checks: Tuple[FigureCheck, ...] = ()
        self.used_baseline: Optional[Dict[str, Any]] = None
        self.eval_sha = ""

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
        self.eval_sha = file_sha(settings.resolved_eval_file(), settings.resolved_eval_floors_file())
        # The current model's figures count only when measured on these very cases.
        base = self.baseline if self.baseline and self.baseline.get("eval_sha") == self.eval_sha else None
        self.used_baseline = {"model": base.get("model"), "figures": base.get("figures")} if base else None
        base_figures = base.get("figures") if base else None
        self.figure_checks = tuple(figure_checks(summary, floors, base_figures))
        failures = floor_failures(summary, floors, base_figures)
        return "; ".join(failures), figures_of(summary), floors_dict


def run_checks(
    settings: Settings,
    model_path: Path,
    progress: Optional[ProgressCallback] = None,
    work_dir: Optional[Path] = None,
    baseline: Optional[Dict[str, Any]] = None,
) -> CheckReport:
    """Run every check on ``model_path`` in order, stopping at the first that fails.

    ``work_dir`` keeps the checks' logs and the private bot's store (default:
    a new folder under var/check/). ``baseline``: the current model's check
    record (bot.training.records: ``{model, figures, eval_sha}``), whose
    figures are shown beside the candidate's and used by the per-intent rule
    when they were measured on the same eval and floors files. Never raises
    for a failed check: read ``report.passed`` and ``report.reason``.
    """
    model_path = Path(model_path).resolve()
    if work_dir is None:
        work_dir = settings.var_dir / "check" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        work_dir.mkdir(parents=True, exist_ok=True)
        _prune(work_dir.parent, keep=5, current=work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    runner = _Runner(settings, model_path, work_dir, progress, baseline)
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
    return CheckReport(model=model_path.name, checks=tuple(results), figures=figures, floors=floors,
                       figure_checks=runner.figure_checks, baseline=runner.used_baseline, eval_sha=runner.eval_sha)


def _prune(folder: Path, keep: int, current: Path) -> None:
    """Remove all but the ``keep`` newest run folders of ``folder`` (var/check/)."""
    runs = sorted((p for p in folder.iterdir() if p.is_dir() and p != current), key=lambda p: p.stat().st_mtime)
    for old in runs[: max(0, len(runs) - keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)

"""Commands about the bot's model: the knowledge base check, the spaCy pipeline, training, eval, checks, retraining."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.settings import get_settings


def cmd_kb_check(args: argparse.Namespace) -> int:
    """Validate kb/ and print each problem with its file and line."""
    from bot.kb.articles import article_paths
    from bot.kb.check import check_kb

    kb_dir = Path(args.kb_dir) if args.kb_dir else get_settings().kb_dir
    problems = check_kb(kb_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {kb_dir}", file=sys.stderr)
        return 1
    print(f"kb ok: {len(article_paths(kb_dir))} articles in {kb_dir}")
    return 0


def cmd_nlp_build(args: argparse.Namespace) -> int:
    """Build the project's spaCy pipeline into var/spacy/."""
    from bot.nlu.spacy_pipeline import save_pipeline

    settings = get_settings()
    target = save_pipeline(settings.entity_patterns_file, settings.spacy_model_dir)
    print(f"spaCy pipeline written to {target}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train when no model matches the training data; keep the newest few models."""
    from bot.training.models import TrainingError, ensure_model

    try:
        model = ensure_model(get_settings())
    except (TrainingError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"model: {model}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Run eval cases against the running bot and print the scores."""
    from bot.eval.cases import EvalFileError, load_cases
    from bot.eval.runner import EvalSetupError, demo_user_tokens, format_summary, run_cases, summarise
    from bot.rasa_client import BotUnavailableError

    settings = get_settings()
    try:
        cases = load_cases(Path(args.file))
    except (EvalFileError, OSError) as error:
        print(f"cannot read eval file: {error}", file=sys.stderr)
        return 2
    url = args.url or settings.rasa_urls()[0]
    print(f"running {len(cases)} cases against {url} ...", flush=True)

    def progress(done: int, total: int) -> None:
        print(f"  {done}/{total} cases", flush=True)

    try:
        tokens = demo_user_tokens(settings.demo_customers_file, settings.resolved_identity_secret())
        results = asyncio.run(
            run_cases(cases, url, settings.resolved_rasa_token(), progress=progress, user_tokens=tokens)
        )
    except BotUnavailableError as error:
        print(f"{error}\nIs the bot running? Start it with `make run`.", file=sys.stderr)
        return 2
    except EvalSetupError as error:
        print(f"cannot run the cases: {error}", file=sys.stderr)
        return 2
    summary = summarise(cases, results)
    print(format_summary(summary))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"summary": asdict(summary), "cases": [asdict(r) for r in results]}, indent=2)
        )
        print(f"results written to {args.json}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Run every check on a model (validate, kb check, test stories, dev eval against the floors)."""
    from bot.training.checks import CHECK_TITLES, FloorsFileError, load_floors, run_checks
    from bot.training.models import TrainingError, ensure_model, latest_model

    settings = get_settings()
    updates: dict[str, Any] = {}
    if args.floors:
        updates["eval_floors_file"] = Path(args.floors).resolve()
    if args.eval_file:
        updates["eval_file"] = Path(args.eval_file).resolve()
    settings = settings.copy(update=updates)
    try:
        load_floors(settings.resolved_eval_floors_file())
    except FloorsFileError as error:
        print(f"cannot read the floors: {error}", file=sys.stderr)
        return 2
    try:
        if args.model:
            model = Path(args.model).resolve()
            if not model.is_file():
                print(f"no model file {model}", file=sys.stderr)
                return 2
        else:
            model = latest_model(settings) if args.no_train else ensure_model(settings)
    except (TrainingError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Checking {model.name} (floors: {settings.resolved_eval_floors_file()}) ...", flush=True)

    def progress(name: str, percent: int, message: str) -> None:
        print(f"  [{percent:3d}%] {CHECK_TITLES[name]}: {message}", flush=True)

    from bot.training.models import models_dir
    from bot.training.serving import baseline_for, write_record

    in_models = model.parent.resolve() == models_dir(settings).resolve()
    report = run_checks(settings, model, progress=progress, baseline=baseline_for(settings, exclude=[model]))
    print(report.format(), flush=True)
    if in_models and not updates:
        # Judged by the project's own eval and floors: `make run` serves (or refuses) it without checking again.
        write_record(model, report)
    if not report.passed:
        print(f"make check failed: {report.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    """Train a candidate model, check it, and load it into the running bot only if every check passes."""
    import getpass

    from bot.store.database import Store, StoreError
    from bot.store.retrain_jobs import RetrainBusyError, get_job, start_job
    from bot.training.retrain import run_job, stop_on_sigterm

    settings = get_settings()
    store = Store(settings.resolved_database_url())
    stop_on_sigterm()
    try:
        if args.job is None:
            job = start_job(store, args.requested_by or f"cli:{getpass.getuser()}")
            print(f"Retraining job {job.id}: train, check, then load into the bot at {', '.join(settings.rasa_urls())} "
                  "only if every check passes ...", flush=True)
        else:
            found = get_job(store, args.job)
            if found is None or not found.is_running:
                print(f"retraining job {args.job} is {'unknown' if found is None else found.status}: nothing to run",
                      file=sys.stderr)
                return 2
            job = found
        final = run_job(settings, store, job.id, echo=lambda line: print(line, flush=True))
    except RetrainBusyError as error:
        print(f"cannot retrain now: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"could not record the retraining job: {error}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    return 0 if final.status == "loaded" else 1


def add_commands(commands: Any) -> None:
    """Register this module's sub-commands on ``commands`` (argparse sub-parsers)."""
    kb = commands.add_parser("kb", help="knowledge base tools").add_subparsers(dest="kb_command", required=True)
    check = kb.add_parser("check", help="validate kb/ (exit 1 on any problem)")
    check.add_argument("--kb-dir", help="folder of articles (default: kb/)")
    check.set_defaults(handler=cmd_kb_check)

    nlp = commands.add_parser("nlp", help="the project's spaCy pipeline").add_subparsers(dest="nlp_command", required=True)
    nlp.add_parser("build", help="build it into var/spacy/ (offline)").set_defaults(handler=cmd_nlp_build)

    commands.add_parser(
        "train", help="train when no model in models/ matches the training data"
    ).set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("eval", help="run eval cases against the running bot")
    evaluate.add_argument("file", help="a YAML file of cases, e.g. tests/eval/dev.yml")
    evaluate.add_argument("--json", help="write every case's result to this file")
    evaluate.add_argument("--url", help="Rasa server URL (default: DESKMATE_RASA_URL)")
    evaluate.set_defaults(handler=cmd_eval)

    checks = commands.add_parser(
        "check", help="validate, kb check, test stories and the dev eval against the floors (exit 1 on a failure)"
    )
    checks.add_argument("--model", help="the model to check (default: the one matching the data, trained if none)")
    checks.add_argument("--no-train", action="store_true", help="check the newest model without training first")
    checks.add_argument("--floors", help="the floors file (default: tests/eval/floors.yml)")
    checks.add_argument("--eval-file", help="the eval cases (default: tests/eval/dev.yml)")
    checks.set_defaults(handler=cmd_check)

    retrain = commands.add_parser(
        "retrain", help="train, check, and load the new model into the running bot only if every check passes"
    )
    retrain.add_argument("--job", type=int, help=argparse.SUPPRESS)  # a job started by the gateway
    retrain.add_argument("--requested-by", help="who asked (default: cli:<your user name>)")
    retrain.set_defaults(handler=cmd_retrain)

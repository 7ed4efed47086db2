"""`python -m bot`: Deskmate's one command line."""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlparse

from bot.settings import get_settings


def cmd_kb_check(args: argparse.Namespace) -> int:
    """Validate kb/ and print each problem with its file and line."""
    from bot.kb.check import check_kb

    kb_dir = Path(args.kb_dir) if args.kb_dir else get_settings().kb_dir
    problems = check_kb(kb_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {kb_dir}", file=sys.stderr)
        return 1
    from bot.kb.articles import article_paths

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
    """Train when the model is missing or stale (Rasa's fingerprinting decides)."""
    from bot.launcher import StartupError, run_train

    try:
        run_train(get_settings())
    except StartupError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Run eval cases against the running bot and print the scores."""
    from bot.eval.cases import EvalFileError, load_cases
    from bot.eval.runner import (
        BotUnreachableError,
        EvalSetupError,
        demo_user_tokens,
        format_summary,
        run_cases,
        summarise,
    )

    settings = get_settings()
    try:
        cases = load_cases(Path(args.file))
    except (EvalFileError, OSError) as error:
        print(f"cannot read eval file: {error}", file=sys.stderr)
        return 2
    url = args.url or settings.rasa_url
    print(f"running {len(cases)} cases against {url} ...", flush=True)
    try:
        tokens = demo_user_tokens(settings.demo_customers_file, settings.resolved_identity_secret())
        results = asyncio.run(
            run_cases(cases, url, settings.resolved_rasa_token(), progress=True, user_tokens=tokens)
        )
    except BotUnreachableError as error:
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
    from bot.launcher import StartupError, latest_model, run_train
    from bot.training.checks import CHECK_TITLES, FloorsFileError, load_floors, run_checks

    settings = get_settings()
    updates = {}
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
            if not args.no_train:
                print("Checking the model (Rasa retrains only when data or config changed) ...", flush=True)
                run_train(settings)
            model = latest_model(settings)
    except StartupError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Checking {model.name} (floors: {settings.resolved_eval_floors_file()}) ...", flush=True)

    def progress(name: str, percent: int, message: str) -> None:
        print(f"  [{percent:3d}%] {CHECK_TITLES[name]}: {message}", flush=True)

    report = run_checks(settings, model, progress=progress)
    print(report.format(), flush=True)
    if not report.passed:
        print(f"make check failed: {report.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    """Train a candidate model, check it, and load it into the running bot only if every check passes."""
    import getpass

    from bot.store.database import StoreError
    from bot.store.retrain_jobs import RetrainBusyError, get_job, start_job
    from bot.training.retrain import run_job, stop_on_sigterm

    settings = get_settings()
    url = settings.resolved_database_url()
    stop_on_sigterm()
    try:
        if args.job is None:
            job = start_job(url, args.requested_by or f"cli:{getpass.getuser()}")
            print(f"Retraining job {job.id}: train, check, then load into the bot at {settings.rasa_url} "
                  "only if every check passes ...", flush=True)
        else:
            job = get_job(url, args.job)
            if job is None or not job.is_running:
                print(f"retraining job {args.job} is {'unknown' if job is None else job.status}: nothing to run",
                      file=sys.stderr)
                return 2
        final = run_job(settings, job.id, echo=lambda line: print(line, flush=True))
    except RetrainBusyError as error:
        print(f"cannot retrain now: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"could not record the retraining job: {error}", file=sys.stderr)
        return 1
    return 0 if final.status == "loaded" else 1


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrate Deskmate's store to the newest schema."""
    from bot.store.database import StoreError, current_revision, migrate

    url = get_settings().resolved_database_url()
    try:
        migrate(url)
        print(f"database at schema {current_revision(url)}")
    except StoreError as error:
        print(f"could not migrate the database: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_demo_seed(args: argparse.Namespace) -> int:
    """Create or update the demo customers (idempotent)."""
    from datetime import datetime, timezone

    from bot.store.database import StoreError
    from bot.store.seed import SeedFileError, seed_demo_customers

    settings = get_settings()
    try:
        customers = seed_demo_customers(
            settings.resolved_database_url(), settings.demo_customers_file, datetime.now(timezone.utc)
        )
    except SeedFileError as error:
        print(f"cannot read the demo customers: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"could not store the demo customers: {error}", file=sys.stderr)
        return 1
    for customer in customers:
        print(f"  {customer.email:<28} {customer.plan:<10} {customer.status}")
    return 0


def cmd_demo_token(args: argparse.Namespace) -> int:
    """Print a signed identity token for a demo customer."""
    from datetime import timedelta

    from bot.identity import issue_token
    from bot.store.customers import find_customer
    from bot.store.database import StoreError

    settings = get_settings()
    try:
        customer = find_customer(settings.resolved_database_url(), args.email)
    except StoreError as error:
        print(f"could not read the customers: {error}", file=sys.stderr)
        return 1
    if customer is None:
        print(f"no customer {args.email!r}; run `python -m bot demo seed` first", file=sys.stderr)
        return 1
    print(issue_token(settings.resolved_identity_secret(), customer.email, ttl=timedelta(hours=args.hours)))
    return 0


def prepare_store() -> None:
    """Migrate the store and, in demo mode, seed the demo customers (`make run`)."""
    settings = get_settings()
    print("Migrating the database ...", flush=True)
    if cmd_db_upgrade(argparse.Namespace()) != 0:
        raise SystemExit(1)
    if settings.demo_mode:
        print("Seeding the demo customers ...", flush=True)
        if cmd_demo_seed(argparse.Namespace()) != 0:
            raise SystemExit(1)


def cmd_run(args: argparse.Namespace) -> int:
    """Train if stale, start the action server and the Rasa server, stop both on Ctrl-C."""
    from bot.launcher import BotProcesses, StartupError, latest_model, run_train

    settings = get_settings()
    port = urlparse(settings.rasa_url).port or 5005
    log_dir = settings.var_dir / "log"
    bot = BotProcesses(settings, rasa_port=port, action_port=settings.action_port, log_dir=log_dir)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: a shell starts background jobs with SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    prepare_store()
    try:
        print(f"Starting the action server on 127.0.0.1:{settings.action_port} ...", flush=True)
        bot.start_actions()
        if not args.no_train:
            print("Checking the model (Rasa retrains only when data or config changed) ...", flush=True)
            run_train(settings)
        model = latest_model(settings)
        print(f"Starting the Rasa server with {model.name} (this takes about a minute) ...", flush=True)
        bot.start_rasa(model)
        bot.start_gateway(settings.gateway_host, settings.gateway_port)
        started = time.monotonic()
        bot.wait_ready()
        print(
            "\nDeskmate is running (Ctrl-C stops it).\n"
            f"  Open the demo:     {bot.gateway_url}/   (agent inbox: {bot.gateway_url}/agent;\n"
            "                     add an agent with `.venv/bin/python -m bot staff add EMAIL --role agent`)\n"
            f"  Lead console:      {bot.gateway_url}/lead   (reports, missed questions, retraining;\n"
            "                     add a lead with `.venv/bin/python -m bot staff add EMAIL --role lead`)\n"
            f"  Rasa REST channel: {settings.rasa_url}/webhooks/rest/webhook\n"
            f"  Talk to the bot:   .venv/bin/python -m bot chat   (in another terminal)\n"
            f"  or: curl -s {settings.rasa_url}/webhooks/rest/webhook "
            "-d '{\"sender\": \"me\", \"message\": \"hi\"}'\n"
            f"  Server logs:       {log_dir}/rasa.log, {log_dir}/actions.log, {log_dir}/gateway.log\n"
            f"  (ready {time.monotonic() - started:.0f} s after the Rasa server started)",
            flush=True,
        )
        while True:
            exited = bot.first_exited()
            if exited:
                print(f"the {exited} server stopped unexpectedly (see {log_dir}/{exited}.log); shutting down", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping Deskmate ...", flush=True)
        return 0
    except StartupError as error:
        print(f"Deskmate could not start: {error}", file=sys.stderr)
        for name in bot.processes:
            log = log_dir / f"{name}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- last lines of {log} ---", *tail, sep="\n", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not interrupt the orderly stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bot.stop()
        print("Stopped.", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway (widget, agent inbox, JSON API) in the foreground."""
    from aiohttp import web

    from bot.gateway.app import make_app

    settings = get_settings()
    host = args.host or settings.gateway_host
    port = args.port or settings.gateway_port
    print(f"Deskmate gateway on http://{host}:{port}/ (agent inbox: /agent, lead console: /lead)", flush=True)
    web.run_app(make_app(settings), host=host, port=port, print=None)
    return 0


def cmd_staff_add(args: argparse.Namespace) -> int:
    """Create a staff account; the password is read from the terminal (or stdin with --password-stdin)."""
    import getpass
    from datetime import datetime, timezone

    from bot.store.database import StoreError
    from bot.store.staff import StaffExistsError, add_staff

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.email} (at least 10 characters): ")
        if getpass.getpass("Again: ") != password:
            print("the passwords differ; nothing was changed", file=sys.stderr)
            return 2
    try:
        staff = add_staff(
            get_settings().resolved_database_url(), args.email, args.name or args.email.split("@")[0].capitalize(),
            args.role, password, datetime.now(timezone.utc),
        )
    except (ValueError, StaffExistsError) as error:
        print(f"cannot add {args.email}: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"could not store the account: {error}", file=sys.stderr)
        return 1
    print(f"added {staff.email} ({staff.role})")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal chat with the running bot through its REST channel."""
    from bot.chat import chat_loop

    settings = get_settings()
    return asyncio.run(chat_loop(args.url or settings.rasa_url, f"cli-{uuid.uuid4().hex[:8]}"))


def cmd_report(args: argparse.Namespace) -> int:
    """Print the support leads' figures per UTC day and in total (text, csv or json)."""
    from datetime import date

    from bot.reports import build_report, render
    from bot.store.database import StoreError
    from bot.store.inbox import new_article_requests

    try:
        since = date.fromisoformat(args.since) if args.since else None
        until = date.fromisoformat(args.until) if args.until else None
        url = get_settings().resolved_database_url()
        report = build_report(url, since, until)
        report["needs_new_article"] = [
            {"text": d.text, "decided_by": d.decided_by, "decided_at": d.decided_at.isoformat()}
            for d in new_article_requests(url, since, until)
        ]
    except ValueError as error:
        print(f"cannot make the report: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"could not read the database: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(render(report, args.format))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="Deskmate support bot")
    commands = parser.add_subparsers(dest="command", required=True)

    kb = commands.add_parser("kb", help="knowledge base tools").add_subparsers(dest="kb_command", required=True)
    check = kb.add_parser("check", help="validate kb/ (exit 1 on any problem)")
    check.add_argument("--kb-dir", help="folder of articles (default: kb/)")
    check.set_defaults(handler=cmd_kb_check)

    nlp = commands.add_parser("nlp", help="the project's spaCy pipeline").add_subparsers(dest="nlp_command", required=True)
    nlp.add_parser("build", help="build it into var/spacy/ (offline)").set_defaults(handler=cmd_nlp_build)

    commands.add_parser("train", help="train when the model is missing or stale").set_defaults(handler=cmd_train)

    db = commands.add_parser("db", help="Deskmate's database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema").set_defaults(handler=cmd_db_upgrade)

    demo = commands.add_parser("demo", help="the demo tenant").add_subparsers(dest="demo_command", required=True)
    demo.add_parser("seed", help="create or update the demo customers").set_defaults(handler=cmd_demo_seed)
    token = demo.add_parser("token", help="print a signed identity token for a customer")
    token.add_argument("email", help="the customer's e-mail, e.g. premium@demo.example")
    token.add_argument("--hours", type=float, default=12, help="how long the token is valid (default 12)")
    token.set_defaults(handler=cmd_demo_token)

    run = commands.add_parser("run", help="start the bot (action server and Rasa server)")
    run.add_argument("--no-train", action="store_true", help="start the newest model without checking it")
    run.set_defaults(handler=cmd_run)

    serve = commands.add_parser("serve", help="run the gateway: widget, agent inbox, JSON API")
    serve.add_argument("--host", help="interface (default: DESKMATE_GATEWAY_HOST)")
    serve.add_argument("--port", type=int, help="port (default: DESKMATE_GATEWAY_PORT)")
    serve.set_defaults(handler=cmd_serve)

    staff = commands.add_parser("staff", help="staff accounts").add_subparsers(dest="staff_command", required=True)
    staff_add = staff.add_parser("add", help="add an agent or a lead")
    staff_add.add_argument("email")
    staff_add.add_argument("--role", choices=("agent", "lead"), required=True)
    staff_add.add_argument("--name", help="shown to visitors, e.g. Maria (default: from the e-mail)")
    staff_add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    staff_add.set_defaults(handler=cmd_staff_add)

    chat = commands.add_parser("chat", help="chat with the running bot in the terminal")
    chat.add_argument("--url", help="Rasa server URL (default: DESKMATE_RASA_URL)")
    chat.set_defaults(handler=cmd_chat)

    evaluate = commands.add_parser("eval", help="run eval cases against the running bot")
    evaluate.add_argument("file", help="a YAML file of cases, e.g. tests/eval/dev.yml")
    evaluate.add_argument("--json", help="write every case's result to this file")
    evaluate.add_argument("--url", help="Rasa server URL (default: DESKMATE_RASA_URL)")
    evaluate.set_defaults(handler=cmd_eval)

    check = commands.add_parser(
        "check", help="validate, kb check, test stories and the dev eval against the floors (exit 1 on a failure)"
    )
    check.add_argument("--model", help="the model to check (default: the newest in models/, trained first if stale)")
    check.add_argument("--no-train", action="store_true", help="check the newest model without training first")
    check.add_argument("--floors", help="the floors file (default: tests/eval/floors.yml)")
    check.add_argument("--eval-file", help="the eval cases (default: tests/eval/dev.yml)")
    check.set_defaults(handler=cmd_check)

    retrain = commands.add_parser(
        "retrain", help="train, check, and load the new model into the running bot only if every check passes"
    )
    retrain.add_argument("--job", type=int, help=argparse.SUPPRESS)  # a job started by the gateway
    retrain.add_argument("--requested-by", help="who asked (default: cli:<your user name>)")
    retrain.set_defaults(handler=cmd_retrain)

    report = commands.add_parser("report", help="figures for the support leads, per UTC day and in total")
    report.add_argument("--since", help="first day, YYYY-MM-DD (default: everything)")
    report.add_argument("--until", help="last day, YYYY-MM-DD, inclusive (default: everything)")
    report.add_argument("--format", choices=("text", "csv", "json"), default="text", help="output (default: text)")
    report.set_defaults(handler=cmd_report)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one sub-command; its exit code."""
    args = build_parser().parse_args(argv)
    return args.handler(args)

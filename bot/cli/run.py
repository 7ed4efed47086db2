"""Starting Deskmate: the whole stack (`make run`), or the gateway alone."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, NoReturn

if TYPE_CHECKING:
    from bot.launcher import BotProcesses
from urllib.parse import urlparse

from bot.cli.operations import cmd_db_upgrade, cmd_demo_seed
from bot.settings import Settings, get_settings


def mail_summary(settings: Settings) -> str:
    """Where the team's e-mails to visitors go and where their replies come in, for the start-up text."""
    out = (f"sent through {settings.smtp_relay_host}:{settings.smtp_relay_port}" if settings.smtp_relay_host
           else f"written to {settings.var_dir / 'outbox'}/ (no SMTP relay set: DESKMATE_SMTP_RELAY_HOST)")
    inbound = (f"received on {settings.smtp_inbound_host}:{settings.smtp_inbound_port} for *@{settings.mail_reply_domain}"
               if settings.smtp_inbound_port else "not received (DESKMATE_SMTP_INBOUND_PORT=0)")
    return f"  E-mail:            replies to visitors who left are {out};\n                     their e-mail replies are {inbound}\n"


def prepare_store() -> None:
    """Migrate the store and, in demo mode, seed the demo customers (`make run`); exits 1 on failure."""
    print("Migrating the database ...", flush=True)
    if cmd_db_upgrade(argparse.Namespace()) != 0:
        raise SystemExit(1)
    if get_settings().demo_mode:
        print("Seeding the demo customers ...", flush=True)
        if cmd_demo_seed(argparse.Namespace()) != 0:
            raise SystemExit(1)


def supervise(bot: "BotProcesses", log_dir: Path, poll_seconds: float = 1.0) -> NoReturn:
    """Keep every server running until Ctrl-C: one that stops is started again (``Restarts``' back-off).

    Meanwhile the others carry on: the gateway tells visitors the bot is not
    answering and opens tickets when the Rasa or the action server is down
    (bot/gateway/router.py), and the widget reconnects to a restarted gateway.
    """
    from bot.launcher import Restarts

    restarts = Restarts()
    due: Dict[str, float] = {}
    while True:
        now = time.monotonic()
        for name in bot.exited():
            if name not in due:
                delay = restarts.delay(name, now)
                code = bot.processes[name].returncode
                print(f"the {name} server stopped (exit code {code}; see {log_dir}/{name}.log); "
                      f"starting it again{f' in {delay:.0f} s' if delay else ''}", file=sys.stderr, flush=True)
                due[name] = now + delay
            elif now >= due[name]:
                del due[name]
                bot.restart(name)
                print(f"the {name} server is starting again", file=sys.stderr, flush=True)
        time.sleep(poll_seconds)


def cmd_run(args: argparse.Namespace) -> int:
    """Start the model that passed the checks (training and checking a new one if the data changed), the action
    server, the Rasa server and the gateway; stop on Ctrl-C.

    A server that stops while running is started again (``supervise``).
    """
    from bot.launcher import BotProcesses, StartupError
    from bot.training.models import TrainingError, latest_model
    from bot.training.serving import serving_model

    settings = get_settings()
    if args.gateways > 1 and not settings.redis_url:
        print("Several gateways share their sockets, locks and rate limits through Redis: set "
              "DESKMATE_REDIS_URL (e.g. redis://127.0.0.1:6379/0).", file=sys.stderr)
        return 2
    ports = [urlparse(url).port or 5005 for url in settings.rasa_urls()]
    if args.rasa_servers:
        ports = [ports[0] + index for index in range(args.rasa_servers)]
    port = ports[0]
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
        # Only a model that passed the checks serves (bot/training/serving.py); --no-train: the newest, as is.
        model = latest_model(settings) if args.no_train else serving_model(settings, echo=lambda line: print(line, flush=True))
        last = len(ports) - 1
        print(f"Starting {len(ports)} Rasa server(s) on 127.0.0.1:{', '.join(map(str, ports))} with {model.name}, "
              f"each with an action server (127.0.0.1:{settings.action_port}"
              f"{f'-{settings.action_port + last}' if last else ''}); this takes about a minute ...", flush=True)
        bot.start_bots(model, ports)
        for index in range(args.gateways):
            # One SMTP server receives visitors' e-mail replies: the first gateway's.
            bot.start_gateway(settings.gateway_host, settings.gateway_port + index,
                              env=None if index == 0 else {"DESKMATE_SMTP_INBOUND_PORT": "0"},
                              name="gateway" if index == 0 else f"gateway-{index + 1}")
        started = time.monotonic()
        bot.wait_ready()
        print(
            "\nDeskmate is running (Ctrl-C stops it).\n"
            f"  Open the demo:     {bot.gateway_url}/   (agent inbox: {bot.gateway_url}/agent;\n"
            "                     add an agent with `.venv/bin/python -m bot staff add EMAIL --role agent --name NAME`)\n"
            f"  Lead console:      {bot.gateway_url}/lead   (reports, missed questions, retraining;\n"
            "                     add a lead with `.venv/bin/python -m bot staff add EMAIL --role lead --name NAME`)\n"
            f"  Talk to the bot:   .venv/bin/python -m bot chat   (in another terminal, through the gateway)\n"
            f"  JSON API:          POST {bot.gateway_url}/api/messages  (Bearer token in {settings.var_dir}/api-token)\n"
            f"  Server logs:       {log_dir}/rasa.log, {log_dir}/actions.log, {log_dir}/gateway.log\n"
            f"  Rasa servers:      {', '.join(bot.rasa_urls)}\n"
            + mail_summary(settings)
            + (f"  More gateways:     {', '.join(list(bot.gateways.values())[1:])} (put a load balancer with sticky\n"
               "                     sessions in front; README, \"Scale-out\")\n" if args.gateways > 1 else "")
            + f"  (ready {time.monotonic() - started:.0f} s after the Rasa servers started)",
            flush=True,
        )
        supervise(bot, log_dir)
    except KeyboardInterrupt:
        print("\nStopping Deskmate ...", flush=True)
        return 0
    except (StartupError, TrainingError) as error:
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
    """Run the gateway (widget, agent inbox, lead console, JSON API) in the foreground; it migrates the store first."""
    from aiohttp import web

    from bot.gateway.app import make_app

    settings = get_settings()
    host = args.host or settings.gateway_host
    port = args.port or settings.gateway_port
    print(f"Deskmate gateway on http://{host}:{port}/ (agent inbox: /agent, lead console: /lead)", flush=True)
    web.run_app(make_app(settings), host=host, port=port, print=None)
    return 0


def cmd_actions(args: argparse.Namespace) -> int:
    """Run the action server (Rasa's custom actions) on 127.0.0.1, answering the Rasa server only."""
    from bot.rasa_plugins.action_server import serve

    settings = get_settings()
    serve("actions", "127.0.0.1", args.port or settings.action_port, settings.resolved_action_token())
    return 0


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_commands(commands: Any) -> None:
    """Register this module's sub-commands on ``commands`` (argparse sub-parsers)."""
    run = commands.add_parser("run", help="start Deskmate: action server, Rasa server and gateway")
    run.add_argument("--no-train", action="store_true", help="start the newest model without checking it")
    run.add_argument("--gateways", type=positive, default=1,
                     help="gateway processes, on DESKMATE_GATEWAY_PORT and the ports after it (more than one needs "
                          "DESKMATE_REDIS_URL)")
    run.add_argument("--rasa-servers", type=positive,
                     help="Rasa servers, each with its own action server, on the ports from the first Rasa URL's and "
                          "DESKMATE_ACTION_PORT (default: one per URL in DESKMATE_RASA_URL: two on 2+ cores)")
    run.set_defaults(handler=cmd_run)

    actions = commands.add_parser("actions", help="run the action server (127.0.0.1; Rasa's calls only)")
    actions.add_argument("--port", type=int, help="port (default: DESKMATE_ACTION_PORT)")
    actions.set_defaults(handler=cmd_actions)

    serve = commands.add_parser("serve", help="run the gateway: widget, agent inbox, JSON API")
    serve.add_argument("--host", help="interface (default: DESKMATE_GATEWAY_HOST)")
    serve.add_argument("--port", type=int, help="port (default: DESKMATE_GATEWAY_PORT)")
    serve.set_defaults(handler=cmd_serve)

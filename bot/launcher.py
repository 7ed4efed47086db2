"""Start the bot's processes (action server, Rasa server), wait until they answer, stop them cleanly.

Used by `python -m bot run` (`make run`) and by the test suite, so both run
the bot the same way. Both servers bind to 127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ruamel.yaml import YAML
from sqlalchemy.engine import make_url

from bot.rasa_client import answers
from bot.rasa_plugins.action_server import token_header
from bot.settings import Settings
from bot.training.models import rasa_executable

LOOPBACK = "127.0.0.1"
CACHED_TRACKER_STORE = "bot.rasa_plugins.tracker_cache.CachedSQLTrackerStore"


class StartupError(RuntimeError):
    """A server did not come up."""


def tracker_store_config(url: str, cache_events: int = 0) -> Dict[str, object]:
    """Rasa's SQL tracker store settings for a database URL (SQLite file or PostgreSQL).

    With ``cache_events`` > 0 the store is Deskmate's ``CachedSQLTrackerStore`` (the same tables, each Rasa
    server keeping the trackers it saved, up to that many events in all; bot/rasa_plugins/tracker_cache.py);
    with 0, Rasa's own ``SQL`` store.
    """
    parsed = make_url(url)
    config: Dict[str, object] = {"type": "SQL", "dialect": parsed.get_backend_name(), "db": parsed.database or ""}
    if cache_events > 0:
        config.update(type=CACHED_TRACKER_STORE, cache_events=cache_events)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    for key, value in (("url", parsed.host), ("port", parsed.port), ("username", parsed.username), ("password", parsed.password)):
        if value:
            config[key] = value
    if parsed.query:  # e.g. sslmode, or options=-csearch_path=...
        config["query"] = dict(parsed.query)
    return config


def lock_store_config(redis_url: str) -> Dict[str, object]:
    """Rasa's Redis lock store settings for a redis:// URL: one conversation is processed by one
    Rasa server at a time, whichever servers share its tracker store."""
    from urllib.parse import urlparse

    parsed = urlparse(redis_url)
    config: Dict[str, object] = {"type": "redis", "url": parsed.hostname or "127.0.0.1", "port": parsed.port or 6379,
                                 "key_prefix": "deskmate"}
    database = parsed.path.strip("/")
    config["db"] = int(database) if database.isdigit() else 0
    if parsed.password:
        config["password"] = parsed.password
    return config


def write_endpoints(settings: Settings, action_port: int, target: Path) -> Path:
    """endpoints.yml for this run: the action server's actual port and token, the tracker store from the
    settings and, with ``settings.redis_url``, Rasa's Redis lock store (needed once several Rasa servers
    share the tracker store).

    The file holds the action server's token and may hold the tracker database's password, so it is
    private (mode 600) and under var/.
    """
    yaml = YAML(typ="rt")
    data = yaml.load((settings.project_root / "endpoints.yml").read_text()) or {}
    action_endpoint = data.setdefault("action_endpoint", {})
    action_endpoint["url"] = f"http://{LOOPBACK}:{action_port}/webhook"
    # Only Rasa may call the actions: it sends the action server's token (bot/rasa_plugins/action_server.py).
    action_endpoint["headers"] = {"Authorization": token_header(settings.resolved_action_token())}
    data["tracker_store"] = tracker_store_config(settings.resolved_tracker_database_url(), settings.tracker_cache_events)
    if settings.redis_url:
        data["lock_store"] = lock_store_config(settings.redis_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch(mode=0o600, exist_ok=True)
    target.chmod(0o600)
    with target.open("w") as handle:
        yaml.dump(data, handle)
    return target


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers HTTP 200 (a blocking probe for start-up loops)."""
    return asyncio.run(answers(url, timeout))


def ensure_port_free(port: int, what: str) -> None:
    """Raise StartupError when something already listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        if sock.connect_ex((LOOPBACK, port)) == 0:
            raise StartupError(
                f"port {port} for the {what} is already in use (is Deskmate already running?); "
                "stop that process or choose another port"
            )


@dataclass
class BotProcesses:
    """The servers of one run: action servers, Rasa servers and gateways, by name.

    The first of each kind is named "actions", "rasa" and "gateway" and uses
    ``action_port``, ``rasa_port`` and the port given; further ones are
    "actions-2", "rasa-2", "gateway-2" ... (``run --rasa-servers`` and
    ``--gateways``). Each Rasa server has its own action server.
    """

    settings: Settings
    rasa_port: int
    action_port: int
    log_dir: Optional[Path] = None
    # Extra environment for every server (tests point DESKMATE_* at temporary copies).
    extra_env: Dict[str, str] = field(default_factory=dict)
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)
    # How each process was started (command, environment), so that ``restart`` can do it again.
    commands: Dict[str, Tuple[List[str], Dict[str, str]]] = field(default_factory=dict)
    # Each server's readiness page (HTTP 200 once it answers), by name.
    health: Dict[str, str] = field(default_factory=dict)
    # Each Rasa server's and gateway's base URL, by name, in start order.
    rasa_servers: Dict[str, str] = field(default_factory=dict)
    gateways: Dict[str, str] = field(default_factory=dict)

    @property
    def rasa_url(self) -> str:
        """The first Rasa server's URL."""
        return f"http://{LOOPBACK}:{self.rasa_port}"

    @property
    def rasa_urls(self) -> List[str]:
        """Every Rasa server's URL (the first one's even before it is started)."""
        return list(self.rasa_servers.values()) or [self.rasa_url]

    @property
    def action_url(self) -> str:
        """The first action server's URL."""
        return f"http://{LOOPBACK}:{self.action_port}"

    @property
    def gateway_url(self) -> str:
        """The first gateway's URL ("" before one is started)."""
        return next(iter(self.gateways.values()), "")

    def _spawn(self, name: str, command: List[str], env: Dict[str, str]) -> None:
        self.commands[name] = (command, env)
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{name}.log").open("ab")
        # Own process group: Ctrl-C reaches the supervisor, which stops children in order.
        self.processes[name] = subprocess.Popen(
            command,
            cwd=self.settings.project_root,
            env={**os.environ, **self.extra_env, **env},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )

    def start_actions(self, port: Optional[int] = None, name: str = "actions") -> None:
        """Start an action server (rasa-sdk behind the action token) on 127.0.0.1:``port`` (default: ``action_port``)."""
        port = port or self.action_port
        ensure_port_free(port, "action server")
        self._spawn(
            name,
            [sys.executable, "-m", "bot", "actions", "--port", str(port)],
            {"DESKMATE_ACTION_TOKEN": self.settings.resolved_action_token()},
        )
        self.health[name] = f"http://{LOOPBACK}:{port}/health"

    def start_rasa(self, model: Path, port: Optional[int] = None, action_port: Optional[int] = None,
                   name: str = "rasa", credentials: str = "credentials.yml") -> None:
        """Start a Rasa server on 127.0.0.1:``port`` (default: ``rasa_port``) with ``model``, calling the action
        server on ``action_port`` (default: ``action_port``): the channels of ``credentials`` (default: the
        deskmate channel), HTTP API behind the token."""
        port = port or self.rasa_port
        ensure_port_free(port, "Rasa server")
        endpoints = write_endpoints(
            self.settings, action_port or self.action_port, self.settings.var_dir / "run" / f"endpoints-{port}.yml"
        )
        self._spawn(
            name,
            [
                # Rasa's own command line, with the API token read from the environment, not from argv,
                # which every user of the host can read (bot/rasa_plugins/rasa_run.py).
                sys.executable,
                "-m",
                "bot.rasa_plugins.rasa_run",
                "run",
                "--model",
                str(model),
                "--enable-api",
                "--interface",
                LOOPBACK,
                "--port",
                str(port),
                "--credentials",
                credentials,
                "--endpoints",
                str(endpoints),
            ],
            # The HTTP API's token, which the deskmate channel also checks callers against.
            {"DESKMATE_RASA_TOKEN": self.settings.resolved_rasa_token()},
        )
        self.health[name] = f"http://{LOOPBACK}:{port}/"
        self.rasa_servers[name] = f"http://{LOOPBACK}:{port}"

    def start_bots(self, model: Path, rasa_ports: List[int]) -> None:
        """Start a Rasa server on each of ``rasa_ports``, each with its own action server (ports counted up
        from ``action_port``); the first pair is named "actions" and "rasa", then "actions-2", "rasa-2" ..."""
        for index, port in enumerate(rasa_ports):
            suffix = "" if index == 0 else f"-{index + 1}"
            self.start_actions(self.action_port + index, f"actions{suffix}")
            self.start_rasa(model, port, self.action_port + index, f"rasa{suffix}")

    def start_gateway(self, host: str, port: int, env: Optional[Dict[str, str]] = None, name: str = "gateway") -> None:
        """Start a gateway (widget, inbox, JSON API) talking to every Rasa server started so far
        (``env``: more settings)."""
        ensure_port_free(port, "gateway")
        url = f"http://{LOOPBACK if host in ('0.0.0.0', '::') else host}:{port}"
        self._spawn(
            name,
            [sys.executable, "-m", "bot", "serve", "--host", host, "--port", str(port)],
            {"DESKMATE_RASA_URL": ",".join(self.rasa_urls), **(env or {})},
        )
        self.health[name] = f"{url}/health"
        self.gateways[name] = url

    def start(self, model: Path, timeout: float = 240.0) -> None:
        """Start the action server and the Rasa server with ``model``; return once both answer.

        Raises StartupError (a port is taken, a server died or did not answer within ``timeout`` s).
        """
        self.start_actions()
        self.start_rasa(model)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Block until every started server answers; raise StartupError if one dies or time runs out."""
        deadline = time.monotonic() + timeout
        pending = {name: url for name, url in self.health.items() if name in self.processes}
        while pending:
            for name in list(pending):
                process = self.processes[name]
                if process.poll() is not None:
                    raise StartupError(f"the {name} server exited with code {process.returncode} while starting")
                if http_ok(pending[name]):
                    del pending[name]
            if time.monotonic() > deadline:
                raise StartupError(f"timed out waiting for: {', '.join(pending)}")
            if pending:
                time.sleep(0.5)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM every process group, then SIGKILL what is still running after ``grace`` s."""
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()

    def exited(self) -> List[str]:
        """The names of the processes that have exited."""
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def restart(self, name: str) -> None:
        """Start an exited process again, the way it was started (same command, port and log)."""
        if self.processes[name].poll() is None:
            raise ValueError(f"the {name} server is still running")
        command, env = self.commands[name]
        self._spawn(name, command, env)


@dataclass
class Restarts:
    """When to start a crashed server again: at once for a first crash, then after 2, 4 ... at most
    ``max_delay`` seconds while it keeps crashing (crashes older than ``memory`` seconds are forgotten),
    so a server that cannot start does not spin the machine."""

    max_delay: float = 60.0
    memory: float = 600.0
    crashes: Dict[str, List[float]] = field(default_factory=dict)

    def delay(self, name: str, now: float) -> float:
        """Note a crash of ``name`` at ``now`` (monotonic seconds); how long to wait before the restart."""
        recent = [at for at in self.crashes.get(name, []) if now - at < self.memory] + [now]
        self.crashes[name] = recent
        return 0.0 if len(recent) == 1 else min(2.0 ** (len(recent) - 1), self.max_delay)

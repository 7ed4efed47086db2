"""`make run`'s launcher (`python -m bot run`) as an operator meets it: it starts everything, keeps
every server running when one of them dies, and stops them all on Ctrl-C (SIGTERM here)."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

from bot.launcher import Restarts, http_ok
from bot.settings import PROJECT_ROOT
from tests.conftest import free_port


def pids_running(fragment: str) -> List[int]:
    """The processes whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if fragment in command and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        time.sleep(0.5)


def test_restarts_back_off_while_a_server_keeps_crashing() -> None:
    restarts = Restarts(max_delay=60.0, memory=600.0)
    assert [restarts.delay("rasa", t) for t in (0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 125.0)] == [
        0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert restarts.delay("actions", 130.0) == 0.0, "each server has its own count"
    assert restarts.delay("rasa", 2000.0) == 0.0, "crashes long ago are forgotten"


def test_the_launcher_starts_every_server_again_when_one_dies_and_stops_them_all(
    trained_model: Path, tmp_path: Path
) -> None:
    rasa_port, action_port, gateway_port = free_port(), free_port(), free_port()
    env: Dict[str, str] = {
        **os.environ,
        "DESKMATE_VAR_DIR": str(tmp_path / "var"),
        "DESKMATE_DATABASE_URL": f"sqlite:///{tmp_path / 'deskmate.db'}",
        "DESKMATE_TRACKER_DATABASE_URL": f"sqlite:///{tmp_path / 'tracker.db'}",
        "DESKMATE_RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "DESKMATE_ACTION_PORT": str(action_port),
        "DESKMATE_GATEWAY_PORT": str(gateway_port),
        "DESKMATE_RASA_TOKEN": "-Tok" + os.urandom(8).hex(),
    }
    launcher = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--no-train"], cwd=PROJECT_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: "queue.Queue[str]" = queue.Queue()
    seen: List[str] = []
    threading.Thread(target=lambda: [lines.put(line) for line in launcher.stdout], daemon=True).start()  # type: ignore[union-attr]

    def said(text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in line for line in seen):
            assert launcher.poll() is None, f"the launcher exited with {launcher.returncode}:\n{''.join(seen)}"
            try:
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"never printed {text!r} in {seconds} s:\n{''.join(seen)}") from None

    gateway, actions = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{action_port}"
    try:
        said("Deskmate is running", 400)
        said(f"Open the demo:     {gateway}/", 5)

        # Rasa's API token is in no command line (any user of the host can read those), yet guards the API.
        assert pids_running(f"--port {rasa_port}") and pids_running(env["DESKMATE_RASA_TOKEN"]) == []
        rasa = f"http://127.0.0.1:{rasa_port}/status"
        assert not http_ok(rasa) and http_ok(f"{rasa}?token={env['DESKMATE_RASA_TOKEN']}")

        # The action server dies: started again, the rest untouched.
        [action_pid] = pids_running(f"-m bot actions --port {action_port}")
        os.kill(action_pid, signal.SIGKILL)
        said("the actions server stopped", 30)
        wait_for(lambda: http_ok(f"{actions}/health"), 60, "the action server to answer again")
        assert http_ok(f"{gateway}/health") and launcher.poll() is None

        # So does the gateway.
        [gateway_pid] = pids_running(f"-m bot serve --host 127.0.0.1 --port {gateway_port}")
        os.kill(gateway_pid, signal.SIGKILL)
        said("the gateway server stopped", 30)
        wait_for(lambda: http_ok(f"{gateway}/health"), 60, "the gateway to answer again")
        assert pids_running(f"-m bot serve --host 127.0.0.1 --port {gateway_port}") != [gateway_pid]
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=90)
    assert code == 0
    for fragment in (f"--port {rasa_port}", f"--port {action_port}", f"--port {gateway_port}"):
        assert pids_running(fragment) == [], f"{fragment}: still running after the launcher stopped"


def test_several_gateways_without_redis_are_refused_with_what_to_set(tmp_path: Path) -> None:
    env = {**os.environ, "DESKMATE_VAR_DIR": str(tmp_path / "var"), "DESKMATE_REDIS_URL": ""}
    refused = subprocess.run([sys.executable, "-m", "bot", "run", "--no-train", "--gateways", "2"], cwd=PROJECT_ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "DESKMATE_REDIS_URL" in refused.stderr
    nonsense = subprocess.run([sys.executable, "-m", "bot", "run", "--rasa-servers", "0"], cwd=PROJECT_ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
    assert nonsense.returncode == 2 and "at least 1" in nonsense.stderr


def test_make_run_starts_a_rasa_server_per_core_at_most_two() -> None:
    from bot.settings import default_rasa_url

    assert default_rasa_url(1) == "http://127.0.0.1:5005"
    assert default_rasa_url(2) == default_rasa_url(16) == "http://127.0.0.1:5005,http://127.0.0.1:5006"


def test_a_rasa_token_that_starts_with_a_dash_reaches_rasa_whole_and_never_its_command_line(tmp_path: Path) -> None:
    from rasa.__main__ import create_argument_parser

    from bot.launcher import BotProcesses
    from bot.rasa_plugins.rasa_run import TokenError, rasa_arguments
    from bot.settings import Settings

    started: List[List[str]] = []
    environments: List[Dict[str, str]] = []
    bot = BotProcesses(Settings(rasa_token="-Yx3_generated", var_dir=tmp_path), rasa_port=free_port(),
                       action_port=free_port())
    bot._spawn = lambda name, command, env: (started.append(command), environments.append(env))  # type: ignore
    bot.start_rasa(tmp_path / "model.tar.gz")
    command = started[0]
    assert command[1:3] == ["-m", "bot.rasa_plugins.rasa_run"]
    assert not any("Yx3_generated" in argument for argument in command)
    # Rasa's own command-line parser reads what the wrapper hands Rasa in that process.
    parsed = create_argument_parser().parse_args(rasa_arguments(command[3:], environments[0]))
    assert parsed.auth_token == "-Yx3_generated"
    for refused in ([*command[3:], "--auth-token", "x"], command[3:]):
        try:
            rasa_arguments(refused, {} if refused == command[3:] else environments[0])
        except TokenError:
            continue
        raise AssertionError(f"not refused: {refused}")

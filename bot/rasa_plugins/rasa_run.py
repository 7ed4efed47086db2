"""``rasa`` with the HTTP API token taken from the environment, so it never shows in the process list.

Rasa 3.6 takes its API token only as ``--auth-token`` on the command line, and a command line is
readable by every user of the host (``ps``, /proc/PID/cmdline); a process's environment is readable
only by its own user. ``python -m bot.rasa_plugins.rasa_run run --model M ...`` runs Rasa's own
command-line entry point (``rasa.__main__.main``) in this process with ``--auth-token`` added from
``DESKMATE_RASA_TOKEN``, which the deskmate channel reads too (bot/rasa_plugins/channel.py).

Exit status 2, with a message on stderr, when ``run`` is asked for and the variable is empty or
``--auth-token`` is given on the command line (the token would be in the process list again).
"""
from __future__ import annotations

import os
import sys
from typing import List, Mapping, Optional

TOKEN_VARIABLE = "DESKMATE_RASA_TOKEN"


class TokenError(ValueError):
    """The command line names the token, or ``run`` has no token to use."""


def rasa_arguments(arguments: List[str], environment: Mapping[str, str]) -> List[str]:
    """``arguments`` (Rasa's command line, without the program name) with ``--auth-token=<token>`` added
    to a ``run`` command from ``environment[TOKEN_VARIABLE]``; other commands unchanged.

    Raises TokenError when the arguments already hold ``--auth-token`` or ``run`` has no token."""
    if any(argument == "--auth-token" or argument.startswith("--auth-token=") for argument in arguments):
        raise TokenError(f"give the API token in {TOKEN_VARIABLE}, not as --auth-token (it would show in ps)")
    if not arguments or arguments[0] != "run":
        return list(arguments)
    token = environment.get(TOKEN_VARIABLE, "")
    if not token:
        raise TokenError(f"{TOKEN_VARIABLE} is empty: Rasa's HTTP API would be open to anyone who reaches its port")
    # One argument: a generated token may start with "-", which argparse would take for an option.
    return [*arguments, f"--auth-token={token}"]


def main(arguments: Optional[List[str]] = None) -> None:
    """Run Rasa's command line with the token from the environment (module docstring)."""
    try:
        sys.argv = ["rasa", *rasa_arguments(sys.argv[1:] if arguments is None else arguments, os.environ)]
    except TokenError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()

"""The environment of the processes a check or a retraining job starts.

Settings may be built in code (the gateway, tests) rather than read from the
environment, and a child process reads only its environment: every field is
passed on as its ``DESKMATE_*`` variable. The project may be a copy without
the code, so the code's folder is put on PYTHONPATH (Rasa imports the kb
importer and MessageGuard from config.yml; the action server imports ``bot``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

from bot.settings import Settings

CODE_ROOT = Path(__file__).resolve().parent.parent.parent


def settings_env(settings: Settings) -> Dict[str, str]:
    """``DESKMATE_*`` variables that make a child process's Settings() equal ``settings``."""
    env: Dict[str, str] = {}
    for name in settings.__fields__:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env[f"DESKMATE_{name.upper()}"] = text
    return env


def child_env(settings: Settings, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """This process's environment, the settings' variables, the code on PYTHONPATH, and ``extra``."""
    paths = [str(CODE_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        **os.environ,
        **settings_env(settings),
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        **(extra or {}),
    }

"""Checking an authenticator (TOTP) code: which time step it belongs to, so each code works once.

pyotp's ``verify_and_get_timecode`` does the RFC 6238 arithmetic (30-second
steps, one step of clock drift either side); the caller then claims the step
in the store (``bot.store.staff.claim_totp_step``), which refuses a step used
before (RFC 6238 section 5.2: a verifier must not accept the same code twice).
"""
from __future__ import annotations

from typing import Optional

import pyotp
from pyotp.exceptions import OTPVerificationError

DRIFT_STEPS = 1  # a code from the step before or after the current one still counts (a slow typist, a clock off by <30 s)


def code_step(secret: Optional[str], code: object) -> Optional[int]:
    """The TOTP time step (Unix seconds // 30, real time) that ``code`` matches for ``secret``, or None.

    ``code`` is what was typed: spaces are ignored; anything but digits is no match.
    """
    entered = "".join(str(code or "").split())
    if not secret or not entered.isdigit():
        return None
    try:
        return int(pyotp.TOTP(secret).verify_and_get_timecode(entered, valid_window=DRIFT_STEPS))
    except OTPVerificationError:
        return None

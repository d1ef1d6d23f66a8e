"""Time-based one-time codes (RFC 6238, 30-second steps, 6 digits): the optional second factor.

A code is accepted one step either side of now (a phone's clock drifts) and only for a step newer
than the last one accepted, so a code seen over someone's shoulder cannot be used again.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

ISSUER = "Khiên"
STEP_SECONDS = 30
WINDOW = 1  # steps accepted either side of the current one


def new_secret() -> str:
    """A random base32 secret (160 bits), as authenticator apps expect."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, username: str) -> str:
    """The otpauth:// URI an authenticator app imports (typed in, or read from a QR code)."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=username, issuer_name=ISSUER)


def step_of(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, *, now: datetime, after_step: int | None) -> int | None:
    """The time step ``code`` belongs to (within the window, newer than ``after_step``), else None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = step_of(now)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue  # already used (or older than a code already used)
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None

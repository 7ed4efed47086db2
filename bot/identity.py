"""Who the visitor is: a signed token from the website, verified or ignored.

The website and Deskmate share a secret. The site signs an HS256 JWT whose
``sub`` is the customer's id or e-mail, with an ``exp``; it travels as
message metadata. Only a token that verifies names a customer: a forged,
expired, unsigned or malformed one means anonymous, never premium. The
reason is logged, the token never is.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional

import jwt

ALGORITHM = "HS256"
# Metadata key the widget, the gateway and `python -m bot eval` put the token under.
TOKEN_METADATA_KEY = "user_token"
# The website's clock and ours may disagree by a little.
CLOCK_LEEWAY_SECONDS = 30

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """The outcome of checking a message's token: a customer key, or anonymous and why."""

    customer_key: Optional[str]
    reason: str

    @property
    def anonymous(self) -> bool:
        return self.customer_key is None


ANONYMOUS = Identity(None, "no token")


def issue_token(secret: str, subject: str, ttl: timedelta = timedelta(hours=12), now: Optional[datetime] = None) -> str:
    """A token saying the bearer is customer ``subject`` until ``now + ttl``."""
    if not secret:
        raise ValueError("an identity secret is needed to sign tokens")
    issued = now or datetime.now(timezone.utc)
    claims = {"sub": subject, "iat": int(issued.timestamp()), "exp": int((issued + ttl).timestamp())}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: Any) -> Identity:
    """The customer a token names, or anonymous with the reason it was refused."""
    if not token:
        return ANONYMOUS
    if not secret:
        return _refused("no identity secret is configured")
    if not isinstance(token, str):
        return _refused("token is not a string")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # never "none", never another algorithm
            options={"require": ["sub", "exp"]},
            leeway=CLOCK_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        return _refused("token expired")
    except jwt.InvalidSignatureError:
        return _refused("bad signature")
    except jwt.MissingRequiredClaimError as error:
        return _refused(f"missing claim {error.claim}")
    except jwt.InvalidAlgorithmError:
        return _refused("algorithm not allowed")
    except jwt.InvalidTokenError as error:
        return _refused(f"malformed token ({error.__class__.__name__})")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        return _refused("empty subject")
    return Identity(subject.strip(), "verified")


def identity_from_metadata(secret: str, metadata: Optional[Mapping[str, Any]]) -> Identity:
    """Check the token a message carries in its metadata (anonymous when there is none)."""
    return verify_token(secret, (metadata or {}).get(TOKEN_METADATA_KEY))


def _refused(reason: str) -> Identity:
    logger.warning("identity: token refused, visitor treated as anonymous: %s", reason)
    return Identity(None, reason)

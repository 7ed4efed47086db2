"""Who the visitor is: a signed token from the website, verified or ignored.

The website and Deskmate share a secret. The site signs an HS256 JWT whose
``sub`` is the customer's id or e-mail, with an ``exp``; it travels as
message metadata. Only a token that verifies names a customer: a forged,
expired, unsigned or malformed one means anonymous, never premium. The
reason is logged, the token never is.

The gateway does not hand the website's token on to Rasa (whose tracker
store keeps every message's metadata): it hands on a token of its own for
the same customer, with the audience ``BOT_AUDIENCE`` and a life of
``BOT_TOKEN_SECONDS``, which the actions accept and the gateway refuses from
visitors. What the tracker store keeps thus opens no widget or API session.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Collection, Dict, Mapping, Optional

import jwt

ALGORITHM = "HS256"
# Metadata key the widget, the gateway and `python -m bot eval` put the token under.
TOKEN_METADATA_KEY = "user_token"
# The website's clock and ours may disagree by a little.
CLOCK_LEEWAY_SECONDS = 30
# The audience of the tokens the gateway signs for the bot (the actions), and how long they live (s):
# a turn, with its wait in the conversation's queue and the bot's time-out, is far shorter.
BOT_AUDIENCE = "deskmate-bot"
BOT_TOKEN_SECONDS = 15 * 60

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


def issue_token(secret: str, subject: str, ttl: timedelta = timedelta(hours=12), now: Optional[datetime] = None,
                audience: Optional[str] = None) -> str:
    """A token saying the bearer is customer ``subject`` until ``now + ttl`` (for ``audience`` alone, if
    given). Raises ValueError without a secret."""
    if not secret:
        raise ValueError("an identity secret is needed to sign tokens")
    issued = now or datetime.now(timezone.utc)
    claims: Dict[str, Any] = {"sub": subject, "iat": int(issued.timestamp()), "exp": int((issued + ttl).timestamp())}
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: Any, audiences: Collection[str] = ()) -> Identity:
    """The customer a token names, or anonymous with the reason it was refused. A token with an
    audience (``aud``) is taken only when ``audiences`` names it (the website's tokens have none)."""
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
            options={"require": ["sub", "exp"], "verify_aud": False},  # checked below
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
    audience = claims.get("aud")
    if audience is not None and not (isinstance(audience, str) and audience in audiences):
        return _refused("token for another audience")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        return _refused("empty subject")
    return Identity(subject.strip(), "verified")


def identity_from_metadata(secret: str, metadata: Optional[Mapping[str, Any]],
                           audiences: Collection[str] = ()) -> Identity:
    """Check the token a message carries in its metadata (anonymous when there is none)."""
    return verify_token(secret, (metadata or {}).get(TOKEN_METADATA_KEY), audiences)


def bot_token(secret: str, identity: Identity) -> Optional[str]:
    """The token the gateway hands the bot for a verified ``identity`` (None for anonymous): the same
    customer, audience BOT_AUDIENCE, valid BOT_TOKEN_SECONDS."""
    if identity.customer_key is None:
        return None
    return issue_token(secret, identity.customer_key, timedelta(seconds=BOT_TOKEN_SECONDS), audience=BOT_AUDIENCE)


def _refused(reason: str) -> Identity:
    logger.warning("identity: token refused, visitor treated as anonymous: %s", reason)
    return Identity(None, reason)

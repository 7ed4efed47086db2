"""Only a verified token names a customer; anything else is anonymous, and the token is never logged."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from bot.identity import TOKEN_METADATA_KEY, identity_from_metadata, issue_token, verify_token

SECRET = "a-shared-secret-of-at-least-32-bytes!!"


def test_a_signed_token_names_its_customer() -> None:
    identity = verify_token(SECRET, issue_token(SECRET, "premium@demo.example"))
    assert identity.customer_key == "premium@demo.example" and not identity.anonymous


@pytest.mark.parametrize(
    "token, reason",
    [
        (issue_token("another-secret-of-at-least-32-bytes!!", "premium@demo.example"), "bad signature"),
        (issue_token(SECRET, "premium@demo.example", now=datetime.now(timezone.utc) - timedelta(days=2)), "token expired"),
        (jwt.encode({"sub": "premium@demo.example", "exp": 9999999999}, None, algorithm="none"), "algorithm"),
        (jwt.encode({"sub": "premium@demo.example"}, SECRET, algorithm="HS256"), "missing claim exp"),
        (jwt.encode({"sub": "x", "exp": 9999999999}, SECRET, algorithm="HS512"), "algorithm"),
        ("not.a.jwt", "malformed"),
        (12345, "not a string"),
    ],
    ids=["forged", "expired", "unsigned", "no-expiry", "other-algorithm", "malformed", "not-a-string"],
)
def test_a_bad_token_means_anonymous_and_says_why(token: object, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        identity = verify_token(SECRET, token)
    assert identity.anonymous and reason in identity.reason
    assert isinstance(token, int) or str(token) not in caplog.text


def test_no_token_in_the_metadata_is_anonymous_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert identity_from_metadata(SECRET, None).anonymous
        assert identity_from_metadata(SECRET, {"other": 1}).anonymous
    assert caplog.text == ""


def test_the_token_travels_under_its_metadata_key() -> None:
    metadata = {TOKEN_METADATA_KEY: issue_token(SECRET, "7")}
    assert identity_from_metadata(SECRET, metadata).customer_key == "7"

"""The action server that only Rasa may call: rasa-sdk's own app, behind a bearer token, on 127.0.0.1.

Actions open tickets and read customers, so ``POST /webhook`` (and
``/actions``) answer 401 unless the request carries
``Authorization: Bearer <DESKMATE_ACTION_TOKEN>``, which Rasa sends from the
endpoints file the launcher writes. ``GET /health`` stays open for the
launcher's readiness check. Started by `python -m bot actions`.
"""
from __future__ import annotations

import logging
import secrets
from typing import Any, Optional

from rasa_sdk.endpoint import create_app
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

OPEN_PATHS = ("/health",)


def token_header(token: str) -> str:
    """The ``Authorization`` header value Rasa sends to the action server."""
    return f"Bearer {token}"


def guarded_app(action_package: str, token: str) -> Any:
    """rasa-sdk's Sanic app for ``action_package``, refusing every call without the token (401)."""
    if not token:
        raise ValueError("the action server needs a token (DESKMATE_ACTION_TOKEN)")
    app = create_app(action_package, cors_origins=None)
    expected = token_header(token)

    @app.middleware("request")
    async def only_rasa(request: Request) -> Optional[HTTPResponse]:
        if request.path in OPEN_PATHS:
            return None
        if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
            logger.warning("action server: a call without the right token was refused (%s)", request.ip)
            return response.json({"error": "this server answers the Rasa server only"}, status=401)
        return None

    return app


def serve(action_package: str, host: str, port: int, token: str) -> None:
    """Run the guarded action server in the foreground (one Sanic worker) until stopped."""
    guarded_app(action_package, token).run(host=host, port=port, workers=1, access_log=False)

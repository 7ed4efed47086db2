"""The inbox's ticket JSON carries the first agent reply's time, which is what stops its countdown (issue 13).

An in-process gateway over a store on SQLite and PostgreSQL, no bot behind it (the inbox needs none),
its clock fixed at NOW: the first reply is stamped NOW.
"""
from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest

from bot.settings import PROJECT_ROOT, Settings
from bot.store.database import Store
from bot.store.messages import record_message
from bot.store.staff import add_staff
from bot.store.tickets import TicketRequest, get_ticket, open_ticket
from tests.conversation import sign_in, start
from tests.socket_client import socket_client

NOW = datetime(2026, 11, 7, 14, 2, tzinfo=timezone.utc)
AGENT = "ines@support.example"
PASSWORD = "correct horse battery"


@pytest.fixture
def inbox_settings(store: Store, tmp_path: Path) -> Settings:
    """A gateway over ``store`` with agent Ines, its clock at NOW, no bot listening."""
    add_staff(store, AGENT, "Ines", "agent", PASSWORD, NOW)
    shutil.copytree(PROJECT_ROOT / "kb", tmp_path / "kb")
    return Settings(database_url=store.url, fixed_now=NOW.isoformat(), rasa_url="http://127.0.0.1:9",
                    kb_dir=tmp_path / "kb", project_root=tmp_path)


def ticket_for(store: Store, name: str, due: datetime) -> int:
    opened = due - timedelta(minutes=5)
    record_message(store, name, "visitor", "my payment failed", opened, {"metadata": {}})
    return open_ticket(store, TicketRequest(name, "premium", "high", "requested", due), opened).ticket.id


def test_the_ticket_json_carries_the_first_reply_time_and_the_socket_says_to_reread_it(
    inbox_settings: Settings, store: Store
) -> None:
    in_time = ticket_for(store, "web:in-time", NOW + timedelta(minutes=2))
    late = ticket_for(store, "web:late", NOW - timedelta(minutes=3))

    async def run() -> None:
        client = await start(inbox_settings)
        sio = socket_client()
        events: List[Dict[str, Any]] = []
        changed = asyncio.Event()

        def on_change(data: Dict[str, Any]) -> None:
            events.append(data)
            changed.set()

        sio.on("ticket_message", on_change, namespace="/agent")
        try:
            csrf = await sign_in(client, PASSWORD, AGENT)
            cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
            await sio.connect(str(client.make_url("/")), namespaces=["/agent"], transports=["websocket"],
                              headers={"Cookie": cookie})

            async def ticket(number: int) -> Dict[str, Any]:
                response = await client.get(f"/agent/api/tickets/{number}")
                assert response.status == 200
                return (await response.json())["ticket"]

            async def queued() -> Dict[int, Dict[str, Any]]:
                return {t["id"]: t for t in (await (await client.get("/agent/api/queue")).json())["tickets"]}

            before = await ticket(in_time)
            assert before["first_agent_reply_at"] is None and before["overdue"] is False
            assert before["sla_due_at"] == (NOW + timedelta(minutes=2)).isoformat()
            assert (await queued())[late]["overdue"] is True

            headers = {"X-CSRF-Token": csrf}
            for number in (in_time, late):
                reply = await client.post(f"/agent/api/tickets/{number}/reply", json={"text": "On it."},
                                          headers=headers)
                assert reply.status == 200, await reply.text()
                # The reply's own answer carries it (the replying agent's view stops at once) ...
                assert (await reply.json())["ticket"]["first_agent_reply_at"] == NOW.isoformat()
                # ... and every open inbox is told to re-read that ticket (ticket_message: the row and the view).
                await asyncio.wait_for(changed.wait(), 10)
                assert {"ticket": number} in events
                changed.clear()

            for view in (await ticket(in_time), (await queued())[in_time]):
                assert view["first_agent_reply_at"] == NOW.isoformat() and view["overdue"] is False
            for view in (await ticket(late), (await queued())[late]):
                # Replied 3 minutes after its due time: no longer overdue, and the times show it was late.
                assert view["first_agent_reply_at"] == NOW.isoformat() and view["overdue"] is False
                assert view["sla_due_at"] == (NOW - timedelta(minutes=3)).isoformat()

            # A second reply does not move the first reply's time.
            again = await client.post(f"/agent/api/tickets/{in_time}/reply", json={"text": "Done."}, headers=headers)
            assert again.status == 200
            assert (await again.json())["ticket"]["first_agent_reply_at"] == NOW.isoformat()
            stored = get_ticket(store, in_time)
            assert stored is not None and stored.first_agent_reply_at == NOW
        finally:
            await sio.disconnect()
            await client.close()

    asyncio.run(run())

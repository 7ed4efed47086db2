"""The lead console at /lead: only leads get in; the page shows the report's figures and charts."""
from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Awaitable, Callable, Optional

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.gateway.app import make_app
from bot.reports import build_report
from bot.settings import Settings
from bot.store.staff import add_staff
from tests.test_reports import DAYS, NOW, Tally, generate

PASSWORD = "correct horse battery"
LEAD = "lena@support.example"
AGENT = "arno@support.example"
SINCE, UNTIL = DAYS[0].isoformat(), DAYS[-1].isoformat()
LEAD_URLS = [
    ("GET", "/lead"),
    ("GET", f"/lead/report?format=csv&since={SINCE}&until={UNTIL}"),
    ("GET", f"/lead/charts/volume.svg?since={SINCE}&until={UNTIL}"),
    ("GET", "/lead/api/misses"),
    ("POST", "/lead/api/misses/1"),
    ("GET", "/lead/api/retrain"),
    ("POST", "/lead/api/retrain"),
]


@pytest.fixture
def lead_settings(database_url: str, tmp_path: Path) -> Settings:
    """A gateway over a generated history, with a lead and an agent account, its clock at the history's NOW."""
    add_staff(database_url, LEAD, "Lena", "lead", PASSWORD, NOW)
    add_staff(database_url, AGENT, "Arno", "agent", PASSWORD, NOW)
    return Settings(database_url=database_url, fixed_now=NOW.isoformat(), rasa_url="http://127.0.0.1:9")


@pytest.fixture
def lead_history(database_url: str, lead_settings: Settings) -> Tally:
    return generate(database_url)


def with_client(settings: Settings, body: Callable[[TestClient], Awaitable[None]]) -> None:
    async def run() -> None:
        client = TestClient(TestServer(make_app(settings)))
        await client.start_server()
        try:
            await body(client)
        finally:
            await client.close()

    asyncio.run(run())


async def sign_in(client: TestClient, email: str) -> Optional[str]:
    """Sign ``email`` in; the CSRF token of the session."""
    page = await client.get("/agent/login")
    token = (await page.text()).split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = await client.post(
        "/agent/login", data={"email": email, "password": PASSWORD, "csrf_token": token}, allow_redirects=False
    )
    assert response.status == 302, await response.text()
    return token


def test_visitors_and_agents_are_refused_and_leads_get_in(lead_settings: Settings) -> None:
    async def body(client: TestClient) -> None:
        for method, url in LEAD_URLS:
            response = await client.request(method, url, allow_redirects=False)
            expected = 302 if url == "/lead" else 401
            assert response.status == expected, (method, url, response.status)
        await sign_in(client, AGENT)
        for method, url in LEAD_URLS:
            response = await client.request(method, url, allow_redirects=False)
            assert response.status == 403, (method, url, response.status)
        landing = await client.get("/agent/login", allow_redirects=False)
        assert landing.headers["Location"] == "/agent"

    with_client(lead_settings, body)

    async def as_lead(client: TestClient) -> None:
        await sign_in(client, LEAD)
        landing = await client.get("/agent/login", allow_redirects=False)
        assert landing.headers["Location"] == "/lead"
        assert (await client.get("/lead")).status == 200
        assert (await client.get("/lead/api/retrain")).status == 200
        # State changes still need the session's CSRF token, leads included.
        assert (await client.post("/lead/api/retrain")).status == 403

    with_client(lead_settings, as_lead)


def test_the_page_shows_the_reports_figures_and_its_charts(lead_settings: Settings, lead_history: Tally) -> None:
    report = build_report(lead_settings.database_url, DAYS[0], DAYS[-1], NOW)
    total = report["total"]
    assert total["conversations"] > 0

    async def body(client: TestClient) -> None:
        await sign_in(client, LEAD)
        page = await client.get(f"/lead?since={SINCE}&until={UNTIL}")
        assert page.status == 200
        html = await page.text()
        assert f'data-testid="figure-conversations">{total["conversations"]}<' in html
        assert f'data-testid="figure-tickets">{total["tickets"]}<' in html
        assert f'data-testid="figure-containment">{total["containment"] * 100:.1f}%<' in html
        assert f'data-testid="figure-backlog">{report["now"]["open_backlog"]}<' in html
        for name in ("volume", "rates", "tickets", "csat"):
            src = f"/lead/charts/{name}.svg?since={SINCE}&amp;until={UNTIL}"
            assert f'src="{src}"' in html
            chart = await client.get(src.replace("&amp;", "&"))
            assert chart.status == 200 and chart.content_type == "image/svg+xml"
            assert (await chart.text()).lstrip().startswith("<?xml")
        assert (await client.get(f"/lead/charts/pie.svg?since={SINCE}")).status == 404
        worst = total["articles"][0]["article_id"]
        assert html.index(f"<code>{worst}</code>") < html.index(f"<code>{total['articles'][-1]['article_id']}</code>")

        download = await client.get(f"/lead/report?format=csv&since={SINCE}&until={UNTIL}")
        assert download.status == 200
        assert "attachment" in download.headers["Content-Disposition"]
        assert (await download.text()).startswith("date,figure,key,value\n")

    with_client(lead_settings, body)


def test_a_wrong_period_is_explained_not_crashed(lead_settings: Settings) -> None:
    async def body(client: TestClient) -> None:
        await sign_in(client, LEAD)
        backwards = await client.get(f"/lead?since={UNTIL}&until={SINCE}")
        assert backwards.status == 400
        assert "is after the end" in await backwards.text()
        garbage = await client.get("/lead?since=yesterday")
        assert garbage.status == 400
        assert "dates must look like" in await garbage.text()
        default = await client.get("/lead")
        assert default.status == 200
        assert f'value="{NOW.date().isoformat()}"' in await default.text()

    with_client(lead_settings, body)


def test_an_empty_store_shows_an_empty_report(lead_settings: Settings) -> None:
    async def body(client: TestClient) -> None:
        await sign_in(client, LEAD)
        page = await client.get(f"/lead?since={date(2026, 1, 1)}&until={date(2026, 1, 31)}")
        assert page.status == 200
        html = await page.text()
        assert 'data-testid="figure-conversations">0<' in html
        assert "No article answers in this period." in html

    with_client(lead_settings, body)

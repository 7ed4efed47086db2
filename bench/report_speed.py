"""How long the support leads' report takes (issue 5 targets: CLI <= 5 s, /lead page <= 1 s at 1,000,000 messages).

Times ``build_report`` in this process (all time, and the last 30 days as
the /lead page shows it by default), then the whole CLI,
``python -m bot report --format json``, as a subprocess (Python start-up,
imports, the migration check, the report and its JSON), and prints the
median and max of ``--runs`` runs of each. With ``--gateway`` it also signs
in at ``/agent/login`` as a lead and times ``GET /lead`` (the first request of the session
apart) and the page's chart images requested after it. Fill a database
first with bench/generate_history.py. Usage:

    .venv/bin/python bench/report_speed.py --database-url sqlite:///var/bench/history.db [--runs 3]
        [--gateway http://127.0.0.1:8000 --lead-email lead@lumio.example --lead-password '...']
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot.reports import build_report  # noqa: E402
from bot.store.database import Store, make_engine  # noqa: E402
from bot.store.models import Feedback, Message, Ticket  # noqa: E402


def timed(runs: int, call: Callable[[], object]) -> List[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def show(name: str, timings: List[float], target: Optional[float] = None) -> None:
    verdict = ""
    if target is not None:
        verdict = f"  (target <= {target:g} s: {'met' if max(timings) <= target else 'MISSED'})"
    runs = ", ".join(f"{t:.2f}" for t in timings)
    print(f"{name:<38} median {statistics.median(timings):6.2f} s, max {max(timings):6.2f} s  [{runs}]{verdict}")


def sizes(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            count = lambda query: connection.execute(query).scalar()  # noqa: E731
            messages = count(select(func.count()).select_from(Message))
            conversations = count(select(func.count(func.distinct(Message.conversation_id))))
            tickets = count(select(func.count()).select_from(Ticket))
            feedback = count(select(func.count()).select_from(Feedback))
    finally:
        engine.dispose()
    return f"{conversations} conversations, {messages} messages, {tickets} tickets, {feedback} feedback rows"


def cli(url: str, *extra: str) -> Callable[[], None]:
    env = {**os.environ, "DESKMATE_DATABASE_URL": url}

    def run() -> None:
        done = subprocess.run([sys.executable, "-m", "bot", "report", "--format", "json", *extra],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"python -m bot report failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        json.loads(done.stdout)
    return run


def lead_page(gateway: str, email: str, password: str, runs: int) -> None:
    import requests

    base = gateway.rstrip("/")
    session = requests.Session()
    form = session.get(f"{base}/agent/login", timeout=30)
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if form.status_code != 200 or not match:
        print(f"GET /lead: cannot sign in: /agent/login answered {form.status_code} without a CSRF token")
        return
    signed = session.post(f"{base}/agent/login", timeout=30, allow_redirects=False,
                          data={"csrf_token": match.group(1), "email": email, "password": password})
    if signed.status_code != 302:
        print(f"GET /lead: sign-in refused ({signed.status_code}): check --lead-email / --lead-password")
        return
    started = time.perf_counter()
    first = session.get(f"{base}/lead", timeout=120, allow_redirects=False)
    first_seconds = time.perf_counter() - started
    if first.status_code == 404:
        print("GET /lead: 404 Not Found: this gateway has no /lead page (not built yet?); nothing timed")
        return
    if first.status_code != 200:
        print(f"GET /lead: answered {first.status_code} (a lead account is needed); nothing timed")
        return

    print(f"first GET /lead of this session: {first_seconds:.2f} s")
    charts = [html.unescape(u) for u in re.findall(r'(/lead/charts/[^"\']+\.svg\?[^"\']*)', first.text)]
    chart_timings: List[float] = []

    def get() -> None:
        response = session.get(f"{base}/lead", timeout=120, allow_redirects=False)
        response.raise_for_status()
        # Then its charts, as a browser would (one after another: reused from the page's report).
        started = time.perf_counter()
        for url in dict.fromkeys(charts):
            session.get(f"{base}{url}", timeout=120).raise_for_status()
        chart_timings.append(time.perf_counter() - started)
    show("GET /lead (signed in as a lead)", timed(runs, get), 1.0)
    if charts:
        show(f"  then its {len(set(charts))} charts, together", chart_timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gateway", help="a running gateway's base URL, to time GET /lead")
    parser.add_argument("--lead-email")
    parser.add_argument("--lead-password")
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process timings")
    args = parser.parse_args()
    url = args.database_url
    today = datetime.now(timezone.utc).date()
    last30 = (today - timedelta(days=29), today)
    print(f"{make_engine(url).dialect.name}: {sizes(url)}")

    started = time.perf_counter()
    store = Store(url)
    report = build_report(store)
    print(f"first build_report (connects, checks the schema): {time.perf_counter() - started:.2f} s, "
          f"{report['total']['conversations']} conversations over {len(report['days'])} days")
    show("build_report, all time", timed(args.runs, lambda: build_report(store)), 5.0)
    show("build_report, last 30 days", timed(args.runs, lambda: build_report(store, *last30)), 1.0)
    if not args.skip_cli:
        show("python -m bot report --format json", timed(args.runs, cli(url)), 5.0)
        show("  ... --since (last 30 days)", timed(args.runs, cli(url, "--since", last30[0].isoformat())), 5.0)
    if args.gateway:
        if not (args.lead_email and args.lead_password):
            parser.error("--gateway needs --lead-email and --lead-password")
        lead_page(args.gateway, args.lead_email, args.lead_password, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

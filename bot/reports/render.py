"""The report as text (a readable table, with each figure's definition), CSV or JSON."""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from bot.reports.figures import SLA_COUNTS

FORMATS = ("text", "csv", "json")
CSV_HEADER = ("date", "figure", "key", "value")


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _number(value: Any) -> str:
    return "-" if value is None else str(value)


def _sla_cell(counts: Dict[str, Any]) -> str:
    """A day's first replies in the text table: "3/5 60.0%" (within SLA / due, share)."""
    return f"{counts.get('within_sla', 0)}/{counts.get('due', 0)} {_percent(counts.get('share'))}"


def sla_summary(counts: Dict[str, Any]) -> str:
    """One priority's first replies in words, e.g. "within SLA 3 of 5 due (60.0%), 1 late, 1 unanswered;
    2 not yet due". ``counts`` is a ``first_reply_sla`` entry of the report (ticket counts and ``share``);
    late, unanswered, not yet due and closed before due are named only when there are any."""
    due = counts.get("due", 0)
    text = f"within SLA {counts.get('within_sla', 0)} of {due} due"
    if due:
        text += f" ({_percent(counts.get('share'))})"
    misses = [f"{counts[name]} {name.replace('_', ' ')}" for name in ("late", "unanswered") if counts.get(name)]
    others = [f"{counts[name]} {name.replace('_', ' ')}" for name in ("not_yet_due", "closed_before_due")
              if counts.get(name)]
    return text + "".join(", " + m for m in misses) + ("; " + ", ".join(others) if others else "")


def csv_rows(report: Dict[str, Any]) -> Iterator[Tuple[str, str, str, Any]]:
    """(date, figure, key, value) rows: each day, then "total", then "now"."""
    periods = [(d["date"], d) for d in report["days"]] + [("total", report["total"])]
    for day, p in periods:
        for figure in ("conversations", "contained", "containment", "bot_answers", "fallbacks", "fallback_rate", "tickets"):
            yield day, figure, "", p[figure]
        for figure in ("tickets_by_reason", "tickets_by_plan"):
            for key, value in p[figure].items():
                yield day, figure, key, value
        for article in p["articles"]:
            for figure in ("answers", "helpful", "not_helpful", "helpful_ratio"):
                yield day, f"article_{figure}", article["article_id"], article[figure]
        for group, csat in p["csat"].items():
            yield day, f"csat_{group}_count", "", csat["count"]
            yield day, f"csat_{group}_average", "", csat["average"]
            for stars, count in csat["distribution"].items():
                yield day, f"csat_{group}_stars", stars, count
        for priority, counts in p["first_reply_sla"].items():
            for name in SLA_COUNTS + ("share",):
                yield day, f"first_reply_sla_{name}", priority, counts[name]
    for figure, value in report["now"].items():
        yield "now", figure, "", value
    for request in report.get("needs_new_article", []):
        yield request["decided_at"][:10], "needs_new_article", request["decided_by"], request["text"]


# A cell a spreadsheet would read as a formula (OWASP, "CSV Injection"): = + - @, tab, CR.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: text starting with a formula character gets a leading ``'``.

    Numbers stay numbers. (defusedcsv does the same for = + - @ but leaves
    tab and CR, which OWASP lists too; hence this one function.)
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(report: Dict[str, Any]) -> str:
    """The report as CSV, one row per day, figure and key; every cell spreadsheet-safe (``safe_cell``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for day, figure, key, value in csv_rows(report):
        writer.writerow([safe_cell("" if cell is None else cell) for cell in (day, figure, key, value)])
    return out.getvalue()


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def render_text(report: Dict[str, Any]) -> str:
    since, until = report["since"] or "the beginning", report["until"] or "today"
    out = [f"Deskmate report, {since} to {until} (UTC days; generated {report['generated_at']})", ""]
    periods = [(d["date"], d) for d in report["days"]] + [("total", report["total"])]
    rows = []
    for day, p in periods:
        sla = p["first_reply_sla"]
        rows.append([day, p["conversations"], _percent(p["containment"]), _percent(p["fallback_rate"]), p["tickets"],
                     _number(p["csat"]["bot_only"]["average"]), _number(p["csat"]["agent"]["average"]),
                     *[_sla_cell(sla.get(priority, {})) for priority in sorted(sla)]])
    sla_names = sorted(report["total"]["first_reply_sla"])
    out += _table(["day", "conversations", "containment", "fallback", "tickets", "csat bot", "csat agent",
                   *[f"sla {p} (within/due)" for p in sla_names]], rows)
    total = report["total"]
    out += ["", "Tickets by reason: " + (", ".join(f"{k} {v}" for k, v in total["tickets_by_reason"].items()) or "none"),
            "Tickets by plan: " + (", ".join(f"{k} {v}" for k, v in total["tickets_by_plan"].items()) or "none"), ""]
    if total["articles"]:
        out += ["Articles (worst helpful ratio first):"]
        out += _table(["article", "answers", "helpful", "not helpful", "ratio"],
                      [[a["article_id"], a["answers"], a["helpful"], a["not_helpful"], _percent(a["helpful_ratio"])]
                       for a in total["articles"]])
        out.append("")
    out += ["CSAT distribution (1-5 stars):"]
    out += _table(["conversations", "ratings", "average", "1", "2", "3", "4", "5"],
                  [[group, c["count"], _number(c["average"]), *c["distribution"].values()]
                   for group, c in total["csat"].items()])
    out += ["", "First reply within SLA (tickets opened in the period, by priority):"]
    out += [f"  {priority}: {sla_summary(counts)}" for priority, counts in total["first_reply_sla"].items()]
    out += ["", f"Now: open backlog {report['now']['open_backlog']}, overdue {report['now']['overdue_now']}", ""]
    if "needs_new_article" in report:
        requests = report["needs_new_article"]
        out += [f"Needs a new article ({len(requests)} question{'' if len(requests) == 1 else 's'} marked by leads):"]
        out += [f"  {r['decided_at'][:10]}  {r['text']}  ({r['decided_by']})" for r in requests] or ["  none"]
        out.append("")
    out += ["Definitions:"]
    out += [f"  {name}: {sentence}" for name, sentence in report["definitions"].items()]
    return "\n".join(out) + "\n"


def render(report: Dict[str, Any], fmt: str = "text") -> str:
    """The report in ``fmt`` (text, csv or json)."""
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    if fmt == "csv":
        return render_csv(report)
    if fmt == "text":
        return render_text(report)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


"""`python -m bot kb check` finds each kind of problem, with file and line."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.cli import main
from bot.kb.check import MAX_ANSWER_CHARS, check_kb
from bot.settings import PROJECT_ROOT


def write_article(folder: Path, name: str, front: str, body: str = "The answer.") -> Path:
    path = folder / f"{name}.md"
    path.write_text(f"---\n{textwrap.dedent(front).strip()}\n---\n{body}\n")
    return path


def good_front(article_id: str, questions: list[str], related: str = "other") -> str:
    lines = "\n".join(f"  - {q}" for q in questions)
    return f"id: {article_id}\ntitle: A title\ncategory: billing\nquestions:\n{lines}\nrelated:\n  - {related}\n"


def ten(prefix: str) -> list[str]:
    return [f"{prefix} question number {n}" for n in range(10)]


def test_the_shipped_knowledge_base_has_no_problems() -> None:
    assert check_kb(PROJECT_ROOT / "kb") == []


def test_a_sound_kb_passes_and_the_command_exits_zero(tmp_path: Path, capsys) -> None:
    write_article(tmp_path, "first", good_front("first", ten("a"), related="second"))
    write_article(tmp_path, "second", good_front("second", ten("b"), related="first"))
    assert check_kb(tmp_path) == []
    assert main(["kb", "check", "--kb-dir", str(tmp_path)]) == 0
    assert "2 articles" in capsys.readouterr().out


def test_missing_and_empty_fields_are_reported_on_their_lines(tmp_path: Path) -> None:
    path = write_article(tmp_path, "broken", "id: broken\ntitle: ''\nquestions:\n  - only one\nrelated: []\n", body="")
    messages = {str(p) for p in check_kb(tmp_path)}
    assert f"{path}:3: 'title' is missing or empty" in messages
    assert f"{path}:1: 'category' is missing or empty" in messages
    assert f"{path}:4: 'questions' has 1 phrasings; at least 10 are needed" in messages
    assert f"{path}:6: 'related' is missing or empty" in messages
    assert any(m.startswith(f"{path}:8: the answer") and "empty" in m for m in messages)


def test_duplicate_ids_unknown_related_and_shared_phrasings_are_reported(tmp_path: Path) -> None:
    shared = ten("shared")
    write_article(tmp_path, "one", good_front("one", shared, related="nowhere"))
    two = write_article(tmp_path, "two", good_front("one", ["Shared question number 0?", *ten("x")[1:]], related="one"))
    problems = [str(p) for p in check_kb(tmp_path)]
    assert any("duplicate id 'one'" in p and p.startswith(f"{two}:2:") for p in problems)
    assert any("unknown related id 'nowhere'" in p for p in problems)
    assert any(p.startswith(f"{two}:6:") and "is also in" in p for p in problems), problems


def test_an_over_long_answer_is_reported(tmp_path: Path) -> None:
    path = write_article(tmp_path, "long", good_front("long", ten("l"), related="long2"), body="x" * (MAX_ANSWER_CHARS + 1))
    write_article(tmp_path, "long2", good_front("long2", ten("m"), related="long"))
    problems = [str(p) for p in check_kb(tmp_path)]
    assert problems == [f"{path}:19: the answer is {MAX_ANSWER_CHARS + 1} characters; keep it within {MAX_ANSWER_CHARS}"]


def test_unreadable_front_matter_fails_the_command(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.md").write_text("---\nid: [unclosed\n---\nbody\n")
    (tmp_path / "none.md").write_text("no front matter here\n")
    assert main(["kb", "check", "--kb-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'bad.md'}:" in out and "not valid YAML" in out
    assert f"{tmp_path / 'none.md'}:1: the file must start with a '---' front-matter line" in out


@pytest.mark.parametrize("text, problem", [
    ("greeting: ''\n", "'greeting' must be text of 1 to 300 characters"),
    ("greeting: hi\nstarters: [a, b, c, d, e, f, g]\n", "'starters' must be a list of at most 6 questions"),
    ("greeting: hi\nstarters: ['" + "x" * 81 + "']\n", "starter 1 must be text of 1 to 80 characters"),
    ("greeting: hi\ncolour: red\n", "unknown key(s) colour"),
    ("greeting: hi\nstarters: [Cancel it, cancel IT]\n", "starter 2 repeats an earlier one"),
])
def test_a_broken_welcome_is_named_by_the_check(tmp_path: Path, text: str, problem: str) -> None:
    write_article(tmp_path, "a1", good_front("a1", ten("a"), related="a2"))
    write_article(tmp_path, "a2", good_front("a2", ten("b"), related="a1"))
    (tmp_path / "welcome.yml").write_text(text)
    assert [str(p) for p in check_kb(tmp_path)] == [f"{tmp_path / 'welcome.yml'}:1: {problem}"]


EMAIL_OK = {"from_name": "Support", "subject": "Re: request {ticket}", "intro": "We replied:", "link_text": "Open",
            "reply_hint": "Reply to this e-mail.", "signature": "The team"}


@pytest.mark.parametrize("change, problem", [
    ({"subject": "Re: your request"}, "'subject' must contain {ticket} (the ticket number)"),
    ({"subject": "Re: {ticket} {customer}"}, "'subject' may use only {ticket}"),
    ({"intro": ""}, "'intro' must be text of 1 to 300 characters"),
    ({"colour": "red"}, "unknown key(s) colour"),
])
def test_a_broken_email_wording_is_named_by_the_check(tmp_path: Path, change: dict, problem: str) -> None:
    import json

    write_article(tmp_path, "a1", good_front("a1", ten("a"), related="a2"))
    write_article(tmp_path, "a2", good_front("a2", ten("b"), related="a1"))
    (tmp_path / "email.yml").write_text(json.dumps({**EMAIL_OK, **change}))  # JSON is YAML
    assert [str(p) for p in check_kb(tmp_path)] == [f"{tmp_path / 'email.yml'}:1: {problem}"]


SCOPE = "own:\n  - Lumio\nothers:\n  - Disney Plus\n  - gym\n"


def test_articles_that_contradict_the_product_scope_are_named(tmp_path: Path) -> None:
    (tmp_path / "product_scope.yml").write_text(SCOPE)
    questions = ten("a")[:8] + ["cancel my disney  plus", "cancel lumio and my gym"]
    first = write_article(tmp_path, "first", good_front("first", questions, related="second"))
    second = write_article(tmp_path, "second", good_front("second", ten("b"), related="first"),
                           body="Like at the gym, you can pause.")
    messages = {str(p) for p in check_kb(tmp_path)}
    # A phrasing naming another company's product alone would be refused by the bot; with Lumio it is fine.
    assert messages == {
        f"{first}:14: the phrasing 'cancel my disney  plus' names 'Disney Plus' (product_scope.yml, 'others') "
        "and not Lumio: the bot would not answer it",
        f"{second}:19: names 'gym', listed under 'others' in product_scope.yml: take it out of one of them",
    }


@pytest.mark.parametrize("text, problem", [
    ("own: [Lumio]\n", "'others' must be a list of names"),
    ("own: [Lumio]\nothers: [Lumio, gym]\n", "named as own and other: lumio"),
    ("own: [Lumio]\nothers: ['']\n", "every name under 'others' is text of 1-60 characters"),
    ("own: [Lumio]\nothers: [gym]\nbrands: []\n", "unknown key(s) brands"),
])
def test_a_broken_product_scope_is_named_by_the_check(tmp_path: Path, text: str, problem: str) -> None:
    write_article(tmp_path, "first", good_front("first", ten("a"), related="second"))
    write_article(tmp_path, "second", good_front("second", ten("b"), related="first"))
    (tmp_path / "product_scope.yml").write_text(text)
    assert [p.message for p in check_kb(tmp_path)] == [problem]

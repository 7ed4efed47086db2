"""A missed message becomes an article phrasing or an intent example: one added line, nothing else."""
from __future__ import annotations

import multiprocessing
import shutil
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List

import pytest
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from bot.kb.articles import load_articles, parse_article
from bot.kb.check import check_kb
from bot.lead.kb_edits import add_article_question, choices_of
from bot.lead.nlu_edits import add_intent_example, intent_choices
from bot.lead.training_edits import (
    DuplicateExampleError,
    InvalidExampleError,
    TrainingDataEditError,
    UneditableFileError,
    UnknownTargetError,
    UnsafeExampleError,
)
from bot.settings import PROJECT_ROOT, Settings

# Text a visitor may well type that YAML or Rasa treat specially.
AWKWARD_TEXTS = [
    "error: code 42, what now?",
    'it says "payment failed" again',
    "it's the 'premium' plan",
    "- starts with a dash",
    "-- two dashes",
    "# starts with a hash",
    "ends with a hash #",
    "a #hashtag in the middle",
    "yes",
    "null",
    "3.14",
    "@lumio why",
    "% of my bill",
    "* star first",
    "? question mark first",
    "| pipe first",
    "> angle first",
    "{ brace first",
    "[ bracket first",
    "& ampersand first",
    "! bang first",
    "${HOME} looks like a variable",
    "key: value",
    "ünïcödé çafé 🎉 日本語",
    "don't — use an em dash…",
]

ARTICLE_WITH_COMMENTS = """---
# Hand-written: comments, quoting and blank lines must survive an edit.
id: sample
title: "Sample: an article"
category: billing   # the folder too
questions:            # at least 10 ways visitors ask
  - first way to ask
  - 'second, in single quotes'
  - "third: in double quotes"
  # a comment between phrasings
  - fourth way to ask
  - fifth way to ask  # trailing comment
related: [other-one, other-two]

problem: true
---
The answer, with a YAML-looking line:

questions:
  - not front matter
---
and a second delimiter-like line above.
"""

NLU_WITH_COMMENTS = """# Small talk, hand-written.
version: "3.1"

nlu:
# greetings first
- intent: greet  # the usual
  examples: |
    - hi
    - hello there # this is text, not a comment
    - [Premium](plan) please

# farewells
- intent: goodbye
  examples: |-
    - bye
    - see you
- intent: thank
  examples: |
    - thanks

  # a trailing comment at the item's indentation
# the end
"""

# The same data in a four-space style: edits keep a file's own indentation.
NLU_FOUR_SPACES = """version: "3.1"
nlu:
  - intent: affirm
    examples: |
        - yes
        - sure
  - intent: deny
    examples: |
        - no
"""


def copy_kb(tmp_path: Path) -> Path:
    kb_dir = tmp_path / "kb"
    shutil.copytree(PROJECT_ROOT / "kb", kb_dir)
    return kb_dir


def copy_nlu(tmp_path: Path) -> Path:
    nlu_dir = tmp_path / "nlu"
    shutil.copytree(PROJECT_ROOT / "data" / "nlu", nlu_dir)
    return nlu_dir


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def other_article(kb_dir: Path, article_id: str, question: str) -> Path:
    return write(
        kb_dir / f"{article_id}.md",
        f"---\nid: {article_id}\ntitle: Other {article_id}\ncategory: billing\n"
        f"questions:\n  - {question}\nrelated:\n  - sample\n---\nAnother answer.\n",
    )


def hand_written_kb(tmp_path: Path) -> Path:
    kb_dir = tmp_path / "kb"
    write(kb_dir / "billing" / "sample.md", ARTICLE_WITH_COMMENTS)
    other_article(kb_dir / "billing", "other-one", "a question of the first other article")
    other_article(kb_dir / "billing", "other-two", "a question of the second other article")
    return kb_dir


def with_line_before(text: str, anchor: str, line: str) -> str:
    """``text`` with ``line`` inserted before its first line equal to ``anchor``."""
    lines = text.splitlines(keepends=True)
    index = lines.index(anchor)
    return "".join(lines[:index] + [line] + lines[index:])


def rasa_read(path: Path) -> List[tuple]:
    """(intent, text, entities) of every example, read by Rasa's own YAML reader."""
    data = RasaYAMLReader().reads(path.read_text(encoding="utf-8"))
    return [(m.get("intent"), m.get("text"), m.get("entities") or []) for m in data.training_examples]


# --- knowledge-base articles -------------------------------------------------


def test_new_phrasing_is_appended_and_the_rest_of_the_article_is_unchanged(tmp_path: Path) -> None:
    kb_dir = copy_kb(tmp_path)
    path = kb_dir / "account" / "change-email.md"
    before = path.read_text(encoding="utf-8")

    written = add_article_question(kb_dir, "change-email", "my email address is spelled wrong")

    assert written == path
    assert path.read_text(encoding="utf-8") == with_line_before(
        before, "related:\n", "  - my email address is spelled wrong\n"
    )
    assert parse_article(path).questions[-1] == "my email address is spelled wrong"
    assert check_kb(kb_dir) == []


def test_comments_quoting_and_order_of_a_hand_written_article_survive(tmp_path: Path) -> None:
    kb_dir = hand_written_kb(tmp_path)
    path = kb_dir / "billing" / "sample.md"

    add_article_question(kb_dir, "sample", "sixth way to ask")

    expected = ARTICLE_WITH_COMMENTS.replace(
        "  - fifth way to ask  # trailing comment\n",
        "  - fifth way to ask  # trailing comment\n  - sixth way to ask\n",
    )
    assert path.read_text(encoding="utf-8") == expected
    article = parse_article(path)
    assert article.questions[-1] == "sixth way to ask"
    assert article.body == parse_article(path, ARTICLE_WITH_COMMENTS).body


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_awkward_text_is_quoted_so_the_article_reads_it_back_exactly(tmp_path: Path, text: str) -> None:
    kb_dir = hand_written_kb(tmp_path)
    path = kb_dir / "billing" / "sample.md"
    before = path.read_text(encoding="utf-8").splitlines()

    add_article_question(kb_dir, "sample", text)

    after = path.read_text(encoding="utf-8").splitlines()
    added = [line for line in after if line not in before]
    assert len(after) == len(before) + 1 and len(added) == 1
    assert after.index(added[0]) == before.index("related: [other-one, other-two]")
    assert parse_article(path).questions[-1] == text


def test_whitespace_in_a_phrasing_is_collapsed_to_single_spaces(tmp_path: Path) -> None:
    kb_dir = hand_written_kb(tmp_path)

    add_article_question(kb_dir, "sample", "  why\tis my\n\n bill   so  high \u2028 again ")

    assert parse_article(kb_dir / "billing" / "sample.md").questions[-1] == "why is my bill so high again"


@pytest.mark.parametrize(
    "text",
    ["fourth way to ask", "  FOURTH   way to ASK ", "Fourth way to ask?", "third: in double quotes", "a question of the first other article"],
)
def test_a_phrasing_already_in_the_knowledge_base_is_refused_and_nothing_is_written(tmp_path: Path, text: str) -> None:
    kb_dir = hand_written_kb(tmp_path)
    path = kb_dir / "billing" / "sample.md"

    with pytest.raises(DuplicateExampleError, match="already there"):
        add_article_question(kb_dir, "sample", text)

    assert path.read_text(encoding="utf-8") == ARTICLE_WITH_COMMENTS


def test_an_unknown_article_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    kb_dir = hand_written_kb(tmp_path)

    with pytest.raises(UnknownTargetError) as raised:
        add_article_question(kb_dir, "no-such-article", "anything")

    assert "no-such-article" in str(raised.value)
    assert "other-one, other-two, sample" in str(raised.value)


def test_an_unknown_article_among_many_is_refused_naming_the_closest_not_every_one(project_settings: Settings) -> None:
    # A lead reads this message: the demo's 40-odd ids would bury the one meant.
    with pytest.raises(UnknownTargetError) as raised:
        add_article_question(project_settings.kb_dir, "cancel-subscriptoin", "anything")

    message = str(raised.value)
    assert "'cancel-subscription'" in message and "reload the page" in message
    assert "double-charge" not in message  # not the whole list


def test_empty_or_over_long_text_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb_dir = hand_written_kb(tmp_path)
    monkeypatch.setenv("DESKMATE_MAX_MESSAGE_CHARS", "20")

    with pytest.raises(InvalidExampleError, match="empty"):
        add_article_question(kb_dir, "sample", " \n\t ")
    with pytest.raises(InvalidExampleError, match="21 characters"):
        add_article_question(kb_dir, "sample", "x" * 21)
    add_article_question(kb_dir, "sample", "y" * 20)

    assert parse_article(kb_dir / "billing" / "sample.md").questions[-1] == "y" * 20


def test_control_characters_are_refused(tmp_path: Path) -> None:
    kb_dir = hand_written_kb(tmp_path)

    with pytest.raises(UnsafeExampleError, match="U\\+0007"):
        add_article_question(kb_dir, "sample", "ring \a the bell")

    assert (kb_dir / "billing" / "sample.md").read_text(encoding="utf-8") == ARTICLE_WITH_COMMENTS


def test_an_article_whose_layout_an_edit_would_change_is_refused_untouched(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    # Two indentation styles in one file: a round trip cannot keep both.
    odd = "---\nid: odd\ntitle: Odd\ncategory: billing\nquestions:\n  - one\nrelated:\n    - odd-two\n---\nBody.\n"
    path = write(kb_dir / "odd.md", odd)

    with pytest.raises(UneditableFileError, match="by hand"):
        add_article_question(kb_dir, "odd", "two")

    assert path.read_text(encoding="utf-8") == odd


def test_the_file_keeps_its_permissions_and_no_scratch_file_is_left(tmp_path: Path) -> None:
    kb_dir = hand_written_kb(tmp_path)
    path = kb_dir / "billing" / "sample.md"
    path.chmod(0o640)

    add_article_question(kb_dir, "sample", "sixth way to ask")

    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["other-one.md", "other-two.md", "sample.md"]


def _add_in_another_process(kb_dir: str, number: int) -> None:
    add_article_question(Path(kb_dir), "sample", f"concurrent phrasing number {number}")


def test_edits_from_several_processes_at_once_are_all_kept(tmp_path: Path) -> None:
    kb_dir = hand_written_kb(tmp_path)

    # Spawned, not forked: forking a process that may hold library threads can hang.
    with ProcessPoolExecutor(max_workers=6, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_add_in_another_process, [str(kb_dir)] * 18, range(18)))

    questions = parse_article(kb_dir / "billing" / "sample.md").questions
    assert sorted(q for q in questions if q.startswith("concurrent")) == sorted(
        f"concurrent phrasing number {n}" for n in range(18)
    )


def test_article_choices_are_ids_and_titles_sorted_by_title(tmp_path: Path) -> None:
    kb_dir = hand_written_kb(tmp_path)

    assert choices_of(load_articles(kb_dir)) == [
        ("other-one", "Other other-one"),
        ("other-two", "Other other-two"),
        ("sample", "Sample: an article"),
    ]
    titles = [title for _, title in choices_of(load_articles(PROJECT_ROOT / "kb"))]
    assert titles == sorted(titles, key=str.casefold) and len(titles) == len(list((PROJECT_ROOT / "kb").glob("**/*.md")))


# --- NLU intents ---------------------------------------------------------------


def test_new_example_is_the_last_line_of_the_intents_block_and_the_rest_is_unchanged(tmp_path: Path) -> None:
    nlu_dir = copy_nlu(tmp_path)
    path = nlu_dir / "chitchat.yml"
    before = path.read_text(encoding="utf-8")
    others = {p.name: p.read_text(encoding="utf-8") for p in nlu_dir.iterdir() if p != path}

    written = add_intent_example(nlu_dir, "greet", "good day to you all")

    assert written == path
    assert path.read_text(encoding="utf-8") == with_line_before(before, "- intent: goodbye\n", "    - good day to you all\n")
    assert others == {p.name: p.read_text(encoding="utf-8") for p in nlu_dir.iterdir() if p != path}
    greet = [text for intent, text, _ in rasa_read(path) if intent == "greet"]
    assert greet[-1] == "good day to you all"


def test_comments_and_block_styles_of_a_hand_written_nlu_file_survive(tmp_path: Path) -> None:
    nlu_dir = tmp_path / "nlu"
    path = write(nlu_dir / "talk.yml", NLU_WITH_COMMENTS)

    add_intent_example(nlu_dir, "greet", "good evening")
    add_intent_example(nlu_dir, "goodbye", "farewell")
    add_intent_example(nlu_dir, "thank", "cheers")

    expected = (
        NLU_WITH_COMMENTS.replace("    - [Premium](plan) please\n", "    - [Premium](plan) please\n    - good evening\n")
        .replace("    - see you\n", "    - see you\n    - farewell\n")
        .replace("    - thanks\n", "    - thanks\n    - cheers\n")
    )
    assert path.read_text(encoding="utf-8") == expected
    assert [text for intent, text, _ in rasa_read(path) if intent == "goodbye"] == ["bye", "see you", "farewell"]


def test_a_file_in_four_space_style_keeps_its_style(tmp_path: Path) -> None:
    nlu_dir = tmp_path / "nlu"
    path = write(nlu_dir / "nested" / "yesno.yaml", NLU_FOUR_SPACES)

    add_intent_example(nlu_dir, "affirm", "absolutely")

    assert path.read_text(encoding="utf-8") == NLU_FOUR_SPACES.replace("        - sure\n", "        - sure\n        - absolutely\n")


@pytest.mark.parametrize("text", AWKWARD_TEXTS + ["[just brackets] (and parens)", "a ] ( b", "{not: json}"])
def test_rasas_reader_sees_the_new_example_as_that_plain_text_with_no_entities(tmp_path: Path, text: str) -> None:
    nlu_dir = tmp_path / "nlu"
    path = write(nlu_dir / "talk.yml", NLU_WITH_COMMENTS)
    before = rasa_read(path)

    add_intent_example(nlu_dir, "greet", text)

    after = rasa_read(path)
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(NLU_WITH_COMMENTS.splitlines()) + 1
    assert sorted(map(repr, after)) == sorted(map(repr, before + [("greet", text, [])]))


@pytest.mark.parametrize(
    "text",
    ["upgrade to [Premium](plan)", 'upgrade to [Premium]{"entity": "plan"}', 'upgrade to [Premium][{"entity": "plan"}]'],
)
def test_entity_like_text_is_refused_and_nothing_is_written(tmp_path: Path, text: str) -> None:
    nlu_dir = tmp_path / "nlu"
    path = write(nlu_dir / "talk.yml", NLU_WITH_COMMENTS)

    with pytest.raises(UnsafeExampleError, match="entity annotation"):
        add_intent_example(nlu_dir, "greet", text)

    assert path.read_text(encoding="utf-8") == NLU_WITH_COMMENTS
    kb_dir = tmp_path / "kb"
    shutil.copytree(PROJECT_ROOT / "kb", kb_dir)
    article = next(kb_dir.glob("**/plans-compare.md"))
    before = article.read_text(encoding="utf-8")
    with pytest.raises(UnsafeExampleError, match="entity annotation"):
        add_article_question(kb_dir, "plans-compare", text)
    assert article.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    "intent, text",
    [
        ("greet", "HI"),
        ("greet", " hello   THERE #  this is text, not a comment"),
        ("thank", "bye!"),
        # Rasa reads `[Premium](plan) please` as the text "Premium please".
        ("thank", "Premium please"),
    ],
)
def test_an_example_already_under_any_intent_is_refused_and_nothing_is_written(
    tmp_path: Path, intent: str, text: str
) -> None:
    # Rasa's `data validate` flags one example under two intents, so that is refused too.
    nlu_dir = tmp_path / "nlu"
    path = write(nlu_dir / "talk.yml", NLU_WITH_COMMENTS)

    with pytest.raises(DuplicateExampleError, match="already there"):
        add_intent_example(nlu_dir, intent, text)

    assert path.read_text(encoding="utf-8") == NLU_WITH_COMMENTS


def test_whitespace_in_an_example_is_collapsed_to_single_spaces(tmp_path: Path) -> None:
    nlu_dir = tmp_path / "nlu"
    path = write(nlu_dir / "talk.yml", NLU_WITH_COMMENTS)

    add_intent_example(nlu_dir, "greet", "\n  well\t\thello\n\nagain  ")

    assert "    - well hello again\n" in path.read_text(encoding="utf-8")
    assert ("greet", "well hello again", []) in rasa_read(path)


def test_an_unknown_intent_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    nlu_dir = copy_nlu(tmp_path)

    with pytest.raises(UnknownTargetError) as raised:
        add_intent_example(nlu_dir, "order_pizza", "a large margherita")

    message = str(raised.value)
    assert "order_pizza" in message
    assert ", ".join(intent_choices(nlu_dir)) in message


def test_an_intent_in_two_files_gets_the_example_in_the_first_and_duplicates_are_checked_in_both(tmp_path: Path) -> None:
    nlu_dir = copy_nlu(tmp_path)
    first, second = nlu_dir / "out_of_scope.yml", nlu_dir / "out_of_scope_clinc150.yml"
    second_before = second.read_text(encoding="utf-8")

    with pytest.raises(DuplicateExampleError):
        add_intent_example(nlu_dir, "out_of_scope", "please create a new alarm for me")
    assert add_intent_example(nlu_dir, "out_of_scope", "what is the tallest mountain on mars") == first

    assert first.read_text(encoding="utf-8").endswith("    - what is the tallest mountain on mars\n")
    assert second.read_text(encoding="utf-8") == second_before


def test_intent_choices_are_the_sorted_intent_names(tmp_path: Path) -> None:
    nlu_dir = tmp_path / "nlu"
    write(nlu_dir / "talk.yml", NLU_WITH_COMMENTS)
    write(nlu_dir / "nested" / "yesno.yaml", NLU_FOUR_SPACES)
    write(nlu_dir / "notes.txt", "- intent: not_yaml\n")

    assert intent_choices(nlu_dir) == ["affirm", "deny", "goodbye", "greet", "thank"]
    assert {"greet", "out_of_scope", "request_human"} <= set(intent_choices(PROJECT_ROOT / "data" / "nlu"))


def test_every_refusal_is_a_value_error_the_inbox_can_show() -> None:
    for error in (DuplicateExampleError, InvalidExampleError, UneditableFileError, UnknownTargetError, UnsafeExampleError):
        assert issubclass(error, TrainingDataEditError) and issubclass(error, ValueError)

"""Add a phrasing to a knowledge-base article: one more line in its ``questions``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.kb.articles import FRONT_MATTER_DELIMITER, Article, ArticleFormatError, article_paths, parse_article
from bot.lead.training_edits import (
    UneditableFileError,
    clean_example,
    refuse_entity_syntax,
    dump_yaml,
    locked,
    read_text,
    refuse_duplicate,
    replace_file,
    round_trip_yaml,
    unknown_target,
)


def _load_articles(kb_dir: Path) -> List[Article]:
    try:
        return [parse_article(path) for path in article_paths(kb_dir)]
    except (ArticleFormatError, UnicodeDecodeError) as error:
        raise UneditableFileError(f"the knowledge base has an unreadable article: {error}") from None


def choices_of(articles: Iterable[Article]) -> List[Tuple[str, str]]:
    """(id, title) of ``articles``, sorted by title, for a drop-down."""
    return sorted(((a.id, a.title) for a in articles), key=lambda pair: (pair[1].casefold(), pair[0]))


@dataclass
class FrontMatter:
    """An article file's front matter read for a round-trip edit: the file's ``lines`` (with their ends),
    the index ``end`` of the closing '---' line, the ``yaml`` that keeps its comments and order, and its
    ``data`` (whatever the YAML holds: callers check it is a mapping)."""

    lines: List[str]
    end: int
    yaml: YAML
    data: Any


def front_matter(path: Path, text: str) -> FrontMatter:
    """Split an article's text as parse_article does (the first line is '---', the next '---' closes) and
    load its front matter for a round-trip edit. Raises UneditableFileError."""
    lines = text.splitlines(keepends=True)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == FRONT_MATTER_DELIMITER), None)
    if not lines or lines[0].strip() != FRONT_MATTER_DELIMITER or end is None:
        raise UneditableFileError(f"{path}: the front matter is not between two '---' lines")
    front = "".join(lines[1:end])
    yaml = round_trip_yaml(path, front)
    return FrontMatter(lines, end, yaml, yaml.load(front))


def _with_question(path: Path, text: str, question: str) -> str:
    """The article's text with ``question`` appended to its front matter's ``questions``."""
    split = front_matter(path, text)
    lines, end, yaml, data = split.lines, split.end, split.yaml, split.data
    questions = data.get("questions") if isinstance(data, CommentedMap) else None
    # Only a non-empty block list takes one added line; anything else is left to a person.
    if not isinstance(questions, CommentedSeq) or not questions or questions.fa.flow_style():
        raise UneditableFileError(f"{path}: 'questions' is not a list of phrasings written one per line")
    questions.append(question)
    return lines[0] + dump_yaml(yaml, data) + "".join(lines[end:])


def add_article_question(kb_dir: Path, article_id: str, text: str) -> Path:
    """Append ``text`` to the ``questions`` of article ``article_id``; returns the file written.

    Refused (a TrainingDataEditError) when the text is empty or too long or
    looks like an entity annotation, when any article already has it (`bot kb
    check` would flag it), or when the article is unknown.
    """
    question = clean_example(text)
    refuse_entity_syntax(question)
    with locked(kb_dir):
        articles = _load_articles(kb_dir)
        target = next((a for a in articles if a.id == article_id), None)
        if target is None:
            raise unknown_target("article", article_id, [a.id for a in articles])
        refuse_duplicate(question, ((q, f"article '{a.id}', {a.path}") for a in articles for q in a.questions))
        old = read_text(target.path)
        target = parse_article(target.path, old)  # the exact text about to be edited
        new = _with_question(target.path, old, question)
        edited = parse_article(target.path, new)
        # Belt and braces: the file must read back as the old article plus the one phrasing.
        if edited.questions != target.questions + (question,) or edited.body != target.body:
            raise UneditableFileError(f"{target.path}: the edited article would not read back as intended")
        replace_file(target.path, old, new)
    return target.path

"""Create and edit knowledge-base articles from the lead console: one file, validated, written atomically.

An article is ``kb/<category>/<id>.md`` (README, "Add an article"). A new one
is written from the fields in the README's layout; an edit keeps the file's
own front matter (comments, key order, quoting) through ruamel.yaml's round
trip and changes only the fields edited: title, questions, related, problem
and the answer. The id and category (the file's place) are fixed once made.

Before anything is written, the knowledge base as it would be after the
edit is checked as `python -m bot kb check` does (``check_articles``: at
least 10 phrasings, none already in another article, related ids that
exist, an answer within 800 characters...), and an edit is refused when the
file changed since the lead opened it (``version``, the sha256 of its text).
The write holds the kb/ lock (``locked``) and replaces the file atomically.
A preview runs every step but the write.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.kb.articles import FRONT_MATTER_DELIMITER, Article, ArticleFormatError, parse_article
from bot.kb.check import ID_PATTERN, MAX_ANSWER_CHARS, check_articles
from bot.lead.kb_edits import _load_articles, front_matter
from bot.lead.training_edits import (
    ENTITY_MARKERS,
    TrainingDataEditError,
    UneditableFileError,
    dump_yaml,
    locked,
    read_text,
    write_atomically,
    yaml_printable,
)

# Field limits (characters). The id and category are a file and a folder name: far below the 255 bytes a
# file system allows; the console's inputs have the same maxlength.
MAX_ID_CHARS = 80
MAX_CATEGORY_CHARS = 40
MAX_TITLE_CHARS = 120
MAX_PHRASING_CHARS = 300
# What a problem shows of a refused value.
SHOWN_CHARS = 40


class ArticleRefusedError(TrainingDataEditError):
    """The article would not pass the knowledge-base check; ``problems`` lists why (one line each), and
    ``fields`` the editor fields that are wrong (id, category, title, questions, related, body), if known."""

    def __init__(self, problems: Sequence[str], fields: Sequence[str] = ()) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        self.fields = list(dict.fromkeys(fields))


class ArticleChangedError(TrainingDataEditError):
    """The article's file changed since the lead opened it (another edit): reload and edit again."""


class ArticleExistsError(TrainingDataEditError):
    """An article with that id already exists."""


@dataclass(frozen=True)
class ArticleDraft:
    """An article as the lead writes it: ``questions`` and ``related`` one item each, ``body`` the answer."""

    id: str
    title: str
    category: str
    questions: Tuple[str, ...]
    related: Tuple[str, ...]
    problem: bool
    body: str


@dataclass(frozen=True)
class SavedArticle:
    """What was (or, for a preview, would be) written: the file, its new text and version, and whether the
    model must be retrained for it (the title or the questions changed; an answer alone is live at once)."""

    path: Path
    text: str
    version: str
    created: bool
    needs_retraining: bool
    written: bool


def _in_kb(kb_dir: Path, path: Path) -> str:
    """``path`` as a lead knows it, "kb/<category>/<id>.md" (never where kb/ lies on the server)."""
    try:
        return f"kb/{path.relative_to(kb_dir).as_posix()}"
    except ValueError:
        return path.name


def version_of(text: str) -> str:
    """The version of an article's text a lead edits from (sha256, hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _shown(value: str) -> str:
    """A refused value as a problem quotes it: at most SHOWN_CHARS characters."""
    return repr(value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "...")


def _unprintable(text: str, allowed: str = "") -> List[str]:
    """The characters of ``text`` YAML cannot hold as they are (U+XXXX), ``allowed`` aside."""
    return sorted({f"U+{ord(char):04X}" for char in text if char not in allowed and not yaml_printable(char)})


def _name_problems(label: str, value: str, limit: int) -> List[str]:
    """Problems of an id or category (a file or folder name, ID_PATTERN): empty, too long, or not lower-case
    words joined by '-' (so never '..', '/', or a character a file system might refuse). ``label`` starts
    each message with the field ("id", "related: the id")."""
    if not value:
        return [f"{label} is empty: write lower-case words joined by '-', e.g. family-plan"]
    if len(value) > limit:
        return [f"{label} is {len(value)} characters long; at most {limit}"]
    if not ID_PATTERN.match(value):
        return [f"{label} {_shown(value)} must be lower-case words joined by '-' (a-z, 0-9)"]
    return []


def _text_problems(label: str, value: str, limit: int, quote: bool) -> List[str]:
    """Problems of a one-line text (the title, a phrasing): too long, characters YAML cannot hold (control
    characters), entity syntax. ``label`` starts each message with the field; ``quote`` adds the value."""
    named = f"{label} {_shown(value)}" if quote else label
    problems = []
    if len(value) > limit:
        problems.append(f"{named} is {len(value)} characters long; at most {limit}")
    unprintable = _unprintable(value)
    if unprintable:
        problems.append(f"{named} has unprintable characters ({', '.join(unprintable)})")
    markers = [marker for marker in ENTITY_MARKERS if marker in value]
    if markers:
        problems.append(f"{named} contains {' and '.join(repr(m) for m in markers)}, "
                        "which Rasa reads as an entity annotation")
    return problems


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def clean_draft(draft: ArticleDraft) -> ArticleDraft:
    """``draft`` with its text trimmed (one space between words; the answer's own lines kept), every field checked.

    Raises ArticleRefusedError naming each field that is wrong (``fields``) and why: an id or category
    that is empty, longer than MAX_ID_CHARS / MAX_CATEGORY_CHARS or not lower-case words joined by '-'
    (they name a file and a folder); a title or phrasing that is too long, holds characters YAML cannot
    (control characters), or that Rasa would read as an entity annotation; a related id that is not an
    id; an answer with control characters.
    """
    article_id, category, title = draft.id.strip(), draft.category.strip(), _one_line(draft.title)
    questions = tuple(q for q in (_one_line(q) for q in draft.questions) if q)
    related = tuple(r for r in (_one_line(r) for r in draft.related) if r)
    body = "\n".join(line.rstrip() for line in draft.body.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n"))
    found: List[Tuple[str, List[str]]] = [
        ("id", _name_problems("id", article_id, MAX_ID_CHARS)),
        ("category", _name_problems("category", category, MAX_CATEGORY_CHARS)),
        ("title", _text_problems("title", title, MAX_TITLE_CHARS, quote=False)),
        ("questions", [p for q in questions for p in _text_problems("questions: the phrasing", q, MAX_PHRASING_CHARS, True)]),
        ("related", [p for r in related for p in _name_problems("related: the id", r, MAX_ID_CHARS)]),
    ]
    unprintable = _unprintable(body, allowed="\n\t")
    if unprintable:
        found.append(("body", [f"body (the answer) has unprintable characters ({', '.join(unprintable)})"]))
    problems = [(field, problem) for field, listed in found for problem in listed]
    if problems:
        raise ArticleRefusedError([problem for _, problem in problems], [field for field, _ in problems])
    return ArticleDraft(
        id=article_id, title=title, category=category, questions=questions, related=related,
        problem=bool(draft.problem), body=body,
    )


def _yaml_text(value: str) -> str:
    """A YAML scalar for ``value`` on one line (quoted when plain would not read back the same)."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ,.'()/&+-]*", value) and not value.endswith(":") and ": " not in value \
            and value.lower() not in ("yes", "no", "true", "false", "null", "on", "off", "~"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_new(draft: ArticleDraft) -> str:
    """The file of a new article, in the README's layout."""
    lines = [FRONT_MATTER_DELIMITER, f"id: {draft.id}", f"title: {_yaml_text(draft.title)}", f"category: {draft.category}"]
    if draft.problem:
        lines.append("problem: true")
    lines.append("questions:")
    lines.extend(f"  - {_yaml_text(q)}" for q in draft.questions)
    lines.append("related:")
    lines.extend(f"  - {r}" for r in draft.related)
    lines.append(FRONT_MATTER_DELIMITER)
    return "\n".join(lines) + "\n" + draft.body + "\n"


def _block_list(values: Sequence[str]) -> CommentedSeq:
    seq = CommentedSeq(list(values))
    seq.fa.set_block_style()
    return seq


def render_edit(path: Path, old: str, draft: ArticleDraft) -> str:
    """The article's file with the draft's title, questions, related, problem flag and answer; everything
    else (comments, key order, other keys) as it was. Raises UneditableFileError."""
    split = front_matter(path, old)
    lines, end, yaml, data = split.lines, split.end, split.yaml, split.data
    if not isinstance(data, CommentedMap):
        raise UneditableFileError(f"{path}: the front matter is not a mapping")
    data["title"] = draft.title
    for key, values in (("questions", draft.questions), ("related", draft.related)):
        current = data.get(key)
        if isinstance(current, CommentedSeq) and not current.fa.flow_style():
            current[:] = list(values)  # keeps the list's comments before its first item
        else:
            data[key] = _block_list(values)
    if draft.problem:
        data["problem"] = True
    elif "problem" in data:
        del data["problem"]
    return lines[0] + dump_yaml(yaml, data) + lines[end].rstrip("\n") + "\n" + draft.body + "\n"


def _create_file(path: Path, text: str) -> None:
    """Write a new file atomically (a reader never sees it half written, nor as an empty article)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(scratch, 0o644)
        os.replace(scratch, path)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise


def save_article(
    kb_dir: Path, draft: ArticleDraft, version: Optional[str], preview: bool = False,
) -> SavedArticle:
    """Create (``version`` None) or edit (``version``: the text's version the lead opened) an article.

    With ``preview`` nothing is written. Raises ArticleRefusedError (the
    knowledge-base check's problems, one line each), ArticleExistsError,
    ArticleChangedError, UnknownTargetError-like TrainingDataEditError for an
    unknown article, UneditableFileError, UnsafeExampleError.
    """
    draft = clean_draft(draft)
    create = version is None
    with locked(kb_dir):
        articles = _load_articles(kb_dir)
        by_id = {a.id: a for a in articles}
        if create:
            # (The id and category were checked by clean_draft: a file and a folder name inside kb/.)
            if draft.id in by_id:
                raise ArticleExistsError(
                    f"an article '{draft.id}' already exists (in {_in_kb(kb_dir, by_id[draft.id].path)}): choose another id"
                )
            path = kb_dir / draft.category / f"{draft.id}.md"
            if path.exists():
                raise ArticleExistsError(f"{_in_kb(kb_dir, path)} already exists: choose another id")
            old = ""
            new = render_new(draft)
            before: Optional[Article] = None
        else:
            before = by_id.get(draft.id)
            if before is None:
                raise ArticleRefusedError([f"there is no article '{draft.id}'"])
            path = before.path
            old = read_text(path)
            if version_of(old) != version:
                raise ArticleChangedError(
                    f"{path.name} changed since you opened it (another edit, or a phrasing added): reload it and edit again"
                )
            new = render_edit(path, old, draft)
        try:
            edited = parse_article(path, new)
        except ArticleFormatError as error:
            raise UneditableFileError(f"the article would not read back: {error.message}") from None
        expected = (draft.title, draft.questions, draft.related, draft.problem, draft.body)
        if (edited.title, edited.questions, edited.related, edited.problem, edited.body) != expected:
            raise UneditableFileError(f"{_in_kb(kb_dir, path)}: the edited article would not read back as written")
        after = [edited if a.id == draft.id else a for a in articles] + ([edited] if create else [])
        problems = [
            p.message if p.path == path else f"{p.path.name}: {p.message}"
            for p in check_articles(after) if p.path == path or draft.id in p.message
        ]
        if len(edited.body) > MAX_ANSWER_CHARS and not any("answer is" in p for p in problems):
            problems.append(f"the answer is {len(edited.body)} characters; keep it within {MAX_ANSWER_CHARS}")
        if problems:
            raise ArticleRefusedError(problems)
        needs_retraining = before is None or (before.title, before.questions) != (edited.title, edited.questions)
        if not preview:
            if create:
                _create_file(path, new)
            else:
                write_atomically(path, new)
    return SavedArticle(path, new, version_of(new), create, needs_retraining, written=not preview)


def article_version(article: Article) -> str:
    """The version of ``article``'s file as it is now (for the editor's ``version``). Raises OSError."""
    return version_of(read_text(article.path))


def categories(articles: List[Article]) -> List[str]:
    """The categories in use, sorted."""
    return sorted({a.category for a in articles if a.category})

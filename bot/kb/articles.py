"""Knowledge-base articles: Markdown files with YAML front matter under kb/."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

FRONT_MATTER_DELIMITER = "---"
ARTICLE_GLOB = "**/*.md"


class ArticleFormatError(ValueError):
    """An article file cannot be read as front matter plus body."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Article:
    """One knowledge-base article: the answer and the phrasings that ask for it."""

    id: str
    title: str
    category: str
    questions: Tuple[str, ...]
    related: Tuple[str, ...]
    body: str
    path: Path
    # Optional: "contact" marks the article that says how to reach a person.
    role: str = ""
    # Optional: true when the article answers a problem (a double charge, a
    # hacked account...): plans that escalate at once get a person as well.
    problem: bool = False
    # 1-based line of each front-matter key, and of each question, for messages.
    key_lines: Dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    question_lines: Tuple[int, ...] = field(default=(), compare=False, repr=False)
    body_line: int = field(default=1, compare=False, repr=False)

    def line_of(self, key: str) -> int:
        """The line where ``key`` is written, or the first line when it is missing."""
        return self.key_lines.get(key, 1)


def _split_front_matter(path: Path, text: str) -> Tuple[str, str, int]:
    """Split a file into (front matter, body, body's first line)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != FRONT_MATTER_DELIMITER:
        raise ArticleFormatError(path, 1, "the file must start with a '---' front-matter line")
    for index in range(1, len(lines)):
        if lines[index].strip() == FRONT_MATTER_DELIMITER:
            front = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1 :]).strip()
            return front, body, index + 2
    raise ArticleFormatError(path, 1, "the front matter is not closed by a '---' line")


def _as_text_list(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item).strip() for item in value if item is not None]
    return [str(value).strip()]


def parse_article(path: Path, text: Optional[str] = None) -> Article:
    """Read one article file; raises ArticleFormatError when it is not readable."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    front, body, body_line = _split_front_matter(path, text)
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(io.StringIO(front))
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise ArticleFormatError(path, line, f"front matter is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ArticleFormatError(path, 2, "front matter must be a mapping of keys")

    # ruamel counts from 0 and the front matter starts on the file's line 2.
    mapping: Any = data  # ruamel's CommentedMap: line numbers in .lc
    key_lines = {str(key): mapping.lc.key(key)[0] + 2 for key in data}
    questions = data.get("questions")
    question_lines: Tuple[int, ...] = ()
    if isinstance(questions, list):
        items: Any = questions  # ruamel's CommentedSeq
        question_lines = tuple(items.lc.item(i)[0] + 2 for i in range(len(questions)))
    return Article(
        id=str(data.get("id") or "").strip(),
        title=str(data.get("title") or "").strip(),
        category=str(data.get("category") or "").strip(),
        questions=tuple(_as_text_list(questions)),
        related=tuple(_as_text_list(data.get("related"))),
        body=body,
        path=path,
        role=str(data.get("role") or "").strip(),
        problem=data.get("problem") is True,
        key_lines=key_lines,
        question_lines=question_lines,
        body_line=body_line,
    )


def article_paths(kb_dir: Path) -> List[Path]:
    """Every article file under kb_dir, in a stable order."""
    return sorted(path for path in kb_dir.glob(ARTICLE_GLOB) if path.is_file())


def load_articles(kb_dir: Path) -> List[Article]:
    """Parse every article under kb_dir (raises on the first unreadable file)."""
    return [parse_article(path) for path in article_paths(kb_dir)]

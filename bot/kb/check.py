"""`python -m bot kb check`: find what is wrong with the knowledge base, by file and line."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple, Type

from bot.kb.articles import Article, ArticleFormatError, article_paths, parse_article
from bot.handoff.policy import PolicyError, SupportPolicy
from bot.kb.product_scope import PRODUCT_SCOPE_FILE, ProductScope, ProductScopeError, load_product_scope
from bot.kb.welcome import WELCOME_FILE, WelcomeError, load_welcome
from bot.mail.compose import EMAIL_FILE, EmailStyleError, load_email_style

MIN_QUESTIONS = 10
MAX_ANSWER_CHARS = 800
REQUIRED_TEXT_FIELDS = ("id", "title", "category")
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ROLES = ("contact",)


@dataclass(frozen=True)
class Problem:
    """One thing to fix in kb/."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def normalise_phrasing(text: str) -> str:
    """A phrasing's comparable form: case, spacing and end punctuation ignored."""
    return re.sub(r"\s+", " ", text.casefold()).strip().rstrip("?!. ")


def _check_fields(article: Article) -> List[Problem]:
    problems: List[Problem] = []
    for key in REQUIRED_TEXT_FIELDS:
        if not getattr(article, key):
            problems.append(Problem(article.path, article.line_of(key), f"'{key}' is missing or empty"))
    if article.id and not ID_PATTERN.match(article.id):
        problems.append(
            Problem(article.path, article.line_of("id"), f"id '{article.id}' must be lower-case words joined by '-'")
        )
    if article.id and article.id != article.path.stem:
        problems.append(
            Problem(article.path, article.line_of("id"), f"id '{article.id}' differs from the file name '{article.path.name}'")
        )
    if len(article.questions) < MIN_QUESTIONS:
        problems.append(
            Problem(
                article.path,
                article.line_of("questions"),
                f"'questions' has {len(article.questions)} phrasings; at least {MIN_QUESTIONS} are needed",
            )
        )
    for index, question in enumerate(article.questions):
        if not question:
            line = article.question_lines[index] if index < len(article.question_lines) else article.line_of("questions")
            problems.append(Problem(article.path, line, "an empty phrasing in 'questions'"))
    if article.role and article.role not in ROLES:
        problems.append(
            Problem(article.path, article.line_of("role"), f"unknown role '{article.role}' (known: {', '.join(ROLES)})")
        )
    if not article.related:
        problems.append(Problem(article.path, article.line_of("related"), "'related' is missing or empty"))
    if not article.body:
        problems.append(Problem(article.path, article.body_line, "the answer (the text after the front matter) is empty"))
    elif len(article.body) > MAX_ANSWER_CHARS:
        problems.append(
            Problem(
                article.path,
                article.body_line,
                f"the answer is {len(article.body)} characters; keep it within {MAX_ANSWER_CHARS}",
            )
        )
    return problems


def _check_across(articles: List[Article]) -> List[Problem]:
    problems: List[Problem] = []
    first_by_id: Dict[str, Article] = {}
    for article in articles:
        if not article.id:
            continue
        if article.id in first_by_id:
            other = first_by_id[article.id]
            problems.append(
                Problem(article.path, article.line_of("id"), f"duplicate id '{article.id}' (also in {other.path})")
            )
        else:
            first_by_id[article.id] = article

    for article in articles:
        for related in article.related:
            if related == article.id:
                problems.append(Problem(article.path, article.line_of("related"), "an article cannot be related to itself"))
            elif related not in first_by_id:
                problems.append(Problem(article.path, article.line_of("related"), f"unknown related id '{related}'"))

    for role in ROLES:
        holders = [article for article in articles if article.role == role]
        for extra in holders[1:]:
            problems.append(
                Problem(extra.path, extra.line_of("role"), f"role '{role}' is already given to {holders[0].path}")
            )

    seen: Dict[str, Tuple[Article, int]] = {}
    for article in articles:
        for index, question in enumerate(article.questions):
            key = normalise_phrasing(question)
            if not key:
                continue
            line = article.question_lines[index] if index < len(article.question_lines) else article.line_of("questions")
            if key in seen:
                other, other_line = seen[key]
                where = "earlier in this article" if other is article else f"in {other.path}:{other_line}"
                problems.append(Problem(article.path, line, f"the phrasing '{question}' is also {where}"))
            else:
                seen[key] = (article, line)
    return problems


# The support policy in kb/ (Settings.support_policy_file by default), checked with the articles.
POLICY_FILE = "support_policy.yml"


def check_kb(kb_dir: Path) -> List[Problem]:
    """Every problem found in kb_dir; an empty list means the knowledge base is sound."""
    paths = article_paths(kb_dir)
    if not paths:
        return [Problem(kb_dir, 0, "no articles (*.md) found")]
    problems: List[Problem] = []
    articles: List[Article] = []
    for path in paths:
        try:
            article = parse_article(path)
        except ArticleFormatError as error:
            problems.append(Problem(error.path, error.line, error.message))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(path, 1, "the file is not UTF-8 text"))
            continue
        articles.append(article)
        problems.extend(_check_fields(article))
    problems.extend(_check_across(articles))
    # The other files a lead edits in kb/: each is checked by its own loader.
    loaders: Tuple[Tuple[str, Callable[[Path], object], Type[ValueError]], ...] = (
        (POLICY_FILE, SupportPolicy.load, PolicyError),
        (WELCOME_FILE, load_welcome, WelcomeError),
        (EMAIL_FILE, load_email_style, EmailStyleError),
    )
    for name, load, error_type in loaders:
        path = kb_dir / name
        if path.exists():
            try:
                load(path)
            except error_type as error:
                problems.append(Problem(path, 1, str(error).split(": ", 1)[-1]))
    scope_path = kb_dir / PRODUCT_SCOPE_FILE
    try:
        problems.extend(_check_scope(articles, load_product_scope(scope_path)))
    except ProductScopeError as error:
        problems.append(Problem(scope_path, 1, str(error).split(": ", 1)[-1]))
    return problems


def _check_scope(articles: List[Article], scope: ProductScope) -> List[Problem]:
    """Articles that contradict kb/product_scope.yml: an article that names another company's product
    answers questions about it, and a phrasing that names one without the service's name is refused."""
    problems: List[Problem] = []
    for article in articles:
        named = scope.others_in(f"{article.title}\n{article.body}")
        if named:
            problems.append(Problem(
                article.path, article.body_line,
                f"names '{named[0]}', listed under 'others' in {PRODUCT_SCOPE_FILE}: take it out of one of them",
            ))
        for index, question in enumerate(article.questions):
            other = scope.other_product(question)
            if other is not None:
                line = article.question_lines[index] if index < len(article.question_lines) else article.line_of("questions")
                problems.append(Problem(
                    article.path, line,
                    f"the phrasing '{question}' names '{other}' ({PRODUCT_SCOPE_FILE}, 'others') and not "
                    f"{scope.own[0] if scope.own else 'the service'}: the bot would not answer it",
                ))
    return problems


def check_articles(articles: List[Article]) -> List[Problem]:
    """The problems of already parsed ``articles`` taken as the whole knowledge base (fields and across).

    For a check before writing: the lead console's article editor passes the
    knowledge base as it would be after the edit.
    """
    problems: List[Problem] = []
    for article in articles:
        problems.extend(_check_fields(article))
    problems.extend(_check_across(articles))
    return problems

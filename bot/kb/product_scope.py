"""Whose product a question is about: kb/product_scope.yml names the service's own names and other companies'.

A question that names another company's product or service and not the
service's own name ("cancel my disney plus subscription", "steam refund
policy") is not answered with an article even when the model is sure:
the words that pick an article (cancel, refund, password) are the same
for every company, so only the name tells them apart. A question that also
names the service ("lumio buffers but youtube is fine") is answered as
usual. Names are matched whole, ignoring case.

The list is data, edited by leads like the articles and checked by
``python -m bot kb check`` (``load_product_scope``): no other company's
name may appear in an article, since an article that mentions a name
(a payment provider, a device) answers questions about it.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Pattern, Tuple

from bot.yaml_files import read_yaml_mapping

logger = logging.getLogger(__name__)

PRODUCT_SCOPE_FILE = "product_scope.yml"
MAX_NAME_CHARS = 60


class ProductScopeError(ValueError):
    """kb/product_scope.yml cannot be read or breaks a rule (the message names the file and the rule)."""


def _names_pattern(names: Iterable[str]) -> Optional[Pattern[str]]:
    ordered = sorted({n.strip().lower() for n in names if n.strip()}, key=len, reverse=True)
    if not ordered:
        return None
    # Whole names: no letter or digit may touch either end ("maxi" is not "max"); white space folds.
    alternatives = "|".join(r"\s+".join(map(re.escape, name.split())) for name in ordered)
    return re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class ProductScope:
    """``own``: the service's names; ``others``: other companies' products and services (display names)."""

    own: Tuple[str, ...] = ()
    others: Tuple[str, ...] = ()
    _own: Optional[Pattern[str]] = field(default=None, init=False, repr=False, compare=False)
    _others: Optional[Pattern[str]] = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_own", _names_pattern(self.own))
        object.__setattr__(self, "_others", _names_pattern(self.others))

    def other_product(self, text: str) -> Optional[str]:
        """The other company's name ``text`` asks about (as the file writes it), or None.

        None when ``text`` names none, or also names the service itself.
        """
        if self._others is None:
            return None
        found = self._others.search(text)
        if found is None or (self._own is not None and self._own.search(text)):
            return None
        said = " ".join(found.group(0).lower().split())
        return next((name for name in self.others if " ".join(name.lower().split()) == said), found.group(0))

    def names_own(self, text: str) -> bool:
        """Whether ``text`` names the service itself (one of ``own``, whole, any case)."""
        return self._own is not None and self._own.search(text) is not None

    def others_in(self, text: str) -> List[str]:
        """Every other company's name found in ``text`` (lower case, in order): for the kb check."""
        return [" ".join(m.group(0).lower().split()) for m in self._others.finditer(text)] if self._others else []


def _name_list(path: Path, raw: object, key: str) -> Tuple[str, ...]:
    values = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(values, list) or not values:
        raise ProductScopeError(f"{path}: '{key}' must be a list of names")
    names: List[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
            raise ProductScopeError(f"{path}: every name under '{key}' is text of 1-{MAX_NAME_CHARS} characters")
        names.append(value.strip())
    return tuple(names)


def load_product_scope(path: Path) -> ProductScope:
    """Read and check the file: ``own`` and ``others``, non-empty lists of names, none in both.

    A missing file is an empty scope (every question is the service's).
    Raises ProductScopeError (unreadable, not YAML, or a rule broken).
    """
    if not path.exists():
        return ProductScope()
    raw = read_yaml_mapping(path, ProductScopeError, "the product scope", ("own", "others"))
    own, others = _name_list(path, raw, "own"), _name_list(path, raw, "others")
    both = {n.lower() for n in own} & {n.lower() for n in others}
    if both:
        raise ProductScopeError(f"{path}: named as own and other: {', '.join(sorted(both))}")
    return ProductScope(own, others)


class ProductScopeFile:
    """kb/product_scope.yml as a process serves it: re-read when the file changes, checked at most once
    per ``recheck_seconds``; a broken edit keeps the last good scope (the kb check names the fault)."""

    def __init__(self, path: Path, recheck_seconds: float = 0.25) -> None:
        self._path = path
        self._recheck_seconds = recheck_seconds
        self._checked_at = -recheck_seconds
        self._stamp: Optional[float] = None
        self._scope = ProductScope()
        self._lock = threading.Lock()

    def current(self) -> ProductScope:
        """The scope as the file says now (an empty scope while there is no file)."""
        now = time.monotonic()
        if now - self._checked_at < self._recheck_seconds:
            return self._scope
        with self._lock:
            self._checked_at = now
            try:
                stamp: Optional[float] = self._path.stat().st_mtime
            except OSError:
                stamp = None
            if stamp != self._stamp:
                try:
                    self._scope = load_product_scope(self._path)
                except ProductScopeError:
                    logger.exception("kb/%s is broken; the last good product scope stays", PRODUCT_SCOPE_FILE)
                self._stamp = stamp
            return self._scope

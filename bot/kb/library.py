"""The knowledge base as the action server serves it: reloaded when kb/ changes.

An edited answer is live on the next message, with no retraining: the model
only picks the article id; the text always comes from the file. Whether kb/
changed is checked (a listing and a stat of every article) at most once per
RECHECK_SECONDS: one message asks several times (the search index, the
chosen article, its related ones), and a py-spy profile of the action
server under load put 14% of its CPU time in these re-checks (bench/README.md,
"Cost of a message").
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from bot.kb.articles import Article, ArticleFormatError, article_paths, parse_article

logger = logging.getLogger(__name__)

Snapshot = Tuple[Tuple[str, float], ...]
RECHECK_SECONDS = 0.25  # an edit is live within this long: well under the time a visitor's next message takes


class KnowledgeBase:
    """Articles by id, re-read whenever a file under kb/ is added, removed or edited."""

    def __init__(self, kb_dir: Path, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self._kb_dir = kb_dir
        self._recheck_seconds = recheck_seconds
        self._checked_at = -recheck_seconds
        self._lock = threading.Lock()
        self._snapshot: Optional[Snapshot] = None
        self._articles: Dict[str, Article] = {}
        self._version = 0

    def _take_snapshot(self) -> Snapshot:
        return tuple((str(path), path.stat().st_mtime) for path in article_paths(self._kb_dir))

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._snapshot is not None and now - self._checked_at < self._recheck_seconds:
            return
        self._checked_at = now
        snapshot = self._take_snapshot()
        if snapshot == self._snapshot:
            return
        with self._lock:
            if snapshot == self._snapshot:
                return
            articles: Dict[str, Article] = dict(self._articles)
            loaded: Dict[str, Article] = {}
            for path_text, _ in snapshot:
                path = Path(path_text)
                try:
                    article = parse_article(path)
                except (ArticleFormatError, UnicodeDecodeError, OSError) as error:
                    # Keep serving the last good version of a file being edited.
                    logger.warning("kb: skipping unreadable article %s: %s", path, error)
                    previous = next((a for a in articles.values() if a.path == path), None)
                    if previous is not None:
                        loaded[previous.id] = previous
                    continue
                if article.id:
                    loaded[article.id] = article
            self._articles = loaded
            self._snapshot = snapshot
            self._version += 1

    @property
    def version(self) -> int:
        """Increases each time the articles were re-read (for caches built on them)."""
        self._refresh()
        return self._version

    def get(self, article_id: str) -> Optional[Article]:
        """The article with this id, or None."""
        self._refresh()
        return self._articles.get(article_id)

    def all(self) -> List[Article]:
        """Every article, ordered by id."""
        self._refresh()
        return [self._articles[key] for key in sorted(self._articles)]

    def with_role(self, role: str) -> Optional[Article]:
        """The article marked with ``role:`` in its front matter (e.g. "contact"), or None."""
        return next((article for article in self.all() if article.role == role), None)

"""Missed messages grouped by similarity: twenty phrasings of one missing topic become one group.

Texts are vectors of the KB search's own two views (lemmas and character
n-grams, ``ArticleSearch.vectorise``) and are grouped by scikit-learn's
agglomerative clustering, average linkage on cosine distance, cut at
``Settings.miss_group_distance``.

How the threshold was chosen: swept 0.85-0.99 in steps of 0.0125 on the
planted topics of tests/test_misses.py (5 topics the knowledge base lacks,
3 it covers, 10-15 phrasings each) and on a second set written apart from
it (3 lacking, 2 covered, 8 each). At 0.95, on average 88 % of a planted
topic lands in its main group (at worst 67 %) with 98 % purity; on the
second set 68 % (at worst 25 %: "are you hiring" and "send my CV" share no
word) with 93 % purity. Below 0.925 topics stay in pieces; at 0.975 unrelated
planted topics merge (purity 78 %). Short texts share few terms, hence
distances this close to 1. Synonyms with no common word or character
n-gram ("terminate my membership" / "cancel") stay apart: these are word
features, not meanings.

Pre-selection (``confident``): the console proposes "add as a phrasing of
article X" for a message only when two signals agree or one is strong: the
message's own closest article by search is the first the bot itself offered
and has a similarity of at least ``AGREED_SIMILARITY``; or, with no offer to
agree with, the search alone finds it at ``SEARCH_ALONE_SIMILARITY`` or more
and at least ``SEARCH_ALONE_LEAD`` times the runner-up. An article the visitor
marked "not helpful" is never proposed. A group's form proposes an article only
when it is the confident guess for every message in the group (its action
applies to all ticked messages). Anything less is left for the lead to
choose: a wrong pre-selection costs more than an empty one.

Refused messages (the bot said the question is outside what it covers,
source ``refused``) are grouped apart from the rest and never mixed with
them: most were rightly refused, so they are no topic the knowledge base
lacks until a lead says so. Nothing is proposed for them: the search matches
the words every company shares, so their closest article is the look-alike
the refusal was right about (15 other companies' questions tried, "cancel my
gym membership", "reset hulu password"...: each closest to the service's own
cancel, password, refund... article, at 0.08-0.24, below the search-alone bar
today; this keeps it unproposed when an article's phrasings grow closer).

Clustering is quadratic in time and memory (an n x n distance matrix):
keep n bounded (``Settings.miss_group_limit``). Measured on a 2-core machine
under load: 1,000 messages about 0.4 s, 2,000 about 0.9 s, 5,000 about 3 s
(200 MB per n x n copy).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering

from bot.kb.search import ArticleSearch
from bot.lead.misses import MISS_SOURCES, Miss


# See the module's docstring, "Pre-selection" (search similarities, 0..1).
AGREED_SIMILARITY = 0.12
SEARCH_ALONE_SIMILARITY = 0.3
SEARCH_ALONE_LEAD = 2.0


@dataclass(frozen=True)
class ArticleGuess:
    """An article the KB search finds close to a whole group (cosine similarity, 0..1)."""

    article_id: str
    title: str
    score: float


@dataclass(frozen=True)
class MissGroup:
    """Missed messages about one topic.

    ``examples``: up to 5 different texts, the most typical first;
    ``message_ids``: every message, newest first; ``sources``: how many
    messages came from each source; ``search_guesses``: the articles closest
    to the group as a whole; ``recorded_guesses``: the articles the bot
    offered on these messages, with how many messages, most first;
    ``confident``: message id -> the article confidently proposed for it (only
    the messages that have one); ``suggested``: the article proposed for the
    whole group (the confident guess for every one of its messages), or None;
    ``refused``: the group holds messages the bot refused as outside what it
    covers (and only those).
    """

    count: int
    examples: Tuple[str, ...]
    message_ids: Tuple[int, ...]
    sources: Dict[str, int]
    search_guesses: Tuple[ArticleGuess, ...]
    recorded_guesses: Tuple[Tuple[str, int], ...]
    latest_at: datetime
    confident: Dict[int, str] = field(default_factory=dict)
    suggested: Optional[str] = None
    refused: bool = False


def confident_article(scores: np.ndarray, article_ids: Sequence[str], miss: Miss) -> Optional[str]:
    """The article to propose for ``miss`` given its search ``scores`` per article, or None (module docstring)."""
    if not len(scores):
        return None
    order = np.argsort(-scores, kind="stable")
    best = article_ids[order[0]]
    top = float(scores[order[0]])
    runner_up = float(scores[order[1]]) if len(order) > 1 else 0.0
    if best in miss.rejected or miss.refused:
        return None
    if miss.guesses:
        return best if miss.guesses[0] == best and top >= AGREED_SIMILARITY else None
    return best if top >= SEARCH_ALONE_SIMILARITY and top >= SEARCH_ALONE_LEAD * runner_up else None


def cluster_labels(vectors: Union[np.ndarray, sparse.spmatrix], distance_threshold: float) -> np.ndarray:
    """A group number per row of ``vectors`` (unit rows; dot product = cosine similarity)."""
    count = vectors.shape[0]
    if count < 2:
        return np.zeros(count, dtype=int)
    # Precomputed distances: scikit-learn's "cosine" affinity refuses all-zero rows
    # (a text with no known term), and it would densify the sparse features.
    similarity = vectors @ vectors.T
    distances = similarity.toarray() if sparse.issparse(similarity) else np.array(similarity, dtype=float)
    # In place: at 5,000 messages each n x n copy costs 200 MB. TF-IDF is never
    # negative, so distances are 0..1 up to rounding.
    np.subtract(1.0, distances, out=distances)
    np.maximum(distances, 0.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    clustering = AgglomerativeClustering(
        n_clusters=None, distance_threshold=distance_threshold, affinity="precomputed", linkage="average"
    )
    return clustering.fit_predict(distances)


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def group_misses(
    misses: Sequence[Miss], search: ArticleSearch, distance_threshold: Optional[float] = None,
    examples: int = 5, guesses: int = 3,
) -> List[MissGroup]:
    """``misses`` in groups of similar texts, the largest first (then the most recent); the groups of
    refused messages (``Miss.refused``) are made apart and come after the others.

    ``distance_threshold`` defaults to ``Settings.miss_group_distance``.
    """
    if not misses:
        return []
    if distance_threshold is None:
        from bot.settings import get_settings

        distance_threshold = get_settings().miss_group_distance
    vectors = search.vectorise([m.text for m in misses])
    # Refused messages are clustered on their own: a wrongly refused question must not disappear into
    # a group of questions the bot was merely unsure of (nor turn one of those into a refusal).
    refused = np.array([m.refused for m in misses], dtype=bool)
    labels = np.zeros(len(misses), dtype=int)
    next_label = 0
    for part in (np.flatnonzero(~refused), np.flatnonzero(refused)):
        if len(part):
            part_labels = cluster_labels(vectors.texts[part], distance_threshold)
            labels[part] = part_labels + next_label
            next_label += int(part_labels.max()) + 1
    articles = search.articles
    article_ids = [a.id for a in articles]
    per_message = vectors.texts @ vectors.articles.T
    per_message = per_message.toarray() if sparse.issparse(per_message) else np.asarray(per_message)
    groups = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rows = vectors.texts[members]
        centroid = np.asarray(rows.mean(axis=0)).ravel()
        norm = np.linalg.norm(centroid)
        centroid = centroid / norm if norm else centroid
        typical = np.argsort(-(rows @ centroid), kind="stable")
        chosen: Dict[str, str] = {}
        for index in typical:
            text = misses[members[index]].text
            chosen.setdefault(_key(text), text)
            if len(chosen) == examples:
                break
        scores = vectors.articles @ centroid
        best = [i for i in np.argsort(-scores, kind="stable")[:guesses] if scores[i] > 0]
        group = [misses[i] for i in members]
        group.sort(key=lambda m: (m.created_at, m.message_id), reverse=True)
        sources = Counter(s for m in group for s in m.sources)
        recorded = Counter(a for m in group for a in m.guesses)
        confident: Dict[int, str] = {}
        for index in members:
            article = confident_article(per_message[index], article_ids, misses[index])
            if article is not None:
                confident[misses[index].message_id] = article
        # The group's form applies its article to every ticked message: proposed only when it is the
        # confident guess for each of them (a majority would pre-select it for the others too).
        picks = set(confident.values())
        suggested = picks.pop() if len(confident) == len(group) and len(picks) == 1 else None
        groups.append(MissGroup(
            count=len(group),
            examples=tuple(chosen.values()),
            message_ids=tuple(m.message_id for m in group),
            sources={s: sources[s] for s in MISS_SOURCES if sources[s]},
            search_guesses=tuple(ArticleGuess(articles[i].id, articles[i].title, round(float(scores[i]), 4)) for i in best),
            recorded_guesses=tuple(sorted(recorded.items(), key=lambda item: (-item[1], item[0]))),
            latest_at=group[0].created_at,
            confident=confident,
            suggested=suggested,
            refused=bool(refused[members[0]]),
        ))
    groups.sort(key=lambda g: (g.refused, -g.count, -g.latest_at.timestamp(), g.message_ids[0]))
    return groups

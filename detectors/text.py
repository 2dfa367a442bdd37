"""Drift of free text (prompts, completions): can a classifier tell the window's texts from the
baseline's, and by which words?

A domain classifier, as Evidently's text drift (``driftline.detectors.classifier``: a held-out
ROC AUC and its Mann-Whitney p-value) on hashed word n-grams (1 and 2 words, scikit-learn's
feature hashing: nothing is kept of a vocabulary), each text's scaled to unit length. What it
compares is words, not length: a text's length, language and the like are descriptors
(``driftline.detectors.descriptors``), checked as features of their own.

The n-grams whose share of texts moved most (by the two-proportion z statistic) are named with
their share on either side, so that an on-call engineer sees *what* changed ("recipe": 0.1% of
the baseline, 34% of the window). Texts are tokenised into runs of letters and digits, and
Chinese, Japanese and Korean ideographs and kana one character at a time (they are written
without spaces); lone surrogates become U+FFFD and each text is cut at ``MAX_CHARACTERS``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from driftline.detectors.classifier import separation
from driftline.detectors.continuous import NotChecked

MIN_TEXTS = 20  # on each side: ten held out
MAX_CHARACTERS = 10_000  # of one text: a megabyte prompt costs no more than a long one
EXCERPT = 2_000  # characters of a text a baseline keeps (it must fit in one event)
HASHED_FEATURES = 2**18
NAMED = 5  # n-grams named that rose, and that fell
NAMING_TEXTS = 5_000  # of each sample, read to name the n-grams that moved

# A CJK ideograph or kana, one token each; else a run of letters and digits without them.
_SPACELESS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[{_SPACELESS}]|(?:(?![{_SPACELESS}])[^\W_])+")
# Each text's words and word pairs, lower-cased, as the hashed features are made of.
_NGRAMS = HashingVectorizer(
    ngram_range=(1, 2), token_pattern=None, tokenizer=TOKEN.findall
).build_analyzer()


@dataclass(frozen=True)
class MovedNgram:
    """An n-gram whose share of texts moved, and the share of each sample's texts holding it."""

    ngram: str
    baseline_share: float
    window_share: float


@dataclass(frozen=True)
class TextDrift:
    p_value: float
    auc: float  # held-out ROC AUC of telling window texts from baseline texts
    baseline_size: int
    current_size: int
    moved: tuple[MovedNgram, ...]  # more common in the window first, then in the baseline


def check_text(
    baseline: Sequence[str], window: Sequence[str], *, seed: int = 0
) -> TextDrift | NotChecked:
    """Compare the window's texts with the baseline's (missing texts already left out)."""
    if len(baseline) < MIN_TEXTS or len(window) < MIN_TEXTS:
        return NotChecked(
            f"too few texts (baseline {len(baseline)}, window {len(window)}); "
            f"the text check needs {MIN_TEXTS} on each side"
        )
    texts = [clean(text) for text in (*baseline, *window)]
    ngrams = [_NGRAMS(text) for text in texts]
    hashed = FeatureHasher(HASHED_FEATURES, input_type="string", alternate_sign=False)
    matrix = normalize(hashed.transform(ngrams)).tocsr()
    if matrix.nnz == 0:
        return NotChecked("no text on either side has a word to compare")
    # Only the features some text holds: the model's cost then follows the texts, not 2**18.
    matrix = matrix[:, np.unique(matrix.indices)]
    found = separation(matrix, len(baseline), seed=seed)
    labels = np.r_[np.zeros(len(baseline), dtype=np.int8), np.ones(len(window), dtype=np.int8)]
    return TextDrift(
        p_value=found.p_value,
        auc=found.auc,
        baseline_size=len(baseline),
        current_size=len(window),
        moved=_moved(ngrams, labels),
    )


def excerpt(text: str) -> str:
    """What a baseline keeps of a text, and so what a window's text is compared as: the whole
    text up to EXCERPT characters, else its first and last halves of that (a long system
    prompt's start and the question at its end both kept), lone surrogates replaced. Both sides
    must be cut alike: a window text longer than the baseline's would be told apart by its
    length alone."""
    if len(text) > EXCERPT:  # EXCERPT characters in all, so that an excerpt is its own
        text = f"{text[: EXCERPT // 2]} {text[-(EXCERPT // 2 - 1) :]}"
    return clean(text)


def clean(text: str) -> str:
    """The text as the check reads it: cut at ``MAX_CHARACTERS``, lone surrogates replaced."""
    cut = text[:MAX_CHARACTERS]
    return cut.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _moved(ngrams: list[list[str]], labels: NDArray[np.int8]) -> tuple[MovedNgram, ...]:
    """The n-grams whose share of texts moved most, by the two-proportion z statistic: the
    ``NAMED`` that rose most, then the ``NAMED`` that fell most."""
    holding: dict[str, list[int]] = {}  # n-gram: texts holding it, per side
    sizes = [0, 0]
    for side in (0, 1):
        for row in np.flatnonzero(labels == side)[:NAMING_TEXTS]:
            sizes[side] += 1
            for ngram in dict.fromkeys(ngrams[row]):  # in text order: no hash order leaks out
                holding.setdefault(ngram, [0, 0])[side] += 1
    if not holding:
        return ()
    named = list(holding)
    counts = np.array(list(holding.values()), dtype=float)
    before, after = counts[:, 0] / sizes[0], counts[:, 1] / sizes[1]
    pooled = counts.sum(axis=1) / sum(sizes)
    z = (after - before) / np.sqrt(pooled * (1 - pooled) * (1 / sizes[0] + 1 / sizes[1]) + 1e-12)
    order = np.lexsort((np.array(named), -z))  # ties in z by the n-gram's text
    rose = [int(i) for i in order[:NAMED] if z[i] > 0]
    fell = [int(i) for i in order[::-1][:NAMED] if z[i] < 0]
    return tuple(MovedNgram(named[i], float(before[i]), float(after[i])) for i in (*rose, *fell))

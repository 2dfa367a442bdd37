"""Text descriptors: what can be measured of each prompt or completion, as drift features.

A descriptor is a plain column that a baseline fits and a window is checked on like any other
(``driftline.detectors.baseline``), with the same false-alarm control, so a prompt that grows
thirty times longer or turns to another language is caught by the length's KS test or the
language's chi-square, where the text check (``driftline.detectors.text``), which compares
words, would not see it. For a text named ``prompt`` the columns are:

- ``prompt.characters`` and ``prompt.words`` (continuous): its whole length, in characters (code
  points) and in runs of letters and digits (a character of the main CJK blocks counts as a
  word; a combining mark splits a word, so decomposed "re\u0301sume\u0301" is two);
- ``prompt.non_letter_share`` and ``prompt.non_ascii_share`` (continuous): the share of its
  characters that are not letters (digits, punctuation, spaces, symbols, combining marks), and
  that are not ASCII;
- ``prompt.language`` (categorical): the code py3langid's offline model (shipped in its wheel)
  gives, mostly ISO 639-1 (a few are three letters), or ``und`` under 50% confidence or without
  letters;
- ``prompt.refusal`` (flag): whether it holds one of the refusal phrases (for completions),
  case-insensitively;
- ``prompt.detections`` (continuous): how many matches the redaction scanners found in it, when
  a counter is given (the matches themselves are never kept).

Everything but the length is measured on the text's first ``MAX_CHARACTERS`` characters, as
the text check reads it. A missing text (None) gives missing descriptors, counted by each one's
missing rate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from driftline.detectors.table import Kind
from driftline.detectors.text import TOKEN, clean

UNDETERMINED = "und"  # ISO 639-2's code for an undetermined language
LANGUAGE_CONFIDENCE = 0.5
DEFAULT_REFUSALS = (
    "I can't help with",
    "I cannot help with",
    "I can't assist with",
    "I cannot assist with",
    "I'm not able to",
    "I am not able to",
    "I'm sorry, but I can't",
    "As an AI",
)
KINDS: dict[str, Kind] = {
    "characters": "continuous",
    "words": "continuous",
    "non_letter_share": "continuous",
    "non_ascii_share": "continuous",
    "language": "categorical",
    "refusal": "flag",
    "detections": "continuous",
}


def describe(
    name: str,
    texts: Sequence[str | None],
    *,
    refusals: Iterable[str] = DEFAULT_REFUSALS,
    count_detections: Callable[[str], int] | None = None,
) -> dict[str, list[Any]]:
    """The descriptor columns of the texts named ``name``, one value per text."""
    refusal = phrase_pattern(tuple(refusals))
    wanted = [key for key in KINDS if key != "detections" or count_detections is not None]
    columns: dict[str, list[Any]] = {f"{name}.{key}": [] for key in wanted}
    for text in texts:
        row = None if text is None else _describe_one(text, refusal, count_detections)
        for key in wanted:
            columns[f"{name}.{key}"].append(None if row is None else row[key])
    return columns


def kinds(name: str, columns: Mapping[str, Any]) -> dict[str, Kind]:
    """The kind of each of ``describe``'s columns, to give ``fit_baseline``."""
    prefix = f"{name}."
    return {column: KINDS[column[len(prefix) :]] for column in columns if column.startswith(prefix)}


def language(text: str) -> str:
    """The text's language code, or ``und``."""
    return _language_of_clean(clean(text))


def _language_of_clean(text: str) -> str:
    code, _confidence = _identifier().classify(text)
    return str(code)


def _describe_one(
    whole: str, refusal: re.Pattern[str] | None, count_detections: Callable[[str], int] | None
) -> dict[str, Any]:
    """Length of the whole text; the rest of its first ``MAX_CHARACTERS`` (``clean``)."""
    text = clean(whole)
    size = len(text)
    letters = sum(character.isalpha() for character in text)
    row: dict[str, Any] = {
        "characters": len(whole),
        "words": sum(1 for _ in TOKEN.finditer(whole)),
        "non_letter_share": (size - letters) / size if size else 0.0,
        "non_ascii_share": sum(not character.isascii() for character in text) / size
        if size
        else 0.0,
        "language": _language_of_clean(text) if letters else UNDETERMINED,
        "refusal": bool(refusal and refusal.search(text)),
    }
    if count_detections is not None:
        row["detections"] = count_detections(text)
    return row


@functools.lru_cache(maxsize=16)
def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for the phrases, matched as whole words case-insensitively, with any run of
    spaces alike and a typographic apostrophe for a straight one."""
    parts = [_whole_words(phrase.split()) for phrase in phrases if phrase.strip()]
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _whole_words(words: list[str]) -> str:
    """A phrase's pattern that does not match inside a word: "As an AI" is not in "an aide"."""
    body = r"\s+".join(re.escape(word).replace("'", "['\u2019]") for word in words)
    before = r"(?<!\w)" if re.match(r"\w", words[0]) else ""
    after = r"(?!\w)" if re.search(r"\w$", words[-1]) else ""
    return f"{before}{body}{after}"


@functools.cache
def _identifier() -> LanguageIdentifier:
    """py3langid's model, loaded once (about a second) on first use."""
    return LanguageIdentifier.from_model_file(
        MODEL_FILE, norm_probs=True, min_confidence=LANGUAGE_CONFIDENCE
    )

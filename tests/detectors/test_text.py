"""The text check holds its false-alarm rate on random splits at any size, catches a change of
topic and names the words that moved, and takes any text (NUL, lone surrogates, a megabyte, no
words at all); text descriptors measure Unicode edge cases as stated and, fitted as features,
catch a change of length and of language that the text check does not."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from driftline.detectors.baseline import fit_baseline
from driftline.detectors.continuous import NotChecked
from driftline.detectors.descriptors import describe, kinds, language
from driftline.detectors.text import MAX_CHARACTERS, MIN_TEXTS, TextDrift, check_text, clean
from driftline.detectors.verdict import FeatureVerdict, check_window

ALPHA = 0.05
CHECKS = 200
WORDS = [f"w{i}" for i in range(2_000)]
ZIPF = 1 / np.arange(1, len(WORDS) + 1) ** 1.1


def sentences(rng: np.random.Generator, count: int, words: list[str] = WORDS) -> list[str]:
    """The generator: 3 to 20 words each, drawn by Zipf's law (exponent 1.1) from ``words``."""
    weights = ZIPF[: len(words)] / ZIPF[: len(words)].sum()
    return [" ".join(rng.choice(words, size=rng.integers(3, 21), p=weights)) for _ in range(count)]


def within_binomial(alarms: int, checks: int, rate: float) -> bool:
    low, high = binom.ppf(0.0005, checks, rate), binom.ppf(0.9995, checks, rate)
    return bool(low <= alarms <= high)


@pytest.mark.parametrize(("baseline_size", "window_size"), [(40, 40), (200, 200), (1_000, 200)])
def test_random_splits_hold_the_rate(baseline_size: int, window_size: int) -> None:
    rng = np.random.default_rng(baseline_size + window_size)
    alarms = 0
    for seed in range(CHECKS):
        texts = sentences(rng, baseline_size + window_size)
        result = check_text(texts[:baseline_size], texts[baseline_size:], seed=seed)
        assert isinstance(result, TextDrift)
        alarms += result.p_value < ALPHA
    assert within_binomial(alarms, CHECKS, ALPHA), f"{alarms} of {CHECKS} at {ALPHA}"


def test_a_change_of_topic_is_caught_and_its_words_named() -> None:
    rng = np.random.default_rng(7)
    baseline = sentences(rng, 1_000)
    cooking = [f"stir the sauce and bake the bread for {i} minutes" for i in range(120)]
    result = check_text(baseline, sentences(rng, 180) + cooking)
    assert isinstance(result, TextDrift)
    assert result.p_value < 1e-6
    assert result.auc > 0.6  # at most 0.7: the other 60% of the window is like the baseline
    rose = [moved for moved in result.moved if moved.window_share > moved.baseline_share]
    cooking_words = set(" ".join(cooking).split()) | {"and bake", "bake the", "stir the"}
    assert rose and all(moved.ngram in cooking_words for moved in rose)
    assert all(moved.baseline_share == 0.0 for moved in rose)
    assert rose[0].window_share == pytest.approx(120 / 300)


def test_too_few_texts_or_no_words_is_not_checked_with_a_reason() -> None:
    rng = np.random.default_rng(1)
    few = check_text(sentences(rng, MIN_TEXTS - 1), sentences(rng, 100))
    assert isinstance(few, NotChecked)
    assert str(MIN_TEXTS) in few.reason
    wordless = check_text(["!!! ..."] * 50, ["", " \t\n"] * 25)
    assert isinstance(wordless, NotChecked)
    assert "word" in wordless.reason


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.text(max_size=60), min_size=MIN_TEXTS, max_size=60),
    st.lists(st.text(max_size=60), min_size=MIN_TEXTS, max_size=60),
)
def test_any_texts_give_a_verdict_or_a_reason(baseline: list[str], window: list[str]) -> None:
    result = check_text(baseline, window)
    if isinstance(result, TextDrift):
        assert 0.0 <= result.p_value <= 1.0
        assert 0.0 <= result.auc <= 1.0
    else:
        assert result.reason


def test_nul_lone_surrogates_and_a_megabyte_are_read_not_refused() -> None:
    rng = np.random.default_rng(2)
    hostile = ["\x00nul\x00", "lone \ud800 high", "\udfff low", "\U0001f600 emoji"] * 10
    hostile.append("w1 " * 350_000)  # a megabyte: cut at MAX_CHARACTERS
    started = time.perf_counter()
    result = check_text(sentences(rng, 200), sentences(rng, 100) + hostile)
    assert isinstance(result, TextDrift)
    assert time.perf_counter() - started < 30  # the megabyte was cut, not read whole
    assert clean("a\ud800b") == "a\ufffdb"
    assert clean("\U0001f600") == "\U0001f600"  # a pair stays a pair
    assert len(clean("x" * (MAX_CHARACTERS + 5))) == MAX_CHARACTERS


def test_descriptors_of_unicode_edge_cases() -> None:
    texts = [
        "Hello, world",
        None,
        "",
        " \t\n",
        "e\u0301",  # e and a combining acute: two characters, one a mark (not a letter)
        "\U0001f600\U0001f600",  # emoji: symbols, not ASCII
        "这是中文",  # four ideographs: four words
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",  # Hebrew, right to left
        "nul\x00here",
        "lone \ud800",
    ]
    columns = describe("prompt", texts)
    assert columns["prompt.characters"] == [12, None, 0, 3, 2, 2, 4, 9, 8, 6]
    assert columns["prompt.words"] == [2, None, 0, 0, 1, 0, 4, 2, 2, 1]
    assert columns["prompt.non_letter_share"][0] == pytest.approx(2 / 12)
    assert columns["prompt.non_letter_share"][2:6] == [0.0, 1.0, 0.5, 1.0]
    assert columns["prompt.non_ascii_share"][4:8] == [0.5, 1.0, 1.0, pytest.approx(8 / 9)]
    assert columns["prompt.non_ascii_share"][9] == pytest.approx(1 / 6)  # U+FFFD
    assert columns["prompt.language"][1:4] == [None, "und", "und"]
    assert columns["prompt.language"][5] == "und"  # no letters
    assert columns["prompt.language"][6] == "zh"
    assert columns["prompt.language"][7] == "he"
    assert all(column[1] is None for column in columns.values()), "None: every one missing"
    assert "prompt.detections" not in columns  # no counter given
    assert set(kinds("prompt", columns)) == set(columns)


def test_refusal_phrases_match_any_case_spacing_and_apostrophe() -> None:
    texts = ["I\u2019m sorry,  but I CAN\u2019T do that.", "Sure, here it is.", "as an   ai model"]
    assert describe("completion", texts)["completion.refusal"] == [True, False, True]
    custom = describe("completion", texts, refusals=["here it is"])
    assert custom["completion.refusal"] == [False, True, False]
    assert describe("completion", texts, refusals=[" "])["completion.refusal"] == [False] * 3
    words_only = ["She works as an aide.", "Has an AI model been used?", "As an AI, I cannot"]
    assert describe("completion", words_only)["completion.refusal"] == [False, False, True]
    metacharacters = describe("completion", ["cost (a+b)*2 here", "cost ab2"], refusals=["(a+b)*2"])
    assert metacharacters["completion.refusal"] == [True, False]


def test_a_text_past_the_cut_keeps_its_whole_length() -> None:
    long = "word " * 100_000  # 500,000 characters, cut at MAX_CHARACTERS for the rest
    columns = describe("prompt", [long])
    assert columns["prompt.characters"] == [500_000]
    assert columns["prompt.words"] == [100_000]
    assert columns["prompt.non_letter_share"] == [pytest.approx(0.2)]


def test_the_named_ngrams_do_not_depend_on_hash_order() -> None:
    script = (
        "from driftline.detectors.text import check_text;"
        "r = check_text(['the cat sat on the mat'] * 30,"
        " [f'the cat sat w{i}x' for i in range(30)]);"
        "print([m.ngram for m in r.moved])"
    )
    named = {
        subprocess.run(
            [sys.executable, "-c", script], env=os.environ | {"PYTHONHASHSEED": str(seed)},
            capture_output=True, text=True, check=True,
        ).stdout
        for seed in range(1, 5)
    }  # fmt: skip
    assert len(named) == 1, named


def test_detections_are_counted_by_the_given_counter() -> None:
    columns = describe(
        "prompt", ["mail a@b.c and d@e.f", "none"], count_detections=lambda t: t.count("@")
    )
    assert columns["prompt.detections"] == [2, 0]


def test_language_of_plain_sentences() -> None:
    assert language("The weather is lovely today and we are going for a walk.") == "en"
    assert language("Il fait très beau aujourd'hui et nous allons nous promener.") == "fr"
    assert language("Hoy hace muy buen tiempo y vamos a dar un paseo por el parque.") == "es"


def test_descriptors_catch_longer_prompts_the_text_check_does_not() -> None:
    rng = np.random.default_rng(3)
    before, after = sentences(rng, 2_000), sentences(rng, 500)
    longer = [" ".join([text] * 30) for text in after]  # the same words, thirty times over
    text_result = check_text(before, longer)
    assert isinstance(text_result, TextDrift)
    columns = describe("prompt", before)
    baseline = fit_baseline(columns, kinds("prompt", columns))
    same = [
        v
        for v in check_window(baseline, describe("prompt", after))
        if isinstance(v, FeatureVerdict)
    ]
    assert not any(v.drifted for v in same)
    verdicts = check_window(baseline, describe("prompt", longer))
    drifted = {v.feature for v in verdicts if isinstance(v, FeatureVerdict) and v.drifted}
    assert {"prompt.characters", "prompt.words"} <= drifted

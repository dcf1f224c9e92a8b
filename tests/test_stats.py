"""ftlib.stats: paired comparisons over seeds call a winner only when the interval excludes 0."""

import math

import pytest
from scipy import stats

from ftlib.stats import compare_paired


def test_interval_matches_scipys_paired_t_test():
    a = [0.91, 0.88, 0.93, 0.90, 0.87, 0.92]
    b = [0.86, 0.87, 0.89, 0.84, 0.86, 0.90]
    result = compare_paired(a, b, names=("fine-tune", "scratch"), confidence=0.9)
    expected = stats.ttest_rel(a, b).confidence_interval(confidence_level=0.9)
    assert math.isclose(result.low, expected.low, rel_tol=1e-9)
    assert math.isclose(result.high, expected.high, rel_tol=1e-9)
    assert math.isclose(result.mean, sum(a) / 6 - sum(b) / 6, rel_tol=1e-9)


def test_winner_only_when_the_interval_excludes_zero():
    better = compare_paired([0.9, 0.8, 0.85], [0.8, 0.7, 0.76], names=("x", "y"))
    worse = compare_paired([0.8, 0.7, 0.76], [0.9, 0.8, 0.85], names=("x", "y"))
    noisy = compare_paired([0.9, 0.7, 0.85], [0.8, 0.8, 0.86], names=("x", "y"))
    assert (better.winner, worse.winner, noisy.winner) == ("x", "y", None)
    assert noisy.low < 0 < noisy.high
    assert str(noisy).endswith("the data cannot tell")
    assert "x is better" in str(better)


def test_pairing_cancels_what_the_seed_does_to_both():
    # Seed effects of +-0.1 are shared; the recipe effect of 0.01 is the same on every seed.
    seed_effect = [0.1, -0.1, 0.05, -0.05, 0.0]
    a = [0.8 + s + 0.01 for s in seed_effect]
    b = [0.8 + s for s in seed_effect]
    result = compare_paired(a, b)
    assert result.winner == "a"
    assert result.high - result.low < 1e-9


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([0.1, 0.2], [0.1], "one value per seed"),
        ([0.1], [0.2], "at least 2"),
        ([0.1, float("nan")], [0.1, 0.2], "finite"),
    ],
)
def test_bad_input_is_refused_with_the_reason(a, b, message):
    with pytest.raises(ValueError, match=message):
        compare_paired(a, b)


def test_confidence_must_be_a_fraction():
    with pytest.raises(ValueError, match="between 0 and 1"):
        compare_paired([0.1, 0.2], [0.2, 0.3], confidence=95)

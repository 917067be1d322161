import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mecl_utils.statistics import (
    PairedDifference,
    chance_caveat,
    compare_with_baseline,
    difference_reading,
    holm,
    interval_text,
    paired_difference,
    passes,
    readable,
    reading,
    welch_difference,
)


def test_paired_difference_matches_a_hand_computation():
    vanilla = pd.Series([70.0, 72.0, 71.0], index=[0, 1, 2])
    curriculum = pd.Series([71.0, 75.0, 73.0], index=[0, 1, 2])  # differences 1, 3, 2
    d = paired_difference(vanilla, curriculum)
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sd of (1, 3, 2) is 1
    assert (d.n, d.mean, d.sd) == (3, 2.0, 1.0)
    assert d.low == pytest.approx(2.0 - half) and d.high == pytest.approx(2.0 + half)
    assert d.p == pytest.approx(stats.ttest_rel([71, 75, 73], [70, 72, 71]).pvalue)


def test_paired_difference_pairs_by_repetition_not_by_position():
    vanilla = pd.Series([70.0, 80.0, 90.0], index=[0, 1, 2])
    other = pd.Series([91.0, 71.0, 81.0], index=[2, 0, 1])  # +1 for every repetition, listed out of order
    d = paired_difference(vanilla, other)
    assert d.mean == pytest.approx(1.0) and d.sd == pytest.approx(0.0, abs=1e-12)


def test_differences_that_do_not_vary_have_no_p_value():
    d = paired_difference(pd.Series([0.1, 0.2, 0.3]), pd.Series([0.1, 0.2, 0.3]) + 0.7)
    assert math.isnan(d.p) and d.low == pytest.approx(0.7) and d.high == pytest.approx(0.7)


def test_one_pair_has_a_mean_but_no_interval():
    d = paired_difference(pd.Series([1.0, np.nan]), pd.Series([2.0, 5.0]))
    assert d.n == 1 and d.mean == 1.0 and math.isnan(d.low) and math.isnan(d.p)


def test_holm_adjusts_step_down_and_keeps_nan():
    adjusted = holm([0.01, np.nan, 0.04, 0.03])
    # sorted 0.01, 0.03, 0.04 with m = 3: 0.03, 0.06, then max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(adjusted, [0.03, np.nan, 0.06, 0.06])


def test_passes_needs_enough_repetitions_and_a_small_p():
    assert passes(0.01, 3) and not passes(0.01, 2) and not passes(0.05, 5) and not passes(np.nan, 5)


def test_compare_with_baseline_corrects_only_the_secondary_comparisons():
    rng = np.random.default_rng(0)
    vanilla = rng.normal(70, 1, 5)
    wide = pd.DataFrame(
        {
            "vanilla": vanilla,
            "curriculum": vanilla + rng.normal(1, 1, 5),
            "anti": vanilla + rng.normal(0.5, 1, 5),
            "random": vanilla + rng.normal(2, 1, 5),
        }
    )
    table = compare_with_baseline(wide)
    assert list(table.index) == ["curriculum", "anti", "random"]
    assert table.loc["curriculum", "p adjusted"] == table.loc["curriculum", "p"]
    np.testing.assert_allclose(
        table.loc[["anti", "random"], "p adjusted"], holm(table.loc[["anti", "random"], "p"])
    )


def test_interval_text_signs_both_ends():
    assert interval_text(-0.414, 2.3) == "[-0.41, +2.30] points"


def test_a_non_significant_reading_gives_the_interval_and_never_says_no_effect():
    d = paired_difference(pd.Series([70.0, 72.0, 71.0]), pd.Series([72.0, 71.0, 73.0]))
    text = reading(d)
    assert text.startswith("not distinguishable with 3 repetitions")
    assert interval_text(d.low, d.high) in text
    assert "no effect" not in text and "within noise" not in text


def test_a_significant_reading_names_the_level_and_the_interval():
    d = paired_difference(pd.Series([70.0, 72.0, 71.0, 70.5]), pd.Series([72.0, 74.1, 72.9, 72.6]))
    text = reading(d)
    assert text.startswith("distinguishable from noise at the 0.05 level") and "95 % interval" in text


def test_welch_difference_from_summaries_matches_welch_on_the_samples():
    a, b = np.array([71.0, 72.5, 70.2, 73.1, 71.9]), np.array([70.1, 70.9, 71.4, 69.8, 70.6])
    welch = stats.ttest_ind(a, b, equal_var=False)
    low, high = welch.confidence_interval(0.95)
    d = welch_difference([a.mean()], [a.std(ddof=1)], [5], [b.mean()], [b.std(ddof=1)], [5]).iloc[0]
    assert d["mean"] == pytest.approx(a.mean() - b.mean())
    assert (d["low"], d["high"], d["p"]) == pytest.approx((low, high, welch.pvalue))


def test_too_few_repetitions_still_give_the_interval():
    d = paired_difference(pd.Series([70.0, 72.0]), pd.Series([71.0, 74.0]))
    text = reading(d)
    assert text.startswith("with 2 repetitions a paired test cannot be read (at least 3 are needed)")
    assert text.endswith(f"; the interval is {interval_text(d.low, d.high)}")


def test_too_few_repetitions_that_agree_are_not_given_a_zero_width_interval():
    text = reading(paired_difference(pd.Series([0.1, 0.2]), pd.Series([0.1, 0.2]) + 0.7))
    assert text.endswith("; the 2 differences are all +0.70 points") and "interval" not in text


def test_a_difference_reading_leads_with_the_mean_difference():
    d = paired_difference(pd.Series([70.0, 72.0, 71.0]), pd.Series([72.0, 71.0, 73.0]))  # +2, -1, +2
    assert difference_reading(d) == f"+1.00 points, {reading(d)}"


def test_a_difference_reading_with_too_few_repetitions_still_gives_the_interval():
    d = paired_difference(pd.Series([70.0, 72.0]), pd.Series([71.0, 75.0]))  # +1, +3
    half = stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2)  # sd of (1, 3) is sqrt(2)
    text = difference_reading(d)
    assert text.startswith("+2.00 points, with 2 repetitions a paired test cannot be read")
    assert text.endswith(f"the interval is {interval_text(2 - half, 2 + half)}")


def test_a_paired_difference_is_read_back_from_the_columns_a_table_row_names():
    row = pd.Series(
        {"Anti difference": 1.5, "Anti low": 0.5, "Anti high": 2.5, "Anti pairs": 4, "Anti p": 0.02}
    )
    d = PairedDifference.from_row(row, "Anti {}")
    assert (d.n, d.mean, d.low, d.high, d.p) == (4, 1.5, 0.5, 2.5, 0.02) and math.isnan(d.sd)


def test_a_row_without_a_pairs_column_counts_its_repetitions_and_may_name_its_mean():
    row = pd.Series({"final vs plain": -1.0, "final vs plain low": -2.0, "final vs plain high": 0.0,
                     "final vs plain p": 0.1, "repetitions": 3})  # fmt: skip
    d = PairedDifference.from_row(row, "final vs plain {}", "final vs plain")
    assert (d.n, d.mean) == (3, -1.0)


def test_a_test_is_read_only_with_enough_pairs_and_a_p_value():
    assert readable(0.5, 3) and not readable(0.01, 2) and not readable(np.nan, 5)


def test_the_chance_caveat_counts_the_passes_expected_by_chance():
    assert "about 0.5 times by chance alone" in chance_caveat(10, 2, 0.05)

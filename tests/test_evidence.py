"""The evidence module against hand computations on small fixed data and known closed forms."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mecl_utils import evidence
from mecl_utils.report import evidence_tables, paper_evidence
from mecl_utils.report.table_iv import paper_table_iv


def test_the_bootstrap_interval_of_two_differences_spans_their_resample_means():
    # Resamples of (1, 3) have means 1, 2 or 3 with probabilities 1/4, 1/2, 1/4: the 2.5 % and 97.5 %
    # percentiles are 1 and 3.
    assert evidence.bootstrap_interval([1.0, 3.0]) == (1.0, 3.0)


def test_the_bootstrap_interval_of_equal_differences_has_zero_width():
    assert evidence.bootstrap_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_the_bootstrap_interval_needs_two_differences():
    assert all(math.isnan(x) for x in evidence.bootstrap_interval([1.0, float("nan")]))


def test_the_bootstrap_interval_is_repeatable_from_its_seed():
    values = [0.3, -1.2, 2.5, 0.9, 1.1]
    assert evidence.bootstrap_interval(values, seed=4) == evidence.bootstrap_interval(values, seed=4)


def test_the_probability_of_improvement_counts_every_pair_of_runs_and_ties_half():
    # other 2 vs baseline 1 and 2: 1 + 1/2; other 3 vs 1 and 2: 1 + 1. (1.5 + 2) / 4.
    assert evidence.probability_of_improvement([1.0, 2.0], [2.0, 3.0]) == 0.875


def test_the_pooled_probability_of_improvement_averages_the_cases():
    always, never = ([1.0, 2.0], [5.0, 6.0]), ([5.0, 6.0], [1.0, 2.0])
    pooled = evidence.pooled_probability_of_improvement([always, never], resamples=200)
    assert pooled.value == 0.5
    assert pooled.low == pooled.high == 0.5  # no resample can change who wins within a case


def test_the_pooled_probability_of_improvement_interval_holds_its_estimate():
    case = ([1.0, 2.0, 3.0, 4.0], [2.5, 1.5, 3.5, 3.9])
    pooled = evidence.pooled_probability_of_improvement([case], resamples=500, seed=1)
    assert 0 <= pooled.low <= pooled.value <= pooled.high <= 1
    assert pooled.low < pooled.high


def test_the_random_effects_mean_matches_a_hand_computation():
    # Three cases, differences 1, 2, 4, each with variance sd² / n = 2 / 2 = 1. Fixed-effect mean 7/3,
    # Q = (16 + 1 + 25) / 9 = 42/9 on 2 degrees of freedom, so tau² = (42/9 − 2) / (3 − 1) = 4/3; every
    # random-effects weight is 1 / (1 + 4/3) = 3/7, the mean stays 7/3 with standard error √(7/9), and
    # t = √7 on 2 degrees of freedom has the two-sided p 1 − √7 / 3 (Student's t with 2 df in closed form).
    pooled = evidence.random_effects([1.0, 2.0, 4.0], [math.sqrt(2)] * 3, [2, 2, 2])
    half = stats.t.ppf(0.975, 2) * math.sqrt(7 / 9)
    assert pooled.mean == pytest.approx(7 / 3)
    assert pooled.tau == pytest.approx(math.sqrt(4 / 3), rel=1e-6)
    assert (pooled.low, pooled.high) == pytest.approx((7 / 3 - half, 7 / 3 + half), rel=1e-6)
    assert pooled.p == pytest.approx(1 - math.sqrt(7) / 3, rel=1e-6)
    assert (pooled.k, pooled.excluded) == (3, 0)


def test_the_common_effect_mean_beside_it_weighs_by_inverse_variance_alone():
    # Differences 1, 2, 4, each with variance 1: mean 7/3, standard error 1/√3, a normal interval.
    pooled = evidence.random_effects([1.0, 2.0, 4.0], [math.sqrt(2)] * 3, [2, 2, 2])
    half = stats.norm.ppf(0.975) / math.sqrt(3)
    assert pooled.common_mean == pytest.approx(7 / 3)
    assert (pooled.common_low, pooled.common_high) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert pooled.common_p == pytest.approx(2 * stats.norm.sf(7 / 3 * math.sqrt(3)))


def test_cases_that_agree_more_than_their_noise_pool_with_no_spread_between_them():
    pooled = evidence.random_effects([-2.373, -1.607], [3.489, 1.654], [3, 3])
    assert pooled.tau == 0.0
    assert pooled.i2 == 0.0
    assert pooled.low < pooled.mean < pooled.high


def test_cases_without_usable_variance_are_left_out_and_counted():
    pooled = evidence.random_effects([1.0, 2.0, 4.0, 9.0], [1.0, 1.0, 0.0, 2.0], [3, 3, 3, 1])
    assert (pooled.k, pooled.excluded) == (2, 2)


def test_one_usable_case_gives_no_pooled_estimate():
    assert math.isnan(evidence.random_effects([1.0, 2.0], [1.0, 0.0], [3, 3]).mean)


def test_the_sign_test_counts_cases_and_leaves_ties_out():
    # 3 of the 4 untied cases improve: two-sided binomial p = 2 × P(X ≥ 3 | 4, 1/2) = 2 × 5/16.
    assert evidence.sign_test([1.0, -1.0, 2.0, 0.0, 3.0]) == evidence.SignTest(3, 1, 1, 0.625)


def test_a_paired_test_on_ten_pairs_has_80_percent_power_for_a_difference_of_one_sd():
    # Cohen's d = 1, two-sided alpha 0.05: the textbook (and G*Power) answer is n = 10, power 0.803.
    assert evidence.paired_power(1.0, 1.0, 10) == pytest.approx(0.8031, abs=1e-4)
    assert evidence.repetitions_for_power(2.0, 2.0) == 10


def test_the_paired_power_reaches_the_normal_closed_form_for_many_pairs():
    # Large n: power = Φ(δ√n/σ − z) + Φ(−δ√n/σ − z), z the 97.5 % normal quantile.
    n, delta, sd = 4000, 0.05, 1.0
    shift, z = delta * math.sqrt(n) / sd, stats.norm.ppf(0.975)
    closed = stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z)
    assert evidence.paired_power(delta, sd, n) == pytest.approx(closed, abs=2e-3)


def test_the_repetitions_for_power_are_the_fewest_that_reach_it():
    n = evidence.repetitions_for_power(0.5, 1.0)
    assert n == 34  # Cohen's d = 0.5, paired, 80 %: the textbook 34
    assert evidence.paired_power(0.5, 1.0, n - 1) < 0.8 <= evidence.paired_power(0.5, 1.0, n)


def test_the_repetitions_for_power_refuse_a_difference_of_zero():
    with pytest.raises(ValueError, match="min_effect and sd must be positive"):
        evidence.repetitions_for_power(0.0, 1.0)


def test_the_detectable_difference_is_the_one_the_power_reaches():
    paired = evidence.detectable_difference(2.0, 5)
    assert evidence.paired_power(paired, 2.0, 5) == pytest.approx(0.8, abs=1e-6)


def test_two_groups_of_seventeen_detect_one_sd_at_80_percent():
    # Two-sample t, d = 1: 17 a group gives power 0.807 (the textbook table's n = 17).
    assert evidence.unpaired_power(1.0, 1.0, 17) == pytest.approx(0.807, abs=1e-3)
    assert (
        evidence.detectable_difference(1.0, 17, paired=False)
        < 1.0
        < evidence.detectable_difference(1.0, 16, paired=False)
    )


def test_the_power_of_a_test_without_spread_is_undefined():
    assert np.isnan(evidence.paired_power(1.0, 0.0, 5))


def repetition_rows(accuracies: dict) -> pd.DataFrame:
    """Repetition rows of a results frame: {(backbone, branch): {method: [accuracy per repetition]}}."""
    rows = [
        {
            "stage": "repetition",
            "backbone": backbone,
            "dataset": "cifar10",
            "branch": branch,
            "method": method,
            "repetition": repetition,
            "accuracy": accuracy,
            "seconds": 30.0,
        }
        for (backbone, branch), methods in accuracies.items()
        for method, values in methods.items()
        for repetition, accuracy in enumerate(values)
    ]
    return pd.DataFrame(rows)


TWO_CASES = repetition_rows(
    {
        ("mobilenet", 1): {"vanilla": [0.50, 0.52, 0.54], "curriculum": [0.51, 0.55, 0.56]},
        ("mobilenet", 2): {"vanilla": [0.60, 0.60, 0.62], "curriculum": [0.62, 0.61, 0.65]},
    }
)


def test_each_case_reads_its_paired_differences_in_points():
    table = evidence_tables.case_evidence(TWO_CASES)
    first = table.iloc[0]
    # Differences 1, 3, 2 points: mean 2, SD 1, t interval 2 ± t(0.975, 2) / √3.
    assert (first["method"], first["pairs"]) == ("curriculum", 3)
    assert first["difference"] == pytest.approx(2.0)
    assert first["sd"] == pytest.approx(1.0)
    assert first["high"] - first["difference"] == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3))
    assert first["P(improve)"] == pytest.approx(7 / 9)  # 51 > 50; 55, 56 > all three
    assert first["repetitions needed"] == 5  # d = 2: power 0.755 with 4 pairs, 0.909 with 5


def test_the_primary_comparison_is_holm_corrected_across_cases():
    table = evidence_tables.case_evidence(TWO_CASES)
    low, high = sorted(table["p"])
    assert sorted(table["p Holm (cases)"]) == pytest.approx([max(2 * low, high), max(2 * low, high)])


def test_the_pooled_row_counts_the_cases_that_improve():
    pooled = evidence_tables.pooled_evidence(TWO_CASES).set_index("method").loc["curriculum"]
    assert (pooled["cases"], pooled["improved"], pooled["worse"]) == (2, 2, 0)
    assert pooled["low"] < pooled["difference"] < pooled["high"]


def test_the_tables_are_written_as_markdown_or_csv():
    table = evidence_tables.pooled_evidence(TWO_CASES)
    assert evidence_tables.evidence_text(table).startswith("| method | role |")
    assert evidence_tables.evidence_text(table, "csv").startswith("method,role,")
    with pytest.raises(ValueError, match="unknown format 'html'"):
        evidence_tables.evidence_text(table, "html")


def paper_row(table, backbone, dataset, branch):
    keep = (table["backbone"] == backbone) & (table["dataset"] == dataset) & (table["branch"] == branch)
    return table[keep].iloc[0]


def test_the_paper_re_analysis_matches_a_hand_welch_test_with_unequal_spreads():
    # DenseNet201 / CIFAR-10 / branch 1: vanilla 71.71 ± 0.47, curriculum 71.59 ± 0.57, anti 71.75 ± 0.75,
    # five runs each. Welch: se² = 0.57²/5 + 0.47²/5, df = se⁴ / ((0.57²/5)²/4 + (0.47²/5)²/4).
    a, b = 0.57**2 / 5, 0.47**2 / 5
    se, df = math.sqrt(a + b), (a + b) ** 2 / (a**2 / 4 + b**2 / 4)
    row = paper_row(paper_evidence.paper_evidence(paper_table_iv()), "densenet201", "cifar10", 1)
    assert row["difference"] == pytest.approx(-0.12)
    assert row["high"] - row["difference"] == pytest.approx(stats.t.ppf(0.975, df) * se)
    assert row["p"] == pytest.approx(2 * stats.t.sf(0.12 / se, df))
    assert (row["picked"], row["picked difference"]) == ("anti", pytest.approx(0.04))  # anti's mean is higher


def test_the_paper_re_analysis_matches_a_hand_welch_test_with_equal_spreads_and_holm():
    # InceptionV3 / CIFAR-100 / branch 2: 45.86 ± 0.21 against 46.50 ± 0.21. Equal SDs and counts: Welch's
    # df is 2 × (5 − 1) = 8 and se = 0.21 × √(2/5). It has the smallest p of the 16 cases, so Holm
    # multiplies it by 16. Two groups of 5 detect d = 2.0244 SDs at 80 % (the textbook two-sample table).
    se = 0.21 * math.sqrt(2 / 5)
    table = paper_evidence.paper_evidence(paper_table_iv())
    row = paper_row(table, "inceptionv3", "cifar100", 2)
    assert row["p"] == pytest.approx(2 * stats.t.sf(0.64 / se, 8))
    assert row["p"] == table["p"].min()
    assert row["p Holm"] == pytest.approx(16 * row["p"])
    assert row["detectable"] == pytest.approx(0.21 * 2.0244, rel=1e-3)


def test_the_paper_pooled_over_its_cases_weighs_each_by_its_welch_variance():
    paper = paper_table_iv()
    pooled = paper_evidence.paper_pooled(paper)
    assert pooled.k == 16
    fixed_weights = 5 / (paper["Curriculum std"] ** 2 + paper["Vanilla std"] ** 2)
    fixed = np.average(paper["Curriculum mean"] - paper["Vanilla mean"], weights=fixed_weights)
    assert pooled.low < fixed < pooled.high  # with tau > 0 the pooled mean moves, not past its interval


def test_the_interval_narrows_as_observed_then_as_the_stored_sd_predicts():
    curve = evidence_tables.repetition_curve(TWO_CASES, [2, 6]).set_index(["case", "repetitions"])
    two = curve.loc[("mobilenet/cifar10/branch 1", 2)]
    six = curve.loc[("mobilenet/cifar10/branch 1", 6)]
    # The first two pairs differ by 1 and 3 points: mean 2, SD √2, half-width t(0.975, 1) × √2 / √2.
    assert two["observed"] and two["half width"] == pytest.approx(stats.t.ppf(0.975, 1))
    # Beyond the 3 stored: the stored mean 2 and SD 1, half-width t(0.975, 5) / √6.
    assert not six["observed"] and six["difference"] == pytest.approx(2.0)
    assert six["half width"] == pytest.approx(stats.t.ppf(0.975, 5) / math.sqrt(6))
    assert six["cpu minutes"] == pytest.approx(6 * 2 * 30 / 60)  # two methods, 30 s a run


def test_the_curve_of_a_method_with_fewer_repetitions_counts_only_its_pairs():
    rows = repetition_rows(
        {("mobilenet", 1): {"vanilla": [0.50, 0.52, 0.54, 0.50], "anti": [0.51, 0.55, 0.56]}}
    )
    curve = evidence_tables.repetition_curve(rows, [3, 4], method="anti").set_index("repetitions")
    assert curve.loc[3, "observed"] and not curve.loc[4, "observed"]


def test_the_pooled_sentence_gives_the_interval_and_never_says_no_effect():
    pooled = evidence_tables.pooled_evidence(TWO_CASES).iloc[0]
    sentence = evidence_tables.pooled_sentence(pooled)
    assert sentence.startswith("Pooled over 2 cases, curriculum minus vanilla is +")
    assert f"[{pooled['low']:+.2f}, {pooled['high']:+.2f}] points" in sentence
    assert "no effect" not in sentence and "no difference" not in sentence


def test_the_forest_rows_end_with_the_two_pooled_estimates():
    per_case = evidence_tables.case_evidence(TWO_CASES)
    rows = evidence_tables.forest_rows(per_case, evidence_tables.pooled_evidence(TWO_CASES))
    assert rows["label"].tolist() == [
        "mobilenet/cifar10/branch 1",
        "mobilenet/cifar10/branch 2",
        "pooled (random effects)",
        "common effect",
    ]
    assert rows["pooled"].tolist() == [False, False, True, True]

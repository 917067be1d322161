"""Tests for report.condition_tables: curriculum against vanilla and random per condition and score."""

import dataclasses

import pandas as pd
import pytest
from scipy import stats

from mecl_utils import evidence
from mecl_utils.protocol.conditions import Condition
from mecl_utils.protocol.runs import Case, RunSpec
from mecl_utils.report import condition_tables
from mecl_utils.statistics import holm

CASE = Case("mobilenet", "cifar10", 1)


def _rows(accuracies: dict) -> pd.DataFrame:
    """{(method, teacher): [accuracy % per repetition]} of one case under "budget 0.25"."""
    return pd.DataFrame(
        [
            {"case": CASE.label, "condition": "budget 0.25", "method": method, "teacher": teacher,
             "repetition": repetition, "accuracy": accuracy}
            for (method, teacher), values in accuracies.items()
            for repetition, accuracy in enumerate(values)
        ]
    )  # fmt: skip


ROWS = _rows(
    {
        ("vanilla", ""): [50.0, 52.0, 54.0],
        ("random", ""): [51.0, 51.0, 55.0],
        ("curriculum", "self"): [53.0, 55.0, 56.0],
    }
)


def test_each_comparison_is_the_paired_difference_with_its_t_interval():
    table = condition_tables.condition_comparisons(ROWS).set_index("comparison")
    vanilla = table.loc["curriculum − vanilla"]  # differences 3, 3, 2
    assert vanilla["difference"] == pytest.approx(8 / 3)
    assert vanilla["p"] == pytest.approx(stats.ttest_1samp([3, 3, 2], 0).pvalue)
    random = table.loc["curriculum − random"]  # differences 2, 4, 1
    assert random["difference"] == pytest.approx(7 / 3)
    assert random["high"] - random["difference"] == pytest.approx(
        stats.t.ppf(0.975, 2) * stats.tstd([2, 4, 1]) / 3**0.5
    )


def test_the_whole_family_is_holm_corrected():
    table = condition_tables.condition_comparisons(ROWS)
    assert table["p Holm"].tolist() == pytest.approx(holm(table["p"]).tolist())
    assert (table["p Holm"] >= table["p"]).all()


def test_each_score_is_compared_with_the_same_vanilla_and_random_runs():
    rows = pd.concat([ROWS, _rows({("curriculum", "prediction_depth"): [50.0, 53.0, 54.0]})])
    table = condition_tables.condition_comparisons(rows)
    assert table[["teacher", "comparison"]].values.tolist() == [
        ["self", "curriculum − vanilla"], ["self", "curriculum − random"],
        ["prediction_depth", "curriculum − vanilla"], ["prediction_depth", "curriculum − random"],
    ]  # fmt: skip


def test_runs_are_read_by_run_id_with_their_spec():
    spec = RunSpec("condition", CASE, "curriculum", "sgd", 0.01, "self", "FEP(100)", 2, "test")
    spec = dataclasses.replace(spec, condition=Condition(label_noise=0.2))
    results = pd.DataFrame({"run_id": ["a", "b"], "accuracy": [0.5, 0.6]})
    rows = condition_tables.condition_rows([(spec, "b"), (spec, "missing")], results)
    assert rows.to_dict("records") == [
        {"case": CASE.label, "condition": "label_noise 0.2", "method": "curriculum", "teacher": "self",
         "repetition": 2, "accuracy": 60.0}
    ]  # fmt: skip


def test_the_sentence_gives_the_interval_and_the_corrected_p():
    row = condition_tables.condition_comparisons(ROWS).iloc[0]
    sentence = condition_tables.condition_sentence(row)
    assert sentence.startswith("mobilenet/cifar10/branch 1, budget 0.25, ordered by self: curriculum − van")
    assert "Holm-corrected p" in sentence and "no effect" not in sentence


def test_the_summary_names_where_the_order_helped_and_what_the_rest_allow():
    table = condition_tables.condition_comparisons(ROWS)
    table.loc[table["comparison"] == "curriculum − random", "p Holm"] = 0.5
    summary = condition_tables.ordering_summary(table)
    assert summary.startswith("In none of the 1 settings is the order's effect distinguishable")
    row = table[table["comparison"] == "curriculum − random"].iloc[0]
    assert f"from {row['low']:+.2f} to {row['high']:+.2f} points" in summary
    table.loc[table["comparison"] == "curriculum − random", "p Holm"] = 0.01
    assert "The order helped beyond its pacing" in condition_tables.ordering_summary(table)


def test_each_comparison_carries_its_power_for_the_chosen_difference():
    row = condition_tables.condition_comparisons(ROWS, min_effect=2.0).iloc[0]
    assert row["power"] == pytest.approx(evidence.paired_power(2.0, row["sd"], 3))

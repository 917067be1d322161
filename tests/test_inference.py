"""Accuracy against compute (mecl_utils.exits.accuracy_cost): curves on a grid, areas and paired AUC tests."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mecl_utils.exits import accuracy_cost, multi_exit
from mecl_utils.report.table_iv import table_iv


def _curves(offsets):
    """Vanilla and curriculum (``offset`` higher) with a linear accuracy-cost curve per repetition."""
    rows = []
    for repetition, offset in enumerate(offsets):
        for cost in np.linspace(0.2, 1.0, 9):
            for method, shift in (("vanilla", 0.0), ("curriculum", offset)):
                rows.append(
                    {
                        "method": method,
                        "repetition": repetition,
                        "cost": cost,
                        "accuracy": 0.5 + 0.4 * cost + shift,
                    }
                )
    return pd.DataFrame(rows)


def test_curves_on_grid_interpolate_each_run():
    on_grid = accuracy_cost.curves_on_grid(_curves([0.0]), np.array([0.2, 0.6]))
    vanilla = on_grid[on_grid["method"] == "vanilla"]["accuracy"].tolist()
    assert vanilla == pytest.approx([0.58, 0.74])


def test_area_under_curves_is_the_mean_accuracy_over_the_common_range():
    area = accuracy_cost.area_under_curves(_curves([0.0]))
    assert area.set_index("method").loc["vanilla", "auc"] == pytest.approx(0.5 + 0.4 * 0.6)
    assert (area["cost_low"].iloc[0], area["cost_high"].iloc[0]) == pytest.approx((0.2, 1.0))


def _flat_curves(accuracy):
    """Per (method, repetition), an accuracy that does not depend on cost: its AUC is that accuracy."""
    rows = [
        {"method": method, "repetition": repetition, "cost": cost, "accuracy": value}
        for method, values in accuracy.items()
        for repetition, value in values.items()
        for cost in (0.2, 1.0)
    ]
    return pd.DataFrame(rows)


def test_auc_tests_pair_each_method_with_vanilla_by_repetition():
    # Vanilla varies far more across repetitions than curriculum's consistent gain of about 2 points: only
    # a test that pairs the runs of one repetition can see the gain, and curriculum's runs are listed in
    # another order than vanilla's, so pairing by position would pair the wrong runs.
    vanilla = pd.Series([0.50, 0.70, 0.60, 0.80])
    curriculum = (vanilla + np.array([0.019, 0.021, 0.020, 0.020]))[[3, 0, 2, 1]]
    assert stats.ttest_ind(curriculum, vanilla, equal_var=False).pvalue > 0.5  # unpaired: nothing seen
    tests = accuracy_cost.auc_tests(_flat_curves({"vanilla": vanilla, "curriculum": curriculum}))
    assert tests.loc["curriculum", "minus vanilla (points)"] == pytest.approx(2.0)
    assert tests.loc["curriculum", "high"] - tests.loc["curriculum", "low"] < 0.5
    assert tests.loc["curriculum", "paired p"] < 0.001
    assert np.isnan(tests.loc["vanilla", "paired p"]) and tests["repetitions"].iloc[0] == 4


def test_auc_tests_give_no_p_value_when_the_differences_vary_by_rounding_only():
    vanilla = pd.Series([0.80, 0.82, 0.81])
    curves = _flat_curves({"vanilla": vanilla, "curriculum": vanilla + 0.01})  # +1 point in every repetition
    auc = accuracy_cost.area_under_curves(curves).pivot(index="repetition", columns="method", values="auc")
    assert 0 < (100 * (auc["curriculum"] - auc["vanilla"])).std() < 1e-12  # up to floating-point rounding
    tests = accuracy_cost.auc_tests(curves)
    assert tests.loc["curriculum", "minus vanilla (points)"] == pytest.approx(1.0)
    assert np.isnan(tests.loc["curriculum", "paired p"])


def test_auc_tests_and_table_iv_read_the_same_p_values():
    accuracy = {
        "vanilla": pd.Series([0.80, 0.82, 0.81, 0.79]),
        "curriculum": pd.Series([0.83, 0.82, 0.84, 0.80]),
        "anti": pd.Series([0.81, 0.83, 0.82, 0.80]),  # +1 point in every repetition, up to rounding
        "random": pd.Series([0.80, 0.85, 0.83, 0.81]),
    }
    runs = [
        {"stage": "repetition", "backbone": "tiny_cnn", "dataset": "digits", "branch": 1, "method": method,
         "repetition": repetition, "accuracy": value, "optimizer": "adam", "learning_rate": 1e-3,
         "teacher": "self", "pacing": "FEP(100)"}
        for method, values in accuracy.items()
        for repetition, value in values.items()
    ]  # fmt: skip
    row = table_iv(pd.DataFrame(runs)).iloc[0]
    tests = accuracy_cost.auc_tests(_flat_curves(accuracy))
    for method, label in (("curriculum", "Curriculum"), ("anti", "Anti"), ("random", "Random")):
        auc, table = tests.loc[method], row[[f"{label} p", f"{label} low", f"{label} high"]]
        np.testing.assert_allclose(auc[["paired p", "low", "high"]].astype(float), table.astype(float))


def test_budget_summary_marks_budgets_no_exit_meets():
    budget = pd.DataFrame(
        {"method": ["vanilla"] * 4, "repetition": [0, 1, 0, 1], "budget": [0.25, 0.25, 1.0, 1.0],
         "cost": [np.nan, np.nan, 0.9, 1.0], "accuracy": [np.nan, np.nan, 0.8, 0.9]}
    )  # fmt: skip
    assert accuracy_cost.budget_summary(budget).loc["vanilla"].tolist() == ["–", "85.00 ± 7.07 (cost 95.0 %)"]


def test_budget_summary_marks_a_cell_whose_test_cost_is_over_budget_with_its_cost():
    budget = pd.DataFrame(
        {"method": ["vanilla"] * 3, "repetition": [0, 1, 2], "budget": 0.5,
         "cost": [0.48, 0.53, 0.55], "accuracy": [0.80, 0.81, 0.82]}
    )  # fmt: skip
    assert (
        accuracy_cost.budget_summary(budget).loc["vanilla", "budget 50 %"]
        == "81.00 ± 1.00 (cost 52.0 %; 2 of 3 over)"
    )
    assert accuracy_cost.over_budget(budget)["repetition"].tolist() == [1, 2]


def _network(outputs, labels, fractions):
    return multi_exit.ExitNetwork(
        exit_names=("branch 1", "final"), layers=("block1_out",), path_costs=np.array(fractions) * 100,
        classifier_macs=90, labels={"test": np.array(labels)}, outputs={("vanilla", 0): {"test": outputs}},
    )  # fmt: skip


def test_deadline_outcomes_count_a_missed_deadline_as_wrong():
    right = [np.eye(2)[[0, 1, 0]], np.eye(2)[[0, 1, 0]]]
    network = _network(right, [0, 1, 0], [0.4, 1.0])
    outcome = accuracy_cost.deadline_outcomes(network, np.array([0.1, 0.5, 1.0])).iloc[0]
    assert outcome["accuracy"] == pytest.approx(2 / 3) and outcome["missed"] == pytest.approx(1 / 3)
    assert outcome["cost"] == pytest.approx((0.1 + 0.4 + 1.0) / 3)


def test_oracle_outcome_takes_the_earliest_correct_exit():
    outputs = [np.eye(2)[[1, 1]], np.eye(2)[[0, 1]]]  # exit 1 wrong on sample 0, both right on sample 1
    outcome = accuracy_cost.oracle_outcomes(_network(outputs, [0, 1], [0.4, 1.0])).iloc[0]
    assert outcome["accuracy"] == 1.0 and outcome["cost"] == pytest.approx((1.0 + 0.4) / 2)


def test_patience_sweeps_every_patience_an_exit_network_has():
    assert accuracy_cost.thresholds_for("patience", 10, num_exits=3).tolist() == [2, 1]


def test_operating_points_count_distinct_cost_accuracy_pairs_of_the_poorest_run():
    curves = pd.DataFrame(
        {"method": ["vanilla"] * 3 + ["curriculum"] * 3, "repetition": 0, "threshold": [1, 2, 3] * 2,
         "cost": [1.0, 0.6, 0.6, 1.0, 0.6, 0.4], "accuracy": [0.9, 0.8, 0.8, 0.9, 0.8, 0.7]}
    )  # fmt: skip
    assert accuracy_cost.operating_points(curves) == 2  # vanilla's thresholds 2 and 3 give the same point


def test_a_policy_with_fewer_than_three_operating_points_gets_no_auc_test():
    rng = np.random.default_rng(0)
    outputs = [rng.dirichlet(np.ones(3), 50) for _ in range(3)]
    network = multi_exit.ExitNetwork(
        exit_names=("branch 1", "branch 2", "final"), layers=("a", "b"), path_costs=np.array([30, 60, 100]),
        classifier_macs=90, labels={"test": rng.integers(0, 3, 50)},
        outputs={("vanilla", 0): {"test": outputs}},
    )  # fmt: skip
    kept, left_out = accuracy_cost.policies_for_auc(network)
    assert left_out == {"patience": 2} and set(kept) == {"confidence", "entropy"}

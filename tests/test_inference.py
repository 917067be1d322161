"""The multi-exit network at inference: curves, budgets, paired AUC tests and real staged early exit."""

import numpy as np
import pandas as pd
import pytest

from mecl_utils import inference


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
    on_grid = inference.curves_on_grid(_curves([0.0]), np.array([0.2, 0.6]))
    vanilla = on_grid[on_grid["method"] == "vanilla"]["accuracy"].tolist()
    assert vanilla == pytest.approx([0.58, 0.74])


def test_area_under_curves_is_the_mean_accuracy_over_the_common_range():
    area = inference.area_under_curves(_curves([0.0]))
    assert area.set_index("method").loc["vanilla", "auc"] == pytest.approx(0.5 + 0.4 * 0.6)
    assert (area["cost_low"].iloc[0], area["cost_high"].iloc[0]) == pytest.approx((0.2, 1.0))


def test_auc_tests_pair_each_method_with_vanilla():
    tests = inference.auc_tests(_curves([0.019, 0.02, 0.021]))
    assert tests.loc["curriculum", "minus vanilla (points)"] == pytest.approx(2.0)
    assert tests.loc["curriculum", "paired p"] < 0.05
    assert np.isnan(tests.loc["vanilla", "paired p"]) and tests["repetitions"].iloc[0] == 3


def test_budget_summary_marks_budgets_no_exit_meets():
    budget = pd.DataFrame(
        {"method": ["vanilla"] * 4, "repetition": [0, 1, 0, 1], "budget": [0.25, 0.25, 1.0, 1.0],
         "accuracy": [np.nan, np.nan, 0.8, 0.9]}
    )  # fmt: skip
    assert inference.budget_summary(budget).loc["vanilla"].tolist() == ["–", "85.00 ± 7.07"]


def _network(outputs, labels, fractions):
    return inference.ExitNetwork(
        exit_names=("branch 1", "final"), layers=("block1_out",), path_costs=np.array(fractions) * 100,
        classifier_macs=90, labels={"test": np.array(labels)}, outputs={("vanilla", 0): {"test": outputs}},
    )  # fmt: skip


def test_deadline_outcomes_count_a_missed_deadline_as_wrong():
    right = [np.eye(2)[[0, 1, 0]], np.eye(2)[[0, 1, 0]]]
    network = _network(right, [0, 1, 0], [0.4, 1.0])
    outcome = inference.deadline_outcomes(network, np.array([0.1, 0.5, 1.0])).iloc[0]
    assert outcome["accuracy"] == pytest.approx(2 / 3) and outcome["missed"] == pytest.approx(1 / 3)
    assert outcome["cost"] == pytest.approx((0.1 + 0.4 + 1.0) / 3)


def test_oracle_outcome_takes_the_earliest_correct_exit():
    outputs = [np.eye(2)[[1, 1]], np.eye(2)[[0, 1]]]  # exit 1 wrong on sample 0, both right on sample 1
    outcome = inference.oracle_outcomes(_network(outputs, [0, 1], [0.4, 1.0])).iloc[0]
    assert outcome["accuracy"] == 1.0 and outcome["cost"] == pytest.approx((1.0 + 0.4) / 2)

"""Tests for report.strategy_comparisons: the Sec. V tables from literal rows, intervals and Holm."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mecl_utils.report import strategy_comparisons
from mecl_utils.statistics import holm


def test_the_strategy_table_reads_strategy_by_strategy_vanilla_first_whatever_order_runs_finished():
    rows = pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition, "test_accuracy_exit1": 0.2, "test_accuracy_final": 0.5}
        for strategy, method in (("layer_wise", "curriculum"), ("plain", "curriculum"),
                                 ("layer_wise", "vanilla"), ("plain", "vanilla"))
        for repetition in (0, 1)
    ])  # fmt: skip
    table = strategy_comparisons.strategy_table(rows)
    assert list(zip(table["strategy"], table["method"], strict=True)) == [
        ("plain", "vanilla"), ("plain", "curriculum"), ("layer_wise", "vanilla"), ("layer_wise", "curriculum")
    ]  # fmt: skip


def test_final_vs_plain_is_the_final_exits_mean_minus_the_plain_networks_under_the_same_method():
    finals = {  # test accuracy of the final exit in repetitions 0 and 1
        ("plain", "vanilla"): (0.5, 0.6), ("plain", "curriculum"): (0.4, 0.5),
        ("end_to_end_equal", "vanilla"): (0.7, 0.8), ("end_to_end_equal", "curriculum"): (0.3, 0.4),
    }  # fmt: skip
    rows = pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition, "test_accuracy_final": accuracy}
        for (strategy, method), accuracies in finals.items()
        for repetition, accuracy in enumerate(accuracies)
    ])  # fmt: skip
    table = strategy_comparisons.strategy_table(rows).set_index(["strategy", "method"])["final vs plain"]
    assert table["end_to_end_equal", "vanilla"] == pytest.approx(75 - 55)
    assert table["end_to_end_equal", "curriculum"] == pytest.approx(35 - 45)


def _network_rows(accuracies: dict[tuple[str, str], tuple[list[float], list[float]]]) -> pd.DataFrame:
    """Literal network-strategy rows: (strategy, method) -> (exit1, final) test accuracies per repetition."""
    return pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition,
         "test_accuracy_exit1": exit1, "test_accuracy_final": final}
        for (strategy, method), values in accuracies.items()
        for repetition, (exit1, final) in enumerate(zip(*values, strict=True))
    ])  # fmt: skip


NETWORK_ROWS = _network_rows({
    ("plain", "vanilla"): ([0.1, 0.1, 0.1], [0.50, 0.52, 0.51]),
    ("plain", "curriculum"): ([0.1, 0.1, 0.1], [0.51, 0.52, 0.53]),
    ("layer_wise", "vanilla"): ([0.20, 0.22, 0.21], [0.48, 0.50, 0.50]),
    ("layer_wise", "curriculum"): ([0.21, 0.25, 0.23], [0.47, 0.49, 0.52]),
})  # fmt: skip


def test_the_strategy_table_gives_each_difference_its_95_percent_interval():
    table = strategy_comparisons.strategy_table(NETWORK_ROWS).set_index(["strategy", "method"])
    curriculum = table.loc[("layer_wise", "curriculum")]
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # exit1 differences 1, 3, 2 points: mean 2, sd 1
    assert curriculum["exit1 difference"] == pytest.approx(2.0)
    assert curriculum[["exit1 low", "exit1 high"]].tolist() == pytest.approx([2.0 - half, 2.0 + half])
    assert curriculum["exit1 pairs"] == 3
    versus_plain = table.loc[("layer_wise", "vanilla")]  # final: -2, -2, -1 points against plain vanilla
    half = stats.t.ppf(0.975, 2) * np.std([-2, -2, -1], ddof=1) / np.sqrt(3)
    assert versus_plain["final vs plain"] == pytest.approx(-5 / 3)
    assert versus_plain[["final vs plain low", "final vs plain high"]].tolist() == pytest.approx(
        [-5 / 3 - half, -5 / 3 + half]
    )


def test_the_strategy_tables_curriculum_tests_are_holm_corrected_as_one_family():
    table = strategy_comparisons.strategy_table(NETWORK_ROWS)
    curriculum = table[table["method"] == "curriculum"].set_index("strategy")
    raw = [curriculum.loc["plain", "final p"], curriculum.loc["layer_wise", "exit1 p"],
           curriculum.loc["layer_wise", "final p"]]  # fmt: skip
    adjusted = [curriculum.loc["plain", "final p adjusted"], curriculum.loc["layer_wise", "exit1 p adjusted"],
                curriculum.loc["layer_wise", "final p adjusted"]]  # fmt: skip
    np.testing.assert_allclose(adjusted, holm(raw))
    assert np.isnan(curriculum.loc["plain", "exit1 p adjusted"])  # untrained: not in the family


def _distillation_rows() -> pd.DataFrame:
    """Two branches, three repetitions: distilled curriculum beats distilled vanilla by 1, 3, 2 points."""
    accuracies = {
        ("repetition", "vanilla"): [0.60, 0.61, 0.62],
        ("repetition", "curriculum"): [0.61, 0.61, 0.64],
        ("distillation", "vanilla"): [0.58, 0.60, 0.60],
        ("distillation", "curriculum"): [0.59, 0.63, 0.62],
    }
    return pd.DataFrame([
        {"stage": stage, "method": method, "backbone": "mobilenet", "dataset": "cifar10", "branch": branch,
         "repetition": repetition, "accuracy": accuracy + shift}
        for branch, shift in ((1, 0.0), (2, 0.05))
        for (stage, method), values in accuracies.items()
        for repetition, accuracy in enumerate(values)
    ])  # fmt: skip


def test_the_distillation_table_gives_each_difference_its_95_percent_interval():
    row = strategy_comparisons.distillation_table(_distillation_rows()).iloc[0]
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # differences 1, 3, 2 points: mean 2, sd 1
    assert row["curriculum difference (distilled)"] == pytest.approx(2.0)
    assert [row["curriculum low (distilled)"], row["curriculum high (distilled)"]] == pytest.approx(
        [2.0 - half, 2.0 + half]
    )
    assert row["distillation difference (vanilla)"] == pytest.approx(-5 / 3)  # -2, -1, -2


def test_the_distillation_tests_are_holm_corrected_across_the_cases():
    table = strategy_comparisons.distillation_table(_distillation_rows())
    np.testing.assert_allclose(
        table["distillation p adjusted (vanilla)"], holm(table["distillation p (vanilla)"])
    )
    assert (table["distillation p adjusted (vanilla)"] > table["distillation p (vanilla)"]).all()


def test_the_distillation_table_refuses_two_feature_modes_that_share_repetition_numbers():
    rows = pd.DataFrame(
        [
            {"stage": stage, "backbone": "tiny_cnn", "dataset": "digits", "branch": 1, "method": method,
             "repetition": repetition, "accuracy": 0.8, "feature_mode": mode}
            for stage in ("repetition", "distillation")
            for method in ("vanilla", "curriculum")
            for repetition in range(2)
            for mode in ("memory", "shards")
        ]
    )  # fmt: skip
    with pytest.raises(ValueError, match="feature_mode"):
        strategy_comparisons.distillation_table(rows)

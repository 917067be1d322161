"""The strategies chapter's readings (mecl_utils.strategy_report) on literal tables."""

import numpy as np
import pandas as pd

from mecl_utils import strategy_report


def _table(sdn_final_p: float, plain_exit_p: float = 0.001) -> pd.DataFrame:
    rows = []
    for strategy, p_final in (("plain", 0.5), ("end_to_end_sdn", sdn_final_p)):
        for method, final in (("vanilla", 40.0), ("curriculum", 37.0)):
            curriculum = method == "curriculum"
            rows.append({
                "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy, "method": method,
                "exit1 mean": 10.0, "exit2 mean": 11.0, "final mean": final, "final std": 1.0,
                "final vs plain": 0.0, "repetitions": 3,
                "exit1 p": (plain_exit_p if strategy == "plain" else 0.6) if curriculum else np.nan,
                "exit2 p": 0.7 if curriculum else np.nan,
                "final p": p_final if curriculum else np.nan,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_the_plain_networks_untrained_branches_are_not_compared():
    reading = strategy_report.strategy_reading(_table(sdn_final_p=0.5), alpha=0.05)
    plain = reading.split("\n\n")[0]
    assert plain.startswith("**plain**") and "exit1" not in plain and "final -3.00" in plain
    assert "every difference within noise" in plain


def test_a_passing_test_comes_with_what_chance_alone_would_give():
    reading = strategy_report.strategy_reading(_table(sdn_final_p=0.01), alpha=0.05)
    assert "unlikely to be noise alone at final" in reading
    # plain: final only; SDN: exit1, exit2, final
    assert "1 of these 4 tests falls below 0.05" in reading and "about 0.2 times by chance" in reading


def test_no_caveat_where_nothing_passes():
    reading = strategy_report.strategy_reading(_table(sdn_final_p=0.5), alpha=0.05)
    assert "by chance alone" not in reading


def test_the_open_question_names_the_sign_of_what_passed():
    distilled = pd.DataFrame(
        {"distilled curriculum mean": [60.0], "distilled vanilla mean": [59.0], "repetitions": [3],
         "curriculum p (distilled)": [0.5]}
    )  # fmt: skip
    reading = strategy_report.open_questions_reading(distilled, _table(sdn_final_p=0.01), alpha=0.05)
    assert "Of the 4 comparisons" in reading and "1 is beyond noise" in reading
    assert "end to end, SDN at final (-3.00 points)" in reading and "by chance alone" in reading


def _distilled(curriculum_p: tuple[float, ...], distillation_p: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame([
        {"backbone": "mobilenet", "dataset": "cifar10", "branch": branch, "repetitions": 3,
         "plain vanilla mean": 60.0, "plain curriculum mean": 61.0,
         "distilled vanilla mean": 59.0, "distilled curriculum mean": 60.0,
         "curriculum p (distilled)": p, "distillation p (vanilla)": distillation_p}
        for branch, p in enumerate(curriculum_p, start=1)
    ])  # fmt: skip


def test_a_passing_distillation_test_comes_with_what_chance_alone_would_give():
    reading = strategy_report.distillation_reading(_distilled((0.03, 0.6)), alpha=0.05)
    # two cases, each with a curriculum and a distillation test
    assert "1 of these 4 tests falls below 0.05" in reading and "about 0.2 times by chance" in reading


def test_no_distillation_caveat_where_nothing_passes():
    reading = strategy_report.distillation_reading(_distilled((0.3, 0.6)), alpha=0.05)
    assert "by chance alone" not in reading


def test_the_distillation_question_weighs_a_pass_against_chance():
    reading = strategy_report.open_questions_reading(_distilled((0.03, 0.6)), _table(0.5), alpha=0.05)
    first = reading.split("\n\n")[0]
    assert "in 1 the paired test" in first and "1 of these 2 tests falls below 0.05" in first


def test_a_single_test_is_not_counted_as_one_of_one():
    caveat = strategy_report.chance_caveat(1, 1, 0.05)
    assert "of these 1" not in caveat and "probability 0.05" in caveat


def test_the_distillation_table_for_a_page_puts_each_std_under_its_mean_and_shows_no_index():
    table = _distilled((0.01, 0.2)).assign(
        **{f"{group} std": 0.5 for group in strategy_report.DISTILLATION_GROUPS}
    )
    page = strategy_report.style_distillation_table(table).to_html()
    assert "60.00<br><small>±&nbsp;0.50</small>" in page
    assert "mobilenet<br><small>cifar10&nbsp;·&nbsp;branch&nbsp;2<br>3&nbsp;repetitions</small>" in page
    assert 'class="row_heading' not in page  # no 0, 1 in front of the rows

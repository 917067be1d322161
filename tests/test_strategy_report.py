"""The strategies chapter's tables and readings (mecl_utils.report.distillation_tables, strategy_tables,
open_questions) on tables built from literal runs."""

import math

import pandas as pd
from scipy import stats

from mecl_utils import statistics
from mecl_utils.report import distillation_tables, open_questions, strategy_tables
from mecl_utils.report.strategy_comparisons import distillation_table, strategy_table
from mecl_utils.statistics import interval_text


def _interval(differences: list[float]) -> str:
    """The 95 % t interval of the mean of ``differences``, by hand, as the readings print it."""
    n, mean = len(differences), sum(differences) / len(differences)
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return interval_text(mean - half, mean + half)


def _strategies(sdn_exit1_curriculum: tuple[float, ...] = (0.21, 0.24, 0.225), repetitions: int = 3):
    """Plain and SDN networks, up to three repetitions: (exit1, final) test accuracies per strategy/method."""
    runs = {
        ("plain", "vanilla"): ((0.1, 0.1, 0.1), (0.50, 0.52, 0.51)),
        ("plain", "curriculum"): ((0.1, 0.1, 0.1), (0.51, 0.51, 0.53)),  # final: +1, -1, +2 points
        ("end_to_end_sdn", "vanilla"): ((0.20, 0.22, 0.21), (0.48, 0.50, 0.50)),  # final vs plain: -2, -2, -1
        ("end_to_end_sdn", "curriculum"): (sdn_exit1_curriculum, (0.47, 0.49, 0.52)),  # final: -1, -1, +2
    }
    rows = pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition,
         "test_accuracy_exit1": exit1, "test_accuracy_final": final}
        for (strategy, method), values in runs.items()
        for repetition, (exit1, final) in enumerate(zip(*values, strict=True))
    ])  # fmt: skip
    return strategy_table(rows[rows["repetition"] < repetitions])


def test_a_strategy_difference_that_does_not_pass_reads_not_distinguishable_with_its_interval():
    plain = strategy_tables.strategy_reading(_strategies(), alpha=0.05).split("\n\n")[0]
    assert plain.startswith(
        "**plain**, curriculum minus vanilla. At final: +0.67 points, not distinguishable with 3 repetitions "
        "(Holm-corrected p = "
    )
    assert plain.endswith(f"the interval is {_interval([1, -1, 2])}.")
    assert "within noise" not in plain


def test_the_plain_networks_untrained_branches_are_not_compared():
    plain = strategy_tables.strategy_reading(_strategies(), alpha=0.05).split("\n\n")[0]
    assert "exit1" not in plain


def test_a_strategy_test_is_read_after_holms_correction_across_the_table():
    # SDN exit1: +1, +2, +1.5 points, p about 0.035 alone; three tests in the table
    assert stats.ttest_1samp([1, 2, 1.5], 0).pvalue < 0.05
    reading = strategy_tables.strategy_reading(_strategies(), alpha=0.05)
    assert (
        "At exit1: +1.50 points, not distinguishable with 3 repetitions (Holm-corrected p = 0.10" in reading
    )
    assert "Holm-corrected across the 3 exits compared in this table" in reading
    assert "by chance alone" not in reading


def test_a_strategy_test_that_survives_the_correction_is_distinguishable_with_its_interval():
    reading = strategy_tables.strategy_reading(
        _strategies((0.22, 0.241, 0.229)), alpha=0.05
    )  # +2, +2.1, +1.9
    assert "At exit1: +2.00 points, distinguishable from noise at the 0.05 level (Holm-corrected p" in reading
    assert f"95 % interval {_interval([2, 2.1, 1.9])})" in reading


def test_the_final_exit_against_the_plain_networks_carries_its_interval():
    sdn = strategy_tables.strategy_reading(_strategies(), alpha=0.05).split("\n\n")[1]
    assert (
        "Its final exit minus the plain network's, with vanilla training: -1.67 points, not distinguishable"
        in sdn
    )
    assert _interval([-2, -2, -1]) in sdn


def _distilled(curriculum_shift: tuple[float, ...] = (0.0, 0.0)) -> pd.DataFrame:
    """One case per shift, three repetitions: distilled curriculum minus distilled vanilla +1, +3, +2 points
    (plus the shift, in points, at the first repetition); distillation moves vanilla by -2, +1, -2."""
    first = ("distillation", "curriculum", 0)
    accuracies = {
        ("repetition", "vanilla"): (0.60, 0.61, 0.62),
        ("repetition", "curriculum"): (0.61, 0.60, 0.64),  # +1, -1, +2
        ("distillation", "vanilla"): (0.58, 0.62, 0.60),
        ("distillation", "curriculum"): (0.59, 0.65, 0.62),
    }
    rows = [
        {"stage": stage, "method": method, "backbone": "mobilenet", "dataset": "cifar10", "branch": branch,
         "repetition": repetition, "accuracy": accuracy + (shift / 100 if (stage, method, repetition) == first
                                                           else 0.0)}
        for branch, shift in enumerate(curriculum_shift, start=1)
        for (stage, method), values in accuracies.items()
        for repetition, accuracy in enumerate(values)
    ]  # fmt: skip
    return distillation_table(pd.DataFrame(rows))


def test_each_distillation_difference_reads_with_its_interval():
    case = distillation_tables.distillation_reading(_distilled((0.0,)), alpha=0.05).split("\n\n")[0]
    assert case.startswith(
        "**mobilenet / cifar10 / branch 1**: distilled minus plain vanilla branches, -1.00 points, not "
        "distinguishable with 3 repetitions (Holm-corrected p = "
    )
    for differences in ([-2, 1, -2], [1, 3, 2], [1, -1, 2]):
        assert f"the interval is {_interval(differences)}" in case
    assert "within noise" not in case


def test_the_distillation_reading_names_its_families():
    reading = distillation_tables.distillation_reading(_distilled(), alpha=0.05)
    assert "Distillation's p-values are Holm-corrected across the table's 2 cases" in reading


def test_a_passing_distillation_test_comes_with_what_chance_alone_would_give():
    # Differences 2, 3, 2: p < 0.05.
    reading = distillation_tables.distillation_reading(_distilled((1.0, 0.0)), alpha=0.05)
    assert (
        "Curriculum minus vanilla among distilled branches, +2.33 points, distinguishable from noise"
        in reading
    )
    # two cases, each with two uncorrected curriculum tests (distilled and plain)
    assert "1 of these 4 tests falls below 0.05" in reading and "about 0.2 times by chance" in reading


def test_no_distillation_caveat_where_nothing_passes():
    reading = distillation_tables.distillation_reading(_distilled(), alpha=0.05)
    assert "by chance alone" not in reading


def test_the_distillation_question_gives_every_cases_interval_and_what_remains_possible():
    first = open_questions.open_questions_reading(_distilled(), _strategies(), alpha=0.05).split("\n\n")[0]
    assert "In 2 of 2 cases" in first and "in 0 the gain is distinguishable from noise" in first
    assert f"mobilenet / cifar10 / branch 1 {_interval([1, 3, 2]).replace('[', '+2.00 [')}" in first
    assert "These runs do not show that it does: their intervals together span" in first


def test_the_strategy_question_weighs_its_tests_after_holm_and_gives_the_trade_offs_interval():
    second = open_questions.open_questions_reading(_distilled(), _strategies(), alpha=0.05).split("\n\n")[1]
    assert "Of the 3 comparisons" in second and "0 are distinguishable from noise" in second
    assert (
        "These runs show neither a gain nor a loss from curriculum: their intervals together span" in second
    )
    assert f"end to end, SDN {_interval([-2, -2, -1]).replace('[', '-1.67 [')}" in second
    assert "none is distinguishable from noise at the 0.05 level" in second


def test_a_single_test_is_not_counted_as_one_of_one():
    caveat = statistics.chance_caveat(1, 1, 0.05)
    assert "of these 1" not in caveat and "probability 0.05" in caveat


def test_the_distillation_table_shows_each_difference_with_its_interval():
    row = distillation_tables.format_distillation_table(_distilled()).iloc[0]
    interval = _interval([1, 3, 2]).removesuffix(" points")
    p = stats.ttest_1samp([1, 3, 2], 0).pvalue
    assert row["curriculum, distilled"] == f"+2.00 {interval}, p {p:.3f}"
    assert row["distillation, vanilla"].startswith(
        f"-1.00 {_interval([-2, 1, -2]).removesuffix(' points')}, Holm p"
    )


def test_the_strategy_table_shows_curriculums_difference_beside_its_accuracy():
    row = strategy_tables.format_strategy_table(_strategies()).iloc[3]  # end to end, SDN, curriculum
    assert row["exit1"].startswith(
        f"22.50 ± 1.50 (+1.50 {_interval([1, 2, 1.5]).removesuffix(' points')}, Holm p"
    )
    assert row["final vs plain"].startswith(
        f"-2.33 {_interval([-4, -2, -1]).removesuffix(' points')}, Holm p"
    )


def test_the_strategy_question_reads_no_test_with_too_few_repetitions():
    second = open_questions.open_questions_reading(_distilled(), _strategies(repetitions=2), alpha=0.05)
    second = second.split("\n\n")[1]
    assert "none is read: with 2 repetitions a paired test cannot be (at least 3 are needed)" in second
    assert "With 2 repetitions no test of it is read, so these runs neither show the trade-off" in second


def test_the_distillation_table_for_a_page_puts_each_std_under_its_mean_and_shows_no_index():
    table = _distilled((0.01, 0.2)).assign(
        **{f"{group} std": 0.5 for group in distillation_tables.DISTILLATION_GROUPS}
    )
    page = distillation_tables.style_distillation_table(table).to_html()
    assert "60.00<br><small>±&nbsp;0.50</small>" in page
    assert "mobilenet<br><small>cifar10&nbsp;·&nbsp;branch&nbsp;2<br>3&nbsp;repetitions</small>" in page
    assert 'class="row_heading' not in page  # no 0, 1 in front of the rows


def test_the_strategy_table_for_a_page_keeps_every_cell_whole_with_its_test_under_the_mean():
    cell = strategy_tables.format_strategy_table(_strategies()).iloc[3]["exit1"]  # end to end, SDN
    mean, comparison = cell.split(" (", 1)
    html = strategy_tables.style_strategy_table(_strategies()).to_html()
    assert f"{mean}<br><small>{comparison.removesuffix(')')}</small>" in html


def test_the_readings_use_the_books_one_significance_level_by_default():
    assert strategy_tables.strategy_reading(_strategies()) == strategy_tables.strategy_reading(
        _strategies(), statistics.ALPHA
    )

"""The book's pages: shapes of figures (report.figures, report.figure_data), text of Table IV and of its
reading (report.table_iv, report.cells, report.readings), and notes on where numbers come from
(report.provenance)."""

import itertools
import json
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mecl_utils.protocol.profiles import PROFILES, get_profile
from mecl_utils.report import cells, figure_data, figures, provenance, readings
from mecl_utils.report.table_iv import (
    closest_paper_rows,
    format_table_iv,
    paper_table_iv,
    style_table_iv,
    table_iv,
)
from mecl_utils.statistics import interval_text

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _repetition_rows(n_reps=3, cases=((1,), (2,))):
    rng = np.random.default_rng(0)
    rows = []
    for (branch,) in cases:
        for repetition in range(n_reps):
            for offset, method in enumerate(("vanilla", "curriculum", "anti", "random")):
                rows.append(
                    {
                        "stage": "repetition",
                        "backbone": "tiny_cnn",
                        "dataset": "digits",
                        "branch": branch,
                        "method": method,
                        "repetition": repetition,
                        "accuracy": 0.8 + 0.01 * offset + 0.001 * rng.random(),
                        "optimizer": "adam",
                        "learning_rate": 1e-3,
                        "teacher": "self" if method in ("curriculum", "anti") else "",
                        "pacing": "" if method == "vanilla" else "FEP(100)",
                        "val_accuracy": json.dumps([0.5, 0.7, 0.8]),
                        "seconds": 2.0,
                        "networks_seconds": 3.0 if branch == 1 else 0.1,
                    }
                )
    return pd.DataFrame(rows)


def test_mean_std_and_p_text():
    assert cells.mean_std(71.714, 0.4712) == "71.71 ± 0.47"
    assert cells.mean_std(71.714, np.nan) == "71.71"
    assert cells.p_text(0.0321) == "0.032"
    assert cells.p_text(1e-5) == "<0.001"
    assert cells.p_text(np.nan) == "–"


def test_format_table_iv_on_the_paper_table():
    text = format_table_iv(paper_table_iv(), bold="**")
    first = text.iloc[0]
    assert first["Vanilla"] == "71.71 ± 0.47"
    assert first["Anti"] == "**71.75 ± 0.75**"  # the best method of DenseNet/CIFAR-10/branch 1
    assert first["LR"] == "0.0001" and first["Pacing"] == "FEP(100)"
    assert len(text) == 16


def test_format_and_style_our_table_with_p_values():
    table = table_iv(_repetition_rows())
    text = format_table_iv(table)
    assert {"Curriculum p", "Anti p (Holm)", "Random p (Holm)"} <= set(text.columns)
    html = style_table_iv(table).to_html()
    assert "font-weight: bold" in html
    assert "<0.001" not in html  # a p-value must not read as the start of an HTML tag


def test_format_table_iv_gives_each_difference_with_its_interval():
    row = table_iv(_repetition_rows()).iloc[0]
    text = format_table_iv(row.to_frame().T).iloc[0]
    low, high = row["Anti low"], row["Anti high"]
    assert text["Anti Δ"] == f"{row['Anti difference']:+.2f} [{low:+.2f}, {high:+.2f}]"


def test_styled_table_iv_says_which_p_values_are_holm_corrected():
    html = style_table_iv(table_iv(_repetition_rows())).to_html()
    assert "Holm-corrected" in html and "<small>p (Holm) " in html and "<small>Δ " in html
    assert "Holm" not in style_table_iv(paper_table_iv()).to_html()  # the paper has no tests


def _noisy_rows():
    """Curriculum ahead of vanilla on average but not consistently; random far ahead in every repetition."""
    rows = _repetition_rows(cases=((1,),))
    shifts = {
        "curriculum": [0.02, -0.015, 0.01],
        "anti": [0.0, 0.002, -0.001],
        "random": [0.05, 0.051, 0.049],
    }
    vanilla = rows.loc[rows["method"] == "vanilla", "accuracy"].to_numpy()
    for method, shift in shifts.items():
        rows.loc[rows["method"] == method, "accuracy"] = vanilla + np.array(shift)
    return rows


def test_case_verdict_reads_curriculum_first_whatever_the_best_mean():
    row = table_iv(_noisy_rows()).iloc[0]
    verdict = readings.case_verdict(row)
    assert verdict["best"] == "Random"  # the best mean, for display only
    methods = [(c["method"], c["role"]) for c in verdict["comparisons"]]
    assert methods == [("Curriculum", "primary"), ("Anti", "secondary"), ("Random", "secondary")]
    primary = verdict["comparisons"][0]
    assert not primary["passes"] and primary["p"] == row["Curriculum p"]
    assert (primary["low"], primary["high"]) == (row["Curriculum low"], row["Curriculum high"])


def test_case_verdict_reads_the_p_value_at_the_given_level():
    row = table_iv(_repetition_rows()).iloc[0]
    p = readings.case_verdict(row)["comparisons"][0]["p"]
    assert not readings.case_verdict(row, alpha=p / 2)["comparisons"][0]["passes"]
    assert readings.case_verdict(row, alpha=min(1.0, p * 2))["comparisons"][0]["passes"]


def test_case_verdict_does_not_trust_two_repetitions():
    row = table_iv(_repetition_rows(n_reps=2)).iloc[0]
    verdict = readings.case_verdict(row)
    assert not any(comparison["passes"] for comparison in verdict["comparisons"])


@pytest.mark.parametrize("profile", ["smoke", "book", "paper"])
def test_profile_note_names_the_profile_and_reason(profile):
    note = provenance.profile_note(profile, "no CIFAR-10 copy found", data_source="/data/x")
    assert note.startswith(":::{note}") and note.rstrip().endswith(":::")
    assert f"**{profile}**" in note
    assert "no CIFAR-10 copy found" in note and "/data/x" in note
    if profile == "smoke":
        assert "not CIFAR-10" in note and "make book PROFILE=book" in note


def test_profile_note_without_reason_has_no_reason_line():
    assert "Why this profile" not in provenance.profile_note("smoke")


def test_image_grid_has_one_axis_per_cell():
    images = np.zeros((10, 8, 8, 1), dtype=np.uint8)
    fig = figures.image_grid(images, list(range(10)), ncols=4)
    assert len(fig.axes) == 12
    assert [ax.get_title() for ax in fig.axes[:3]] == ["0", "1", "2"]


def test_easy_hard_grid_orders_by_loss():
    images = np.zeros((20, 4, 4, 3), dtype=np.uint8)
    losses = np.arange(20)[::-1] / 10  # sample 19 is the easiest
    picks = figure_data.easiest_and_hardest(losses, 5)
    fig = figures.easy_hard_grid(images[picks], (np.arange(20) % 10)[picks], losses[picks])
    assert len(fig.axes) == 10
    assert fig.axes[0].get_title().startswith("9")  # label of sample 19
    assert fig.axes[5].get_title().startswith("0")  # sample 0, the hardest


def test_loss_histograms_one_axis_per_teacher():
    losses = {"self": np.random.default_rng(0).exponential(size=100), "tiny_cnn": np.zeros(100)}
    fig = figures.loss_histograms(figure_data.loss_histogram_bins(losses))
    assert len(fig.axes) == 2


def test_loss_histogram_bins_raise_losses_to_the_floor_and_span_floor_to_the_largest():
    # A new function (the computation moved out of figures.loss_histograms): expectations by hand.
    ((values, edges, median),) = figure_data.loss_histogram_bins(
        {"self": [0.0, 0.01, 100.0]}, bins=4
    ).values()
    assert values.tolist() == [1e-6, 0.01, 100.0]
    assert edges == pytest.approx([1e-6, 1e-4, 1e-2, 1.0, 100.0])  # 4 bins, 2 decades each
    assert median == 0.01


def test_loss_histogram_bins_span_ten_times_the_floor_when_every_loss_is_below_it():
    ((values, edges, median),) = figure_data.loss_histogram_bins({"self": [0.0, 0.0]}, bins=2).values()
    assert values.tolist() == [1e-6, 1e-6] and median == 1e-6
    assert edges == pytest.approx([1e-6, 10**-5.5, 1e-5])


def test_learning_curves_one_line_per_run():
    rows = _repetition_rows()
    rows = rows[(rows["branch"] == 1) & (rows["repetition"] == 0)]
    curves = figure_data.epoch_curves(rows, "val_accuracy")
    fig = figures.learning_curves(curves, figure_data.curve_label("val_accuracy"))
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 4
    assert list(ax.get_lines()[0].get_ydata()) == [50, 70, 80]


def test_epoch_curves_decode_the_stored_json_and_put_accuracies_in_percent():
    # A new function (the computation moved out of figures.learning_curves): expectations by hand.
    rows = pd.DataFrame(
        {
            "method": ["vanilla", "anti"],
            "val_accuracy": ["[0.25, 0.5]", "[0.75]"],
            "train_loss": ["[2.5, 1.5]", "[0.5]"],
        }
    )
    accuracy = figure_data.epoch_curves(rows, "val_accuracy")
    assert [(name, values.tolist()) for name, values in accuracy] == [("vanilla", [25, 50]), ("anti", [75])]
    loss = figure_data.epoch_curves(rows, "train_loss")
    assert [(name, values.tolist()) for name, values in loss] == [("vanilla", [2.5, 1.5]), ("anti", [0.5])]


def test_curve_label_names_the_split_and_the_percent():
    assert figure_data.curve_label("val_accuracy") == "validation accuracy (%)"
    assert figure_data.curve_label("train_loss") == "training loss"


def test_paired_repetitions_one_axis_per_case_one_line_per_repetition():
    accuracies = figure_data.repetition_accuracies(_repetition_rows(n_reps=3))
    fig = figures.paired_repetitions(accuracies, figure_data.repetition_means(accuracies))
    assert len(fig.axes) == 2
    assert all(len(ax.get_lines()) == 3 for ax in fig.axes)


def test_repetition_means_average_each_methods_repetitions():
    # A new function (the mean moved out of figures.paired_repetitions): expectations by hand.
    table = pd.DataFrame({"vanilla": [80.0, 84.0], "curriculum": [81.0, 86.0]}, index=[0, 1])
    means = figure_data.repetition_means({("tiny_cnn", "digits", 1): table})
    assert means[("tiny_cnn", "digits", 1)].to_dict() == {"vanilla": 82.0, "curriculum": 83.5}


def test_paired_repetitions_title_an_integer_branch_when_the_store_also_holds_whole_networks():
    # Whole-network rows have no branch, so the store reads the branch column as floats (1.0).
    rows = _repetition_rows(n_reps=2, cases=((1,),)).astype({"branch": float})
    accuracies = figure_data.repetition_accuracies(rows)
    fig = figures.paired_repetitions(accuracies, figure_data.repetition_means(accuracies))
    assert fig.axes[0].get_title() == "tiny_cnn / digits / branch 1"


def test_paired_repetitions_long_method_labels_do_not_overlap():
    # The strategies chapter's four groups: side by side on one line, their names ran into each other.
    groups = ("plain vanilla", "plain curriculum", "distilled vanilla", "distilled curriculum")
    rows = _repetition_rows(n_reps=2)
    rows["method"] = rows["method"].map(
        dict(zip(("vanilla", "curriculum", "anti", "random"), groups, strict=True))
    )
    accuracies = figure_data.repetition_accuracies(rows, methods=groups)
    fig = figures.paired_repetitions(accuracies, figure_data.repetition_means(accuracies))
    fig.canvas.draw()
    for ax in fig.axes:
        boxes = [label.get_window_extent() for label in ax.get_xticklabels()]
        assert len(boxes) == 4
        assert not any(one.overlaps(other) for one, other in itertools.combinations(boxes, 2))


def test_timing_summary_sums_stages_and_takes_the_cold_preparation():
    rows = _repetition_rows(n_reps=2)
    summary = provenance.timing_summary(rows)
    assert summary.loc["repetition", "count"] == 16
    assert summary.loc["repetition", "seconds"] == pytest.approx(32.0)
    assert summary.loc["networks", "seconds"] == pytest.approx(3.1)  # max per case, summed
    assert summary.loc["vanilla_search", "count"] == 0
    assert summary.loc["total", "seconds"] == pytest.approx(35.1)


def test_profile_table_has_one_column_per_profile_and_counts_runs():
    table = provenance.profile_table(PROFILES)
    assert list(table.columns) == ["smoke", "book", "paper"]
    assert table.loc["training images", "smoke"] == "all"
    assert table.loc["branch runs in all", "smoke"] == 16 * 2  # 16 runs per case, 2 cases


def test_paper_accuracy_reads_table_i_in_percent():
    assert provenance.paper_accuracy("mobilenet", "cifar10") == pytest.approx(94.28)
    assert provenance.paper_accuracy("mobilenet", "cifar100") == pytest.approx(76.91)


def test_paper_accuracy_is_nan_for_a_network_not_in_the_paper():
    assert np.isnan(provenance.paper_accuracy("tiny_cnn"))


def test_search_heatmap_stars_only_the_best_setting():
    runs = pd.DataFrame(
        {
            "optimizer": ["sgd", "sgd", "adam", "adam"],
            "learning_rate": [0.1, 0.01, 0.1, 0.01],
            "accuracy": [0.5, 0.625, 0.875, 0.25],
        }
    )
    grid = figure_data.search_grid(runs, "optimizer", "learning_rate")
    fig = figures.search_heatmap(grid, figure_data.best_cell(grid))
    texts = sorted(text.get_text() for text in fig.axes[0].texts)
    assert texts == ["25.0", "50.0", "62.5", "87.5 ★"]


def test_best_cell_names_the_setting_with_the_highest_accuracy():
    # A new function (the search moved out of figures.search_heatmap): expectations by hand.
    grid = pd.DataFrame([[50.0, 62.5], [87.5, np.nan]], index=["sgd", "adam"], columns=[0.01, 0.1])
    assert figure_data.best_cell(grid) == ("adam", 0.01)


def test_verdict_sentence_reads_a_consistent_gain_as_distinguishable_with_its_interval():
    row = table_iv(_repetition_rows()).iloc[0]
    sentence = readings.verdict_sentence(row)
    assert sentence.startswith(
        "**tiny_cnn / digits / branch 1**: Curriculum (primary) minus vanilla is +1.00 points: "
        "distinguishable from noise at the 0.05 level (p < 0.001; 95 % interval "
        f"{interval_text(row['Curriculum low'], row['Curriculum high'])})."
    )


def test_verdict_sentence_words_a_non_significant_primary_with_its_interval_not_as_no_effect():
    row = table_iv(_noisy_rows()).iloc[0]
    sentence = readings.verdict_sentence(row)
    primary = sentence.split(". ")[0]
    assert "Curriculum (primary)" in primary and "not distinguishable with 3 repetitions" in primary
    assert f"the interval is {interval_text(row['Curriculum low'], row['Curriculum high'])}" in primary
    assert "within noise" not in sentence and "no effect" not in sentence


def test_verdict_sentence_marks_the_secondary_p_values_holm_corrected():
    sentence = readings.verdict_sentence(table_iv(_noisy_rows()).iloc[0])
    random = sentence[sentence.index("Random curriculum (secondary)") :]
    assert "distinguishable from noise at the 0.05 level (Holm-corrected p" in random


def test_verdict_sentence_with_two_repetitions_still_gives_the_interval():
    row = table_iv(_repetition_rows(n_reps=2)).iloc[0]
    sentence = readings.verdict_sentence(row)
    interval = interval_text(row["Curriculum low"], row["Curriculum high"])
    assert (
        f"with 2 repetitions a paired test cannot be read (at least 3 are needed); the interval is {interval}"
        in sentence
    )


def test_verdict_sentence_when_vanilla_is_best_still_reads_curriculum_first():
    rows = _repetition_rows()
    rows.loc[rows["method"] == "vanilla", "accuracy"] += 0.1
    sentence = readings.verdict_sentence(table_iv(rows).iloc[0])
    assert sentence.startswith("**tiny_cnn / digits / branch 1**: Curriculum (primary) minus vanilla is -")


def test_closest_paper_rows_falls_back_to_mobilenet_on_cifar10():
    paper = paper_table_iv()
    rows, why = closest_paper_rows(paper, paper.iloc[:0])  # no case the paper has
    assert set(rows["backbone"]) == {"mobilenet"} and set(rows["dataset"]) == {"cifar10"}
    assert len(rows) == 2 and "closest" in why


def test_closest_paper_rows_are_our_cases_when_the_paper_has_them():
    paper = paper_table_iv()
    rows, why = closest_paper_rows(paper, paper.iloc[[5]])
    assert rows[["backbone", "dataset", "branch"]].values.tolist() == [
        paper.iloc[5][["backbone", "dataset", "branch"]].tolist()
    ]
    assert "same" in why


def test_styled_table_iv_folds_p_values_and_choices_into_cells():
    html = style_table_iv(table_iv(_repetition_rows())).to_html()
    assert "Choices" in html and "Opt" not in html and "Curriculum p" not in html
    assert "<small>p " in html


def test_machine_table_names_this_machine():
    table = provenance.machine_table("results.csv")
    assert table.loc["CPU cores visible", "value"] == os.cpu_count()
    assert table.loc["results file", "value"] == "results.csv"


def test_styled_table_iv_puts_each_interval_on_a_line_of_its_own():
    html = style_table_iv(table_iv(_repetition_rows())).to_html()
    assert "<small>Δ +" in html and "<br>[" in html and " [" not in html.split("Δ", 1)[1].split("</small>")[0]


def test_a_search_grid_names_its_axes_after_the_settings_the_heatmap_labels():
    runs = pd.DataFrame({"optimizer": ["sgd", "adam"], "learning_rate": [0.1, 0.1], "accuracy": [0.5, 0.75]})
    grid = figure_data.search_grid(runs, "optimizer", "learning_rate")
    ax = figures.search_heatmap(grid, figure_data.best_cell(grid)).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("learning_rate", "optimizer")


def test_exit_shares_are_percent_of_each_methods_samples():
    counts = pd.DataFrame({"branch 1": [1, 3], "final": [3, 1]}, index=["vanilla", "curriculum"])
    shares = figure_data.exit_shares(counts)
    assert shares.loc["vanilla"].tolist() == [25.0, 75.0] and shares.loc["curriculum", "branch 1"] == 75.0


def test_cost_bands_give_the_mean_and_range_over_repetitions_at_each_cost():
    on_grid = pd.DataFrame(
        {"method": "vanilla", "repetition": [0, 1, 0, 1], "cost": [0.5, 0.5, 1.0, 1.0],
         "accuracy": [0.6, 0.8, 0.9, 0.9]}
    )  # fmt: skip
    band = figure_data.cost_bands(on_grid).loc["vanilla"]
    assert band.loc[0.5].tolist() == pytest.approx([0.7, 0.6, 0.8]) and band.loc[1.0, "max"] == 0.9


def test_accuracy_cost_curves_draw_one_line_per_method_in_percent():
    on_grid = pd.DataFrame({"method": ["vanilla", "vanilla"], "repetition": 0, "cost": [0.5, 1.0],
                            "accuracy": [0.6, 0.9]})  # fmt: skip
    points = pd.DataFrame({"method": ["vanilla"], "cost": [1.0], "accuracy": [0.9]})
    ax = figures.accuracy_cost_curves(figure_data.cost_bands(on_grid), points, (0.9, 0.85))
    (line,) = ax.get_lines()
    assert line.get_ydata().tolist() == pytest.approx([60.0, 90.0])


def test_the_easiest_come_first_then_the_hardest_and_equal_losses_keep_their_order():
    picks = figure_data.easiest_and_hardest([0.3, 0.1, 0.2, 0.1], 2)
    assert picks.tolist() == [1, 3, 0, 2]


def _network_rows():
    return pd.DataFrame(
        {
            "strategy": ["layer_wise", "layer_wise", "plain", "layer_wise"],
            "method": ["vanilla", "curriculum", "vanilla", "vanilla"],
            "test_accuracy_final": [0.5, 0.75, 0.625, 0.25],
            "test_accuracy_branch_1": [0.125, 0.25, 0.0, 0.375],
        }
    )


def test_strategy_exit_points_one_row_per_run_and_exit_in_percent_final_exit_last():
    # A new function (the computation moved out of strategy_tables.strategy_exit_accuracies): by hand.
    points = figure_data.strategy_exit_points(_network_rows())
    assert list(dict.fromkeys(points["exit"])) == ["branch_1", "final"]
    assert list(dict.fromkeys(points["strategy"])) == ["layer_wise", "plain"]
    final = points[points["exit"] == "final"]
    assert final["accuracy"].tolist() == [50.0, 75.0, 62.5, 25.0]


def test_strategy_exit_means_average_each_strategy_method_and_exit():
    # A new function (the mean moved out of strategy_tables.strategy_exit_accuracies): by hand.
    means = figure_data.strategy_exit_means(figure_data.strategy_exit_points(_network_rows()))
    assert means[("layer_wise", "vanilla", "final")] == 37.5
    assert means[("layer_wise", "vanilla", "branch_1")] == 25.0
    assert means[("plain", "vanilla", "final")] == 62.5


def test_strategy_exit_accuracies_one_panel_per_strategy_a_dot_per_run():
    points = figure_data.strategy_exit_points(_network_rows())
    fig = figures.strategy_exit_accuracies(points, figure_data.strategy_exit_means(points))
    assert [ax.get_title() for ax in fig.axes] == ["layer-wise", "plain"]
    assert [label.get_text() for label in fig.axes[0].get_xticklabels()] == ["branch_1", "final"]


def test_profile_note_says_when_the_main_comparison_has_more_repetitions():
    note = provenance.profile_note(get_profile("book", repetitions=3, main_repetitions=11))
    assert "11 repetitions of vanilla and curriculum, 3 of anti- and random curriculum" in note


def test_condition_differences_one_panel_per_comparison_one_point_per_condition():
    from test_condition_tables import ROWS

    from mecl_utils.report import condition_tables

    fig = figures.condition_differences(condition_tables.condition_comparisons(ROWS))
    assert [ax.get_title() for ax in fig.axes] == ["curriculum − vanilla", "curriculum − random"]
    assert [tick.get_text() for tick in fig.axes[0].get_xticklabels()] == ["budget 0.25"]
    plt.close(fig)


def test_rank_correlations_are_one_on_the_diagonal_and_minus_one_for_a_reversed_order():
    table = figure_data.rank_correlations({"a": np.array([1.0, 2, 3]), "b": np.array([3.0, 2, 1])})
    assert table.loc["a", "a"] == pytest.approx(1.0) and table.loc["a", "b"] == pytest.approx(-1.0)


def test_difficulty_scores_draw_the_shares_and_the_easiest_and_hardest():
    images, labels = np.zeros((6, 8, 8, 1), dtype="uint8"), np.arange(6)
    depth = np.array([0, 0, 1, 2, 2, 2])
    picks = figure_data.easiest_and_hardest(depth, 2)
    bars, grid = figures.difficulty_scores(images, labels, depth, picks, "prediction_depth")
    assert [round(p.get_height(), 1) for p in bars.axes[0].patches] == [33.3, 16.7, 50.0]
    assert len([ax for ax in grid.axes if ax.images]) == 4
    assert bars.axes[0].get_xlabel() == "prediction_depth (0: settled at the first probe)"
    plt.close("all")

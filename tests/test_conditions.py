"""Tests for protocol.conditions: a shorter budget, noisy labels and less data, each a seeded rule."""

import numpy as np
import pytest

from mecl_utils.curriculum.pacing import TABLE_III, FixedExponential, Linear
from mecl_utils.protocol.conditions import (
    PAPER_CONDITION,
    Condition,
    condition_epochs,
    noisy_losses,
    parse_condition,
    scaled_pacing,
    train_labels,
    train_rows,
)

LABELS = np.repeat(np.arange(4), 50)  # 200 samples, 50 per class


def test_the_paper_condition_adds_nothing_to_a_run_identity():
    assert Condition().identity() == {} and Condition().is_paper and Condition().label == "paper"


def test_another_condition_puts_every_setting_in_the_identity():
    assert Condition(budget=0.25).identity() == {
        "condition": {"budget": 0.25, "label_noise": 0.0, "train_fraction": 1.0}
    }


def test_a_condition_is_labelled_by_what_differs_from_the_paper():
    assert Condition(budget=0.25, label_noise=0.2).label == "budget 0.25, label_noise 0.2"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"budget": 0}, r"budget must be a fraction in \(0, 1\]"),
        ({"budget": 1.5}, r"budget must be a fraction in \(0, 1\]"),
        ({"train_fraction": -0.1}, r"train_fraction must be a fraction in \(0, 1\]"),
        ({"label_noise": 1.0}, r"label_noise must be a fraction in \[0, 1\)"),
        ({"label_noise": "0.2"}, r"label_noise must be a fraction"),
        ({"budget": True}, r"budget must be a fraction"),
    ],
)
def test_impossible_conditions_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        Condition(**settings)


def test_a_condition_is_read_from_the_command_line_form():
    assert parse_condition("budget=0.25, label_noise=0.2") == Condition(budget=0.25, label_noise=0.2)
    assert parse_condition("paper") is PAPER_CONDITION
    label = Condition(budget=0.25, label_noise=0.2).label
    assert parse_condition(label) == Condition(budget=0.25, label_noise=0.2)  # a label reads back


@pytest.mark.parametrize(
    ("text", "message"),
    [("noise=0.2", "NAME one of budget, label_noise, train_fraction"), ("budget=a", "must be a number")],
)
def test_a_condition_that_cannot_be_read_names_the_fix(text, message):
    with pytest.raises(ValueError, match=message):
        parse_condition(text)


def test_the_budget_is_a_rounded_share_of_the_epochs_and_never_zero():
    assert condition_epochs(7, Condition(budget=0.25)) == 2
    assert condition_epochs(7, Condition(budget=0.01)) == 1
    assert condition_epochs(7, PAPER_CONDITION) == 7


def test_scaling_a_pacing_scales_only_its_lengths_in_batches():
    assert scaled_pacing(TABLE_III["FEP(300)"], 0.25) == FixedExponential(s=0.04, r=1.9, delta=75)
    assert scaled_pacing(Linear(lambda0=0.1, t_full=400), 0.5) == Linear(lambda0=0.1, t_full=200)


def test_the_training_subset_is_stratified_sorted_and_seeded():
    rows = train_rows(LABELS, Condition(train_fraction=0.2), seed=0, dataset="toy")
    assert np.bincount(LABELS[rows]).tolist() == [10, 10, 10, 10]
    assert np.all(np.diff(rows) > 0)
    again = train_rows(LABELS, Condition(train_fraction=0.2), seed=0, dataset="toy")
    other = train_rows(LABELS, Condition(train_fraction=0.2), seed=1, dataset="toy")
    assert np.array_equal(rows, again) and not np.array_equal(rows, other)


def test_the_paper_condition_trains_on_every_row_with_clean_labels():
    assert np.array_equal(train_rows(LABELS, PAPER_CONDITION, seed=0, dataset="toy"), np.arange(200))
    assert np.array_equal(train_labels(LABELS, PAPER_CONDITION, 4, seed=0, dataset="toy"), LABELS)


def test_label_noise_flips_exactly_the_stated_fraction_to_other_classes():
    noisy = train_labels(LABELS, Condition(label_noise=0.2), 4, seed=0, dataset="toy")
    assert int((noisy != LABELS).sum()) == 40
    assert set(np.unique(noisy)) <= {0, 1, 2, 3}


def test_teacher_losses_follow_the_noisy_label():
    logits = np.log(np.array([[0.9, 0.1], [0.9, 0.1]]))
    np.testing.assert_allclose(noisy_losses(logits, np.array([0, 1])), [-np.log(0.9), -np.log(0.1)])


def test_the_chapter_reads_its_conditions_and_scores_into_the_profile():
    from mecl_utils.book.chapter import condition_settings
    from mecl_utils.protocol.profiles import get_profile

    settings = condition_settings(get_profile("book"), "paper; budget 0.25", "prediction_depth")
    assert [c.label for c in settings.conditions] == ["paper", "budget 0.25"]
    assert settings.teachers == ("self", "tiny_cnn") and settings.scores == ("prediction_depth",)
    with pytest.raises(ValueError, match="unknown difficulty score"):
        condition_settings(get_profile("book"), "paper", "depth")

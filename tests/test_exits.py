"""Exit policies on synthetic softmax outputs: where samples leave and what it costs."""

import numpy as np
import pytest

from mecl_utils.exits import policies

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 4, 200)
# Three exits, each more often right and more confident than the one before.
PROBABILITIES = []
for sharpness in (1.0, 2.0, 4.0):
    logits = RNG.standard_normal((200, 4))
    logits[np.arange(200), LABELS] += sharpness
    PROBABILITIES.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
COSTS = [10.0, 25.0, 60.0]


def test_confidence_threshold_zero_sends_everyone_out_first():
    assert (policies.confidence(PROBABILITIES, 0.0) == 0).all()


def test_confidence_threshold_above_one_sends_everyone_to_the_last_exit():
    assert (policies.confidence(PROBABILITIES, 1.01) == 2).all()


def test_mean_cost_grows_with_the_confidence_threshold():
    outcomes = policies.sweep(policies.confidence, PROBABILITIES, LABELS, COSTS, np.linspace(0, 1, 21))
    costs = [outcome.mean_cost for _, outcome in outcomes]
    assert costs == sorted(costs) and costs[0] == 10.0 and costs[-1] > costs[0]


def test_entropy_threshold_zero_keeps_uncertain_samples_to_the_end():
    assert (policies.entropy(PROBABILITIES, 0.0) == 2).all()
    assert (
        policies.entropy(PROBABILITIES, np.log(4) + 1e-9) == 0
    ).all()  # log(classes) is the largest entropy


def _predicting(*classes_per_exit):
    """One-hot outputs over three classes: ``classes_per_exit[e][i]`` is exit e's prediction for sample i."""
    return [np.eye(3)[list(classes)] for classes in classes_per_exit]


# Four samples through three exits; their predictions: [0, 0, 0], [0, 1, 1], [2, 1, 0] and [1, 1, 2].
THREE_EXITS = _predicting([0, 0, 2, 1], [0, 1, 1, 1], [0, 1, 0, 2])


def test_patience_one_leaves_once_the_prediction_repeats_at_the_next_exit():
    assert policies.patience(THREE_EXITS, 1).tolist() == [1, 2, 2, 1]  # sample 2 never repeats: the last


def test_patience_two_needs_three_agreeing_exits():
    assert policies.patience(THREE_EXITS, 2).tolist() == [2, 2, 2, 2]


def test_patience_counts_from_the_last_change_of_prediction():
    four_exits = _predicting([0, 0], [0, 0], [0, 1], [0, 1])  # sample 1: 0, 0, 1, 1: two in a row, then reset
    assert policies.patience(four_exits, 2).tolist() == [2, 3]
    assert policies.patience(four_exits, 1).tolist() == [1, 1]


def test_patience_never_sends_a_sample_out_at_the_first_exit():
    assert (policies.patience(PROBABILITIES, 1) >= 1).all()


@pytest.mark.parametrize("t", [0, 1.5, True, "2"])
def test_patience_must_be_a_whole_number_from_one(t):
    with pytest.raises(ValueError, match="patience t must be a whole number >= 1"):
        policies.patience(THREE_EXITS, t)


def test_patience_accepts_a_whole_float_as_a_table_stores_it():
    assert policies.patience(THREE_EXITS, 1.0).tolist() == [1, 2, 2, 1]


def test_deadline_takes_the_deepest_exit_that_fits():
    assert policies.deadline(COSTS, [5, 10, 24.9, 25, 1000]).tolist() == [0, 0, 0, 1, 2]


def test_oracle_is_the_earliest_correct_exit():
    probabilities = [np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]]), np.array([[0.1, 0.9]] * 3)]
    assert policies.oracle(probabilities, [0, 1, 1]).tolist() == [0, 1, 1]
    assert policies.oracle(probabilities, [0, 0, 1]).tolist() == [0, 0, 1]


def test_oracle_bounds_every_threshold_policy():
    best = policies.evaluate(PROBABILITIES, LABELS, COSTS, policies.oracle(PROBABILITIES, LABELS))
    for _, outcome in policies.sweep(
        policies.confidence, PROBABILITIES, LABELS, COSTS, np.linspace(0, 1, 11)
    ):
        assert outcome.accuracy <= best.accuracy


def test_evaluate_counts_exits_and_averages_costs():
    outcome = policies.evaluate(PROBABILITIES, LABELS, COSTS, np.r_[np.zeros(100, int), np.full(100, 2)])
    assert outcome.exit_counts == (100, 0, 100)
    assert outcome.mean_cost == pytest.approx(35.0)


def test_exit_path_costs_add_every_branch_evaluated_on_the_way():
    assert policies.exit_path_costs([4, 9, 20], [1, 2]).tolist() == [5, 12, 23]


def test_calibration_never_reads_the_test_split():
    with pytest.raises(ValueError, match="never on 'test'"):
        policies.calibrate(policies.confidence, "test", PROBABILITIES, LABELS, COSTS, 30.0, [0.5])


def test_calibration_meets_the_target_cost_on_its_split():
    threshold = policies.calibrate(
        policies.confidence, "hparam", PROBABILITIES, LABELS, COSTS, 30.0, np.linspace(0, 1, 51)
    )
    outcome = policies.evaluate(PROBABILITIES, LABELS, COSTS, policies.confidence(PROBABILITIES, threshold))
    assert outcome.mean_cost <= 30.0

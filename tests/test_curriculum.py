"""Teacher cross-entropy scores and the four orderings of Sec. III."""

import numpy as np
import pytest

from mecl_utils.curriculum.sorting import (
    balance_classes,
    cross_entropy,
    cross_entropy_from_logits,
    order,
    tie_fraction,
)

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.5, 0.0]])


def test_cross_entropy_is_minus_log_of_the_true_class():
    np.testing.assert_allclose(cross_entropy(PROBS, [0, 2, 1]), -np.log([0.7, 0.8, 0.5]))


def test_cross_entropy_accepts_one_hot_labels():
    one_hot = np.eye(3)[[0, 2, 1]]
    np.testing.assert_allclose(cross_entropy(PROBS, one_hot), cross_entropy(PROBS, [0, 2, 1]))


def test_cross_entropy_is_finite_when_the_true_class_has_probability_zero():
    loss = cross_entropy(PROBS, [0, 2, 2])
    assert np.isfinite(loss).all()
    assert loss[2] == pytest.approx(-np.log(1e-12))


def test_cross_entropy_rejects_logits():
    with pytest.raises(ValueError, match="pass softmax outputs, not logits"):
        cross_entropy(np.array([[-1.0, 2.0]]), [1])


def test_cross_entropy_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        cross_entropy(PROBS, [0, 1, 3])


def test_cross_entropy_from_logits_matches_the_softmax_formula():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(cross_entropy_from_logits(logits, [0, 2]), -np.log(softmax[[0, 1], [0, 2]]))


def test_confident_samples_keep_distinct_losses_from_logits():
    # float32 probabilities round both to exactly 1, so their losses would tie at 0
    logits = np.array([[30.0, 0.0], [40.0, 0.0]], dtype=np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert cross_entropy(probabilities, [0, 0]).tolist() == [0.0, 0.0]
    losses = cross_entropy_from_logits(logits, [0, 0])
    assert 0 < losses[1] < losses[0]


def test_tie_fraction_counts_samples_sharing_a_loss():
    assert tie_fraction([0.0, 0.0, 0.1, 0.2, 0.2, 0.3]) == pytest.approx(4 / 6)
    assert tie_fraction([0.1, 0.2]) == 0.0


LOSSES = np.array([0.5, 0.1, 0.9, 0.1, 0.3])


def test_curriculum_is_easy_to_hard():
    ordered = order("curriculum", LOSSES, seed=0).tolist()
    assert sorted(ordered[:2]) == [1, 3]  # the tied pair, in the tie-break's order
    assert ordered[2:] == [4, 0, 2]


def test_ties_are_broken_by_the_seed_not_by_the_index():
    firsts = {tuple(order("curriculum", LOSSES, seed=seed)[:2]) for seed in range(20)}
    assert firsts == {(1, 3), (3, 1)}


def test_anti_curriculum_is_exactly_curriculum_reversed():
    losses = np.array([0.0, 0.2, 0.0, 0.0, 0.7, 0.2, 0.9])  # ties in two places
    for seed in range(5):
        assert (
            order("anti", losses, seed=seed).tolist() == order("curriculum", losses, seed=seed)[::-1].tolist()
        )


def test_anti_curriculum_is_hard_to_easy():
    assert order("anti", LOSSES, seed=0).tolist()[:3] == [2, 0, 4]


def test_random_order_is_a_seeded_permutation():
    first = order("random", LOSSES, seed=3)
    assert sorted(first.tolist()) == [0, 1, 2, 3, 4]
    assert order("random", LOSSES, seed=3).tolist() == first.tolist()
    assert any(order("random", LOSSES, seed=s).tolist() != first.tolist() for s in range(4, 10))


def test_vanilla_order_is_the_identity():
    assert order("vanilla", LOSSES).tolist() == [0, 1, 2, 3, 4]


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="vanilla, curriculum, anti, random"):
        order("self-paced", LOSSES)


def test_nan_losses_are_rejected_for_sorting():
    with pytest.raises(ValueError, match="nan or inf"):
        order("curriculum", [0.1, np.nan])


def test_balance_interleaves_classes_in_difficulty_groups():
    # Ordered easy → hard: class 0 holds the four easiest samples.
    ordered = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert balance_classes(ordered, labels).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_balanced_prefix_holds_every_class():
    losses = np.arange(40, dtype=float)
    labels = np.repeat([0, 1, 2, 3], 10)  # class 3 is the hardest block
    ordered = order("curriculum", losses, labels=labels, balance=True)
    assert sorted(labels[ordered[:4]].tolist()) == [0, 1, 2, 3]
    assert sorted(ordered.tolist()) == list(range(40))


def test_balance_needs_labels():
    with pytest.raises(ValueError, match="needs the labels"):
        order("curriculum", LOSSES, balance=True)

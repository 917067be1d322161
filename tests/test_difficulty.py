"""Difficulty scores beyond a teacher's loss, on hand-built examples with known answers."""

import numpy as np
import pytest

from mecl_utils.curriculum import difficulty
from mecl_utils.curriculum.sorting import order

LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3])


def twins(pairs):
    """2-D points where each listed pair sits 0.2 apart and every pair 100 away from the others, so that a
    sample's one nearest other sample is its twin."""
    points = np.zeros((8, 2))
    for centre, (a, b) in enumerate(pairs):
        points[a] = (100.0 * centre, 0.1)
        points[b] = (100.0 * centre, -0.1)
    return points


# Layer by layer, whom each sample sits next to. The deepest layer pairs samples of one class; the middle
# one keeps classes 0 and 1 together but crosses 2 with 3; the shallowest keeps only class 0 together.
LAYERS = [
    twins([(0, 1), (2, 4), (3, 5), (6, 7)]),
    twins([(0, 1), (2, 3), (4, 6), (5, 7)]),
    twins([(0, 1), (2, 3), (4, 5), (6, 7)]),
]


def test_a_one_neighbour_probe_predicts_each_samples_twin():
    assert difficulty.knn_probe_predictions(LAYERS[1], LABELS, k=1).tolist() == [0, 0, 1, 1, 3, 3, 2, 2]


def test_prediction_depth_is_the_layer_from_which_every_probe_agrees_with_the_last():
    # Class 0 settles at layer 0, class 1 at layer 1 (layer 0 puts 2 with 4 and 3 with 5), classes 2 and 3
    # only at the last layer.
    depths = difficulty.prediction_depth(LAYERS, LABELS, k=1)
    assert depths.tolist() == [0, 0, 1, 1, 2, 2, 2, 2]


def test_prediction_depth_counts_past_the_last_layer_where_the_network_disagrees():
    network = LABELS.copy()
    network[0] = 3  # the network's own final prediction, wrong for sample 0
    assert difficulty.prediction_depth(LAYERS, LABELS, final=network, k=1)[0] == 3


def test_a_tied_vote_goes_to_the_nearest_tied_class():
    points = np.array([[0.0], [1.0], [-2.0], [5.0]])
    # Sample 0's two nearest others are 1 (class 1, distance 1) and 2 (class 2, distance 2): one vote each.
    assert difficulty.knn_probe_predictions(points, [0, 1, 2, 2], k=2)[0] == 1


def test_a_probe_needs_fewer_neighbours_than_samples():
    with pytest.raises(ValueError, match="k must be between 1 and"):
        difficulty.knn_probe_predictions(np.zeros((3, 2)), [0, 1, 0], k=3)


def test_exit_agreement_on_synthetic_exit_outputs():
    exits = np.array(
        [
            [5, 1, 2, 0],  # exit 1
            [5, 0, 2, 1],  # exit 2
            [5, 0, 1, 1],  # the final classifier
        ]
    )
    # Sample 0: every exit agrees; 1: from exit 2; 2: exit 2 disagrees, so only the final; 3: from exit 2.
    assert difficulty.exit_agreement(exits).tolist() == [0, 1, 2, 1]


def test_forgetting_counts_correct_to_incorrect_transitions_on_a_logged_sequence():
    correct = np.array(
        [
            [1, 0, 1, 0],
            [0, 0, 1, 1],
            [1, 0, 1, 0],
            [0, 0, 1, 1],
        ],
        dtype=bool,
    )
    # Sample 0 is forgotten twice, 1 never learned (inf), 2 never forgotten, 3 forgotten once.
    assert difficulty.forgetting_events(correct).tolist() == [2.0, np.inf, 0.0, 1.0]


def test_whole_number_scores_are_ordered_with_the_seeded_tie_break():
    depths = np.array([2, 0, 1, 0, 2, 1])
    ordered = order("curriculum", depths, seed=3)
    assert sorted(depths[ordered].tolist()) == depths[ordered].tolist()
    assert ordered.tolist() == order("curriculum", depths, seed=3).tolist()


def test_label_noise_flips_exactly_the_stated_fraction_to_other_classes():
    labels = np.repeat(np.arange(10), 100)
    noisy = difficulty.symmetric_label_noise(labels, 0.2, 10, seed=0)
    changed = noisy != labels
    assert changed.sum() == 200
    assert set(np.unique(noisy[changed])) == set(range(10))  # every class can be a new label
    assert (labels == np.repeat(np.arange(10), 100)).all()  # the input is left alone


def test_label_noise_is_repeatable_from_its_seed_and_draws_new_classes_uniformly():
    labels = np.zeros(30_000, dtype=int)
    noisy = difficulty.symmetric_label_noise(labels, 0.5, 4, seed=7)
    assert (noisy == difficulty.symmetric_label_noise(labels, 0.5, 4, seed=7)).all()
    counts = np.bincount(noisy[noisy != 0], minlength=4)[1:]
    assert counts.sum() == 15_000 and abs(counts / 15_000 - 1 / 3).max() < 0.02


def test_a_noise_fraction_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        difficulty.symmetric_label_noise(np.zeros(4, dtype=int), 1.5, 10, seed=0)

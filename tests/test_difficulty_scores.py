"""Tests for protocol.difficulty_scores: a score named where a teacher is, computed once, keyed by content."""

import numpy as np
import pytest

from mecl_utils.curriculum.difficulty import SCORES
from mecl_utils.networks.backbones import build_classifier, build_tiny_cnn
from mecl_utils.protocol.difficulty_scores import (
    label_outputs,
    probe_layers,
    relabelled_scores,
    score_key,
    teacher_key,
)
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.trained_networks import network_keys, trained_backbone, training_predictions
from mecl_utils.run.case_networks import case_networks, network_roles

PROFILE = get_profile("smoke", backbone_epochs=1, teacher_epochs=1, teachers=("self", "prediction_depth"))


def test_the_tiny_cnn_is_probed_at_its_two_convolutions():
    assert probe_layers(build_tiny_cnn(10)) == ["block1_conv", "block2_conv"]


def test_mobilenet_is_probed_at_eight_activations_spread_to_the_deepest():
    model = build_classifier("mobilenet", 10, image_size=64, weights=None, alpha=0.25)
    layers = probe_layers(model)
    assert len(layers) == 8 and layers[0] == "conv1_relu" and layers[-1] == "conv_pw_13_relu"


def test_a_score_trains_no_network_of_its_own():
    assert network_roles(PROFILE, "tiny_cnn") == ("backbone",)


def test_an_unknown_score_is_refused_with_the_valid_names(smoke_digits):
    with pytest.raises(
        ValueError,
        match="unknown difficulty score 'depth'; valid: prediction_depth, exit_agreement, forgetting_events",
    ):
        score_key(PROFILE, "depth", "tiny_cnn", *smoke_digits)


def test_the_score_key_follows_the_backbone(smoke_digits):
    longer = PROFILE.replace(backbone_epochs=2)
    first = score_key(PROFILE, "prediction_depth", "tiny_cnn", *smoke_digits)
    assert score_key(longer, "prediction_depth", "tiny_cnn", *smoke_digits) != first
    assert teacher_key(PROFILE, "prediction_depth", "tiny_cnn", *smoke_digits) == first


def test_a_case_scores_its_training_split_by_prediction_depth(tmp_path, monkeypatch, smoke_digits):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    networks = case_networks(PROFILE, "tiny_cnn", *smoke_digits, workers=0)
    depth = networks.teacher_losses["prediction_depth"]
    assert depth.shape == (len(smoke_digits[1].train),)
    assert set(np.unique(depth)) <= {0.0, 1.0, 2.0}  # two probes: settled at the first, the second, or not
    assert networks.teacher_keys["prediction_depth"] == score_key(
        PROFILE, "prediction_depth", "tiny_cnn", *smoke_digits
    )


def test_forgetting_counts_each_drop_from_right_to_wrong_and_ranks_the_never_learned_hardest():
    outputs = np.array([[0, 0, 0], [0, 1, 0], [1, 1, 1]])  # 3 samples × 3 epochs of predicted classes
    scores = relabelled_scores("forgetting_events", outputs, np.array([0, 0, 0]))
    assert scores.tolist() == [0.0, 1.0, 3.0]  # never right: the number of epochs, above any count


def test_forgetting_is_counted_against_the_labels_it_is_given():
    outputs = np.array([[1, 1, 0]])
    assert relabelled_scores("forgetting_events", outputs, np.array([1])).tolist() == [1.0]
    assert relabelled_scores("forgetting_events", outputs, np.array([0])).tolist() == [0.0]


def test_a_score_that_reads_no_label_has_no_outputs_to_relabel(smoke_digits):
    with pytest.raises(ValueError, match="prediction_depth reads no sample's label"):
        label_outputs(PROFILE, "prediction_depth", "tiny_cnn", *smoke_digits)


def test_the_exit_agreement_key_follows_its_exits_recipe_and_the_others_do_not(smoke_digits):
    first = {score: score_key(PROFILE, score, "tiny_cnn", *smoke_digits) for score in SCORES}
    longer = {
        score: score_key(PROFILE.replace(branch_epochs=9), score, "tiny_cnn", *smoke_digits)
        for score in SCORES
    }
    assert [score for score in SCORES if first[score] != longer[score]] == ["exit_agreement"]


def test_a_case_scores_its_training_split_by_exit_agreement_and_forgetting(
    tmp_path, monkeypatch, smoke_digits
):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    profile = PROFILE.replace(teachers=("self",), scores=("exit_agreement", "forgetting_events"))
    networks = case_networks(profile, "tiny_cnn", *smoke_digits, workers=0)
    agreement = networks.teacher_losses["exit_agreement"]
    assert set(np.unique(agreement)) <= {0.0, 1.0, 2.0}  # the first exit, the second, or the final alone
    forgetting = networks.teacher_losses["forgetting_events"]
    assert forgetting.shape == agreement.shape == (len(smoke_digits[1].train),)
    assert forgetting.min() >= 0 and forgetting.max() <= profile.backbone_epochs


def test_a_network_cached_before_its_log_is_fine_tuned_again_for_it_and_kept(
    tmp_path, monkeypatch, smoke_digits
):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    trained_backbone(PROFILE, "tiny_cnn", *smoke_digits, seed=PROFILE.seed)
    logs = list((tmp_path / "training_predictions").glob("*.npz"))
    table = np.load(logs[0])["predictions"]
    logs[0].unlink()  # as a cache written before the log existed
    model_file = next((tmp_path / "classifier").glob("*.keras"))
    written = model_file.stat().st_mtime_ns
    keys = network_keys(PROFILE, "self", "tiny_cnn", *smoke_digits, seed=PROFILE.seed)
    again = training_predictions(PROFILE, "tiny_cnn", *smoke_digits, seed=keys.seed, epochs=keys.epochs)
    assert np.array_equal(again, table) and model_file.stat().st_mtime_ns == written

"""Tests for protocol.difficulty_scores: a score named where a teacher is, computed once, keyed by content."""

import numpy as np
import pytest

from mecl_utils.networks.backbones import build_classifier, build_tiny_cnn
from mecl_utils.protocol.difficulty_scores import probe_layers, score_key, teacher_key
from mecl_utils.protocol.profiles import get_profile
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
    with pytest.raises(ValueError, match="unknown difficulty score 'depth'; valid: prediction_depth"):
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

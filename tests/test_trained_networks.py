"""Tests for protocol.teachers on the smoke profile (digits, tiny CNN): training, caching, losses."""

import dataclasses

import keras
import numpy as np
import pytest

from mecl_utils.cache import cache_key
from mecl_utils.curriculum.sorting import cross_entropy, tie_fraction
from mecl_utils.networks import backbones
from mecl_utils.networks.data import Split
from mecl_utils.protocol import trained_networks
from mecl_utils.protocol.profiles import get_profile

PROFILE = get_profile("smoke").replace(backbone_epochs=1, teacher_epochs=1)


@pytest.fixture(scope="module")
def data(smoke_digits):
    return smoke_digits


@pytest.fixture(scope="module")
def tiny_splits(data):
    """The smoke splits with only the first 40 training images: a fine-tune of a few steps."""
    train = data[1].train
    return dataclasses.replace(data[1], train=Split(train.x[:40], train.y[:40], train.index[:40]))


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """One cache for the module, so the 1-epoch backbone is trained once; never the user's cache."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MECL_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def backbone(cache_root, data):
    return trained_networks.trained_backbone(PROFILE, "tiny_cnn", *data, seed=0)


def predictions(model, split):
    return model.predict(split.x, batch_size=256, verbose=0)


@pytest.mark.slow
def test_backbone_beats_chance_on_validation(cache_root, data):
    # 8 epochs (the smoke default): after 1-2 epochs the BatchNorm moving statistics still lag behind, and
    # inference-mode accuracy on digits is 0.15-0.35 depending on the seed.
    model = trained_networks.trained_backbone(PROFILE.replace(backbone_epochs=8), "tiny_cnn", *data, seed=0)
    assert trained_networks.evaluate(model, data[1].val) > 0.6


def test_second_call_loads_from_cache_without_training(backbone, data, count_fits):
    again = trained_networks.trained_backbone(PROFILE, "tiny_cnn", *data, seed=0)
    assert count_fits == []
    np.testing.assert_allclose(predictions(again, data[1].val), predictions(backbone, data[1].val), rtol=1e-5)


def test_cache_entry_is_named_by_the_backbone_key(backbone, cache_root, data):
    key = trained_networks.backbone_key(PROFILE, "tiny_cnn", *data, seed=0)
    assert (cache_root / "classifier" / f"{key}.keras").is_file()
    network, seed, epochs = trained_networks.teacher_recipe(PROFILE, "self", "tiny_cnn", 0)
    assert (network, epochs) == ("tiny_cnn", 1)
    parts = trained_networks.classifier_parts(PROFILE, "tiny_cnn", *data, seed=seed, epochs=1)
    assert cache_key(parts) == key
    assert parts["batch_size"] == 32 and parts["weights"] is None and parts["image_size"] is None


@pytest.mark.parametrize("change", [{"epochs": 2}, {"seed": 1}], ids=["epochs", "seed"])
def test_changing_a_key_part_retrains(backbone, data, count_fits, change):
    trained_networks.train_classifier(PROFILE, "tiny_cnn", *data, **{"seed": 0, "epochs": 1, **change})
    assert len(count_fits) == 1


def test_self_teacher_is_the_backbone(backbone, data):
    teacher = trained_networks.trained_teacher(PROFILE, "self", "tiny_cnn", *data, seed=0)
    val = data[1].val
    np.testing.assert_allclose(predictions(teacher, val), predictions(backbone, val), rtol=1e-5)


def test_self_teacher_losses_are_the_backbone_cross_entropy(backbone, data):
    train = data[1].train
    losses = trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    from_probabilities = cross_entropy(predictions(backbone, train), train.y)
    np.testing.assert_allclose(losses, from_probabilities, rtol=1e-4, atol=1e-6)


def test_losses_come_from_logits_so_confident_samples_do_not_tie(backbone, data):
    losses = trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    assert tie_fraction(losses) == 0.0


def test_logits_give_the_classifier_probabilities(backbone, data):
    val = data[1].val
    logits = backbones.logits(backbone, val.x)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, predictions(backbone, val), atol=1e-5)


def test_teacher_losses_are_one_finite_non_negative_score_per_training_sample(backbone, data):
    losses = trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    assert losses.shape == (len(data[1].train),)
    assert np.all(np.isfinite(losses)) and np.all(losses >= 0)


def test_teacher_losses_are_cached(backbone, data, cache_root, monkeypatch):
    trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    monkeypatch.setattr(keras.Model, "predict", lambda *a, **k: pytest.fail("losses were recomputed"))
    trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    assert len(list((cache_root / "teacher_losses").glob("*.npz"))) == 1


def test_losses_of_the_teacher_in_hand_are_those_of_the_teacher_read_back(backbone, data, cache_root):
    read_back = trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    for path in (cache_root / "teacher_losses").glob("*.npz"):
        path.unlink()
    in_hand = trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0, trained=backbone)
    np.testing.assert_array_equal(in_hand, read_back)


def test_independent_teacher_differs_from_the_backbone(backbone, data, count_fits):
    own = trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    independent = trained_networks.teacher_losses(PROFILE, "tiny_cnn_wide", "tiny_cnn", *data, seed=0)
    assert len(count_fits) == 1  # the teacher was trained, with its own seed
    assert independent.shape == own.shape
    assert not np.allclose(independent, own)


def test_teacher_named_like_the_backbone_is_self_taught(backbone, data, count_fits):
    own = trained_networks.teacher_losses(PROFILE, "self", "tiny_cnn", *data, seed=0)
    named = trained_networks.teacher_losses(PROFILE, "tiny_cnn", "tiny_cnn", *data, seed=0)
    assert count_fits == []  # no second tiny_cnn was trained
    np.testing.assert_array_equal(named, own)


def test_paper_inceptionv3_teacher_of_inceptionv3_is_the_backbone():
    paper = get_profile("paper")
    assert trained_networks.teacher_recipe(
        paper, "inceptionv3", "inceptionv3", 0
    ) == trained_networks.teacher_recipe(paper, "self", "inceptionv3", 0)
    network, _, _ = trained_networks.teacher_recipe(paper, "inceptionv3", "densenet201", 0)
    assert network == "inceptionv3"
    assert trained_networks.teacher_recipe(
        paper, "inceptionv3", "densenet201", 0
    ) != trained_networks.teacher_recipe(paper, "self", "densenet201", 0)


def test_unknown_teacher_is_rejected_with_the_valid_names(data):
    with pytest.raises(ValueError, match="efficientnetb7"):
        trained_networks.trained_teacher(PROFILE, "vgg16", "tiny_cnn", *data, seed=0)


def test_evaluate_is_the_fraction_of_correct_argmax_predictions(backbone, data):
    val = data[1].val
    expected = np.mean(predictions(backbone, val).argmax(axis=1) == val.y)
    assert trained_networks.evaluate(backbone, val) == pytest.approx(expected)


def test_the_smoke_networks_keep_their_pinned_cache_keys(smoke_digits):
    # Literals from the code before issue 32 moved the networks' identity: a layout change must leave them.
    smoke = get_profile("smoke")
    assert (
        trained_networks.backbone_key(smoke, "tiny_cnn", *smoke_digits, seed=smoke.seed)
        == "10a1227cf956a0d60778"
    )
    keys = trained_networks.network_keys(smoke, "tiny_cnn_wide", "tiny_cnn", *smoke_digits, seed=smoke.seed)
    assert keys.losses_key == "d450e3cd73e6fb7dc872"


def test_only_a_network_with_epochs_shorter_than_one_call_records_its_steps_per_call(data, tiny_splits):
    dataset, splits = data
    full = trained_networks.classifier_parts(PROFILE, "tiny_cnn", dataset, splits, seed=0, epochs=1)
    assert "steps_per_execution" not in full  # 1,138 images in batches of 32: the loop stays, so does the key
    short = trained_networks.classifier_parts(PROFILE, "tiny_cnn", dataset, tiny_splits, seed=0, epochs=1)
    assert short["steps_per_execution"] == 2  # 40 images in batches of 32


def test_only_an_eager_fine_tune_records_it_in_its_key(data, tiny_splits):
    dataset, splits = data
    full = trained_networks.classifier_parts(PROFILE, "tiny_cnn", dataset, splits, seed=0, epochs=1)
    assert "run_eagerly" not in full
    short = trained_networks.classifier_parts(PROFILE, "tiny_cnn", dataset, tiny_splits, seed=0, epochs=1)
    assert short["run_eagerly"] is True  # 2 steps


def test_a_short_fine_tune_trains_eagerly_and_a_long_one_traced(cache_root, data, tiny_splits, monkeypatch):
    dataset, splits = data
    eager_at_fit = []
    fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        eager_at_fit.append(self.run_eagerly)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    short = trained_networks.train_classifier(PROFILE, "tiny_cnn", dataset, tiny_splits, seed=5, epochs=1)
    trained_networks.train_classifier(PROFILE, "tiny_cnn", dataset, splits, seed=5, epochs=1)
    assert eager_at_fit == [True, False]
    keras.utils.set_random_seed(5)  # as the fine-tune seeds its build: the weights it started from
    untrained = trained_networks.build_network(PROFILE, "tiny_cnn", dataset)
    assert any(
        not np.array_equal(a, b) for a, b in zip(short.get_weights(), untrained.get_weights(), strict=True)
    )


def test_only_a_traced_fine_tune_builds_symbolically_first(cache_root, data, tiny_splits, monkeypatch):
    dataset, splits = data
    built = []

    def recording_build(model, batch):
        built.append(model.run_eagerly)

    monkeypatch.setattr(trained_networks, "build_for_fit", recording_build)
    trained_networks.train_classifier(PROFILE, "tiny_cnn", dataset, tiny_splits, seed=6, epochs=1)
    assert built == []  # eager: the first step builds the optimizer's slots itself
    trained_networks.train_classifier(PROFILE, "tiny_cnn", dataset, splits, seed=6, epochs=1)
    assert built == [False]

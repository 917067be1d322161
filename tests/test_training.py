"""Classifier-wise training of one branch on cached features, and the naive check."""

import dataclasses

import keras
import numpy as np
import pytest

from mecl_utils.curriculum import pacing
from mecl_utils.curriculum.sampler import CurriculumSampler, sampler_for_method
from mecl_utils.training import classifier_wise
from mecl_utils.training.classifier_wise import BranchRun, initial_branch, make_optimizer, train_branch

RUN = BranchRun(
    optimizer="adam",
    learning_rate=1e-3,
    epochs=2,
    plateau_patience=1,
    plateau_factor=0.5,
    init_seed=7,
    dropout_seed=8,
)


def _toy_features(n=200, seed=0):
    """Features whose class is readable from the mean of one channel: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4, 4, 3)).astype("float32")
    x[np.arange(n), :, :, y] += 2.0
    return x, y


def test_validation_batches_are_the_batches_keras_makes_of_the_arrays():
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((70, 4)), rng.integers(0, 3, 70)  # float64: Keras casts it to float32
    ours = [(bx.numpy(), by.numpy()) for bx, by in classifier_wise._labelled(x, y)]
    keras_own = list(ArrayDataAdapter(x, y, batch_size=32, shuffle=False).get_numpy_iterator())
    assert [len(bx) for bx, _ in ours] == [32, 32, 6]
    for (ox, oy), (kx, ky) in zip(ours, keras_own, strict=True):
        assert ox.dtype == kx.dtype == np.float32 and oy.dtype == ky.dtype
        np.testing.assert_array_equal(ox, kx)
        np.testing.assert_array_equal(oy, ky)


def test_initial_weights_depend_only_on_the_init_seed():
    first = initial_branch((4, 4, 3), 3, init_seed=11).get_weights()
    keras.utils.set_random_seed(999)  # whatever happened before
    second = initial_branch((4, 4, 3), 3, init_seed=11).get_weights()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_init_seeds_give_different_weights():
    first = initial_branch((4, 4, 3), 3, init_seed=1).get_weights()[0]
    assert not np.array_equal(first, initial_branch((4, 4, 3), 3, init_seed=2).get_weights()[0])


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid optimizers: sgd, adam"):
        make_optimizer("rmsprop", 1e-3)


@pytest.mark.slow
def test_branch_learns_the_toy_task_with_a_curriculum():
    x, y = _toy_features()
    sampler = sampler_for_method("curriculum", np.arange(200.0), 16, pacing.SingleStep(s=0.5, delta=5))
    result = train_branch(RUN, sampler, (x, y), (x, y), (x, y), num_classes=3)
    assert result.accuracy > 0.8
    assert len(result.val_accuracy) == len(result.train_loss) == len(result.learning_rate) == 2


@pytest.mark.slow
def test_a_run_is_reproducible():
    x, y = _toy_features()
    results = [
        train_branch(
            RUN, CurriculumSampler(np.arange(200), 16, seed=3), (x, y), (x, y), (x, y), num_classes=3
        )
        for _ in range(2)
    ]
    assert results[0].train_loss == results[1].train_loss
    assert results[0].accuracy == results[1].accuracy


@pytest.mark.slow
def test_every_epoch_takes_exactly_one_pass_of_batches():
    # 200 rows in batches of 16 make 13 batches an epoch, which no fixed number of steps per call divides.
    x, y = _toy_features()
    sampler = CurriculumSampler(np.arange(200), 16, seed=3)
    result = train_branch(RUN, sampler, (x, y), (x, y), (x, y), num_classes=3)
    assert result.steps == (13, 26)


def test_sampler_must_cover_the_training_rows():
    x, y = _toy_features()
    with pytest.raises(ValueError, match="the sampler orders 50 samples but train has 200"):
        train_branch(RUN, CurriculumSampler(np.arange(50), 16), (x, y), (x, y), (x, y), num_classes=3)


@pytest.mark.slow
def test_cached_features_and_naive_training_agree():
    # The naive mode runs a frozen "backbone" inside the graph; the cached mode reads its outputs.
    keras.utils.set_random_seed(0)
    images = keras.Input((6, 6, 3))
    backbone = keras.Model(images, keras.layers.Conv2D(3, 3, activation="relu")(images))
    x_images, y = _toy_features(n=120)
    x_images = np.pad(x_images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    features = backbone.predict(x_images, verbose=0)
    sampler = sampler_for_method("curriculum", np.arange(120.0), 16, pacing.SingleStep(s=0.5, delta=5))
    cached = train_branch(RUN, sampler, (features, y), (features, y), (features, y), num_classes=3)
    naive = train_branch(
        RUN, sampler, (x_images, y), (x_images, y), (x_images, y), num_classes=3, frozen_backbone=backbone
    )
    assert naive.train_loss == pytest.approx(cached.train_loss, rel=1e-4)
    assert naive.accuracy == pytest.approx(cached.accuracy, abs=0.02)


@pytest.mark.slow
def test_a_reused_compiled_branch_trains_exactly_like_a_fresh_one():
    x, y = _toy_features()
    sampler = CurriculumSampler(np.arange(200), 16, seed=3)
    classifier_wise._COMPILED.clear()
    fresh = train_branch(RUN, sampler, (x, y), (x, y), (x, y), num_classes=3)
    other = dataclasses.replace(RUN, init_seed=99, learning_rate=1e-2)
    train_branch(other, sampler, (x, y), (x, y), (x, y), num_classes=3)  # leaves the kept model trained
    assert len(classifier_wise._COMPILED) == 1
    reused = train_branch(RUN, sampler, (x, y), (x, y), (x, y), num_classes=3)
    assert reused.train_loss == fresh.train_loss
    assert reused.learning_rate == fresh.learning_rate
    assert reused.accuracy == fresh.accuracy


def test_seed_dropout_sets_every_dropout_layer_from_the_seed_alone():
    first = initial_branch((4, 4, 3), 3, init_seed=1)
    second = initial_branch((4, 4, 3), 3, init_seed=2)
    assert classifier_wise.seed_dropout(first, 5) == classifier_wise.seed_dropout(second, 5) == 2
    states = [
        [v.numpy().tolist() for v in m.non_trainable_variables if "seed" in v.path] for m in (first, second)
    ]
    assert states[0] == states[1]  # the init seed no longer decides the masks
    assert states[0][0] != states[0][1]  # the two Dropout layers draw different masks


@pytest.mark.slow
def test_the_dropout_seed_changes_the_training_and_nothing_else():
    x, y = _toy_features()
    sampler = CurriculumSampler(np.arange(200), 16, seed=3)
    base = train_branch(RUN, sampler, (x, y), (x, y), (x, y), num_classes=3)
    same = train_branch(dataclasses.replace(RUN, epochs=2), sampler, (x, y), (x, y), (x, y), num_classes=3)
    other = train_branch(
        dataclasses.replace(RUN, dropout_seed=9), sampler, (x, y), (x, y), (x, y), num_classes=3
    )
    assert same.train_loss == base.train_loss
    assert other.train_loss != base.train_loss  # dropout masks differ: the old train_seed never reached them

"""Tests for strategies.whole_network: end-to-end and layer-wise training on the smoke profile's tiny CNN."""

import dataclasses

import numpy as np
import pytest

from mecl_utils.curriculum.pacing import SingleStep
from mecl_utils.curriculum.sampler import sampler_for_method
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.trained_networks import train_classifier
from mecl_utils.strategies import multi_exit_network, whole_network

PROFILE = get_profile("smoke").replace(backbone_epochs=2)
LAYERS = ("block1_out", "block2_out")
SEED, INIT_SEED = 11, 12


def weights_of(layers):
    return [w for layer in layers for w in layer.get_weights()]


def assert_bit_identical(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_end_to_end_with_zero_exit_weights_is_plain_backbone_training(smoke_digits, tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    plain = train_classifier(PROFILE, "tiny_cnn", *smoke_digits, seed=SEED)
    multi, weights = whole_network.train_end_to_end(
        PROFILE, "tiny_cnn", *smoke_digits, LAYERS, weighting=(0.0, 0.0), seed=SEED, init_seed=INIT_SEED
    )
    assert weights == [(0.0, 0.0)] * PROFILE.backbone_epochs
    assert_bit_identical(weights_of(multi.classifier.layers), weights_of(plain.layers))


@pytest.mark.slow
def test_end_to_end_with_equal_weights_trains_the_backbone_differently(smoke_digits):
    runs = [
        whole_network.train_end_to_end(
            PROFILE, "tiny_cnn", *smoke_digits, LAYERS, weighting=w, seed=SEED, init_seed=INIT_SEED, epochs=1
        )[0]
        for w in ((0.0, 0.0), "equal")
    ]
    first_conv = [run.classifier.get_layer("block1_conv").get_weights()[0] for run in runs]
    assert not np.array_equal(*first_conv)


@pytest.mark.slow
def test_layer_wise_training_leaves_frozen_parts_bit_identical(smoke_digits):
    snapshots = {}

    def snapshot(stage, multi):
        names = [layer.name for layer in multi.classifier.layers]
        first_part = multi.classifier.layers[: names.index("block1_out") + 1]
        snapshots[stage] = (
            weights_of(first_part),
            weights_of([multi.branches[0]]),
            weights_of(multi.classifier.layers),
        )

    multi = whole_network.train_layer_wise(
        PROFILE,
        "tiny_cnn",
        *smoke_digits,
        LAYERS,
        seed=SEED,
        init_seed=INIT_SEED,
        epochs=1,
        on_stage=snapshot,
    )
    assert sorted(snapshots) == [1, 2, 3]
    for later in (2, 3):  # the first part and branch 1, BatchNorm statistics included, never change again
        assert_bit_identical(snapshots[later][0], snapshots[1][0])
        assert_bit_identical(snapshots[later][1], snapshots[1][1])
    # ...while stages 2 and 3 did train the rest of the network
    assert not np.array_equal(snapshots[1][2][-1], snapshots[3][2][-1])  # the head's bias
    conv2 = multi.classifier.get_layer("block2_conv").get_weights()[0]
    assert not np.array_equal(conv2, snapshots[1][2][len(snapshots[1][0])])
    assert all(layer.trainable for layer in multi.classifier.layers)  # flags restored (tiny CNN: all)


@pytest.mark.slow
def test_end_to_end_training_reads_only_the_batches_its_sampler_draws(smoke_digits):
    dataset, splits = smoke_digits
    losses = np.random.default_rng(0).random(len(splits.train))
    # Its window stays at the 32 easiest samples for the whole epoch: most samples are never drawn...
    sampler = sampler_for_method("curriculum", losses, 32, SingleStep(s=0.01, delta=10_000), seed=3)
    drawn = np.unique(np.concatenate(sampler.epoch(0)))
    assert len(drawn) == 32
    x = splits.train.x.astype(np.float32)
    x[np.setdiff1d(np.arange(len(x)), drawn)] = np.nan  # ...and would turn every weight NaN if read
    poisoned = dataclasses.replace(splits, train=dataclasses.replace(splits.train, x=x))
    multi, _ = whole_network.train_end_to_end(
        PROFILE, "tiny_cnn", dataset, poisoned, LAYERS, weighting="sdn", seed=SEED, init_seed=INIT_SEED,
        sampler=sampler, epochs=1,
    )  # fmt: skip
    assert all(np.isfinite(w).all() for w in weights_of([multi.model]))


def test_equal_weighting_weighs_every_early_exit_one():
    assert whole_network.exit_weights("equal", (0.2, 0.6), 0, 5) == (1.0, 1.0)


def test_sdn_weights_follow_shallow_deep_networks_schedule_from_their_first_epoch():
    # Kaya et al.'s training code: min(C_i, 0.01 + e·C_i/E) in epoch e = 1..E (ours counts from 0).
    shares, epochs = (0.25, 0.6), 4
    by_hand = [(0.0725, 0.16), (0.135, 0.31), (0.1975, 0.46), (0.25, 0.6)]  # the last: capped at C_i
    for epoch, expected in enumerate(by_hand):
        assert whole_network.exit_weights("sdn", shares, epoch, epochs) == pytest.approx(expected)


def test_compute_shares_are_the_macs_before_each_exit_over_the_classifiers():
    import keras

    inputs = keras.Input((4,))
    a = keras.layers.Dense(3, name="a")(inputs)  # 4·3 = 12 MACs
    b = keras.layers.Dense(5, name="b")(a)  # 3·5 = 15
    classifier = keras.Model(inputs, keras.layers.Dense(2, name="out")(b))  # 5·2 = 10: 37 in all
    assert whole_network.compute_shares(classifier, ("a", "b")) == pytest.approx((12 / 37, 27 / 37))


@pytest.mark.parametrize(
    ("weighting", "message"),
    [("linear", "unknown exit weighting"), ((1.0,), "one weight"), ((1.0, -1), ">= 0")],
)
def test_bad_weightings_are_rejected(weighting, message):
    with pytest.raises(ValueError, match=message):
        whole_network.exit_weights(weighting, (0.2, 0.6), 0, 5)


@pytest.mark.slow
def test_a_reused_compiled_network_trains_bit_identically_to_a_fresh_one(smoke_digits, monkeypatch):
    monkeypatch.setattr(whole_network, "_COMPILED", {})

    def run(weighting, seed):
        return whole_network.train_end_to_end(
            PROFILE, "tiny_cnn", *smoke_digits, LAYERS, weighting=weighting, seed=seed, init_seed=INIT_SEED,
            epochs=1,
        )[0]  # fmt: skip

    first = run("equal", SEED)  # traces and keeps the compiled network
    trained = weights_of([first.model])
    run((0.0, 0.0), SEED + 1)  # another run through the same compiled network
    again = run("equal", SEED)
    assert len(whole_network._COMPILED) == 1
    assert_bit_identical(weights_of([again.model]), trained)
    assert_bit_identical(weights_of([first.model]), trained)  # what a run returns is its own


@pytest.mark.slow
def test_a_reused_layer_wise_network_trains_bit_identically(smoke_digits, monkeypatch):
    monkeypatch.setattr(whole_network, "_COMPILED", {})

    def run(seed):
        multi = whole_network.train_layer_wise(
            PROFILE, "tiny_cnn", *smoke_digits, LAYERS, seed=seed, init_seed=INIT_SEED, epochs=1
        )
        return weights_of([multi.model])

    first = run(SEED)
    run(SEED + 1)
    assert_bit_identical(run(SEED), first)


@pytest.mark.slow
def test_trained_networks_predict_through_one_twin_exactly_as_through_their_own_model(
    smoke_digits, monkeypatch
):
    monkeypatch.setattr(multi_exit_network, "_TWINS", {})
    _, splits = smoke_digits

    def run(seed):
        return whole_network.train_end_to_end(
            PROFILE, "tiny_cnn", *smoke_digits, LAYERS, weighting="equal", seed=seed, init_seed=INIT_SEED,
            epochs=1,
        )[0]  # fmt: skip

    first, second = run(SEED), run(SEED + 1)
    assert first.twin is second.twin and len(multi_exit_network._TWINS) == 1
    for network in (first, second, first):  # the twin holds the last network's weights only
        outputs, accuracies = multi_exit_network.exit_accuracies(network, splits.test)
        own = network.model.predict(splits.test.x, batch_size=256, verbose=0)
        assert_bit_identical(list(outputs), own)
        assert accuracies == tuple(float(np.mean(o.argmax(1) == splits.test.y)) for o in own)
    assert not np.array_equal(multi_exit_network.exit_accuracies(second, splits.test)[0][0], outputs[0])

"""Tests for strategies.network_runs: whole-network strategies, stored, resumed and their outputs kept."""

import keras
import numpy as np
import pytest

from mecl_utils.curriculum.pacing import FULL, FixedExponential
from mecl_utils.curriculum.sampler import curriculum_dataset
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.trained_networks import build_network
from mecl_utils.report import strategy_comparisons
from mecl_utils.run.case_networks import load_splits
from mecl_utils.run.engine import Engine
from mecl_utils.strategies import network_runs

NETWORKS = get_profile("smoke").replace(backbone_epochs=1, teacher_epochs=1, repetitions=2)
PACING = FixedExponential(s=0.25, r=2.0, delta=10)
STRATEGIES = ("plain", "layer_wise")  # one of each trainer (test_strategies covers the weightings): 8 runs


def run_networks(store, engine):
    return network_runs.run_network_strategies(
        NETWORKS, "tiny_cnn", "digits", store, teacher="tiny_cnn_wide", pacing=PACING, engine=engine,
        strategies=STRATEGIES,
    )  # fmt: skip


@pytest.fixture(scope="module")
def network_store(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MECL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        store = ResultsStore(tmp_path_factory.mktemp("networks") / "runs.csv")
        with Engine(0) as engine:
            run_ids = run_networks(store, engine)
        yield store, run_ids


@pytest.mark.slow
def test_every_strategy_method_and_repetition_is_one_row(network_store):
    store, run_ids = network_store
    rows = store.frame()
    assert len(rows) == len(run_ids) == len(set(run_ids)) == 2 * 2 * 2
    assert rows.groupby(["strategy", "method"]).size().to_dict() == {
        (s, m): 2 for s in STRATEGIES for m in ("vanilla", "curriculum")
    }
    for column in ("test_accuracy_exit1", "test_accuracy_exit2", "test_accuracy_final"):
        assert rows[column].between(0, 1).all()


@pytest.mark.slow
def test_network_runs_resume_without_training(network_store, count_fits):
    store, run_ids = network_store
    with Engine(0) as engine:
        again = run_networks(store, engine)
    assert again == run_ids and count_fits == []


@pytest.mark.slow
def test_network_outputs_are_kept_per_split_and_exit(network_store):
    store, run_ids = network_store
    row = store.frame().set_index("run_id").loc[run_ids[0]]
    outputs = network_runs.network_outputs(run_ids[0])
    assert sorted(outputs) == sorted(
        f"{s}_{e}" for s in ("val", "hparam", "test") for e in ("exit1", "exit2", "final")
    )
    _, splits = load_splits(NETWORKS, "digits")
    accuracy = np.mean(outputs["test_final"].argmax(axis=1) == splits.test.y)
    assert accuracy == pytest.approx(row["test_accuracy_final"])


@pytest.mark.slow
def test_plain_leaves_its_exits_untrained_and_layer_wise_trains_them(network_store):
    rows = network_store[0].frame()
    exit2 = rows.groupby("strategy")["test_accuracy_exit2"].mean()
    assert exit2["plain"] < exit2["layer_wise"]


@pytest.mark.slow
def test_the_strategy_table_has_a_row_per_strategy_and_method(network_store):
    table = strategy_comparisons.strategy_table(network_store[0].frame())
    assert len(table) == 4
    assert list(table["repetitions"].unique()) == [2]
    plain = table[table["strategy"] == "plain"]
    assert plain[["exit1 p", "exit2 p"]].isna().all().all()  # its branches never train: nothing to test
    p_values = table.loc[table["method"] == "curriculum", "final p"].dropna()
    assert p_values.between(0, 1).all()
    assert table.loc[table["method"] == "vanilla", "final p"].isna().all()  # no test against itself


@pytest.mark.slow
def test_the_chapters_plain_run_is_its_classifier_trained_alone_through_the_vanilla_sampler(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    profile = network_runs.network_setting(get_profile("smoke"), 500, 2, 1)  # as the chapter builds it
    dataset, splits = load_splits(profile, "digits")
    run = network_runs.NetworkRun("tiny_cnn", "digits", "plain", "vanilla", 0, None, None)
    plain = network_runs.train_network(profile, dataset, splits, None, run)
    sampler = network_runs.network_sampler(profile, splits, None, run)
    assert sampler.pacing == FULL  # each batch drawn at random from the whole training split
    keras.utils.set_random_seed(run.seeds(profile)["network"])
    alone = build_network(profile, "tiny_cnn", dataset)  # no branches, its own loss
    alone.compile(keras.optimizers.Adam(profile.backbone_learning_rate), "sparse_categorical_crossentropy")
    batches = curriculum_dataset(splits.train.x, splits.train.y, sampler, epochs=2)
    alone.fit(batches, epochs=2, steps_per_epoch=sampler.batches_per_epoch, shuffle=False, verbose=0)
    trained, expected = plain.classifier.get_weights(), alone.get_weights()
    assert len(trained) == len(expected)
    for a, b in zip(trained, expected, strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit


def test_unknown_strategies_are_rejected_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown strategies"):
        network_runs.run_network_strategies(
            NETWORKS, "tiny_cnn", "digits", ResultsStore(tmp_path / "r.csv"), teacher="self", pacing=PACING,
            strategies=("end_to_end",),
        )  # fmt: skip


def test_a_retrained_network_run_replaces_outputs_left_by_a_run_whose_row_was_lost(tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    network_runs.keep_network_outputs("run-a", {"test_final": np.zeros((2, 3))})  # its row never written
    network_runs.keep_network_outputs("run-a", {"test_final": np.ones((2, 3))})  # the run trained again
    np.testing.assert_array_equal(network_runs.network_outputs("run-a")["test_final"], np.ones((2, 3)))

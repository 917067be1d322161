"""Tests for mecl_utils.strategy_runs: distilled branch runs and network strategies, stored and resumed."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from test_experiments import CASE, _data, _profile

from mecl_utils import strategy_runs
from mecl_utils.distillation import Distillation
from mecl_utils.engine import Engine
from mecl_utils.experiments import run_case
from mecl_utils.pacing import FixedExponential
from mecl_utils.profiles import get_profile
from mecl_utils.results import ResultsStore

DISTILLATION = Distillation(0.5, 4.0)


@pytest.fixture(scope="module")
def table_iv_store(tmp_path_factory):
    """The toy case's Table IV protocol, whose choices the distilled runs reuse."""
    store = ResultsStore(tmp_path_factory.mktemp("store") / "runs.csv")
    run_case(_profile(), CASE, _data(), store)
    return store


def distilled_data():
    rng = np.random.default_rng(1)
    data = _data()
    logits = {name: rng.standard_normal((len(data.labels[name]), 3)) for name in ("train", "val")}
    return dataclasses.replace(data, final_logits=logits)


def test_distilled_runs_reuse_the_table_iv_choices_and_repetition_seeds(table_iv_store):
    specs = strategy_runs.distillation_specs(_profile(), CASE, table_iv_store, DISTILLATION)
    reps = table_iv_store.frame().query("stage == 'repetition'")
    chosen = reps[reps["method"] == "curriculum"].iloc[0]
    assert [(s.method, s.repetition) for s in specs] == [
        ("vanilla", 0), ("curriculum", 0), ("vanilla", 1), ("curriculum", 1)
    ]  # fmt: skip
    curriculum = specs[1]
    assert (curriculum.optimizer, curriculum.teacher, curriculum.pacing) == (
        chosen["optimizer"], chosen["teacher"], chosen["pacing"]
    )  # fmt: skip
    for spec in specs:  # the seeds of the Table IV repetition it pairs with
        same = reps[(reps["repetition"] == spec.repetition) & (reps["method"] == spec.method)].iloc[0]
        assert spec.seeds(_profile()).init == same["init_seed"]


def test_distilled_runs_are_stored_once_and_resume(table_iv_store, count_fits):
    profile, data = _profile(), distilled_data()
    first = strategy_runs.run_distillation(profile, CASE, data, table_iv_store, DISTILLATION)
    rows = table_iv_store.frame().set_index("run_id").loc[first]
    assert list(rows["stage"]) == ["distillation"] * 4
    assert set(rows["distillation_temperature"]) == {4.0}
    assert rows["accuracy"].between(0, 1).all()
    fits = len(count_fits)
    again = strategy_runs.run_distillation(profile, CASE, data, table_iv_store, DISTILLATION)
    assert again == first and len(count_fits) == fits


def test_a_distilled_run_differs_from_the_plain_run_it_pairs_with(table_iv_store):
    strategy_runs.run_distillation(_profile(), CASE, distilled_data(), table_iv_store, DISTILLATION)
    frame = table_iv_store.frame()
    pick = frame[(frame["method"] == "vanilla") & (frame["repetition"] == 0)]
    plain = pick[pick["stage"] == "repetition"].iloc[0]
    distilled = pick[pick["stage"] == "distillation"].iloc[0]
    assert plain["run_id"] != distilled["run_id"] and plain["init_seed"] == distilled["init_seed"]
    assert plain["train_loss"] != distilled["train_loss"]


def test_distillation_needs_the_table_iv_runs_first(tmp_path):
    with pytest.raises(ValueError, match="run the protocol first"):
        strategy_runs.distillation_specs(_profile(), CASE, ResultsStore(tmp_path / "empty.csv"), DISTILLATION)


NETWORKS = get_profile("smoke").replace(backbone_epochs=1, teacher_epochs=1, repetitions=2)
PACING = FixedExponential(s=0.25, r=2.0, delta=10)
STRATEGIES = ("plain", "layer_wise")  # one of each trainer (test_strategies covers the weightings): 8 runs


def run_networks(store, engine):
    return strategy_runs.run_network_strategies(
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
    outputs = strategy_runs.network_outputs(run_ids[0])
    assert sorted(outputs) == sorted(
        f"{s}_{e}" for s in ("val", "hparam", "test") for e in ("exit1", "exit2", "final")
    )
    from mecl_utils.prepare import load_splits

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
    table = strategy_runs.strategy_table(network_store[0].frame())
    assert len(table) == 4
    assert list(table["repetitions"].unique()) == [2]
    plain = table[table["strategy"] == "plain"]
    assert plain["final vs plain"].tolist() == [0.0, 0.0]
    assert plain[["exit1 p", "exit2 p"]].isna().all().all()  # its branches never train: nothing to test
    p_values = table.loc[table["method"] == "curriculum", "final p"].dropna()
    assert p_values.between(0, 1).all()
    assert table.loc[table["method"] == "vanilla", "final p"].isna().all()  # no test against itself


def test_unknown_strategies_are_rejected_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown strategies"):
        strategy_runs.run_network_strategies(
            NETWORKS, "tiny_cnn", "digits", ResultsStore(tmp_path / "r.csv"), teacher="self", pacing=PACING,
            strategies=("end_to_end",),
        )  # fmt: skip


def test_the_strategy_table_reads_strategy_by_strategy_vanilla_first_whatever_order_runs_finished():
    rows = pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition, "test_accuracy_exit1": 0.2, "test_accuracy_final": 0.5}
        for strategy, method in (("layer_wise", "curriculum"), ("plain", "curriculum"),
                                 ("layer_wise", "vanilla"), ("plain", "vanilla"))
        for repetition in (0, 1)
    ])  # fmt: skip
    table = strategy_runs.strategy_table(rows)
    assert list(zip(table["strategy"], table["method"], strict=True)) == [
        ("plain", "vanilla"), ("plain", "curriculum"), ("layer_wise", "vanilla"), ("layer_wise", "curriculum")
    ]  # fmt: skip


def test_the_distillation_table_refuses_two_feature_modes_that_share_repetition_numbers():
    rows = pd.DataFrame(
        [
            {"stage": stage, "backbone": "tiny_cnn", "dataset": "digits", "branch": 1, "method": method,
             "repetition": repetition, "accuracy": 0.8, "feature_mode": mode}
            for stage in ("repetition", "distillation")
            for method in ("vanilla", "curriculum")
            for repetition in range(2)
            for mode in ("memory", "shards")
        ]
    )  # fmt: skip
    with pytest.raises(ValueError, match="feature_mode"):
        strategy_runs.distillation_table(rows)

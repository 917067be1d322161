"""Tests for strategies.network_runs: distilled branch runs and network strategies, stored and resumed."""

import dataclasses
import itertools

import keras
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_experiments import CASE, _data, _profile

from mecl_utils.curriculum.pacing import FULL, FixedExponential
from mecl_utils.curriculum.sampler import curriculum_dataset
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.stages import case_stages, run_case
from mecl_utils.protocol.teachers import build_network
from mecl_utils.report.statistics import holm
from mecl_utils.run.case_networks import load_splits
from mecl_utils.run.engine import Engine
from mecl_utils.strategies import network_runs
from mecl_utils.training.classifier_wise import TRAINING_VERSION
from mecl_utils.training.distillation import Distillation

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
    specs = network_runs.distillation_specs(_profile(), CASE, _data(), table_iv_store, DISTILLATION)
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
    first = network_runs.run_distillation(profile, CASE, data, table_iv_store, DISTILLATION)
    rows = table_iv_store.frame().set_index("run_id").loc[first]
    assert list(rows["stage"]) == ["distillation"] * 4
    assert set(rows["distillation_temperature"]) == {4.0}
    assert rows["accuracy"].between(0, 1).all()
    fits = len(count_fits)
    again = network_runs.run_distillation(profile, CASE, data, table_iv_store, DISTILLATION)
    assert again == first and len(count_fits) == fits


def test_a_distilled_run_differs_from_the_plain_run_it_pairs_with(table_iv_store):
    network_runs.run_distillation(_profile(), CASE, distilled_data(), table_iv_store, DISTILLATION)
    frame = table_iv_store.frame()
    pick = frame[(frame["method"] == "vanilla") & (frame["repetition"] == 0)]
    plain = pick[pick["stage"] == "repetition"].iloc[0]
    distilled = pick[pick["stage"] == "distillation"].iloc[0]
    assert plain["run_id"] != distilled["run_id"] and plain["init_seed"] == distilled["init_seed"]
    assert plain["train_loss"] != distilled["train_loss"]


def test_distillation_needs_the_table_iv_runs_first(tmp_path):
    empty = ResultsStore(tmp_path / "empty.csv")
    with pytest.raises(ValueError, match="run the protocol first"):
        network_runs.distillation_specs(_profile(), CASE, _data(), empty, DISTILLATION)


# A row of an older training version with other choices, which distilled runs must never read.
STALE = {
    "run_id": "stale", "stage": "repetition", "backbone": CASE.backbone, "dataset": CASE.dataset,
    "branch": CASE.branch, "method": "curriculum", "optimizer": "sgd", "learning_rate": 0.1,
    "teacher": "self", "pacing": "FEP(100)", "repetition": 0, "accuracy": 0.9,
    "training_version": TRAINING_VERSION - 1,
}  # fmt: skip
# The search runs that win (stage, optimizer, teacher, pacing) in store_today_searches.
WINNERS = {("vanilla_search", "adam", None, None), ("curriculum_search", "adam", "tiny_cnn_wide", "SSP(300)")}


def store_today_searches(store):
    """Rows for the current grid's two searches of the toy case, the ``WINNERS`` more accurate."""
    profile, data = _profile(), _data()
    for searches in itertools.islice(case_stages(profile, CASE, data, store), 2):
        for spec in searches:
            won = (spec.stage, spec.optimizer, spec.teacher, spec.pacing) in WINNERS
            store.append({
                "run_id": spec.run_id(profile, data), "stage": spec.stage, "method": spec.method,
                "optimizer": spec.optimizer, "learning_rate": spec.learning_rate,
                "teacher": spec.teacher or "", "pacing": spec.pacing or "",
                "accuracy": 0.6 if won else 0.4, "training_version": TRAINING_VERSION,
            })  # fmt: skip


def test_distilled_runs_take_the_choices_of_todays_searches_never_a_stale_row(tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    store.append(STALE)  # first in the file
    store_today_searches(store)
    specs = network_runs.distillation_specs(_profile(), CASE, _data(), store, DISTILLATION)
    curriculum = [spec for spec in specs if spec.method == "curriculum"]
    assert {(s.optimizer, s.learning_rate, s.teacher, s.pacing) for s in curriculum} == {
        ("adam", 1e-2, "tiny_cnn_wide", "SSP(300)")
    }


def test_distillation_refuses_a_store_holding_only_stale_rows(tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    store.append(STALE)
    with pytest.raises(ValueError, match=r"not in .*: run the protocol first"):
        network_runs.distillation_specs(_profile(), CASE, _data(), store, DISTILLATION)


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
    table = network_runs.strategy_table(network_store[0].frame())
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


def test_the_strategy_table_reads_strategy_by_strategy_vanilla_first_whatever_order_runs_finished():
    rows = pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition, "test_accuracy_exit1": 0.2, "test_accuracy_final": 0.5}
        for strategy, method in (("layer_wise", "curriculum"), ("plain", "curriculum"),
                                 ("layer_wise", "vanilla"), ("plain", "vanilla"))
        for repetition in (0, 1)
    ])  # fmt: skip
    table = network_runs.strategy_table(rows)
    assert list(zip(table["strategy"], table["method"], strict=True)) == [
        ("plain", "vanilla"), ("plain", "curriculum"), ("layer_wise", "vanilla"), ("layer_wise", "curriculum")
    ]  # fmt: skip


def test_final_vs_plain_is_the_final_exits_mean_minus_the_plain_networks_under_the_same_method():
    finals = {  # test accuracy of the final exit in repetitions 0 and 1
        ("plain", "vanilla"): (0.5, 0.6), ("plain", "curriculum"): (0.4, 0.5),
        ("end_to_end_equal", "vanilla"): (0.7, 0.8), ("end_to_end_equal", "curriculum"): (0.3, 0.4),
    }  # fmt: skip
    rows = pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition, "test_accuracy_final": accuracy}
        for (strategy, method), accuracies in finals.items()
        for repetition, accuracy in enumerate(accuracies)
    ])  # fmt: skip
    table = network_runs.strategy_table(rows).set_index(["strategy", "method"])["final vs plain"]
    assert table["end_to_end_equal", "vanilla"] == pytest.approx(75 - 55)
    assert table["end_to_end_equal", "curriculum"] == pytest.approx(35 - 45)


def _network_rows(accuracies: dict[tuple[str, str], tuple[list[float], list[float]]]) -> pd.DataFrame:
    """Literal network-strategy rows: (strategy, method) -> (exit1, final) test accuracies per repetition."""
    return pd.DataFrame([
        {"stage": "network_strategy", "backbone": "mobilenet", "dataset": "cifar10", "strategy": strategy,
         "method": method, "repetition": repetition,
         "test_accuracy_exit1": exit1, "test_accuracy_final": final}
        for (strategy, method), values in accuracies.items()
        for repetition, (exit1, final) in enumerate(zip(*values, strict=True))
    ])  # fmt: skip


NETWORK_ROWS = _network_rows({
    ("plain", "vanilla"): ([0.1, 0.1, 0.1], [0.50, 0.52, 0.51]),
    ("plain", "curriculum"): ([0.1, 0.1, 0.1], [0.51, 0.52, 0.53]),
    ("layer_wise", "vanilla"): ([0.20, 0.22, 0.21], [0.48, 0.50, 0.50]),
    ("layer_wise", "curriculum"): ([0.21, 0.25, 0.23], [0.47, 0.49, 0.52]),
})  # fmt: skip


def test_the_strategy_table_gives_each_difference_its_95_percent_interval():
    table = network_runs.strategy_table(NETWORK_ROWS).set_index(["strategy", "method"])
    curriculum = table.loc[("layer_wise", "curriculum")]
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # exit1 differences 1, 3, 2 points: mean 2, sd 1
    assert curriculum["exit1 difference"] == pytest.approx(2.0)
    assert curriculum[["exit1 low", "exit1 high"]].tolist() == pytest.approx([2.0 - half, 2.0 + half])
    assert curriculum["exit1 pairs"] == 3
    versus_plain = table.loc[("layer_wise", "vanilla")]  # final: -2, -2, -1 points against plain vanilla
    half = stats.t.ppf(0.975, 2) * np.std([-2, -2, -1], ddof=1) / np.sqrt(3)
    assert versus_plain["final vs plain"] == pytest.approx(-5 / 3)
    assert versus_plain[["final vs plain low", "final vs plain high"]].tolist() == pytest.approx(
        [-5 / 3 - half, -5 / 3 + half]
    )


def test_the_strategy_tables_curriculum_tests_are_holm_corrected_as_one_family():
    table = network_runs.strategy_table(NETWORK_ROWS)
    curriculum = table[table["method"] == "curriculum"].set_index("strategy")
    raw = [curriculum.loc["plain", "final p"], curriculum.loc["layer_wise", "exit1 p"],
           curriculum.loc["layer_wise", "final p"]]  # fmt: skip
    adjusted = [curriculum.loc["plain", "final p adjusted"], curriculum.loc["layer_wise", "exit1 p adjusted"],
                curriculum.loc["layer_wise", "final p adjusted"]]  # fmt: skip
    np.testing.assert_allclose(adjusted, holm(raw))
    assert np.isnan(curriculum.loc["plain", "exit1 p adjusted"])  # untrained: not in the family


def _distillation_rows() -> pd.DataFrame:
    """Two branches, three repetitions: distilled curriculum beats distilled vanilla by 1, 3, 2 points."""
    accuracies = {
        ("repetition", "vanilla"): [0.60, 0.61, 0.62],
        ("repetition", "curriculum"): [0.61, 0.61, 0.64],
        ("distillation", "vanilla"): [0.58, 0.60, 0.60],
        ("distillation", "curriculum"): [0.59, 0.63, 0.62],
    }
    return pd.DataFrame([
        {"stage": stage, "method": method, "backbone": "mobilenet", "dataset": "cifar10", "branch": branch,
         "repetition": repetition, "accuracy": accuracy + shift}
        for branch, shift in ((1, 0.0), (2, 0.05))
        for (stage, method), values in accuracies.items()
        for repetition, accuracy in enumerate(values)
    ])  # fmt: skip


def test_the_distillation_table_gives_each_difference_its_95_percent_interval():
    row = network_runs.distillation_table(_distillation_rows()).iloc[0]
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # differences 1, 3, 2 points: mean 2, sd 1
    assert row["curriculum difference (distilled)"] == pytest.approx(2.0)
    assert [row["curriculum low (distilled)"], row["curriculum high (distilled)"]] == pytest.approx(
        [2.0 - half, 2.0 + half]
    )
    assert row["distillation difference (vanilla)"] == pytest.approx(-5 / 3)  # -2, -1, -2


def test_the_distillation_tests_are_holm_corrected_across_the_cases():
    table = network_runs.distillation_table(_distillation_rows())
    np.testing.assert_allclose(
        table["distillation p adjusted (vanilla)"], holm(table["distillation p (vanilla)"])
    )
    assert (table["distillation p adjusted (vanilla)"] > table["distillation p (vanilla)"]).all()


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
        network_runs.distillation_table(rows)


def test_a_retrained_network_run_replaces_outputs_left_by_a_run_whose_row_was_lost(tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    network_runs.keep_network_outputs("run-a", {"test_final": np.zeros((2, 3))})  # its row never written
    network_runs.keep_network_outputs("run-a", {"test_final": np.ones((2, 3))})  # the run trained again
    np.testing.assert_array_equal(network_runs.network_outputs("run-a")["test_final"], np.ones((2, 3)))

"""Tests for strategies.distilled_exits: distilled branch runs with Table IV's choices, stored and resumed."""

import dataclasses
import itertools

import numpy as np
import pytest
from test_experiments import CASE, _data, _profile

from mecl_utils.networks import backbones
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.stages import case_stages, run_case
from mecl_utils.run.case_networks import case_networks, load_splits
from mecl_utils.strategies import distilled_exits
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
    specs = distilled_exits.distillation_specs(_profile(), CASE, _data(), table_iv_store, DISTILLATION)
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


def test_distilled_runs_leave_out_the_main_comparisons_extra_repetitions(table_iv_store):
    profile = _profile().replace(main_repetitions=4)
    specs = distilled_exits.distillation_specs(profile, CASE, _data(), table_iv_store, DISTILLATION)
    assert sorted({spec.repetition for spec in specs}) == [0, 1]


def test_distilled_runs_are_stored_once_and_resume(table_iv_store, count_fits):
    profile, data = _profile(), distilled_data()
    first = distilled_exits.run_distillation(profile, CASE, data, table_iv_store, DISTILLATION)
    rows = table_iv_store.frame().set_index("run_id").loc[first]
    assert list(rows["stage"]) == ["distillation"] * 4
    assert set(rows["distillation_temperature"]) == {4.0}
    assert rows["accuracy"].between(0, 1).all()
    fits = len(count_fits)
    again = distilled_exits.run_distillation(profile, CASE, data, table_iv_store, DISTILLATION)
    assert again == first and len(count_fits) == fits


def test_a_distilled_run_differs_from_the_plain_run_it_pairs_with(table_iv_store):
    distilled_exits.run_distillation(_profile(), CASE, distilled_data(), table_iv_store, DISTILLATION)
    frame = table_iv_store.frame()
    pick = frame[(frame["method"] == "vanilla") & (frame["repetition"] == 0)]
    plain = pick[pick["stage"] == "repetition"].iloc[0]
    distilled = pick[pick["stage"] == "distillation"].iloc[0]
    assert plain["run_id"] != distilled["run_id"] and plain["init_seed"] == distilled["init_seed"]
    assert plain["train_loss"] != distilled["train_loss"]


def test_distillation_needs_the_table_iv_runs_first(tmp_path):
    empty = ResultsStore(tmp_path / "empty.csv")
    with pytest.raises(ValueError, match="run the protocol first"):
        distilled_exits.distillation_specs(_profile(), CASE, _data(), empty, DISTILLATION)


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
    specs = distilled_exits.distillation_specs(_profile(), CASE, _data(), store, DISTILLATION)
    curriculum = [spec for spec in specs if spec.method == "curriculum"]
    assert {(s.optimizer, s.learning_rate, s.teacher, s.pacing) for s in curriculum} == {
        ("adam", 1e-2, "tiny_cnn_wide", "SSP(300)")
    }


def test_distillation_refuses_a_store_holding_only_stale_rows(tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    store.append(STALE)
    with pytest.raises(ValueError, match=r"not in .*: run the protocol first"):
        distilled_exits.distillation_specs(_profile(), CASE, _data(), store, DISTILLATION)


def test_final_logits_are_the_cases_cached_backbones_and_train_nothing(tmp_path, monkeypatch, count_fits):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    profile = get_profile("smoke").replace(backbone_epochs=1, teacher_epochs=1)
    dataset, splits = load_splits(profile, CASE.dataset)
    networks = case_networks(profile, CASE.backbone, dataset, splits, workers=0)  # what prepare_case trains
    trained = len(count_fits)
    data = _data()
    data = dataclasses.replace(data, identity={**data.identity, "backbone": networks.backbone_key})
    logits = distilled_exits.with_final_logits(profile, CASE, data).final_logits
    assert len(count_fits) == trained  # read back from the cache, nothing trained anew
    np.testing.assert_array_equal(logits["val"], backbones.logits(networks.backbone, splits.val.x))

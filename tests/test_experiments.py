"""The three-stage protocol on synthetic features: stages, shared initialisation, resumption."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mecl_utils.curriculum import pacing
from mecl_utils.protocol import branch_runs, runs, stages
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import Case, CaseData, cases
from mecl_utils.protocol.stages import planned_runs, run_case
from mecl_utils.report.table_iv import table_iv


def _profile():
    return get_profile(
        "smoke",
        branch_epochs=1,
        optimizers=("sgd", "adam"),
        learning_rates=(1e-2,),
        teachers=("self", "tiny_cnn_wide"),
        pacings=("FEP(100)", "SSP(300)"),
        repetitions=2,
    )


def _data():
    rng = np.random.default_rng(0)
    split_sizes = {"train": 96, "val": 30, "hparam": 30, "test": 30}
    labels = {name: rng.integers(0, 3, n) for name, n in split_sizes.items()}
    features = {name: rng.standard_normal((n, 2, 2, 3)).astype("float32") for name, n in split_sizes.items()}
    for name in features:
        features[name][np.arange(len(labels[name])), :, :, labels[name]] += 2.0
    losses = {"self": rng.random(96), "tiny_cnn_wide": rng.random(96)}
    identity = {
        "backbone": "toy-backbone",
        "features": 1,
        "split_index": {name: f"toy-{name}" for name in split_sizes},
        "teachers": {"self": "toy-self", "tiny_cnn_wide": "toy-wide"},
    }
    return CaseData(
        features,
        labels,
        losses,
        num_classes=3,
        layer="block1_out",
        provenance={"data": "toy"},
        identity=identity,
    )


CASE = Case("tiny_cnn", "digits", 1)


def test_cases_enumerate_backbone_dataset_branch():
    assert cases(get_profile("smoke")) == [Case("tiny_cnn", "digits", 1), Case("tiny_cnn", "digits", 2)]
    assert len(cases(get_profile("paper"))) == 16


@pytest.mark.slow
def test_protocol_runs_three_stages_and_resumes_without_duplicates(tmp_path):
    profile, data = _profile(), _data()
    store = ResultsStore(tmp_path / "runs.csv")
    run_case(profile, CASE, data, store)
    frame = store.frame()
    assert len(frame) == planned_runs(profile) == 2 + 4 + 8
    assert frame["stage"].value_counts().to_dict() == {
        "repetition": 8,
        "curriculum_search": 4,
        "vanilla_search": 2,
    }
    assert set(frame.loc[frame["stage"] != "repetition", "eval_split"]) == {"hparam"}
    reps = frame[frame["stage"] == "repetition"]
    assert reps.groupby("repetition")["init_seed"].nunique().tolist() == [1, 1]
    assert reps["init_seed"].nunique() == 2

    skipped = []
    run_case(
        profile, CASE, data, ResultsStore(tmp_path / "runs.csv"), on_run=lambda spec, s: skipped.append(s)
    )
    assert all(skipped) and len(skipped) == 14
    assert len(ResultsStore(tmp_path / "runs.csv")) == 14
    assert len(table_iv(frame)) == 1


@pytest.mark.slow
def test_more_repetitions_train_only_the_new_ones_and_leave_the_old_rows_untouched(tmp_path):
    data, store = _data(), ResultsStore(tmp_path / "runs.csv")
    run_case(dataclasses.replace(_profile(), repetitions=1), CASE, data, store)
    before = store.frame()
    skipped = []
    run_case(_profile(), CASE, data, store, on_run=lambda spec, s: skipped.append((spec.repetition, s)))
    after = store.frame()
    trained = [repetition for repetition, was_skipped in skipped if not was_skipped]
    assert trained == [1, 1, 1, 1]  # the second repetition's four methods, nothing else
    assert len(after) == len(before) + 4
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)


def test_the_main_comparison_trains_its_extra_repetitions_and_the_other_methods_only_theirs(tmp_path):
    data, store = _data(), ResultsStore(tmp_path / "runs.csv")
    run_case(_profile().replace(main_repetitions=3), CASE, data, store)
    reps = store.frame().query("stage == 'repetition'")
    counts = reps.groupby("method")["repetition"].nunique().to_dict()
    assert counts == {"anti": 2, "curriculum": 3, "random": 2, "vanilla": 3}
    row = table_iv(store.frame()).iloc[0]  # each comparison pairs the repetitions both methods have
    assert (row["Curriculum pairs"], row["Anti pairs"], row["Random pairs"]) == (3, 2, 2)


@pytest.mark.slow
def test_an_interrupted_protocol_finishes_with_one_row_per_run(tmp_path):
    profile, data = _profile(), _data()

    class Interrupt(Exception):
        pass

    def stop_after_five(spec, skipped, count=[0]):  # noqa: B006 - a counter across calls
        count[0] += 1
        if count[0] == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_case(profile, CASE, data, ResultsStore(tmp_path / "runs.csv"), on_run=stop_after_five)
    assert len(ResultsStore(tmp_path / "runs.csv")) == 5
    run_case(profile, CASE, data, ResultsStore(tmp_path / "runs.csv"))
    frame = ResultsStore(tmp_path / "runs.csv").frame()
    assert len(frame) == 14 and frame["run_id"].is_unique


@pytest.mark.slow
def test_every_repetition_trains_all_four_methods_fresh_on_seeds_apart_from_the_searches(tmp_path):
    profile, data = _profile(), _data()
    store = ResultsStore(tmp_path / "runs.csv")
    run_case(profile, CASE, data, store)
    frame = store.frame()
    assert "same_training_as" not in frame  # no repetition row reports a search run's training
    reps, searches = frame[frame["stage"] == "repetition"], frame[frame["stage"] != "repetition"]
    assert (reps["seconds"] > 0).all()
    assert reps.groupby("repetition")["method"].nunique().tolist() == [4, 4]
    seed_columns = ["init_seed", "dropout_seed", "sampling_seed", "order_seed"]
    assert not set(searches[seed_columns].to_numpy().ravel()) & set(reps[seed_columns].to_numpy().ravel())
    assert (reps.groupby("repetition")[seed_columns].nunique() == 1).all().all()  # paired within a repetition


@pytest.mark.slow
def test_repetition_runs_keep_their_branch_outputs_for_exit_policies(tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path / "cache"))
    profile, data = _profile().replace(repetitions=1), _data()
    store = ResultsStore(tmp_path / "runs.csv")
    run_case(profile, CASE, data, store, methods=("vanilla", "random"))
    frame = store.frame()
    for row in frame[frame["stage"] == "repetition"].itertuples():
        outputs = branch_runs.branch_outputs(row.run_id)
        assert sorted(outputs) == ["hparam", "test", "val"]
        assert outputs["test"].shape == (30, 3)
        np.testing.assert_allclose(outputs["test"].sum(axis=1), 1, rtol=1e-5)
        assert np.mean(outputs["test"].argmax(axis=1) == data.labels["test"]) == row.accuracy
    search = frame[frame["stage"] != "repetition"]["run_id"].iloc[0]
    with pytest.raises(KeyError, match="only repetition runs keep them"):
        branch_runs.branch_outputs(search)


def _spec(method="curriculum", teacher="self", pacing="FEP(100)", stage="repetition", repetition=0):
    eval_split = "test" if stage == "repetition" else "hparam"
    return runs.RunSpec(stage, CASE, method, "adam", 1e-3, teacher, pacing, repetition, eval_split)


def test_run_ids_change_with_the_training_version(monkeypatch):
    before = _spec().run_id(_profile(), _data())
    monkeypatch.setattr(runs, "TRAINING_VERSION", runs.TRAINING_VERSION + 1)
    assert _spec().run_id(_profile(), _data()) != before


def test_run_ids_follow_the_pacing_parameters_not_its_name(monkeypatch):
    before = _spec().run_id(_profile(), _data())
    monkeypatch.setitem(pacing.TABLE_III, "FEP(100)", pacing.FixedExponential(s=0.1, r=1.9, delta=100))
    assert _spec().run_id(_profile(), _data()) != before


def test_run_ids_follow_the_sampler_options():
    profile, data = _profile(), _data()
    assert _spec().run_id(profile.replace(class_balance=True), data) != _spec().run_id(profile, data)
    vanilla = _spec("vanilla", None, None)
    epochs = profile.replace(vanilla_sampling="epochs")
    assert vanilla.run_id(epochs, data) != vanilla.run_id(profile, data)


def test_run_ids_follow_the_teacher_scores():
    profile, data = _profile(), _data()
    other = dataclasses.replace(data, identity={**data.identity, "teachers": {"self": "retrained"}})
    assert _spec().run_id(profile, other) != _spec().run_id(profile, data)
    random = _spec("random", None)
    assert random.run_id(profile, other) == random.run_id(profile, data)  # random uses no teacher


def test_run_ids_ignore_what_does_not_change_the_run():
    profile, data = _profile(), _data()
    changed = profile.replace(name="mine", repetitions=5, learning_rates=(1e-2, 1e-4), pacings=("FEP(100)",))
    assert _spec().run_id(changed, data) == _spec().run_id(profile, data)


def test_run_ids_differ_between_repetitions_and_the_search():
    profile, data = _profile(), _data()
    ids = {
        _spec(repetition=0).run_id(profile, data),
        _spec(repetition=1).run_id(profile, data),
        _spec(stage="curriculum_search").run_id(profile, data),
    }
    assert len(ids) == 3


def test_stale_rows_are_those_of_another_training_version():
    frame = pd.DataFrame({"run_id": ["a", "b", "c"], "training_version": [2, stages.TRAINING_VERSION, None]})
    assert stages.stale_rows(frame).tolist() == [True, False, True]
    assert stages.stale_rows(pd.DataFrame({"run_id": ["old"]})).tolist() == [True]


def test_run_ids_follow_the_class_balance_of_paced_vanilla():
    paced, data = _profile().replace(vanilla_sampling="paced"), _data()
    vanilla = _spec("vanilla", None, None)
    assert vanilla.run_id(paced.replace(class_balance=True), data) != vanilla.run_id(paced, data)


def test_repetition_run_ids_follow_the_hparam_split_whose_outputs_they_keep():
    profile, data = _profile(), _data()
    split_index = {**data.identity["split_index"], "hparam": "other-indices"}
    other = dataclasses.replace(data, identity={**data.identity, "split_index": split_index})
    assert _spec().eval_split == "test"
    assert _spec().run_id(profile, other) != _spec().run_id(profile, data)


def test_a_retrained_run_replaces_outputs_left_by_a_run_whose_row_was_lost(tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    branch_runs.keep_outputs("lost-row", {"test": np.zeros((2, 3), "float32")})  # stored no row
    retrained = {"test": np.ones((2, 3), "float32")}
    branch_runs.keep_outputs("lost-row", retrained)
    np.testing.assert_array_equal(branch_runs.branch_outputs("lost-row")["test"], retrained["test"])

"""Tests for conditions in the protocol: their runs, identities and training data (protocol.conditions)."""

import dataclasses

import numpy as np
import pytest
from test_experiments import CASE, _data, _profile

from mecl_utils.protocol import branch_runs
from mecl_utils.protocol.conditions import Condition
from mecl_utils.protocol.difficulty_scores import relabelled_scores
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import RunSpec, run_identity
from mecl_utils.protocol.stages import condition_specs, planned_runs, run_case

SPEC = RunSpec("repetition", CASE, "curriculum", "sgd", 1e-2, "self", "FEP(100)", 0, "test")


def _with_logits(data):
    rng = np.random.default_rng(2)
    logits = {name: rng.standard_normal((96, 3)) for name in data.teacher_losses}
    return dataclasses.replace(data, label_outputs=logits)


def test_the_paper_condition_leaves_the_run_identity_as_it_was():
    assert "condition" not in run_identity(SPEC, _profile(), _data())


@pytest.mark.parametrize(
    "condition", [Condition(budget=0.5), Condition(label_noise=0.2), Condition(train_fraction=0.5)]
)
def test_every_condition_axis_changes_the_run_id(condition):
    profile, data = _profile(), _data()
    assert dataclasses.replace(SPEC, condition=condition).run_id(profile, data) != SPEC.run_id(profile, data)


def test_the_stage_a_run_is_called_by_does_not_change_its_id():
    profile, data = _profile(), _data()
    renamed = dataclasses.replace(SPEC, stage="condition")
    assert renamed.run_id(profile, data) == SPEC.run_id(profile, data)


def test_label_noise_flips_the_training_labels_only():
    data = _with_logits(_data())
    spec = dataclasses.replace(SPEC, condition=Condition(label_noise=0.25))
    (_, labels), losses, _, _ = branch_runs._conditioned(spec, _profile(), data)
    assert int((labels != data.labels["train"]).sum()) == 24  # round(0.25 × 96)
    assert np.array_equal(data.labels["val"], _data().labels["val"])  # the case's own labels untouched
    rows = np.arange(96)
    np.testing.assert_allclose(
        losses,
        np.logaddexp.reduce(data.label_outputs["self"], axis=1) - data.label_outputs["self"][rows, labels],
    )


def test_label_noise_without_teacher_logits_names_the_fix():
    spec = dataclasses.replace(SPEC, condition=Condition(label_noise=0.25))
    with pytest.raises(ValueError, match="scores the noisy labels from the teachers' logits"):
        branch_runs._conditioned(spec, _profile(), _data())


def test_a_short_budget_shrinks_the_epochs_and_the_pacing_alike():
    profile = _profile().replace(branch_epochs=4)
    spec = dataclasses.replace(SPEC, condition=Condition(budget=0.5))
    _, _, epochs, pacing = branch_runs._conditioned(spec, profile, _data())
    assert epochs == 2 and pacing.delta == 50  # FEP(100) over half the batches


def test_a_training_fraction_trains_on_a_stratified_subset_with_its_own_scores():
    data = _data()
    spec = dataclasses.replace(SPEC, condition=Condition(train_fraction=0.5))
    (features, labels), losses, _, pacing = branch_runs._conditioned(spec, _profile(), data)
    half_of_each_class = sum(round(count / 2) for count in np.bincount(data.labels["train"]))
    assert len(features) == len(labels) == len(losses) == half_of_each_class
    assert set(losses) <= set(data.teacher_losses["self"])
    assert pacing.delta == pytest.approx(100 * 7 / 12)  # ceil(half / 8) batches an epoch of 12


@pytest.mark.slow
def test_a_profiles_conditions_train_every_method_again_on_the_repetition_seeds(tmp_path):
    profile = _profile().replace(conditions=(Condition(budget=0.5),))
    store = ResultsStore(tmp_path / "runs.csv")
    run_case(profile, CASE, _with_logits(_data()), store)
    frame = store.frame()
    assert len(frame) == planned_runs(profile)
    reps, conditioned = frame[frame["stage"] == "repetition"], frame[frame["stage"] == "condition"]
    assert len(conditioned) == len(reps) == 8 and set(conditioned["condition"]) == {"budget 0.5"}
    seeds = reps.groupby("repetition")["init_seed"].first()
    assert (conditioned["init_seed"] == conditioned["repetition"].map(seeds)).all()


def test_under_the_papers_condition_only_the_scores_runs_are_new():
    profile = _profile().replace(scores=("prediction_depth",))  # no condition: the paper's
    repetitions = [
        RunSpec("repetition", CASE, method, "sgd", 1e-2, teacher, pacing, 0, "test")
        for method, teacher, pacing in (
            ("vanilla", None, None), ("curriculum", "self", "FEP(100)"),
            ("anti", "self", "FEP(100)"), ("random", None, "FEP(100)"),
        )
    ]  # fmt: skip
    data = _data()
    data.identity["teachers"]["prediction_depth"] = "depth-key"
    table_iv_ids = {spec.run_id(profile, data) for spec in repetitions}
    specs = condition_specs(profile, repetitions)
    new = [spec for spec in specs if spec.run_id(profile, data) not in table_iv_ids]
    assert [(spec.method, spec.teacher) for spec in new] == [
        ("curriculum", "prediction_depth"), ("anti", "prediction_depth")
    ]  # fmt: skip


def test_under_label_noise_forgetting_is_counted_against_the_noisy_labels():
    table = np.random.default_rng(3).integers(0, 3, (96, 4))  # a predicted class per sample and epoch
    data = _data()
    data = dataclasses.replace(
        data,
        teacher_losses={**data.teacher_losses, "forgetting_events": np.zeros(96)},
        label_outputs={"forgetting_events": table},
    )
    spec = dataclasses.replace(SPEC, teacher="forgetting_events", condition=Condition(label_noise=0.25))
    (_, labels), scores, _, _ = branch_runs._conditioned(spec, _profile(), data)
    assert np.array_equal(scores, relabelled_scores("forgetting_events", table, labels))
    assert not np.array_equal(scores, relabelled_scores("forgetting_events", table, data.labels["train"]))

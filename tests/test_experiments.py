"""The three-stage protocol on synthetic features: stages, shared initialisation, resumption."""

import numpy as np
import pytest

from mecl_utils import experiments
from mecl_utils.experiments import Case, CaseData, cases, planned_runs, run_case
from mecl_utils.profiles import get_profile
from mecl_utils.results import ResultsStore, table_iv


def _profile():
    return get_profile(
        "smoke",
        branch_epochs=1,
        optimizers=("sgd", "adam"),
        learning_rates=(1e-2,),
        teachers=("self", "tiny_cnn"),
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
    losses = {"self": rng.random(96), "tiny_cnn": rng.random(96)}
    return CaseData(features, labels, losses, num_classes=3, layer="block1_out", provenance={"data": "toy"})


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
def test_repetition_zero_reports_the_identical_chosen_search_training(tmp_path):
    profile, data = _profile(), _data()
    store = ResultsStore(tmp_path / "runs.csv")
    run_case(profile, CASE, data, store)
    frame = store.frame().set_index("run_id")
    reported = frame[frame["same_training_as"].fillna("") != ""]
    assert sorted(reported["method"]) == ["curriculum", "vanilla"]
    assert (reported["repetition"] == 0).all()
    assert (reported["seconds"] == 0).all()
    for run_id, row in reported.iterrows():
        twin = frame.loc[row["same_training_as"]]
        assert twin["stage"] != "repetition" and row["accuracy"] == twin["test_accuracy"]
        spec = experiments.RunSpec(
            "repetition", CASE, row["method"], row["optimizer"], row["learning_rate"],
            row["teacher"] if row["method"] == "curriculum" else None,
            row["pacing"] if row["method"] == "curriculum" else None, 0, "test",
        )  # fmt: skip
        assert spec.run_id(profile, data.provenance) == run_id
        # Training it for real gives the same test accuracy.
        assert experiments.execute(spec, profile, data)["accuracy"] == row["accuracy"]


def test_run_ids_change_with_the_training_version(monkeypatch):
    spec = experiments.RunSpec("vanilla_search", CASE, "vanilla", "adam", 1e-3, None, None, 0, "hparam")
    before = spec.run_id(_profile(), {"data": "toy"})
    monkeypatch.setattr(experiments, "TRAINING_VERSION", experiments.TRAINING_VERSION + 1)
    assert spec.run_id(_profile(), {"data": "toy"}) != before

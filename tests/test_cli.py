"""The command line: the smoke protocol end to end, Table IV as a file, and clear argument errors."""

import argparse
import io

import pandas as pd
import pytest

from mecl_utils import __main__
from mecl_utils.__main__ import main
from mecl_utils.command_line import parse_case, parser, workers
from mecl_utils.training.classifier_wise import TRAINING_VERSION


def test_case_argument_must_name_backbone_dataset_branch():
    with pytest.raises(argparse.ArgumentTypeError, match="backbone/dataset/branch"):
        parse_case("mobilenet-cifar10")


def test_workers_argument_must_be_a_whole_number():
    with pytest.raises(argparse.ArgumentTypeError, match="--workers must be a whole number"):
        workers("-1")


def test_repetitions_replace_the_profiles_and_must_be_positive():
    assert __main__._profile(parser("").parse_args(["run", "--repetitions", "7"])).repetitions == 7
    assert __main__._profile(parser("").parse_args(["run"])).repetitions == 2  # the smoke profile's
    with pytest.raises(SystemExit):
        parser("").parse_args(["run", "--repetitions", "0"])


def test_conditions_and_scores_join_the_profile_from_the_command_line():
    args = parser("").parse_args(
        ["run", "--profile", "book", "--condition", "budget=0.25", "--condition", "label_noise=0.2",
         "--score", "prediction_depth"]
    )  # fmt: skip
    profile = __main__._profile(args)
    assert [c.label for c in profile.conditions] == ["budget 0.25", "label_noise 0.2"]
    assert profile.teachers == ("self", "tiny_cnn") and profile.scores == ("prediction_depth",)


def test_a_condition_that_cannot_be_read_stops_the_parser(capsys):
    with pytest.raises(SystemExit):
        parser("").parse_args(["run", "--condition", "noise=0.2"])
    assert "NAME one of budget, label_noise, train_fraction" in capsys.readouterr().err


def test_stats_without_results_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match="run --profile smoke"):
        __main__.main(["stats", "--results", str(tmp_path / "none.csv")])


def test_table_without_results_says_so(tmp_path, capsys):
    main(["table", "--profile", "smoke", "--results", str(tmp_path / "none.csv")])
    assert "No repetitions finished yet" in capsys.readouterr().out


def test_table_prints_branches_as_whole_numbers(tmp_path, capsys):
    # A whole network's rows have no branch, so the column reads back from the CSV as floats (1.0).
    case = {"stage": "repetition", "backbone": "tiny_cnn", "dataset": "digits", "branch": 1}
    chosen = {"optimizer": "sgd", "learning_rate": 0.1, "teacher": "self", "pacing": "FEP(100)"}
    runs = [
        {**case, **chosen, "method": method, "repetition": repetition, "accuracy": 0.8 + 0.01 * repetition}
        for method in ("vanilla", "curriculum")
        for repetition in range(2)
    ]
    runs.append({**case, "stage": "network_strategy", "branch": None, "method": "vanilla"})
    results = pd.DataFrame(runs).assign(
        run_id=lambda f: f.index.astype(str), training_version=TRAINING_VERSION
    )
    results.to_csv(tmp_path / "results.csv", index=False)
    main(["table", "--profile", "smoke", "--results", str(tmp_path / "results.csv")])
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["backbone", "dataset", "branch"]
    assert row.split()[:3] == ["tiny_cnn", "digits", "1"]


def test_a_case_outside_the_profile_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="not in profile 'smoke'"):
        main(
            [
                "run",
                "--profile",
                "smoke",
                "--case",
                "mobilenet/cifar10/1",
                "--results",
                str(tmp_path / "r.csv"),
            ]
        )


@pytest.mark.slow
def test_smoke_protocol_end_to_end_writes_table_iv(smoke_cache, monkeypatch, capsys):
    # Shares the session's smoke cache with the book build: whichever runs first trains the 32 runs.
    monkeypatch.setenv("MECL_CACHE_DIR", str(smoke_cache))
    main(["run", "--profile", "smoke"])
    results = smoke_cache / "results" / "smoke.csv"
    runs = pd.read_csv(results)
    assert runs["run_id"].is_unique
    # The book's strategies chapter adds its own stages to the same store when it builds first.
    protocol = runs[runs["stage"].isin(["vanilla_search", "curriculum_search", "repetition"])]
    assert len(protocol) == 32
    table = pd.read_csv(smoke_cache / "results" / "smoke-table-iv.csv")
    assert table["branch"].tolist() == [1, 2]
    assert (table["repetitions"] == 2).all()
    assert {"Vanilla mean", "Curriculum mean", "Anti mean", "Random mean", "Curriculum p"} <= set(
        table.columns
    )
    assert "Table IV written to" in capsys.readouterr().out


@pytest.mark.slow
def test_stats_reads_the_smoke_grid_per_case_and_pooled(smoke_cache, monkeypatch, capsys):
    monkeypatch.setenv("MECL_CACHE_DIR", str(smoke_cache))
    main(["run", "--profile", "smoke"])  # trains nothing when the book or another test ran it first
    capsys.readouterr()
    main(["stats", "--profile", "smoke", "--format", "csv", "--min-effect", "1.5"])
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["level"].value_counts().to_dict() == {"case": 6, "pooled": 3}  # 2 branches x 3 methods
    assert set(table.loc[table["level"] == "pooled", "method"]) == {"curriculum", "anti", "random"}
    assert (table.loc[table["level"] == "case", "pairs"] == 2).all()


# The vanilla searches' run ids hash only the profile's settings, the data and the networks' recipes (none
# of them depend on what training found), so they are the same on every machine. A change to the code's
# layout must leave them alone; a change to what a run trains must bump TRAINING_VERSION and this list.
PINNED_VANILLA_SEARCH = {
    (1, "sgd", 0.001): "a6b09d470b2cb3f95fff",
    (1, "sgd", 0.1): "a8dde49ee3194ed39cb9",
    (1, "adam", 0.001): "c4577c33e2de3b277b15",
    (1, "adam", 0.1): "fa337e8b6ff426a631f4",
    (2, "sgd", 0.001): "e9e963fb3ac3dee9ae65",
    (2, "sgd", 0.1): "e056ba336ea07839bae4",
    (2, "adam", 0.001): "15a83a7a048ad55ef6b0",
    (2, "adam", 0.1): "aecdb08c1c318c576091",
}


def test_the_smoke_searches_keep_their_pinned_run_ids(smoke_cache, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(smoke_cache))
    main(["run", "--profile", "smoke"])  # from the session's cache when another test ran it
    runs = pd.read_csv(smoke_cache / "results" / "smoke.csv")
    searches = runs[runs["stage"] == "vanilla_search"].itertuples()
    found = {(int(row.branch), row.optimizer, float(row.learning_rate)): row.run_id for row in searches}
    assert found == PINNED_VANILLA_SEARCH


@pytest.mark.slow
def test_runs_of_older_training_code_are_rerun_and_said_so_once(smoke_cache, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MECL_CACHE_DIR", str(smoke_cache))
    results = tmp_path / "old.csv"
    old = {
        "stage": "repetition",
        "backbone": "tiny_cnn",
        "dataset": "digits",
        "branch": 1,
        "method": "vanilla",
    }
    pd.DataFrame([{"run_id": "from-version-2", **old, "repetition": 0, "accuracy": 0.99}]).to_csv(results)
    args = ["run", "--profile", "smoke", "--case", "tiny_cnn/digits/1", "--method", "vanilla", "random"]
    main([*args, "--results", str(results)])
    out = capsys.readouterr().out
    assert out.count("stored by older training code") == 1
    assert "1 runs in" in out.split("stored by older")[0].splitlines()[-1]
    main([*args, "--results", str(results)])  # nothing left to train: nothing to say
    assert "older training code" not in capsys.readouterr().out
    main(["table", "--profile", "smoke", "--results", str(results)])
    table = capsys.readouterr().out
    assert "old_net" not in table and "Random mean" in table  # the old row is not in Table IV


def test_exits_without_repetitions_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match="run --profile smoke"):
        main(["exits", "--profile", "smoke", "--results", str(tmp_path / "none.csv")])


@pytest.mark.slow
def test_exits_prints_the_budget_table_of_the_smoke_grid(smoke_cache, monkeypatch, capsys):
    monkeypatch.setenv("MECL_CACHE_DIR", str(smoke_cache))
    main(["run", "--profile", "smoke"])  # from the session's cache when another test ran it
    capsys.readouterr()
    main(["exits", "--profile", "smoke", "--budget", "0.5", "1.0"])
    out = capsys.readouterr().out
    assert "budget 50 %" in out and "budget 100 %" in out and "paired p" in out
    assert out.count("curriculum") == 2  # one row in each table


def test_missing_data_ends_in_one_line_without_a_traceback(tmp_path):
    args = ["run", "--profile", "book", "--data-dir", str(tmp_path), "--results", str(tmp_path / "r.csv")]
    with pytest.raises(SystemExit, match=r"^error: No cifar10 files in .*build_cifar10\.py") as stop:
        main(args)
    assert "--verbose" in str(stop.value)


def test_missing_data_with_verbose_keeps_the_traceback(tmp_path):
    from mecl_utils.networks.data import DataNotFoundError

    args = ["run", "--profile", "book", "--data-dir", str(tmp_path), "--results", str(tmp_path / "r.csv")]
    with pytest.raises(DataNotFoundError):
        main([*args, "--verbose"])


def test_a_corrupt_results_file_is_one_line_too(tmp_path):
    results = tmp_path / "r.csv"
    results.write_bytes(b"\xff\xfe not a csv")
    with pytest.raises(SystemExit, match=r"^error: cannot read the results store"):
        main(["table", "--profile", "smoke", "--results", str(results)])


def _store_of_two_feature_modes(path):
    rows = [
        {"run_id": f"{mode}-{method}-{repetition}", "stage": "repetition", "backbone": "tiny_cnn",
         "dataset": "digits", "branch": 1, "method": method, "repetition": repetition,
         "accuracy": base + 0.01 * repetition, "optimizer": "adam", "learning_rate": 1e-3, "teacher": "",
         "pacing": "", "feature_mode": mode, "training_version": TRAINING_VERSION}
        for mode, base in (("memory", 0.8), ("shards", 0.6))
        for method in ("vanilla", "random")
        for repetition in range(3)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_table_refuses_two_feature_modes_and_names_the_flag_that_picks_one(tmp_path):
    results = _store_of_two_feature_modes(tmp_path / "r.csv")
    with pytest.raises(SystemExit, match=r"feature_mode.*--where feature_mode=memory"):
        main(["table", "--results", str(results)])


def test_table_where_keeps_one_feature_mode(tmp_path, capsys):
    results = _store_of_two_feature_modes(tmp_path / "r.csv")
    main(["table", "--results", str(results), "--where", "feature_mode=shards"])
    table = capsys.readouterr().out
    assert " 61.0 " in table and " 81.0 " not in table  # the shards runs' vanilla mean, alone

"""The results store (atomic, resumable) and Table IV."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mecl_utils.protocol.results import ResultsStore, default_results_path
from mecl_utils.report.table_iv import paper_table_iv, table_iv
from mecl_utils.statistics import holm, paired_difference


def test_store_appends_and_reloads(tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    store.append({"run_id": "a", "accuracy": 0.5})
    store.append({"run_id": "b", "accuracy": 0.7})
    reloaded = ResultsStore(tmp_path / "runs.csv")
    assert len(reloaded) == 2 and "a" in reloaded and "c" not in reloaded
    assert reloaded.frame()["accuracy"].tolist() == [0.5, 0.7]


def test_a_profiles_default_store_is_its_name_under_the_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    assert default_results_path("smoke") == tmp_path / "results" / "smoke.csv"


def test_store_refuses_a_duplicate_run(tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    store.append({"run_id": "a"})
    with pytest.raises(ValueError, match="already in"):
        store.append({"run_id": "a"})


def test_store_leaves_no_temporary_files(tmp_path):
    ResultsStore(tmp_path / "runs.csv").append({"run_id": "a"})
    assert [p.name for p in tmp_path.iterdir() if p.name != "runs.csv.lock"] == ["runs.csv"]


def test_a_foreign_csv_is_rejected_with_a_fix(tmp_path):
    (tmp_path / "runs.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="no run_id column"):
        ResultsStore(tmp_path / "runs.csv")


def _repetitions(vanilla, curriculum):
    rows = []
    for rep, (v, c) in enumerate(zip(vanilla, curriculum, strict=True)):
        for method, acc in (("vanilla", v), ("curriculum", c), ("anti", v), ("random", c)):
            rows.append(
                {"stage": "repetition", "backbone": "tiny_cnn", "dataset": "digits", "branch": 1,
                 "method": method, "repetition": rep, "accuracy": acc, "optimizer": "adam",
                 "learning_rate": 1e-3, "teacher": "self", "pacing": "FEP(100)"}
            )  # fmt: skip
    return pd.DataFrame(rows)


def _out_of_order(frame):
    """Curriculum's rows listed last repetition first: pairing by row position would pair wrong runs."""
    curriculum = frame["method"] == "curriculum"
    return pd.concat([frame[~curriculum], frame[curriculum].iloc[::-1]], ignore_index=True)


def test_table_iv_means_stds_best_and_paired_p():
    vanilla, curriculum = [0.80, 0.82, 0.81], [0.83, 0.84, 0.86]  # differences 3, 2, 5 by repetition
    row = table_iv(_out_of_order(_repetitions(vanilla, curriculum))).iloc[0]
    assert row["Vanilla mean"] == pytest.approx(81.0)
    assert row["Curriculum mean"] == pytest.approx(84.333333)
    assert row["Curriculum std"] == pytest.approx(np.std([83, 84, 86], ddof=1))
    assert row["Curriculum p"] == pytest.approx(stats.ttest_rel([83, 84, 86], [80, 82, 81]).pvalue)
    assert np.isnan(row["Anti p"])  # identical to vanilla: no test
    assert row["best"] == "Curriculum" and row["repetitions"] == 3
    assert (row["teacher"], row["pacing"]) == ("self", "FEP(100)")


def test_table_iv_gives_each_difference_with_its_interval():
    row = table_iv(_repetitions([0.80, 0.82, 0.81], [0.83, 0.84, 0.86])).iloc[0]
    expected = paired_difference(pd.Series([80.0, 82.0, 81.0]), pd.Series([83.0, 84.0, 86.0]))
    assert row["Curriculum difference"] == pytest.approx(expected.mean)
    assert (row["Curriculum low"], row["Curriculum high"]) == pytest.approx((expected.low, expected.high))
    assert row["Curriculum pairs"] == 3


def test_table_iv_holm_corrects_the_secondary_comparisons_only():
    frame = _repetitions([0.80, 0.82, 0.81], [0.83, 0.84, 0.86])
    anti = frame["method"] == "anti"
    frame.loc[anti, "accuracy"] = frame.loc[anti, "accuracy"] + [0.010, 0.030, 0.015]
    row = table_iv(frame).iloc[0]
    raw = [
        stats.ttest_rel([81, 85, 82.5], [80, 82, 81]).pvalue,  # anti
        stats.ttest_rel([83, 84, 86], [80, 82, 81]).pvalue,  # random (equal to curriculum here)
    ]
    assert (row["Anti p"], row["Random p"]) == pytest.approx(tuple(holm(raw)))
    assert row["Curriculum p"] == pytest.approx(raw[1])  # the primary comparison, uncorrected


def test_table_iv_without_curriculum_takes_the_settings_from_the_methods_run():
    frame = _repetitions([0.80, 0.82, 0.81], [0.83, 0.84, 0.86])
    frame = frame[
        frame["method"].isin(["vanilla", "random"])
    ]  # python -m mecl_utils run --method vanilla random
    frame.loc[frame["method"] == "random", "teacher"] = ""
    row = table_iv(frame).iloc[0]
    assert (row["optimizer"], row["teacher"], row["pacing"]) == ("adam", "", "FEP(100)")
    assert "Curriculum mean" not in row and row["best"] == "Random"


def test_table_iv_needs_repetition_rows():
    with pytest.raises(ValueError, match="no repetition rows"):
        table_iv(pd.DataFrame({"stage": ["vanilla_search"]}))


def test_paper_table_iv_has_the_16_cases():
    paper = paper_table_iv()
    assert len(paper) == 16
    first = paper.iloc[0]
    assert (first["Vanilla mean"], first["Anti mean"], first["best"]) == (71.71, 71.75, "Anti")
    assert (
        paper.set_index(["backbone", "dataset", "branch"]).loc[("densenet201", "cifar10", 2), "optimizer"]
        == "sgd"
    )


def test_paired_p_is_undefined_when_the_differences_do_not_vary():
    row = table_iv(_repetitions([0.80, 0.82, 0.81], [0.81, 0.83, 0.82])).iloc[0]
    assert np.isnan(row["Curriculum p"])


WRITER = """
import sys, time
from pathlib import Path
from mecl_utils.protocol.results import ResultsStore
path, name, rows, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = ResultsStore(path)  # opened before the other writer appends anything
Path(f"{gate}-{name}").touch()  # ready
while not gate.exists():
    time.sleep(0.01)
for k in range(rows):
    store.append({"run_id": f"{name}-{k}", "accuracy": k})
"""


def test_two_processes_appending_at_once_keep_every_row(tmp_path):
    rows, gate, names = 25, tmp_path / "go", ("notebook", "command")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / "runs.csv"), name, str(rows), str(gate)]
        )
        for name in names
    ]
    # Both open the empty store first (or one fails, and the exit codes below say so).
    while not all(Path(f"{gate}-{name}").exists() for name in names) and None in [w.poll() for w in writers]:
        time.sleep(0.01)
    gate.touch()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    frame = ResultsStore(tmp_path / "runs.csv").frame()
    assert len(frame) == 2 * rows and frame["run_id"].is_unique


def test_a_store_sees_the_rows_another_process_appended(tmp_path):
    mine = ResultsStore(tmp_path / "runs.csv")
    mine.append({"run_id": "a"})
    ResultsStore(tmp_path / "runs.csv").append({"run_id": "b"})  # another writer, with its own copy
    assert "b" in mine and len(mine) == 2
    with pytest.raises(ValueError, match="already in"):
        mine.append({"run_id": "b"})


def _two_feature_modes():
    memory = _repetitions([0.80, 0.82, 0.81], [0.83, 0.84, 0.86]).assign(feature_mode="memory")
    shards = _repetitions([0.60, 0.62, 0.61], [0.63, 0.64, 0.66]).assign(feature_mode="shards")
    return pd.concat([memory, shards], ignore_index=True)


def test_table_iv_refuses_two_feature_modes_that_share_repetition_numbers():
    with pytest.raises(ValueError, match=r"feature_mode: 'memory', 'shards'.*--where feature_mode=memory"):
        table_iv(_two_feature_modes())


def test_one_feature_mode_of_two_gives_its_own_three_repetitions():
    frame = _two_feature_modes()
    row = table_iv(frame[frame["feature_mode"] == "shards"]).iloc[0]
    assert row["repetitions"] == 3 and row["Vanilla mean"] == pytest.approx(61.0)


def test_table_iv_refuses_rows_that_repeat_a_repetition_and_names_what_differs():
    frame = _repetitions([0.80, 0.82, 0.81], [0.83, 0.84, 0.86]).assign(init_seed=1)
    frame = pd.concat([frame, frame.assign(init_seed=2, accuracy=0.5)], ignore_index=True)
    with pytest.raises(ValueError, match=r"share a case, method and repetition.*differ in init_seed"):
        table_iv(frame)


def test_a_missing_teacher_and_an_empty_one_are_one_configuration():
    frame = _repetitions([0.80, 0.82, 0.81], [0.83, 0.84, 0.86])
    frame["teacher"] = frame["teacher"].astype(object)
    frame.loc[frame["method"] == "vanilla", "teacher"] = ["", np.nan, ""]  # appended, then read back from CSV
    assert table_iv(frame).iloc[0]["repetitions"] == 3

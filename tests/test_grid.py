"""Cases side by side (run.grid): the order stages start in, and the same rows as case after case."""

import collections

import pytest
from test_experiments import _data, _profile

from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import Case
from mecl_utils.protocol.stages import run_case
from mecl_utils.run.grid import held_bytes, run_cases

PROFILE = _profile().replace(repetitions=1)
CASES = [Case("tiny_cnn", "digits", 1), Case("tiny_cnn", "digits", 2)]


class RecordingEngine:
    """Trains here, one run after another, but lets the driver keep cases in flight as Ray does."""

    in_process = False

    def __init__(self):
        self.started: list[tuple[int, str]] = []
        self._pending = collections.deque()

    def start_runs(self, task, specs, *shared):
        self.started.append((specs[0].case.branch, specs[0].stage))
        self._pending.extend((task, spec, shared) for spec in specs)

    def finished_runs(self):
        while self._pending:
            task, spec, shared = self._pending.popleft()
            yield spec, task(spec, *shared)


def _accuracies(store):
    return store.frame().set_index("run_id")["accuracy"].sort_index().to_dict()


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.mark.slow
def test_cases_side_by_side_store_the_rows_case_after_case_does(data, tmp_path):
    engine, side_by_side, reported = RecordingEngine(), ResultsStore(tmp_path / "side.csv"), []
    run_cases(
        PROFILE, CASES, lambda case: data, side_by_side, engine=engine,
        on_run=lambda spec, run_id, skipped: reported.append(run_id),
    )  # fmt: skip
    assert engine.started == [  # the second case starts while the first is still running
        (1, "vanilla_search"),
        (2, "vanilla_search"),
        (1, "curriculum_search"),
        (2, "curriculum_search"),
        (1, "repetition"),
        (2, "repetition"),
    ]
    in_turn = ResultsStore(tmp_path / "in_turn.csv")
    for case in CASES:
        run_case(PROFILE, case, data, in_turn)
    assert _accuracies(side_by_side) == _accuracies(in_turn)
    assert sorted(reported) == sorted(_accuracies(in_turn))


@pytest.mark.slow
def test_a_case_opens_beside_another_only_where_both_fit_the_memory_budget(data, tmp_path):
    engine = RecordingEngine()
    budget = int(1.5 * held_bytes(data))
    store = ResultsStore(tmp_path / "runs.csv")
    run_cases(PROFILE, CASES, lambda case: data, store, engine=engine, memory_bytes=budget)
    assert [branch for branch, _ in engine.started] == [1, 1, 1, 2, 2, 2]


@pytest.mark.slow
def test_finished_cases_are_skipped_and_reported(data, tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    run_case(PROFILE, CASES[0], data, store)
    engine, skipped = RecordingEngine(), []
    run_cases(
        PROFILE, CASES, lambda case: data, store, engine=engine,
        on_run=lambda spec, run_id, was_skipped: skipped.append(was_skipped),
    )  # fmt: skip
    assert [branch for branch, _ in engine.started] == [2, 2, 2]
    assert skipped.count(True) == skipped.count(False) == len(store) // 2

"""How a fine-tune runs: steps per call of the compiled function, and eager for the shortest."""

from mecl_utils.training import execution


def test_a_network_is_compiled_for_no_more_steps_per_call_than_an_epoch_has():
    assert execution.steps_per_execution(20, 32) == 1  # the miniature paper grid: one step an epoch
    assert execution.steps_per_execution(40, 8) == 5
    assert execution.steps_per_execution(20_000, 32) == execution.STEPS_PER_EXECUTION


def test_a_fine_tune_of_a_few_steps_runs_eagerly():
    assert execution.runs_eagerly(20, 32, epochs=1)  # the miniature paper grid: one step in all
    assert execution.runs_eagerly(40, 8, epochs=1)  # 5 steps
    assert not execution.runs_eagerly(40, 8, epochs=2)  # 10 steps
    assert not execution.runs_eagerly(1_138, 32, epochs=1)  # the smoke backbone's 36 steps an epoch

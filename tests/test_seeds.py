"""Seed streams: one root, named children that never coincide."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mecl_utils.seeds import RUN_STREAMS, run_seeds, seed_sequence, stream_seed


def test_a_stream_is_a_pure_function_of_root_and_path():
    # Interpreters with other string-hash seeds draw the same seed: nothing of one process enters it.
    script = "from mecl_utils.seeds import stream_seed; print(stream_seed(0, 'run', 'a', 1))"
    elsewhere = {
        int(subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": hash_seed},
                           capture_output=True, text=True, check=True).stdout)
        for hash_seed in ("1", "2")
    }  # fmt: skip
    assert elsewhere == {stream_seed(0, "run", "a", 1)}
    assert stream_seed(0, "run", "a", 1) != stream_seed(1, "run", "a", 1)


def test_a_name_and_a_number_are_different_path_parts():
    assert stream_seed(0, "2") != stream_seed(0, 2)


def test_the_streams_of_one_run_all_differ():
    seeds = run_seeds(0, "tiny_cnn/digits/branch 1", "repetition", 0)
    assert len({getattr(seeds, stream) for stream in RUN_STREAMS}) == len(RUN_STREAMS)


def test_searches_and_repetitions_never_share_a_seed():
    label = "tiny_cnn/digits/branch 1"
    search = {v for r in range(3) for v in vars(run_seeds(0, label, "search", r)).values()}
    reported = {v for r in range(5) for v in vars(run_seeds(0, label, "repetition", r)).values()}
    assert not search & reported


def test_child_streams_do_not_replay_each_other():
    # With integer seeds default_rng(s) and default_rng([s, 0]) are one generator; named children are not.
    assert np.random.default_rng(5).random() == np.random.default_rng([5, 0]).random()
    first = np.random.default_rng(seed_sequence(5, "order")).random(4)
    assert not np.array_equal(first, np.random.default_rng(seed_sequence(5, "sampling")).random(4))


def test_seeds_fit_every_backend():
    assert all(0 <= stream_seed(0, "x", i) < 2**31 for i in range(100))


def test_unknown_group_is_rejected():
    with pytest.raises(ValueError, match="search, repetition"):
        run_seeds(0, "case", "final", 0)

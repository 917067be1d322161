"""Seed streams: every random choice of the protocol drawn from one root seed, one named stream each.

The paper's protocol (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. III) has several independent sources of
randomness: the data splits, the networks' initial weights and shuffling, each branch's initial weights
(shared by the four methods of a repetition), dropout, the order of random curriculum (and the tie-break of
the teacher's order), and the sampling of the mini-batches. Each gets its own stream, a child of one
``numpy.random.SeedSequence`` spawned from the profile's root seed under a *path of names*, e.g.
``("run", "mobilenet/cifar10/branch 1", "repetition", 2, "dropout")``. Different paths give statistically
independent streams, so no two of them can coincide by construction, unlike ad-hoc integer seeds: with
NumPy, ``default_rng(s)`` and ``default_rng([s, 0])`` are the same generator.

The hyper-parameter searches and the reported repetitions live under different paths ("search" and
"repetition"), so no reported run shares a seed with a search run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

__all__ = ["RUN_STREAMS", "RunSeeds", "run_seeds", "seed_sequence", "stream_seed"]

RUN_STREAMS = ("init", "dropout", "sampling", "order")
SEED_GROUPS = ("search", "repetition")


def _word(part: str | int) -> int:
    """A path component as a 32-bit word: names hashed, so "2" (a name) and 2 (a number) differ."""
    if isinstance(part, bool) or not isinstance(part, (str, int, np.integer)):
        raise TypeError(f"a seed path holds names and whole numbers, got {part!r}")
    text = f"{type(part).__name__ if isinstance(part, str) else 'int'}:{part}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def seed_sequence(root: int, *path: str | int) -> np.random.SeedSequence:
    """The stream named by ``path`` under ``root``: pass it to ``np.random.default_rng``."""
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or root < 0:
        raise ValueError(f"the root seed must be a whole number >= 0, got {root!r}")
    return np.random.SeedSequence(int(root), spawn_key=tuple(_word(part) for part in path))


def stream_seed(root: int, *path: str | int) -> int:
    """An integer seed for the stream ``path`` (for APIs that take an int: Keras, TensorFlow).

    31 bits, so it is a valid seed for every backend and for Keras' seed generators.
    """
    return int(seed_sequence(root, *path).generate_state(1, np.uint32)[0] >> 1)


@dataclass(frozen=True)
class RunSeeds:
    """The seeds of one branch run, one per stream."""

    init: int  # the branch's initial weights: shared by the four methods of one repetition
    dropout: int  # the dropout masks during training
    sampling: int  # which samples of the pacing window each batch draws
    order: int  # random curriculum's permutation, and the tie-break of the teacher's order


def run_seeds(root: int, case_label: str, group: str, repetition: int) -> RunSeeds:
    """The seeds of repetition ``repetition`` of ``group`` ("search" or "repetition") of one case.

    They depend on neither the method nor the hyper-parameters: every run of one repetition (and every run
    of the searches) starts from the same weights and sees the same randomness, so the comparisons pair.
    """
    if group not in SEED_GROUPS:
        raise ValueError(f"unknown seed group {group!r}; valid groups: {', '.join(SEED_GROUPS)}")
    return RunSeeds(
        **{stream: stream_seed(root, "run", case_label, group, repetition, stream) for stream in RUN_STREAMS}
    )

"""Pacing functions: which fraction of the difficulty-ordered training data batch t may draw from.

Implements every pacing function of Bakhtiarnia, Zhang & Iosifidis (2021):

- Sec. II-B, Eq. (2)-(5), the continuous functions ``linear``, ``root``, ``root_p`` and ``geometric``
  (parameters λ0 = initial fraction, T_f = batch at which the whole data set is first used);
- Sec. II-B, the discrete *baby-step* (buckets added cumulatively) and *one-pass* (only the newest bucket)
  schedules;
- Sec. III, Eq. (6), fixed exponential pacing λ(t) = min(s·r^⌊t/δ⌋, 1), and Eq. (7), single step pacing
  (s for t < δ, 1 afterwards), both from Hacohen & Weinshall (2019);
- Table III, the four presets the paper searches over: FEP(100), FEP(200), FEP(300), SSP(300);
- ``FULL``, λ ≡ 1: every batch draws from the whole training set. Vanilla training goes through the same
  sampler with it, so the four methods differ only in their window, not in how a batch is drawn.

Root-p (Eq. 4) is printed in the paper with a square root; its source (Platanios et al., 2019) takes the
p-th root, so that p = 2 gives the root function of Eq. (3). We implement the p-th root.

The plain functions take the batch index ``t`` as a scalar or an array of non-negative integers and return a
float or a float array. The small frozen dataclasses wrap them for the sampler: ``window(t)`` gives the
fractions [lo, hi) of the ordered data that batch t draws from (lo = 0 for everything but one-pass).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FULL",
    "TABLE_III",
    "BabyStep",
    "Constant",
    "FixedExponential",
    "Geometric",
    "Linear",
    "OnePass",
    "Pacing",
    "Root",
    "RootP",
    "SingleStep",
    "baby_step",
    "first_batch_reaching",
    "fixed_exponential",
    "geometric",
    "linear",
    "one_pass_window",
    "parameters",
    "preset",
    "root",
    "root_p",
    "single_step",
]


# λ within this distance of a target counts as reaching it: 2**(a - a/T·T) is not always exactly 1.
_TOLERANCE = 1e-12


# --- parameter checks -----------------------------------------------------------------------------


def _check_fraction(name: str, value: float) -> None:
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number in (0, 1], got {value!r}")
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1] (a fraction of the training data), got {value}")


def _check_positive(name: str, value: float, meaning: str) -> None:
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive number ({meaning}), got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0 ({meaning}), got {value}")


def _check_positive_int(name: str, value: int, meaning: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer ({meaning}), got {value!r}")


def _as_batch_index(t):
    """Return t as a float64 array (0-d for scalars) after checking it is a non-negative batch index."""
    arr = np.asarray(t)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"t must be a batch index (non-negative integer or array of them), got {t!r}")
    arr = arr.astype(np.float64)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"t must be >= 0 (the index of the current batch, counted from 0), got {t!r}")
    return arr


def _out(values: np.ndarray, t):
    """Scalars in, float out; arrays in, arrays out."""
    return float(values) if np.ndim(t) == 0 else values


# --- Eq. (2)-(5): continuous pacing ---------------------------------------------------------------


def linear(t, lambda0: float, t_full: float):
    """Eq. (2): λ(t) = min(1, λ0 + (1 - λ0)/T_f · t)."""
    _check_fraction("lambda0", lambda0)
    _check_positive("t_full", t_full, "T_f, the batch at which all data is first used")
    tt = _as_batch_index(t)
    return _out(np.minimum(1.0, lambda0 + (1.0 - lambda0) / t_full * tt), t)


def root_p(t, lambda0: float, t_full: float, p: float):
    """Eq. (4), p-th root (Platanios et al., 2019): λ(t) = min(1, (λ0^p + (1 - λ0^p)/T_f · t)^(1/p))."""
    _check_fraction("lambda0", lambda0)
    _check_positive("t_full", t_full, "T_f, the batch at which all data is first used")
    _check_positive("p", p, "the order of the root; p = 2 is Eq. (3)")
    tt = _as_batch_index(t)
    base = lambda0**p + (1.0 - lambda0**p) / t_full * tt
    return _out(np.minimum(1.0, base ** (1.0 / p)), t)


def root(t, lambda0: float, t_full: float):
    """Eq. (3): λ(t) = min(1, sqrt(λ0² + (1 - λ0²)/T_f · t)), i.e. root-p with p = 2."""
    return root_p(t, lambda0, t_full, 2)


def geometric(t, lambda0: float, t_full: float):
    """Eq. (5): λ(t) = min(1, 2^(log2 λ0 - log2 λ0 / T_f · t))."""
    _check_fraction("lambda0", lambda0)
    _check_positive("t_full", t_full, "T_f, the batch at which all data is first used")
    tt = _as_batch_index(t)
    log0 = math.log2(lambda0)
    return _out(np.exp2(np.minimum(0.0, log0 - log0 / t_full * tt)), t)


# --- Eq. (6)-(7): the pacing functions of the experiments -----------------------------------------


def fixed_exponential(t, s: float, r: float, delta: float):
    """Eq. (6): λ(t) = min(s · r^⌊t/δ⌋, 1)."""
    _check_fraction("s", s)
    if not isinstance(r, (int, float, np.integer, np.floating)) or isinstance(r, bool):
        raise TypeError(f"r must be a number > 1 (the growth factor of the data), got {r!r}")
    if not r > 1:
        raise ValueError(f"r must be > 1 (the factor by which the data grows every δ batches), got {r}")
    _check_positive("delta", delta, "δ, the number of batches between increases")
    steps = np.floor(_as_batch_index(t) / delta)
    # Past log_r(1/s) steps λ is 1; clipping the exponent keeps r**steps finite for huge t.
    cap = math.ceil(math.log(1.0 / s, r)) + 1
    return _out(np.minimum(s * np.power(float(r), np.minimum(steps, cap)), 1.0), t)


def single_step(t, s: float, delta: float):
    """Eq. (7): λ(t) = s for t < δ, and 1 for t ≥ δ."""
    _check_fraction("s", s)
    _check_positive("delta", delta, "δ, the batch at which the whole data set is introduced")
    tt = _as_batch_index(t)
    return _out(np.where(tt < delta, float(s), 1.0), t)


# --- Sec. II-B: discrete schedules on buckets -----------------------------------------------------


def _bucket(t, n_buckets: int, delta: float) -> np.ndarray:
    _check_positive_int("n_buckets", n_buckets, "how many difficulty buckets the ordered data is cut into")
    _check_positive("delta", delta, "δ, the number of batches spent on each bucket")
    return np.minimum(np.floor(_as_batch_index(t) / delta), n_buckets - 1)


def baby_step(t, n_buckets: int, delta: float):
    """Baby step: a new bucket joins the pool every δ batches; λ(t) = min(⌊t/δ⌋ + 1, K) / K."""
    k = _bucket(t, n_buckets, delta)
    return _out((k + 1.0) / n_buckets, t)


def one_pass_window(t, n_buckets: int, delta: float):
    """One-pass: only the newest bucket is used; returns the window (lo, hi) as fractions of the data.

    After the last bucket has been introduced (t ≥ (K-1)·δ) training stays on it.
    """
    k = _bucket(t, n_buckets, delta)
    return _out(k / n_buckets, t), _out((k + 1.0) / n_buckets, t)


# --- Pacing objects for the sampler ---------------------------------------------------------------


class Pacing:
    """Shared behaviour: ``pacing(t)`` is λ(t); ``window(t)`` the fractions [lo, hi) batch t draws from."""

    def __call__(self, t):
        raise NotImplementedError

    def window(self, t):
        hi = self(t)
        return (0.0 if np.ndim(t) == 0 else np.zeros_like(hi)), hi

    def __post_init__(self):
        self(0)  # validates the parameters with the function's own error messages


@dataclass(frozen=True)
class Linear(Pacing):
    """Eq. (2)."""

    lambda0: float
    t_full: float

    def __call__(self, t):
        return linear(t, self.lambda0, self.t_full)


@dataclass(frozen=True)
class Root(Pacing):
    """Eq. (3)."""

    lambda0: float
    t_full: float

    def __call__(self, t):
        return root(t, self.lambda0, self.t_full)


@dataclass(frozen=True)
class RootP(Pacing):
    """Eq. (4), with the p-th root."""

    lambda0: float
    t_full: float
    p: float

    def __call__(self, t):
        return root_p(t, self.lambda0, self.t_full, self.p)


@dataclass(frozen=True)
class Geometric(Pacing):
    """Eq. (5)."""

    lambda0: float
    t_full: float

    def __call__(self, t):
        return geometric(t, self.lambda0, self.t_full)


@dataclass(frozen=True)
class FixedExponential(Pacing):
    """Eq. (6), fixed exponential pacing (FEP)."""

    s: float
    r: float
    delta: float

    def __call__(self, t):
        return fixed_exponential(t, self.s, self.r, self.delta)


@dataclass(frozen=True)
class SingleStep(Pacing):
    """Eq. (7), single step pacing (SSP)."""

    s: float
    delta: float

    def __call__(self, t):
        return single_step(t, self.s, self.delta)


@dataclass(frozen=True)
class BabyStep(Pacing):
    """Baby step: K buckets, a new one added every δ batches."""

    n_buckets: int
    delta: float

    def __call__(self, t):
        return baby_step(t, self.n_buckets, self.delta)


@dataclass(frozen=True)
class OnePass(Pacing):
    """One-pass: K buckets, each used alone for δ batches, the last one kept afterwards."""

    n_buckets: int
    delta: float

    def __call__(self, t):
        return self.window(t)[1]

    def window(self, t):
        return one_pass_window(t, self.n_buckets, self.delta)


@dataclass(frozen=True)
class Constant(Pacing):
    """λ(t) = ``fraction`` for every batch; ``Constant(1.0)`` is vanilla training's window."""

    fraction: float = 1.0

    def __post_init__(self):
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")

    def __call__(self, t):
        t = _as_batch_index(t)
        return _out(np.full(np.shape(t), float(self.fraction)), t)


FULL = Constant(1.0)


def parameters(schedule: Pacing) -> dict:
    """What defines a pacing function: its kind and parameter values (part of every run's identity).

    Not its name: a preset redefined under an old name is a different schedule.
    """
    if not isinstance(schedule, Pacing) or not dataclasses.is_dataclass(schedule):
        raise TypeError(f"expected a pacing function such as pacing.preset('FEP(100)'), got {schedule!r}")
    return {"function": type(schedule).__name__, **dataclasses.asdict(schedule)}


# Table III of the paper: the pacing grid of the hyper-parameter search.
TABLE_III: dict[str, Pacing] = {
    "FEP(100)": FixedExponential(s=0.04, r=1.9, delta=100),
    "FEP(200)": FixedExponential(s=0.04, r=1.9, delta=200),
    "FEP(300)": FixedExponential(s=0.04, r=1.9, delta=300),
    "SSP(300)": SingleStep(s=0.30, delta=300),
}


def first_batch_reaching(schedule: Pacing, fraction: float = 1.0) -> int:
    """The first batch index t with λ(t) ≥ ``fraction`` (by default: when the whole data set is in use).

    Every pacing function here is non-decreasing in t, so a doubling search followed by bisection finds it.
    """
    _check_fraction("fraction", fraction)
    target = fraction - _TOLERANCE
    if schedule(0) >= target:
        return 0
    hi = 1
    while schedule(hi) < target:
        hi *= 2
        if hi > 2**62:
            raise ValueError(f"{schedule!r} never reaches λ = {fraction}")
    lo = hi // 2  # schedule(lo) < target <= schedule(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if schedule(mid) >= target else (mid, hi)
    return hi


def preset(name: str) -> Pacing:
    """The pacing function of Table III with this abbreviation, e.g. ``preset("FEP(100)")``."""
    try:
        return TABLE_III[name]
    except KeyError:
        valid = ", ".join(TABLE_III)
        raise ValueError(f"unknown pacing preset {name!r}; valid names (paper Table III): {valid}") from None

"""Pacing functions against literal values of Eq. (2)-(7) and Table III."""

import numpy as np
import pytest

from mecl_utils.curriculum import pacing

FEP_T = [0, 299, 300, 600, 1799, 1800, 10**6]
# 0.04 · 1.9^k for k = ⌊t/300⌋ = 0, 0, 1, 2, 5, 6→capped, huge→capped
FEP_EXPECTED = [0.04, 0.04, 0.076, 0.1444, 0.9904396, 1.0, 1.0]


@pytest.mark.parametrize(("t", "expected"), list(zip(FEP_T, FEP_EXPECTED, strict=True)))
def test_fixed_exponential_literal_values(t, expected):
    assert pacing.fixed_exponential(t, s=0.04, r=1.9, delta=300) == pytest.approx(expected, rel=1e-12)


def test_fixed_exponential_accepts_arrays():
    got = pacing.fixed_exponential(np.array(FEP_T), s=0.04, r=1.9, delta=300)
    np.testing.assert_allclose(got, FEP_EXPECTED, rtol=1e-12)


def test_scalar_in_gives_python_float_out():
    assert isinstance(pacing.fixed_exponential(5, 0.04, 1.9, 300), float)


@pytest.mark.parametrize(("t", "expected"), [(0, 0.3), (299, 0.3), (300, 1.0)])
def test_single_step_ssp300(t, expected):
    assert pacing.preset("SSP(300)")(t) == expected


def test_table_iii_presets():
    assert pacing.preset("FEP(100)") == pacing.FixedExponential(s=0.04, r=1.9, delta=100)
    assert pacing.preset("FEP(200)") == pacing.FixedExponential(s=0.04, r=1.9, delta=200)
    assert pacing.preset("FEP(300)") == pacing.FixedExponential(s=0.04, r=1.9, delta=300)
    assert pacing.preset("SSP(300)") == pacing.SingleStep(s=0.30, delta=300)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match=r"FEP\(100\), FEP\(200\), FEP\(300\), SSP\(300\)"):
        pacing.preset("FEP(400)")


# Eq. (2)-(5) with λ0 = 0.2, T_f = 100: t = 0 gives λ0, t ≥ T_f gives 1, plus one interior point (t = 50).
CONTINUOUS = [
    (pacing.linear, {}, 0.6),  # 0.2 + 0.8 · 0.5
    (pacing.root, {}, 0.7211102550927979),  # sqrt(0.04 + 0.96 · 0.5) = sqrt(0.52)
    (pacing.root_p, {"p": 3}, 0.7958114415792784),  # (0.008 + 0.992 · 0.5) ** (1/3) = 0.504 ** (1/3)
    (pacing.geometric, {}, 0.4472135954999579),  # 2 ** (log2 0.2 / 2) = sqrt(0.2)
]


@pytest.mark.parametrize(("fn", "extra", "middle"), CONTINUOUS)
def test_continuous_pacing_endpoints_and_midpoint(fn, extra, middle):
    assert fn(0, 0.2, 100, **extra) == pytest.approx(0.2)
    assert fn(50, 0.2, 100, **extra) == pytest.approx(middle, rel=1e-12)
    assert fn(100, 0.2, 100, **extra) == pytest.approx(1.0)
    assert fn(10**6, 0.2, 100, **extra) == 1.0


def test_root_p_with_p2_is_root():
    t = np.arange(0, 120, 7)
    np.testing.assert_allclose(pacing.root_p(t, 0.1, 100, p=2), pacing.root(t, 0.1, 100))


def test_baby_step_windows_on_ten_samples():
    # 5 buckets of 2 samples each, a new bucket every 2 batches.
    schedule = pacing.BabyStep(n_buckets=5, delta=2)
    windows = [tuple(round(v * 10) for v in schedule.window(t)) for t in (0, 1, 2, 4, 8, 50)]
    assert windows == [(0, 2), (0, 2), (0, 4), (0, 6), (0, 10), (0, 10)]


def test_one_pass_windows_on_ten_samples():
    schedule = pacing.OnePass(n_buckets=5, delta=2)
    windows = [tuple(round(v * 10) for v in schedule.window(t)) for t in (0, 1, 2, 4, 8, 50)]
    assert windows == [(0, 2), (0, 2), (2, 4), (4, 6), (8, 10), (8, 10)]


def test_continuous_window_starts_at_zero():
    assert pacing.preset("FEP(100)").window(100) == (0.0, pytest.approx(0.076))


BAD_PARAMETERS = [
    (lambda: pacing.fixed_exponential(0, s=0.0, r=1.9, delta=300), r"s must be in \(0, 1\]"),
    (lambda: pacing.fixed_exponential(0, s=1.5, r=1.9, delta=300), r"s must be in \(0, 1\]"),
    (lambda: pacing.fixed_exponential(0, s=0.04, r=1.0, delta=300), r"r must be > 1"),
    (lambda: pacing.fixed_exponential(0, s=0.04, r=1.9, delta=0), r"delta must be > 0"),
    (lambda: pacing.single_step(0, s=0.3, delta=-5), r"delta must be > 0"),
    (lambda: pacing.single_step(0, s=-0.3, delta=300), r"s must be in \(0, 1\]"),
    (lambda: pacing.linear(0, lambda0=0.0, t_full=100), r"lambda0 must be in \(0, 1\]"),
    (lambda: pacing.root(0, lambda0=1.2, t_full=100), r"lambda0 must be in \(0, 1\]"),
    (lambda: pacing.geometric(0, lambda0=0.2, t_full=0), r"t_full must be > 0"),
    (lambda: pacing.root_p(0, lambda0=0.2, t_full=100, p=0), r"p must be > 0"),
    (lambda: pacing.root_p(0, lambda0=0.2, t_full=100, p=-2), r"p must be > 0"),
    (lambda: pacing.linear(-1, lambda0=0.2, t_full=100), r"t must be >= 0"),
    (lambda: pacing.fixed_exponential(np.array([3, -1]), 0.04, 1.9, 300), r"t must be >= 0"),
    (lambda: pacing.BabyStep(n_buckets=0, delta=2), r"n_buckets must be a positive integer"),
    (lambda: pacing.OnePass(n_buckets=3, delta=0), r"delta must be > 0"),
    (lambda: pacing.FixedExponential(s=0.04, r=0.5, delta=100), r"r must be > 1"),
]


@pytest.mark.parametrize(("call", "message"), BAD_PARAMETERS)
def test_impossible_parameters_raise_with_the_allowed_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_non_numeric_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="s must be a number"):
        pacing.single_step(0, s="0.3", delta=300)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (pacing.preset("FEP(300)"), 1800),
        (pacing.preset("FEP(100)"), 600),
        (pacing.preset("SSP(300)"), 300),
        (pacing.Linear(lambda0=0.2, t_full=100), 100),
        (pacing.Geometric(lambda0=0.2, t_full=100), 100),
        (pacing.RootP(lambda0=0.2, t_full=100, p=3), 100),
        (pacing.BabyStep(n_buckets=5, delta=2), 8),
    ],
)
def test_first_batch_reaching_the_full_data(schedule, expected):
    assert pacing.first_batch_reaching(schedule) == expected


def test_first_batch_reaching_a_fraction():
    assert pacing.first_batch_reaching(pacing.preset("FEP(300)"), 0.1) == 600  # 0.1444 ≥ 0.1 > 0.076

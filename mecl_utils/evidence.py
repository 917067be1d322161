"""How sure can we be: bootstrap intervals, the probability of improvement, pooling over cases, and power.

``statistics`` reads one case: the paired difference of a method from vanilla over repetitions, its t
interval and the book's significance rule. This module adds what a reader needs to judge a training method
over *seeds and cases* rather than one test (Bouthillier et al. 2021; Agarwal et al. 2021), none of which
the paper (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. IV; mean ± std over 5 repetitions) reports:

- ``bootstrap_interval``: a percentile bootstrap interval of the mean paired difference, a check on the t
  interval that assumes nothing about the differences' distribution (with few repetitions it is *narrower*
  than the t interval: it ignores the uncertainty of the SD, so read the t interval first);
- ``probability_of_improvement``: P(a run of the method beats a run of vanilla), ties counted half (the
  Mann-Whitney statistic over all pairs of runs, as rliable defines it), with a bootstrap interval that
  resamples repetitions within each case (stratified) when cases are pooled;
- ``random_effects``: the pooled difference over cases, a random-effects meta-analysis of the per-case
  paired differences (``statsmodels``; the Paule-Mandel between-case variance, which Veroniki et al. 2016
  recommend over DerSimonian-Laird, and which statsmodels, unlike its DerSimonian-Laird, keeps at or above
  zero) with a t interval on k − 1 degrees of freedom, so that cases that disagree widen the interval
  instead of averaging away;
- ``sign_test``: how many cases improve, and the binomial p-value of that count, the paper's kind of count;
- ``repetitions_for_power`` and ``detectable_difference``: the repetitions a paired t-test needs to detect a
  given difference with a given power from an observed SD of the differences, and the reverse; the unpaired
  form for published summaries, where no pairing exists.

``statsmodels`` gives the meta-analysis; ``scipy.stats`` the bootstrap, the binomial test and the noncentral
t of the power (statsmodels' own power solver returns NaN for some large counts). rliable, which popularised
the probability of improvement, is archived; its definition is a few lines here. Every random draw takes an
explicit seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from mecl_utils.statistics import ALPHA, CONFIDENCE

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "POWER",
    "Estimate",
    "Pooled",
    "SignTest",
    "bootstrap_interval",
    "detectable_difference",
    "paired_power",
    "pooled_probability_of_improvement",
    "probability_of_improvement",
    "random_effects",
    "repetitions_for_power",
    "sign_test",
    "unpaired_power",
]

BOOTSTRAP_RESAMPLES = 10_000
POWER = 0.8  # the power a repetition count is chosen for
MAX_REPETITIONS = 100_000  # repetitions_for_power gives up beyond this (an effect far below the noise)


@dataclass(frozen=True)
class Estimate:
    """A value with its interval (NaN where there is none)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Pooled:
    """A random-effects pooled difference over ``k`` cases (``excluded`` had no usable variance), and the
    common-effect one beside it (``common_*``: one true difference assumed for every case)."""

    mean: float
    low: float
    high: float
    p: float  # two-sided, t on k − 1 degrees of freedom
    tau: float  # the between-case SD of the true differences (Paule-Mandel)
    i2: float  # the share of the spread between cases not explained by within-case noise
    k: int
    excluded: int
    common_mean: float = math.nan
    common_low: float = math.nan
    common_high: float = math.nan
    common_p: float = math.nan  # two-sided, normal


@dataclass(frozen=True)
class SignTest:
    """Cases whose mean difference is above, below or at zero, and the two-sided binomial p of the split."""

    improved: int
    worse: int
    ties: int
    p: float


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[~np.isnan(values)]


def bootstrap_interval(
    differences, confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``differences`` (NaNs dropped).

    NaN below two values; a zero-width interval where the differences do not vary.
    """
    values = _finite(differences)
    if len(values) < 2:
        return math.nan, math.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    result = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def probability_of_improvement(baseline, other) -> float:
    """P(a run of ``other`` > a run of ``baseline``) over every pair of runs, ties counted half."""
    a, b = _finite(other), _finite(baseline)
    if not len(a) or not len(b):
        return math.nan
    return float(_improvement(a[None, :], b[None, :])[0])


def _improvement(other: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Row-wise probability of improvement of (B, n) arrays ``other`` over (B, m) ``baseline``."""
    above = (other[:, :, None] > baseline[:, None, :]).mean(axis=(1, 2))
    equal = (other[:, :, None] == baseline[:, None, :]).mean(axis=(1, 2))
    return above + 0.5 * equal


def pooled_probability_of_improvement(
    cases: list[tuple[np.ndarray, np.ndarray]],
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """The mean over cases of each case's probability of improvement, with a stratified bootstrap interval.

    ``cases``: per case, the (baseline, other) accuracies of its repetitions, paired by position (the two
    methods of one repetition share their initial weights). A resample draws repetitions with replacement
    within every case, keeping each repetition's pair together.
    """
    cases = [(np.asarray(b, dtype=float), np.asarray(o, dtype=float)) for b, o in cases]
    cases = [(b, o) for b, o in cases if len(b) and len(b) == len(o)]
    if not cases:
        return Estimate(math.nan, math.nan, math.nan)
    value = float(np.mean([_improvement(o[None, :], b[None, :])[0] for b, o in cases]))
    rng = np.random.default_rng(seed)
    draws = np.zeros(resamples)
    for baseline, other in cases:
        index = rng.integers(0, len(baseline), size=(resamples, len(baseline)))
        draws += _improvement(other[index], baseline[index])
    draws /= len(cases)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return Estimate(value, float(low), float(high))


def random_effects(means, sds, ns, confidence: float = CONFIDENCE) -> Pooled:
    """The random-effects pooled mean of per-case differences ``means`` (SDs ``sds`` over ``ns`` pairs).

    A case's variance is sd² / n. Cases with fewer than two pairs or no spread carry no usable variance (a
    zero variance would weigh infinitely) and are left out, counted in ``excluded``. The interval and p-value
    use a t distribution on k − 1 degrees of freedom; NaN below two usable cases. With two or three cases
    that interval is very wide by construction (t on 1 degree of freedom is 12.7), so the common-effect
    (inverse-variance, normal) estimate comes with it as a sensitivity reading: narrower, and right only if
    every case has the same true difference.
    """
    means, sds, ns = (np.asarray(x, dtype=float) for x in (means, sds, ns))
    usable = (ns >= 2) & (sds > 0) & ~np.isnan(means) & ~np.isnan(sds)
    k, excluded = int(usable.sum()), int((~usable).sum())
    if k < 2:
        return Pooled(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, k, excluded)
    with np.errstate(all="ignore"):  # statsmodels' I² divides by zero where every case agrees exactly
        result = combine_effects(means[usable], sds[usable] ** 2 / ns[usable], method_re="pm")
    mean, se = float(result.mean_effect_re), float(result.sd_eff_w_re)
    half = float(stats.t.ppf(0.5 + confidence / 2, k - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, k - 1))
    i2 = max(0.0, float(result.i2))  # statsmodels leaves (Q − df) / Q negative where Q < df
    common, common_se = float(result.mean_effect_fe), float(result.sd_eff_w_fe)
    common_half = float(stats.norm.ppf(0.5 + confidence / 2)) * common_se
    return Pooled(
        mean,
        mean - half,
        mean + half,
        p,
        math.sqrt(max(0.0, result.tau2)),
        i2,
        k,
        excluded,
        common,
        common - common_half,
        common + common_half,
        float(2 * stats.norm.sf(abs(common) / common_se)),
    )


def sign_test(means) -> SignTest:
    """How many cases' mean differences are positive, negative or zero; ties are left out of the test."""
    values = _finite(means)
    improved, worse = int((values > 0).sum()), int((values < 0).sum())
    ties = len(values) - improved - worse
    p = stats.binomtest(improved, improved + worse, 0.5).pvalue if improved + worse else math.nan
    return SignTest(improved, worse, ties, float(p))


def _t_power(noncentrality: float, df: float, alpha: float) -> float:
    """The power of a two-sided t-test whose statistic is noncentral t(``df``, ``noncentrality``)."""
    critical, shift = stats.t.ppf(1 - alpha / 2, df), abs(noncentrality)
    wrong_side = stats.nct.cdf(-critical, df, shift)  # negligible, and NaN in scipy once the shift is large
    return float(stats.nct.sf(critical, df, shift) + (0.0 if math.isnan(wrong_side) else wrong_side))


def paired_power(difference: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """The power of a two-sided paired t-test on ``n`` pairs to detect a true mean ``difference``."""
    if n < 2 or not sd > 0:
        return math.nan
    return _t_power(difference / sd * math.sqrt(n), n - 1, alpha)


def unpaired_power(difference: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """The power of a two-sided two-sample t-test, ``n`` runs a group, common SD ``sd``."""
    if n < 2 or not sd > 0:
        return math.nan
    return _t_power(difference / (sd * math.sqrt(2 / n)), 2 * n - 2, alpha)


def repetitions_for_power(min_effect: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """The fewest pairs with which a two-sided paired t-test detects ``min_effect`` at ``power``.

    ``sd`` is the SD of the paired differences (an observed one is itself uncertain: with 3 repetitions it
    can be off by a factor of two). The normal approximation ((z₁₋α/₂ + z_power)·sd / min_effect)² is a
    lower bound; the t-test needs a little more, found by bisection (power grows with n).
    """
    if not (min_effect > 0 and sd > 0):
        raise ValueError(f"min_effect and sd must be positive numbers, got {min_effect!r} and {sd!r}")
    normal = ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / min_effect) ** 2
    if normal > MAX_REPETITIONS:
        raise ValueError(
            f"a difference of {min_effect:g} against an SD of {sd:g} needs more than {MAX_REPETITIONS} "
            "repetitions for that power"
        )
    low, high = 2, max(3, math.ceil(normal) + 10)
    while paired_power(min_effect, sd, high, alpha) < power:
        high *= 2
    while low < high:
        middle = (low + high) // 2
        if paired_power(min_effect, sd, middle, alpha) >= power:
            high = middle
        else:
            low = middle + 1
    return low


def detectable_difference(
    sd: float, n: int, alpha: float = ALPHA, power: float = POWER, paired: bool = True
) -> float:
    """The smallest true difference a two-sided t-test on ``n`` detects at ``power`` with spread ``sd``.

    ``paired``: ``n`` pairs whose differences have SD ``sd``. Otherwise two independent groups of ``n``
    runs each with the common SD ``sd`` (what published mean ± std summaries allow).
    """
    if n < 2 or not sd > 0:
        return math.nan
    power_of = paired_power if paired else unpaired_power
    high = sd  # doubled until it is detectable: the noncentral t is NaN far beyond the answer
    while power_of(high, sd, n, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda d: power_of(d, sd, n, alpha) - power, 0.0, high))

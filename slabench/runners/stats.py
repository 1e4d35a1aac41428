"""Statistics for run outcomes: intervals that stay in [0, 1], exact tests, time to solve.

Recall runs are bimodal (a run solves the task or stays near chance), seeds are few, and
accuracies are bounded, so nothing here assumes normality:

- a solve rate k/n gets a Wilson score interval;
- a mean accuracy gets a seeded percentile-bootstrap interval (it lies within the data's range,
  so within [0, 1]);
- a difference of two solve rates over paired seeds gets Newcombe's square-and-add interval,
  built from the two rates' Wilson intervals: unlike a bootstrap it does not shrink to a point
  when no pair differs (0 of 40 against 0 of 40 cannot rule out a 5-point gain);
- two cells are compared by exact permutation tests: sign flips of the per-seed differences
  when both arms ran the same seeds (slabench seeds a run's data stream with its seed, so the
  arms saw the same batches), else a permutation of the pooled values between the arms;
- the verdict between two cells (win, tie or loss) is that test at ALPHA, two-sided;
- time to solve is a Kaplan-Meier median, runs that never solve censored at their last step;
- seeds needed to decide (80% power) come from the normal approximation of the test used.

Every function is deterministic (fixed bootstrap seed), so rebuilt leaderboards are byte-identical.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ALPHA = 0.05
Z975 = 1.959963984540054  # two-sided 95% normal quantile
Z80 = 0.8416212335729143  # the normal quantile of 80% power
BOOTSTRAP_SEED, BOOTSTRAP_RESAMPLES = 0, 10_000
EXACT_LIMIT = 1 << 16  # enumerate at most this many arrangements; beyond, a seeded Monte Carlo
MONTE_CARLO = 20_000
EPS = 1e-12  # statistics within EPS of the observed one count as "as extreme" (float sums)


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2 if s else math.nan


def sd(xs: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator); 0 for fewer than 2 values."""
    if len(xs) < 2:
        return 0.0
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (nan, nan for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p, z2 = k / n, Z975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0 of n (n of n) centre and half are equal in exact arithmetic; floats leave ~1e-17.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def bootstrap_mean(
    xs: Sequence[float], seed: int = BOOTSTRAP_SEED, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of xs (nan, nan with fewer than 2 values)."""
    if len(xs) < 2:
        return math.nan, math.nan
    x = np.asarray(xs, dtype=np.float64)  # [n]
    idx = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))  # [R, n]
    means = x[idx].mean(axis=1)  # [R]
    lo, hi = np.quantile(means, [0.025, 0.975])
    # Clamped to the data's range: a float mean of equal values can land one ulp outside it.
    return max(float(lo), float(x.min())), min(float(hi), float(x.max()))


def mean_ci(xs: Sequence[float]) -> tuple[float, float, float]:
    """Mean and its 95% bootstrap interval (nan bounds for fewer than 2 values)."""
    return (mean(xs), *bootstrap_mean(xs))


def bootstrap_mean_of_means(
    groups: Sequence[Sequence[float]], seed: int = BOOTSTRAP_SEED, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of group means, resampling within each group
    (a model's seeds within each task); nan, nan when no group has 2 values."""
    groups = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not groups or all(len(g) < 2 for g in groups):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.zeros(resamples)  # [R]
    for g in groups:
        means += g[rng.integers(0, len(g), size=(resamples, len(g)))].mean(axis=1) / len(groups)  # [R]
    lo, hi = np.quantile(means, [0.025, 0.975])
    floor = sum(float(g.min()) for g in groups) / len(groups)
    ceil = sum(float(g.max()) for g in groups) / len(groups)
    return max(float(lo), floor), min(float(hi), ceil)


def km_median(times: Sequence[float], solved: Sequence[bool]) -> float | None:
    """Kaplan-Meier median of time to solve: the first solve time at which the estimated
    fraction still unsolved falls to 1/2 or below. A run that never solved is censored at its
    last time (at risk until then, never an event). None when fewer than half are known to solve."""
    at_risk, surviving = len(times), 1.0
    for t in sorted(set(times)):
        events = sum(1 for tt, s in zip(times, solved) if tt == t and s)
        if events:
            surviving *= 1 - events / at_risk
            if surviving <= 0.5 + EPS:
                return t
        at_risk -= sum(1 for tt in times if tt == t)
    return None


def _extreme(observed: float, stats: np.ndarray, alternative: str) -> np.ndarray:
    """Which statistics are as extreme as the observed one (within EPS: float sums)."""
    if alternative == "two-sided":
        return np.abs(stats) >= abs(observed) - EPS
    if alternative == "less":
        return stats <= observed + EPS
    return stats >= observed - EPS


def _monte_carlo_p(observed: float, stats: np.ndarray, alternative: str) -> float:
    """A sample's p counts the observed arrangement among its draws, (1 + k) / (1 + N), so it is
    never 0, which only an impossible observation would have."""
    return float((1 + _extreme(observed, stats, alternative).sum()) / (1 + len(stats)))


def sign_flip_p(diffs: Sequence[float], alternative: str = "two-sided") -> float:
    """Exact paired permutation test: p-value of sum(diffs) among all 2^n sign flips. A zero
    difference flips to itself, so it scales every count alike and is left out. Beyond
    EXACT_LIMIT arrangements: exact by the binomial when the differences are equal in size (the
    sign test, as for solve indicators), else a seeded Monte Carlo. alternative 'less' asks
    whether the differences are below 0. With n nonzero pairs the smallest two-sided p is
    2^(1-n): 6 pairs are needed to reach 5%."""
    d = np.asarray(diffs, dtype=np.float64)  # [n]
    d = d[d != 0]  # [m]
    m, observed = len(d), float(d.sum())
    if m == 0:
        return 1.0
    if 2**m <= EXACT_LIMIT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=m)))  # [2^m, m]
        return float(np.mean(_extreme(observed, signs @ d, alternative)))
    if np.all(np.abs(d) == abs(d[0])):
        # k plus signs of m give the sum |d| (2k - m), with probability C(m, k) / 2^m.
        sums = abs(d[0]) * (2 * np.arange(m + 1) - m)  # [m + 1]
        return sum(math.comb(m, k) for k in np.flatnonzero(_extreme(observed, sums, alternative))) / 2**m
    signs = np.random.default_rng(BOOTSTRAP_SEED).choice((1.0, -1.0), size=(MONTE_CARLO, m))  # [N, m]
    return _monte_carlo_p(observed, signs @ d, alternative)


def permutation_p(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> float:
    """Exact two-sample permutation test of mean(a) - mean(b) over every split of the pooled
    values into groups of len(a) and len(b) (a seeded Monte Carlo beyond EXACT_LIMIT)."""
    if not a or not b:
        return 1.0
    pooled = np.asarray([*a, *b], dtype=np.float64)  # [na + nb]
    na, n = len(a), len(pooled)
    exact = math.comb(n, na) <= EXACT_LIMIT
    if exact:
        masks = np.zeros((math.comb(n, na), n), dtype=bool)  # [splits, n]
        for i, chosen in enumerate(itertools.combinations(range(n), na)):
            masks[i, list(chosen)] = True
    else:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        masks = np.argsort(rng.random((MONTE_CARLO, n)), axis=1) < na  # [N, n]
    stats = (masks @ pooled) / na - (~masks @ pooled) / (n - na)  # [splits]
    observed = mean(a) - mean(b)
    if exact:
        return float(np.mean(_extreme(observed, stats, alternative)))
    return _monte_carlo_p(observed, stats, alternative)


def compare(a: dict[int, float], b: dict[int, float], alternative: str = "two-sided") -> dict[str, object]:
    """Test arm a against arm b, each {seed: accuracy}: paired sign flips over the seeds both ran
    when they ran the same seeds, else the unpaired permutation test. Returns the test's name,
    its p-value, the pairs or sizes, and mean(a) - mean(b)."""
    if a and set(a) == set(b):
        diffs = [a[s] - b[s] for s in sorted(a)]
        return {"test": "paired", "p": sign_flip_p(diffs, alternative), "n": len(diffs), "delta": mean(diffs)}
    xa, xb = list(a.values()), list(b.values())
    return {
        "test": "unpaired",
        "p": permutation_p(xa, xb, alternative),
        "n": min(len(xa), len(xb)),
        "delta": mean(xa) - mean(xb),
    }


def separable(a: dict[int, float], b: dict[int, float]) -> bool:
    """Whether the two-sided test of `compare` rejects equal accuracy at ALPHA."""
    return compare(a, b)["p"] < ALPHA


def seed_scores(cell: Mapping[str, Any]) -> dict[int, float]:
    """A cell's {seed: test accuracy}, from its `seed_ids` and `seed_accs` (a leaderboard row)."""
    return dict(zip(cell["seed_ids"], cell["seed_accs"]))


def verdict(a: Mapping[str, Any], b: Mapping[str, Any], min_seeds: int = 1) -> tuple[str, dict[str, object]]:
    """'win', 'loss' or 'tie' of cell a against cell b, and the test behind it: win when the
    two-sided test of `compare` on their per-seed accuracies rejects equal accuracy at ALPHA with
    a ahead, loss with a behind, else tie. A cell with fewer than min_seeds seeds only ties."""
    test = compare(seed_scores(a), seed_scores(b))
    if min(len(a["seed_accs"]), len(b["seed_accs"])) < min_seeds or test["p"] >= ALPHA:
        return "tie", test
    return ("win" if test["delta"] > 0 else "loss"), test


def paired_difference_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """95% interval of rate(a) - rate(b) from paired 0/1 outcomes (a[i] and b[i] one pair):
    Newcombe's square-and-add interval (Stat Med 1998, method 10). Each rate gets its Wilson
    interval; their distances from the rates are combined as for a difference of correlated
    estimates, through the correlation phi of the 2x2 table of pairs: a positive ad - bc is
    shrunk by n/2 (to 0 if that crosses 0), a negative one kept, and phi is 0 when a margin is
    empty. nan, nan for no pairs."""
    n = len(a)
    if n == 0:
        return math.nan, math.nan
    table = Counter((bool(x), bool(y)) for x, y in zip(a, b))  # the paired 2x2 table
    both, only_a, only_b, neither = (table[True, True], table[True, False], table[False, True], table[False, False])
    ka, kb = both + only_a, both + only_b
    pa, pb = ka / n, kb / n
    (la, ua), (lb, ub) = wilson(ka, n), wilson(kb, n)
    margins = ka * (n - ka) * kb * (n - kb)
    cross = both * neither - only_a * only_b
    phi = 0.0 if margins == 0 or 0 <= cross <= n / 2 else (cross - n / 2 if cross > 0 else cross) / math.sqrt(margins)
    lo = pa - pb - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2 - 2 * phi * (pa - la) * (ub - pb))
    hi = pa - pb + math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2 - 2 * phi * (pb - lb) * (ua - pa))
    return max(lo, -1.0), min(hi, 1.0)


def stratified_compare(strata: Sequence[tuple[Mapping[int, float], Mapping[int, float]]]) -> dict[str, Any]:
    """Arm a against arm b pooled across conditions, paired by seed within each: strata is one
    ({seed: a solved}, {seed: b solved}) per condition, values 0 or 1. The test is `sign_flip_p`
    on every (condition, seed) difference: a flip swaps the arms within one pair, never across
    conditions, so the test is stratified by condition. delta is the mean of those differences
    (the test's statistic over n, so every pair weighs alike in both and a condition with fewer
    pairs weighs less), the difference of the pooled solve rates; its interval is
    `paired_difference_ci` over all pairs; sd is the differences' standard deviation, for
    `n_for_power`."""
    groups = [[(a[s], b[s]) for s in sorted(set(a) & set(b))] for a, b in strata]  # pairs per condition
    groups = [g for g in groups if g]
    pairs = [p for g in groups for p in g]
    if any(v not in (0, 1) for pair in pairs for v in pair):
        raise ValueError("stratified_compare takes solve indicators (0 or 1)")
    diffs = [x - y for x, y in pairs]
    lo, hi = paired_difference_ci([x for x, _ in pairs], [y for _, y in pairs])
    return {
        "p": sign_flip_p(diffs),
        "n": len(diffs),
        "conditions": len(groups),
        "delta": mean(diffs),
        "lo": lo,
        "hi": hi,
        "sd": sd(diffs),
    }


def min_paired_p(n: int) -> float:
    """The smallest two-sided p the paired test can give with n pairs."""
    return 2.0 ** (1 - n) if n else 1.0


def n_for_power(effect: float, sd: float, power_z: float = Z80) -> float:
    """Observations a two-sided test at ALPHA of "mean = 0" needs for 80% power against a true
    mean `effect` with per-observation standard deviation `sd` (normal approximation):
    n = ((z_975 + z_80) * sd / effect)^2. inf for effect 0; 0 for sd 0 and effect != 0."""
    if effect == 0:
        return math.inf
    return ((Z975 + power_z) * sd / effect) ** 2


def n_for_paired_rates(gain: float, sd: float) -> float:
    """`n_for_power` for paired 0/1 outcomes (solve indicators): pairs for 80% power against a
    true difference of rates `gain`, with the differences' sd at least sqrt(g (1 - g)), the least
    that values in {-1, 0, 1} averaging g allow: a sample where no pair differs (sd 0) must not
    read as needing no more pairs."""
    g = abs(gain)
    return n_for_power(gain, max(sd, math.sqrt(g * (1 - g))))


def seeds_for_slope(slope: float, resid_sd: float, levels: Sequence[float]) -> float:
    """Seeds per level of x that a slope's two-sided test at ALPHA needs for 80% power: with k
    seeds at each level, SE(slope) = resid_sd / sqrt(k * sum (x_j - mean x)^2), so
    k = n_for_power(slope, resid_sd) / sum (x_j - mean x)^2 (inf with fewer than 2 levels)."""
    m = mean(levels)
    sxx = sum((x - m) ** 2 for x in levels)
    return n_for_power(slope, resid_sd) / sxx if sxx > 0 else math.inf


def slope_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares slope of y on x, the half-width of its 95% t interval and the residual
    standard deviation (nan if undefined)."""
    n = len(xs)
    if n < 3 or len(set(xs)) < 2:
        return math.nan, math.nan, math.nan
    mx, my = mean(xs), mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    resid_sd = math.sqrt(sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys)) / (n - 2))
    return slope, t975(n - 2) * resid_sd / math.sqrt(sxx), resid_sd


def slope_ci(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope of y on x and the half-width of its 95% t interval (nan if undefined).
    Used for log-log cost slopes and gain-vs-heads trends, not for bounded accuracies."""
    return slope_fit(xs, ys)[:2]


# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; the expansion in t975 beyond.
_T975 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def t975(df: int) -> float:
    """Student's t 97.5% quantile. Beyond the table, the Cornish-Fisher expansion around the normal
    quantile (Abramowitz and Stegun 26.7.5), within 1e-5 of the exact value from 30 degrees of
    freedom on; 1.96 alone would narrow a 95% interval by 3% at 38."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z975
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    return z + sum(g / df**i for i, g in enumerate(terms, start=1))

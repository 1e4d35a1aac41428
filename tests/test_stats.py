"""The statistics every leaderboard, comparison, regression check and report uses, against
values computed by hand (or read off the exact distributions)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slabench.runners import stats


def test_wilson_interval_by_hand():
    # 3 of 5: centre (0.6 + z^2/10) / (1 + z^2/5), half z sqrt(0.048 + z^2/100) / (1 + z^2/5), z = 1.96
    assert stats.wilson(3, 5) == pytest.approx((0.2307, 0.8824), abs=1e-4)  # the tabulated values
    # 0 of 3: lower bound 0, upper (z^2/3) / (1 + z^2/3) = 0.5615
    assert stats.wilson(0, 3) == pytest.approx((0.0, 0.5615), abs=1e-4)
    lo, hi = stats.wilson(5, 5)
    assert hi == 1.0 and lo == pytest.approx(0.5655, abs=1e-4)  # 5 of 5: 5 / (5 + z^2)
    assert all(math.isnan(x) for x in stats.wilson(0, 0))
    # The bound at 0 of n (n of n) is exactly 0 (1), where centre - half leaves float residue.
    assert all(stats.wilson(0, n)[0] == 0.0 and stats.wilson(n, n)[1] == 1.0 for n in range(1, 40))


def test_bootstrap_interval_matches_the_exact_resampling_distribution():
    # Means of 2 draws from {0, 1}: 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> 2.5% and 97.5% at 0 and 1.
    assert stats.bootstrap_mean([0.0, 1.0]) == (0.0, 1.0)
    # Means of 4 draws from {0, 0, 0, 1}: K/4 with K ~ Binomial(4, 1/4); P(K <= 2) = 0.949 < 0.975 < P(K <= 3)
    # = 0.996, and P(K = 0) = 0.316 > 0.025: the interval is [0, 0.75].
    assert stats.bootstrap_mean([0.0, 0.0, 0.0, 1.0]) == (0.0, 0.75)
    assert stats.bootstrap_mean([0.3, 0.3, 0.3]) == (0.3, 0.3)
    # Seven values: the seed fixes the interval (another seed moves it), and it lies within 0.005 of
    # the normal approximation by hand: mean 0.5614 -/+ 1.96 x 0.2725 / sqrt(7) = [0.3596, 0.7633].
    seven = [0.12, 0.31, 0.47, 0.55, 0.68, 0.83, 0.97]
    interval = stats.bootstrap_mean(seven)
    assert interval == stats.bootstrap_mean(seven) != stats.bootstrap_mean(seven, seed=stats.BOOTSTRAP_SEED + 1)
    assert interval == pytest.approx((0.3596, 0.7633), abs=0.005)
    assert all(math.isnan(x) for x in stats.bootstrap_mean([0.5]))
    # Within the data's range, so within [0, 1] for accuracies, however bimodal.
    lo, hi = stats.bootstrap_mean([0.99, 0.01, 0.41])
    assert 0.01 <= lo < hi <= 0.99
    # Groups resampled apart: each of {0, 1} twice gives the interval of each mean, averaged.
    assert stats.bootstrap_mean_of_means([[0.0, 1.0], [0.5, 0.5]]) == (0.25, 0.75)


def pairs(table: tuple[int, int, int, int]) -> tuple[list[int], list[int]]:
    """Paired 0/1 outcomes from a paired 2x2 table (both solved, only a, only b, neither)."""
    both, only_a, only_b, neither = table
    return [1] * (both + only_a) + [0] * (only_b + neither), [1] * both + [0] * only_a + [1] * only_b + [0] * neither


def test_paired_difference_interval_published_and_by_hand():
    # Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables (2017), ch. 8: complete
    # response before and after consolidation (Cavo et al. 2012), table 59, 6, 16, 80: estimate
    # -0.0621, Newcombe square-and-add interval -0.1186 to -0.0046 (the correlation term counts here).
    assert stats.paired_difference_ci(*pairs((59, 6, 16, 80))) == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    # No pair differs, 0 of 40 each: no correlation (empty margins), so each side is a Wilson upper
    # bound, z^2 / (40 + z^2) = 0.08762. A bootstrap would give [0, 0] and rule out a 5-point gain.
    assert stats.paired_difference_ci([0] * 40, [0] * 40) == pytest.approx((-0.08762, 0.08762), abs=1e-5)
    # 4 of 5 against 0 of 5: hi is Wilson's upper bound of 4/5, lo 0.8 - sqrt((0.8 - 0.37553)^2 +
    # 0.43448^2) with Wilson (0.37553, 0.96377) of 4/5 and upper bound 0.43448 of 0/5.
    assert stats.paired_difference_ci([1, 1, 1, 1, 0], [0] * 5) == pytest.approx((0.19257, 0.96377), abs=1e-4)
    assert all(math.isnan(x) for x in stats.paired_difference_ci([], []))


def test_pairs_for_power_floor_the_spread_of_paired_solve_indicators():
    # No pair differs (sd 0): the sd a 5-point gain needs at least, sqrt(0.05 x 0.95) = 0.217945,
    # gives ((1.959964 + 0.841621) x 0.217945 / 0.05)^2 = 149.13 pairs, not 0.
    assert stats.n_for_paired_rates(0.05, 0.0) == pytest.approx(149.13, abs=0.01)
    # A spread above the floor is the normal approximation's own.
    assert stats.n_for_paired_rates(0.2, 0.5) == stats.n_for_power(0.2, 0.5)


@given(st.tuples(*[st.integers(0, 12)] * 4).filter(lambda t: sum(t) > 0))
def test_paired_difference_interval_holds_the_estimate_within_bounds(table):
    a, b = pairs(table)
    lo, hi = stats.paired_difference_ci(a, b)
    estimate = (table[1] - table[2]) / sum(table)
    assert -1.0 <= lo <= estimate <= hi <= 1.0 and lo < hi


def test_sign_flip_test_by_enumeration():
    # 1, 2, 3: only all-plus and all-minus reach |sum| = 6 among 8 sign patterns
    assert stats.sign_flip_p([1, 2, 3]) == 0.25
    # 1, 2, 3, -4 (sum 2): of the 16 sums +-1 +-2 +-3 +-4, only the two zeros are below 2 in size
    assert stats.sign_flip_p([1, 2, 3, -4]) == 14 / 16
    assert stats.sign_flip_p([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) == 2 / 64
    assert stats.sign_flip_p([-1, -2, -3, -4, -5], "less") == 1 / 32
    assert stats.sign_flip_p([-1, -2, -3, -4, -5], "greater") == 1.0
    assert stats.sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    assert stats.min_paired_p(5) == 1 / 16 and stats.min_paired_p(6) == 1 / 32


def test_sign_flip_beyond_enumeration_is_exact_for_solve_indicators_and_never_zero():
    # Zeros flip to themselves: 17 pairs with one zero is the 16-pair test, enumerated.
    assert stats.sign_flip_p([1.0] * 16 + [0.0]) == stats.sign_flip_p([1.0] * 16) == 2 / 2**16
    # 20 solved-vs-unsolved pairs, 15 for a and 5 against: the two-sided sign test,
    # P(|S| >= 10) = 2 * sum_{k >= 15} C(20, k) / 2^20 = 2 * 21700 / 1048576.
    assert stats.sign_flip_p([1.0] * 15 + [-1.0] * 5) == 2 * 21700 / 2**20
    assert stats.sign_flip_p([1.0] * 15 + [-1.0] * 5, "less") == 1 - 6196 / 2**20  # P(S <= 10) = 1 - P(k >= 16)
    # Unequal sizes beyond the limit: Monte Carlo, the observed arrangement counted among the
    # draws, so 20 positive differences of distinct sizes (no draw as extreme) give 1 / 20001.
    assert stats.sign_flip_p([0.1 * i for i in range(1, 21)]) == 1 / (stats.MONTE_CARLO + 1)
    assert stats.permutation_p([0.9] * 10, [0.1] * 10) == 1 / (stats.MONTE_CARLO + 1)  # C(20, 10) > 2^16


def test_permutation_test_by_enumeration():
    # pooled 1, 2, 3, 4 split 2 + 2: mean differences -2, -1, 0, 0, 1, 2; |observed| = 2 twice
    assert stats.permutation_p([1, 2], [3, 4]) == pytest.approx(1 / 3)
    assert stats.permutation_p([1, 2], [3, 4], "less") == pytest.approx(1 / 6)
    # 1 against 3 (pooled 1..4): mean differences -2, -2/3, 2/3, 2 -> p = 2/4 (sums would give 1/4)
    assert stats.permutation_p([1], [2, 3, 4]) == 0.5
    # 5 against 5, fully apart: 2 of the C(10, 5) = 252 splits are as extreme
    assert stats.permutation_p([0.9] * 5, [0.1] * 5) == pytest.approx(2 / 252)


def test_compare_pairs_by_seed_only_when_the_seeds_match():
    a, b = {0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.5, 1: 0.4, 2: 0.3}
    paired = stats.compare(a, b)
    assert paired["test"] == "paired" and paired["p"] == 0.25 and paired["delta"] == pytest.approx(0.4)
    unpaired = stats.compare(a, {5: 0.5, 6: 0.4, 7: 0.3})
    assert unpaired["test"] == "unpaired" and unpaired["p"] == pytest.approx(2 / 20)
    six = {s: 0.99 for s in range(6)}
    assert stats.separable(six, {s: 0.5 for s in range(6)}) and not stats.separable(six, six)


def test_kaplan_meier_median_time_to_solve():
    assert stats.km_median([100, 200, 300, 400], [True] * 4) == 200  # S: 3/4, 2/4 -> 1/2 at 200
    # 100 solved (S = 3/4); 200 censored; at 300 one of the two left solves (S = 3/8): median 300
    assert stats.km_median([100, 200, 300, 300], [True, False, True, False]) == 300
    assert stats.km_median([100, 500, 500], [True, False, False]) is None  # S stays at 2/3
    assert stats.km_median([100, 200], [True, False]) == 100  # S = 1/2 exactly counts
    assert stats.km_median([], []) is None


def test_slope_ci_exact_line_and_known_spread():
    slope, ci = stats.slope_ci([1, 2, 3, 4], [0.1, 0.3, 0.5, 0.7])
    assert slope == pytest.approx(0.2) and ci == pytest.approx(0.0, abs=1e-12)
    # residual sum of squares 0.8 over 2 dof, sum of squared x deviations 5, t(2) = 4.303
    slope, ci = stats.slope_ci([0, 1, 2, 3], [0, 1, 0, 1])
    assert slope == pytest.approx(0.2) and ci == pytest.approx(4.303 * math.sqrt(0.8 / 2 / 5))


def test_t_quantile_against_published_tables():
    # Student's t, two-sided 95%, from the printed tables (e.g. Abramowitz and Stegun Table 26.10):
    # the 1.96 of the normal only as the degrees of freedom grow without bound.
    for df, t in ((1, 12.706), (10, 2.228), (30, 2.042), (31, 2.0395), (40, 2.0211), (60, 2.0003), (120, 1.9799)):
        assert stats.t975(df) == pytest.approx(t, abs=1e-3 if df <= 30 else 1e-4), df
    assert stats.t975(10**6) == pytest.approx(stats.Z975, abs=1e-5)
    assert stats.t975(30) > stats.t975(31) > stats.t975(38) > stats.t975(120) > stats.Z975  # decreasing


def test_median_sd_and_mean_interval_by_hand():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0 and stats.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert math.isnan(stats.median([]))
    # 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum to 32 over 7 degrees of freedom
    assert stats.sd([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(math.sqrt(32 / 7))
    assert stats.sd([0.5]) == 0.0
    # the bootstrap interval of 0, 1 is [0, 1] (see above); its mean is 0.5
    assert stats.mean_ci([0.0, 1.0]) == (0.5, 0.0, 1.0)
    mean, lo, hi = stats.mean_ci([0.3])
    assert mean == 0.3 and math.isnan(lo) and math.isnan(hi)


def test_verdict_between_cells():
    def cell(accs, seeds=None):
        return {"seed_ids": seeds or list(range(len(accs))), "seed_accs": accs}

    high, low = cell([0.9] * 6), cell([0.5] * 6)
    assert stats.seed_scores(cell([0.1, 0.2], [7, 3])) == {7: 0.1, 3: 0.2}
    # 6 pairs all one way: p = 2 / 64 < 0.05
    outcome, test = stats.verdict(high, low)
    assert outcome == "win" and test["p"] == 2 / 64 and test["delta"] == pytest.approx(0.4)
    assert stats.verdict(low, high)[0] == "loss"
    # the same cells under a 7-seed minimum only tie; 5 pairs can only tie (smallest p 1/16)
    assert stats.verdict(high, low, min_seeds=7)[0] == "tie"
    assert stats.verdict(cell([0.99] * 5), cell([0.01] * 5))[0] == "tie"
    # no seeds in one cell: a tie, never an error
    assert stats.verdict(cell([]), low)[0] == "tie"

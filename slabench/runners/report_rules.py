"""The SLA report's verdict rules: pure functions from aggregates to a verdict per claim.

The rules were written before the runs they judge. Each claim is decided by votes (per base
mixer, or per gate series): a vote is *for*, *against* or *neither*, and a majority of for (or
against) votes makes the claim supported (or not supported); anything else is inconclusive, and
an inconclusive claim says how many seeds per cell would give every undecided vote's test 80%
power at the observed effect (`stats.n_for_power`, normal approximation). A base the grid cannot
test (X at the ceiling everywhere; fewer than two H in range) is *untestable*: no number of seeds
gives it a vote, so it is left out of the majority instead of blocking it. Every rule's text is
printed in the report beside its verdict, and the thresholds below are the rules' only
parameters. Unit-tested on hand-made aggregates.

Arms (per base X): `base` X at its own output norm, `base_twin_norm` X with the twin's norm,
`twin` sla-X, `twin_base_norm` sla-X with X's norm, `control` sla-X with an independent
sigmoid gate per head instead of the softmax over heads, `fixed` sla-X with every gate held at
1/H (where a grid runs it). The contrasts between them say which difference explains SLA's: the
gate, the norm, or neither.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from slabench.runners import stats

MIN_SEEDS = 3  # a cell (or gate series) with fewer seeds never counts as a decided difference
MIN_GAIN = 0.05  # claim 1: a solve-rate gain whose interval lies below 5 pp is no gain
MIN_NOISE_SLOPE = 0.1  # claim 1: a gain growing by < 10 pp per unit of noise is no growth
MIN_SLOPE = 0.01  # claim 2: a gain growing by < 1 pp per doubling of H is no growth
LEARNS, CEILING = 0.2, 0.95  # claim 2: H counts where the base's mean test accuracy is in [LEARNS, CEILING]
PEAKED_SHARE, MIN_PEAK_MARGIN = 0.5, 0.05  # claim 3: near one-hot = over half the tokens peaked
LINEAR_SLOPE, SUPERLINEAR_SLOPE = 1.2, 1.5  # claim 4: log-log slopes of time and memory vs T
SLOPE_EXCESS, LARGE_SLOPE_EXCESS = 0.1, 0.3  # claim 4: an sla-X time slope above its base's
SMALL_OVERHEAD, LARGE_OVERHEAD = 1.25, 2.0  # claim 4: median sla-X / X time ratio
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
UNTESTABLE = "untestable"  # a base's vote no number of seeds can give: out of the majority

# (name, arm a, arm b): each contrast tests a against b, stratified by condition.
CONTRASTS = (
    ("sla", "twin", "base"),  # the claim: SLA against its base, as the paper compares them
    ("gate_twin_norm", "twin", "base_twin_norm"),  # the gate, both at the twin's norm
    ("gate_base_norm", "twin_base_norm", "base"),  # the gate, both at the base's norm
    ("norm", "base_twin_norm", "base"),  # the norm alone, no gate
    ("competition", "twin", "control"),  # softmax over heads against a sigmoid per head
    ("learned", "twin", "fixed"),  # learned gates against gates held at 1/H (optional arm)
    ("scale", "fixed", "base_twin_norm"),  # gates held at 1/H against none: their scale alone (optional)
)
OPTIONAL_CONTRASTS = ("learned", "scale")  # their arm joined the noise grid after the others

CONTRAST_TITLES = {
    "sla": "sla-X vs X",
    "gate_twin_norm": "gate, twin's norm",
    "gate_base_norm": "gate, base's norm",
    "norm": "norm alone",
    "competition": "softmax vs sigmoid",
    "learned": "learned vs held gate",
    "scale": "held gate vs none",
}


def _majority(per_base: dict[str, str]) -> str:
    votes = [v for v in per_base.values() if v != UNTESTABLE]
    n = len(votes)
    if n == 0:
        return INCONCLUSIVE
    if votes.count("for") > n / 2:
        return SUPPORTED
    if votes.count("against") > n / 2:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def settled(votes: dict[str, str], running: Iterable[str]) -> bool:
    """Whether a claim's verdict from `votes` (base -> vote) stands whatever the bases in `running`
    (runs still to come; a base with no vote yet among them) vote when their runs are in."""
    running = sorted(set(running))
    outcomes = {
        _majority({**votes, **dict(zip(running, combo))})  # a running base's vote so far is not final
        for combo in itertools.product(("for", "against", "neither", UNTESTABLE), repeat=len(running))
    }
    return len(outcomes) == 1


def _more_seeds(details: dict[str, dict]) -> int | None:
    """Seeds per cell at which a majority of the votes is decided or has 80% power at its observed
    effect (decided votes need none); None when that takes an infinite number."""
    voting = [d for d in details.values() if d["vote"] != UNTESTABLE]
    if not voting:
        return None
    needs = sorted(0 if d["vote"] != "neither" else d["seeds_needed"] for d in voting)
    need = needs[len(needs) // 2]  # the smallest count that covers more than half of the votes
    return need if math.isfinite(need) else None


def _seeds(n_needed: float) -> float:
    return math.ceil(n_needed) if math.isfinite(n_needed) else math.inf


EXPLAIN_RULE = (
    "Which arm explains a difference: the SLA-vs-base test (stratified, below) is split into the gate at a "
    "matched norm (sla-X against X with the twin's norm, and sla-X with the base's norm against X) and the norm "
    "alone (X with the twin's norm against X). The difference is the *gate*'s if a matched-norm gate test "
    "rejects at 5% in the same direction, the *norm*'s if the norm test does, both, or *neither*; a gate "
    "difference is *softmax competition* if sla-X also separates from the sigmoid control in that direction, "
    "else *any gate*. A base whose own norm is the twin's (Mamba-2) has no norm arms: its SLA-vs-base test is "
    "already at a matched norm, and the norm explains nothing there."
)
FIXED_RULE = (
    " Where sla-X with every gate held at 1/H ran (added to the noise grid after its first results): a gate "
    "difference that is not softmax competition is *learned gates* if sla-X separates from the held gate in that "
    "direction, else *the gates' 1/H scale* if the held gate separates from X with the twin's norm in that "
    "direction, else *any gate*."
)


# What a gate difference is: the first of these contrasts that agrees with it, else "any gate".
GATE_KINDS = (
    ("competition", "softmax competition"),
    ("learned", "learned gates"),
    ("scale", "the gates' 1/H scale"),
)


def explain(effects: dict[str, tuple[float, bool]], one_arm: Iterable[str] = ()) -> str:
    """effects: contrast name -> (its effect, a - b, and whether its test rejects no effect at 5%),
    for the contrasts whose arms ran. The effect is a stratified gain in solve rate (claim 1, via
    `rejected`) or a slope of the paired gain in log2 H (claim 2). one_arm: the contrasts whose two
    arms are one arm for this base (Mamba-2's own norm is the twin's, so its norm contrast compares
    an arm with itself): nothing to test, so no effect, and not missing either."""
    if "sla" not in effects:
        return "arms missing"
    delta, rejects = effects["sla"]
    if not rejects:
        return "no difference to explain"
    missing = [n for n, _, _ in CONTRASTS if n not in effects and n not in OPTIONAL_CONTRASTS and n not in one_arm]
    if missing:
        return f"undecided: control arms missing ({'; '.join(CONTRAST_TITLES[n] for n in missing)})"

    def agrees(name: str) -> bool:
        return name in effects and effects[name][1] and (effects[name][0] > 0) == (delta > 0)

    gate, norm = agrees("gate_twin_norm") or agrees("gate_base_norm"), agrees("norm")
    if gate:
        kind = next((k for name, k in GATE_KINDS if agrees(name)), "any gate")
        return f"gate ({kind}) and norm" if norm else f"gate ({kind})"
    return "norm" if norm else "neither"


def rejected(tests: dict[str, dict[str, Any]]) -> dict[str, tuple[float, bool]]:
    """`explain`'s effects from `stats.stratified_compare` results (one with no pairs: its arms did not run)."""
    return {name: (t["delta"], t["p"] < stats.ALPHA) for name, t in tests.items() if t["n"]}


NOISE_RULE = (
    "For each base, the solve indicators (test accuracy >= solve_at) of sla-X and X, paired by seed within each "
    "condition, are pooled over the conditions by the stratified exact test (sign flips within pairs; "
    "`stats.stratified_compare`), and the paired gain is regressed on the noise level (conditions at the "
    "length with the noise sweep). The base counts *for* the claim if the pooled test rejects equal solve rates at "
    f"5% with sla-X ahead and the gain's slope vs noise has its 95% interval above 0 (better *under noise*: the gain "
    f"grows with noise); *against* if the pooled gain's 95% interval lies below {MIN_GAIN:g} (no gain of "
    f"{100 * MIN_GAIN:g} pp, with confidence) or the slope's lies below 0 (the gain shrinks with noise); else "
    f"neither. Cells need >= {MIN_SEEDS} seeds. A base whose X solved every seed of every condition is untestable: "
    "at the ceiling no arm can gain, no number of seeds decides it, and it does not vote. Supported / not "
    "supported by a majority of the bases that vote, else "
    f"inconclusive, with the seeds per cell that would give each undecided base's tests 80% power at the observed "
    f"gain (at least {MIN_GAIN:g}; the paired differences' sd at least sqrt(g (1 - g)), the least a gain g "
    f"allows) and slope (at least {MIN_NOISE_SLOPE:g} per unit of noise). "
)

MQAR_RULE = (
    "As claim 1, without the noise interaction: for each base, sla-X against X on solve indicators pooled over the "
    f"d_model conditions by the stratified exact test. *For* if it rejects at 5% with sla-X ahead, *against* if the "
    f"pooled gain's 95% interval lies below {MIN_GAIN:g}, else neither (a base whose X solved every seed of every "
    "condition is untestable); majority of the bases that vote, as above. "
)


def accuracy_verdict(
    per_base: dict[str, dict[str, Any]], interaction: bool = True
) -> tuple[str, dict[str, dict], int | None]:
    """per_base: base -> {"tests": contrast -> stratified result, "seeds": fewest seeds of a cell,
    "slope": (slope, half-width, residual sd, noise levels) of the gain vs noise or None, "ceiling":
    whether X solved every seed of every condition, optionally "one_arm": `explain`'s}. Returns the
    verdict, the details per base and the seeds per cell that would decide it."""
    details = {}
    for base, b in sorted(per_base.items()):
        tests = b["tests"]
        if b.get("ceiling"):  # does not vote, so its difference (if any) is not explained either
            details[base] = {"vote": UNTESTABLE, "seeds_needed": math.inf, "explain": "X at the ceiling", **b}
            details[base]["differs"] = False
            continue
        effects = rejected(tests)
        # sla-X and X differ where the pooled test rejects equal solve rates
        why = {"explain": explain(effects, b.get("one_arm", ())), "differs": effects.get("sla", (0.0, False))[1]}
        if "sla" not in tests or not tests["sla"]["n"]:
            details[base] = {"vote": "neither", "seeds_needed": math.inf, **why, **b}
            continue
        main = tests["sla"]
        # A cell below MIN_SEEDS decides nothing yet: the tests still say how many seeds would.
        few = b["seeds"] < MIN_SEEDS
        ahead = main["p"] < stats.ALPHA and main["delta"] > 0 and not few
        no_gain = main["hi"] < MIN_GAIN and not few
        need = _seeds(stats.n_for_paired_rates(max(abs(main["delta"]), MIN_GAIN), main["sd"]) / main["conditions"])
        grows = shrinks = True
        if interaction:
            slope, half, resid_sd, levels = b["slope"] or (math.nan, math.nan, math.nan, [])
            grows, shrinks = slope - half > 0, slope + half < 0  # False when nan
            slope_need = (
                _seeds(stats.seeds_for_slope(max(abs(slope), MIN_NOISE_SLOPE), resid_sd, levels))
                if math.isfinite(slope)
                else math.inf
            )
            need = max(need if not (ahead or no_gain) else 0, slope_need if not (grows or shrinks) else 0)
        vote = "for" if ahead and grows else "against" if no_gain or (interaction and shrinks) else "neither"
        if few:
            vote, need = "neither", max(need, MIN_SEEDS)
        details[base] = {"vote": vote, "seeds_needed": need, **why, **b}
    return _majority({b: d["vote"] for b, d in details.items()}), details, _more_seeds(details)


HEADS_RULE = (
    "H varies at a fixed head dimension (d_model grows with H). For each base, the H values where X learns but is "
    f"below the ceiling (its mean test accuracy in [{LEARNS:g}, {CEILING:g}]) count; the per-seed accuracy gains "
    "(sla-X - X, paired by seed) at those H are regressed on log2 H. The base counts *for* the claim if the slope's "
    f"95% interval lies above 0, *against* if it lies below {MIN_SLOPE:g} ({100 * MIN_SLOPE:g} pp more gain per "
    f"doubling of H), else neither, and neither while an H that counts has fewer than {MIN_SEEDS} paired seeds. A "
    "base with fewer than 2 such H is untestable (no number of seeds gives it a slope) and does not vote. "
    "Supported / not supported by a majority of the bases that vote, else inconclusive, with the seeds per H for "
    f"80% power at the observed slope (at least {MIN_SLOPE:g}). "
)
HEADS_EXPLAIN_RULE = (
    "Which arm explains a slope (named, not voted; written after gla's verdict runs at H 2 and 4): each contrast's "
    "paired gains at the H that count are regressed on log2 H like sla-X - X's. A slope whose 95% interval excludes "
    "0 is the *gate*'s if a matched-norm gate contrast's slope (sla-X - X with the twin's norm, sla-X with the "
    "base's norm - X) excludes 0 on the same side, the *norm*'s if the norm contrast's (X with the twin's norm - X) "
    "does, both, or *neither*; a gate slope is *softmax competition* if sla-X - the sigmoid control's does too, "
    "else *any gate*."
)

HEADS_FIXED_RULE = (
    " Where sla-X with every gate held at 1/H ran (gla's, added after its verdict runs at H 2 and 4; RetNet's, "
    "before its runs at half gla's width): a gate slope that is not softmax competition is *learned gates* if sla-X "
    "- the held gate's slope agrees, else *the gates' 1/H scale* if the held gate - X with the twin's norm's does, "
    "else *any gate*."
)


def heads_verdict(
    gains: dict[str, list[tuple[int, float]]], contrasts: dict[str, dict[str, list[tuple[int, float]]]] | None = None
) -> tuple[str, dict[str, dict], int | None]:
    """gains: base -> [(H, paired per-seed gain sla-X - X)] at the H values that count; contrasts:
    contrast name -> base -> [(H, paired gain)] for each contrast of `CONTRASTS`, at any H (each is
    read at the H of that base's `gains` only), to name which explains the slope."""
    details = {}
    for base, points in sorted(gains.items()):
        effects = _slopes(contrasts or {}, base, points)
        xs = [math.log2(h) for h, _ in points]
        slope, ci, resid_sd = stats.slope_fit(xs, [g for _, g in points])
        levels = sorted(set(xs))
        few = min((xs.count(x) for x in levels), default=0) < MIN_SEEDS  # an H with fewer pairs decides nothing yet
        vote = (
            UNTESTABLE
            if len(levels) < 2
            else "neither"
            if math.isnan(ci) or few
            else "for"
            if slope - ci > 0
            else "against"
            if slope + ci < MIN_SLOPE
            else "neither"
        )
        need = (
            _seeds(stats.seeds_for_slope(max(abs(slope), MIN_SLOPE), resid_sd, levels))
            if math.isfinite(ci)
            else math.inf
        )
        if few and vote != UNTESTABLE:
            need = max(need, MIN_SEEDS)
        details[base] = {
            "slope": slope,
            "slope_ci": ci,
            "points": len(points),
            "heads": sorted({h for h, _ in points}),
            "vote": vote,
            "seeds_needed": need,
            "explain": "fewer than 2 H count"
            if vote == UNTESTABLE
            else "too few points"
            if math.isnan(ci)
            else explain(effects),
            # sla-X - X's gain has a slope in log2 H (its interval excludes 0) for the report's summary to explain
            "differs": vote != UNTESTABLE and effects.get("sla", (0.0, False))[1],
        }
    return _majority({b: d["vote"] for b, d in details.items()}), details, _more_seeds(details)


def _slopes(
    contrasts: dict[str, dict[str, list[tuple[int, float]]]], base: str, points: list[tuple[int, float]]
) -> dict[str, tuple[float, bool]]:
    """`explain`'s effects for a base: each contrast's slope of its gains in log2 H at the H of
    `points` (sla-X - X's, which the verdict counts), and whether its 95% interval excludes 0."""
    heads = {h for h, _ in points}
    effects = {}
    for name, by_base in {**contrasts, "sla": {base: points}}.items():  # sla-X - X's own points, as counted
        pts = [(h, g) for h, g in by_base.get(base, []) if h in heads]
        slope, ci, _ = stats.slope_fit([math.log2(h) for h, _ in pts], [g for _, g in pts])
        if math.isfinite(ci):  # too few points or H: no slope, as an arm that did not run
            effects[name] = (slope, abs(slope) > ci)
    return effects


GATES_RULE = (
    "For each SLA arm with softmax gates, number of heads, layer and gate (q, k), over the solved runs of the "
    "sections above (test accuracy >= solve_at): at the recall positions (each query and the context positions "
    "holding its tokens), the share whose largest gate exceeds 0.9 (`gate_peaked_recall`, `kgate_peaked_recall`) "
    f"at the last evaluation. Near one-hot means that share ends above {PEAKED_SHARE:g}: a series "
    f"counts *for* the claim if the mean final share's 95% interval lies above {PEAKED_SHARE:g}, *against* if it "
    f"lies below, else neither (and with fewer than {MIN_SEEDS} solved runs). Supported / not supported by a "
    "majority of the series, else inconclusive, with the solved runs per series for 80% power at the observed "
    f"distance from {PEAKED_SHARE:g} (at least {MIN_PEAK_MARGIN:g}). The sigmoid control is shown, not counted: "
    "its gates do not share one unit. "
)


def gates_verdict(finals: dict[str, list[float]]) -> tuple[str, dict[str, dict], int | None]:
    """finals: series name -> per solved run, its final share of peaked tokens."""
    details = {}
    for name, xs in sorted(finals.items()):
        mean, lo, hi = stats.mean_ci(xs)
        few = len(xs) < MIN_SEEDS or math.isnan(lo)
        vote = "neither" if few else "for" if lo > PEAKED_SHARE else "against" if hi < PEAKED_SHARE else "neither"
        margin = max(abs(mean - PEAKED_SHARE), MIN_PEAK_MARGIN)
        need = _seeds(stats.n_for_power(margin, stats.sd(xs))) if len(xs) >= 2 else math.inf
        details[name] = {"share": mean, "share_lo": lo, "share_hi": hi, "runs": len(xs), "vote": vote}
        details[name]["seeds_needed"] = max(need, MIN_SEEDS)
    return _majority({n: d["vote"] for n, d in details.items()}), details, _more_seeds(details)


COST_RULE = (
    "From the latest speed sweep on a GPU (else the latest): supported if every sla-X's fwd+bwd peak memory per "
    "sequence grows as T^s "
    f"with s <= {LINEAR_SLOPE:g} (linear), its time slope is <= {LINEAR_SLOPE:g} or at most {SLOPE_EXCESS:g} above "
    f"its base's (SLA claims to keep its base's complexity: a base that is itself superlinear on this machine, "
    f"e.g. a launch-bound fallback path, says nothing about SLA), and every base's median sla-X / X time ratio "
    f"(CUDA-graph replay where timed, else eager) is <= {SMALL_OVERHEAD:g}; not supported if some memory slope "
    f"exceeds {SUPERLINEAR_SLOPE:g}, some time slope exceeds both {SUPERLINEAR_SLOPE:g} and its base's by more "
    f"than {LARGE_SLOPE_EXCESS:g}, or some median ratio exceeds {LARGE_OVERHEAD:g}; else (or with no sweep) "
    "inconclusive."
)


def cost_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Median overhead ratio per base (sla-X over X as registered; and, where the sweep timed arms,
    at the same output norm: the gate alone) and the sla-X fwd+bwd slopes from a sweep's summary."""
    # Imported here: both packages import torch, which the other rules do without.
    from slabench.models.arms import split_arm
    from slabench.runners.sweep.analysis import registered_pair

    modes = {o["mode"] for o in summary.get("sla_overhead", [])}
    mode = "fwdbwd-graph" if "fwdbwd-graph" in modes else "fwdbwd"
    ratios: dict[str, list[float]] = defaultdict(list)
    same_norm: dict[str, list[float]] = defaultdict(list)  # Mamba-2's registered pair is one too
    arms_timed = False
    for o in (o for o in summary.get("sla_overhead", []) if o["mode"] == mode):
        registered = registered_pair(o)
        arms_timed |= not registered
        if registered:
            ratios[o["base"]].append(o["ratio"])
        if o.get("same_norm"):
            same_norm[o["base"]].append(o["ratio"])
    # the registered mixers' slopes only: an arm's has no base slope beside it in the rule
    fwdbwd = {
        s["mixer"]: s for s in summary.get("slopes", []) if s["mode"] == "fwdbwd" and not split_arm(s["mixer"])[1]
    }
    slopes = [{**s, "base_time": fwdbwd.get(m[4:], {}).get("time")} for m, s in fwdbwd.items() if m.startswith("sla-")]
    return {
        "mode": mode,
        "overhead": {b: stats.median(r) for b, r in sorted(ratios.items())},
        # only where the sweep timed arms: a sweep of the registered mixers alone has Mamba-2's
        "overhead_same_norm": {b: stats.median(r) for b, r in sorted(same_norm.items())} if arms_timed else {},
        "slopes": sorted(slopes, key=lambda s: s["mixer"]),
    }


def cost_verdict(summary: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    if summary is None:
        return INCONCLUSIVE, None
    c = cost_summary(summary)
    memory = [s["memory"] for s in c["slopes"] if s["memory"] is not None]
    time = [
        (s["time"], s["base_time"] if s["base_time"] is not None else math.inf)  # no base: no allowance
        for s in c["slopes"]
        if s["time"] is not None
    ]
    overheads = list(c["overhead"].values())
    if not (memory or time) and not overheads:
        return INCONCLUSIVE, c
    if (
        any(m > SUPERLINEAR_SLOPE for m in memory)
        or any(o > LARGE_OVERHEAD for o in overheads)
        or any(t > SUPERLINEAR_SLOPE and t > b + LARGE_SLOPE_EXCESS for t, b in time)
    ):
        return NOT_SUPPORTED, c
    if (
        (memory or time)
        and overheads
        and all(m <= LINEAR_SLOPE for m in memory)
        and all(t <= LINEAR_SLOPE or t <= b + SLOPE_EXCESS for t, b in time)
        and all(o <= SMALL_OVERHEAD for o in overheads)
    ):
        return SUPPORTED, c
    return INCONCLUSIVE, c

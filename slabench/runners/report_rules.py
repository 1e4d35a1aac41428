"""The SLA report's verdict rules: pure functions from aggregates to a verdict per claim.

Each claim is decided by votes (per base mixer, or per gate series): a vote is *for*, *against*
or *neither*, and a majority of for (or against) votes makes the claim supported (or not
supported); anything else is inconclusive. Every rule's text is printed in the report beside
its verdict, and the thresholds below are the rules' only parameters. Unit-tested on hand-made
aggregates.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from slabench.runners import stats

MIN_SEEDS = 3  # a cell with fewer seeds never counts as a significant difference
MIN_SLOPE = 0.01  # claim 2: a gain growing by < 1 pp per doubling of H is no growth
MIN_DROP = 0.05  # claim 3: an entropy drop of < 0.05 (of log H) is no sharpening
LINEAR_SLOPE, SUPERLINEAR_SLOPE = 1.2, 1.5  # claim 4: log-log slopes of time and memory vs T
SLOPE_EXCESS, LARGE_SLOPE_EXCESS = 0.1, 0.3  # claim 4: an sla-X time slope above its base's
SMALL_OVERHEAD, LARGE_OVERHEAD = 1.25, 2.0  # claim 4: median sla-X / X time ratio
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


def _majority(per_base: dict[str, str]) -> str:
    n = len(per_base)
    if n == 0:
        return INCONCLUSIVE
    votes = list(per_base.values())
    if votes.count("for") > n / 2:
        return SUPPORTED
    if votes.count("against") > n / 2:
        return NOT_SUPPORTED
    return INCONCLUSIVE


ACCURACY_RULE = (
    "For each base, over the conditions (columns) where both ran: the base counts *for* the claim if "
    "the SLA twin's mean accuracy across conditions exceeds the base's and the twin wins (an exact permutation "
    f"test paired by seed rejects equal accuracy at 5%, >= {MIN_SEEDS} seeds per cell, twin ahead) in at least "
    "half of them; *against* if the "
    "reverse (lower mean and losses in at least half); else neither. Supported if a majority of the bases "
    "count for, not supported if a majority count against, else inconclusive. With n paired seeds the test's "
    "smallest p is 2^(1-n), so a cell needs 6 seeds before the twin can win or lose."
)


def accuracy_verdict(pairs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]) -> tuple[str, dict[str, dict]]:
    """pairs: base -> [(twin cell, base cell) per condition]; a cell has acc, seeds, seed_ids, seed_accs."""
    details = {}
    for base, cells in sorted(pairs.items()):
        if not cells:
            continue
        outcomes = [stats.verdict(t, b, MIN_SEEDS)[0] for t, b in cells]
        twin_mean = sum(t["acc"] for t, _ in cells) / len(cells)
        base_mean = sum(b["acc"] for _, b in cells) / len(cells)
        half = len(cells) / 2
        vote = (
            "for"
            if twin_mean > base_mean and outcomes.count("win") >= half
            else "against"
            if twin_mean < base_mean and outcomes.count("loss") >= half
            else "neither"
        )
        details[base] = {
            "twin_mean": twin_mean,
            "base_mean": base_mean,
            "wins": outcomes.count("win"),
            "losses": outcomes.count("loss"),
            "conditions": len(cells),
            "vote": vote,
        }
    return _majority({b: d["vote"] for b, d in details.items()}), details


HEADS_RULE = (
    "For each base, the per-seed gains (twin accuracy - base accuracy, paired by seed) are regressed on "
    "log2 H. The base counts *for* the claim if the slope's 95% interval lies above 0, else *against* if it "
    f"lies below {MIN_SLOPE:g} (less than {100 * MIN_SLOPE:g} pp more gain per doubling of H, with confidence), "
    "else neither. Supported / not supported by a majority of the bases, else inconclusive."
)


def heads_verdict(gains: dict[str, list[tuple[int, float]]]) -> tuple[str, dict[str, dict]]:
    """gains: base -> [(H, paired per-seed gain)]."""
    details = {}
    for base, points in sorted(gains.items()):
        slope, ci = stats.slope_ci([math.log2(h) for h, _ in points], [g for _, g in points])
        vote = (
            "neither"
            if math.isnan(ci)
            else "for"
            if slope - ci > 0
            else "against"
            if slope + ci < MIN_SLOPE
            else "neither"
        )
        details[base] = {"slope": slope, "slope_ci": ci, "points": len(points), "vote": vote}
    return _majority({b: d["vote"] for b, d in details.items()}), details


GATES_RULE = (
    "For each SLA mixer, number of heads, layer and gate (q, k), over every run of the sections above: the change of "
    "the "
    "normalised gate entropy (entropy / log H: 1 uniform, 0 one-hot) from the first logged evaluation to "
    f"the last. A series counts *for* the claim if the mean change's 95% interval lies below -{MIN_DROP:g} (the "
    f"entropy fell by more than {MIN_DROP:g}, with confidence), *against* if it lies above -{MIN_DROP:g}, else "
    "neither. "
    "Supported / not supported by a majority of the series, else inconclusive."
)


def gates_verdict(deltas: dict[str, list[float]]) -> tuple[str, dict[str, dict]]:
    """deltas: series name -> per-run (final - initial) normalised entropy."""
    details = {}
    for name, ds in sorted(deltas.items()):
        mean, lo, hi = stats.mean_ci(ds)
        vote = (
            "neither"
            if len(ds) < MIN_SEEDS or math.isnan(lo)
            else "for"
            if hi < -MIN_DROP
            else "against"
            if lo > -MIN_DROP
            else "neither"
        )
        details[name] = {"delta": mean, "delta_lo": lo, "delta_hi": hi, "runs": len(ds), "vote": vote}
    return _majority({n: d["vote"] for n, d in details.items()}), details


COST_RULE = (
    "From the latest speed sweep: supported if every sla-X's fwd+bwd peak memory per sequence grows as T^s "
    f"with s <= {LINEAR_SLOPE:g} (linear), its time slope is <= {LINEAR_SLOPE:g} or at most {SLOPE_EXCESS:g} above "
    f"its base's (SLA claims to keep its base's complexity: a base that is itself superlinear on this machine, "
    f"e.g. a launch-bound fallback path, says nothing about SLA), and every base's median sla-X / X time ratio "
    f"(CUDA-graph replay where timed, else eager) is <= {SMALL_OVERHEAD:g}; not supported if some memory slope "
    f"exceeds {SUPERLINEAR_SLOPE:g}, some time slope exceeds both {SUPERLINEAR_SLOPE:g} and its base's by more "
    f"than {LARGE_SLOPE_EXCESS:g}, or some median ratio exceeds {LARGE_OVERHEAD:g}; else (or with no sweep) "
    "inconclusive."
)


def cost_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Median overhead ratio per base and the sla-X fwd+bwd slopes from a sweep's summary."""
    modes = {o["mode"] for o in summary.get("sla_overhead", [])}
    mode = "fwdbwd-graph" if "fwdbwd-graph" in modes else "fwdbwd"
    ratios: dict[str, list[float]] = defaultdict(list)
    for o in summary.get("sla_overhead", []):
        if o["mode"] == mode:
            ratios[o["base"]].append(o["ratio"])
    fwdbwd = {s["mixer"]: s for s in summary.get("slopes", []) if s["mode"] == "fwdbwd"}
    slopes = [{**s, "base_time": fwdbwd.get(m[4:], {}).get("time")} for m, s in fwdbwd.items() if m.startswith("sla-")]
    return {
        "mode": mode,
        "overhead": {b: stats.median(r) for b, r in sorted(ratios.items())},
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

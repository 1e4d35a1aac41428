"""The SLA report's verdict rules (`slabench.runners.report_rules`) on hand-made aggregates."""

from __future__ import annotations

import json
import math

import pytest

from slabench.runners import report_rules as rp
from slabench.runners import stats
from slabench.runners.report_data import Arms
from slabench.runners.report_sections import _accuracy_claim, _per_base, _untimed_paths, cost_section


def test_majority_needs_more_than_half_of_the_votes():
    assert rp._majority({"a": "for", "b": "for", "c": "against"}) == rp.SUPPORTED
    assert rp._majority({"a": "for", "b": "against"}) == rp.INCONCLUSIVE  # a split is no majority
    assert rp._majority({"a": "for", "b": "for", "c": "neither", "d": "neither"}) == rp.INCONCLUSIVE  # 2 of 4
    assert rp._majority({"a": "against", "b": "against", "c": "for"}) == rp.NOT_SUPPORTED
    assert rp._majority({}) == rp.INCONCLUSIVE
    # An untestable base is out of the count: 1 of 1 voting base decides, none decides nothing.
    assert rp._majority({"a": "against", "b": rp.UNTESTABLE, "c": rp.UNTESTABLE}) == rp.NOT_SUPPORTED
    assert rp._majority({"a": "for", "b": "neither", "c": rp.UNTESTABLE}) == rp.INCONCLUSIVE  # 1 of 2
    assert rp._majority({"a": rp.UNTESTABLE}) == rp.INCONCLUSIVE


def test_settled_when_no_votes_still_to_come_can_turn_the_verdict():
    """By hand: three bases cast neither, so two more can reach at most 2 of 5 votes either way;
    two against of three stand whatever the third votes (untestable: 2 of 2); one against with
    two bases to come does not (two for would win); with no vote cast, any first vote decides."""
    three_neither = {"gla": "neither", "gdn": "neither", "retnet": "neither"}
    assert rp.settled(three_neither, {"deltanet", "mamba2"})
    assert rp.settled({"gla": "against", "gdn": "against"}, {"retnet"})
    assert not rp.settled({"gla": "against"}, {"retnet", "gdn"})
    assert not rp.settled({}, {"gla"})
    assert rp.settled({"gla": "for"}, ())  # nothing to come
    # A base to come that has already voted is re-cast: its vote is not final.
    assert not rp.settled({"gla": "for", "gdn": "for", "retnet": "against"}, {"gla"})


def strata(pairs: list[tuple[list[float], list[float]]]) -> list[tuple[dict, dict]]:
    return [(dict(enumerate(a)), dict(enumerate(b))) for a, b in pairs]


def test_power_and_stratified_test_hand_computed():
    # ((1.959964 + 0.841621) * 0.5 / 0.2)^2 = (2.801585 * 2.5)^2 = 49.05
    assert math.isclose(stats.n_for_power(0.2, 0.5), 49.0555, rel_tol=1e-4)
    assert stats.n_for_power(0.0, 0.5) == math.inf and stats.n_for_power(0.3, 0.0) == 0.0
    # levels 1, 2, 3: sum (x - 2)^2 = 2, so k = ((2.801585 * 0.1 / 0.05)^2) / 2 = 31.39 / 2
    assert math.isclose(stats.seeds_for_slope(0.05, 0.1, [1, 2, 3]), 15.696, rel_tol=1e-3)
    # Two conditions, 3 seeds each: diffs (1, 1, 0) and (1, 0, 0): sum 3 over 2^6 flips;
    # |sum| >= 3 in 2 * 4 of the 64 (flips of the three nonzero ones: all +, all -; zeros free).
    t = stats.stratified_compare(strata([([1, 1, 0], [0, 0, 0]), ([1, 0, 0], [0, 0, 0])]))
    assert math.isclose(t["p"], 16 / 64) and t["n"] == 6 and t["conditions"] == 2
    assert math.isclose(t["delta"], 0.5) and math.isclose(t["sd"], math.sqrt(0.3))
    # Unequal conditions weigh by pairs, as the test does: diffs (1, 1, 1, 1) and (0,) give the
    # gain 4/5, not the mean of condition means (1 + 0) / 2; p: 2 of the 16 flips of the four ones.
    t = stats.stratified_compare(strata([([1, 1, 1, 1], [0, 0, 0, 0]), ([0], [0])]))
    assert math.isclose(t["delta"], 0.8) and math.isclose(t["p"], 2 / 16) and t["n"] == 5
    # Its interval is the paired one over all five pairs (4 of 5 against 0 of 5), not a bootstrap
    # within conditions, which would give the point 4/5 (every resample of (1, 1, 1, 1) and (0,)).
    assert (t["lo"], t["hi"]) == stats.paired_difference_ci([1, 1, 1, 1, 0], [0] * 5)
    assert t["lo"] < 0.8 < t["hi"]
    with pytest.raises(ValueError, match="solve indicators"):
        stats.stratified_compare(strata([([0.5], [0.0])]))


def test_a_base_no_arm_lifts_off_the_floor_is_undecided_not_against():
    # 40 pairs, no arm solving any: the gain's interval is +-8.8 pp (Wilson bounds of 0/40), so
    # no 5-point gain is ruled out; the seeds for 80% power at 5 pp use the least sd a 5-point
    # gain allows, sqrt(0.05 x 0.95): ((1.959964 + 0.841621) x 0.217945 / 0.05)^2 / 4 = 37.3.
    zeros = strata([([0] * 10, [0] * 10)] * 4)
    main = stats.stratified_compare(zeros)
    assert main["sd"] == 0.0 and main["hi"] > rp.MIN_GAIN
    no_slope = (0.0, 0.0, 0.0, [0, 0.25, 0.5, 0.75])
    verdict, d, more = rp.accuracy_verdict({"mamba2": {"tests": {"sla": main}, "seeds": 10, "slope": no_slope}})
    assert d["mamba2"]["vote"] == "neither" and d["mamba2"]["seeds_needed"] == 38
    assert verdict == rp.INCONCLUSIVE and more == 38


def per_base(delta: float, slope: tuple | None, p: float = 0.01, hi: float = 0.9, seeds: int = 10) -> dict:
    main = {"p": p, "n": 40, "conditions": 4, "delta": delta, "lo": delta - 0.1, "hi": hi, "sd": 0.5}
    return {"tests": {"sla": main}, "seeds": seeds, "slope": slope}


def test_noise_rule_needs_a_gain_that_grows_with_noise():
    grows, flat, shrinks = (0.4, 0.1, 0.3, [0, 0.25, 0.5, 0.75]), (0.0, 0.5, 0.3, [0, 0.5]), (-0.4, 0.1, 0.3, [0, 1])
    verdict, d, _ = rp.accuracy_verdict({"gla": per_base(0.3, grows), "gdn": per_base(0.3, grows)})
    assert verdict == rp.SUPPORTED and d["gla"]["vote"] == "for"
    # A pooled gain whose slope vs noise is undecided: better, but not shown to be better *under noise*.
    verdict, d, more = rp.accuracy_verdict({"gla": per_base(0.3, flat)})
    assert verdict == rp.INCONCLUSIVE and d["gla"]["vote"] == "neither"
    # seeds: the slope's test, effect max(|0|, 0.1) = 0.1, resid sd 0.3, levels 0, 0.5 (sxx 0.125):
    # ((2.801585 * 0.3 / 0.1)^2) / 0.125 = 70.64 / 0.125 = 565.1 -> 566 per condition
    assert d["gla"]["seeds_needed"] == 566 and more == 566
    assert rp.accuracy_verdict({"gla": per_base(0.3, shrinks)})[1]["gla"]["vote"] == "against"
    loss = per_base(-0.3, grows, hi=-0.2)  # a significant loss: the twin behind, never "for"
    assert rp.accuracy_verdict({"gla": loss})[1]["gla"]["vote"] == "against"
    no_gain = per_base(0.0, flat, p=1.0, hi=0.04)  # the pooled gain's interval lies below 5 pp
    assert rp.accuracy_verdict({"gla": no_gain, "gdn": no_gain})[0] == rp.NOT_SUPPORTED
    # A cell below 3 seeds decides nothing, however clear its tests, but still says what would:
    # the pooled test at gain 0.3, sd 0.5: ((2.801585 * 0.5 / 0.3)^2) / 4 conditions = 5.45 -> 6.
    verdict, d, more = rp.accuracy_verdict({"gla": per_base(0.3, grows, seeds=2)})
    assert verdict == rp.INCONCLUSIVE and d["gla"]["vote"] == "neither" and d["gla"]["seeds_needed"] == 6
    assert rp.accuracy_verdict({"gla": per_base(0.0, flat, p=1.0, hi=0.04, seeds=2)})[1]["gla"]["vote"] == "neither"
    at_ceiling = {**no_gain, "ceiling": True}  # X solved every seed everywhere: no room to gain, no "against"
    verdict, d, more = rp.accuracy_verdict({"gla": at_ceiling, "gdn": at_ceiling})
    assert verdict == rp.INCONCLUSIVE and d["gla"]["vote"] == rp.UNTESTABLE and more is None
    assert d["gla"]["explain"] == "X at the ceiling"
    # ... and does not block the bases that vote: gdn's "against" is 1 of 1 vote.
    verdict, d, more = rp.accuracy_verdict({"gla": at_ceiling, "gdn": no_gain, "retnet": at_ceiling})
    assert verdict == rp.NOT_SUPPORTED and d["gdn"]["vote"] == "against" and more == 0
    few = per_base(0.5, grows, seeds=2)  # fewer than MIN_SEEDS seeds never decide
    assert rp.accuracy_verdict({"gla": few})[1]["gla"]["vote"] == "neither"
    # Without the interaction (MQAR): the pooled test alone; the power of the pooled test:
    # effect 0.1, sd 0.5 over 4 conditions: ((2.801585 * 5)^2) / 4 = 196.2 / 4 -> 50 per condition
    verdict, d, _ = rp.accuracy_verdict({"gla": per_base(0.1, None, p=0.2)}, interaction=False)
    assert verdict == rp.INCONCLUSIVE and d["gla"]["seeds_needed"] == 50
    assert rp.accuracy_verdict({"gla": per_base(0.3, None)}, interaction=False)[0] == rp.SUPPORTED
    assert rp.accuracy_verdict({})[0] == rp.INCONCLUSIVE


def test_explain_names_the_arm_behind_the_difference():
    def t(delta: float, p: float) -> tuple[float, bool]:
        return rp.rejected({"t": {"p": p, "delta": delta, "n": 30}})["t"]

    sig, ns = t(0.4, 0.001), t(0.0, 0.9)
    assert sig == (0.4, True) and ns == (0.0, False) and t(0.4, 0.05) == (0.4, False)  # rejects below 5%
    assert rp.rejected({"sla": {"p": 1.0, "delta": 0.0, "n": 0}}) == {}  # no pairs: its arms did not run
    both = {"sla": sig, "gate_twin_norm": ns, "gate_base_norm": ns, "norm": sig, "competition": ns}
    assert rp.explain(both) == "norm"  # the measured confound: the norm alone moves accuracy
    gate = {**both, "norm": ns, "gate_base_norm": sig, "competition": sig}
    assert rp.explain(gate) == "gate (softmax competition)"
    assert rp.explain({**gate, "competition": ns}) == "gate (any gate)"
    assert rp.explain({**gate, "norm": sig}) == "gate (softmax competition) and norm"
    assert rp.explain({**gate, "gate_base_norm": t(-0.4, 0.001)}) == "neither"  # wrong direction
    assert rp.explain({**both, "sla": ns}) == "no difference to explain"
    assert rp.explain({"sla": sig}) == (
        "undecided: control arms missing (gate, twin's norm; gate, base's norm; norm alone; softmax vs sigmoid)"
    )
    # A base whose own norm is the twin's has no norm arms: its norm contrast is one arm, not missing.
    mamba = {"sla": sig, "gate_twin_norm": sig, "gate_base_norm": sig, "competition": ns}
    assert rp.explain(mamba) == "undecided: control arms missing (norm alone)"
    assert rp.explain(mamba, one_arm=["norm"]) == "gate (any gate)"
    assert rp.explain({}) == "arms missing"
    # With the gate held at 1/H beside: learned gates, or the gates' scale alone, or still any gate.
    anyg = {**gate, "competition": ns}
    assert rp.explain({**anyg, "learned": sig, "scale": ns}) == "gate (learned gates)"
    assert rp.explain({**anyg, "learned": ns, "scale": sig}) == "gate (the gates' 1/H scale)"
    assert rp.explain({**anyg, "learned": ns, "scale": ns}) == "gate (any gate)"
    assert rp.explain({**anyg, "learned": t(-0.4, 0.001), "scale": t(-0.4, 0.001)}) == "gate (any gate)"
    assert rp.explain({**gate, "learned": sig, "scale": sig}) == "gate (softmax competition)"  # most specific


def test_heads_verdict_rule():
    def points(gain_per_doubling: float, jitter: float) -> list[tuple[int, float]]:
        return [(h, gain_per_doubling * math.log2(h) + jitter * s) for h in (2, 4, 8, 16) for s in (-1, 0, 1)]

    growing, flat, noisy = points(0.05, 0.005), points(0.0, 0.002), points(0.02, 0.2)
    assert rp.heads_verdict({"gla": growing, "gdn": growing, "retnet": flat})[0] == rp.SUPPORTED
    assert rp.heads_verdict({"gla": flat, "gdn": flat, "retnet": growing})[0] == rp.NOT_SUPPORTED
    verdict, d, more = rp.heads_verdict({"gla": noisy})
    assert verdict == rp.INCONCLUSIVE and more == d["gla"]["seeds_needed"] > 3
    assert rp.heads_verdict({"gla": points(-0.05, 0.005)})[1]["gla"]["vote"] == "against"
    # An H with fewer than MIN_SEEDS pairs decides nothing yet, however clear the slope.
    thin = points(0.05, 0.005)[:-2]  # H 16 keeps one pair
    d = rp.heads_verdict({"gla": thin})[1]["gla"]
    assert d["vote"] == "neither" and d["seeds_needed"] == rp.MIN_SEEDS
    assert rp.heads_verdict({"gla": points(0.05, 0.005)[:-1]})[1]["gla"]["vote"] == "neither"  # 2 pairs at H 16
    one_h = [(4, 0.1), (4, 0.2), (4, 0.3)]  # one H in range: no slope, whatever the seeds
    assert rp.heads_verdict({"gla": one_h})[1]["gla"]["vote"] == rp.UNTESTABLE
    assert rp.heads_verdict({"gdn": []})[1]["gdn"]["vote"] == rp.UNTESTABLE  # no H in range at all
    assert rp.heads_verdict({"gla": points(-0.05, 0.005), "retnet": one_h})[0] == rp.NOT_SUPPORTED
    # The seeds that would decide count the voting bases only: gla's, not retnet's infinity.
    verdict, d, more = rp.heads_verdict({"gla": noisy, "retnet": one_h})
    assert verdict == rp.INCONCLUSIVE and more == d["gla"]["seeds_needed"] and d["retnet"]["seeds_needed"] == math.inf


def test_heads_explain_names_the_arm_behind_the_slope():
    def points(gain_per_doubling: float, heads=(2, 4, 8)) -> list[tuple[int, float]]:
        return [(h, gain_per_doubling * math.log2(h) + 0.005 * s) for h in heads for s in (-1, 0, 1)]

    falling, flat = points(-0.1), points(0.0)
    # The gain falls with H, and so does the gate's at the base's norm; the norm's and the softmax's
    # against the sigmoid are flat: the gate explains it, any gate. Gains at an H that does not count
    # (16, outside sla-X - X's points) are left out of the contrasts' slopes.
    contrasts = {
        "gate_twin_norm": {"gla": flat},
        "gate_base_norm": {"gla": falling + [(16, 5.0)] * 3},
        "norm": {"gla": flat},
        "competition": {"gla": flat},
    }
    d = rp.heads_verdict({"gla": falling}, contrasts)[1]["gla"]
    assert d["vote"] == "against" and d["explain"] == "gate (any gate)"
    assert (
        rp.heads_verdict({"gla": falling}, {**contrasts, "competition": {"gla": falling}})[1]["gla"]["explain"]
        == "gate (softmax competition)"
    )
    # With the gate held at 1/H beside (gla's in the heads grid): its scale, or what the gates learn.
    held = {**contrasts, "learned": {"gla": flat}, "scale": {"gla": falling}}
    assert rp.heads_verdict({"gla": falling}, held)[1]["gla"]["explain"] == "gate (the gates' 1/H scale)"
    held = {**contrasts, "learned": {"gla": falling}, "scale": {"gla": flat}}
    assert rp.heads_verdict({"gla": falling}, held)[1]["gla"]["explain"] == "gate (learned gates)"
    rising = {**contrasts, "gate_base_norm": {"gla": points(0.1)}}  # the other direction agrees with nothing
    assert rp.heads_verdict({"gla": falling}, rising)[1]["gla"]["explain"] == "neither"
    assert rp.heads_verdict({"gla": flat}, contrasts)[1]["gla"]["explain"] == "no difference to explain"
    missing = {k: v for k, v in contrasts.items() if k != "norm"}
    assert (
        rp.heads_verdict({"gla": falling}, missing)[1]["gla"]["explain"]
        == "undecided: control arms missing (norm alone)"
    )
    one_h = [(4, 0.1), (4, 0.2), (4, 0.3)]
    assert rp.heads_verdict({"gla": one_h}, contrasts)[1]["gla"]["explain"] == "fewer than 2 H count"
    assert rp.heads_verdict({"gla": [(2, 0.1), (4, 0.2)]}, contrasts)[1]["gla"]["explain"] == "too few points"


def test_summary_names_which_way_a_base_differs_and_why():
    """`differs` is the main test's rejection (claim 1) or an sla-X - X slope that excludes 0
    (claim 2), never for a base that does not vote; the summary's phrase says which way."""
    grows, flat = (0.4, 0.1, 0.3, [0, 0.25, 0.5, 0.75]), (0.0, 0.5, 0.3, [0, 0.5])
    d = rp.accuracy_verdict({"gla": per_base(0.3, grows), "gdn": per_base(0.0, flat, p=1.0, hi=0.04)})[1]
    assert d["gla"]["differs"] and not d["gdn"]["differs"]
    # At the ceiling the base does not vote, and a rejection there is not explained.
    d = rp.accuracy_verdict({"gla": {**per_base(-0.3, flat, hi=-0.2), "ceiling": True}})[1]
    assert d["gla"]["vote"] == rp.UNTESTABLE and not d["gla"]["differs"]

    def points(gain_per_doubling: float) -> list[tuple[int, float]]:
        return [(h, gain_per_doubling * math.log2(h) + 0.005 * s) for h in (2, 4, 8) for s in (-1, 0, 1)]

    d = rp.heads_verdict({"gla": points(-0.1), "retnet": points(0.0), "gdn": [(4, 0.1), (4, 0.2), (4, 0.3)]})[1]
    assert d["gla"]["differs"] and not d["retnet"]["differs"] and not d["gdn"]["differs"]
    votes, explained = _per_base(
        {
            "gla": {"vote": "neither", "differs": True, "explain": "gate (any gate)", "tests": {"sla": {"delta": 0.7}}},
            "gdn": {"vote": "neither", "differs": True, "explain": "norm", "tests": {"sla": {"delta": -0.2}}},
            "retnet": {"vote": "for", "differs": False, "explain": "no difference to explain"},
        }
    )
    assert votes == {"gla": "neither", "gdn": "neither", "retnet": "for"}
    assert explained == {"gla": "sla-gla ahead: gate (any gate)", "gdn": "sla-gdn behind: norm"}
    heads = {"gla": {"vote": "against", "differs": True, "explain": "gate (any gate)", "heads": [2, 4], "slope": -0.2}}
    assert _per_base(heads, in_heads=True)[1] == {"gla": "sla-gla's gain falls with H: gate (any gate)"}


def test_gates_verdict_rule_on_the_peaked_share():
    peaked, spread, low, mixed = [0.8, 0.85, 0.9], [0.001, 0.002, 0.0], [0.1, 0.15, 0.2], [0.2, 0.9, 0.5]
    assert rp.gates_verdict({"L0 q": peaked, "L0 k": peaked, "L1 q": low})[0] == rp.SUPPORTED
    assert rp.gates_verdict({"L0 q": low, "L1 q": spread})[0] == rp.NOT_SUPPORTED
    verdict, d, more = rp.gates_verdict({"L0 q": mixed})
    # mean 0.5333, distance 0.0333 -> MIN_PEAK_MARGIN 0.05; sd 0.35119: (2.801585 * 0.35119 / 0.05)^2 = 387.2
    assert verdict == rp.INCONCLUSIVE and d["L0 q"]["seeds_needed"] == 388 == more
    assert rp.gates_verdict({"L0 q": [0.9, 0.9]})[0] == rp.INCONCLUSIVE  # fewer than MIN_SEEDS runs


def sweep_summary(ratio: float, time_slope: float, memory_slope: float, base_time_slope: float = 1.0) -> dict:
    return {
        "sla_overhead": [
            {"base": b, "mode": m, "shape": [1, t, 8, 16], "sweep": "length", "ratio": ratio * f}
            for b in ("gla", "gdn")
            for m in ("fwdbwd", "fwdbwd-graph")
            for t, f in ((256, 1.0), (4096, 1.0))
        ],
        "slopes": [
            {"mixer": x, "mode": "fwdbwd", "time": time_slope, "memory": memory_slope} for x in ("sla-gla", "sla-gdn")
        ]
        + [{"mixer": x, "mode": "fwdbwd", "time": base_time_slope, "memory": 1.0} for x in ("gla", "gdn")]
        + [{"mixer": "attention", "mode": "fwdbwd", "time": 2.0, "memory": 2.0}],
    }


def test_cost_reads_the_registered_pairs_and_shows_the_gate_alone_where_arms_were_timed(tmp_path):
    """A sweep that timed the twin's arm at the base's norm (`--mixers gla,sla-gla/head-norm`) adds
    the gate-alone ratio beside the registered one; neither its overhead rows nor its slopes enter
    the rule, which stays on the registered mixers."""
    summary = sweep_summary(1.1, 1.0, 1.0)
    for o in summary["sla_overhead"]:
        o.update(twin=f"sla-{o['base']}", baseline=o["base"], same_norm=False)
    arm_rows = [
        {**o, "twin": "sla-gla/head-norm", "same_norm": True, "ratio": r}
        for o, r in zip([o for o in summary["sla_overhead"] if o["base"] == "gla"], (1.02, 1.04, 1.06, 1.08))
    ]
    summary["sla_overhead"] += arm_rows
    summary["slopes"].append({"mixer": "sla-gla/head-norm", "mode": "fwdbwd", "time": 1.9, "memory": 1.9})
    c = rp.cost_summary(summary)
    assert c["mode"] == "fwdbwd-graph" and c["overhead"] == {"gla": pytest.approx(1.1), "gdn": pytest.approx(1.1)}
    assert c["overhead_same_norm"] == {"gla": pytest.approx(1.07)}  # median of the graph rows 1.06 and 1.08
    assert [s["mixer"] for s in c["slopes"]] == ["sla-gdn", "sla-gla"]  # the arm's 1.9 would fail the rule
    assert rp.cost_verdict(summary)[0] == rp.SUPPORTED

    (tmp_path / "s.json").write_text(json.dumps({"timestamp": "t", "machine": {"device": "cuda"}, "summary": summary}))
    text = "\n".join(cost_section([], tmp_path)[0])
    assert "| base | median sla-X / X time | the gate alone (same output norm) |" in text
    assert "| gla | 1.10 | 1.07 |" in text and "| gdn | 1.10 | - |" in text
    (tmp_path / "s.json").write_text(
        json.dumps({"timestamp": "t", "machine": {"device": "cuda"}, "summary": sweep_summary(1.1, 1.0, 1.0)})
    )
    assert "the gate alone" not in "\n".join(cost_section([], tmp_path)[0])  # no arms timed: no column


def test_cost_verdict_rule(tmp_path):
    assert rp.cost_verdict(sweep_summary(1.1, 1.0, 0.98))[0] == rp.SUPPORTED  # attention's slope 2 is not SLA's
    assert rp.cost_verdict(sweep_summary(1.1, 1.9, 1.0))[0] == rp.NOT_SUPPORTED
    # A base that is itself superlinear here (a launch-bound fallback path) is not SLA's doing...
    assert rp.cost_verdict(sweep_summary(1.1, 1.84, 1.0, base_time_slope=1.84))[0] == rp.SUPPORTED
    # ...but memory must stay linear, and a twin well above its base's slope still fails.
    assert rp.cost_verdict(sweep_summary(1.1, 1.84, 1.9, base_time_slope=1.84))[0] == rp.NOT_SUPPORTED
    assert rp.cost_verdict(sweep_summary(1.1, 1.9, 1.0, base_time_slope=1.5))[0] == rp.NOT_SUPPORTED
    assert rp.cost_verdict(sweep_summary(1.1, 1.75, 1.0, base_time_slope=1.5))[0] == rp.INCONCLUSIVE
    assert rp.cost_verdict(sweep_summary(2.5, 1.0, 1.0))[0] == rp.NOT_SUPPORTED
    assert rp.cost_verdict(sweep_summary(1.5, 1.0, 1.0))[0] == rp.INCONCLUSIVE
    assert rp.cost_verdict(None)[0] == rp.INCONCLUSIVE
    assert rp.cost_summary(sweep_summary(1.1, 1.0, 1.0))["mode"] == "fwdbwd-graph"

    # The section reads the latest sweep JSON (by its timestamp) and states its verdict.
    for name, stamp, ratio in (
        ("old.json", "2026-01-01T00:00:00+00:00", 3.0),
        ("new.json", "2026-02-01T00:00:00+00:00", 1.1),
    ):
        (tmp_path / name).write_text(
            json.dumps({"timestamp": stamp, "machine": {"device": "cuda"}, "summary": sweep_summary(ratio, 1.0, 1.0)})
        )
    (tmp_path / "notes.json").write_text("{}")  # not a sweep: ignored
    lines, verdict = cost_section([], tmp_path)[:2]
    assert (
        verdict == rp.SUPPORTED
        and "From `new.json` (sweep of 2026-02-01T00:00:00+00:00, device cuda);" in "\n".join(lines)
    )
    # A sweep's code is named with its kernel paths: one timed before a kernel existed says so.
    machine = {
        "device": "cuda",
        "git_sha": "485a677d8f",
        "git_dirty": True,
        "kernel_paths": {"gla": "x", "delta_rule": "reference"},
    }
    stamp = "2026-03-01T00:00:00+00:00"
    (tmp_path / "newer.json").write_text(
        json.dumps({"timestamp": stamp, "machine": machine, "summary": sweep_summary(1.1, 1.0, 1.0)})
    )
    assert (
        f"From `newer.json` (sweep of {stamp}, device cuda, code 485a677 from a tree with uncommitted changes; "
        "kernel paths: delta_rule: reference, gla: x); time ratios from the fwdbwd-graph timings."
    ) in cost_section([], tmp_path).lines


def test_cost_names_the_kernel_paths_the_newest_runs_took_that_the_sweep_did_not_time():
    """By hand: the newest record's commit is 'new'; of its runs, sla-gla took delta_rule's kernel
    (the sweep timed only the reference there) and an sla_gate_l2 op the sweep never ran; the
    sigmoid control's reference gate (not a swept arm) and the old commit's paths are left out."""

    def rec(mixer: str, sha: str, stamp: str, paths: dict[str, str], **params) -> dict:
        model = {"name": mixer, "params": sorted({"d_model": 64, **params}.items())}
        return {"timestamp": stamp, "kernel_paths": paths, "spec": {"model": model}, "environment": {"git_sha": sha}}

    sweep = {
        "machine": {"kernel_paths": {"delta_rule": "reference", "gla": "fla_chunk_gla,triton_gla_short"}},
        "config": {"mixers": ["gla", "sla-gla"]},
    }
    records = [
        rec("gla", "old0000", "2026-01-01T00:00:00+00:00", {"gla": "fla_fused_recurrent_gla"}),
        rec("gla", "new0000", "2026-02-01T00:00:00+00:00", {"gla": "triton_gla_short"}),
        rec("sla-gla", "new0000", "2026-02-01T00:01:00+00:00", {"delta_rule": "triton_delta_rule", "sla_gate_l2": "t"}),
        rec("sla-gla", "new0000", "2026-02-01T00:02:00+00:00", {"sla_gate_sigmoid": "reference"}, gate_kind="sigmoid"),
    ]
    assert _untimed_paths(records, sweep) == (
        "The newest runs of the swept mixers (code new0000) took kernel paths this sweep did not time: delta_rule "
        "triton_delta_rule (the sweep: reference), sla_gate_l2 t (the sweep: none). Its times are not those of the "
        "code the runs use; rerun it as docs/speed.md's reference run."
    )
    assert _untimed_paths(records[:2], sweep) == ""  # the newest commit's paths were all timed
    assert _untimed_paths(records, {**sweep, "config": {"mixers": ["attention"]}}) == ""  # no swept mixer's runs
    # The model's own op: the training steps ran the embedding's reference (their vocabulary) and no
    # mixer layer ran it, so the runs' embedding kernel is not the layers' concern; a delta_rule the
    # layers ran stays listed even though a step ran it too.
    steps = {
        "rows": [{"kernel_paths": {}}, {"kernel_paths": {"delta_rule": "reference"}}],
        "train_steps": [{"kernel_paths": {"embedding": "reference", "delta_rule": "reference"}}],
    }
    newest = rec("sla-gla", "new0000", "2026-02-01T00:03:00+00:00", {"embedding": "e", "delta_rule": "d"})
    assert _untimed_paths([newest], {**sweep, **steps}) == (
        "The newest runs of the swept mixers (code new0000) took kernel paths this sweep did not time: delta_rule d "
        "(the sweep: reference). Its times are not those of the code the runs use; rerun it as docs/speed.md's "
        "reference run."
    )
    assert "embedding e (the sweep: none)" in _untimed_paths([newest], sweep)  # a sweep without steps: not known


def test_a_base_at_the_ceiling_is_untestable_from_its_cells():
    """The ceiling is read from the cells: X solved every seed of every condition (here gla at both
    noise levels), while a base with one unsolved seed (gdn) is judged by the rule as usual."""

    def cell(mixer: str, noise: float, solved: list[float]) -> dict:
        return {
            "mixer": mixer,
            "arm": mixer,
            "task_params": {"noise": noise, "seq_len": 128},
            "seed_ids": list(range(len(solved))),
            "seed_solved": solved,
            "seeds": len(solved),
        }

    cells = [cell(m, x, [1.0] * 4) for m in ("gla", "sla-gla", "sla-gdn") for x in (0.0, 0.5)]
    cells += [cell("gdn", 0.0, [1.0] * 4), cell("gdn", 0.5, [1.0, 1.0, 1.0, 0.0])]
    _, details, _, _ = _accuracy_claim(cells, lambda c: c["task_params"]["noise"], interaction=True)
    assert details["gla"]["ceiling"] and details["gla"]["vote"] == rp.UNTESTABLE
    assert not details["gdn"]["ceiling"] and details["gdn"]["explain"] != "X at the ceiling"


def test_a_base_with_the_twins_norm_explains_its_difference_without_norm_arms():
    """Mamba-2's own norm is the twin's, so it runs three arms: X (9 of 10 seeds solved in each of
    two conditions), sla-X and the sigmoid control (none solved). sla-X trails at a matched norm and
    the control trails alike: the gate (any gate), where a missing norm arm left it undecided."""
    arms = Arms.of("mamba2")
    assert arms.base_twin_norm == arms.base  # the norm contrast compares an arm with itself

    def cell(label: str, mixer: str, noise: float, solved: list[float]) -> dict:
        common = {"task_params": {"noise": noise}, "seed_ids": list(range(10)), "seeds": 10}
        return {"mixer": mixer, "arm": label, "seed_solved": solved, **common}

    cells = [
        cell(label, mixer, x, solved)
        for x in (0.0, 0.5)
        for label, mixer, solved in (
            (arms.base, "mamba2", [1.0] * 9 + [0.0]),
            (arms.twin, "sla-mamba2", [0.0] * 10),
            (arms.control, "sla-mamba2", [0.0] * 10),
        )
    ]
    _, details, _, tests = _accuracy_claim(cells, lambda c: c["task_params"]["noise"], interaction=False)
    assert tests["mamba2"]["sla"]["delta"] == pytest.approx(-0.9) and tests["mamba2"]["sla"]["p"] < 0.05
    assert "norm" not in tests["mamba2"]
    assert details["mamba2"]["explain"] == "gate (any gate)"

"""The SLA report's verdict rules (`slabench.runners.report_rules`) on hand-made aggregates."""

from __future__ import annotations

import json
import math

from slabench.runners import report_rules as rp
from slabench.runners.report_sections import cost_section


def cell(acc: float, spread: float = 0.02, seeds: int = 6) -> dict:
    """A cell whose seeds scatter around acc (seed i at acc + spread * (-1)^i * i / seeds)."""
    accs = [acc + spread * (-1) ** i * i / seeds for i in range(seeds)]
    return {"acc": sum(accs) / seeds, "seeds": seeds, "seed_ids": list(range(seeds)), "seed_accs": accs}


def raw(accs: list[float]) -> dict:
    return {"acc": sum(accs) / len(accs), "seeds": len(accs), "seed_ids": list(range(len(accs))), "seed_accs": accs}


def test_majority_needs_more_than_half_of_the_votes():
    assert rp._majority({"a": "for", "b": "for", "c": "against"}) == rp.SUPPORTED
    assert rp._majority({"a": "for", "b": "against"}) == rp.INCONCLUSIVE  # a split is no majority
    assert rp._majority({"a": "for", "b": "for", "c": "neither", "d": "neither"}) == rp.INCONCLUSIVE  # 2 of 4
    assert rp._majority({"a": "against", "b": "against", "c": "for"}) == rp.NOT_SUPPORTED
    assert rp._majority({}) == rp.INCONCLUSIVE


def test_accuracy_verdict_rule():
    near = (raw([0.61, 0.58] * 3), raw([0.58, 0.61] * 3))  # seeds that cross: p = 1
    up = [(cell(0.9), cell(0.5)), (cell(0.8), cell(0.5)), near]  # 2 of 3 wins (every seed 0.3+ ahead), higher mean
    down = [(b, t) for t, b in up]
    tie = [(raw([0.9, 0.3] * 3), raw([0.2, 0.8] * 3))] * 3  # 0.1 apart in mean, but the seeds cross
    assert rp.accuracy_verdict({"gla": up, "gdn": up, "retnet": tie})[0] == rp.SUPPORTED
    assert rp.accuracy_verdict({"gla": down, "gdn": down, "retnet": up})[0] == rp.NOT_SUPPORTED
    assert rp.accuracy_verdict({"gla": up, "gdn": down, "retnet": tie})[0] == rp.INCONCLUSIVE
    verdict, details = rp.accuracy_verdict({"gla": up})
    assert verdict == rp.SUPPORTED and details["gla"]["wins"] == 2 and details["gla"]["losses"] == 0
    # Fewer than MIN_SEEDS seeds never make a significant difference, however far apart the means.
    two = [(cell(0.9, 0.01, seeds=2), cell(0.1, 0.01, seeds=2))] * 3
    assert rp.accuracy_verdict({"gla": two})[0] == rp.INCONCLUSIVE
    assert rp.accuracy_verdict({})[0] == rp.INCONCLUSIVE


def test_heads_verdict_rule():
    def points(gain_per_doubling: float, jitter: float) -> list[tuple[int, float]]:
        return [(h, gain_per_doubling * math.log2(h) + jitter * s) for h in (2, 4, 8, 16) for s in (-1, 0, 1)]

    growing, flat, noisy = points(0.05, 0.005), points(0.0, 0.002), points(0.02, 0.2)
    assert rp.heads_verdict({"gla": growing, "gdn": growing, "retnet": flat})[0] == rp.SUPPORTED
    assert rp.heads_verdict({"gla": flat, "gdn": flat, "retnet": growing})[0] == rp.NOT_SUPPORTED
    assert rp.heads_verdict({"gla": noisy})[0] == rp.INCONCLUSIVE
    assert rp.heads_verdict({"gla": points(-0.05, 0.005)})[1]["gla"]["vote"] == "against"


def test_gates_verdict_rule():
    sharpening, flat, noisy = [-0.3, -0.25, -0.35], [-0.001, 0.0, -0.002], [-0.5, 0.1, -0.1]
    assert rp.gates_verdict({"L0 q": sharpening, "L0 k": sharpening, "L1 q": flat})[0] == rp.SUPPORTED
    assert rp.gates_verdict({"L0 q": flat, "L1 q": flat})[0] == rp.NOT_SUPPORTED  # a tiny, certain drop is not WTA
    assert rp.gates_verdict({"L0 q": noisy})[0] == rp.INCONCLUSIVE
    assert rp.gates_verdict({"L0 q": [-0.3, -0.3]})[0] == rp.INCONCLUSIVE  # fewer than MIN_SEEDS runs


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
    lines, verdict = cost_section([], tmp_path)
    assert verdict == rp.SUPPORTED and "From `new.json`" in "\n".join(lines)

"""The accuracy-regression check behind `slabench ci` and `pytest -m regression`.

The `ci` preset runs with fixed seeds; each cell's per-seed test accuracies (task x model) are
compared with a committed baseline, leaderboards/ci/baseline.json, by the leaderboards'
statistics (`slabench.runners.stats`), seed by seed:

- REGRESSED when fewer seeds reach solve_at than in the baseline (the solve rate fell), or when
  the one-sided exact paired test (sign flips of now - baseline over the seeds; a permutation
  test if the seeds differ) says now is below the baseline at 5% *and* the mean fell by more
  than FLOOR. With 5 seeds the test needs every seed lower (p = 1/32); FLOOR keeps float-sum
  differences on other hardware (all seeds a few answers apart) from failing.
- IMPROVED by the mirror rule (reported, not a failure: run `--update` to raise the bar).
- MISSING when a baseline cell, or any of its seeds, has no result now (a failed run, say): fails
  too, since a solve rate over the seeds that survived would hide the ones that crashed.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slabench.config import SEED_LIMIT, RunSpec
from slabench.errors import SlabenchError
from slabench.record import RunRecord
from slabench.runners import stats
from slabench.runners.leaderboard import record_machines

FLOOR = 0.02
RULE = (
    f"regressed when fewer seeds reach solve_at, or a one-sided paired exact test says now < baseline at 5% "
    f"and the mean fell by > {FLOOR:g}"
)


def cells(records: list[RunRecord]) -> dict[tuple[str, str], dict[str, Any]]:
    """(task label, model label) -> {mixer, accs and seeds (sorted by seed), mean, std, n, solve_at, failed}."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        spec = RunSpec.from_dict(r["spec"])
        runs[(spec.task.label(), spec.model.label())].append(r)
    out = {}
    for key, rs in sorted(runs.items()):
        rs.sort(key=lambda r: r["seed"])
        # Diverged runs score 0 (as in leaderboards); failed runs say nothing and are counted apart.
        kept = [r for r in rs if r["status"] != "failed"]
        accs = [0.0 if r["status"] == "diverged" else r["metrics"]["test_acc"] for r in kept]
        n, mean = len(accs), stats.mean(accs)
        spec = RunSpec.from_dict(rs[0]["spec"])
        out[key] = {
            "task": key[0],
            "model": key[1],
            "mixer": spec.model.name,
            "accs": accs,
            "seeds": [r["seed"] for r in kept],
            "mean": mean,
            "std": stats.sd(accs),
            "n": n,
            "solve_at": spec.train.solve_at,
            "failed": len(rs) - n,
        }
    return out


def judge(now: dict[int, float], base: dict[int, float], solve_at: float) -> dict[str, Any]:
    """The verdict of one cell, {seed: acc} now against the baseline's: ok, regressed or improved,
    with the counts and tests behind it."""
    solved_now, solved_base = sum(a >= solve_at for a in now.values()), sum(a >= solve_at for a in base.values())
    below, above = stats.compare(now, base, "less"), stats.compare(now, base, "greater")
    delta = stats.mean(list(now.values())) - stats.mean(list(base.values()))
    rate_now, rate_base = solved_now / len(now), solved_base / len(base)
    if rate_now < rate_base or (below["p"] < stats.ALPHA and delta < -FLOOR):
        verdict = "regressed"
    elif rate_now > rate_base or (above["p"] < stats.ALPHA and delta > FLOOR):
        verdict = "improved"
    else:
        verdict = "ok"
    return {
        "verdict": verdict,
        "delta": delta,
        "p_below": below["p"],
        "test": below["test"],
        "solved_now": solved_now,
        "solved_base": solved_base,
    }


def make_baseline(records: list[RunRecord], preset: str) -> dict[str, Any]:
    versions = sorted({f"torch {r['environment'].get('torch')}" for r in records if r.get("environment")})
    return {
        "preset": preset,
        "rule": RULE,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machines": record_machines(records),
        "versions": versions,
        "cells": [
            {k: c[k] for k in ("task", "model", "mixer", "solve_at", "mean", "std", "n", "seeds", "accs")}
            for c in cells(records).values()
        ],
    }


def write_baseline(path: Path, baseline: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=1) + "\n")


def load_baseline(path: Path) -> dict[str, Any]:
    """The baseline file at `path`, every cell checked (`check_baseline`): a bad one is one line."""
    if not path.is_file():
        raise SlabenchError(f"--baseline: '{path}' does not exist; create it with `slabench ci --update`")
    try:
        baseline = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SlabenchError(f"--baseline: '{path}' is not JSON ({type(e).__name__}: {e})") from None
    check_baseline(baseline, f"--baseline: '{path}'")
    return baseline


# JSON's true and false are Python bools, which are ints: no seed or accuracy.
def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_baseline(baseline: Any, where: str) -> None:
    """Raise one line naming the first bad field of a baseline: `cells` must be a non-empty list
    (a baseline without cells checks nothing), each cell an object with `task` and `model`
    strings, one finite number in `accs` per distinct int in `seeds`, and, where given,
    `mixer` a string and `solve_at` a number in [0, 1]. `check` and `judge` rely on all of it."""
    if not isinstance(baseline, dict) or "cells" not in baseline:
        raise SlabenchError(f"{where} is not a baseline file (no 'cells'); write one with `slabench ci --update`")
    cells = baseline["cells"]
    if not isinstance(cells, list):
        raise SlabenchError(f"{where}: 'cells' must be a list of cells (task, model, seeds, accs); got {cells!r:.60}")
    if not cells:
        raise SlabenchError(
            f"{where}: 'cells' is empty, so it would check nothing; write the baseline with `slabench ci --update`"
        )
    seen = set()
    for i, c in enumerate(cells):
        at = f"{where}: cells[{i}]"
        if not isinstance(c, dict):
            raise SlabenchError(f"{at} must be an object with task, model, seeds and accs; got {c!r:.60}")
        for key in ("task", "model"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise SlabenchError(f"{at}: '{key}' must be a non-empty string (a label); got {c.get(key)!r:.60}")
        if "mixer" in c and not isinstance(c["mixer"], str):
            raise SlabenchError(f"{at}: 'mixer' must be a string; got {c['mixer']!r:.60}")
        if "solve_at" in c and not (_is_number(c["solve_at"]) and 0 <= c["solve_at"] <= 1):
            raise SlabenchError(f"{at}: 'solve_at' must be a number in [0, 1]; got {c['solve_at']!r:.60}")
        seeds, accs = c.get("seeds"), c.get("accs")
        if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and 0 <= s < SEED_LIMIT for s in seeds):
            raise SlabenchError(f"{at}: 'seeds' must be a non-empty list of ints in [0, 2**31); got {seeds!r:.60}")
        if len(set(seeds)) != len(seeds):
            raise SlabenchError(f"{at}: 'seeds' must not repeat a seed; got {seeds!r:.60}")
        # Not bounded to [0, 1]: a baseline raised past 1 on purpose (tests) must fail every seed.
        if not isinstance(accs, list) or not all(_is_number(a) for a in accs):
            raise SlabenchError(f"{at}: 'accs' must be a list of finite numbers (accuracies); got {accs!r:.60}")
        if len(accs) != len(seeds):
            raise SlabenchError(f"{at}: 'accs' must hold one accuracy per seed ({len(seeds)}); got {len(accs)}")
        if (c["task"], c["model"]) in seen:
            raise SlabenchError(f"{at}: task and model repeat an earlier cell; each (task, model) must appear once")
        seen.add((c["task"], c["model"]))


def _order(model: str, mixer: str) -> tuple[str, int]:
    """Sort key that puts each SLA twin right after its base mixer."""
    base = mixer.removeprefix("sla-")
    return model.replace(mixer, base, 1), int(mixer.startswith("sla-"))


def check(records: list[RunRecord], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per baseline cell (plus cells new since the baseline), each with a verdict:
    ok, improved, regressed, missing or new. The check fails on regressed or missing."""
    now = cells(records)
    rows = []
    for b in baseline["cells"]:
        c = now.pop((b["task"], b["model"]), None)
        row = {
            "task": b["task"],
            "model": b["model"],
            "mixer": b.get("mixer", b["model"]),
            "baseline": stats.mean(b["accs"]),
            "now": c["mean"] if c and c["n"] else math.nan,
            "delta": math.nan,
            "p_below": math.nan,
            "solved_now": 0,
            "solved_base": 0,
            "verdict": "missing",
            "failed": c["failed"] if c else 0,
        }
        if c and set(b["seeds"]) <= set(c["seeds"]):  # every baseline seed has a result now
            solve_at = b.get("solve_at", c["solve_at"])
            row.update(
                judge(dict(zip(c["seeds"], c["accs"])), dict(zip(b["seeds"], b["accs"])), solve_at), now=c["mean"]
            )
        rows.append(row)
    for c in now.values():
        rows.append(
            {
                "task": c["task"],
                "model": c["model"],
                "mixer": c["mixer"],
                "baseline": math.nan,
                "now": c["mean"],
                "delta": math.nan,
                "p_below": math.nan,
                "solved_now": 0,
                "solved_base": 0,
                "verdict": "new",
                "failed": c["failed"],
            }
        )
    rows.sort(key=lambda r: (r["task"], *_order(r["model"], r["mixer"])))
    return rows


def failed(rows: list[dict[str, Any]]) -> bool:
    return any(r["verdict"] in ("regressed", "missing") for r in rows)

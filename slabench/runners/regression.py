"""The accuracy-regression check behind `slabench ci` and `pytest -m regression`.

The `ci` preset runs with fixed seeds; its per-cell results (mean and seed spread of test
accuracy per task x model) are compared with a committed baseline, leaderboards/ci/baseline.json.

Rule: a cell REGRESSES when  now < baseline - tolerance,  with

    tolerance = max(K * std / sqrt(n), FLOOR)        K = 3, FLOOR = 0.02

std: the sample standard deviation of the baseline's per-seed accuracies, n: its seed count.
std / sqrt(n) is the standard error of the baseline mean, so 3 of them is a wide band for a
rerun on other hardware or library versions (same seeds, nondeterministic float sums); the floor
keeps cells whose seeds agree exactly (attention at ~100%) from failing on one flipped answer.
A cell above baseline + tolerance is IMPROVED (reported, not a failure: run `--update` to raise
the bar). A baseline cell with no result now (or only failed runs) is MISSING and fails.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slabench.config import RunSpec
from slabench.errors import SlabenchError

K, FLOOR = 3.0, 0.02
RULE = f"regressed when now < baseline - max({K:g} * std / sqrt(n), {FLOOR}) (std: baseline seed std, n: seeds)"
DEFAULT_BASELINE = Path("leaderboards/ci/baseline.json")


def cells(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(task label, model label) -> {mixer, accs (per seed, sorted by seed), mean, std, n, failed}."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        spec = RunSpec.from_dict(r["spec"])
        runs[(spec.task.label(), spec.model.label())].append(r)
    out = {}
    for key, rs in sorted(runs.items()):
        rs.sort(key=lambda r: r["seed"])
        # Diverged runs score 0 (as in leaderboards); failed runs say nothing and are counted apart.
        accs = [0.0 if r["status"] == "diverged" else r["metrics"]["test_acc"] for r in rs if r["status"] != "failed"]
        n = len(accs)
        mean = sum(accs) / n if n else math.nan
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (n - 1)) if n > 1 else 0.0
        out[key] = {"task": key[0], "model": key[1], "mixer": RunSpec.from_dict(rs[0]["spec"]).model.name,
                    "accs": accs, "seeds": [r["seed"] for r in rs if r["status"] != "failed"], "mean": mean,
                    "std": std, "n": n, "failed": len(rs) - n}
    return out


def tolerance(std: float, n: int) -> float:
    return max(K * std / math.sqrt(max(n, 1)), FLOOR)


def make_baseline(records: list[dict[str, Any]], preset: str) -> dict[str, Any]:
    envs = sorted({r["environment"]["device"] for r in records if r.get("environment")})
    versions = sorted({f"torch {r['environment'].get('torch')}" for r in records if r.get("environment")})
    return {
        "preset": preset,
        "rule": RULE,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machines": envs,
        "versions": versions,
        "cells": [{k: c[k] for k in ("task", "model", "mixer", "mean", "std", "n", "seeds", "accs")}
                  for c in cells(records).values()],
    }


def write_baseline(path: Path, baseline: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=1) + "\n")


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SlabenchError(f"--baseline: '{path}' does not exist; create it with `slabench ci --update`")
    try:
        baseline = json.loads(path.read_text())
        missing = [k for c in baseline["cells"] for k in ("task", "model", "mean", "std", "n") if k not in c]
        if missing:
            raise KeyError(missing[0])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise SlabenchError(f"--baseline: '{path}' is not a baseline file ({type(e).__name__}: {e})") from None
    return baseline


def _order(model: str, mixer: str) -> tuple[str, int]:
    """Sort key that puts each SLA twin right after its base mixer."""
    base = mixer.removeprefix("sla-")
    return model.replace(mixer, base, 1), int(mixer.startswith("sla-"))


def check(records: list[dict[str, Any]], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per baseline cell (plus cells new since the baseline), each with a verdict:
    ok, improved, regressed, missing or new. The check fails on regressed or missing."""
    now = cells(records)
    rows = []
    for b in baseline["cells"]:
        c = now.pop((b["task"], b["model"]), None)
        tol = tolerance(b["std"], b["n"])
        mean = c["mean"] if c and c["n"] else math.nan
        if math.isnan(mean):
            verdict = "missing"
        elif mean < b["mean"] - tol:
            verdict = "regressed"
        elif mean > b["mean"] + tol:
            verdict = "improved"
        else:
            verdict = "ok"
        rows.append({"task": b["task"], "model": b["model"], "mixer": b.get("mixer", b["model"]), "baseline": b["mean"],
                     "now": mean, "delta": mean - b["mean"], "tolerance": tol, "verdict": verdict,
                     "failed": c["failed"] if c else 0})
    for c in now.values():
        rows.append({"task": c["task"], "model": c["model"], "mixer": c["mixer"], "baseline": math.nan, "now": c["mean"],
                     "delta": math.nan, "tolerance": math.nan, "verdict": "new", "failed": c["failed"]})
    rows.sort(key=lambda r: (r["task"], *_order(r["model"], r["mixer"])))
    return rows


def failed(rows: list[dict[str, Any]]) -> bool:
    return any(r["verdict"] in ("regressed", "missing") for r in rows)

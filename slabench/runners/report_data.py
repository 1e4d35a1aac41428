"""What the SLA report reads from run records and sweep files: each record's arm, the
aggregated cells of a section, the contrasts between arms per condition, per-seed gains, gate
curves, and the latest speed sweep. Scores follow the leaderboards: diverged runs score 0,
failed runs are left out. Arms are labelled as in `slabench.models.arms`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slabench.config import RunSpec
from slabench.models.arms import arm, option_default
from slabench.record import RunRecord
from slabench.runners import stats
from slabench.runners.leaderboard import aggregate


@dataclass(frozen=True)
class Arms:
    """The arm labels of one base X (roles as in `report_rules.CONTRASTS`)."""

    base: str  # X at its own output norm
    base_twin_norm: str  # X with sla-X's output norm
    twin: str  # sla-X as registered (softmax gates, its own norm)
    twin_base_norm: str  # sla-X with X's output norm
    control: str  # sla-X with a sigmoid gate per head
    fixed: str  # sla-X with every gate held at 1/H

    @staticmethod
    def of(base: str) -> Arms:
        twin = f"sla-{base}"
        base_norm, twin_norm = option_default(base, "output_norm"), option_default(twin, "output_norm")
        return Arms(
            base,
            arm(base, {"output_norm": twin_norm}),
            twin,
            arm(twin, {"output_norm": base_norm}),
            arm(twin, {"gate_kind": "sigmoid"}),
            arm(twin, {"gate_kind": "constant"}),
        )

    def one_arm(self, roles: tuple) -> list[str]:
        """The names of `roles` ((name, role a, role b), as `report_rules.CONTRASTS`) whose two roles
        are one arm for this base: Mamba-2's own norm is the twin's, so its norm contrast would
        compare an arm with itself."""
        return [name for name, a, b in roles if getattr(self, a) == getattr(self, b)]


def section_cells(records: list[RunRecord]) -> list[dict[str, Any]]:
    """Every aggregated (task, model) cell of a section, at its lr (the records hold one lr per
    cell: the one chosen on validation), with its arm label and per-seed solve indicators."""
    if not records:
        return []
    agg = aggregate(records)
    return [
        {
            **row,
            "arm": arm(row["mixer"], row["model_params"]),
            "seed_solved": [float(a >= agg["solve_at"]) for a in row["seed_accs"]],
        }
        for rows in agg["tasks"].values()
        for row in rows
    ]


def bases(cells: list[dict[str, Any]]) -> list[str]:
    """The base mixers whose SLA twin ran."""
    return sorted({c["mixer"][4:] for c in cells if c["mixer"].startswith("sla-")})


def contrasts(
    cells: list[dict[str, Any]], condition: Callable[[dict[str, Any]], Any], contrast_roles: tuple
) -> dict[str, dict[str, list[tuple[dict[int, float], dict[int, float]]]]]:
    """base -> contrast name -> strata: per condition where both arms ran, ({seed: solved} of
    arm a, of arm b). contrast_roles: (name, role a, role b), roles being `Arms` fields."""
    index = {(c["arm"], condition(c)): c for c in cells}
    conds = sorted({condition(c) for c in cells}, key=str)
    out: dict[str, dict[str, list]] = {}
    for base in bases(cells):
        arms, out[base] = Arms.of(base), {}
        one_arm = arms.one_arm(contrast_roles)
        for name, a, b in contrast_roles:
            la, lb = getattr(arms, a), getattr(arms, b)
            strata = [
                (solved(index[(la, k)]), solved(index[(lb, k)]))
                for k in conds
                if name not in one_arm and (la, k) in index and (lb, k) in index
            ]
            if strata:
                out[base][name] = strata
    return out


def solved(cell: dict[str, Any]) -> dict[int, float]:
    return dict(zip(cell["seed_ids"], cell["seed_solved"]))


def noise_gains(cells: list[dict[str, Any]], base: str) -> list[tuple[float, float]]:
    """[(noise, sla-X solved - X solved)] per seed, at the length with the most noise levels."""
    by_len: dict[int, set[float]] = defaultdict(set)
    for c in cells:
        by_len[c["task_params"]["seq_len"]].add(c["task_params"].get("noise", 0.0))
    if not by_len:
        return []
    t_main = max(sorted(by_len), key=lambda t: len(by_len[t]))
    arms = Arms.of(base)
    index = {(c["arm"], noise_condition(c)): c for c in cells if c["task_params"]["seq_len"] == t_main}
    out = []
    for (label, (noise, t)), twin in sorted(index.items()):
        if label == arms.twin and (arms.base, (noise, t)) in index:
            a, b = solved(twin), solved(index[(arms.base, (noise, t))])
            out += [(noise, a[s] - b[s]) for s in sorted(set(a) & set(b))]
    return out


def noise_condition(c: dict[str, Any]) -> tuple[float, int]:
    return (c["task_params"].get("noise", 0.0), c["task_params"]["seq_len"])


def d_model_condition(c: dict[str, Any]) -> int:
    return c["model_params"]["d_model"]


def heads_condition(c: dict[str, Any]) -> int:
    return c["model_params"]["n_heads"]


def paired_gains(
    cells: list[dict[str, Any]], role_a: str = "twin", role_b: str = "base", counts: Callable[[dict], bool] = bool
) -> dict[str, list[tuple[int, float]]]:
    """base -> [(H, arm a's test acc - arm b's)] for every seed and H where both ran (same task
    too), at the H where counts(X's cell) holds."""
    index = {(c["arm"], c["model_params"]["n_heads"], c["task"]): c for c in cells}
    gains: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for base in bases(cells):
        arms = Arms.of(base)
        la, lb = getattr(arms, role_a), getattr(arms, role_b)
        for (label, h, task), a in sorted(index.items(), key=lambda kv: str(kv[0])):
            b, x = index.get((lb, h, task)), index.get((base, h, task))
            if label == la and b is not None and x is not None and counts(x):
                sa, sb = stats.seed_scores(a), stats.seed_scores(b)
                gains[base] += [(h, sa[s] - sb[s]) for s in sorted(set(sa) & set(sb))]
    return {b: sorted(g) for b, g in gains.items()}


GATE_KEY = re.compile(r"layer(\d+)/(k?gate)_(entropy|max|peaked|peaked_recall)$")


def gate_series(records: list[RunRecord]) -> dict[tuple[str, int, int, str], list[list[dict[str, float]]]]:
    """(arm, heads, layer, 'q' | 'k') -> per solved run (ok, test accuracy >= its solve_at), its
    curve [{step, entropy, max, peaked, peaked_recall}] (the peaked shares absent from records older
    than their diagnostics; peaked_recall at the recall positions only, `models.sla.recall_positions`).
    Heads are kept apart: the max gate of H heads starts near 1/H."""
    out: dict[tuple[str, int, int, str], list[list[dict[str, float]]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["key"]):
        spec = RunSpec.from_dict(r["spec"])
        if r["status"] != "ok" or r["metrics"]["test_acc"] < spec.train.solve_at:
            continue
        runs: dict[tuple[int, str], list[dict[str, float]]] = defaultdict(list)
        for point in r["metrics"].get("curve", []):
            entries: dict[tuple[int, str], dict[str, float]] = {}
            for k, v in point.items():
                m = GATE_KEY.match(k)
                if m:
                    entries.setdefault((int(m[1]), "k" if m[2] == "kgate" else "q"), {"step": point["step"]})[m[3]] = v
            for key, e in entries.items():
                runs[key].append(e)
        params = dict(spec.model.params)
        for (layer, gate), curve in runs.items():
            out[(arm(spec.model.name, params), params["n_heads"], layer, gate)].append(curve)
    return dict(sorted(out.items()))


def latest_sweep(speed_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The speed sweep JSON (from `slabench sweep`) with the latest timestamp, a GPU's before any
    CPU's (the claim is about the kernels training runs on: a CPU sweep, e.g. `--quick` as a smoke
    test, must not displace the GPU's), or None."""
    found = []
    for path in sorted(Path(speed_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("summary"), dict) and "sla_overhead" in data["summary"]:
            on_gpu = str((data.get("config") or {}).get("device", "")).startswith("cuda")
            found.append((on_gpu, str(data.get("timestamp", "")), path.name, path, data))
    if not found:
        return None
    *_, path, data = max(found, key=lambda f: f[:3])
    return path, data

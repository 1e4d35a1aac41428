"""What the SLA report reads from run records and sweep files: the aggregated cells of a
section, SLA twins matched with their bases per condition, per-seed gains, gate curves, and
the latest speed sweep. Scores follow the leaderboards: diverged runs score 0, failed runs are
left out.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slabench.config import RunSpec
from slabench.record import RunRecord
from slabench.runners.leaderboard import aggregate, score


def section_cells(records: list[RunRecord]) -> list[dict[str, Any]]:
    """Every aggregated (task, model) cell of a section (one lr per grid, so the best-lr row)."""
    return [row for rows in aggregate(records)["tasks"].values() for row in rows] if records else []


def twin_pairs(
    cells: list[dict[str, Any]], condition: Callable[[dict[str, Any]], Any]
) -> dict[str, list[tuple[dict, dict]]]:
    """base -> [(twin cell, base cell)] matched on condition(cell) and the twin's backbone."""
    index = {(c["mixer"], condition(c)): c for c in cells}
    pairs: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for c in sorted(cells, key=lambda c: (c["mixer"], str(condition(c)))):
        if c["mixer"].startswith("sla-") and (c["mixer"][4:], condition(c)) in index:
            pairs[c["mixer"][4:]].append((c, index[(c["mixer"][4:], condition(c))]))
    return dict(pairs)


def noise_condition(c: dict[str, Any]) -> tuple[float, int]:
    return (c["task_params"].get("noise", 0.0), c["task_params"]["seq_len"])


def d_model_condition(c: dict[str, Any]) -> int:
    return c["model_params"]["d_model"]


def heads_condition(c: dict[str, Any]) -> int:
    return c["model_params"]["n_heads"]


def paired_gains(records: list[RunRecord]) -> dict[str, list[tuple[int, float]]]:
    """base -> [(H, twin acc - base acc)] for every seed and H where both ran (same task too)."""
    acc = {}
    for r in records:
        spec, s = RunSpec.from_dict(r["spec"]), score(r)
        if s is not None:
            p = dict(spec.model.params)
            acc[(spec.model.name, p["n_heads"], spec.task.label(), spec.seed)] = s
    gains: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (mixer, h, task, seed), s in sorted(acc.items()):
        if mixer.startswith("sla-") and (mixer[4:], h, task, seed) in acc:
            gains[mixer[4:]].append((h, s - acc[(mixer[4:], h, task, seed)]))
    return dict(gains)


GATE_KEY = re.compile(r"layer(\d+)/(k?gate)_(entropy|max)$")


def gate_series(records: list[RunRecord]) -> dict[tuple[str, int, int, str], list[list[dict[str, float]]]]:
    """(mixer, heads, layer, 'q' | 'k') -> per run, its curve [{step, entropy, max}] (SLA runs that are ok).
    Heads are kept apart: the max gate of H heads starts near 1/H."""
    out: dict[tuple[str, int, int, str], list[list[dict[str, float]]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["key"]):
        if r["status"] != "ok":
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
        heads = dict(RunSpec.from_dict(r["spec"]).model.params)["n_heads"]
        for (layer, gate), curve in runs.items():
            out[(r["spec"]["model"]["name"], heads, layer, gate)].append(curve)
    return dict(sorted(out.items()))


def latest_sweep(speed_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The speed sweep JSON (from `slabench sweep`) with the latest timestamp, or None."""
    found = []
    for path in sorted(Path(speed_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("summary"), dict) and "sla_overhead" in data["summary"]:
            found.append((str(data.get("timestamp", "")), path.name, path, data))
    if not found:
        return None
    _, _, path, data = max(found, key=lambda f: f[:2])
    return path, data

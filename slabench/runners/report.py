"""The SLA mechanism report (`slabench report sla`): the paper's four claims, each tested on
run records and decided by a rule the report states.

Softmax Linear Attention (arXiv 2602.01744) claims (1) better retrieval under noise for RetNet,
GLA and GDN, (2) gains that grow with the number of heads, (3) head gates that sharpen towards
one-hot as training proceeds, (4) linear time and memory with small overhead. Sections:

    noise  grid report-noise-<scale>  claim 1: needle accuracy vs noise and seq_len
    mqar   grid report-mqar-<scale>   claim 1 without noise: MQAR accuracy vs d_model / state
    heads  grid report-heads-<scale>  claim 2: SLA's gain over its base vs heads H
    gates  (records of the above)     claim 3: gate entropy / log H and max gate over training
    cost   (leaderboards/speed/*.json from `slabench sweep`)  claim 4

The grids are ordinary presets run by `slabench.runners.grid.run_grid`, one records directory
per section under the report's --out, so a rerun skips finished runs and `slabench leaderboard
<out>/<section>` rebuilds each section's leaderboard. The Markdown depends on the records and the
sweep file only (no clock, no paths of the machine), so `--from-records` reproduces it byte for
byte. Statistics are the leaderboards' (`slabench.runners.stats`): mean test accuracy over seeds
with its 95% bootstrap interval and the seeds solved; twin vs base by the exact test paired by
seed; diverged runs score 0 and failed runs are left out, as in the leaderboards.

The verdict rules are in `report_rules`, what is read from records in `report_data`, the
sections' tables and figures in `report_sections`; this module runs them and assembles the file.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from slabench.config import RunSpec, expand_grid, load_preset
from slabench.errors import SlabenchError
from slabench.record import RunRecord
from slabench.runners.leaderboard import record_machines, score
from slabench.runners.output import md_table
from slabench.runners.report_sections import cost_section, gates_section, heads_section, mqar_section, noise_section

SCALES = ("tiny", "full")
GRID_SECTIONS = ("noise", "mqar", "heads")
CLAIMS = {
    "noise": "better retrieval under noise for RetNet, GLA, GDN",
    "mqar": "(claim 1 without noise) better MQAR recall at equal width",
    "heads": "gains grow with the number of heads",
    "gates": "head gates sharpen towards one-hot during training",
    "cost": "linear time and memory, small overhead",
}
BIMODAL_HIGH, BIMODAL_LOW = 0.9, 0.1  # a cell whose seeds include both: learned by some, at chance in others


def section_specs(section: str, scale: str) -> tuple[str, list[RunSpec]]:
    if scale not in SCALES:
        raise SlabenchError(f"--scale={scale!r} is not allowed; choose one of {', '.join(SCALES)}")
    return expand_grid(load_preset(f"report-{section}-{scale}"))


def _runs_lines(records: dict[str, list[RunRecord]], every: list[RunRecord]) -> list[str]:
    """Where the runs ran, which failed and why, and how many cells split between learned and
    chance. records: section -> its records; every: all of them."""
    if not every:
        return []
    lines = [f"Machines: {', '.join(record_machines(every)) or '-'}."]
    scores: dict[tuple, list[float]] = defaultdict(list)
    for r in every:
        if (acc := score(r)) is not None:
            spec = RunSpec.from_dict(r["spec"])
            scores[(spec.task.label(), spec.model.label())].append(acc)
    split = sum(1 for v in scores.values() if max(v) >= BIMODAL_HIGH and min(v) <= BIMODAL_LOW)
    lines[0] += (
        f" {split} of {len(scores)} (task, model) cells have seeds both at >= {BIMODAL_HIGH:.0%} and at "
        f"<= {BIMODAL_LOW:.0%} test accuracy: a run either learns the task or stays near chance, so cells are "
        "summarised by seeds solved, and deciding between them takes more seeds."
    )
    failed = sorted(
        (s, RunSpec.from_dict(r["spec"]).model.label(), r["seed"], (r["error"] or "").splitlines()[0][:100])
        for s in GRID_SECTIONS
        for r in records.get(s, [])
        if r["status"] == "failed"
    )
    if failed:
        lines += ["", "Failed runs (left out of every figure):", ""]
        lines.append(
            md_table(["section", "model", "seed", "error"], [[s, m, str(seed), e] for s, m, seed, e in failed])
        )
    return lines + [""]


def write_report(records: dict[str, list[RunRecord]], scale: str, report_path: Path, speed_dir: Path) -> dict[str, str]:
    """records: section -> its records. Writes the Markdown and PNGs next to it; returns the
    verdict per section."""
    report_path.parent.mkdir(parents=True, exist_ok=True)
    out_dir, stem = report_path.parent, report_path.stem
    every = [r for s in GRID_SECTIONS for r in records.get(s, [])]
    parts = {
        "noise": noise_section(records.get("noise", []), out_dir, stem),
        "mqar": mqar_section(records.get("mqar", []), out_dir, stem),
        "heads": heads_section(records.get("heads", []), out_dir, stem),
        "gates": gates_section(every, out_dir, stem),
        "cost": cost_section(every, speed_dir),
    }
    counts = ", ".join(f"{s} {len(records.get(s, []))}" for s in GRID_SECTIONS)
    failed = sum(r["status"] == "failed" for r in every)
    head = [
        "# SLA mechanism report",
        "",
        (
            f"Generated by `slabench report sla --scale {scale}` from run records ({counts}; {failed} failed) and the "
            "latest speed sweep; do not edit by hand. Grids: `slabench/presets/report-<section>-"
            f"{scale}.toml`. Softmax Linear Attention, arXiv 2602.01744."
        ),
        "",
        md_table(
            ["section", "claim", "verdict"], [[f"{i}. {s}", CLAIMS[s], parts[s][1]] for i, s in enumerate(parts, 1)]
        ),
        "",
    ]
    head += _runs_lines(records, every)
    if scale == "tiny":
        head += [
            (
                "Scale `tiny`: CPU test sizes (tens of steps); the numbers exercise the pipeline and say nothing "
                "about SLA."
            ),
            "",
        ]
    body = [line for s in parts.values() for line in s[0]]
    report_path.write_text("\n".join(head + body).rstrip("\n") + "\n")
    return {s: p[1] for s, p in parts.items()}

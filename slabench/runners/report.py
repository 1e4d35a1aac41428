"""The SLA mechanism report (`slabench report sla`): the paper's four claims, each tested on
run records and decided by a rule the report states.

Softmax Linear Attention (arXiv 2602.01744) claims (1) better retrieval under noise for RetNet,
GLA and GDN, (2) gains that grow with the number of heads, (3) head gates that sharpen towards
one-hot as training proceeds, (4) linear time and memory with small overhead. Sections:

    noise  grid report-noise-<scale>  claim 1: needle solve rates vs noise
    mqar   grid report-mqar-<scale>   claim 1 without noise: MQAR vs d_model / state
    heads  grid report-heads-<scale>  claim 2: SLA's gain over its base vs heads H
    gates  (records of the above)     claim 3: share of tokens with a near one-hot gate
    cost   (leaderboards/speed/*.json from `slabench sweep`)  claim 4

The second edition (the default) runs controlled arms per base (`report_data.Arms`: X, X with
the twin's norm, sla-X, sla-X with the base's norm, sla-X with a sigmoid gate, and, where a grid
has it, sla-X with every gate held at 1/H) in two stages:
a grid's first `LR_SEEDS[scale]` seeds run at every lr of the grid (stage 1), and each cell
(task x arm) keeps the lr with the best mean validation accuracy over them; the other seeds run
at that lr only (stage 2), and only stage 2's records, seeds the choice never saw, reach the
verdicts. The first edition (`report-v1-<section>-full`: twin and base only, one lr, 3 seeds)
stays renderable by the same rules, so its committed report rebuilds.

The grids are ordinary presets run by `slabench.runners.grid.run_grid`, one records directory
per section under the report's --out, so a rerun skips finished runs and `slabench leaderboard
<out>/<section>` rebuilds each section's leaderboard. The Markdown depends on the records and the
sweep file only (no clock, no paths of the machine), so `--from-records` reproduces it byte for
byte. Statistics are the leaderboards' (`slabench.runners.stats`): mean test accuracy over seeds
with its 95% bootstrap interval and the seeds solved; arms against each other by the exact test
paired by seed, stratified by condition; diverged runs score 0 and failed runs are left out, as
in the leaderboards.

The verdict rules are in `report_rules`, what is read from records in `report_data`, the
sections' tables and figures in `report_sections`; this module runs them and assembles the file.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from slabench.config import RunSpec, expand_grid, load_preset
from slabench.errors import SlabenchError
from slabench.models.arms import arm
from slabench.record import RunRecord
from slabench.runners import stats
from slabench.runners.leaderboard import choose_lr, device_time, device_time_line, record_machines, score
from slabench.runners.output import md_table
from slabench.runners.report_rules import CEILING, LEARNS, MIN_SEEDS, settled
from slabench.runners.report_sections import (
    Section,
    cost_section,
    gates_section,
    heads_section,
    mqar_section,
    noise_section,
)

SCALES = ("tiny", "full")
EDITIONS = (1, 2)
GRID_SECTIONS = ("noise", "mqar", "heads")
LR_SEEDS = {"tiny": 1, "full": 3}  # edition 2: seeds per lr of stage 1 (the grid's first seeds)
CLAIMS = {
    "noise": "better retrieval under noise for RetNet, GLA, GDN",
    "mqar": "(claim 1 without noise) better MQAR recall at equal width",
    "heads": "gains grow with the number of heads",
    "gates": "head gates sharpen towards one-hot during training",
    "cost": "linear time and memory, small overhead",
}
BIMODAL_HIGH, BIMODAL_LOW = 0.9, 0.1  # a cell whose seeds include both: learned by some, at chance in others


def section_specs(section: str, scale: str, edition: int = 2, seeds: int | None = None) -> tuple[str, list[RunSpec]]:
    """A section's grid; `seeds`: verdict seeds per cell in place of the grid's (its own first, then
    the next integers), what an inconclusive verdict's "seeds per cell for 80% power" asks for."""
    if scale not in SCALES:
        raise SlabenchError(f"--scale={scale!r} is not allowed; choose one of {', '.join(SCALES)}")
    if edition not in EDITIONS:
        raise SlabenchError(f"--edition={edition!r} is not allowed; choose one of 1, 2")
    if edition == 1 and scale != "full":
        raise SlabenchError(f"--scale={scale!r} is not allowed with --edition 1; the first edition has 'full' only")
    if edition == 1 and seeds is not None:
        raise SlabenchError("--seeds is not allowed with --edition 1; the first edition's grids stay as they ran")
    grid = load_preset(f"report-v1-{section}-{scale}" if edition == 1 else f"report-{section}-{scale}")
    if seeds is not None:
        own = sorted(grid["train"]["seeds"])
        verdict = own[LR_SEEDS[scale] :]
        if seeds < len(verdict):
            raise SlabenchError(
                f"--seeds={seeds} is fewer than the protocol's {len(verdict)} verdict seeds per cell; give "
                f"{len(verdict)} or more"
            )
        more = list(range(own[-1] + 1, own[-1] + 1 + seeds - len(verdict)))
        grid = {**grid, "train": {**grid["train"], "seeds": own + more}}
    return expand_grid(grid)


def only_bases(specs: list[RunSpec], bases: tuple[str, ...]) -> list[RunSpec]:
    """The runs of the arms of `bases` (X, sla-X and their option variants) and attention's, the
    reference; every run when bases is empty. A GPU sitting can then decide one base at a time."""
    if not bases:
        return specs
    known = sorted({s.model.name.removeprefix("sla-") for s in specs} - {"attention"})
    for b in bases:
        if b not in known:
            raise SlabenchError(f"--bases: {b!r} is not a base of these grids; choose from {', '.join(known)}")
    return [s for s in specs if s.model.name == "attention" or s.model.name.removeprefix("sla-") in bases]


def _cell(spec: RunSpec) -> tuple[str, str]:
    return spec.task.label(), spec.model.label()


def lr_stage(specs: list[RunSpec], scale: str, edition: int) -> list[RunSpec]:
    """Stage 1: the runs of the grid's first LR_SEEDS seeds, every lr (none in the first edition)."""
    if edition == 1:
        return []
    first = sorted({s.seed for s in specs})[: LR_SEEDS[scale]]
    return [s for s in specs if s.seed in first]


def chosen_lrs(stage1: list[RunRecord]) -> dict[tuple[str, str], dict]:
    """(task label, model label) -> {lr, lrs, val: mean validation accuracy per lr, edge, model}: the lr
    with the best mean validation accuracy over stage 1's seeds (ties: the smaller lr) among the
    lrs with no failed run, as the leaderboards choose it."""
    vals: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    failed: set[tuple[tuple[str, str], float]] = set()  # (cell, lr) with a failed run
    models = {}  # cell -> its ModelSpec
    for r in stage1:
        spec = RunSpec.from_dict(r["spec"])
        models[_cell(spec)] = spec.model
        if (v := score(r, "val_acc")) is not None:
            vals[_cell(spec)][spec.train.lr].append(v)
        else:
            failed.add((_cell(spec), spec.train.lr))
    out = {}
    for cell, by_lr in sorted(vals.items()):
        val = {lr: stats.mean(v) for lr, v in sorted(by_lr.items())}
        lr, edge = choose_lr(val, {x for x in val if (cell, x) in failed})
        out[cell] = {"lr": lr, "lrs": list(val), "val": val, "edge": edge, "model": models[cell]}
    return out


def verdict_stage(specs: list[RunSpec], stage1: list[RunSpec], chosen: dict[tuple[str, str], dict]) -> list[RunSpec]:
    """Stage 2: the runs outside stage 1 at their cell's chosen lr (every run in the first edition)."""
    if not stage1:
        return specs
    first = {s.seed for s in stage1}
    return [s for s in specs if s.seed not in first and _cell(s) in chosen and chosen[_cell(s)]["lr"] == s.train.lr]


def runs_left(specs: list[RunSpec], scale: str, edition: int, stored: dict[str, RunRecord]) -> int:
    """Runs of a section's protocol not in `stored` yet: stage 1's, and stage 2's at each cell's
    lr as chosen from the stage-1 records there so far (a cell with none yet counts its stage-2
    seeds once, whatever lr it will choose)."""
    stage1 = lr_stage(specs, scale, edition)
    if not stage1:  # the first edition: one stage, every run
        return sum(s.key() not in stored for s in specs)
    chosen = chosen_lrs([stored[s.key()] for s in stage1 if s.key() in stored])
    first = {s.seed for s in stage1}
    unchosen = {(_cell(s), s.seed) for s in specs if s.seed not in first and _cell(s) not in chosen}
    return sum(s.key() not in stored for s in stage1 + verdict_stage(specs, stage1, chosen)) + len(unchosen)


def left_by_base(specs: list[RunSpec], scale: str, edition: int, stored: dict[str, RunRecord]) -> dict[str, int]:
    """base -> the runs of its arms that the protocol still lacks (`runs_left`), for the bases with
    any; attention, the reference every cell must be solvable by, under its own name."""
    arms: dict[str, list[RunSpec]] = defaultdict(list)
    for s in specs:
        arms[s.model.name.removeprefix("sla-")].append(s)
    left = {b: runs_left(a, scale, edition, stored) for b, a in sorted(arms.items())}
    return {b: n for b, n in left.items() if n}


def _runs_lines(ran: dict[str, list[RunRecord]], every: list[RunRecord], others: list[RunRecord]) -> list[str]:
    """Where the runs ran, which failed and why, how many cells split between learned and chance,
    and the device time. ran: section -> every run the report's protocol ran (the lr stage's too),
    whose failures are listed; every: the verdict records; others: the runs beside them in the
    records folders that the protocol does not hold (earlier grids', the other edition's), whose
    device time was spent on the report too."""
    if not every:
        return []
    spent = [r for runs in ran.values() for r in runs]
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
    if time_line := _time_line(spent, others):
        lines += ["", time_line]
    lines += ["", _code_line(spent)]
    failed = sorted(
        (s, spec.model.label(), r["seed"], spec.train.lr, (r["error"] or "").splitlines()[0][:100])
        for s in GRID_SECTIONS
        for r in ran.get(s, [])
        if r["status"] == "failed"
        for spec in [RunSpec.from_dict(r["spec"])]
    )
    if failed:
        lines += ["", "Failed runs (left out of every figure):", ""]
        lines.append(
            md_table(
                ["section", "model", "seed", "lr", "error"],
                [[s, m, str(seed), f"{lr:g}", e] for s, m, seed, lr, e in failed],
            )
        )
    return lines + [""]


def _time_line(spent: list[RunRecord], others: list[RunRecord]) -> str:
    """The protocol's device time (`device_time_line`), then what the other runs in its records
    folders added: their sittings can overlap the protocol's, so their share is what they add
    to the union."""
    line = device_time_line(spent)
    if line and others:
        extra = device_time(spent + others)[0] - device_time(spent)[0]
        line += (
            f" The {len(others):,} other runs in its records folders (earlier grids', the other edition's; in no "
            f"table here) add {extra:,.0f} s of {_and(record_machines(others)) or '-'}."
        )
    return line


def _per_run(spent: dict[str, list[RunRecord]]) -> dict[str, float]:
    """section -> the device time (`device_time`) a run of it has taken so far, for the sections
    with runs (spent: section -> its runs)."""
    return {s: device_time(runs)[0] / len(runs) for s, runs in spent.items() if runs}


def _duration(seconds: float) -> str:
    return f"{seconds / 60:,.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _time_left(left: dict[str, int], per_run: dict[str, float], machines: list[str]) -> str:
    """How long the runs left take at the device time per run each section's runs have taken so
    far (`_per_run`) on `machines` (the devices those runs ran on), as a clause for the Incomplete
    line; sections with no runs yet are named, not guessed. Empty when no section with runs left
    has been timed."""
    seconds = sum(n * per_run[s] for s, n in left.items() if n and s in per_run)
    if not seconds:
        return ""
    untimed = [s for s, n in left.items() if n and s not in per_run]
    when = f" ({_and(untimed)} not yet timed)" if untimed else ""
    if len(machines) == 1:
        return f", about {_duration(seconds)} of {machines[0]} at each section's device time per run so far{when}"
    # Runs from several machines: the estimate holds for their mix, not for any one of them.
    return (
        f", about {_duration(seconds)} at each section's device time per run so far, over runs on "
        f"{_and(machines)}{when}"
    )


def _votes(votes: dict[str, str] | None) -> str:
    """A claim's votes per base for the summary table ('-' for a claim not decided by bases' votes,
    or before any base has voted)."""
    return ", ".join(f"{base} {vote}" for base, vote in sorted((votes or {}).items())) or "-"


def _explained(explained: dict[str, str] | None) -> str:
    """Which way each base's sla-X differs from X and what explains it (its section's "explained
    by" column), for the summary table: the answer an inconclusive verdict can still carry. '-' for
    a claim not decided per base."""
    if explained is None:
        return "-"
    return "; ".join(why for _, why in sorted(explained.items())) or "no base differs"


def _can_change(parts: dict[str, Section], left: dict[str, dict[str, int]]) -> str:
    """Which verdicts the runs left (section -> `left_by_base`) can change, as the end of the
    Incomplete line: a claim decided by votes per base stands if no votes of its bases with runs
    left can turn it (`settled`); the gates' claim reads every section's solved runs, so any run
    can change it."""
    running = {s: set(left.get(s, {})) - {"attention"} for s in GRID_SECTIONS}  # attention votes for no base
    stands = [s for s in GRID_SECTIONS if left.get(s) and settled(parts[s].votes, running[s])]
    if not stands:
        return "; the verdicts below can change when they are in."
    can = [s for s in GRID_SECTIONS if left.get(s) and s not in stands] + ["gates"]

    def why(s: str) -> str:
        bases = sorted(running[s])
        if not bases:
            return f"the {s} verdict ({parts[s].verdict}) stands: its runs left are attention's, which no vote reads"
        cast = ", ".join(f"{b} {v}" for b, v in sorted(parts[s].votes.items()) if b not in bases)
        verb = "votes" if len(bases) == 1 else "vote"
        head = f"the {s} verdict ({parts[s].verdict}) stands"
        return f"{head} whatever {_and(bases)} {verb}, given the votes cast ({cast or 'none'})"

    return f". They can change the {_and(can)} verdicts; {'; '.join(why(s) for s in stands)}."


def _heads_window(base: str, choice: dict[tuple[str, str], dict], verdict: list[RunRecord]) -> str:
    """What the heads runs so far say of `base`'s vote: claim 2 counts an H only where X's mean
    test accuracy is in [LEARNS, CEILING] and needs two such H, so where X's accuracy lies in that
    range at fewer than two H, its vote will most likely be untestable. At each H that is X's mean
    test accuracy once MIN_SEEDS of its verdict seeds are in (what the rule reads), else its
    validation accuracy at the lr its lr stage chose. Empty when it does not (or X has no lr-stage
    runs yet)."""
    val = {  # H -> X's mean validation accuracy at its chosen lr
        dict(c["model"].params)["n_heads"]: c["val"][c["lr"]]
        for c in choice.values()
        if arm(c["model"].name, dict(c["model"].params)) == base
    }
    tests = defaultdict(list)  # H -> X's verdict seeds' test accuracies
    for r in verdict:
        spec, acc = RunSpec.from_dict(r["spec"]), score(r)
        if acc is not None and arm(spec.model.name, dict(spec.model.params)) == base:
            tests[dict(spec.model.params)["n_heads"]].append(acc)
    seen = {h: stats.mean(tests[h]) if len(tests[h]) >= MIN_SEEDS else v for h, v in val.items()}
    if not val or sum(LEARNS <= v <= CEILING for v in seen.values()) >= 2:
        return ""

    def at(h: int) -> str:
        n = len(tests[h])
        so_far = f", {stats.mean(tests[h]):.1%} test on {n} verdict seed{'s' * (n != 1)}" if n else ""
        return f"H {h} {val[h]:.1%} lr-stage validation{so_far}"

    return (
        f", though most likely untestable: {base}'s accuracy is in [{LEARNS:.0%}, {CEILING:.0%}] at fewer than "
        f"the two H its vote needs ({'; '.join(at(h) for h in sorted(val))}; an H's test accuracy decides from "
        f"{MIN_SEEDS} verdict seeds on)"
    )


def _seeds_flag(seeds: int | None) -> str:
    """` --seeds N` for the commands a report made with more verdict seeds prints, else nothing."""
    return "" if seeds is None else f" --seeds {seeds}"


def _plan(
    parts: dict[str, Section],
    left: dict[str, dict[str, int]],
    per_run: dict[str, float],
    heads_choice: dict[tuple[str, str], dict] | None = None,
    heads_verdict: list[RunRecord] | None = None,
    seeds: int | None = None,
) -> list[str]:
    """The runs left as a table per section and base, for choosing what a sitting runs: each
    row's device time at its section's time per run so far (`_per_run`), and whether that base's
    votes alone can turn its section's verdict (`settled`; for the heads section, with what its lr
    stage and verdict seeds (`heads_verdict`) so far say of that vote: `_heads_window`)."""
    rows = []
    for s in GRID_SECTIONS:
        for base, n in left.get(s, {}).items():
            took = _duration(n * per_run[s]) if s in per_run else "not yet timed"
            if base == "attention":
                turns = "no: the reference, no vote"
            elif settled(parts[s].votes, {base}):
                turns = "no"
            else:
                turns = "yes" + (_heads_window(base, heads_choice or {}, heads_verdict or []) if s == "heads" else "")
            rows.append([s, base, f"{n:,}", took, turns])
    if not rows:
        return []
    return [
        f"Runs left per section and base (`slabench report sla --sections S --bases B{_seeds_flag(seeds)}` runs a "
        "row; attention's "
        "runs go with any base of its section). Whether a base's votes alone can change its section's verdict "
        "holds the other bases' votes as they stand; the gates' verdict reads every solved run, so any row can "
        "change it:",
        "",
        md_table(["section", "base", "runs left", "device time", "its votes alone can change the verdict"], rows),
        "",
    ]


def _and(words: list[str]) -> str:
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


def _code_line(spent: list[RunRecord]) -> str:
    """The commits the runs ran, with how many ran from a tree with changes no commit holds."""
    runs, dirty = Counter(), Counter()  # commit -> runs, runs from a dirty tree
    for r in spent:
        env = r.get("environment") or {}
        sha = (env.get("git_sha") or "unknown")[:7]
        runs[sha] += 1
        dirty[sha] += bool(env.get("git_dirty"))

    def part(sha: str) -> str:
        n, d = runs[sha], dirty[sha]
        tag = "" if not d else "; all" if d == n else f"; {d}"
        return f"{sha} ({n} run{'s' * (n != 1)}{tag}{' from a tree with uncommitted changes' if d else ''})"

    return f"Code: {', '.join(part(sha) for sha, _ in runs.most_common()) or '-'}."


PROTOCOL = (
    "Protocol (second edition), fixed before the runs: per base X (RetNet, GLA, GDN; DeltaNet and Mamba-2 too in "
    "the noise and MQAR sections) five arms, `X`, `X/layer-norm` (X with the twin's output norm), `sla-X` (softmax "
    "head gates, a norm over all heads), `sla-X/head-norm` (the twin with X's per-head norm) and `sla-X/sigmoid` "
    "(the same low-rank gate logits, an independent sigmoid per head: a gate without competition between heads); "
    "three for Mamba-2, whose own norm is the twin's. The noise section has a sixth (Mamba-2 a fourth), added after "
    "its first results: `sla-X/constant`, every gate held at 1/H (a gate without learning); the heads section "
    "has it for gla and RetNet, added after gla's verdict runs at H 2 and 4 (RetNet's when it moved to half gla's "
    "width, before any of its runs there). Attention is the "
    "reference every cell must be solvable by (noise and MQAR). The uniform gate is not the identity: the softmax "
    "starts every head at 1/H, the sigmoid control at the same 1/H, so q and k of every head are scaled by 1/H at "
    "initialisation in both (at these sizes the scaled output lies below the output norm's epsilon, so the norm "
    "does not divide the scale back out: docs/report.md; on GDN it also weakens the delta rule's write). Stage 1: "
    "the grid's first {lr_seeds} seeds at each of its lrs; each cell (task x arm) keeps the lr with the best mean "
    "validation accuracy (ties: the smaller lr). Stage 2: the grid's other seeds at that lr; only these reach the "
    "tables and verdicts below, so the lr choice never saw the seeds it is judged on, and verdicts use test "
    "accuracy only."
)
FIRST_EDITION = (
    "First edition: these records predate the controlled protocol (no control arms, one lr, 3 seeds, budgets at "
    "which several runs were still improving). They are rendered by the second edition's rules, which need the "
    "control arms to say what explains a difference and more seeds to decide; read the verdicts accordingly."
)


def write_report(
    records: dict[str, list[RunRecord]],
    scale: str,
    report_path: Path,
    speed_dir: Path,
    edition: int = 2,
    lr_choice: dict[str, dict[tuple[str, str], dict]] | None = None,
    spent: dict[str, list[RunRecord]] | None = None,
    left: dict[str, dict[str, int]] | None = None,
    others: list[RunRecord] | None = None,
    seeds: int | None = None,
) -> dict[str, str]:
    """records: section -> its verdict records (stage 2); lr_choice: section -> `chosen_lrs`; spent:
    section -> every run behind it, the lr stage's included (default: the verdict records), for
    the device time, the commits and the time left; left: section -> `left_by_base`, so a report
    of a protocol still running says what is left and which verdicts it can still change; others:
    the records folders' runs outside the protocol, whose device time is stated beside. Writes
    the Markdown and PNGs next to it; returns the verdict per section."""
    report_path.parent.mkdir(parents=True, exist_ok=True)
    out_dir, stem = report_path.parent, report_path.stem
    every = [r for s in GRID_SECTIONS for r in records.get(s, [])]
    lr_choice = lr_choice or {}
    parts = {
        "noise": noise_section(records.get("noise", []), out_dir, stem, lr_choice.get("noise", {})),
        "mqar": mqar_section(records.get("mqar", []), out_dir, stem, lr_choice.get("mqar", {})),
        "heads": heads_section(records.get("heads", []), out_dir, stem, lr_choice.get("heads", {})),
        "gates": gates_section(every, out_dir, stem),
        "cost": cost_section(every, speed_dir),
    }
    for s in GRID_SECTIONS:  # a section without runs yet: its title, verdict and rule, no empty tables
        if not records.get(s):
            lines, verdict = parts[s].lines, parts[s].verdict
            rule = [line for line in lines if line.startswith("Rule: ")]
            note = f"No verdict-stage runs yet: `slabench report sla --sections {s}{_seeds_flag(seeds)}` runs them."
            parts[s] = parts[s]._replace(lines=[lines[0], "", note, "", f"**Verdict: {verdict}.**", "", *rule, ""])
    counts = ", ".join(f"{s} {len(records.get(s, []))}" for s in GRID_SECTIONS)
    spent = records if spent is None else spent
    spent_runs = [r for runs in spent.values() for r in runs]
    # Over both stages: an arm whose lr-stage runs all failed has no verdict-stage run to count.
    failed = sum(r["status"] == "failed" for r in spent_runs)
    grids = f"report-v1-<section>-{scale}" if edition == 1 else f"report-<section>-{scale}"
    head = [
        "# SLA mechanism report",
        "",
        (
            f"Generated by `slabench report sla --edition {edition} --scale {scale}{_seeds_flag(seeds)}` from run "
            f"records ({counts}; "
            f"{failed} failed of the {len(spent_runs):,} runs the protocol ran) and the latest GPU speed sweep; do not "
            "edit by hand. Grids: "
            f"`slabench/presets/{grids}.toml`. Softmax Linear Attention, arXiv 2602.01744."
        ),
        "",
        FIRST_EDITION if edition == 1 else PROTOCOL.format(lr_seeds=LR_SEEDS[scale]),
        "",
        md_table(
            ["section", "claim", "verdict", "votes per base", "where sla-X and X differ, what explains it"],
            [
                [f"{i}. {s}", CLAIMS[s], p.verdict, _votes(p.votes), _explained(p.explained)]
                for i, (s, p) in enumerate(parts.items(), 1)
            ],
        ),
        "",
    ]
    per_run = _per_run(spent)
    totals = {s: sum(by_base.values()) for s, by_base in (left or {}).items()}
    if sum(totals.values()):
        by_section = ", ".join(f"{s} {n:,}" for s, n in totals.items() if n)
        head += [
            f"**Incomplete:** {sum(totals.values()):,} of the protocol's runs still to run ({by_section})"
            f"{_time_left(totals, per_run, record_machines(spent_runs))}{_can_change(parts, left)}",
            "",
            *_plan(parts, left, per_run, lr_choice.get("heads"), records.get("heads", []), seeds),
        ]
    head += _runs_lines(spent, every, others or [])
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

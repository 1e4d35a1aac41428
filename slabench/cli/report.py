"""`report`: reports per paper, one subcommand each (`report sla`, `report zoology`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import click

from slabench.cli import render
from slabench.cli.grid import run_pending
from slabench.cli.options import (
    device_option,
    fold_option,
    from_records_option,
    out_option,
    parse_fold,
    parse_names,
    positive_int_option,
    quiet_option,
    report_file_option,
    resolve_report,
    retry_failed_option,
    scale_option,
    workers_option,
)
from slabench.errors import SlabenchError
from slabench.runners.execute import Job


@dataclass(frozen=True)
class _Section:
    """A report section's grid: its name, its records' directory, its whole grid (every base's
    runs, both stages), and its stored records when it is not run (--from-records, or a section
    outside --sections), else None."""

    name: str
    out: Path
    specs: list
    stored: dict | None


def _stage(
    title: str,
    stage: dict[str, tuple[_Section, list]],
    device: str,
    workers: int,
    quiet: bool,
    retry_failed: bool,
    fold: int | str,
) -> dict[str, list]:
    """section -> the records of its runs in `stage` (section -> (its grid, its runs)): the stored
    ones for a section not run, else run where missing, every section's runs in one pool."""
    records = {
        sec: [grid.stored[s.key()] for s in specs if s.key() in grid.stored]
        for sec, (grid, specs) in stage.items()
        if grid.stored is not None
    }
    jobs = {
        sec: Job(grid.name, specs, grid.out, grid.specs)
        for sec, (grid, specs) in stage.items()
        if grid.stored is None and specs
    }
    if jobs:
        results = run_pending(title, list(jobs.values()), device, workers, quiet, retry_failed=retry_failed, fold=fold)
        records |= {sec: result.records for sec, result in zip(jobs, results)}
    return {sec: records.get(sec, []) for sec in stage}


def _stored_records(out: Path) -> dict:
    """key -> record under `out`, for a section built from its records; each corrupt one is named
    and skipped, as `slabench leaderboard` does."""
    from slabench.runners.records import load_records

    found = load_records(out)
    render.print_corrupt(found.corrupt, "skipped")
    return found.records


@click.group()
def report() -> None:
    """Mechanism reports: grids, verdicts and plots for a paper's claims."""


@report.command("sla")
@out_option("run records, one subdirectory per section (existing ones are reused)", default="runs/sla-report")
@report_file_option(
    "leaderboards/sla-report.md", "the Markdown, PNG plots next to it (--edition 1: leaderboards/sla-report-v1.md)"
)
@from_records_option()
@scale_option("the GPU grids (4283 runs, hours of one GPU: docs/report.md)")
@click.option(
    "--edition",
    type=click.Choice(["1", "2"]),
    default="2",
    show_default=True,
    help="2: controlled arms, lr chosen per arm on validation, 10 seeds; 1: the first edition's grids (full only)",
)
@click.option(
    "--sections",
    default=None,
    help="comma list of the sections to run (noise, mqar, heads; default all); the others are read from the "
    "records already under --out",
)
@click.option(
    "--bases", default="", help="comma list of bases whose arms to run (e.g. gla), attention always; default all"
)
@positive_int_option(
    "--seeds",
    "verdict seeds per cell (edition 2; default the grids' 10): the seeds per cell an inconclusive verdict says "
    "would decide it; --from-records needs the same value to read them",
)
@click.option(
    "--speed-dir",
    default="leaderboards/speed",
    show_default=True,
    type=click.Path(file_okay=False),
    help="where `slabench sweep` wrote its JSON (claim 4)",
)
@device_option()
@workers_option()
@fold_option("default 1")
@retry_failed_option()
@quiet_option("only the verdicts")
def report_sla(
    out: str,
    report_path: str | None,
    from_records: bool,
    scale: str,
    edition: str,
    sections: str | None,
    bases: str,
    seeds: int | None,
    speed_dir: str,
    device: str,
    workers: int,
    fold: str | None,
    retry_failed: bool,
    quiet: bool,
) -> None:
    """The SLA paper's claims (noise robustness, heads, gate sharpening, cost), each with a verdict.

    Runs the report-<section>-<scale> grids (resuming) in two stages: the lr sweep on the first
    seeds, then the other seeds at each cell's lr chosen on validation; then writes the Markdown
    from the second stage's records.
    """
    from slabench.runners.leaderboard import aggregate
    from slabench.runners.leaderboard_files import write_leaderboard
    from slabench.runners.records import load_records
    from slabench.runners.report import (
        GRID_SECTIONS,
        chosen_lrs,
        left_by_base,
        lr_stage,
        only_bases,
        section_specs,
        verdict_stage,
        write_report,
    )

    ed = int(edition)
    committed = "leaderboards/sla-report-v1.md" if ed == 1 else "leaderboards/sla-report.md"
    report = resolve_report(report_path, committed, scale, out)
    folding = parse_fold(fold, 1)
    chosen = GRID_SECTIONS if sections is None else parse_names("--sections", sections, "section", "mqar,heads")
    if not set(chosen) <= set(GRID_SECTIONS):
        raise SlabenchError(f"--sections={sections!r}: choose a comma list of {', '.join(GRID_SECTIONS)}")
    # Each stage runs every chosen section's runs in one pool; stage 2 needs stage 1's lr choices.
    wanted = parse_names("--bases", bases, "base", "gla") if bases else ()  # default: every base
    grids, specs_of = {}, {}
    for section in GRID_SECTIONS:
        name, specs = section_specs(section, scale, ed, seeds)
        section_dir = Path(out) / section
        run_it = section in chosen and not from_records
        grids[section] = _Section(name, section_dir, specs, None if run_it else _stored_records(section_dir))
        specs_of[section] = only_bases(specs, wanted) if run_it else specs
    # --from-records with nothing under --out (a fresh clone's default) would rewrite the report
    # from no runs at all; a partial set is fine (a section may not have run yet).
    if from_records and not any(grid.stored for grid in grids.values()):
        raise SlabenchError(
            f"--out '{out}' holds no run records (none in its {', '.join(GRID_SECTIONS)} records/ folders); "
            "`slabench report sla` without --from-records runs them, or pass --out leaderboards/records/sla-report"
        )
    run = partial(_stage, device=device, workers=workers, quiet=quiet, retry_failed=retry_failed, fold=folding)
    firsts = {sec: lr_stage(specs_of[sec], scale, ed) for sec in grids}
    stage1 = run("sla-report: lr stage", {sec: (grid, firsts[sec]) for sec, grid in grids.items()})
    choice = {sec: chosen_lrs(stage1[sec]) for sec in grids}
    seeds_stage = {sec: (grid, verdict_stage(specs_of[sec], firsts[sec], choice[sec])) for sec, grid in grids.items()}
    records = run("sla-report: seeds stage", seeds_stage)
    for sec, grid in grids.items():
        if grid.stored is None:
            write_leaderboard(aggregate(stage1[sec] + records[sec]), grid.out, grid.name)
    spent = {sec: stage1[sec] + records[sec] for sec in grids}
    # What the whole protocol still lacks, every base's arms, whatever this sitting ran.
    stored = {
        sec: load_records(grid.out).records if grid.stored is None else grid.stored for sec, grid in grids.items()
    }
    left = {sec: left_by_base(grid.specs, scale, ed, stored[sec]) for sec, grid in grids.items()}
    protocol = {r["key"] for runs in spent.values() for r in runs}
    others = [r for sec in grids for key, r in stored[sec].items() if key not in protocol]
    verdicts = write_report(records, scale, report, Path(speed_dir), ed, choice, spent, left, others, seeds)
    render.print_tables(render.rows_table("SLA claims", ("section", "verdict"), list(verdicts.items())))
    click.echo(f"report: {report}")


@report.command("zoology")
@out_option("run records, one subdirectory per grid (existing ones are reused)", default="runs/zoology-mqar")
@report_file_option("leaderboards/zoology-mqar.md", "the Markdown, the PNG figure next to it")
@from_records_option()
@scale_option("the zoology-mqar-<seq_len>[-attention] grids (1/16 of Zoology's epochs, 1/4 for attention; 324 runs)")
@device_option()
@workers_option()
@retry_failed_option()
@quiet_option("only the verdict")
def report_zoology(
    out: str,
    report_path: str | None,
    from_records: bool,
    scale: str,
    device: str,
    workers: int,
    retry_failed: bool,
    quiet: bool,
) -> None:
    """Zoology's Figure 2 (MQAR accuracy vs d_model per seq_len) with its acceptance checks.

    Runs the zoology-mqar grids (resuming), then writes the Markdown and figure from the records.
    """
    from slabench.runners.zoology import grid_specs, write_zoology

    # Longest runs first (attention's grids, then the longer sequences): one pool takes every
    # grid's pending runs, so the last long ones overlap the short ones instead of idling workers.
    jobs = [Job(name, specs, Path(out) / name) for name, specs in reversed(grid_specs(scale))]
    jobs.sort(key=lambda job: not job.name.endswith("-attention"))
    if from_records:
        records = []
        for job in jobs:  # a grid's directory may hold other grids' runs too
            keys = {s.key() for s in job.specs}
            records += [r for key, r in _stored_records(job.out).items() if key in keys]
        if not records:  # else a fresh clone's default --out would rewrite the report from no runs
            raise SlabenchError(
                f"--out '{out}' holds no run records of the zoology-mqar grids; `slabench report zoology` without "
                "--from-records runs them, or pass --out leaderboards/records/zoology-mqar"
            )
    else:
        results = run_pending("zoology-mqar", jobs, device, workers, quiet, retry_failed=retry_failed)
        records = [r for result in results for r in result.records]
    report = resolve_report(report_path, "leaderboards/zoology-mqar.md", scale, out)
    click.echo(f"acceptance: {write_zoology(records, scale, report)}")
    click.echo(f"report: {report}")

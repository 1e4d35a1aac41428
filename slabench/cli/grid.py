"""Training grids: `run`, `leaderboard` (rebuilt from records), `pack` (records folded into one
compressed file for committing) and `ci` (the accuracy regression check), and `run_pending`,
the progress display every grid-running command shares."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from slabench.cli import render
from slabench.cli.options import (
    Writable,
    check_name,
    device_option,
    fold_option,
    grid_file_argument,
    json_option,
    out_option,
    parse_fold,
    quiet_option,
    retry_failed_option,
    workers_option,
)
from slabench.config import RunSpec
from slabench.errors import SlabenchError
from slabench.runners.execute import GridResult, Job, estimate, execute


def run_pending(
    name: str,
    jobs: list[Job],
    device: str,
    workers: int,
    quiet: bool,
    backend: str = "local",
    retry_failed: bool = False,
    outputs: Any = None,
    fold: int | str = 1,
    address: str | None = None,
) -> list[GridResult]:
    """Run the specs of `jobs` (one grid each; several share one pool) not yet recorded, with a
    progress bar and one line per finished run unless quiet; each job's `GridResult` (records of
    all its specs, runs done now, runs skipped), in order. Ctrl-C exits 130 with a line on how to
    resume."""
    try:
        with closing(render.GridView(quiet)) as view:
            return execute(name, jobs, device, workers, backend, retry_failed, outputs, fold, view, address)
    except KeyboardInterrupt:
        where = ", ".join(sorted({str(job.out) for job in jobs}))
        render.console.print(
            f"[yellow]interrupted: finished runs are recorded under {where}; rerun the same command to resume[/]"
        )
        sys.exit(130)


@click.command()
@grid_file_argument()
@click.option("--preset", help="a shipped grid: smoke, ci, quick, paper, coverage, ... (a wrong name lists all)")
@out_option("records and the leaderboard <name>.md/.csv/.json (default runs/<name>/)")
@click.option(
    "--leaderboard-dir",
    type=Writable(),
    help="also write the leaderboard here (e.g. leaderboards/ to regenerate a committed one)",
)
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option(
    "--address",
    help="with --backend ray: join a running Ray cluster, auto (started on this host) or HOST:PORT of its head "
    "(default: a local Ray instance)",
)
@device_option()
@workers_option()
@retry_failed_option()
@fold_option("the grid's [train] fold, else 1")
@quiet_option("no progress output")
@json_option("print a JSON summary on stdout")
@click.option(
    "--dry-run", is_flag=True, help="print the plan (runs to do, already recorded, estimated time); train nothing"
)
@click.option(
    "--log-dir",
    type=Writable(),
    help="TensorBoard logs, one subfolder per run (<key>): loss, lr, validation accuracy, diagnostics "
    "(extra: pip install 'slabench[tb]')",
)
@click.option(
    "--save-checkpoints", is_flag=True, help="save each run's best-validation weights as <out>/checkpoints/<key>.pt"
)
@click.option(
    "--mixer",
    "mixers",
    multiple=True,
    help="replace the grid's models by this mixer (repeatable; e.g. path/to/file.py:Class, or an arm: "
    "sla-gla/head-norm) at its first model's backbone",
)
@click.option(
    "--train",
    "train_settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="set a [train] key of the grid (repeatable; e.g. steps=100, seeds=[0,1], lr=[1e-3]; `slabench "
    "train-options` lists them): new settings are new runs",
)
def run(
    grid_file: str | None,
    preset: str | None,
    out: str | None,
    leaderboard_dir: str | None,
    backend: str,
    address: str | None,
    device: str,
    workers: int,
    retry_failed: bool,
    fold: str | None,
    quiet: bool,
    as_json: bool,
    dry_run: bool,
    log_dir: str | None,
    save_checkpoints: bool,
    mixers: tuple[str, ...],
    train_settings: tuple[str, ...],
) -> None:
    """Run a grid (GRID_FILE or --preset), resuming from existing records, and rank the results."""
    from slabench.config import expand_grid, grid_fold, load_grid_file, load_preset, with_train
    from slabench.params import parse_assignments
    from slabench.runners.grid import check_address, resolve_device
    from slabench.runners.leaderboard import aggregate
    from slabench.runners.leaderboard_files import json_safe, write_leaderboard

    device = resolve_device(device)  # fail on a bad --device or --address before anything is printed or run
    check_address(address)
    if address is not None and backend != "ray":
        raise SlabenchError(f"--address {address} joins a Ray cluster; it needs --backend ray")
    if (grid_file is None) == (preset is None):
        raise SlabenchError("give exactly one of GRID_FILE or --preset NAME")
    grid = load_preset(preset) if preset is not None else load_grid_file(grid_file)
    if train_settings:
        grid = with_train(grid, parse_assignments(train_settings, "--train"))
    if mixers:
        from slabench.runners.compare import with_models

        grid = with_models(grid, list(mixers))
    name, specs = expand_grid(grid)
    fold = parse_fold(fold, grid_fold(grid))
    out_dir = Path(out or Path("runs") / name)
    if dry_run:
        _print_plan(name, specs, out_dir, device, workers, retry_failed, as_json)
        return
    from slabench.runners.train import RunOutputs, check_tensorboard

    if log_dir is not None:
        check_tensorboard()  # fail here, not in every run
        Path(log_dir).mkdir(parents=True, exist_ok=True)  # likewise a folder no check foresaw (/proc/x)
    outputs = RunOutputs(log_dir, str(out_dir / "checkpoints") if save_checkpoints else None)
    jobs = [Job(name, specs, out_dir)]
    (result,) = run_pending(
        name, jobs, device, workers, quiet or as_json, backend, retry_failed, outputs, fold, address
    )
    board = aggregate(result.records)
    paths = write_leaderboard(board, out_dir, name)
    if leaderboard_dir is not None:
        paths = write_leaderboard(board, Path(leaderboard_dir), name)
    failed = [f for f in board["failures"] if f["status"] == "failed"]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": name,
                    "out": str(out_dir),
                    "runs": len(specs),
                    "skipped": result.skipped,
                    "ran": result.ran,
                    "failed": failed,
                    "leaderboard": {k: str(v) for k, v in paths.items()},
                    "overall": json_safe(board["overall"]),  # a one-seed cell has no interval: null, not NaN
                },
                indent=1,
                default=str,
                allow_nan=False,
            )
        )
    elif not quiet:
        render.print_board(board)
        render.print_warnings(board["warnings"])
        click.echo(f"leaderboard: {paths['md']}")
    if failed:
        render.print_failures(failed)
        sys.exit(1)


def _print_plan(
    name: str, specs: list[RunSpec], out_dir: Path, device: str, workers: int, retry_failed: bool, as_json: bool
) -> None:
    """`run --dry-run`: what would run, what is recorded, and how long the rest should take."""
    plan = estimate(name, specs, out_dir, device, workers, retry_failed)
    if not as_json:
        render.print_estimate(plan)
        return
    click.echo(
        json.dumps(
            {
                "name": name,
                "out": str(out_dir),
                "runs": plan.runs,
                "recorded": plan.recorded,
                "pending": [s.to_dict() | {"key": s.key()} for s in plan.pending],
                "workers": plan.workers,
                "estimated_seconds": plan.seconds,
                "machine": plan.machine,
                "recorded_elsewhere": plan.elsewhere,
            },
            indent=1,
            default=str,
        )
    )


@click.command()
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--name", callback=check_name, help="leaderboard file name (default: the grid name in the records)")
@click.option("--out-dir", type=Writable(), help="where to write (default RESULTS_DIR)")
@click.option("--solve-at", type=float, help="test accuracy at which a run counts as solved (default: the records')")
@click.option("--min-seeds", type=int, help="fewest seeds for a cell to be ranked (default: the records')")
def leaderboard(
    results_dir: str, name: str | None, out_dir: str | None, solve_at: float | None, min_seeds: int | None
) -> None:
    """Rebuild a leaderboard from the run records under RESULTS_DIR."""
    from slabench.runners.leaderboard import aggregate
    from slabench.runners.leaderboard_files import write_leaderboard
    from slabench.runners.records import load_records

    found = load_records(Path(results_dir))
    render.print_corrupt(found.corrupt, "skipped")
    records = list(found.records.values())
    if not records:
        raise SlabenchError(
            f"RESULTS_DIR '{results_dir}' holds no run records (expected records/*.json or records/packed.jsonl.gz)"
        )
    grids = sorted({r["spec"]["grid"] for r in records})
    name = name or (grids[0] if len(grids) == 1 else Path(results_dir).name)
    board = aggregate(records, solve_at=solve_at, min_seeds=min_seeds)
    paths = write_leaderboard(board, Path(out_dir or results_dir), name)
    render.print_board(board)
    click.echo(f"leaderboard: {paths['md']}")


@click.command()
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
def pack(results_dir: str) -> None:
    """Fold the run records under RESULTS_DIR into one compressed file per records/ folder.

    Each folder's <key>.json files become records/packed.jsonl.gz (about a tenth of the size, for
    committing); every command reads packed records as it reads loose ones, and runs recorded
    later are written loose beside the pack until the next `pack`.
    """
    from slabench.runners.records import pack_records

    packed = pack_records(Path(results_dir))
    for folder, n, before, after in packed:
        click.echo(f"{folder}: {n} records, {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
    if not packed:
        click.echo(f"{results_dir}: no loose records to pack")


@click.command()
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False),
    default="leaderboards/ci/baseline.json",
    show_default=True,
    help="baseline to compare with (or to write, with --update)",
)
@out_option("run records (existing ones are reused, like `run`)", default="runs/ci")
@click.option("--update", is_flag=True, help="rewrite the baseline from this run (on purpose: commit it)")
@device_option("cpu", "the baseline was made on cpu")
@workers_option(2, minimum=1, help="parallel runs")
@quiet_option("only the table")
def ci(baseline_path: str, out: str, update: bool, device: str, workers: int, quiet: bool) -> None:
    """Accuracy regression check: run the `ci` preset, compare with the baseline, exit 1 on a drop.

    A cell fails when fewer seeds reach solve_at than in the baseline, or when a one-sided exact
    test paired by seed says its accuracy fell (by more than 2 points on the mean).
    """
    from slabench.config import expand_grid, load_preset
    from slabench.runners import regression

    path = Path(baseline_path)
    # Read and check the baseline before training: a missing or malformed one fails in a second,
    # not after the preset's minutes (--update writes it instead, from this run).
    baseline = None if update else regression.load_baseline(path)
    name, specs = expand_grid(load_preset("ci"))
    records = run_pending(name, [Job(name, specs, Path(out))], device, workers, quiet)[0].records
    if update:
        baseline = regression.make_baseline(records, name)
        # A cell whose runs all failed has no accuracies: refuse it rather than overwrite a good baseline.
        regression.check_baseline(baseline, f"the baseline from this run (not written to '{path}')")
        regression.write_baseline(path, baseline)
        render.console.print(f"baseline written: {path}")
    rows = regression.check(records, baseline)
    render.print_tables(*render.regression_tables(rows, str(path), regression.RULE))
    if regression.failed(rows):
        bad = [f"{r['model']} ({r['verdict']})" for r in rows if r["verdict"] in ("regressed", "missing")]
        render.console.print(f"[red]accuracy regression[/]: {'; '.join(bad)}")
        sys.exit(1)

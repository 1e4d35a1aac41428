"""The `slabench` command line: click commands that map flags to configs and call runners."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from slabench.errors import SlabenchError

console = Console(stderr=True)
out_console = Console()


class Group(click.Group):
    """Prints a SlabenchError as one line (no traceback) and exits with status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SlabenchError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=Group)
@click.version_option(package_name="slabench")
def main() -> None:
    """Benchmark sequence-mixing mechanisms on synthetic recall tasks."""


def _params_table(title: str, rows: list[tuple[str, list]]) -> Table:
    table = Table(title=title, show_lines=True)
    for col in ("name", "parameters (default)"):
        table.add_column(col)
    for name, params in rows:
        table.add_row(name, "\n".join(f"{p.name}: {p.describe_type()} = {p.default!r}" + (f"  [dim]{p.help}[/]" if p.help else "")
                                      for p in params))
    return table


def _params_json(rows: list[tuple[str, list]]) -> str:
    return json.dumps({name: {p.name: {"type": p.describe_type(), "default": p.default, "help": p.help} for p in params}
                       for name, params in rows}, indent=1, default=str)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def tasks(as_json: bool) -> None:
    """List registered tasks with their parameters and defaults."""
    from slabench.tasks import TASKS, task_params

    rows = [(n, task_params(n)) for n in TASKS.names()]
    out_console.print(_params_json(rows)) if as_json else out_console.print(_params_table("tasks", rows))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def models(as_json: bool) -> None:
    """List registered mixers with their parameters (backbone first) and defaults."""
    from slabench.models import MIXERS, model_params

    rows = [(n, model_params(n)) for n in MIXERS.names()]
    click.echo(_params_json(rows)) if as_json else out_console.print(_params_table("models", rows))


@main.command()
@click.argument("task_name", metavar="TASK")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="task parameter (repeatable)")
@click.option("-n", "num", type=int, default=3, show_default=True, help="examples to show")
@click.option("--seed", type=int, default=0, show_default=True)
def show(task_name: str, assignments: tuple[str, ...], num: int, seed: int) -> None:
    """Print decoded examples of TASK, scored positions highlighted with their targets."""
    from slabench.params import parse_assignments
    from slabench.tasks import build_task
    from slabench.tasks.show import render_examples

    if num < 1:
        raise SlabenchError(f"-n={num} must be >= 1")
    task = build_task(task_name, **parse_assignments(assignments))
    out_console.print(render_examples(task, n=num, seed=seed))


def _board_table(board: dict[str, Any]) -> list[Table]:
    from slabench.runners.leaderboard import TASK_COLUMNS, task_row_cells

    tables = []
    for task, rows in board["tasks"].items():
        table = Table(title=task)
        for col in TASK_COLUMNS:
            table.add_column(col, justify="left" if col == "model" else "right")
        for r in rows:
            table.add_row(*task_row_cells(r))
        tables.append(table)
    return tables


@main.command()
@click.argument("grid_file", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", help="a shipped grid: smoke, ci, quick, paper")
@click.option("--out", type=click.Path(file_okay=False), help="records and leaderboard (default runs/<name>/)")
@click.option("--leaderboard-dir", type=click.Path(file_okay=False),
              help="also write the leaderboard here (default: leaderboards/ for presets)")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--workers", type=int, default=0, help="parallel runs (0 = all cores on CPU, several per GPU)")
@click.option("--retry-failed", is_flag=True, help="rerun runs recorded as failed")
@click.option("--quiet", is_flag=True, help="no progress output")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary on stdout")
def run(grid_file: str | None, preset: str | None, out: str | None, leaderboard_dir: str | None, backend: str,
        device: str, workers: int, retry_failed: bool, quiet: bool, as_json: bool) -> None:
    """Run a grid (GRID_FILE or --preset), resuming from existing records, and rank the results."""
    from slabench.config import expand_grid, load_grid_file, load_preset
    from slabench.runners.grid import plan, run_grid
    from slabench.runners.leaderboard import aggregate, write_leaderboard
    from slabench.runners.records import load_records

    if (grid_file is None) == (preset is None):
        raise SlabenchError("give exactly one of GRID_FILE or --preset NAME")
    if workers < 0:
        raise SlabenchError(f"--workers={workers} must be >= 0")
    name, specs = expand_grid(load_preset(preset) if preset else load_grid_file(grid_file))
    out_dir = Path(out or Path("runs") / name)
    pending, recorded, corrupt = plan(specs, out_dir, retry_failed)
    for path, reason in corrupt:
        console.print(f"[yellow]corrupt record {path}: {reason}; its run will be redone[/]")
    if not quiet and not as_json:
        console.print(f"[bold]{name}[/]: {len(specs)} runs, {len(recorded)} already recorded, {len(pending)} to run "
                      f"-> {out_dir}")

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, disable=quiet or as_json)
    bar = progress.add_task(name, total=len(pending))
    finished = [0]

    def on_event(kind: str, spec: Any, record: dict[str, Any] | None) -> None:
        if kind == "step":
            progress.update(bar, completed=finished[0] + record["step"] / record["total"])
        elif kind == "end":
            finished[0] += 1
            progress.update(bar, completed=finished[0])
            status = record["status"]
            detail = (f"acc {100 * record['metrics']['test_acc']:.1f}%  {record['timings']['train_seconds']:.1f}s"
                      if status == "ok" else (record.get("error") or "")[:160])
            colour = {"ok": "green", "diverged": "yellow"}.get(status, "red")
            if not quiet and not as_json:
                progress.console.print(f"[{colour}]{status:8s}[/] {spec.model.label()} | {spec.task.label()} | "
                                       f"lr {spec.train.lr:g} seed {spec.seed}  {detail}")

    try:
        with progress:
            run_grid(pending, out_dir, backend=backend, device=device, workers=workers, on_event=on_event)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted: finished runs are recorded under {out_dir}; rerun the same command to resume[/]")
        sys.exit(130)

    keys = {s.key() for s in specs}
    records = [r for k, r in load_records(out_dir).records.items() if k in keys]
    paths = write_leaderboard(records, out_dir, "leaderboard")
    lb_dir = Path(leaderboard_dir) if leaderboard_dir else (Path("leaderboards") if preset else None)
    if lb_dir is not None:
        paths = write_leaderboard(records, lb_dir, name)
    board = aggregate(records)
    failed = [f for f in board["failures"] if f["status"] == "failed"]
    if as_json:
        click.echo(json.dumps({"name": name, "out": str(out_dir), "runs": len(specs), "skipped": len(recorded),
                               "ran": len(pending), "failed": failed, "leaderboard": {k: str(v) for k, v in paths.items()},
                               "overall": board["overall"]}, indent=1, default=str))
    elif not quiet:
        for table in _board_table(board):
            out_console.print(table)
        out_console.print(f"leaderboard: {paths['md']}")
    if failed:
        console.print(f"[red]{len(failed)} run(s) failed[/]: " + "; ".join(f"{f['model']} seed {f['seed']}: {f['error']}"
                                                                      for f in failed[:5]))
        sys.exit(1)


@main.command()
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--name", help="leaderboard file name (default: the grid name in the records)")
@click.option("--out-dir", type=click.Path(file_okay=False), help="where to write (default RESULTS_DIR)")
def leaderboard(results_dir: str, name: str | None, out_dir: str | None) -> None:
    """Rebuild a leaderboard from the run records under RESULTS_DIR."""
    from slabench.runners.leaderboard import aggregate, write_leaderboard
    from slabench.runners.records import load_records

    found = load_records(Path(results_dir))
    for path, reason in found.corrupt:
        console.print(f"[yellow]skipping corrupt record {path}: {reason}[/]")
    records = list(found.records.values())
    if not records:
        raise SlabenchError(f"RESULTS_DIR '{results_dir}' holds no run records (expected records/*.json)")
    grids = sorted({r["spec"]["grid"] for r in records})
    name = name or (grids[0] if len(grids) == 1 else Path(results_dir).name)
    paths = write_leaderboard(records, Path(out_dir or results_dir), name)
    for table in _board_table(aggregate(records)):
        out_console.print(table)
    out_console.print(f"leaderboard: {paths['md']}")


@main.command()
@click.option("--device", "devices", multiple=True, help="cpu, cuda (repeatable; default: cpu, and cuda if present)")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(["float32", "bfloat16", "float16"]),
              help="repeatable; default: float32 and bfloat16")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def doctor(devices: tuple[str, ...], dtypes: tuple[str, ...], as_json: bool) -> None:
    """Which kernel path each op takes per device and dtype, and why faster ones were skipped."""
    import torch

    from slabench import kernels

    devices = devices or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    rows = kernels.doctor(list(devices), [getattr(torch, d) for d in (dtypes or ("float32", "bfloat16"))])
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    table = Table(title="kernel paths", show_lines=True)
    for col in ("op", "device", "dtype", "path", "fallbacks"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["op"], r["device"], r["dtype"], r["path"], "\n".join(r["fallbacks"]))
    out_console.print(table)

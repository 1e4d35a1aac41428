"""The `slabench` command line: click commands that map flags to configs and call runners."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from slabench.config import RunSpec
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


def _print_table(*tables: Table) -> None:
    """Print tables on stdout; into a pipe or a CI log (no terminal, so no width to fit) at
    their natural width, so no cell is cut to "…"."""
    for table in tables:
        if out_console.is_terminal:
            out_console.print(table)
            continue
        natural = Measurement.get(out_console, out_console.options.update_width(10**6), table).maximum
        Console(width=max(out_console.width, natural)).print(table)


def _params_table(title: str, rows: list[tuple[str, list]]) -> Table:
    table = Table(title=title, show_lines=True)
    for col in ("name", "parameters (default)"):
        table.add_column(col)
    for name, params in rows:
        # Help and types are plain text ("blocks of [mixer, MLP]"): escape them, or rich reads markup.
        table.add_row(name, "\n".join(escape(f"{p.name}: {p.describe_type()} = {p.default!r}")
                                      + (f"  [dim]{escape(p.help)}[/]" if p.help else "") for p in params))
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
    click.echo(_params_json(rows)) if as_json else _print_table(_params_table("tasks", rows))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def models(as_json: bool) -> None:
    """List registered mixers with their parameters (backbone first) and defaults."""
    from slabench.models import MIXERS, model_params

    rows = [(n, model_params(n)) for n in MIXERS.names()]
    click.echo(_params_json(rows)) if as_json else _print_table(_params_table("models", rows))


@main.command("train-options")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def train_options(as_json: bool) -> None:
    """List every key of a grid's [train] table with its type, default and meaning."""
    from slabench.config import TrainSpec
    from slabench.params import Param, dataclass_params

    params = [*dataclass_params(TrainSpec), Param("seeds", list[int], [0], "one run per seed (a list)")]
    if as_json:
        click.echo(_params_json([("train", params)]))
        return
    table = Table(title=escape("[train] keys"),
                  caption="A list value runs every element (a cartesian product); of several lr, each cell keeps "
                          "the best on validation.")
    for col in ("key", "type", "default", "meaning"):
        table.add_column(col)
    for p in params:
        table.add_row(p.name, escape(p.describe_type()), escape(repr(p.default)), escape(p.help))
    _print_table(table)


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


NARROW_COLUMNS = ("rank", "model", "solved (95% CI)", "acc % (95% CI)", "seeds' acc %")


def _board_table(board: dict[str, Any], every_column: bool = False) -> list[Table]:
    from slabench.runners.leaderboard import TASK_COLUMNS, task_row_cells

    tables = []
    for task, rows in board["tasks"].items():
        # On a terminal, name each model by its mixer and the parameters that differ between
        # rows; the shared ones go in the caption (the files keep full labels).
        shared = set.intersection(*(set(r["model_params"].items()) for r in rows))
        caption = ", ".join(f"{k}={v}" for k, v in sorted(shared))
        table = Table(title=task, caption=f"all models: {caption}" if caption else None)
        # Below ~120 columns the full table truncates every cell to "…": keep the essentials
        # there (the Markdown, CSV and JSON files always have every column).
        wide = every_column or out_console.width >= 120
        keep = [i for i, col in enumerate(TASK_COLUMNS) if wide or col in NARROW_COLUMNS]
        for i in keep:
            col = TASK_COLUMNS[i]
            table.add_column(col, justify="left" if col == "model" else "right",
                             no_wrap=col in ("model", "solved (95% CI)", "acc % (95% CI)"))
        for r in rows:
            own = ", ".join(f"{k}={v}" for k, v in sorted(set(r["model_params"].items()) - shared))
            cells = task_row_cells({**r, "model": f"{r['mixer']}({own})" if own else r["mixer"]})
            table.add_row(*(cells[i] for i in keep))
        tables.append(table)
    return tables


class GridRemaining(ProgressColumn):
    """Time left in a grid: the mean pace since the grid started times the runs left.

    Rich's own column extrapolates from the progress updates of the last 30 s only: runs that
    finish together (one per worker) look like a burst of speed and the ETA falls 10x short.
    """

    def render(self, task: Any) -> Text:
        if not task.completed or task.elapsed is None or task.total is None:
            return Text("-:--:-- left", style="progress.remaining")
        left = task.elapsed * (task.total - task.completed) / task.completed
        hours, rest = divmod(round(left), 3600)
        return Text(f"{hours}:{rest // 60:02d}:{rest % 60:02d} left", style="progress.remaining")


def _run_pending(name: str, specs: list, out_dir: Path, device: str, workers: int, quiet: bool,
                 backend: str = "local", retry_failed: bool = False,
                 outputs: Any = None, fold: int | str = 1) -> tuple[list[dict[str, Any]], int, int]:
    """Run the specs not yet recorded under out_dir, with a progress bar and one line per
    finished run unless quiet; return (the records of all of `specs`, runs done now, runs skipped)."""
    from slabench.runners.grid import plan, resolve_device, run_grid
    from slabench.runners.records import load_records, write_grid
    from slabench.runners.train import NO_OUTPUTS

    pending, recorded, corrupt = plan(specs, out_dir, retry_failed)
    for path, reason in corrupt:
        console.print(f"[yellow]corrupt record {path}: {reason}; its run will be redone[/]")
    write_grid(out_dir, name, specs)
    if not quiet:
        console.print(f"[bold]{name}[/]: {len(specs)} runs, {len(recorded)} already recorded, {len(pending)} to run "
                      f"-> {out_dir}")

    if not quiet and backend == "local" and resolve_device(device).startswith("cuda") and workers != 1 \
            and len(pending) > 1:
        from slabench.runners.environment import mps_active

        if not mps_active():
            console.print("[dim]note: packed GPU runs time-slice the GPU without NVIDIA MPS (1.1x measured); "
                          "`nvidia-cuda-mps-control -d` starts it (leaderboards/speed/packing.md)[/]")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        GridRemaining(), console=console, disable=quiet)
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
            if not quiet:
                progress.console.print(f"[{colour}]{status:8s}[/] {spec.model.label()} | {spec.task.label()} | "
                                       f"lr {spec.train.lr:g} seed {spec.seed}  {detail}")

    try:
        with progress:
            run_grid(pending, out_dir, backend=backend, device=device, workers=workers, on_event=on_event,
                     outputs=outputs or NO_OUTPUTS, fold=fold)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted: finished runs are recorded under {out_dir}; rerun the same command to resume[/]")
        sys.exit(130)
    keys = {s.key() for s in specs}
    return [r for k, r in load_records(out_dir).records.items() if k in keys], len(pending), len(recorded)


def _print_plan(name: str, specs: list, out_dir: Path, device: str, workers: int, retry_failed: bool,
                as_json: bool) -> None:
    """`run --dry-run`: what would run, what is recorded, and how long the rest should take,
    estimated from the recorded runs of the same model and task (else of any)."""
    from statistics import mean

    from slabench.runners.grid import default_workers, plan
    from slabench.runners.records import load_records

    pending, recorded, _ = plan(specs, out_dir, retry_failed)
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in load_records(out_dir).records.values():
        if r["status"] == "ok":
            spec = RunSpec.from_dict(r["spec"])
            seconds.setdefault((spec.model.label(), spec.task.label()), []).append(r["timings"]["train_seconds"])
    every = [t for ts in seconds.values() for t in ts]
    workers = workers or default_workers(device, len(pending))
    estimate = None
    if pending and every:
        per_run = [mean(seconds.get((s.model.label(), s.task.label()), every)) for s in pending]
        estimate = sum(per_run) / min(workers, len(pending))
    if as_json:
        click.echo(json.dumps({"name": name, "out": str(out_dir), "runs": len(specs), "recorded": len(recorded),
                               "pending": [s.to_dict() | {"key": s.key()} for s in pending], "workers": workers,
                               "estimated_seconds": estimate}, indent=1, default=str))
        return
    table = Table(title=f"{name}: {len(specs)} runs, {len(recorded)} already recorded, {len(pending)} to run -> {out_dir}")
    for col in ("model", "task", "lr", "seed"):
        table.add_column(col)
    for s in pending:
        table.add_row(escape(s.model.label()), escape(s.task.label()), f"{s.train.lr:g}", str(s.seed))
    _print_table(table)
    if not pending:
        click.echo("nothing to run")
    elif estimate is None:
        click.echo("estimated time: unknown until a run of this grid is recorded under --out")
    else:
        click.echo(f"estimated time: {estimate / 60:.1f} min on {workers} worker(s), from {len(every)} recorded run(s)")


@main.command()
@click.argument("grid_file", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", help="a shipped grid: smoke, ci, quick, paper")
@click.option("--out", type=click.Path(file_okay=False),
              help="records and the leaderboard <name>.md/.csv/.json (default runs/<name>/)")
@click.option("--leaderboard-dir", type=click.Path(file_okay=False),
              help="also write the leaderboard here (e.g. leaderboards/ to regenerate a committed one)")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--workers", type=int, default=0, help="parallel runs (0 = all cores on CPU, several per GPU)")
@click.option("--retry-failed", is_flag=True, help="rerun runs recorded as failed")
@click.option("--fold", help="train runs differing only in seed and lr as one model, N a model: an int >= 1 or auto "
                             "(the grid's [train] fold, else 1; docs/batched.md)")
@click.option("--quiet", is_flag=True, help="no progress output")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary on stdout")
@click.option("--dry-run", is_flag=True, help="print the plan (runs to do, already recorded, estimated time); train nothing")
@click.option("--log-dir", type=click.Path(file_okay=False),
              help="TensorBoard logs, one subfolder per run (<key>): loss, lr, validation accuracy, diagnostics "
                   "(extra: pip install 'slabench[tb]')")
@click.option("--save-checkpoints", is_flag=True, help="save each run's best-validation weights as <out>/checkpoints/<key>.pt")
@click.option("--mixer", "mixers", multiple=True,
              help="replace the grid's models by this mixer (repeatable; e.g. path/to/file.py:Class) at its first "
                   "model's backbone")
def run(grid_file: str | None, preset: str | None, out: str | None, leaderboard_dir: str | None, backend: str,
        device: str, workers: int, retry_failed: bool, fold: str | None, quiet: bool, as_json: bool, dry_run: bool,
        log_dir: str | None, save_checkpoints: bool, mixers: tuple[str, ...]) -> None:
    """Run a grid (GRID_FILE or --preset), resuming from existing records, and rank the results."""
    from slabench.config import check_fold, expand_grid, grid_fold, load_grid_file, load_preset
    from slabench.runners.grid import resolve_device
    from slabench.runners.leaderboard import aggregate, write_leaderboard

    device = resolve_device(device)  # fail on a bad --device before anything is printed or run
    if (grid_file is None) == (preset is None):
        raise SlabenchError("give exactly one of GRID_FILE or --preset NAME")
    if workers < 0:
        raise SlabenchError(f"--workers={workers} must be >= 0")
    grid = load_preset(preset) if preset else load_grid_file(grid_file)
    if mixers:
        from slabench.runners.compare import with_models

        grid = with_models(grid, list(mixers))
    name, specs = expand_grid(grid)
    fold = grid_fold(grid) if fold is None else check_fold(int(fold) if fold.isdigit() else fold, "--fold")
    out_dir = Path(out or Path("runs") / name)
    if dry_run:
        _print_plan(name, specs, out_dir, device, workers, retry_failed, as_json)
        return
    from slabench.runners.train import RunOutputs, check_tensorboard

    if log_dir is not None:
        check_tensorboard()  # fail here, not in every run
    outputs = RunOutputs(log_dir, str(out_dir / "checkpoints") if save_checkpoints else None)
    records, ran, skipped = _run_pending(name, specs, out_dir, device, workers, quiet or as_json, backend,
                                         retry_failed, outputs, fold)
    board = aggregate(records)
    paths = write_leaderboard(board, out_dir, name)
    if leaderboard_dir is not None:
        paths = write_leaderboard(board, Path(leaderboard_dir), name)
    failed = [f for f in board["failures"] if f["status"] == "failed"]
    if as_json:
        click.echo(json.dumps({"name": name, "out": str(out_dir), "runs": len(specs), "skipped": skipped,
                               "ran": ran, "failed": failed, "leaderboard": {k: str(v) for k, v in paths.items()},
                               "overall": board["overall"]}, indent=1, default=str))
    elif not quiet:
        _print_table(*_board_table(board, every_column=not out_console.is_terminal))
        click.echo(f"leaderboard: {paths['md']}")
    if failed:
        console.print(f"[red]{len(failed)} run(s) failed[/]: " + "; ".join(f"{f['model']} seed {f['seed']}: {f['error']}"
                                                                      for f in failed[:5]))
        sys.exit(1)


@main.command()
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--name", help="leaderboard file name (default: the grid name in the records)")
@click.option("--out-dir", type=click.Path(file_okay=False), help="where to write (default RESULTS_DIR)")
@click.option("--solve-at", type=float, help="test accuracy at which a run counts as solved (default: the records')")
@click.option("--min-seeds", type=int, help="fewest seeds for a cell to be ranked (default: the records')")
def leaderboard(results_dir: str, name: str | None, out_dir: str | None, solve_at: float | None,
                min_seeds: int | None) -> None:
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
    board = aggregate(records, solve_at=solve_at, min_seeds=min_seeds)
    paths = write_leaderboard(board, Path(out_dir or results_dir), name)
    _print_table(*_board_table(board, every_column=not out_console.is_terminal))
    click.echo(f"leaderboard: {paths['md']}")


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
    _print_table(table)


def _ints(flag: str, value: str | None, n: int | None = None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise SlabenchError(f"{flag}={value!r} must be comma-separated integers") from None
    if not out or (n is not None and len(out) != n):
        raise SlabenchError(f"{flag}={value!r} must be {n or 'one or more'} comma-separated integers")
    return out


@main.command()
@click.option("--mixers", help="comma list (default: every registered mixer)")
@click.option("--seq-lens", help="comma list (default: 256,1024,4096,16384,65536 on GPU; 64,128,256 on CPU)")
@click.option("--tokens", type=int, help="tokens per call of the length sweep, B = max(1, tokens // T) "
              "(default 65536 on GPU, 2048 on CPU)")
@click.option("--batch", type=int, help="fixed batch for every length (overrides --tokens)")
@click.option("--d-model", type=int, help="model width of the length sweep (default 128)")
@click.option("--heads", type=int, help="heads of the length sweep (default 8)")
@click.option("--shape", "shapes", multiple=True, metavar="B,T,H,D", help="extra exact shape, d_model = H*D (repeatable)")
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), help="default bf16 on GPU (autocast), fp32 on CPU")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--mode", type=click.Choice(["fwd", "fwdbwd", "both"]), default="both", show_default=True)
@click.option("--cuda-graph/--no-cuda-graph", default=True, show_default=True,
              help="on CUDA, also time fwd+bwd replayed from a CUDA graph (no launch overhead)")
@click.option("--train-step", is_flag=True, help="also time training steps of the standard MQAR model, eager and CUDA graph")
@click.option("--repeats", type=int, help="timed calls per case (default: as many as fit in ~0.3 s, 10 to 100)")
@click.option("--out", type=click.Path(file_okay=False), default="leaderboards/speed", show_default=True)
@click.option("--quick", is_flag=True, help="two lengths, 5 repeats: a smoke test of the sweep")
@click.option("--targets", "targets_file", type=click.Path(dir_okay=False),
              help="TOML of [[target]] tables to check (default: slabench/runners/sweep/targets.toml)")
def sweep(mixers: str | None, seq_lens: str | None, tokens: int | None, batch: int | None, d_model: int | None,
          heads: int | None, shapes: tuple[str, ...], dtype: str | None, device: str, mode: str, cuda_graph: bool,
          train_step: bool, repeats: int | None, out: str, quick: bool, targets_file: str | None) -> None:
    """Time and measure the memory of every mixer alone over sequence lengths (and the training step);
    write <out>/<device>.md, .csv, .json and plots."""
    import torch

    from slabench.runners.sweep import default_config, load_targets, run_sweep, write_outputs

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise SlabenchError(f"--device={device} needs CUDA, which is not available here; use --device cpu")
    modes = ("fwd", "fwdbwd") if mode == "both" else (mode,)
    cfg = default_config(
        device, quick,
        mixers=tuple(m.strip() for m in mixers.split(",") if m.strip()) if mixers else None,
        seq_lens=_ints("--seq-lens", seq_lens), tokens=tokens, batch=batch, d_model=d_model, heads=heads,
        shapes=tuple(_ints("--shape", s, 4) for s in shapes) or None, dtype=dtype,
        modes=modes + (("fwdbwd-graph",) if "fwdbwd" in modes and cuda_graph and torch.device(device).type == "cuda"
                       else ()),
        train_step=train_step or None, repeats=repeats,
    )
    targets = load_targets(targets_file) if targets_file else None
    written: dict[str, Path] = {}
    with console.status("sweep") as status:
        # Files are rewritten after every shape: a sweep cut short keeps what it measured.
        result = run_sweep(cfg, on_case=lambda desc: status.update(f"sweep: {desc}"),
                           on_partial=lambda partial: written.update(write_outputs(partial, Path(out))),
                           targets=targets)
    paths = written
    table = Table(title="targets")
    for col in ("target", "measured", "pass"):
        table.add_column(col)
    for t in result["summary"]["targets"]:
        table.add_row(t["target"], "-" if t["value"] is None else f"{t['value']:.3g}",
                      "-" if t["pass"] is None else ("yes" if t["pass"] else "[red]no[/]"))
    _print_table(table)
    bad = [r for r in result["rows"] + result["train_steps"] if r["status"] != "ok"]
    for r in bad:
        console.print(f"[yellow]{r['mixer']} {r['mode']} B{r['batch']} T{r['seq_len']}: {r['status']} {r['error'] or ''}[/]")
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@main.command()
@click.argument("mixer")
@click.option("--shape", default="64,256,8,16", show_default=True, metavar="B,T,H,D", help="x is [B, T, H*D]")
@click.option("--dtype", type=click.Choice(["bf16", "fp32"]), help="default bf16 on GPU (autocast), fp32 on CPU")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--mode", type=click.Choice(["fwd", "fwdbwd"]), default="fwdbwd", show_default=True)
@click.option("--top", type=int, default=25, show_default=True, help="kernels to list")
@click.option("--by-op", is_flag=True, help="on CUDA, group device time by the aten op (and shapes) that launched it")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def profile(mixer: str, shape: str, dtype: str | None, device: str, mode: str, top: int, by_op: bool,
            as_json: bool) -> None:
    """Where one mixer layer's time goes: its kernels per call, by device time (torch.profiler)."""
    from slabench.models import MIXERS
    from slabench.runners.grid import resolve_device
    from slabench.runners.profile import profile_mixer
    from slabench.runners.sweep import Shape

    MIXERS.get(mixer)  # an unknown name lists the known ones
    device = resolve_device(device)
    gpu = device.startswith("cuda")
    result = profile_mixer(mixer, Shape(*_ints("--shape", shape, 4)), device, dtype or ("bf16" if gpu else "fp32"),
                           backward=mode == "fwdbwd", by_op=by_op)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    table = Table(title=f"{mixer} {result['mode']} {result['shape']} {result['dtype']} on {device}: "
                        f"{result['kernels_per_call']:.0f} {'kernels' if gpu else 'ops'}, "
                        f"{result['device_us_per_call']:.0f} us {'device' if gpu else 'CPU'} time per call")
    for col in ("kernel" if gpu else "op", "per call", "us per call", "share"):
        table.add_column(col, justify="left" if col in ("kernel", "op") else "right")
    for k in result["kernels"][:top]:
        table.add_row(k["name"][:140], f"{k['per_call']:g}", f"{k['us_per_call']:.1f}",
                      f"{k['us_per_call'] / max(result['device_us_per_call'], 1e-9):.0%}")
    _print_table(table)


@main.command()
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), default="leaderboards/ci/baseline.json",
              show_default=True, help="baseline to compare with (or to write, with --update)")
@click.option("--out", default="runs/ci", show_default=True, type=click.Path(file_okay=False),
              help="run records (existing ones are reused, like `run`)")
@click.option("--update", is_flag=True, help="rewrite the baseline from this run (on purpose: commit it)")
@click.option("--device", default="cpu", show_default=True, help="the baseline was made on cpu")
@click.option("--workers", type=int, default=2, show_default=True, help="parallel runs")
@click.option("--quiet", is_flag=True, help="only the table")
def ci(baseline_path: str, out: str, update: bool, device: str, workers: int, quiet: bool) -> None:
    """Accuracy regression check: run the `ci` preset, compare with the baseline, exit 1 on a drop.

    A cell fails when fewer seeds reach solve_at than in the baseline, or when a one-sided exact
    test paired by seed says its accuracy fell (by more than 2 points on the mean).
    """
    import math

    from slabench.config import expand_grid, load_preset
    from slabench.runners import regression

    if workers < 1:
        raise SlabenchError(f"--workers={workers} must be >= 1")
    name, specs = expand_grid(load_preset("ci"))
    records, _, _ = _run_pending(name, specs, Path(out), device, workers, quiet)
    path = Path(baseline_path)
    if update:
        regression.write_baseline(path, regression.make_baseline(records, name))
        console.print(f"baseline written: {path}")
    rows = regression.check(records, regression.load_baseline(path))
    colours = {"ok": "green", "improved": "cyan", "new": "cyan", "regressed": "red", "missing": "red"}

    def pp(x: float, sign: str = "") -> str:
        return "-" if math.isnan(x) else f"{100 * x:{sign}.1f}"

    for task in dict.fromkeys(r["task"] for r in rows):  # one table per task; SLA twins under their bases
        table = Table(title=f"{task} vs {path}", caption=regression.RULE)
        for col in ("model", "baseline %", "now %", "delta pp", "solved now / base", "p (now < base)", "verdict"):
            table.add_column(col, justify="left" if col in ("model", "verdict") else "right")
        for r in (r for r in rows if r["task"] == task):
            verdict = r["verdict"] + (f" ({r['failed']} failed)" if r["failed"] else "")
            table.add_row(r["model"], pp(r["baseline"]), pp(r["now"]), pp(r["delta"], "+"),
                          f"{r['solved_now']} / {r['solved_base']}", "-" if math.isnan(r["p_below"]) else f"{r['p_below']:.3g}",
                          f"[{colours[r['verdict']]}]{verdict}[/]")
        _print_table(table)
    if regression.failed(rows):
        bad = [f"{r['model']} ({r['verdict']})" for r in rows if r["verdict"] in ("regressed", "missing")]
        console.print(f"[red]accuracy regression[/]: {'; '.join(bad)}")
        sys.exit(1)


def _variant_digest(variant: str) -> str:
    """Short hash of the variant's source file (or its name): a default --out per version of
    the plugin, so an edited plugin never reuses the records of the old one."""
    import hashlib

    where = variant.removeprefix("sla-").rpartition(":")[0]
    path = Path(where)
    blob = path.read_bytes() if where and path.is_file() else variant.encode()
    return hashlib.sha256(blob + variant.encode()).hexdigest()[:8]


@main.command()
@click.argument("grid_file", required=False, type=click.Path(dir_okay=False))
@click.option("--mixer", "variant", required=True,
              help="the variant: path/to/file.py:Class, pkg.mod:Class, a registered name, or sla-<any of those>")
@click.option("--against", required=True, help="comma-separated baseline mixers, e.g. gla,sla-gla,attention")
@click.option("--preset", help="a shipped grid whose tasks and train settings to use (default: quick)")
@click.option("--out", type=click.Path(file_okay=False),
              help="records and compare.md/.json/.png (default runs/compare/<class>-<hash of its file>)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--workers", type=int, default=0, help="parallel runs (0 = all cores on CPU, several per GPU)")
@click.option("--quiet", is_flag=True, help="only the tables")
def compare(grid_file: str | None, variant: str, against: str, preset: str | None, out: str | None, device: str,
            workers: int, quiet: bool) -> None:
    """Compare a mixer with baselines on a grid's tasks, budgets and seeds (GRID_FILE or --preset).

    Models are replaced by the variant and the baselines at the backbone of the grid's first model.
    """
    from slabench.config import expand_grid, load_grid_file, load_preset
    from slabench.runners.compare import (
        MODEL_COLUMNS,
        VERSUS_COLUMNS,
        compare_grid,
        model_cells,
        versus_cells,
        write_compare,
    )

    if grid_file is not None and preset is not None:
        raise SlabenchError("give at most one of GRID_FILE or --preset NAME")
    if workers < 0:
        raise SlabenchError(f"--workers={workers} must be >= 0")
    baselines = [a.strip() for a in against.split(",") if a.strip()]
    grid = load_grid_file(grid_file) if grid_file else load_preset(preset or "quick")
    name, specs = expand_grid(compare_grid(grid, variant, baselines))
    stem = variant.rsplit(":", 1)[-1] if ":" in variant else variant
    out_dir = Path(out or Path("runs") / "compare" / f"{stem}-{_variant_digest(variant)}")
    records, _, _ = _run_pending(name, specs, out_dir, device, workers, quiet)
    summary, paths = write_compare(records, variant, baselines, out_dir)
    for t in summary["tasks"]:
        table = Table(title=t["task"])
        for col in MODEL_COLUMNS:
            table.add_column(col, justify="left" if col == "mixer" else "right")
        for r in t["models"]:
            table.add_row(*model_cells(r))
        versus = Table()
        for col in VERSUS_COLUMNS:
            versus.add_column(col)
        for v in t["versus"]:
            colour = {"win": "green", "loss": "red"}.get(v["verdict"], "yellow")
            cells = versus_cells(v)
            versus.add_row(*cells[:-1], f"[{colour}]{cells[-1]}[/]")
        _print_table(table, versus)
    totals = "; ".join(f"vs {b}: {t['win']} win / {t['tie']} tie / {t['loss']} loss" for b, t in summary["totals"].items())
    click.echo(totals)
    click.echo(f"compare: {paths['md']}")
    failed = [f for f in summary["failures"] if f["status"] == "failed"]
    if failed:
        console.print(f"[red]{len(failed)} run(s) failed[/]: " + "; ".join(f"{f['model']} seed {f['seed']}: {f['error']}"
                                                                      for f in failed[:5]))
        sys.exit(1)


@main.group()
def report() -> None:
    """Mechanism reports: grids, verdicts and plots for a paper's claims."""


@report.command("sla")
@click.option("--out", default="runs/sla-report", show_default=True, type=click.Path(file_okay=False),
              help="run records, one subdirectory per section (existing ones are reused)")
@click.option("--report", "report_path", default="leaderboards/sla-report.md", show_default=True,
              type=click.Path(dir_okay=False), help="the Markdown (PNG plots are written next to it)")
@click.option("--from-records", is_flag=True, help="no training: rebuild the report from the records under --out")
@click.option("--scale", type=click.Choice(["tiny", "full"]), default="full", show_default=True,
              help="full: the GPU grids (3 seeds, ~25 min on one H100); tiny: CPU test sizes")
@click.option("--speed-dir", default="leaderboards/speed", show_default=True, type=click.Path(file_okay=False),
              help="where `slabench sweep` wrote its JSON (claim 4)")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N")
@click.option("--workers", type=int, default=0, help="parallel runs (0 = all cores on CPU, several per GPU)")
@click.option("--retry-failed", is_flag=True, help="rerun runs recorded as failed")
@click.option("--quiet", is_flag=True, help="only the verdicts")
def report_sla(out: str, report_path: str, from_records: bool, scale: str, speed_dir: str, device: str, workers: int,
               retry_failed: bool, quiet: bool) -> None:
    """The SLA paper's claims (noise robustness, heads, gate sharpening, cost), each with a verdict.

    Runs the report-<section>-<scale> grids (resuming), then writes the Markdown from the records.
    """
    from slabench.runners.leaderboard import aggregate, write_leaderboard
    from slabench.runners.records import load_records
    from slabench.runners.report import GRID_SECTIONS, section_specs, write_report

    if workers < 0:
        raise SlabenchError(f"--workers={workers} must be >= 0")
    records = {}
    for section in GRID_SECTIONS:
        name, specs = section_specs(section, scale)
        section_dir = Path(out) / section
        if from_records:
            keys = {s.key() for s in specs}
            records[section] = [r for k, r in load_records(section_dir).records.items() if k in keys]
        else:
            records[section], _, _ = _run_pending(name, specs, section_dir, device, workers, quiet,
                                                  retry_failed=retry_failed)
            write_leaderboard(aggregate(records[section]), section_dir, name)
    verdicts = write_report(records, scale, Path(report_path), Path(speed_dir))
    table = Table(title="SLA claims")
    for col in ("section", "verdict"):
        table.add_column(col)
    for section, verdict in verdicts.items():
        table.add_row(section, verdict)
    _print_table(table)
    click.echo(f"report: {report_path}")

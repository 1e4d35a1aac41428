"""Everything the CLI shows with rich: tables on stdout, the grid's progress and run lines on stderr."""

from __future__ import annotations

import math
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from slabench.runners.execute import Estimate, Event, GridPlanned, RunFailed, RunFinished, RunProgress

console = Console(stderr=True)
out_console = Console()


def print_tables(*tables: Table) -> None:
    """Print tables on stdout; into a pipe or a CI log (no terminal, so no width to fit) at
    their natural width, so no cell is cut to "…"."""
    for table in tables:
        if out_console.is_terminal:
            out_console.print(table)
            continue
        natural = Measurement.get(out_console, out_console.options.update_width(10**6), table).maximum
        Console(width=max(out_console.width, natural)).print(table)


def params_table(title: str, rows: list[tuple[str, list]]) -> Table:
    table = Table(title=title, show_lines=True)
    for col in ("name", "parameters (default)"):
        table.add_column(col)
    for name, params in rows:
        # Help and types are plain text ("blocks of [mixer, MLP]"): escape them, or rich reads markup.
        table.add_row(
            name,
            "\n".join(
                escape(f"{p.name}: {p.describe_type()} = {p.default!r}")
                + (f"  [dim]{escape(p.help)}[/]" if p.help else "")
                for p in params
            ),
        )
    return table


def train_options_table(params: list) -> Table:
    table = Table(
        title=escape("[train] keys"),
        caption="A list value runs every element (a cartesian product); of several lr, each cell keeps "
        "the best on validation.",
    )
    for col in ("key", "type", "default", "meaning"):
        table.add_column(col)
    for p in params:
        table.add_row(p.name, escape(p.describe_type()), escape(repr(p.default)), escape(p.help))
    return table


NARROW_COLUMNS = ("rank", "model", "solved (95% CI)", "acc % (95% CI)", "seeds' acc %")


def board_tables(board: dict[str, Any], every_column: bool = False) -> list[Table]:
    from slabench.runners.leaderboard_files import TASK_COLUMNS, task_row_cells

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
            table.add_column(
                col,
                justify="left" if col == "model" else "right",
                no_wrap=col in ("model", "solved (95% CI)", "acc % (95% CI)"),
            )
        for r in rows:
            own = ", ".join(f"{k}={v}" for k, v in sorted(set(r["model_params"].items()) - shared))
            cells = task_row_cells({**r, "model": f"{r['mixer']}({own})" if own else r["mixer"]})
            table.add_row(*(cells[i] for i in keep))
        tables.append(table)
    return tables


def print_board(board: dict[str, Any]) -> None:
    """A leaderboard's tables; piped, with every column (nothing is cut there)."""
    print_tables(*board_tables(board, every_column=not out_console.is_terminal))


def print_warnings(warnings: list[str]) -> None:
    """A board's warnings (an lr at the sweep's edge, a model whose every run failed...), as its .md lists them."""
    for w in warnings:
        console.print(f"[yellow]warning: {escape(w)}[/]", soft_wrap=True)


def print_corrupt(corrupt: list, then: str) -> None:
    """One line per record file that could not be read: (path, reason) pairs, and what happens to it.
    Escaped, since a path or reason may hold [...] that rich would read as markup."""
    for path, reason in corrupt:
        console.print(f"[yellow]{escape(f'corrupt record {path}: {reason}; {then}')}[/]", soft_wrap=True)


# ---- a grid as it runs ----------------------------------------------------------------------------


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


class GridView:
    """Renders `runners.execute` events on stderr: the plan, a progress bar and one line per
    ended run; quiet keeps only the corrupt-record warnings. `close()` takes the bar down (call it
    however the grid ends)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            GridRemaining(),
            console=console,
            disable=quiet,
        )
        self.bar: Any = None

    def close(self) -> None:
        if self.bar is not None:  # started: stop it (a stopped bar prints a newline off a terminal)
            self.progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, GridPlanned):
            print_corrupt(event.corrupt, "its run will be redone")
            if not self.quiet:
                console.print(
                    f"[bold]{event.name}[/]: {event.runs} runs, {event.recorded} already recorded, "
                    f"{event.pending} to run -> {event.out}"
                )
                if event.packed_without_mps:
                    console.print(
                        "[dim]note: packed GPU runs time-slice the GPU without NVIDIA MPS (1.1x measured); "
                        "`nvidia-cuda-mps-control -d` starts it (leaderboards/speed/packing.md)[/]"
                    )
            self.bar = self.progress.add_task(event.name, total=event.pending)
            self.progress.start()
        elif isinstance(event, RunProgress):
            self.progress.update(self.bar, completed=event.done)
        elif isinstance(event, (RunFinished, RunFailed)):
            self.progress.update(self.bar, completed=event.done)
            if self.quiet:
                return
            record, spec = event.record, event.spec
            status = record["status"]
            detail = (
                f"acc {100 * record['metrics']['test_acc']:.1f}%  {record['timings']['train_seconds']:.1f}s"
                if status == "ok"
                else (record.get("error") or "")[:160]
            )
            colour = {"ok": "green", "diverged": "yellow"}.get(status, "red")
            console.print(
                f"[{colour}]{status:8s}[/] {spec.model.label()} | {spec.task.label()} | "
                f"lr {spec.train.lr:g} seed {spec.seed}  {detail}"
            )


def print_estimate(plan: Estimate) -> None:
    """`run --dry-run`: the runs to do and the time they should take."""
    table = Table(
        title=f"{plan.name}: {plan.runs} runs, {plan.recorded} already recorded, {len(plan.pending)} to run "
        f"-> {plan.out}"
    )
    for col in ("model", "task", "lr", "seed"):
        table.add_column(col)
    for s in plan.pending:
        table.add_row(escape(s.model.label()), escape(s.task.label()), f"{s.train.lr:g}", str(s.seed))
    print_tables(table)
    if not plan.pending:
        click.echo("nothing to run")
    elif plan.seconds is None:
        other = f" ({plan.elsewhere} recorded on other machines)" if plan.elsewhere else ""
        click.echo(f"estimated time: unknown until a run of this grid is recorded under --out on {plan.machine}{other}")
    else:
        click.echo(
            f"estimated time: {plan.seconds / 60:.1f} min on {plan.workers} worker(s), "
            f"from {plan.from_runs} run(s) recorded on {plan.machine}"
        )


def print_failures(failures: list[dict[str, Any]]) -> None:
    """The first five failed runs; the leaderboard's failures table has them all."""
    more = f"; and {len(failures) - 5} more (the leaderboard lists every one)" if len(failures) > 5 else ""
    console.print(
        f"[red]{len(failures)} run(s) failed[/]: "
        + escape("; ".join(f"{f['model']} seed {f['seed']}: {f['error']}" for f in failures[:5]) + more)
    )


# ---- tables of single commands --------------------------------------------------------------------


def regression_tables(rows: list[dict[str, Any]], baseline: str, rule: str) -> list[Table]:
    """`ci`: one table per task; SLA twins under their bases."""
    colours = {"ok": "green", "improved": "cyan", "new": "cyan", "regressed": "red", "missing": "red"}

    def pp(x: float, sign: str = "") -> str:
        return "-" if math.isnan(x) else f"{100 * x:{sign}.1f}"

    tables = []
    for task in dict.fromkeys(r["task"] for r in rows):
        table = Table(title=f"{task} vs {baseline}", caption=rule)
        for col in ("model", "baseline %", "now %", "delta pp", "solved now / base", "p (now < base)", "verdict"):
            table.add_column(col, justify="left" if col in ("model", "verdict") else "right")
        for r in (r for r in rows if r["task"] == task):
            verdict = r["verdict"] + (f" ({r['failed']} failed)" if r["failed"] else "")
            table.add_row(
                r["model"],
                pp(r["baseline"]),
                pp(r["now"]),
                pp(r["delta"], "+"),
                f"{r['solved_now']} / {r['solved_base']}",
                "-" if math.isnan(r["p_below"]) else f"{r['p_below']:.3g}",
                f"[{colours[r['verdict']]}]{verdict}[/]",
            )
        tables.append(table)
    return tables


def compare_tables(task: dict[str, Any]) -> tuple[Table, Table]:
    """`compare`: one task's models, then the variant against each baseline."""
    from slabench.runners.compare import MODEL_COLUMNS, VERSUS_COLUMNS, model_cells, versus_cells

    table = Table(title=task["task"])
    for col in MODEL_COLUMNS:
        table.add_column(col, justify="left" if col == "mixer" else "right")
    for r in task["models"]:
        table.add_row(*model_cells(r))
    versus = Table()
    for col in VERSUS_COLUMNS:
        versus.add_column(col)
    for v in task["versus"]:
        colour = {"win": "green", "loss": "red"}.get(v["verdict"], "yellow")
        cells = versus_cells(v)
        versus.add_row(*cells[:-1], f"[{colour}]{cells[-1]}[/]")
    return table, versus


def rows_table(
    title: str | None,
    columns: tuple[str, ...],
    rows: list[tuple[str, ...]],
    show_lines: bool = False,
    right: tuple[str, ...] = (),
) -> Table:
    """A plain table: these columns, these rows (cells may hold rich markup)."""
    table = Table(title=title, show_lines=show_lines)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        table.add_row(*row)
    return table

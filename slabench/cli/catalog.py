"""What slabench knows, printed from the code: `tasks`, `models`, `train-options` and `show`."""

from __future__ import annotations

import json
from typing import Literal

import click

from slabench.cli import render
from slabench.cli.options import json_option
from slabench.errors import SlabenchError


def _params_json(rows: list[tuple[str, list]]) -> str:
    return json.dumps(
        {
            name: {p.name: {"type": p.describe_type(), "default": p.default, "help": p.help} for p in params}
            for name, params in rows
        },
        indent=1,
        default=str,
    )


@click.command()
@json_option()
def tasks(as_json: bool) -> None:
    """List registered tasks with their parameters and defaults."""
    from slabench.tasks import TASKS, task_params

    rows = [(n, task_params(n)) for n in TASKS.names()]
    click.echo(_params_json(rows)) if as_json else render.print_tables(render.params_table("tasks", rows))


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@json_option()
def models(names: tuple[str, ...], as_json: bool) -> None:
    """List registered mixers with their parameters (backbone first) and defaults; or only NAMEs,
    which may be plugins (path/to/file.py:Class, sla-<that>), loaded and checked as `run` would."""
    from slabench.models import MIXERS, model_params

    rows = [(n, model_params(n)) for n in names or MIXERS.names()]
    click.echo(_params_json(rows)) if as_json else render.print_tables(render.params_table("models", rows))


@click.command("train-options")
@json_option()
def train_options(as_json: bool) -> None:
    """List every key of a grid's [train] table with its type, default and meaning."""
    from slabench.config import TrainSpec
    from slabench.params import Param, dataclass_params

    # seeds and fold are [train] keys but no TrainSpec fields: a run has one seed, and fold changes
    # how runs execute, not what they are (it is in no run key).
    params = [
        *dataclass_params(TrainSpec),
        Param("seeds", list[int], [0], "one run per seed (a list)"),
        Param(
            "fold",
            int | Literal["auto"],
            1,
            "train runs differing only in seed and lr as one model, up to this many a model: an int >= 1 "
            "or 'auto' (not a list; `run --fold` overrides it; docs/batched.md)",
        ),
    ]
    if as_json:
        click.echo(_params_json([("train", params)]))
        return
    render.print_tables(render.train_options_table(params))


@click.command()
@click.argument("task_name", metavar="TASK")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="task parameter (repeatable)")
@click.option("-n", "num", type=int, default=3, show_default=True, help="examples to show")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)  # as a grid's seeds
def show(task_name: str, assignments: tuple[str, ...], num: int, seed: int) -> None:
    """Print decoded examples of TASK, scored positions highlighted with their targets."""
    from slabench.params import parse_assignments
    from slabench.tasks import build_task
    from slabench.tasks.show import render_examples

    if not 1 <= num <= 1000:  # examples to read on a terminal; a million took minutes, 1e9 ran out of memory
        raise SlabenchError(f"-n={num} must be in [1, 1000]")
    task = build_task(task_name, **parse_assignments(assignments))
    render.out_console.print(render_examples(task, n=num, seed=seed))

"""The `slabench` command line: click commands that map flags to configs, call runners and render
the results with rich. One module per command group; shared options in `options`, every table and
the grid's progress in `render`."""

from __future__ import annotations

import sys
from typing import Any

import click

from slabench.cli import catalog, compare, grid, kernels, report
from slabench.errors import SlabenchError


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


for command in (
    catalog.tasks,
    catalog.models,
    catalog.train_options,
    catalog.show,
    grid.run,
    grid.leaderboard,
    grid.pack,
    grid.ci,
    compare.compare,
    kernels.doctor,
    kernels.sweep,
    kernels.profile,
    report.report,
):
    main.add_command(command)

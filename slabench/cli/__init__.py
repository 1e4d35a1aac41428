"""The `slabench` command line: click commands that map flags to configs, call runners and render
the results with rich. One module per command group; shared options in `options`, every table and
the grid's progress in `render`."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from slabench.cli import catalog, compare, grid, kernels, report
from slabench.errors import SlabenchError

# click >= 8.2 shows a group's help when it is given no arguments by raising a usage error: that
# one keeps click's own output.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _usage_error(e: click.UsageError) -> NoReturn:
    """click's usage error (a bad option value, an unknown option or command) as one line that
    names the field and points at the command's help, instead of click's usage block; a group's
    help for no arguments goes on to click as it is."""
    if isinstance(e, _NO_ARGS_IS_HELP):
        raise e
    _fail(e.format_message() + (f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""))


class Group(click.Group):
    """Prints a SlabenchError, or a usage error click raises while parsing, as one line (no
    traceback, no usage block) and exits with status 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as e:  # the group's own options
            _usage_error(e)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SlabenchError as e:
            _fail(str(e))
        except click.UsageError as e:  # a command's options and arguments, or an unknown command
            _usage_error(e)
        except OSError as e:  # a path the options' checks could not foresee (e.g. /proc/x, a full disk)
            _fail(f"cannot write or read '{e.filename}': {e.strerror}" if e.filename else str(e))


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

"""Options several commands share, declared once with their checks. A failed check raises
SlabenchError, which the `slabench` group prints as one line (exit 2)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from slabench.errors import SlabenchError

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
MAX_WORKERS = 1024  # processes; far more than any machine runs at once (a huge count overflowed a C int)


def json_option(help: str = "machine-readable output") -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help)


def device_option(default: str = "auto", help: str = "auto, cpu, cuda or cuda:N") -> Decorator:
    return click.option("--device", default=default, show_default=True, help=help)


def workers_option(
    default: int = 0, minimum: int = 0, help: str = "parallel runs (0 = all cores on CPU, several per GPU)"
) -> Decorator:
    def check(ctx: click.Context, param: click.Parameter, value: int) -> int:
        if not minimum <= value <= MAX_WORKERS:
            raise SlabenchError(f"--workers={value} must be in [{minimum}, {MAX_WORKERS}]")
        return value

    return click.option("--workers", type=int, default=default, show_default=bool(default), help=help, callback=check)


class Writable(click.Path):
    """A directory (or, with dir=False, a file) the command will write, checked before anything
    runs and without creating it: it must not be '', an existing one must be of its kind and
    writable (click's checks), and its nearest existing parent a writable directory. So
    `--out grid.toml/x` fails in one line at the start, not with a traceback after the runs."""

    def __init__(self, dir: bool = True) -> None:
        super().__init__(file_okay=not dir, dir_okay=dir, writable=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not str(value).strip():
            self.fail("must name a " + ("directory" if self.dir_okay else "file"), param, ctx)
        path = Path(super().convert(value, param, ctx))
        if not path.exists():
            above = next(p for p in path.absolute().parents if p.exists())
            if not above.is_dir():
                self.fail(f"'{above}' is a file, so '{value}' cannot be created under it", param, ctx)
            if not os.access(above, os.W_OK | os.X_OK):
                self.fail(f"'{above}' is not writable, so '{value}' cannot be created", param, ctx)
        return value


def check_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A file name stem (a leaderboard's --name): no folder in it, where --out-dir says where."""
    if value is not None and (not value.strip() or Path(value).name != value or value in (".", "..")):
        raise SlabenchError(f"--name={value!r} must be a file name without a folder (--out-dir says where)")
    return value


def out_option(help: str | None = None, default: str | None = None) -> Decorator:
    """--out, a directory; shown with its default where it has one."""
    return click.option("--out", type=Writable(), default=default, show_default=default is not None, help=help)


def report_file_option(committed: str, help: str) -> Decorator:
    """--report, the Markdown a report command writes (its plots go next to it). Its default is the
    committed report only at --scale full (`resolve_report`): a tiny run must not overwrite it."""
    default = f"{committed} at --scale full, else <out>/{Path(committed).name}"
    return click.option("--report", "report_path", type=Writable(dir=False), help=f"{help} [default: {default}]")


def resolve_report(given: str | None, committed: str, scale: str, out: str) -> Path:
    """Where a report goes: --report, else the committed file at --scale full, else under --out."""
    if given is not None:
        return Path(given)
    return Path(committed) if scale == "full" else Path(out) / Path(committed).name


def from_records_option() -> Decorator:
    return click.option(
        "--from-records", is_flag=True, help="no training: rebuild the report from the records under --out"
    )


def scale_option(full: str) -> Decorator:
    """--scale of a report: `full` says what the GPU grids are; tiny is always the CPU test size."""
    return click.option(
        "--scale",
        type=click.Choice(["tiny", "full"]),
        default="full",
        show_default=True,
        help=f"full: {full}; tiny: CPU test sizes",
    )


def fold_option(default: str) -> Decorator:
    """--fold, checked where it is used: `config.check_fold` names the allowed values."""
    return click.option(
        "--fold",
        help="train runs differing only in seed and lr as one model, N a model: an int >= 1 or auto "
        f"({default}; docs/batched.md)",
    )


def parse_fold(value: str | None, default: int | str) -> int | str:
    """--fold's value as `check_fold` takes it, or `default` when not given."""
    from slabench.config import check_fold

    digits = value is not None and value.isascii() and value.isdigit()  # '²' is a digit to isdigit, not to int
    return default if value is None else check_fold(int(value) if digits else value, "--fold")


def parse_names(flag: str, value: str, what: str, example: str) -> tuple[str, ...]:
    """A comma list of names, stripped; one naming none is refused (`sweep --mixers ,` would sweep
    nothing and still write its empty tables over the last sweep's)."""
    names = tuple(x.strip() for x in value.split(",") if x.strip())
    if not names:
        raise SlabenchError(f"{flag}={value!r} names no {what}: give a comma list, e.g. {flag} {example}")
    return names


def grid_file_argument() -> Decorator:
    return click.argument("grid_file", required=False, type=click.Path(dir_okay=False))


def quiet_option(help: str) -> Decorator:
    return click.option("--quiet", is_flag=True, help=help)


def retry_failed_option() -> Decorator:
    return click.option("--retry-failed", is_flag=True, help="rerun runs recorded as failed")


def parse_ints(
    flag: str, value: str | None, n: int | None = None, minimum: int | None = None
) -> tuple[int, ...] | None:
    """A comma-separated list of integers (exactly n where given, each >= minimum where given), or
    None when not given."""
    if value is None:
        return None
    allowed = f"{n or 'one or more'} comma-separated integers" + (f" >= {minimum}" if minimum is not None else "")
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise SlabenchError(f"{flag}={value!r} must be {allowed}") from None
    if not out or (n is not None and len(out) != n) or (minimum is not None and min(out) < minimum):
        raise SlabenchError(f"{flag}={value!r} must be {allowed}")
    return out


def positive_int_option(name: str, help: str, **kwargs: Any) -> Decorator:
    """An int option that must be >= 1 (a size or a count): click rejects 0 and negatives in one
    line naming the option, before anything runs or writes."""
    return click.option(name, type=click.IntRange(min=1), help=help, **kwargs)

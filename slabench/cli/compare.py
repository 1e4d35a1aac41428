"""`compare`: a mixer against baselines on a grid's tasks, budgets and seeds."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import click

from slabench.cli import render
from slabench.cli.grid import run_pending
from slabench.cli.options import (
    device_option,
    grid_file_argument,
    out_option,
    parse_names,
    quiet_option,
    workers_option,
)
from slabench.errors import SlabenchError
from slabench.runners.execute import Job


def _variant_digest(variant: str) -> str:
    """Short hash of the variant's source file (or its name): a default --out per version of
    the plugin, so an edited plugin never reuses the records of the old one."""
    where = variant.removeprefix("sla-").rpartition(":")[0]
    path = Path(where)
    blob = path.read_bytes() if where and path.is_file() else variant.encode()
    return hashlib.sha256(blob + variant.encode()).hexdigest()[:8]


@click.command()
@grid_file_argument()
@click.option(
    "--mixer",
    "variant",
    required=True,
    help="the variant: path/to/file.py:Class, pkg.mod:Class, a registered name, or sla-<any of those>",
)
@click.option(
    "--against",
    required=True,
    help="comma-separated baseline mixers or arms, e.g. gla,sla-gla,attention or sla-gla/head-norm (the twin at "
    "gla's norm)",
)
@click.option(
    "--preset",
    help="a shipped grid whose tasks and train settings to use (default: quick on a GPU, about 20 min of one, and "
    "smoke on CPU, about 80 min of 2 cores, for a variant and 3 baselines)",
)
@out_option("records and compare.md/.json/.png (default runs/compare/<class>-<hash of its file>)")
@device_option()
@workers_option()
@quiet_option("only the tables")
def compare(
    grid_file: str | None,
    variant: str,
    against: str,
    preset: str | None,
    out: str | None,
    device: str,
    workers: int,
    quiet: bool,
) -> None:
    """Compare a mixer with baselines on a grid's tasks, budgets and seeds (GRID_FILE or --preset).

    Models are replaced by the variant and the baselines at the backbone of the grid's first model.
    """
    from slabench.config import expand_grid, load_grid_file, load_preset
    from slabench.runners.compare import compare_grid, write_compare
    from slabench.runners.grid import resolve_device

    if grid_file is not None and preset is not None:
        raise SlabenchError("give at most one of GRID_FILE or --preset NAME")
    baselines = list(parse_names("--against", against, "baseline mixer", "gla,attention"))
    if grid_file is None and preset is None:  # the grid sized for the device: quick's take a day of 2 CPU cores
        preset = "quick" if resolve_device(device).startswith("cuda") else "smoke"
    grid = load_grid_file(grid_file) if grid_file else load_preset(preset)
    name, specs = expand_grid(compare_grid(grid, variant, baselines))
    stem = variant.rsplit(":", 1)[-1] if ":" in variant else variant
    out_dir = Path(out or Path("runs") / "compare" / f"{stem}-{_variant_digest(variant)}")
    records = run_pending(name, [Job(name, specs, out_dir)], device, workers, quiet)[0].records
    summary, paths = write_compare(records, variant, baselines, out_dir)
    for t in summary["tasks"]:
        render.print_tables(*render.compare_tables(t))
    totals = "; ".join(
        f"vs {b}: {t['win']} win / {t['tie']} tie / {t['loss']} loss" for b, t in summary["totals"].items()
    )
    click.echo(totals)
    render.print_warnings(summary["warnings"])  # e.g. a model whose every run failed, so it has no row above
    click.echo(f"compare: {paths['md']}")
    failed = [f for f in summary["failures"] if f["status"] == "failed"]
    if failed:
        render.print_failures(failed)
        sys.exit(1)

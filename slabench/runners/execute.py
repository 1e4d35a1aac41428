"""Run a grid as one job: plan it against its records, run what is missing, and report what
happens as events (plain dataclasses: the CLI renders them; any other caller may ignore them).

`execute` is the whole of `slabench run`'s work before the leaderboard: it writes
<out>/grid.json, skips recorded runs (resume), runs the rest through `runners.grid.run_grid`
(local pool or Ray) and returns the records of the grid; given several grids (`Job`s, a report's)
it runs them through one pool. `estimate` is `run --dry-run`: the same plan, with the time the
pending runs should take.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import TYPE_CHECKING, Any, Literal

from slabench.config import RunSpec
from slabench.runners.records import load_records, write_grid

if TYPE_CHECKING:
    from slabench.runners.train import RunOutputs

# runners.grid and runners.train (torch) are imported when a grid is planned, not with the
# events: the CLI imports this module at startup.


@dataclass(frozen=True)
class GridPlanned:
    """The grid is planned and grid.json written; nothing has run yet."""

    name: str
    out: Path
    runs: int
    recorded: int
    pending: int
    corrupt: list[tuple[Path, str]]  # record files that could not be read: their runs are redone
    packed_without_mps: bool  # several runs share a GPU with no NVIDIA MPS daemon: they time-slice it


@dataclass(frozen=True)
class RunStarted:
    spec: RunSpec


@dataclass(frozen=True)
class RunProgress:
    """A training step of an in-process run (one worker); the pool reports only whole runs."""

    spec: RunSpec
    step: int
    total: int
    done: float  # runs of the grid finished, plus this run's fraction


@dataclass(frozen=True)
class RunFinished:
    """A run ended with a result: `ok`, or `diverged` (a result too, not an error)."""

    spec: RunSpec
    record: dict[str, Any]
    done: int  # runs of the grid finished, this one included


@dataclass(frozen=True)
class RunFailed:
    """A run raised; its record holds the error and the traceback, and the grid goes on."""

    spec: RunSpec
    record: dict[str, Any]
    done: int


Event = GridPlanned | RunStarted | RunProgress | RunFinished | RunFailed


@dataclass(frozen=True)
class GridResult:
    records: list[dict[str, Any]]  # of every run of the grid, recorded earlier or now
    ran: int
    skipped: int


@dataclass(frozen=True)
class Job:
    """One grid to run: its name, its runs and the directory of its records; `grid`, when the runs
    are one stage of a larger grid (a report's protocol), is the whole of it, for grid.json."""

    name: str
    specs: list[RunSpec]
    out: Path
    grid: list[RunSpec] | None = None

    def records(self) -> list[dict[str, Any]]:
        """The records under `out` of this job's runs (a directory may hold other grids' too)."""
        keys = {s.key() for s in self.specs}
        return [r for k, r in load_records(self.out).records.items() if k in keys]


def execute(
    name: str,
    jobs: list[Job],
    device: str = "auto",
    workers: int = 0,
    backend: Literal["local", "ray"] = "local",
    retry_failed: bool = False,
    outputs: RunOutputs | None = None,
    fold: int | str = 1,
    on_event: Callable[[Event], None] = lambda event: None,
    address: str | None = None,
) -> list[GridResult]:
    """Run the specs of `jobs` (one grid each) not yet recorded under their `out`, one record
    each, calling `on_event` as runs start, step and end; `name` heads the one plan event. Several
    grids (a report's) share one pool, so the workers start once and a grid's last long runs
    overlap the next grid's instead of leaving workers idle; each keeps its own directory and
    grid.json. `address`: the Ray cluster to join (backend ray; None: a local instance). Returns
    each job's result, in order. A KeyboardInterrupt passes through: finished runs stay recorded."""
    from slabench.runners.grid import check_address, plan, resolve_device, run_grid
    from slabench.runners.train import NO_OUTPUTS

    device = resolve_device(device)  # a bad --device or --address fails before grid.json is written
    check_address(address)
    outs = {s.grid: job.out for job in jobs for s in job.specs}  # records go by the run's grid name
    if len(outs) != len({(s.grid, job.out) for job in jobs for s in job.specs}):
        raise ValueError("execute: one grid name with two record directories")
    plans = [plan(job.specs, job.out, retry_failed) for job in jobs]
    for job in jobs:
        write_grid(job.out, job.name, job.specs if job.grid is None else job.grid)
    pending = [s for p, _, _ in plans for s in p]
    root = Path(os.path.commonpath([job.out for job in jobs]))
    recorded = sum(len(r) for _, r, _ in plans)
    corrupt = [c for _, _, cs in plans for c in cs]
    runs = sum(len(job.specs) for job in jobs)
    mps_note = _packed_without_mps(backend, device, workers, len(pending))
    on_event(GridPlanned(name, root, runs, recorded, len(pending), corrupt, mps_note))
    finished = 0

    def relay(kind: str, spec: RunSpec, record: dict[str, Any] | None) -> None:
        nonlocal finished
        if kind == "start":
            on_event(RunStarted(spec))
        elif kind == "step":
            on_event(RunProgress(spec, record["step"], record["total"], finished + record["step"] / record["total"]))
        else:
            finished += 1
            on_event((RunFailed if record["status"] == "failed" else RunFinished)(spec, record, finished))

    run_grid(
        pending,
        outs,
        backend=backend,
        device=device,
        workers=workers,
        on_event=relay,
        outputs=outputs or NO_OUTPUTS,
        fold=fold,
        address=address,
    )
    return [GridResult(job.records(), len(p), len(r)) for job, (p, r, _) in zip(jobs, plans)]


def _packed_without_mps(backend: str, device: str, workers: int, pending: int) -> bool:
    if backend != "local" or not device.startswith("cuda") or workers == 1 or pending < 2:
        return False
    from slabench.runners.environment import mps_active

    return not mps_active()


@dataclass(frozen=True)
class Estimate:
    """What `execute` would do: the runs to do, and their time estimated from the runs recorded on
    this machine (device model) of the same model and task (else of any); `seconds` is None until
    one is recorded here."""

    name: str
    out: Path
    runs: int
    recorded: int
    pending: list[RunSpec]
    workers: int
    seconds: float | None
    from_runs: int  # recorded runs the estimate comes from
    machine: str  # this machine's device, e.g. 'NVIDIA H200' or 'AMD EPYC'
    elsewhere: int  # recorded runs of other machines, left out: an H100's seconds say nothing of a CPU's


def estimate(
    name: str, specs: list[RunSpec], out: Path, device: str, workers: int = 0, retry_failed: bool = False
) -> Estimate:
    from slabench.runners.environment import device_name, machine
    from slabench.runners.grid import default_workers, plan, resolve_device

    pending, recorded, _ = plan(specs, out, retry_failed)
    here = machine(device_name(resolve_device(device)))
    seconds: dict[tuple[str, str], list[float]] = {}
    elsewhere = 0
    for r in load_records(out).records.values():
        if r["status"] != "ok":
            continue
        if machine(str(r["environment"].get("device", ""))) != here:
            elsewhere += 1
            continue
        spec = RunSpec.from_dict(r["spec"])
        seconds.setdefault((spec.model.label(), spec.task.label()), []).append(r["timings"]["train_seconds"])
    every = [t for ts in seconds.values() for t in ts]
    workers = workers or default_workers(device, len(pending))
    total = None
    if pending and every:
        per_run = [mean(seconds.get((s.model.label(), s.task.label()), every)) for s in pending]
        total = sum(per_run) / min(workers, len(pending))
    return Estimate(name, out, len(specs), len(recorded), pending, workers, total, len(every), here, elsewhere)

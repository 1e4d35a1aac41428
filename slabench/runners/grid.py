"""Execute a list of RunSpecs: skip recorded runs, isolate failures, write one record each.

Backends:
- local (default): worker processes, a pool per device. On CPU the workers share the cores (one
  torch thread each by default); on GPU every visible device gets workers, and each group of runs
  goes to the device with the most free memory per run (runners/placement.py). One worker runs
  in-process (no spawn cost, per-step progress). Packing several runs on one GPU buys little at
  synthetic-task sizes: one run's CUDA-graph steps already keep an H100 ~89% busy, so 8 workers
  give 1.23x under NVIDIA MPS and 6 workers 1.1x without it (leaderboards/speed/packing.md).
- ray (optional extra): the same groups as Ray tasks on a local Ray instance or an existing
  cluster (`address`); a group asks for a GPU share per run, Ray picks the GPU; the driver
  writes the records.

With `fold` N > 1, runs that differ only in seed and lr train N at a time as one batched model
(runners/batched.py), each still writing its own record when it ends.

A group that fails because of its device (out of memory, a CUDA error, its worker died) is
tried again, on another device where there is one, before its runs are recorded as failed.
Each run writes its record atomically as soon as it ends, so killing the grid at any moment
loses no finished run; rerunning skips what is recorded.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import re
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from slabench.config import RunSpec
from slabench.errors import SlabenchError
from slabench.plugins import check_workers_can_load
from slabench.runners.batched import fold_groups, resolve_fold
from slabench.runners.environment import environment
from slabench.runners.placement import RESERVE_BYTES, Group, Placement, spread_first_uses
from slabench.runners.records import NEWER_SCHEMA, load_records, record_path, write_record
from slabench.runners.train import NO_OUTPUTS, RunOutputs

Event = Callable[[str, RunSpec, dict[str, Any] | None], None]  # ("start" | "end" | "step", spec, record)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SlabenchError(f"--device {device}: CUDA is not available here; use cpu or auto")
    if device not in ("cpu", "cuda") and not re.fullmatch(r"cuda:\d+", device):
        raise SlabenchError(f"--device {device!r} is not allowed; choose auto, cpu, cuda or cuda:N")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise SlabenchError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 up")
    return device


def check_address(address: str | None) -> str | None:
    """`--address`: None (a local Ray instance), 'auto' (the cluster started on this host by
    `ray start`) or HOST:PORT of a cluster's head, the port in [1, 65535]."""
    port = re.fullmatch(r"[\w.-]+:(\d{1,5})", address or "")
    if address is None or address == "auto" or (port and 1 <= int(port[1]) <= 65535):
        return address
    raise SlabenchError(
        f"--address {address!r} is not allowed; give auto or HOST:PORT, the port in [1, 65535] (e.g. 10.0.0.5:6379)"
    )


def failed_record(spec: RunSpec, message: str, device: str, trace: str | None = None) -> dict[str, Any]:
    """The record of a run that raised: `error` is one line for tables, `traceback` the whole
    story (e.g. the line of a plugin that fails only at long sequences)."""
    return {
        "schema": 1,
        "key": spec.key(),
        "spec": spec.to_dict(),
        "seed": spec.seed,
        "status": "failed",
        "error": message,
        "traceback": trace,
        "metrics": {},
        "environment": environment(device),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class DeviceFault(Exception):
    """A run failed because of its device (out of memory, a CUDA error), not its spec: worth a
    try on another device. Its one argument is the reason."""


def _device_fault(e: Exception) -> bool:
    # torch raises CUDA runtime errors as RuntimeError (AcceleratorError from torch 2.8 on).
    return isinstance(e, torch.cuda.OutOfMemoryError) or "CUDA error" in str(e)


def run_safely(
    spec_dict: dict[str, Any],
    device: str,
    on_step: Callable[[int, int], None] | None = None,
    outputs: RunOutputs = NO_OUTPUTS,
    retry_faults: bool = False,
) -> dict[str, Any]:
    """Train one run; any exception (out-of-memory included) becomes a `failed` record, except a
    device fault when `retry_faults`: it raises DeviceFault, for the caller to place the run again."""
    from slabench.runners.train import train

    spec = RunSpec.from_dict(spec_dict)
    try:
        return train(spec, device, on_step, outputs=outputs)
    except Exception as e:
        if isinstance(e, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        message = f"{type(e).__name__}: {e}".strip()[:2000]
        if retry_faults and _device_fault(e):
            raise DeviceFault(f"{message[:300]} on {device}") from None
        return failed_record(spec, message, device, traceback.format_exc())


def run_fold_safely(
    spec_dicts: list[dict[str, Any]],
    device: str,
    write: Callable[[dict[str, Any]], None],
    outputs: RunOutputs = NO_OUTPUTS,
    retry_faults: bool = False,
) -> None:
    """Train runs as one fold (runners/batched.py), `write` each record as its run ends. If the
    fold raises (a plugin mixer vmap cannot batch, out of memory at N times the batch), its runs
    not yet recorded train one at a time, each isolated by `run_safely` (their records say fold 1)."""
    if len(spec_dicts) == 1:
        write(run_safely(spec_dicts[0], device, outputs=outputs, retry_faults=retry_faults))
        return
    from slabench.runners.batched import train_batched

    specs, written = [RunSpec.from_dict(d) for d in spec_dicts], set()

    def finished(record: dict[str, Any]) -> None:
        written.add(record["key"])
        write(record)

    try:
        train_batched(specs, device, finished, outputs)
    except Exception:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        for spec in specs:
            if spec.key() not in written:
                write(run_safely(spec.to_dict(), device, outputs=outputs, retry_faults=retry_faults))


def _out_of_tries(group: Group[RunSpec], device: str, out: Path, on_event: Event) -> None:
    """Record the runs of a group that failed on every try as failed, with every reason."""
    for spec in group.runs:
        record = failed_record(spec, f"failed on {len(group.reasons)} tries: {'; '.join(group.reasons)}", device)
        write_record(out, record)
        on_event("end", spec, record)


# ---- local pool -------------------------------------------------------------------------------


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _worker(
    spec_dicts: list[dict[str, Any]],
    device: str,
    out: str,
    outputs: RunOutputs,
    retry_faults: bool,
    on_step: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Train one group (a fold, or a single run) on `device`; each record is written as its run
    ends, so a worker killed later in the fold loses no finished run."""
    records: list[dict[str, Any]] = []

    def finished(record: dict[str, Any]) -> None:
        write_record(Path(out), record)
        records.append(record)

    if on_step is not None:  # in-process, a single run: per-step progress
        finished(run_safely(spec_dicts[0], device, on_step, outputs, retry_faults))
    else:
        run_fold_safely(spec_dicts, device, finished, outputs, retry_faults)
    return records


class _InProcess:
    """An executor that runs each task at once in this process (`--workers 1`)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as e:
            future.set_exception(e)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def local_devices(device: str) -> dict[int, str]:
    """Device index -> name of the devices the local pool uses: every visible GPU for 'cuda'."""
    if device == "cpu":
        return {0: "cpu"}
    if device == "cuda":
        return {i: f"cuda:{i}" for i in range(torch.cuda.device_count())}
    return {torch.device(device).index: device}


def free_memory(devices: dict[int, str]) -> dict[int, int]:
    """Free bytes per device now (device-wide: other processes' use counts); CPU: no limit."""
    return {i: torch.cuda.mem_get_info(i)[0] if name != "cpu" else RESERVE_BYTES for i, name in devices.items()}


def default_workers(device: str, pending: int) -> int:
    if device == "cpu":
        return max(1, min(pending, os.cpu_count() or 1))
    per_gpu = int(os.environ.get("SLABENCH_RUNS_PER_GPU", "6"))
    return max(1, min(pending, per_gpu * len(local_devices(device))))


def _groups(specs: list[RunSpec], fold: int) -> list[list[RunSpec]]:
    """The grid's groups (folds or single runs) in the order workers take them (placement.py)."""
    return spread_first_uses(fold_groups(specs, fold), lambda spec: (spec.task, spec.model))


def _run_local(
    specs: list[RunSpec],
    outs: dict[str, Path],  # grid name -> its records directory
    device: str,
    workers: int,
    on_event: Event,
    outputs: RunOutputs,
    fold: int,
) -> None:
    devices = local_devices(device)
    per_device = math.ceil(workers / len(devices))
    placement = Placement(_groups(specs, fold), list(devices), per_device)
    retry_faults = device != "cpu"
    threads = max(1, (os.cpu_count() or 1) // workers) if device == "cpu" else 1
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children

    def pool() -> Any:
        if workers == 1:
            return _InProcess()
        return ProcessPoolExecutor(per_device, mp_context=ctx, initializer=_init_worker, initargs=(threads,))

    pools = {i: pool() for i in devices}
    running: dict[Future, tuple[Group[RunSpec], int, Any]] = {}  # future -> (group, device index, its pool)
    try:
        while placement.waiting or running:
            while (item := placement.next(free_memory(devices))) is not None:
                group, index = item
                step = None
                if workers == 1 and len(group.runs) == 1:
                    spec = group.runs[0]
                    step = lambda s, n, spec=spec: on_event("step", spec, {"step": s, "total": n})  # noqa: E731
                for spec in group.runs:
                    on_event("start", spec, None)
                out = outs[group.runs[0].grid]
                args = ([s.to_dict() for s in group.runs], devices[index], str(out), outputs, retry_faults, step)
                running[pools[index].submit(_worker, *args)] = (group, index, pools[index])
            if not running:
                time.sleep(1.0)  # every device is below its memory reserve: wait for it to free up
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                group, index, its_pool = running.pop(future)
                error = future.exception()
                if error is None:
                    placement.done(group, index)
                    for record in future.result():
                        on_event("end", next(s for s in group.runs if s.key() == record["key"]), record)
                    continue
                if isinstance(error, BrokenProcessPool):  # a worker died (killed, segfault)
                    if pools[index] is its_pool:  # its other groups in flight fail the same way
                        its_pool.shutdown(wait=True, cancel_futures=True)
                        pools[index] = pool()
                    reason = f"worker process died on {devices[index]}"
                elif isinstance(error, DeviceFault):
                    reason = str(error)
                else:
                    raise error
                out = outs[group.runs[0].grid]
                unfinished = [s for s in group.runs if not record_path(out, s.key()).exists()]
                for spec in (s for s in group.runs if s not in unfinished):  # a fold's runs recorded before
                    on_event("end", spec, json.loads(record_path(out, spec.key()).read_text()))
                if not placement.fault(group, index, reason, unfinished):
                    _out_of_tries(group, devices[index], out, on_event)
    finally:
        for p in pools.values():
            p.shutdown(wait=True, cancel_futures=True)


# ---- ray --------------------------------------------------------------------------------------


def _ray_worker(spec_dicts: list[dict[str, Any]], device: str, outputs: RunOutputs) -> list[dict[str, Any]]:
    """A Ray task: train one group on the GPU Ray gave it (or the CPU) and return its records;
    the driver writes them (workers may be on other nodes)."""
    import ray

    records: list[dict[str, Any]] = []
    run_fold_safely(spec_dicts, device, records.append, outputs, retry_faults=device != "cpu")
    gpus = ray.get_gpu_ids()  # the GPU's id on its node (the worker itself sees it as cuda:0)
    for record in records:
        record["environment"]["device_index"] = int(gpus[0]) if gpus else None
    return records


def _run_ray(
    specs: list[RunSpec],
    outs: dict[str, Path],
    device: str,
    on_event: Event,
    outputs: RunOutputs,
    fold: int,
    address: str | None,
) -> None:
    try:
        import ray
    except ImportError:
        raise SlabenchError("--backend ray needs the ray extra: pip install 'slabench[ray]'") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    except ConnectionError:
        message = f"--address {address}: no Ray cluster answers there; start one with `ray start --head`"
        raise SlabenchError(message) from None
    share = 1.0 / int(os.environ.get("SLABENCH_RUNS_PER_GPU", "6")) if device.startswith("cuda") else 0
    remote = ray.remote(_ray_worker)
    # Ray picks the GPU: one pseudo-device here, so a failed group is queued again as it is.
    groups = _groups(specs, fold)
    placement = Placement(groups, [0], len(groups))
    running: dict[Any, Group[RunSpec]] = {}  # Ray object ref -> its group
    while placement.waiting or running:
        while (item := placement.next({0: RESERVE_BYTES})) is not None:
            group = item[0]
            # max_retries=0: the driver re-queues a group whose worker died (and counts its tries).
            task = remote.options(num_cpus=1, num_gpus=min(1.0, share * len(group.runs)), max_retries=0)
            running[task.remote([s.to_dict() for s in group.runs], "cuda" if share else "cpu", outputs)] = group
            for spec in group.runs:
                on_event("start", spec, None)
        done, _ = ray.wait(list(running), num_returns=1)
        group = running.pop(done[0])
        try:
            records = ray.get(done[0])
        except ray.exceptions.RayError as e:
            cause = getattr(e, "cause", None)
            reason = str(cause) if isinstance(cause, DeviceFault) else f"ray task failed: {type(e).__name__}"
            if not placement.fault(group, 0, reason, group.runs):
                _out_of_tries(group, device, outs[group.runs[0].grid], on_event)
            continue
        placement.done(group, 0)
        by_key = {s.key(): s for s in group.runs}
        for record in records:
            write_record(outs[group.runs[0].grid], record)  # the driver owns the files
            on_event("end", by_key[record["key"]], record)


# ---- entry point ------------------------------------------------------------------------------


def plan(specs: list[RunSpec], out: Path, retry_failed: bool = False) -> tuple[list[RunSpec], list[RunSpec], list]:
    """Split specs into (pending, already recorded) and list corrupt record files."""
    existing = load_records(out)
    newer = [path for path, reason in existing.corrupt if NEWER_SCHEMA in reason]
    if newer:  # redoing their runs would overwrite a newer slabench's results with this one's
        more = f" and {len(newer) - 1} more" if len(newer) > 1 else ""
        raise SlabenchError(f"record {newer[0]}{more} written by a newer slabench; upgrade slabench to run this grid")
    done_keys = {k for k, r in existing.records.items() if not (retry_failed and r["status"] == "failed")}
    pending, recorded = [], []
    for s in specs:
        (recorded if s.key() in done_keys else pending).append(s)
    return pending, recorded, existing.corrupt


def run_grid(
    specs: list[RunSpec],
    out: Path | dict[str, Path],
    backend: Literal["local", "ray"] = "local",
    device: str = "auto",
    workers: int = 0,
    on_event: Event = lambda kind, spec, record: None,
    outputs: RunOutputs = NO_OUTPUTS,
    fold: int | Literal["auto"] = 1,
    address: str | None = None,
) -> None:
    """Run every spec in `specs` (the caller passes the pending ones) and write their records
    under `out`, or, for the runs of several grids in one pool, under `out[spec.grid]`.
    fold: runs that differ only in seed and lr train as one model, up to `fold` a model
    (runners/batched.py; 'auto' picks by device). address: the Ray cluster to join (None: a
    local instance)."""
    device = resolve_device(device)
    address = check_address(address)
    outs = out if isinstance(out, dict) else {s.grid: out for s in specs}
    for path in outs.values():
        path.mkdir(parents=True, exist_ok=True)
    # TensorBoard's per-step logs are written by single runs only: --log-dir trains unfolded.
    fold = 1 if outputs.log_dir else resolve_fold(fold, device)
    if backend not in ("local", "ray"):
        raise SlabenchError(f"--backend {backend!r} is not allowed; choose local or ray")
    if backend == "local":
        workers = workers or default_workers(device, len(fold_groups(specs, fold)))
    if backend == "ray" or workers > 1:  # runs in fresh processes
        check_workers_can_load({s.model.name for s in specs})
    if backend == "ray":
        _run_ray(specs, outs, device, on_event, outputs, fold, address)
    else:
        _run_local(specs, outs, device, workers, on_event, outputs, fold)

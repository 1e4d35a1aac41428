"""Execute a list of RunSpecs: skip recorded runs, isolate failures, write one record each.

Backends:
- local (default). On CPU: a pool of worker processes sharing the cores (one torch thread
  each by default). On GPU: several runs packed onto each device as threads of this process,
  each on its own CUDA stream. Small synthetic-task models leave most of an H100 idle, and
  kernels of one process's streams run side by side, while separate processes only time-slice
  the GPU (measured: 6 processes gave 1.1x, leaderboards/speed/packing.md). A run starts only
  while its GPU has free memory above a reserve. One worker runs in-process with per-step
  progress. The price of threads: a run that crashes the process (a segfault) takes the runs
  beside it down too; they are rerun on resume like any unrecorded run.
- ray (optional extra): the same RunSpecs as Ray tasks (fractional GPUs); the driver writes
  the records.

Each run writes its record atomically as soon as it ends, so killing the grid at any moment
loses no finished run; rerunning skips what is recorded.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from slabench.config import RunSpec
from slabench.errors import SlabenchError
from slabench.runners.environment import environment
from slabench.runners.records import load_records, write_record

Event = Callable[[str, RunSpec, dict[str, Any] | None], None]  # ("start" | "end", spec, record)
GPU_RESERVE_BYTES = 2 * 2**30  # free memory a GPU must keep before another run starts on it


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SlabenchError(f"--device {device}: CUDA is not available here; use cpu or auto")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SlabenchError(f"--device {device!r} is not allowed; choose auto, cpu, cuda or cuda:N")
    return device


def failed_record(spec: RunSpec, message: str, device: str) -> dict[str, Any]:
    return {
        "schema": 1,
        "key": spec.key(),
        "spec": spec.to_dict(),
        "seed": spec.seed,
        "status": "failed",
        "error": message,
        "metrics": {},
        "environment": environment(device),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def run_safely(spec_dict: dict[str, Any], device: str, on_step: Callable[[int, int], None] | None = None,
               packed: int = 1) -> dict[str, Any]:
    """Train one run; any exception (out-of-memory included) becomes a `failed` record."""
    from slabench.runners.train import train

    spec = RunSpec.from_dict(spec_dict)
    try:
        return train(spec, device, on_step, packed=packed)
    except Exception as e:  # noqa: BLE001 - failure isolation is the point
        if isinstance(e, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        tail = traceback.format_exc().strip().splitlines()[-1]
        return failed_record(spec, f"{type(e).__name__}: {e}".strip()[:2000] or tail, device)


# ---- local pool -------------------------------------------------------------------------------

def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _worker(spec_dict: dict[str, Any], out: str) -> dict[str, Any]:
    record = run_safely(spec_dict, "cpu")
    write_record(Path(out), record)
    return record


def _thread_worker(spec_dict: dict[str, Any], out: str, device: str, packed: int) -> dict[str, Any]:
    """One packed run on its own CUDA stream (the current stream is per thread)."""
    torch.cuda.set_device(device)
    while torch.cuda.mem_get_info()[0] < GPU_RESERVE_BYTES:
        time.sleep(1.0)
    with torch.cuda.stream(torch.cuda.Stream(device)):
        record = run_safely(spec_dict, device, packed=packed)
    write_record(Path(out), record)
    return record


def default_workers(device: str, pending: int) -> int:
    if device == "cpu":
        return max(1, min(pending, os.cpu_count() or 1))
    per_gpu = int(os.environ.get("SLABENCH_RUNS_PER_GPU", "6"))
    gpus = torch.cuda.device_count() if device == "cuda" else 1
    return max(1, min(pending, per_gpu * gpus))


def _run_local(specs: list[RunSpec], out: Path, device: str, workers: int, on_event: Event) -> None:
    if workers == 1:
        for spec in specs:
            on_event("start", spec, None)
            record = run_safely(spec.to_dict(), device,
                                lambda s, n, spec=spec: on_event("step", spec, {"step": s, "total": n}))
            write_record(out, record)
            on_event("end", spec, record)
        return
    if device.startswith("cuda"):
        _run_threads(specs, out, device, workers, on_event)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")  # torch's thread pools do not survive a fork
    todo = list(specs)
    while todo:
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,))
        running: dict[Any, RunSpec] = {}
        try:
            while todo or running:
                while todo and len(running) < workers:
                    spec = todo.pop(0)
                    running[pool.submit(_worker, spec.to_dict(), str(out))] = spec
                    on_event("start", spec, None)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    spec = running.pop(fut)
                    on_event("end", spec, fut.result())
        except BrokenProcessPool as e:
            # A worker died (killed, segfault): record the runs in flight as failed, go on.
            for spec in running.values():
                record = failed_record(spec, f"worker process died: {e}", device)
                write_record(out, record)
                on_event("end", spec, record)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_threads(specs: list[RunSpec], out: Path, device: str, workers: int, on_event: Event) -> None:
    """GPU packing: `workers` runs at a time as threads, each started on the least busy GPU."""
    gpus = [device] if ":" in device else [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    packed = -(-workers // len(gpus))  # runs sharing each GPU
    load = dict.fromkeys(gpus, 0)
    todo, running = list(specs), {}
    pool = ThreadPoolExecutor(workers)
    try:
        while todo or running:
            while todo and len(running) < workers:
                spec, gpu = todo.pop(0), min(gpus, key=load.get)
                load[gpu] += 1
                running[pool.submit(_thread_worker, spec.to_dict(), str(out), gpu, packed)] = (spec, gpu)
                on_event("start", spec, None)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                spec, gpu = running.pop(fut)
                load[gpu] -= 1
                on_event("end", spec, fut.result())
    finally:
        # On Ctrl-C the caller exits the process; threads cannot be stopped, only abandoned.
        pool.shutdown(wait=not running, cancel_futures=True)


# ---- ray --------------------------------------------------------------------------------------


def _run_ray(specs: list[RunSpec], out: Path, device: str, workers: int, on_event: Event) -> None:
    try:
        import ray
    except ImportError:
        raise SlabenchError("--backend ray needs the ray extra: pip install 'slabench[ray]'") from None
    ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    gpus = 1.0 / int(os.environ.get("SLABENCH_RUNS_PER_GPU", "6")) if device.startswith("cuda") else 0
    remote = ray.remote(num_cpus=1, num_gpus=gpus)(run_safely)
    refs = {}
    for spec in specs:
        refs[remote.remote(spec.to_dict(), "cuda" if gpus else "cpu")] = spec
        on_event("start", spec, None)
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        spec = refs.pop(done[0])
        try:
            record = ray.get(done[0])
        except Exception as e:  # noqa: BLE001 - a lost worker or node
            record = failed_record(spec, f"ray task failed: {type(e).__name__}: {e}", device)
        write_record(out, record)  # the driver owns the files: workers may be on other nodes
        on_event("end", spec, record)


# ---- entry point ------------------------------------------------------------------------------


def plan(specs: list[RunSpec], out: Path, retry_failed: bool = False) -> tuple[list[RunSpec], list[RunSpec], list]:
    """Split specs into (pending, already recorded) and list corrupt record files."""
    existing = load_records(out)
    done_keys = {
        k for k, r in existing.records.items() if not (retry_failed and r["status"] == "failed")
    }
    pending, recorded = [], []
    for s in specs:
        (recorded if s.key() in done_keys else pending).append(s)
    return pending, recorded, existing.corrupt


def run_grid(
    specs: list[RunSpec],
    out: Path,
    backend: Literal["local", "ray"] = "local",
    device: str = "auto",
    workers: int = 0,
    on_event: Event = lambda kind, spec, record: None,
) -> None:
    """Run every spec in `specs` (the caller passes the pending ones) and write their records."""
    device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or default_workers(device, len(specs))
    if backend == "ray":
        _run_ray(specs, out, device, workers, on_event)
    elif backend == "local":
        _run_local(specs, out, device, workers, on_event)
    else:
        raise SlabenchError(f"--backend {backend!r} is not allowed; choose local or ray")

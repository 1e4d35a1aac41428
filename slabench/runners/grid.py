"""Execute a list of RunSpecs: skip recorded runs, isolate failures, write one record each.

Backends:
- local (default): a pool of worker processes. On CPU the workers share the cores (one torch
  thread each by default); on GPU several runs are packed onto each device. A worker starts a
  run only while its GPU has free memory above a reserve. One worker runs in-process (no spawn
  cost, per-step progress). Packing on GPU buys little at synthetic-task sizes: one run's
  CUDA-graph steps already keep an H100 ~89% busy, so 8 workers give 1.23x under NVIDIA MPS and
  1.1x without it (leaderboards/speed/packing.md).
- ray (optional extra): the same RunSpecs as Ray tasks (fractional GPUs); the driver writes
  the records.

With `fold` N > 1 (local backend), runs that differ only in seed and lr train N at a time as one
batched model (runners/batched.py), each still writing its own record when it ends.

Each run writes its record atomically as soon as it ends, so killing the grid at any moment
loses no finished run; rerunning skips what is recorded.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from slabench.config import RunSpec
from slabench.errors import SlabenchError
from slabench.runners.batched import fold_groups, resolve_fold
from slabench.runners.environment import environment
from slabench.runners.records import load_records, record_path, write_record
from slabench.runners.train import NO_OUTPUTS, RunOutputs

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


def run_safely(
    spec_dict: dict[str, Any],
    device: str,
    on_step: Callable[[int, int], None] | None = None,
    outputs: RunOutputs = NO_OUTPUTS,
) -> dict[str, Any]:
    """Train one run; any exception (out-of-memory included) becomes a `failed` record."""
    from slabench.runners.train import train

    spec = RunSpec.from_dict(spec_dict)
    try:
        return train(spec, device, on_step, outputs=outputs)
    except Exception as e:
        if isinstance(e, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        trace = traceback.format_exc()
        return failed_record(spec, f"{type(e).__name__}: {e}".strip()[:2000], device, trace)


def run_fold_safely(
    spec_dicts: list[dict[str, Any]],
    device: str,
    write: Callable[[dict[str, Any]], None],
    outputs: RunOutputs = NO_OUTPUTS,
) -> None:
    """Train runs as one fold (runners/batched.py), `write` each record as its run ends. If the
    fold raises (a plugin mixer vmap cannot batch, out of memory at N times the batch), its runs
    not yet recorded train one at a time, each isolated by `run_safely` (their records say fold 1)."""
    if len(spec_dicts) == 1:
        write(run_safely(spec_dicts[0], device, outputs=outputs))
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
                write(run_safely(spec.to_dict(), device, outputs=outputs))


# ---- local pool -------------------------------------------------------------------------------

_worker_device = "cpu"


def _init_worker(device: str, threads: int, counter: Any) -> None:
    global _worker_device
    torch.set_num_threads(threads)
    if device == "cuda":
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        _worker_device = f"cuda:{index % torch.cuda.device_count()}"
    else:
        _worker_device = device


def _worker(spec_dicts: list[dict[str, Any]], out: str, outputs: RunOutputs) -> list[dict[str, Any]]:
    """Train one fold (a single run when fold is 1); each record is written as its run ends."""
    if _worker_device.startswith("cuda"):
        torch.cuda.set_device(_worker_device)
        while torch.cuda.mem_get_info()[0] < GPU_RESERVE_BYTES:
            time.sleep(1.0)
    records: list[dict[str, Any]] = []

    def finished(record: dict[str, Any]) -> None:
        write_record(Path(out), record)  # now: a worker killed later in the fold loses no finished run
        records.append(record)

    run_fold_safely(spec_dicts, _worker_device, finished, outputs)
    return records


def default_workers(device: str, pending: int) -> int:
    if device == "cpu":
        return max(1, min(pending, os.cpu_count() or 1))
    per_gpu = int(os.environ.get("SLABENCH_RUNS_PER_GPU", "6"))
    gpus = torch.cuda.device_count() if device == "cuda" else 1
    return max(1, min(pending, per_gpu * gpus))


def _run_local(
    specs: list[RunSpec], out: Path, device: str, workers: int, on_event: Event, outputs: RunOutputs, fold: int
) -> None:
    by_key = {s.key(): s for s in specs}

    def finished(record: dict[str, Any]) -> None:
        write_record(out, record)
        on_event("end", by_key[record["key"]], record)

    todo = fold_groups(specs, fold)  # runs that train as one model; single runs when fold is 1
    if workers == 1:
        for group in todo:
            for spec in group:
                on_event("start", spec, None)
            if len(group) > 1:
                run_fold_safely([s.to_dict() for s in group], device, finished, outputs)
                continue
            spec = group[0]
            finished(
                run_safely(
                    spec.to_dict(),
                    device,
                    lambda s, n, spec=spec: on_event("step", spec, {"step": s, "total": n}),
                    outputs,
                )
            )
        return
    threads = max(1, (os.cpu_count() or 1) // workers) if device == "cpu" else 1
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    while todo:
        counter = ctx.Value("i", 0)
        pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(device, threads, counter)
        )
        running: dict[Any, list[RunSpec]] = {}
        try:
            while todo or running:
                while todo and len(running) < workers:
                    group = todo.pop(0)
                    running[pool.submit(_worker, [s.to_dict() for s in group], str(out), outputs)] = group
                    for spec in group:
                        on_event("start", spec, None)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    running.pop(fut)
                    for record in fut.result():
                        on_event("end", by_key[record["key"]], record)
        except BrokenProcessPool as e:
            # A worker died (killed, segfault): record its runs in flight as failed (a fold's
            # finished runs are already recorded), go on.
            for spec in (s for group in running.values() for s in group):
                if not record_path(out, spec.key()).exists():
                    finished(failed_record(spec, f"worker process died: {e}", device))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# ---- ray --------------------------------------------------------------------------------------


def _run_ray(specs: list[RunSpec], out: Path, device: str, workers: int, on_event: Event, outputs: RunOutputs) -> None:
    try:
        import ray
    except ImportError:
        raise SlabenchError("--backend ray needs the ray extra: pip install 'slabench[ray]'") from None
    ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    gpus = 1.0 / int(os.environ.get("SLABENCH_RUNS_PER_GPU", "6")) if device.startswith("cuda") else 0
    remote = ray.remote(num_cpus=1, num_gpus=gpus)(run_safely)
    refs = {}
    for spec in specs:
        refs[remote.remote(spec.to_dict(), "cuda" if gpus else "cpu", None, outputs)] = spec
        on_event("start", spec, None)
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        spec = refs.pop(done[0])
        try:
            record = ray.get(done[0])
        except Exception as e:
            record = failed_record(spec, f"ray task failed: {type(e).__name__}: {e}", device, traceback.format_exc())
        write_record(out, record)  # the driver owns the files: workers may be on other nodes
        on_event("end", spec, record)


# ---- entry point ------------------------------------------------------------------------------


def plan(specs: list[RunSpec], out: Path, retry_failed: bool = False) -> tuple[list[RunSpec], list[RunSpec], list]:
    """Split specs into (pending, already recorded) and list corrupt record files."""
    existing = load_records(out)
    done_keys = {k for k, r in existing.records.items() if not (retry_failed and r["status"] == "failed")}
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
    outputs: RunOutputs = NO_OUTPUTS,
    fold: int | Literal["auto"] = 1,
) -> None:
    """Run every spec in `specs` (the caller passes the pending ones) and write their records.
    fold: runs that differ only in seed and lr train as one model, up to `fold` a model
    (runners/batched.py; local backend only; 'auto' picks by device)."""
    device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    # TensorBoard's per-step logs are written by single runs only: --log-dir trains unfolded.
    fold = 1 if outputs.log_dir or backend != "local" else resolve_fold(fold, device)
    workers = workers or default_workers(device, len(fold_groups(specs, fold)))
    if backend == "ray":
        _run_ray(specs, out, device, workers, on_event, outputs)
    elif backend == "local":
        _run_local(specs, out, device, workers, on_event, outputs, fold)
    else:
        raise SlabenchError(f"--backend {backend!r} is not allowed; choose local or ray")

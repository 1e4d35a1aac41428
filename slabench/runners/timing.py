"""The one timing harness every speed sweep uses.

    m = measure(fn, device)      # warm up, synchronise, time, then one call for peak memory

Method (the same for every op, mixer and training step):
  1. Warm up: `warmup` calls, and at least `min_warmup_s` seconds of calls. The first call
     compiles and autotunes (Triton, fla) and runs the kernel-dispatch probes, so none of that
     is ever inside a timed call.
  2. Time `repeats` calls. On CUDA every call starts on an idle device (synchronise, then
     events around the call), so a launch-bound call is charged its launch overhead and a
     call is never hidden behind its predecessor. On CPU, `time.perf_counter` around the call.
     Without an explicit `repeats`, as many calls as fit in about `target_s` (10 to 100).
  3. Report the median and the 20th / 80th percentiles in milliseconds.
  4. Peak memory, CUDA only: `max_memory_allocated` during one more call minus what was
     allocated before it (inputs and parameters excluded; outputs, saved activations and
     gradients included). On CPU there is no honest per-call number (the allocator returns
     memory to the OS at will and tracemalloc does not see torch), so it is None ('n/a').
"""

from __future__ import annotations

import functools
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from slabench import kernels
from slabench.runners.environment import cpu_model, environment


@dataclass(frozen=True)
class Measurement:
    median_ms: float
    p20_ms: float
    p80_ms: float
    repeats: int
    peak_mem_bytes: int | None  # None on CPU (not measurable per call)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _percentile(xs: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 1]."""
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _time_once_ms(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def peak_memory(fn: Callable[[], Any], device: torch.device) -> int | None:
    """Bytes allocated at the peak of one call of `fn`, above what was allocated before it."""
    if device.type != "cuda":
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    _sync(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def measure(
    fn: Callable[[], Any],
    device: torch.device | str,
    *,
    warmup: int = 3,
    min_warmup_s: float = 0.0,
    repeats: int | None = None,
    target_s: float = 0.3,
    memory: bool = True,
) -> Measurement:
    """Warm `fn` up, then time it (see the module docstring); `fn` takes no arguments."""
    device = torch.device(device)
    t0 = time.perf_counter()
    last_ms = 0.0
    for _ in range(max(warmup, 1)):
        last_ms = _time_once_ms(fn, device)
    while time.perf_counter() - t0 < min_warmup_s:
        last_ms = _time_once_ms(fn, device)
    if repeats is None:
        repeats = int(min(100, max(10, 1e3 * target_s / max(last_ms, 1e-3))))
    times = [_time_once_ms(fn, device) for _ in range(repeats)]
    peak = peak_memory(fn, device) if memory else None
    return Measurement(statistics.median(times), _percentile(times, 0.2), _percentile(times, 0.8), repeats, peak)


def cuda_graph(fn: Callable[[], Any], device: torch.device | str, warmup: int = 3) -> Callable[[], None]:
    """`fn` captured into a CUDA graph; returns its replay (same work, one launch).

    Warm-up calls run first on a side stream (PyTorch's recipe), so autotuning, dispatch probes
    and lazy initialisation never happen inside the capture. What launch overhead costs a
    small op is then the difference between timing `fn` and timing its replay.
    """
    device = torch.device(device)
    side, current = torch.cuda.Stream(device), torch.cuda.current_stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    current.wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


@functools.cache
def _driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def machine(device: torch.device | str) -> dict[str, Any]:
    """The environment of a run record plus GPU driver, CPU model and the kernel paths that ran."""
    device = torch.device(device)
    env = environment(device)
    env["cpu"] = cpu_model()
    env["driver"] = _driver() if device.type == "cuda" else None
    env["kernel_paths"] = kernels.paths_used()
    return env


def device_slug(device: torch.device | str) -> str:
    """A file-name form of the device: 'nvidia-h100-80gb-hbm3', 'cpu-intel-xeon-...'."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu {cpu_model()}"
    slug = "".join(c if c.isalnum() else "-" for c in name.lower().replace("(r)", "").replace("(tm)", ""))
    return "-".join(part for part in slug.split("-") if part)[:60]

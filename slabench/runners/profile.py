"""Where a mixer's time goes: its kernels, counted and timed by torch.profiler.

`profile_mixer` runs one mixer layer on x [B, T, H*D] (forward, or forward and gradients of the
input and every parameter, as `slabench sweep` times it) a few times under torch.profiler and
sums the device time of every kernel per call. At synthetic-task sizes a mixer is bound by the
number of kernels it launches as much as by their work, so both are reported: the kernel count
per call and the device time per call.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch.profiler import DeviceType, ProfilerActivity, profile

from slabench.runners.sweep.cases import mixer_fns
from slabench.runners.sweep.config import Shape

# Kineto, the profiler's C++ backend, logs to the process's stderr ("USDT: ... profiler_start",
# "ERROR: ... gpuGetDeviceCount failed" on a machine without a GPU): lines like these.
KINETO_LOG = re.compile(r"^(USDT|INFO|WARNING|ERROR):\d{4}-\d\d-\d\d [\d:]+ \d+:\d+ \S+\.cpp:\d+\]")


@contextlib.contextmanager
def _without_kineto_log() -> Iterator[None]:
    """Capture file descriptor 2 while the profiler runs; pass on every line but Kineto's log."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line for line in captured.read().decode(errors="replace").splitlines() if not KINETO_LOG.match(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def profile_mixer(
    name: str,
    shape: Shape,
    device: str,
    dtype: str = "bf16",
    backward: bool = True,
    calls: int = 5,
    by_op: bool = False,
) -> dict[str, Any]:
    """{"kernels": [{"name", "per_call", "us_per_call"}] (most device time first),
    "kernels_per_call", "device_us_per_call", "wall_us_per_call"}; on CPU the "kernels" are
    the aten ops and their CPU time. by_op: on CUDA, name each row by the aten op (and input
    shapes) that launched the kernels instead of by kernel, which says which line of a mixer
    costs what."""
    dev = torch.device(device)
    fn = mixer_fns(name, shape, dev, dtype)["fwdbwd" if backward else "fwd"]
    for _ in range(3):  # compile, autotune, dispatch probes: none of it belongs in the profile
        fn()
    gpu = dev.type == "cuda"
    if gpu:
        torch.cuda.synchronize(dev)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    with _without_kineto_log(), profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if gpu:
            torch.cuda.synchronize(dev)
        wall_us = 1e6 * (time.perf_counter() - t0)  # profiler overhead included
    with _without_kineto_log():
        events = prof.key_averages(group_by_input_shape=by_op)
    if gpu and by_op:  # the innermost host op that launched each kernel gets its device time
        rows = [
            (f"{e.key} {e.input_shapes}", e.count, e.self_device_time_total)
            for e in events
            if e.device_type == DeviceType.CPU and e.self_device_time_total > 0
        ]
    elif gpu:  # kernels (and memcpy/memset) are the events that ran on the device
        rows = [(e.key, e.count, e.self_device_time_total) for e in events if e.device_type == DeviceType.CUDA]
    else:  # leaf aten ops: self CPU time, so nested ops are not counted twice
        rows = [(e.key, e.count, e.self_cpu_time_total) for e in events if e.key.startswith("aten::")]
    rows = [r for r in rows if r[2] > 0]
    rows.sort(key=lambda r: -r[2])
    return {
        "mixer": name,
        "shape": shape.label,
        "device": device,
        "dtype": dtype,
        "mode": "fwd+bwd" if backward else "fwd",
        "kernels": [{"name": k, "per_call": n / calls, "us_per_call": t / calls} for k, n, t in rows],
        "kernels_per_call": sum(n for _, n, _ in rows) / calls,
        "device_us_per_call": sum(t for _, _, t in rows) / calls,
        "wall_us_per_call": wall_us / calls,
    }
